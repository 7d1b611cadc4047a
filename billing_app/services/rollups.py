"""Daily roll-ups of tickets, actions and approvals, kept current at write time (issue 15).

The dashboard and the monthly report sum ``DailyRollup`` rows of the month instead of
aggregating its tickets and actions. Every record contributes to exactly one
(UTC day, family, key) with a vector of integer measures, and ``RollupSource`` keeps
that contribution. A writer calls ``rollups_tickets_changed`` / ``rollups_action_changed``
in its own transaction after changing the rows; the function recomputes the records'
contributions from the database, and applies *new − stored* to ``DailyRollup`` with one
``INSERT … ON CONFLICT DO UPDATE SET x = x + excluded.x``. Calling it twice, or for a
record that did not change, adds nothing.

Families, keys and measures (``MEASURES`` names the columns):

* ``ticket`` — key ``category|state``; state is the dashboard's one-of-five per ticket
  (not billing / escalated / auto-resolved / resolved / open), which depends on the
  actions on the ticket: an action write recomputes its ticket too.
* ``action`` — key ``label|kind|status|decision|direction|reason|path|mrr_currency|channel``
  (direction only for plan changes; reason and approval path only for refunds; the MRR
  currency only for the kinds that record MRR; channel ``agent`` or ``self_service``,
  ``BillingAction.channel``: the agents' figures count only ``agent``, the refund and
  financial figures both; a key written before the channel existed has eight parts and
  reads as ``agent``, as those actions are). A refund a customer's self-service request
  made within the self-service limit has the approval path ``self_service``; one sent to
  agents, its approver's. Actions refused as not permitted are in
  no figure and contribute nothing. ``label`` bands credits with the workspace's matrix
  limits *when the action is written*; after a limit change, ``rollups_rebuild`` re-bands
  the history.
* ``approval`` — key ``decided`` / ``pending``, on the request's creation day.
* ``call`` — provider calls, key ``operation|outcome``, Σ ``duration_ms``: counted by the
  provider layer's recorder as it inserts each call (``models.rollups``); calls are never
  updated, so they need no sources.

Concurrency: the writer holds the action's row lock (it just wrote it); the tickets an
action touches are locked in a statement of their own before their state is read, so
the read's snapshot includes any concurrent writer that held them (PostgreSQL, READ
COMMITTED). Roll-up rows are only ever incremented in SQL, never read and rewritten.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any, cast

from django.db import connection, transaction
from django.db.models import CharField, Count, F, Q, QuerySet, Sum, Value
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Cast, Coalesce, TruncDate
from django.db.models.sql.subqueries import UpdateQuery

from ..catalog import ActionKind, Role
from ..models import (
    BillingAction,
    DailyRollup,
    HelpdeskTicket,
    ProviderCall,
    RollupSource,
    Workspace,
)
from ..models.rollups import MEASURE_FIELDS, PROVIDER_CALL_FAMILY, rollup_increment
from ..selectors.dashboard.actions import credit_bands
from ..selectors.dashboard.tickets import (
    AUTO_RESOLVED,
    CATEGORY_ACTION_KINDS,
    ESCALATED,
    RESOLVED_STATUSES,
    ticket_state,
)

TICKET, ACTION, APPROVAL = "ticket", "action", "approval"
FAMILIES = (TICKET, ACTION, APPROVAL)
SEP = "|"
# What each measure column holds, per family (``count`` is always the number of records).
MEASURES: dict[str, dict[str, str]] = {
    TICKET: {
        "m1": "resolved",
        "m2": "resolution_sum",
        "m3": "resolution_n",
        "m4": "csat_sum",
        "m5": "csat_n",
        "m6": "reopens",
    },
    ACTION: {
        "m1": "time_ms",  # duration_ms of executed (succeeded / failed) actions
        "m2": "timed",  # executed actions with a duration
        "m3": "handled",  # actions with a measurable handling time
        "m4": "handling_us",  # their handling time, microseconds
        "m5": "amount",  # Σ amount_base
        "m6": "unconverted",  # actions without an amount_base
        "m7": "mrr",  # Σ result.mrr_delta (minor units of mrr_currency)
        "m8": "mrr_recorded",  # actions that recorded an mrr_delta
    },
    APPROVAL: {"m1": "decision_us"},  # created → decided, microseconds
}
CHUNK = 5000  # rows per fetch and per insert when rebuilding
REFUND_KINDS = (ActionKind.ISSUE_REFUND.value, ActionKind.REFUND_DUPLICATE_CHARGE.value)
MRR_KINDS = (
    ActionKind.CHANGE_PLAN.value,
    ActionKind.ADJUST_SEATS.value,
    ActionKind.APPLY_DISCOUNT.value,
)


@dataclass(frozen=True)
class Contribution:
    """What one record adds: where (day, key) and how much (measures, ``count`` first)."""

    workspace_id: int
    family: str
    source_id: str
    day: date
    key: str
    measures: tuple[int, ...]


def _day(moment: datetime) -> date:
    return moment.astimezone(UTC).date()


def _part(value: Any, limit: int = 40) -> str:
    return str(value or "").replace(SEP, "/")[:limit]


def _measures(count: int = 1, **named: int) -> tuple[int, ...]:
    return (count, *(int(named.get(f"m{i}", 0) or 0) for i in range(1, 9)))


def _micro(start: datetime, end: datetime) -> int:
    delta = end - start
    return (delta.days * 86400 + delta.seconds) * 1_000_000 + delta.microseconds


# --- tickets -----------------------------------------------------------------------------------


def _ticket_rows(workspace: Workspace, tickets: QuerySet[HelpdeskTicket]) -> QuerySet:
    return (
        tickets.annotate(state=ticket_state(workspace))
        .values(
            "pk",
            "workspace_id",
            "created_at",
            "category",
            "state",
            "status",
            "solved_at",
            "resolution_seconds",
            "csat_score",
            "reopens",
        )
        .order_by()
    )


def ticket_contribution(row: Mapping[str, Any]) -> Contribution:
    resolved = row["solved_at"] is not None or row["status"] in RESOLVED_STATUSES
    seconds = row["resolution_seconds"] if resolved else None
    return Contribution(
        workspace_id=row["workspace_id"],
        family=TICKET,
        source_id=str(row["pk"]),
        day=_day(row["created_at"]),
        key=f"{row['category'] or ''}{SEP}{row['state']}",
        measures=_measures(
            m1=int(resolved),
            m2=seconds or 0,
            m3=int(seconds is not None),
            m4=row["csat_score"] or 0,
            m5=int(row["csat_score"] is not None),
            m6=row["reopens"] or 0,
        ),
    )


# --- actions and approvals ---------------------------------------------------------------------


def _text(key: str, field: str) -> Coalesce:
    return Coalesce(KeyTextTransform(key, field), Value(""), output_field=CharField())


def _action_rows(actions: QuerySet[BillingAction]) -> QuerySet:
    return (
        actions.exclude(status=BillingAction.Status.NOT_PERMITTED)
        .annotate(
            result_direction=_text("direction", "result"),
            params_direction=_text("direction", "params"),
            params_reason=_text("reason", "params"),
            mrr_currency=_text("mrr_currency", "result"),
            mrr_delta=KeyTextTransform("mrr_delta", "result"),
        )
        .values(
            "pk",
            "workspace_id",
            "created_at",
            "kind",
            "status",
            "decision",
            "amount_base",
            "duration_ms",
            "handling_started_at",
            "completed_at",
            "result_direction",
            "params_direction",
            "params_reason",
            "mrr_currency",
            "mrr_delta",
            "approval__pk",
            "approval__status",
            "approval__decided_role",
            "approval__created_at",
            "approval__decided_at",
            "ticket_id",
            "installation_id",
            "channel",
            base_currency=F("workspace__base_currency"),
        )
        .order_by()
    )


def _credit_label(amount: int | None, bands: tuple[int, int]) -> str:
    small, large = bands
    if amount is None or amount < small:
        return "apply_credit_small"
    return "apply_credit_medium" if amount <= large else "apply_credit_large"


def _refund_path(row: Mapping[str, Any]) -> str:
    approval, role = row["approval__status"], row["approval__decided_role"]
    status = row["status"]
    if row["decision"] == BillingAction.Decision.ALLOW:
        # Within the agent's own limits, or a customer's request within the workspace's
        # self-service limit (no agent saw it).
        return "self_service" if row["channel"] == BillingAction.Channel.SELF_SERVICE else "auto"
    if approval == "approved":
        return {Role.MANAGER: "manager", Role.VP: "vp"}.get(role, "other_approver")
    if approval == "denied" or status == BillingAction.Status.DENIED:
        return "denied"
    if approval == "expired" or status == BillingAction.Status.EXPIRED:
        return "expired"
    return "pending"


def _mrr_delta(text: str | None) -> int | None:
    if text in (None, "", "null"):
        return None
    try:
        return int(Decimal(str(text)).quantize(Decimal(1), rounding=ROUND_HALF_UP))
    except (InvalidOperation, ValueError):
        return None


def action_contribution(row: Mapping[str, Any], bands: tuple[int, int]) -> Contribution:
    kind, status, decision = row["kind"], row["status"], row["decision"]
    direction = ""
    if kind == ActionKind.CHANGE_PLAN:
        direction = row["result_direction"] or row["params_direction"] or ""
    if kind == ActionKind.APPLY_CREDIT:
        label = _credit_label(row["amount_base"], bands)
    elif kind == ActionKind.CHANGE_PLAN and direction in ("upgrade", "downgrade"):
        label = f"plan_{direction}"
    else:
        label = kind
    reason = path = ""
    if kind in REFUND_KINDS:
        reason = "duplicate" if kind == ActionKind.REFUND_DUPLICATE_CHARGE else "other"
        if kind != ActionKind.REFUND_DUPLICATE_CHARGE and row["params_reason"]:
            reason = row["params_reason"]
        path = _refund_path(row)
    mrr_currency = (row["mrr_currency"] or "").upper() if kind in MRR_KINDS else ""
    mrr = _mrr_delta(row["mrr_delta"]) if kind in MRR_KINDS else None
    executed = status in (BillingAction.Status.SUCCEEDED, BillingAction.Status.FAILED)
    timed = executed and row["duration_ms"] is not None
    created, started = row["created_at"], row["handling_started_at"]
    end = created if decision == BillingAction.Decision.APPROVAL else row["completed_at"]
    end = end or created
    handled = started is not None and end >= started
    channel = row["channel"] or BillingAction.Channel.AGENT
    parts = (label, kind, status, decision, direction, reason, path, mrr_currency, channel)
    return Contribution(
        workspace_id=row["workspace_id"],
        family=ACTION,
        source_id=str(row["pk"]),
        day=_day(created),
        key=SEP.join(_part(p) for p in parts),
        measures=_measures(
            m1=row["duration_ms"] if timed else 0,
            m2=int(timed),
            m3=int(handled),
            m4=_micro(started, end) if handled else 0,
            m5=row["amount_base"] or 0,
            m6=int(row["amount_base"] is None),
            m7=mrr or 0,
            m8=int(mrr is not None),
        ),
    )


def approval_contribution(row: Mapping[str, Any]) -> Contribution | None:
    if row["approval__pk"] is None:
        return None
    created, decided = row["approval__created_at"], row["approval__decided_at"]
    return Contribution(
        workspace_id=row["workspace_id"],
        family=APPROVAL,
        source_id=str(row["approval__pk"]),
        day=_day(created),
        key="pending" if decided is None else "decided",
        measures=_measures(m1=0 if decided is None else _micro(created, decided)),
    )


# --- applying contributions --------------------------------------------------------------------


def _rollup_upsert(deltas: Mapping[tuple[int, date, str, str], list[int]]) -> None:
    rollup_increment(connection, deltas)


def _apply(
    *,
    families: Iterable[str],
    source_ids: Iterable[str],
    new: Iterable[Contribution],
    stored: list[RollupSource] | None = None,
) -> None:
    """Replace the stored contributions of ``source_ids`` (in ``families``) by ``new``
    (``stored``: those contributions, when the caller read them already)."""
    ids = list(dict.fromkeys(source_ids))
    if not ids:
        return
    if stored is None:
        stored = list(RollupSource.objects.filter(family__in=list(families), source_id__in=ids))
    wanted = set(ids)
    stored_by = {(s.family, s.source_id): s for s in stored if s.source_id in wanted}
    new = list(new)
    fresh = {(c.family, c.source_id): c for c in new}
    deltas: dict[tuple[int, date, str, str], list[int]] = defaultdict(
        lambda: [0] * len(MEASURE_FIELDS)
    )
    changed: list[RollupSource] = []
    for ident, source in stored_by.items():
        values = [getattr(source, f) for f in MEASURE_FIELDS]
        c = fresh.get(ident)
        if c is not None and (c.day, c.key, c.measures) == (source.day, source.key, tuple(values)):
            fresh.pop(ident)  # unchanged: nothing to do (a re-processed write)
            continue
        slot = deltas[(source.workspace_id, source.day, source.family, source.key)]
        for i, v in enumerate(values):
            slot[i] -= v
    for c in fresh.values():
        slot = deltas[(c.workspace_id, c.day, c.family, c.key)]
        for i, v in enumerate(c.measures):
            slot[i] += v
        changed.append(_source(c))
    kept = {(c.family, c.source_id) for c in new}
    gone = [ident for ident in stored_by if ident not in kept]
    _rollup_upsert(deltas)
    if changed:
        RollupSource.objects.bulk_create(
            changed,
            update_conflicts=True,
            unique_fields=["family", "source_id"],
            update_fields=["day", "key", *MEASURE_FIELDS],
        )
    if gone:
        q = Q()
        for family, source_id in gone:
            q |= Q(family=family, source_id=source_id)
        RollupSource.objects.filter(q).delete()


def _source(c: Contribution) -> RollupSource:
    return RollupSource(
        workspace_id=c.workspace_id,
        family=c.family,
        source_id=c.source_id,
        day=c.day,
        key=c.key,
        **dict(zip(MEASURE_FIELDS, c.measures, strict=True)),
    )


# --- what writers call -------------------------------------------------------------------------


def rollups_tickets_changed(*, workspace: Workspace, tickets: QuerySet[HelpdeskTicket]) -> None:
    """Bring the roll-ups up to date with ``tickets`` (of ``workspace``); call it in the
    writer's transaction after writing them (the writer's upsert holds their row locks)."""
    with transaction.atomic(savepoint=False):
        # The stored contributions first, locked: an action's upkeep moves a ticket's key
        # from the stored row (``_ticket_move``) under the same lock, so either it waits
        # for this writer or this read (a later statement) sees its action committed.
        ids = tickets.annotate(sid=Cast("pk", CharField(max_length=40))).values("sid")
        locked = list(
            RollupSource.objects.select_for_update().filter(family=TICKET, source_id__in=ids)
        )
        new = [ticket_contribution(row) for row in _ticket_rows(workspace, tickets)]
        _apply(families=[TICKET], source_ids=[c.source_id for c in new], new=new, stored=locked)


def rollups_action_changed(*, action_id: Any) -> None:
    """Bring the roll-ups up to date with one action, its approval request and the tickets
    it was taken on (call in the writer's transaction, after the write). An action refused
    as not permitted is in no figure: nothing to do."""
    with transaction.atomic(savepoint=False):
        row = _action_rows(BillingAction.objects.filter(pk=action_id)).first()
        if row is None:
            return
        bands = (0, 0)
        if row["kind"] == ActionKind.APPLY_CREDIT:
            workspace = Workspace(pk=row["workspace_id"], base_currency=row["base_currency"])
            bands = credit_bands(workspace)
        new = [action_contribution(row, bands)]
        approval = approval_contribution(row)
        sources = [str(row["pk"])]
        if approval is not None:
            new.append(approval)
            sources.append(approval.source_id)
        _apply(families=[ACTION, APPROVAL], source_ids=sources, new=new)
        if row["ticket_id"] and _moves_ticket(row):
            _action_tickets_changed(row["workspace_id"], row["ticket_id"], row["installation_id"])


def _moves_ticket(row: Mapping[str, Any]) -> bool:
    """Whether this action can be what files its ticket as escalated (it needed approval)
    or auto-resolved (it succeeded, taken directly) — the only two ways an action enters a
    ticket's state (``selectors.dashboard.tickets.ticket_predicates``). An action never
    leaves either (a decision is never changed, a success never undone), so any other
    write leaves the ticket where it is."""
    if row["decision"] == BillingAction.Decision.APPROVAL:
        return True
    return (
        row["decision"] == BillingAction.Decision.ALLOW
        and row["status"] == BillingAction.Status.SUCCEEDED
    )


def _action_tickets_changed(workspace_id: int, ticket_id: str, installation_id: int | None) -> None:
    tickets = HelpdeskTicket.objects.filter(workspace_id=workspace_id, external_id=ticket_id)
    if installation_id is not None:
        tickets = tickets.filter(installation_id=installation_id)
    ids = list(tickets.order_by("pk").select_for_update().values_list("pk", flat=True))
    if ids:
        rollups_tickets_changed(
            workspace=Workspace(pk=workspace_id),
            tickets=HelpdeskTicket.objects.filter(pk__in=ids),
        )


# --- rebuilding from the raw rows --------------------------------------------------------------


SOURCE_COLUMNS = ("workspace_id", "family", "source_id", "day", "key", *MEASURE_FIELDS)


def _sources_insert(contributions: Iterable[Contribution]) -> int:
    """Insert fresh ``RollupSource`` rows (a rebuild's): COPY on PostgreSQL, batched INSERTs
    elsewhere — the ORM's per-field preparation costs more than the rest of a rebuild."""
    table = connection.ops.quote_name(RollupSource._meta.db_table)
    columns = ", ".join(connection.ops.quote_name(c) for c in SOURCE_COLUMNS)
    rows = (
        (c.workspace_id, c.family, c.source_id, c.day, c.key, *c.measures) for c in contributions
    )
    count = 0
    marks = ", ".join(["%s"] * len(SOURCE_COLUMNS))
    sql = f"INSERT INTO {table} ({columns}) VALUES ({marks})"  # noqa: S608 - ours
    # Batches: the contributions are read from this connection too, so a COPY (which holds
    # the connection until it ends) never spans a read.
    batch: list[tuple[Any, ...]] = []
    for row in rows:
        batch.append(row)
        if len(batch) >= CHUNK:
            count += _sources_write(batch, table=table, columns=columns, sql=sql)
            batch = []
    if batch:
        count += _sources_write(batch, table=table, columns=columns, sql=sql)
    return count


def _sources_write(batch: list[tuple[Any, ...]], *, table: str, columns: str, sql: str) -> int:
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            with cursor.cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
                for row in batch:
                    copy.write_row(row)
        else:
            adapt = connection.ops.adapt_datefield_value
            cursor.executemany(sql, [(*r[:3], adapt(r[3]), *r[4:]) for r in batch])
    return len(batch)


def _all_contributions(workspace: Workspace) -> Iterator[Contribution]:
    tickets = HelpdeskTicket.objects.filter(workspace=workspace)
    for row in _ticket_rows(workspace, tickets).iterator(chunk_size=CHUNK):
        yield ticket_contribution(row)
    bands = credit_bands(workspace)
    actions = _action_rows(BillingAction.objects.filter(workspace=workspace))
    for row in actions.iterator(chunk_size=CHUNK):
        yield action_contribution(row, bands)
        approval = approval_contribution(row)
        if approval is not None:
            yield approval


@transaction.atomic
def rollups_rebuild(*, workspace: Workspace) -> int:
    """Recompute the workspace's roll-ups from its tickets, actions and approvals; returns
    how many records contribute. For the migration, tests, the bench and after a change
    that re-labels history (credit limits). Run it while the workspace's writers are quiet:
    a write that commits during the rebuild may be counted from stale rows."""
    RollupSource.objects.filter(workspace=workspace).delete()
    DailyRollup.objects.filter(workspace=workspace).delete()
    count = _sources_insert(_all_contributions(workspace))
    table = connection.ops.quote_name(DailyRollup._meta.db_table)
    source = connection.ops.quote_name(RollupSource._meta.db_table)
    group = ["workspace_id", "day", "family", "key"]
    quoted = [connection.ops.quote_name(c) for c in group]
    sums = [f"SUM({connection.ops.quote_name(m)})" for m in MEASURE_FIELDS]
    measures = [connection.ops.quote_name(m) for m in MEASURE_FIELDS]
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} ({', '.join(quoted + measures)}) "  # noqa: S608 - ours
            f"SELECT {', '.join(quoted + sums)} FROM {source} WHERE workspace_id = %s "
            f"GROUP BY {', '.join(quoted)}",
            [workspace.pk],
        )
    _provider_calls_rebuild(workspace)
    return count


