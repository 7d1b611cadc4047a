"""Appending to, backfilling and verifying the tamper-evident audit chain (docs/audit.md).

Design: actions and approval requests change after they are written, so the chain holds
append-only ``AuditEntry`` rows — one per audited change, with the row's snapshot — rather
than hashes of mutable rows. Each entry's hash covers the previous entry's hash, its
number and its canonical content (``billing_app.audit_chain``); one chain per workspace.
``audit_verify`` walks the chain, then compares each action and approval request with its
latest snapshot, so editing, deleting, inserting or reordering an entry, or editing or
deleting an audited row, is found and named.

Appending is race-free and cheap: the workspace's ``AuditChainHead`` row is upserted
first, which locks it until commit (PostgreSQL; SQLite has a single writer), so two
agents acting at once take turns at the chain's end and never fork it. On PostgreSQL the
upsert computes the new hashes itself and the entries are INSERTed by the same statement
(one statement per audited transaction); SQLite takes three.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django.db import connection, transaction
from django.db.models import Model
from django.utils import timezone

from ..audit_chain import GENESIS, ChainBreak, canonical_json, chain_verify, entry_hash
from ..models import (
    ApprovalRequest,
    AuditChainHead,
    AuditEntry,
    AuditVerification,
    BillingAction,
    Workspace,
)

ACTION, APPROVAL, ADMIN = "billing_action", "approval_request", "admin"

# The fields of an action that the audit answers for. Left out: delivery bookkeeping
# (note_status, note_attempts), timings (started_at is rewritten by a takeover,
# durations), display copies (words, customer_message), the panel's open time.
ACTION_FIELDS = (
    "id",
    "workspace_id",
    "installation_id",
    "actor_id",
    "actor_role",
    "ticket_id",
    "customer_id",
    "kind",
    "params",
    "amount",
    "currency",
    "amount_base",
    "status",
    "decision",
    "decision_reason",
    "idempotency_key",
    "request_fingerprint",
    "provider",
    "provider_object_id",
    "result",
    "error_code",
    "error_message",
    "approved_by_id",
    "created_at",
    "completed_at",
)
APPROVAL_FIELDS = (
    "id",
    "action_id",
    "workspace_id",
    "required_roles",
    "reason",
    "status",
    "decided_by_id",
    "decided_role",
    "decided_at",
    "comment",
    "expires_at",
    "created_at",
)


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat() if timezone.is_aware(value) else value.isoformat()
    return json.loads(canonical_json(value)) if not isinstance(value, str | int | None) else value


def row_snapshot(row: Any, fields: Sequence[str]) -> dict[str, Any]:
    """The audited fields of ``row`` as plain JSON (works on historical models too)."""
    return {name: _plain(getattr(row, name)) for name in fields}


def action_snapshot(action: Any) -> dict[str, Any]:
    return row_snapshot(action, ACTION_FIELDS)


def approval_snapshot(approval: Any) -> dict[str, Any]:
    return row_snapshot(approval, APPROVAL_FIELDS)


@dataclass(frozen=True)
class Event:
    """One change to append: what happened, to which row, by whom, and the row as it is."""

    event: str
    subject_type: str
    subject_id: str
    data: dict[str, Any]
    actor_id: int | None = None


def action_event(event: str, action: Any, *, actor_id: int | None = None) -> Event:
    return Event(event, ACTION, str(action.pk), action_snapshot(action), actor_id)


def approval_event(event: str, approval: Any, *, actor_id: int | None = None) -> Event:
    return Event(event, APPROVAL, str(approval.pk), approval_snapshot(approval), actor_id)


def event_content(event: Event, *, workspace_id: int, at: datetime) -> str:
    """The canonical JSON hashed for one entry (its seq and prev_hash are hashed beside it)."""
    return canonical_json(
        {
            "workspace": workspace_id,
            "at": _plain(at),
            "event": event.event,
            "subject_type": event.subject_type,
            "subject_id": event.subject_id,
            "actor": event.actor_id,
            "data": event.data,
        }
    )


def _sha_sql(prev: str, seq: str, content: str) -> str:
    """``billing_app.audit_chain.entry_hash`` in PostgreSQL."""
    return (
        f"encode(sha256(convert_to(({prev}) || chr(10) || ({seq})::text || chr(10) || {content},"
        " 'UTF8')), 'hex')"
    )


def audit_append(*, workspace_id: int, events: Sequence[Event]) -> None:
    """Append ``events`` to the workspace's chain, in order, inside the caller's transaction.

    Must run in the transaction that makes the change (so the entry exists exactly when
    the change does). The head's upsert is the lock: concurrent appenders wait for it.
    """
    if not events:
        return
    at = timezone.now()
    contents = [event_content(e, workspace_id=workspace_id, at=at) for e in events]
    if connection.vendor == "postgresql":
        _append_postgresql(workspace_id, events, contents, at)
    else:
        _append_portable(workspace_id, events, contents, at)


def _append_postgresql(
    workspace_id: int, events: Sequence[Event], contents: list[str], at: datetime
) -> None:
    n = len(events)
    head, entry = AuditChainHead._meta.db_table, AuditEntry._meta.db_table
    params: dict[str, Any] = {"ws": workspace_id, "n": n, "at": at}
    first = GENESIS
    chained = "head.last_hash"
    for k, content in enumerate(contents, start=1):
        params[f"c{k}"] = content
        params[f"e{k}"] = events[k - 1].event
        params[f"t{k}"] = events[k - 1].subject_type
        params[f"i{k}"] = events[k - 1].subject_id
        first = entry_hash(prev_hash=first, seq=k, content=content)
        chained = _sha_sql(chained, f"head.seq + {k}", f"%(c{k})s::text")
    params["first"] = first
    selects, prev = [], "h.previous_hash"
    for k in range(1, n + 1):
        seq = f"h.seq - {n} + {k}"
        digest = _sha_sql(prev, seq, f"%(c{k})s::text")
        selects.append(
            f"SELECT %(ws)s, {seq}, %(e{k})s, %(t{k})s, %(i{k})s, %(c{k})s, {prev}, {digest}, "  # noqa: S608 - identifiers are ours, values bound
            "%(at)s FROM h"
        )
        prev = digest
    sql = (
        f"WITH h AS (INSERT INTO {head} AS head (workspace_id, seq, previous_hash, last_hash) "  # noqa: S608 - identifiers are ours, values bound
        "VALUES (%(ws)s, %(n)s, '', %(first)s) ON CONFLICT (workspace_id) DO UPDATE SET "
        f"seq = head.seq + %(n)s, previous_hash = head.last_hash, last_hash = {chained} "
        "RETURNING seq, previous_hash), "
        f"ins AS (INSERT INTO {entry} (workspace_id, seq, event, subject_type, subject_id, "
        f"content, prev_hash, hash, created_at) {' UNION ALL '.join(selects)} RETURNING 1) "
        "SELECT (SELECT COUNT(*) FROM ins)"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


def _append_portable(
    workspace_id: int, events: Sequence[Event], contents: list[str], at: datetime
) -> None:
    """Three statements: the head's upsert (the single writer's lock), the entries, the head."""
    n = len(events)
    head = AuditChainHead._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {head} (workspace_id, seq, previous_hash, last_hash) "  # noqa: S608 - identifiers are ours, values bound
            "VALUES (%s, %s, '', '') ON CONFLICT (workspace_id) DO UPDATE SET seq = seq + %s "
            "RETURNING seq, last_hash",
            [workspace_id, n, n],
        )
        end, prev = cursor.fetchone()
    start_prev, rows = prev, []
    for k, (event, content) in enumerate(zip(events, contents, strict=True)):
        seq = end - n + 1 + k
        digest = entry_hash(prev_hash=prev, seq=seq, content=content)
        rows.append(
            AuditEntry(
                workspace_id=workspace_id,
                seq=seq,
                event=event.event,
                subject_type=event.subject_type,
                subject_id=event.subject_id,
                content=content,
                prev_hash=prev,
                hash=digest,
                created_at=at,
            )
        )
        prev = digest
    AuditEntry.objects.bulk_create(rows)
    AuditChainHead.objects.filter(workspace_id=workspace_id).update(
        previous_hash=start_prev, last_hash=prev
    )


def audit_chain_backfill(
    *,
    workspace_id: int,
    entry_model: type[Model] = AuditEntry,
    head_model: type[Model] = AuditChainHead,
    action_model: type[Model] = BillingAction,
    approval_model: type[Model] = ApprovalRequest,
) -> int:
    """Give every action and approval request of the workspace that no entry covers one
    ``*.backfilled`` entry with its current snapshot, at the chain's end; returns how many.

    Used by migration 0011 (with its historical models) and by the demo's bulk writer.
    Run while nothing else appends (a migration, a seed)."""
    covered = set(
        entry_model.objects.filter(  # type: ignore[attr-defined]
            workspace_id=workspace_id, subject_type__in=[ACTION, APPROVAL]
        ).values_list("subject_type", "subject_id")
    )
    events: list[Event] = []
    actions = action_model.objects.filter(workspace_id=workspace_id).order_by("created_at", "pk")  # type: ignore[attr-defined]
    approvals = {
        a.action_id: a
        for a in approval_model.objects.filter(workspace_id=workspace_id)  # type: ignore[attr-defined]
    }
    for action in actions:
        if (ACTION, str(action.pk)) not in covered:
            events.append(action_event("action.backfilled", action))
        approval = approvals.get(action.pk)
        if approval is not None and (APPROVAL, str(approval.pk)) not in covered:
            events.append(approval_event("approval.backfilled", approval))
    if not events:
        return 0
    head, _ = head_model.objects.get_or_create(workspace_id=workspace_id)  # type: ignore[attr-defined]
    at = timezone.now()
    prev, seq, rows = head.last_hash, head.seq, []
    start_prev = prev
    for event in events:
        seq += 1
        content = event_content(event, workspace_id=workspace_id, at=at)
        digest = entry_hash(prev_hash=prev, seq=seq, content=content)
        rows.append(
            entry_model(
                workspace_id=workspace_id,
                seq=seq,
                event=event.event,
                subject_type=event.subject_type,
                subject_id=event.subject_id,
                content=content,
                prev_hash=prev,
                hash=digest,
                created_at=at,
            )
        )
        prev = digest
    entry_model.objects.bulk_create(rows, batch_size=500)  # type: ignore[attr-defined]
    head_model.objects.filter(workspace_id=workspace_id).update(  # type: ignore[attr-defined]
        seq=seq, previous_hash=start_prev, last_hash=prev
    )
    return len(rows)


# -- verification -------------------------------------------------------------------------


@dataclass(frozen=True)
class Finding:
    ok: bool
    entries: int
    head_seq: int
    head_hash: str
    first_bad: str = ""
    reason: str = ""


def _entries(workspace: Workspace) -> list[dict[str, Any]]:
    rows = (
        AuditEntry.objects.filter(workspace=workspace)
        .order_by("seq", "pk")
        .values("seq", "event", "subject_type", "subject_id", "content", "prev_hash", "hash")
    )
    return [dict(row) for row in rows]


def _chain_break(entries: list[dict[str, Any]], anchor: tuple[int, str] | None) -> Finding | None:
    found: ChainBreak | None = chain_verify(entries, anchor=anchor)
    if found is not None:
        return Finding(False, len(entries), 0, "", f"entry {found.seq}", found.reason)
    for entry in entries:  # the columns an admin filters on say what the hashed content says
        content = json.loads(entry["content"])
        if (content.get("event"), content.get("subject_type"), content.get("subject_id")) != (
            entry["event"],
            entry["subject_type"],
            entry["subject_id"],
        ):
            return Finding(
                False, len(entries), 0, "", f"entry {entry['seq']}", "columns differ from content"
            )
    return None


def _rows_break(workspace: Workspace, entries: list[dict[str, Any]]) -> tuple[str, str] | None:
    """Each action and approval request equals its latest snapshot; every snapshot has its row."""
    latest: dict[tuple[str, str], tuple[int, Any]] = {}
    for entry in entries:
        if entry["subject_type"] in (ACTION, APPROVAL):
            key = (entry["subject_type"], entry["subject_id"])
            latest[key] = (entry["seq"], json.loads(entry["content"])["data"])
    live: Iterable[tuple[str, Any, dict[str, Any]]] = [
        *(
            (ACTION, a.pk, action_snapshot(a))
            for a in BillingAction.objects.filter(workspace=workspace).order_by("created_at", "pk")
        ),
        *(
            (APPROVAL, a.pk, approval_snapshot(a))
            for a in ApprovalRequest.objects.filter(workspace=workspace).order_by(
                "created_at", "pk"
            )
        ),
    ]
    for subject_type, pk, snapshot in live:
        recorded = latest.pop((subject_type, str(pk)), None)
        if recorded is None:
            return f"{subject_type} {pk}", "no audit entry records this row"
        if canonical_json(recorded[1]) != canonical_json(snapshot):
            changed = sorted(k for k in snapshot if snapshot.get(k) != recorded[1].get(k))
            return (
                f"{subject_type} {pk}",
                f"differs from its audit entry {recorded[0]}: {', '.join(changed)}",
            )
    for (subject_type, subject_id), (seq, _) in sorted(latest.items(), key=lambda i: i[1][0]):
        return f"{subject_type} {subject_id}", f"deleted (last recorded in entry {seq})"
    return None


def audit_check(*, workspace: Workspace) -> Finding:
    """Walk the workspace's chain and its audited rows; the first mismatch, if any."""
    last_ok = (
        AuditVerification.objects.filter(workspace=workspace, ok=True, head_seq__gt=0)
        .order_by("-verified_at", "-pk")
        .first()
    )
    anchor = (last_ok.head_seq, last_ok.head_hash) if last_ok else None
    entries = _entries(workspace)
    broken = _chain_break(entries, anchor)
    if broken is not None:
        return broken
    head = AuditChainHead.objects.filter(workspace=workspace).first()
    end_seq = entries[-1]["seq"] if entries else 0
    end_hash = entries[-1]["hash"] if entries else GENESIS
    if head is not None and (head.seq, head.last_hash) != (end_seq, end_hash):
        if head.seq > end_seq:
            reason = f"entries after {end_seq} are missing (the chain's end is {head.seq})"
            return Finding(False, len(entries), 0, "", f"entry {end_seq + 1}", reason)
        return Finding(False, len(entries), 0, "", f"entry {end_seq}", "the chain's end moved")
    row = _rows_break(workspace, entries)
    if row is not None:
        return Finding(False, len(entries), end_seq, end_hash, row[0], row[1])
    return Finding(True, len(entries), end_seq, end_hash)


