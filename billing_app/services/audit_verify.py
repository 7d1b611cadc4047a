"""Verifying the tamper-evident audit chain (docs/audit.md): ``verify_audit`` and its beat task.

``audit_check`` walks one workspace's chain in ``seq`` order and stops at the first row
that does not match; ``audit_verify`` records the result (the dashboard's system health
shows the last). Four checks, in this order:

1. the chain (``audit_chain.chain_verify``): consecutive ``seq``, each ``prev_hash`` the
   previous hash, each hash recomputed, canonical content; and the entry's other columns
   (workspace, time, event, subject — what admin lists and filters on) say what the
   hashed content says;
2. the last passing verification's anchor: its hash still at its ``seq``;
3. the head (``AuditChainHead``) names the last entry;
4. every action and approval request equals its latest snapshot, and every snapshot has
   its row.

Big chains are streamed: entries and rows are read in chunks (``iterator``), and of each
audited row only the latest snapshot's digest is kept, so memory grows with the number
of actions (a few dozen bytes each), not with the chain. The walk reads one consistent
snapshot of the database (REPEATABLE READ on PostgreSQL): an action committed with its
entry while the walk runs is seen with its entry or not at all, never half.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from ..audit_chain import GENESIS, ChainBreak, canonical_json, chain_verify
from ..models import (
    ApprovalRequest,
    AuditChainHead,
    AuditEntry,
    AuditVerification,
    BillingAction,
    Workspace,
)
from .audit import ACTION, APPROVAL, action_snapshot, approval_snapshot, json_plain

logger = logging.getLogger(__name__)

CHUNK = 2000  # entries or rows read per round trip


@dataclass(frozen=True)
class Finding:
    ok: bool
    entries: int
    head_seq: int
    head_hash: str
    first_bad: str = ""
    reason: str = ""


def _digest(data: Any) -> bytes:
    return hashlib.sha256(canonical_json(data).encode()).digest()


@dataclass
class _Walk:
    """What the chain's walk keeps: counts, the end, the first column mismatch, and each
    audited row's latest snapshot as (seq, digest)."""

    entries: int = 0
    end_seq: int = 0
    end_hash: str = GENESIS
    columns_bad: int | None = None
    latest: dict[tuple[str, str], tuple[int, bytes]] = field(default_factory=dict)

    def stream(self, workspace: Workspace) -> Iterator[dict[str, Any]]:
        rows = (
            AuditEntry.objects.filter(workspace=workspace)
            .order_by("seq", "pk")
            .values(
                "seq",
                "event",
                "subject_type",
                "subject_id",
                "content",
                "prev_hash",
                "hash",
                "created_at",
                "workspace_id",
            )
            .iterator(chunk_size=CHUNK)
        )
        for values in rows:
            row: dict[str, Any] = dict(values)
            self.entries += 1
            yield row  # chain_verify checks it; it asks for the next only if it held
            self.end_seq, self.end_hash = row["seq"], row["hash"]
            content = json.loads(row["content"])  # canonical JSON: chain_verify parsed it
            said = ("workspace", "at", "event", "subject_type", "subject_id")
            columns = ("workspace_id", "created_at", "event", "subject_type", "subject_id")
            if tuple(content.get(k) for k in said) != tuple(json_plain(row[c]) for c in columns):
                self.columns_bad = row["seq"]
                return
            if row["subject_type"] in (ACTION, APPROVAL):
                key = (row["subject_type"], row["subject_id"])
                self.latest[key] = (row["seq"], _digest(content.get("data")))


def _bad(walk: _Walk, first_bad: str, reason: str, *, end: bool = False) -> Finding:
    head = (walk.end_seq, walk.end_hash) if end else (0, "")
    return Finding(False, walk.entries, head[0], head[1], first_bad, reason)


def _live_rows(workspace: Workspace) -> Iterator[tuple[str, Any, dict[str, Any]]]:
    for action in (
        BillingAction.objects.filter(workspace=workspace)
        .order_by("created_at", "pk")
        .iterator(chunk_size=CHUNK)
    ):
        yield ACTION, action.pk, action_snapshot(action)
    for approval in (
        ApprovalRequest.objects.filter(workspace=workspace)
        .order_by("created_at", "pk")
        .iterator(chunk_size=CHUNK)
    ):
        yield APPROVAL, approval.pk, approval_snapshot(approval)


