"""Per-customer context snapshots: the panel's context computed when the mirror changes.

The row (``models.CustomerSnapshot``) is its own outbox entry; this module is both
sides of it.

**Write path.** Every write that changes what a customer's context is computed from
already calls ``context_cache.customer_context_invalidate`` (``mirror_upsert`` and the
bulk bundle store, refreshes, actions, approvals). That calls
``snapshot_mark_stale``, which raises the row's ``wanted_version`` *in the writer's
transaction* with one statement (an upsert: the row is created by the first write), so
the snapshot is stale from the moment the write commits and says so
(``built_version < wanted_version``). Once per transaction per customer: the doorbell
queued with ``transaction.on_commit`` marks the customer as done for this transaction,
as ``context_cache``'s ``_Bump`` does. After commit the doorbell queues
``SNAPSHOT_TASK`` (one rebuild); a broker error is logged (once in ten seconds) and
swallowed: the write has committed, and the re-drive (``snapshots_redrive``, on beat
every minute) finds the row by ``snapshot_pending_idx``.

Changes that move *every* customer's context — a workspace's settings, an agent's name
(actor names are shown), the catalog (product names, prices) and the sandbox's clock —
raise ``Workspace.context_generation`` instead (``snapshot_mark_stale`` without a
customer; ``snapshot_signals``). A snapshot built under another generation is not
current.

**Build.** ``snapshot_build`` reads ``wanted_version`` and the generation first (one
query), then builds the whole context from the mirror inside ``horizon_collect`` and
converts it to the API's JSON shape minus the per-request fields (``stale``,
``refreshing``, ``provider_status``, ``now``) with ``context_to_json`` — compiled from
the API's serializer (``selectors.context.serialize``), equal to its output, without
DRF's per-call cost — and renders it as the API's JSON renderer would, into ``body``
(text: the read path answers it without decoding it). It stores
with one conditional ``UPDATE``: only over an older build (a lower version; the same
version under an older generation; the same version and generation built earlier), so
a build that raced a newer write never overwrites the newer one, and nothing moves
backwards.

**Time.** The context also changes without writes (a trial ends, a failure leaves the
90-day window, an approval expires). The selectors note each instant at which one of
their comparisons with ``now`` would flip (``selectors.context.horizon``); the build
stores the first of them as ``valid_until`` (billing clock) and ``valid_until_real``
(wall clock). A snapshot read at or after either is not current. The re-drive also
rebuilds, ahead of the next read, the snapshots a panel opened within ``REDRIVE_RECENT``
whose horizon has passed (``snapshot_horizon_idx`` / ``snapshot_horizon_real_idx``; a
bounded batch per run). Not *before* it passes: a build at an earlier instant would
compute the same answer and the same horizon — the figures flip at that instant, not
before — so the re-drive can only shorten the time a passed horizon waits for a read
(at most a minute, beat's period) rather than anticipate it.

**Opened.** ``opened_at`` (when a panel last read the snapshot) is what "in use" means to
the time-driven re-drive. A read moves it only when it is older than ``OPENED_EVERY``
(an hour), with a conditional ``UPDATE`` — so a panel open writes at most once an hour
per customer, not on every request (the Redis accelerator's hits, up to a minute old,
do not move it at all). The imprecision is harmless: the re-drive's window is days
wide, an hour of it changes which snapshots it rebuilds by at most the customers last
opened between 7 days and 7 days and an hour ago, and a read of any snapshot the
re-drive skipped rebuilds it anyway. A build for a read stores ``opened_at`` with the
build's own ``UPDATE``.

**Read.** ``snapshot_read`` is one indexed query: the row (its text, not decoded), the
workspace's current
generation (a join: never a cached copy of the workspace) and whether a webhook event
about the customer newer than ``as_of`` is stored but not applied
(``stripe_event_pending_cust_idx``), which makes the answer ``stale``.
``services.context_read`` decides what to do with it.

**Languages** (issue 16). The context's texts are in the agent's language, so a
customer has a snapshot row per language a panel read it in (``locale``; "" is
``settings.LANGUAGE_CODE``, ``billing_app.locales.snapshot_locale``). The write path is
unchanged: writers raise ``wanted_version`` on the default row only, with the same one
statement. A language row is current when its ``built_version`` reaches the *default
row's* ``wanted_version`` — the read takes it in the same query (a subquery on the same
unique index) — and its generation and horizon hold; it stores the version it was built
from as its own ``wanted_version``, so it is never pending by ``snapshot_pending_idx``.
Every build runs under ``translation.override`` of its row's language (the default row
under ``settings.LANGUAGE_CODE`` explicitly: a worker never builds it in a language left
active by something else). The doorbell's rebuild and the pending re-drive rebuild,
after the default row, the customer's language rows a panel opened within
``REDRIVE_RECENT`` (so an agent working in German finds their snapshot current too);
the time-driven re-drive rebuilds each row, whatever its language, whose horizon passed.
A language row never opened again is left as it is and rebuilt by its next read.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connections, transaction
from django.db.models import DateTimeField, Exists, ExpressionWrapper, F, OuterRef, Q, Subquery
from django.utils import timezone, translation
from rest_framework.renderers import JSONRenderer

from ..clock import billing_now
from ..locales import language_normalise, snapshot_language
from ..models import CustomerSnapshot, MirrorCustomer, Workspace
from ..queue import enqueue
from ..selectors.context import customer_context
from ..selectors.context.horizon import horizon_collect
from ..selectors.context.serialize import ContextSerializer
from ..selectors.context.serialize_fast import context_to_json
from ..selectors.mirror_freshness import customer_data_as_of, customer_pending_events

logger = logging.getLogger(__name__)

# One customer's rebuild (``tasks.snapshots``), named: services never import tasks.
SNAPSHOT_TASK = "billing_app.snapshot_rebuild"
# The re-drive's bounds per run (every minute on beat).
REDRIVE_PENDING_BATCH = 200
REDRIVE_EXPIRED_BATCH = 100
# "In use" for the time-driven re-drive: a panel opened it within this long (a read that
# finds the snapshot not current rebuilds it, and so does every write).
REDRIVE_RECENT = timedelta(days=7)
# A read moves ``opened_at`` only when it is older than this: at most one write an hour.
OPENED_EVERY = timedelta(hours=1)

_RENDERER = JSONRenderer()

_last_warning = 0.0


def _warn(message: str, exc: Exception) -> None:
    """At most once every ten seconds per process: a broker outage is one line, not a flood."""
    global _last_warning
    now = time.monotonic()
    if now - _last_warning > 10:
        _last_warning = now
        logger.warning(message, exc)


# --- write path ---------------------------------------------------------------------------


def _ring(workspace_id: int, customer_id: str) -> None:
    try:
        enqueue(SNAPSHOT_TASK, workspace_id, customer_id)
    except Exception as exc:  # the broker is away: the re-drive finds the pending row
        _warn("could not queue a context snapshot rebuild (%s); the re-drive will", exc)


class _Doorbell:
    """The ``on_commit`` callback queueing one rebuild; its presence means "marked in this
    transaction" (recognisable, so the upsert runs once per transaction per customer).

    ``built``: a build in the same transaction read every mark before it and stored its
    snapshot — the rebuild would find it current, so the bell stays silent (a later write
    in the transaction queues a doorbell of its own)."""

    __slots__ = ("built", "customer_id", "done", "workspace_id")

    def __init__(self, workspace_id: int, customer_id: str):
        self.workspace_id = workspace_id
        self.customer_id = customer_id
        self.done = False
        self.built = False

    def __call__(self) -> None:
        self.done = True
        if not self.built:
            _ring(self.workspace_id, self.customer_id)


class _GenerationMark:
    """Marks "the workspace's generation was raised in this transaction"; does nothing at commit."""

    __slots__ = ("done", "workspace_id")

    def __init__(self, workspace_id: int):
        self.workspace_id = workspace_id
        self.done = False

    def __call__(self) -> None:
        self.done = True


def _marked(kind: type[_Doorbell] | type[_GenerationMark], **key: Any) -> bool:
    connection = connections[DEFAULT_DB_ALIAS]
    for _, callback, *_ in connection.run_on_commit:
        if (
            isinstance(callback, kind)
            and not callback.done
            and all(getattr(callback, name) == value for name, value in key.items())
        ):
            return True
    return False


def _marks_consume(workspace_id: int, customer_id: str) -> list[_Doorbell]:
    """A build inside the transaction that marked the customer has read those marks: a later
    write in the same transaction must raise the version again (an API request that fetched
    a customer and built its snapshot; a test's single transaction). Returns the customer's
    doorbells, which the build silences once it has stored (``_Doorbell.built``)."""
    connection = connections[DEFAULT_DB_ALIAS]
    bells = []
    for _, callback, *_ in connection.run_on_commit:
        if isinstance(callback, _GenerationMark) and callback.workspace_id == workspace_id:
            callback.done = True
        elif (
            isinstance(callback, _Doorbell)
            and callback.workspace_id == workspace_id
            and callback.customer_id == customer_id
            and not callback.done
        ):
            callback.done = True
            bells.append(callback)
    return bells


def _wanted_raise(workspace_id: int, customer_id: str) -> None:
    """Raise ``wanted_version`` in one statement; the first write creates the row (never built)."""
    table = CustomerSnapshot._meta.db_table
    with connections[DEFAULT_DB_ALIAS].cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} "  # noqa: S608  (the table name is the model's own)
            "(workspace_id, customer_id, locale, wanted_version, built_version,"
            " workspace_generation, deleted, build_ms) VALUES (%s, %s, '', 1, 0, 0, %s, 0) "
            "ON CONFLICT (workspace_id, customer_id, locale) DO UPDATE "
            f"SET wanted_version = {table}.wanted_version + 1",
            [workspace_id, customer_id, False],
        )


def snapshot_mark_stale(*, workspace_id: int, customer_id: str | None = None) -> None:
    """The customer's snapshot (or, without ``customer_id``, every snapshot of the workspace)
    no longer matches the mirror: raise its version now, in the caller's transaction.

    Once per transaction per customer; the rebuild is queued after commit (immediately
    outside a transaction). Rolled back with the caller's transaction.
    """
    if not workspace_id:
        return
    connection = connections[DEFAULT_DB_ALIAS]
    atomic = connection.in_atomic_block
    if not customer_id:
        if atomic and _marked(_GenerationMark, workspace_id=workspace_id):
            return
        Workspace.objects.filter(pk=workspace_id).update(
            context_generation=F("context_generation") + 1
        )
        if atomic:
            transaction.on_commit(_GenerationMark(workspace_id))
        return
    customer_id = str(customer_id)
    if atomic and _marked(_Doorbell, workspace_id=workspace_id, customer_id=customer_id):
        return
    _wanted_raise(workspace_id, customer_id)
    if atomic:
        transaction.on_commit(_Doorbell(workspace_id, customer_id))
    else:
        _ring(workspace_id, customer_id)


# --- build ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class StoredSnapshot:
    """A snapshot as the read path serves it (``body``: JSON text without the per-request
    fields)."""

    body: str | None
    as_of: datetime | None
    deleted: bool
    valid_until: datetime | None
    valid_until_real: datetime | None
    built_version: int = 0
    wanted_version: int = 0
    workspace_generation: int = 0
    generation: int = 0  # the workspace's, when read
    superseded: bool = False  # an unapplied event newer than as_of (``snapshot_read`` only)
    opened_at: datetime | None = None  # ``snapshot_read`` only

    def current(self, *, now: datetime, real_now: datetime) -> bool:
        """Built from the latest write, under the workspace's generation, and still true now."""
        return (
            self.body is not None
            and self.built_version >= self.wanted_version
            and self.workspace_generation == self.generation
            and self.time_valid(now=now, real_now=real_now)
        )

    def time_valid(self, *, now: datetime, real_now: datetime) -> bool:
        """Before the first instant at which a figure would change without a write."""
        return (self.valid_until is None or now < self.valid_until) and (
            self.valid_until_real is None or real_now < self.valid_until_real
        )

    def cache_payload(self) -> dict[str, Any]:
        """What the Redis accelerator keeps (``context_cache``): no versions, no event flag."""
        return {
            "body": self.body,
            "as_of": self.as_of,
            "deleted": self.deleted,
            "valid_until": self.valid_until,
            "valid_until_real": self.valid_until_real,
        }

    @classmethod
    def from_cache(cls, payload: dict[str, Any]) -> StoredSnapshot:
        return cls(
            body=payload["body"],
            as_of=payload["as_of"],
            deleted=payload["deleted"],
            valid_until=payload["valid_until"],
            valid_until_real=payload["valid_until_real"],
        )


def _versions(workspace_id: int, customer_id: str) -> tuple[int, int]:
    """(wanted_version, the workspace's generation), creating a never-built row if missing."""
    row = (
        Workspace.objects.filter(pk=workspace_id)
        .annotate(
            wanted=Subquery(
                CustomerSnapshot.objects.filter(
                    workspace_id=OuterRef("pk"), customer_id=customer_id, locale=""
                ).values("wanted_version")[:1]
            )
        )
        .values_list("wanted", "context_generation")
        .get()
    )
    wanted, generation = row
    if wanted is None:
        CustomerSnapshot.objects.bulk_create(
            [CustomerSnapshot(workspace_id=workspace_id, customer_id=customer_id)],
            ignore_conflicts=True,
        )
        wanted = CustomerSnapshot.objects.filter(
            workspace_id=workspace_id, customer_id=customer_id, locale=""
        ).values_list("wanted_version", flat=True)[0]
    return int(wanted), int(generation)


def context_serialize(context: dict[str, Any]) -> dict[str, Any]:
    """The context as the API answers it (the DRF serializer's output, plain dicts): the
    outage answer, built per request; the snapshot build uses ``context_body``."""
    return _plain(ContextSerializer(context).data)


def json_render(data: Any) -> bytes:
    """``data`` as the API's JSON renderer writes it (compact, UTF-8, U+2028/9 escaped)."""
    return _RENDERER.render(data)


def context_body(context: dict[str, Any]) -> str:
    """The snapshot's stored text: the context as the API answers it, minus the per-request
    fields (``context_to_json``, equal to ``ContextSerializer``'s output), rendered."""
    return json_render(context_to_json(context)).decode()


def _plain(value: Any) -> Any:
    """DRF's ReturnDict/OrderedDict as plain dicts and lists (what JSONField stores and reads)."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def snapshot_build(
    *,
    workspace: Workspace,
    customer_id: str,
    customer: MirrorCustomer | None = None,
    versions: tuple[int, int] | None = None,
    now: datetime | None = None,
    real_now: datetime | None = None,
    opened: bool = False,
    locale: str = "",
) -> StoredSnapshot:
    """Build the customer's context from the mirror and store it, unless a newer build is there.

    Returns what was built (also when a newer build kept its place: it is still a true
    answer for this moment). A customer the mirror does not hold is stored as built
    with no data, so the re-drive stops finding it; the read path fetches it.

    ``versions`` — ``(wanted_version, generation)`` as the caller just read them, before
    anything of the mirror (``snapshot_read``); ``now`` / ``real_now`` — the clocks the
    caller read: each saves a query. ``opened`` — built for a panel's read: ``opened_at``
    is stored with it. ``locale`` — the row's language ("": ``settings.LANGUAGE_CODE``, the
    row writers mark); the versions are always the default row's.
    """
    customer_id = str(customer_id)
    locale = str(locale or "")
    given = versions
    version, generation = versions or _versions(workspace.pk, customer_id)
    bells = []
    if connections[DEFAULT_DB_ALIAS].in_atomic_block:
        bells = _marks_consume(workspace.pk, customer_id)
    if customer is None:
        customer = MirrorCustomer.objects.filter(workspace=workspace, stripe_id=customer_id).first()
    now = now or billing_now(workspace)
    real_now = real_now or timezone.now()
    started = time.perf_counter()
    body: str | None = None
    as_of = None
    valid_until = valid_until_real = None
    if customer is not None:
        # The row's language, explicitly: the default row too (never a leftover language).
        with translation.override(snapshot_language(locale)):
            with horizon_collect(now=now, real_now=real_now) as horizon:
                context = customer_context(
                    workspace=workspace, customer=customer, now=now, real_now=real_now
                )
            body = context_body(context)
        as_of = customer_data_as_of(customer=customer)
        valid_until, valid_until_real = horizon.billing, horizon.real
    build_ms = int((time.perf_counter() - started) * 1000)
    opened_at = {"opened_at": real_now} if opened else {}
    fields: dict[str, Any] = {
        "built_version": version,
        "workspace_generation": generation,
        "body": body,
        "as_of": as_of,
        "deleted": bool(customer is not None and customer.deleted),
        "built_at": real_now,
        "valid_until": valid_until,
        "valid_until_real": valid_until_real,
        "build_ms": min(build_ms, 2**31 - 1),
        **opened_at,
    }
    if locale:
        _language_store(workspace.pk, customer_id, locale, version, generation, real_now, fields)
    else:
        _older_builds(
            CustomerSnapshot.objects.filter(
                workspace_id=workspace.pk, customer_id=customer_id, locale=""
            ),
            version=version,
            generation=generation,
            real_now=real_now,
        ).update(**fields)
    if given is None and not locale:
        # The version was read after this transaction's marks: what is stored (this build,
        # or a newer one) covers them, and the rebuild would find it current.
        for bell in bells:
            bell.built = True
    return StoredSnapshot(
        body=body,
        as_of=as_of,
        deleted=bool(customer is not None and customer.deleted),
        valid_until=valid_until,
        valid_until_real=valid_until_real,
        built_version=version,
        wanted_version=version,
        workspace_generation=generation,
        generation=generation,
    )


def _older_builds(rows: Any, *, version: int, generation: int, real_now: datetime) -> Any:
    """The rows among ``rows`` a build of ``version`` under ``generation`` at ``real_now``
    may overwrite: older versions, older generations, earlier builds of the same."""
    return rows.filter(
        Q(built_version__lt=version)
        | Q(built_version=version, workspace_generation__lt=generation)
        | Q(built_version=version, workspace_generation=generation, built_at__lt=real_now)
        | Q(built_version=version, workspace_generation=generation, built_at__isnull=True)
    )


def _language_store(
    workspace_id: int,
    customer_id: str,
    locale: str,
    version: int,
    generation: int,
    real_now: datetime,
    fields: dict[str, Any],
) -> None:
    """Store a language row's build: over an older build (one ``UPDATE``), or as a new row.

    Its ``wanted_version`` is what it was built from (never pending by the index: the
    default row's ``wanted_version`` is what says whether it is current)."""
    rows = CustomerSnapshot.objects.filter(
        workspace_id=workspace_id, customer_id=customer_id, locale=locale
    )
    older = _older_builds(rows, version=version, generation=generation, real_now=real_now)
    if older.update(wanted_version=version, **fields):
        return
    CustomerSnapshot.objects.bulk_create(
        [
            CustomerSnapshot(
                workspace_id=workspace_id,
                customer_id=customer_id,
                locale=locale,
                wanted_version=version,
                **fields,
            )
        ],
        ignore_conflicts=True,
    )
    # A concurrent first build inserted it first: store over it if this one is newer.
    older.update(wanted_version=version, **fields)


# --- read -----------------------------------------------------------------------------------


def snapshot_read(
    *, workspace: Workspace, customer_id: str, locale: str = ""
) -> StoredSnapshot | None:
    """The stored snapshot, the workspace's generation and the pending-event flag: one query.

    A language row (``locale`` not "") is read with the default row's ``wanted_version`` in
    the same query (``StoredSnapshot.wanted_version``: what it must have been built from);
    ``None`` when either row is missing (never built: the caller builds it)."""
    locale = str(locale or "")
    rows = CustomerSnapshot.objects.filter(
        workspace_id=workspace.pk, customer_id=customer_id, locale=locale
    )
    wanted = "wanted_version"
    if locale:
        rows = rows.annotate(
            default_wanted=Subquery(
                CustomerSnapshot.objects.filter(
                    workspace_id=OuterRef("workspace_id"),
                    customer_id=OuterRef("customer_id"),
                    locale="",
                ).values("wanted_version")[:1]
            )
        )
        wanted = "default_wanted"
    found = list(
        rows.annotate(
            generation=F("workspace__context_generation"),
            # created >= as_of truncated to the second: events of the read's own second count.
            superseded=Exists(
                customer_pending_events(OuterRef("workspace_id"), OuterRef("customer_id")).filter(
                    created__gt=ExpressionWrapper(
                        OuterRef("as_of") - timedelta(seconds=1), output_field=DateTimeField()
                    )
                )
            ),
        ).values(
            "body",
            "as_of",
            "deleted",
            "valid_until",
            "valid_until_real",
            "built_version",
            wanted,
            "workspace_generation",
            "generation",
            "superseded",
            "opened_at",
        )[:1]
    )
    if not found:
        return None
    row = found[0]
    if locale:
        row["wanted_version"] = row.pop("default_wanted")
        if row["wanted_version"] is None:  # no default row: no version to build from yet
            return None
    return StoredSnapshot(**row)


def snapshot_opened(
    *,
    workspace_id: int,
    customer_id: str,
    opened_at: datetime | None,
    real_now: datetime,
    locale: str = "",
) -> None:
    """A panel read the snapshot: move ``opened_at`` — only when the value read
    (``opened_at``) is older than ``OPENED_EVERY``, and then with a conditional ``UPDATE``
    (a concurrent read that moved it first makes this one a no-op)."""
    cutoff = real_now - OPENED_EVERY
    if opened_at is not None and opened_at >= cutoff:
        return
    CustomerSnapshot.objects.filter(
        workspace_id=workspace_id, customer_id=customer_id, locale=str(locale or "")
    ).filter(Q(opened_at__isnull=True) | Q(opened_at__lt=cutoff)).update(opened_at=real_now)


# --- re-drive -------------------------------------------------------------------------------


def snapshot_rebuild(*, workspace_id: int, customer_id: str) -> bool:
    """The doorbell's task: rebuild one customer's snapshot unless it is current already,
    then the customer's language rows a panel opened recently (``languages_rebuild``).

    Returns whether a build ran. Safe to run twice (the store is conditional).
    """
    workspace = Workspace.objects.filter(pk=workspace_id, is_active=True).first()
    if workspace is None:
        return False
    built = False
    stored = snapshot_read(workspace=workspace, customer_id=customer_id)
    if stored is None or not stored.current(now=billing_now(workspace), real_now=timezone.now()):
        snapshot_build(workspace=workspace, customer_id=customer_id)
        built = True
    return languages_rebuild(workspace=workspace, customer_id=customer_id) > 0 or built


def _recent_locales(workspace_id: int, customer_id: str, real_now: datetime) -> list[str]:
    """The customer's language rows a panel opened within ``REDRIVE_RECENT``, in a language
    still configured."""
    locales = CustomerSnapshot.objects.filter(
        workspace_id=workspace_id,
        customer_id=customer_id,
        opened_at__gte=real_now - REDRIVE_RECENT,
    ).exclude(locale="")
    return [
        locale
        for locale in locales.values_list("locale", flat=True)
        if language_normalise(locale) == locale
    ]


def languages_rebuild(*, workspace: Workspace, customer_id: str) -> int:
    """Rebuild the customer's language rows opened recently that are not current (after
    the default row: their version is its ``wanted_version``). Returns how many were built."""
    real_now = timezone.now()
    built = 0
    for locale in _recent_locales(workspace.pk, customer_id, real_now):
        stored = snapshot_read(workspace=workspace, customer_id=customer_id, locale=locale)
        if stored is not None and stored.current(now=billing_now(workspace), real_now=real_now):
            continue
        snapshot_build(workspace=workspace, customer_id=customer_id, locale=locale)
        built += 1
    return built


def snapshots_redrive() -> int:
    """Rebuild what the doorbells missed, then what time moved; bounded per run.

    1. Pending rows (``built_version < wanted_version``: a lost doorbell, a worker that died),
       by ``snapshot_pending_idx``, at most ``REDRIVE_PENDING_BATCH``.
    2. Snapshots a panel opened within ``REDRIVE_RECENT`` (customers in use) whose time
       horizon has passed — on the wall clock (``snapshot_horizon_real_idx``, one query) or
       on their workspace's billing clock (``snapshot_horizon_idx``, one probe per active
       workspace) — at most ``REDRIVE_EXPIRED_BATCH`` in all, the longest passed first — so a
       trial ending or a failure leaving its window is computed before the next panel open.

    Returns how many snapshots were built. One failing customer does not stop the run.
    """
    built = 0
    pending = list(
        CustomerSnapshot.objects.filter(
            built_version__lt=F("wanted_version"), workspace__is_active=True, locale=""
        ).values_list("workspace_id", "customer_id")[:REDRIVE_PENDING_BATCH]
    )
    workspaces = {w.pk: w for w in Workspace.objects.filter(is_active=True)}
    for workspace_id, customer_id in pending:
        built += _rebuild_logged(workspaces.get(workspace_id), customer_id, "")
        built += _languages_logged(workspaces.get(workspace_id), customer_id)
    real_now = timezone.now()
    in_use = CustomerSnapshot.objects.filter(
        workspace__is_active=True,
        body__isnull=False,
        opened_at__gte=real_now - REDRIVE_RECENT,
        built_version__gte=F("wanted_version"),
    )
    due: dict[tuple[int, str, str], None] = dict.fromkeys(
        in_use.filter(valid_until_real__lte=real_now)
        .order_by("valid_until_real")
        .values_list("workspace_id", "customer_id", "locale")[:REDRIVE_EXPIRED_BATCH]
    )
    for workspace in workspaces.values():
        if len(due) >= REDRIVE_EXPIRED_BATCH:
            break
        due.update(
            dict.fromkeys(
                in_use.filter(workspace=workspace, valid_until__lte=billing_now(workspace))
                .order_by("valid_until")
                .values_list("workspace_id", "customer_id", "locale")[
                    : REDRIVE_EXPIRED_BATCH - len(due)
                ]
            )
        )
    for workspace_id, customer_id, locale in due:
        if locale and language_normalise(locale) != locale:
            continue  # a language no longer configured: nobody reads it
        built += _rebuild_logged(workspaces.get(workspace_id), customer_id, locale)
    return built


def _rebuild_logged(workspace: Workspace | None, customer_id: str, locale: str) -> int:
    if workspace is None:
        return 0
    try:
        snapshot_build(workspace=workspace, customer_id=customer_id, locale=locale)
    except Exception:  # one customer's broken data must not stop the others
        logger.exception(
            "context snapshot of %s (%s) in workspace %s failed",
            customer_id,
            locale or "default",
            workspace.pk,
        )
        return 0
    return 1


def _languages_logged(workspace: Workspace | None, customer_id: str) -> int:
    if workspace is None:
        return 0
    try:
        return languages_rebuild(workspace=workspace, customer_id=customer_id)
    except Exception:  # one customer's broken data must not stop the others
        logger.exception(
            "context snapshots of %s in workspace %s failed (languages)", customer_id, workspace.pk
        )
        return 0


__all__ = [
    "REDRIVE_PENDING_BATCH",
    "SNAPSHOT_TASK",
    "StoredSnapshot",
    "context_body",
    "context_serialize",
    "json_render",
    "languages_rebuild",
    "snapshot_build",
    "snapshot_mark_stale",
    "snapshot_opened",
    "snapshot_read",
    "snapshot_rebuild",
    "snapshots_redrive",
]