def audit_verify(*, workspace: Workspace, run_by: Any = None) -> AuditVerification:
    """Check the workspace's chain and record the result (the dashboard shows the last)."""
    finding = audit_check(workspace=workspace)
    with transaction.atomic():
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


def audit_last_verification(*, workspace: Workspace) -> AuditVerification | None:
    return (
        AuditVerification.objects.filter(workspace=workspace)
        .order_by("-verified_at", "-pk")
        .first()
    )


# -- role and matrix changes made in admin -------------------------------------------------

# Never copied into the chain: write-only secrets (they are encrypted at rest).
_SECRET_HINTS = ("secret", "password", "token", "encryption")


def _admin_fields(obj: Model) -> dict[str, Any]:
    return {
        f.attname: _plain(getattr(obj, f.attname))
        for f in obj._meta.concrete_fields
        if not any(hint in f.name for hint in _SECRET_HINTS)
    }


def audit_admin_change(*, obj: Model, change: str, message: Any, user: Any) -> None:
    """Append a role or matrix change made in admin (``admin.added|changed|deleted``).

    Runs inside the admin's own transaction (its change and delete views are atomic), so
    the entry commits with the change. A row that belongs to no workspace (the default
    matrix) has no chain and is left to Django's admin log.
    """
    workspace_id = obj.pk if isinstance(obj, Workspace) else getattr(obj, "workspace_id", None)
    if workspace_id is None:
        return
    data = {
        "model": obj._meta.label_lower,
        "repr": str(obj)[:200],
        "message": _plain(message),
        "fields": {} if isinstance(obj, Workspace) else _admin_fields(obj),
    }
    audit_append(
        workspace_id=workspace_id,
        events=[
            Event(
                f"admin.{change}",
                ADMIN,
                f"{obj._meta.label_lower}:{obj.pk}",
                data,
                getattr(user, "pk", None),
            )
        ],
    )
