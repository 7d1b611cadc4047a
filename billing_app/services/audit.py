"""Appending to and backfilling the tamper-evident audit chain (docs/audit.md);
verifying it is ``services.audit_verify``.

Design: actions and approval requests change after they are written, so the chain holds
append-only ``AuditEntry`` rows — one per audited change, with the row's snapshot — rather
than hashes of mutable rows. Each entry's hash covers the previous entry's hash, its
number and its canonical content (``billing_app.audit_chain``); one chain per workspace.
``audit_verify.audit_check`` walks the chain, then compares each action and approval request with its
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
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django.core.exceptions import FieldDoesNotExist
from django.db import IntegrityError, connection
from django.db.models import Model
from django.utils import timezone

from ..audit_chain import GENESIS, canonical_json, entry_hash
from ..models import ApprovalRequest, AuditChainHead, AuditEntry, BillingAction, Workspace

ACTION, APPROVAL, ADMIN = "billing_action", "approval_request", "admin"

logger = logging.getLogger(__name__)


class AuditChainBroken(RuntimeError):
    """The chain's head is behind its entries (deleted or reset): appending would fork it.

    Raised instead of writing anything; ``verify_audit`` names the chain's last entry."""


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


def json_plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat() if timezone.is_aware(value) else value.isoformat()
    return json.loads(canonical_json(value)) if not isinstance(value, str | int | None) else value


def row_snapshot(row: Any, fields: Sequence[str]) -> dict[str, Any]:
    """The audited fields of ``row`` as plain JSON (works on historical models too)."""
    return {name: json_plain(getattr(row, name)) for name in fields}


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
            "at": json_plain(at),
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
    try:
        if connection.vendor == "postgresql":
            _append_postgresql(workspace_id, events, contents, at)
        else:
            _append_portable(workspace_id, events, contents, at)
    except IntegrityError as exc:
        # The entries' (workspace, seq) is unique: a head that restarted below its entries
        # (deleted, or reset) makes the new seq collide. Nothing is written (the caller's
        # transaction is rolled back); the chain is not forked or renumbered.
        if "uniq_audit_entry_seq" not in str(exc) and "auditentry.seq" not in str(exc):
            raise
        logger.error(
            "audit chain of workspace %s: its head is behind its entries (deleted or reset);"
            " appending refused — run verify_audit",
            workspace_id,
        )
        raise AuditChainBroken(
            f"the audit chain's head of workspace {workspace_id} is behind its entries"
        ) from exc


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
    rows, last = _chained_entries(
        AuditEntry,
        workspace_id=workspace_id,
        first_seq=end - n + 1,
        prev_hash=prev,
        events=events,
        contents=contents,
        at=at,
    )
    AuditEntry.objects.bulk_create(rows)
    AuditChainHead.objects.filter(workspace_id=workspace_id).update(
        previous_hash=prev, last_hash=last
    )


def _chained_entries(
    entry_model: type[Model],
    *,
    workspace_id: int,
    first_seq: int,
    prev_hash: str,
    events: Sequence[Event],
    contents: Sequence[str],
    at: datetime,
) -> tuple[list[Any], str]:
    """The unsaved entries for ``events`` from ``first_seq`` on, each hashed over the one
    before it (the first over ``prev_hash``), and the last entry's hash."""
    rows = []
    for seq, (event, content) in enumerate(zip(events, contents, strict=True), start=first_seq):
        digest = entry_hash(prev_hash=prev_hash, seq=seq, content=content)
        rows.append(
            entry_model(
                workspace_id=workspace_id,
                seq=seq,
                event=event.event,
                subject_type=event.subject_type,
                subject_id=event.subject_id,
                content=content,
                prev_hash=prev_hash,
                hash=digest,
                created_at=at,
            )
        )
        prev_hash = digest
    return rows, prev_hash