def _provider_calls_rebuild(workspace: Workspace) -> None:
    """Provider calls are only inserted, so their roll-up needs no sources: the day's sums."""
    rows = (
        ProviderCall.objects.filter(workspace=workspace)
        .annotate(day=TruncDate("created_at", tzinfo=UTC))
        .values("day", "operation", "outcome")
        .annotate(calls=Count("id"), ms=Sum("duration_ms"))
        .order_by()
    )
    deltas: dict[tuple[int, date, str, str], tuple[int, ...]] = {}
    for row in rows:
        key = (
            workspace.pk,
            row["day"],
            PROVIDER_CALL_FAMILY,
            f"{row['operation']}|{row['outcome']}",
        )
        deltas[key] = _measures(count=row["calls"], m1=row["ms"] or 0)
        if len(deltas) >= 1000:  # bound the statement's parameters
            rollup_increment(connection, deltas)
            deltas = {}
    rollup_increment(connection, deltas)


# --- the action path's upkeep: one statement, from the row the writer has in memory ------------

_UNKNOWN: Any = object()
SOURCE_KEY_COLUMNS = ("workspace_id", "family", "source_id", "day", "key")


def _memory_row(action: BillingAction, approval: Any) -> dict[str, Any]:
    """What ``_action_rows`` reads for one action, from the instance the writer holds."""
    result = action.result if isinstance(action.result, dict) else {}
    params = action.params if isinstance(action.params, dict) else {}
    mrr = result.get("mrr_delta")
    row: dict[str, Any] = {
        "pk": action.pk,
        "workspace_id": action.workspace_id,
        "created_at": action.created_at,
        "kind": action.kind,
        "status": action.status,
        "decision": action.decision,
        "amount_base": action.amount_base,
        "duration_ms": action.duration_ms,
        "handling_started_at": action.handling_started_at,
        "completed_at": action.completed_at,
        "result_direction": str(result.get("direction") or ""),
        "params_direction": str(params.get("direction") or ""),
        "params_reason": str(params.get("reason") or ""),
        "mrr_currency": str(result.get("mrr_currency") or ""),
        "mrr_delta": None if mrr is None else str(mrr),
        "ticket_id": action.ticket_id,
        "installation_id": action.installation_id,
        "channel": action.channel,
    }
    for name in ("pk", "status", "decided_role", "created_at", "decided_at"):
        row[f"approval__{name}"] = getattr(approval, name) if approval is not None else None
    return row


