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
* ``action`` — key ``label|kind|status|decision|direction|reason|path|mrr_currency``
  (direction only for plan changes; reason and approval path only for refunds; the MRR
  currency only for the kinds that record MRR). Actions refused as not permitted are in
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
from typing import Any

from django.db import connection, transaction
from django.db.models import CharField, Count, F, Q, QuerySet, Sum, Value
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Coalesce, TruncDate

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
from ..selectors.dashboard.tickets import RESOLVED_STATUSES, ticket_state

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
        return "auto"
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
    parts = (label, kind, status, decision, direction, reason, path, mrr_currency)
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
    *, families: Iterable[str], source_ids: Iterable[str], new: Iterable[Contribution]
) -> None:
    """Replace the stored contributions of ``source_ids`` (in ``families``) by ``new``."""
    ids = list(dict.fromkeys(source_ids))
    if not ids:
        return
    stored = {
        (s.family, s.source_id): s
        for s in RollupSource.objects.filter(family__in=list(families), source_id__in=ids)
    }
    new = list(new)
    fresh = {(c.family, c.source_id): c for c in new}
    deltas: dict[tuple[int, date, str, str], list[int]] = defaultdict(
        lambda: [0] * len(MEASURE_FIELDS)
    )
    changed: list[RollupSource] = []
    for ident, source in stored.items():
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
    gone = [ident for ident in stored if ident not in kept]
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
        new = [ticket_contribution(row) for row in _ticket_rows(workspace, tickets)]
        _apply(families=[TICKET], source_ids=[c.source_id for c in new], new=new)


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