def audit_chain_backfill(
    *,
    workspace_id: int,
    entry_model: type[Model] = AuditEntry,
    head_model: type[Model] = AuditChainHead,
    action_model: type[Model] = BillingAction,
    approval_model: type[Model] = ApprovalRequest,
    action_fields: Sequence[str] = ACTION_FIELDS,
    approval_fields: Sequence[str] = APPROVAL_FIELDS,
) -> int:
    """Give every action and approval request of the workspace that no entry covers one
    ``*.backfilled`` entry with its current snapshot, at the chain's end; returns how many.

    Used by migration 0011 (with its historical models and its own frozen copy of the
    audited fields, so that a later change to them cannot break it) and by the demo's
    bulk writer. Run while nothing else appends (a migration, a seed)."""
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
            snapshot = row_snapshot(action, action_fields)
            events.append(Event("action.backfilled", ACTION, str(action.pk), snapshot))
        approval = approvals.get(action.pk)
        if approval is not None and (APPROVAL, str(approval.pk)) not in covered:
            snapshot = row_snapshot(approval, approval_fields)
            events.append(Event("approval.backfilled", APPROVAL, str(approval.pk), snapshot))
    if not events:
        return 0
    head, _ = head_model.objects.get_or_create(workspace_id=workspace_id)  # type: ignore[attr-defined]
    at = timezone.now()
    rows, last = _chained_entries(
        entry_model,
        workspace_id=workspace_id,
        first_seq=head.seq + 1,
        prev_hash=head.last_hash,
        events=events,
        contents=[event_content(e, workspace_id=workspace_id, at=at) for e in events],
        at=at,
    )
    entry_model.objects.bulk_create(rows, batch_size=500)  # type: ignore[attr-defined]
    head_model.objects.filter(workspace_id=workspace_id).update(  # type: ignore[attr-defined]
        seq=head.seq + len(rows), previous_hash=head.last_hash, last_hash=last
    )
    return len(rows)


# -- role and matrix changes made in admin -------------------------------------------------

# Never copied into the chain: write-only secrets (they are encrypted at rest).
_SECRET_HINTS = ("secret", "password", "token", "encryption")


def _admin_fields(obj: Model) -> dict[str, Any]:
    fields = {}
    for f in obj._meta.concrete_fields:
        value = getattr(obj, f.attname)
        if any(hint in f.name for hint in _SECRET_HINTS) or hasattr(value, "resolve_expression"):
            continue  # a secret, or an F() not read back (role_mapping_version's bump)
        fields[f.attname] = json_plain(value)
    return fields


# Set on a row by the admin before it saves a change (``admin.audit.AuditedChangesMixin``):
# the workspace the row belonged to, so that moving it is on record in the old chain too.
PREVIOUS_WORKSPACE = "_audit_previous_workspace_id"
_UNSET = object()


def _workspace_chains(workspace_id: int | None) -> list[int]:
    if workspace_id is not None:
        return [workspace_id]
    return list(
        Workspace.objects.filter(is_active=True).order_by("pk").values_list("pk", flat=True)
    )


def admin_change_workspaces(obj: Model) -> list[int]:
    """The chains an admin change of ``obj`` is appended to.

    A workspace's own row or a row of one workspace: that workspace's chain. A
    product-default row (matrix cell or approval route with no workspace): every active
    workspace's chain — the default is what each of them is provisioned from, so its
    change is on record in every chain before a copy can bring it in. A row moved to
    another workspace (or to or from the product default): the chains of both, the one it
    left and the one it joined. Other rows: none.
    """
    if isinstance(obj, Workspace):
        return [obj.pk]
    try:
        obj._meta.get_field("workspace")
    except FieldDoesNotExist:
        return []
    workspace_id = getattr(obj, "workspace_id", None)
    chains = _workspace_chains(workspace_id)
    previous = getattr(obj, PREVIOUS_WORKSPACE, _UNSET)
    if previous is not _UNSET and previous != workspace_id:
        chains = sorted(set(chains) | set(_workspace_chains(previous)))  # type: ignore[arg-type]
    return chains


@dataclass(frozen=True)
class AdminChange:
    """One row added, changed or deleted in admin; ``pk`` for a row already deleted."""

    obj: Model
    change: str  # added | changed | deleted
    message: Any
    pk: Any = None


def _admin_event(item: AdminChange, user: Any) -> Event:
    obj, pk = item.obj, item.pk if item.pk is not None else item.obj.pk
    fields = _admin_fields(obj)
    if obj._meta.pk is not None and item.pk is not None:
        fields[obj._meta.pk.attname] = json_plain(item.pk)
    data = {
        "model": obj._meta.label_lower,
        "repr": str(obj)[:200],
        "message": json_plain(message_text(item.message)),
        "fields": fields,
    }
    return Event(
        f"admin.{item.change}",
        ADMIN,
        f"{obj._meta.label_lower}:{pk}",
        data,
        getattr(user, "pk", None),
    )


def message_text(message: Any) -> Any:
    """Django's change message (a list of dicts, or text) as plain JSON."""
    return message if isinstance(message, str | list | dict) else str(message)