def _ticket_move(row: Mapping[str, Any]) -> tuple[str, list[str]] | None:
    """How this action moves its tickets' roll-up key, as (SQL condition on ``key``, its
    parameters); the new key is the old one with its state letter replaced by the move's.

    A ticket's state (``selectors.dashboard.tickets.ticket_state``) is a priority order —
    not billing, escalated, auto-resolved, resolved, open — and an action only ever adds
    "an approval was needed" (→ escalated, unless not billing) or "a direct success of a
    kind that resolves the category" (resolved → auto-resolved). Both follow from the
    ticket's stored key alone (``category|state``), so the ticket is neither read nor
    recomputed; both are idempotent."""
    if not row["ticket_id"] or not _moves_ticket(row):
        return None
    if row["decision"] == BillingAction.Decision.APPROVAL:
        return "substr(rs.key, length(rs.key)) IN (%s, %s, %s)", ["o", "r", "a"]
    keys = [
        f"{category}{SEP}r"
        for category, kinds in CATEGORY_ACTION_KINDS.items()
        if kinds is None or row["kind"] in [str(k) for k in kinds]
    ]
    if not keys:
        return None
    return "rs.key IN ({})".format(", ".join(["%s"] * len(keys))), keys


def _ticket_target(row: Mapping[str, Any]) -> str:
    return ESCALATED if row["decision"] == BillingAction.Decision.APPROVAL else AUTO_RESOLVED