def _rows_break(workspace: Workspace, walk: _Walk) -> tuple[str, str] | None:
    """Each action and approval request equals its latest snapshot; every snapshot has its row."""
    latest = walk.latest
    for subject_type, pk, snapshot in _live_rows(workspace):
        recorded = latest.pop((subject_type, str(pk)), None)
        if recorded is None:
            return f"{subject_type} {pk}", "no audit entry records this row"
        if recorded[1] != _digest(snapshot):
            content = AuditEntry.objects.get(workspace=workspace, seq=recorded[0]).content
            data = json.loads(content)["data"]
            changed = sorted(
                k for k in snapshot.keys() | data.keys() if snapshot.get(k) != data.get(k)
            )
            return (
                f"{subject_type} {pk}",
                f"differs from its audit entry {recorded[0]}: {', '.join(changed)}",
            )
    if latest:
        (subject_type, subject_id), (seq, _) = min(latest.items(), key=lambda i: i[1][0])
        return f"{subject_type} {subject_id}", f"deleted (last recorded in entry {seq})"
    return None


def _check(workspace: Workspace) -> Finding:
    last_ok = (
        AuditVerification.objects.filter(workspace=workspace, ok=True, head_seq__gt=0)
        .order_by("-verified_at", "-pk")
        .first()
    )
    anchor = (last_ok.head_seq, last_ok.head_hash) if last_ok else None
    walk = _Walk()
    found: ChainBreak | None = chain_verify(walk.stream(workspace), anchor=anchor)
    if walk.columns_bad is not None:  # the walk stopped there: the earliest bad row
        return _bad(walk, f"entry {walk.columns_bad}", "columns differ from content")
    if found is not None:
        return _bad(walk, f"entry {found.missing or found.seq}", found.reason)
    head = AuditChainHead.objects.filter(workspace=workspace).first()
    if walk.end_seq > 0 and (head is None or head.seq == 0):
        # Deleted or reset: the next append would restart at 1 (services.audit refuses it).
        reason = "the chain's head is missing" if head is None else "the chain's head was reset"
        return _bad(walk, f"entry {walk.end_seq}", reason)
    if head is not None and (head.seq, head.last_hash) != (walk.end_seq, walk.end_hash):
        if head.seq > walk.end_seq:
            reason = f"entries after {walk.end_seq} are missing (the chain's end is {head.seq})"
            return _bad(walk, f"entry {walk.end_seq + 1}", reason)
        return _bad(walk, f"entry {walk.end_seq}", "the chain's end moved")
    row = _rows_break(workspace, walk)
    if row is not None:
        return _bad(walk, row[0], row[1], end=True)
    return Finding(True, walk.entries, walk.end_seq, walk.end_hash)


def audit_check(*, workspace: Workspace) -> Finding:
    """Walk the workspace's chain and its audited rows; the first mismatch, if any.

    Reads one snapshot of the database: on PostgreSQL the walk runs in a REPEATABLE READ
    transaction of its own (when called outside one), so appends committed meanwhile
    are not half-seen as rows without entries."""
    own_transaction = not connection.in_atomic_block
    with transaction.atomic():
        if own_transaction and connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
        return _check(workspace)


def audit_verify(*, workspace: Workspace, run_by: Any = None) -> AuditVerification:
    """Check the workspace's chain and record the result (the dashboard shows the last).

    A broken chain is logged at error level: the scheduled run (``audit_verify_task``)
    has no one reading its output."""
    finding = audit_check(workspace=workspace)
    if not finding.ok:
        logger.error(
            "audit trail of workspace %s does not verify: first bad row %s: %s",
            workspace.slug,
            finding.first_bad,
            finding.reason,
        )
    return AuditVerification.objects.create(
        workspace=workspace,
        verified_at=timezone.now(),
        ok=finding.ok,
        entries=finding.entries,
        head_seq=finding.head_seq,
        head_hash=finding.head_hash,
        first_bad=finding.first_bad[:128],
        reason=finding.reason,
        run_by=run_by,
    )


def audit_verify_workspaces() -> list[int]:
    """The workspaces whose chains the daily run verifies: every one, inactive too (a
    deactivated workspace's money history still has to hold)."""
    return list(Workspace.objects.order_by("pk").values_list("pk", flat=True))


def audit_last_verification(*, workspace: Workspace) -> AuditVerification | None:
    return (
        AuditVerification.objects.filter(workspace=workspace)
        .order_by("-verified_at", "-pk")
        .first()
    )