def audit_admin_changes(*, changes: Sequence[AdminChange], user: Any) -> None:
    """Append role and matrix changes made in admin (``admin.added|changed|deleted``).

    Runs inside the admin's own transaction (its change, delete and action views are
    atomic), so the entries commit with the changes. One append per workspace, the
    workspaces in ``pk`` order so that two admins' transactions lock the chains' heads
    in the same order."""
    by_workspace: dict[int, list[Event]] = {}
    for item in changes:
        event = _admin_event(item, user)
        for workspace_id in admin_change_workspaces(item.obj):
            by_workspace.setdefault(workspace_id, []).append(event)
    for workspace_id in sorted(by_workspace):
        audit_append(workspace_id=workspace_id, events=by_workspace[workspace_id])


def audit_admin_change(*, obj: Model, change: str, message: Any, user: Any) -> None:
    """One role or matrix change made in admin (see ``audit_admin_changes``)."""
    audit_admin_changes(changes=[AdminChange(obj, change, message)], user=user)


# -- who may act: a user's groups, permissions and flags changed in admin -------------------

# A user's access as the role checks read it: the flags, the groups (a workspace's role
# groups carry its guardian permissions) and the global permissions (admin's own).
ACCESS_FLAGS = ("is_active", "is_staff", "is_superuser")


def user_access(user: Any) -> dict[str, Any]:
    if user is None or user.pk is None:
        return {}
    return {
        **{flag: getattr(user, flag) for flag in ACCESS_FLAGS},
        "groups": sorted(user.groups.values_list("name", flat=True)),
        "user_permissions": sorted(
            f"{app}.{codename}"
            for app, codename in user.user_permissions.values_list(
                "content_type__app_label", "codename"
            )
        ),
    }


# What an added user had before and a deleted one has after: no access anywhere.
NO_ACCESS: dict[str, Any] = {
    "is_active": False,
    "is_staff": False,
    "is_superuser": False,
    "groups": [],
    "user_permissions": [],
}


def _grants_everywhere(access: dict[str, Any]) -> bool:
    return bool(
        access.get("is_staff") or access.get("is_superuser") or access.get("user_permissions")
    )


def _role_group_workspaces(names: set[str]) -> set[int]:
    """The workspaces whose role groups (``<slug> · <Role>``, ``roles.role_group_name``) are named."""
    slugs = {name.split(" · ", 1)[0] for name in names if " · " in name}
    return set(Workspace.objects.filter(slug__in=slugs).values_list("pk", flat=True))


def audit_user_access_change(
    *, user_obj: Any, change: str, before: dict[str, Any], after: dict[str, Any], actor: Any
) -> None:
    """Append a change of who may act, made to a user in admin.

    Joining or leaving a workspace's role group grants or takes that role's guardian
    permissions in the workspace: the entry goes to that workspace's chain. A flag or a
    global permission (an active superuser holds every permission in every workspace)
    goes to every active workspace's chain; so does activating or deactivating a user who
    holds a flag or a permission (with role groups only: those workspaces' chains). A user
    added or deleted with no access at all (active, no flag, no group, no permission) is
    in no chain: nothing changed in who may act. Nothing is appended when nothing changed."""
    if before == after:
        return
    was, now = before or NO_ACCESS, after or NO_ACCESS
    changed_groups = set(was.get("groups", ())) ^ set(now.get("groups", ()))
    if was.get("is_active") != now.get("is_active"):
        changed_groups |= set(was.get("groups", ())) | set(now.get("groups", ()))
    workspace_ids = _role_group_workspaces(changed_groups)
    everywhere = any(was.get(k) != now.get(k) for k in ("is_staff", "is_superuser"))
    everywhere |= was.get("user_permissions") != now.get("user_permissions")
    if was.get("is_active") != now.get("is_active"):
        everywhere |= _grants_everywhere(was) or _grants_everywhere(now)
    if everywhere:
        workspace_ids |= set(Workspace.objects.filter(is_active=True).values_list("pk", flat=True))
    if not workspace_ids:
        return
    event = Event(
        f"admin.{change}",
        ADMIN,
        f"auth.user:{user_obj.pk}",
        {"model": "auth.user", "repr": str(user_obj)[:200], "before": before, "after": after},
        getattr(actor, "pk", None),
    )
    for workspace_id in sorted(workspace_ids):
        audit_append(workspace_id=workspace_id, events=[event])