def _contributions(
    action: BillingAction, approval: Any, bands: tuple[int, int] | None
) -> tuple[dict[str, Any], list[Contribution]]:
    row = _memory_row(action, approval)
    if bands is None:
        bands = (0, 0)
        if row["kind"] == ActionKind.APPLY_CREDIT:
            bands = credit_bands(action.workspace)
    new = [action_contribution(row, bands)]
    extra = approval_contribution(row)
    if extra is not None:
        new.append(extra)
    return row, new


def _approval_of(action: BillingAction, approval: Any) -> Any:
    if approval is not _UNKNOWN:
        return approval
    field = BillingAction.approval.related
    if field.is_cached(action):
        return field.get_cached_value(action)
    from ..models import ApprovalRequest

    return ApprovalRequest.objects.filter(action_id=action.pk).first()


def _upkeep_sql(
    row: Mapping[str, Any], new: list[Contribution], *, gate: str | None
) -> tuple[str, list[Any]]:
    """The CTEs (PostgreSQL) that swap the records' stored contributions for ``new`` and
    add the difference to ``DailyRollup``: ``src`` (the new contributions), ``old`` (the
    stored ones, locked), ``tk`` (the action's tickets whose key it moves, locked), ``up``
    (the swap) and ``roll`` (one multi-row increment). With ``gate`` (the name of a CTE
    returning the rows the writer's UPDATE matched), nothing happens when it matched none.
    One statement: the hot roll-up rows are locked by the transaction's last write."""
    qn = connection.ops.quote_name
    rs = qn(RollupSource._meta.db_table)
    dr = qn(DailyRollup._meta.db_table)
    cols = [qn(c) for c in (*SOURCE_KEY_COLUMNS, *MEASURE_FIELDS)]
    measures = [qn(m) for m in MEASURE_FIELDS]
    when = f" AND EXISTS (SELECT 1 FROM {gate})" if gate else ""  # noqa: S608 - identifiers are ours, values bound
    casts = ["bigint", "varchar(16)", "varchar(40)", "date", "varchar(255)"]
    casts += ["bigint"] * len(MEASURE_FIELDS)
    marks = "(" + ", ".join(f"CAST(%s AS {c})" for c in casts) + ")"
    params: list[Any] = []
    for c in new:
        params += [c.workspace_id, c.family, c.source_id, c.day, c.key, *c.measures]
    col_list = ", ".join(cols)
    ctes = [
        f"src ({col_list}) AS (SELECT * FROM (VALUES {', '.join([marks] * len(new))}) v "  # noqa: S608 - identifiers are ours, values bound
        f"WHERE TRUE{when})",
        f"old AS (SELECT {', '.join('rs.' + c for c in cols)} FROM {rs} rs "  # noqa: S608 - identifiers are ours, values bound
        f"WHERE (rs.family, rs.source_id) IN (SELECT family, source_id FROM src) "
        f"FOR UPDATE OF rs)",
    ]
    move = _ticket_move(row)
    tk_select = ""
    if move is not None:
        condition, move_params = move
        tickets = qn(HelpdeskTicket._meta.db_table)
        only = " AND t.installation_id = %s" if row["installation_id"] is not None else ""
        ctes.append(
            f"tk AS (SELECT {', '.join('rs.' + c for c in cols)} FROM {rs} rs "  # noqa: S608 - identifiers are ours, values bound
            f"WHERE rs.family = %s AND {condition} AND rs.source_id IN "
            f"(SELECT CAST(t.id AS varchar(40)) FROM {tickets} t "
            f"WHERE t.workspace_id = %s AND t.external_id = %s{only}){when} FOR UPDATE OF rs)"
        )
        params += [TICKET, *move_params, row["workspace_id"], row["ticket_id"]]
        if row["installation_id"] is not None:
            params.append(row["installation_id"])
        moved_key = f"substr(key, 1, length(key) - 1) || '{_ticket_target(row)}'"
        tk_select = (
            f" UNION ALL SELECT workspace_id, family, source_id, day, {moved_key}, "  # noqa: S608 - identifiers are ours, values bound
            f"{', '.join(measures)} FROM tk"
        )
    # ``old`` (and ``tk``) are read, and locked, before ``up`` writes: the scalar subquery
    # is evaluated once, first (a row this statement updated could not be locked after).
    updates = ", ".join(f"{c} = excluded.{c}" for c in cols[3:])
    ctes.append(
        f"up AS (INSERT INTO {rs} ({col_list}) SELECT * FROM (SELECT {col_list} FROM src"  # noqa: S608 - identifiers are ours, values bound
        f"{tk_select}) n WHERE (SELECT COUNT(*) FROM old) >= 0 "
        f"ON CONFLICT (family, source_id) DO UPDATE SET {updates} RETURNING 1)"
    )
    neg = ", ".join(f"-{m}" for m in measures)
    plus = ", ".join(measures)
    parts = [
        f"SELECT workspace_id, day, family, key, {neg} FROM old",  # noqa: S608 - identifiers are ours, values bound
        f"SELECT workspace_id, day, family, key, {plus} FROM src",  # noqa: S608 - identifiers are ours, values bound
    ]
    if move is not None:
        moved_key = f"substr(key, 1, length(key) - 1) || '{_ticket_target(row)}'"
        parts += [
            f"SELECT workspace_id, day, family, key, {neg} FROM tk",  # noqa: S608 - identifiers are ours, values bound
            f"SELECT workspace_id, day, family, {moved_key}, {plus} FROM tk",  # noqa: S608 - identifiers are ours, values bound
        ]
    group = ", ".join(qn(c) for c in ROLLUP_COLUMNS)
    sums = ", ".join(f"SUM({m})" for m in measures)
    nonzero = " OR ".join(f"SUM({m}) <> 0" for m in measures)
    increments = ", ".join(f"{m} = {dr}.{m} + excluded.{m}" for m in measures)
    ctes.append(
        f"d ({group}, {plus}) AS ({' UNION ALL '.join(parts)}), "  # noqa: S608 - identifiers are ours, values bound
        f"roll AS (INSERT INTO {dr} ({group}, {plus}) SELECT {group}, {sums} FROM d "
        f"GROUP BY {group} HAVING {nonzero} ORDER BY {group} "
        f"ON CONFLICT ({group}) DO UPDATE SET {increments} RETURNING 1)"
    )
    return ", ".join(ctes), params


ROLLUP_COLUMNS = ("workspace_id", "day", "family", "key")


def _upkeep_python(row: Mapping[str, Any], new: list[Contribution]) -> None:
    """The same swap where a statement cannot modify two tables (SQLite): read the stored
    contributions (and the tickets' the action moves), write the new ones, increment."""
    stored_q = Q()
    for c in new:
        stored_q |= Q(family=c.family, source_id=c.source_id)
    move = _ticket_move(row)
    if move is not None:
        tickets = HelpdeskTicket.objects.filter(
            workspace_id=row["workspace_id"], external_id=row["ticket_id"]
        )
        if row["installation_id"] is not None:
            tickets = tickets.filter(installation_id=row["installation_id"])
        ids = tickets.annotate(sid=Cast("pk", CharField(max_length=40))).values("sid")
        stored_q |= Q(family=TICKET, source_id__in=ids)
    stored = list(RollupSource.objects.filter(stored_q))
    target = _ticket_target(row)
    fresh = list(new)
    for s in stored:
        if s.family != TICKET or move is None:
            continue
        state = s.key[-1:]
        moves = state in ("o", "r", "a") if target == ESCALATED else s.key in set(move[1])
        if moves:
            fresh.append(
                Contribution(
                    workspace_id=s.workspace_id,
                    family=TICKET,
                    source_id=s.source_id,
                    day=s.day,
                    key=s.key[:-1] + target,
                    measures=tuple(getattr(s, f) for f in MEASURE_FIELDS),
                )
            )
    _apply_known(stored, fresh)


def _apply_known(stored: list[RollupSource], new: list[Contribution]) -> None:
    deltas: dict[tuple[int, date, str, str], list[int]] = defaultdict(
        lambda: [0] * len(MEASURE_FIELDS)
    )
    fresh = {(c.family, c.source_id): c for c in new}
    for s in stored:
        if (s.family, s.source_id) not in fresh:
            continue
        slot = deltas[(s.workspace_id, s.day, s.family, s.key)]
        for i, f in enumerate(MEASURE_FIELDS):
            slot[i] -= getattr(s, f)
    for c in fresh.values():
        slot = deltas[(c.workspace_id, c.day, c.family, c.key)]
        for i, v in enumerate(c.measures):
            slot[i] += v
    if not any(any(v) for v in deltas.values()):
        return
    RollupSource.objects.bulk_create(
        [_source(c) for c in fresh.values()],
        update_conflicts=True,
        unique_fields=["family", "source_id"],
        update_fields=["day", "key", *MEASURE_FIELDS],
    )
    _rollup_upsert(deltas)  # last: the hot day's row is locked until commit


def rollups_action_recorded(
    action: BillingAction, *, approval: Any = _UNKNOWN, bands: tuple[int, int] | None = None
) -> None:
    """``rollups_action_changed`` for a writer holding the action as written (its row
    lock taken): no re-read of the action, its approval request (when the instance has it
    cached, or ``approval`` is given) or its tickets. One statement on PostgreSQL; call
    it as the transaction's last write but the snapshot mark."""
    if action.status == BillingAction.Status.NOT_PERMITTED:
        return
    row, new = _contributions(action, _approval_of(action, approval), bands)
    if connection.vendor != "postgresql":
        with transaction.atomic(savepoint=False):
            _upkeep_python(row, new)
        return
    ctes, params = _upkeep_sql(row, new, gate=None)
    with connection.cursor() as cursor:
        cursor.execute(f"WITH {ctes} SELECT 1", params)


def rollups_outcome_update(
    action: BillingAction, values: Mapping[str, Any], *, open_statuses: Iterable[str]
) -> int:
    """The outcome's conditional UPDATE (``status`` still in ``open_statuses``) and the
    roll-up upkeep of the action as it leaves it, in one statement on PostgreSQL (the
    UPDATE's RETURNING gates the upkeep); returns how many rows it updated (0: another
    recorder won, nothing written). ``action`` must already carry ``values``."""
    matched = BillingAction.objects.filter(pk=action.pk, status__in=list(open_statuses))
    if connection.vendor != "postgresql":
        won = matched.update(**values)
        if won:
            rollups_action_recorded(action)
        return won
    approval = _approval_of(action, _UNKNOWN)
    row, new = _contributions(action, approval, None)
    query = cast(UpdateQuery, matched.query.chain(UpdateQuery))
    query.add_update_values(dict(values))
    update_sql, update_params = query.get_compiler(connection=connection).as_sql()
    ctes, params = _upkeep_sql(row, new, gate="won")
    sql = f"WITH won AS ({update_sql} RETURNING 1), {ctes} SELECT COUNT(*) FROM won"  # noqa: S608 - identifiers are ours, values bound
    with connection.cursor() as cursor:
        cursor.execute(sql, [*update_params, *params])
        return int(cursor.fetchone()[0])
