"""The backfill: every billing object of a workspace into the mirror, resumably.

Each resource is paged with ``provider.list_objects`` (Stripe's ``starting_after``
cursor). After each page, the page's objects and the cursor are committed together
in one transaction, so an interrupted run — Stripe down, a deploy, Ctrl-C —
resumes after the last page it stored. Per-customer resources (payment methods,
balance transactions) keep the last customer fully synced as their cursor.

Each page is stamped with when its request was sent (``read_at``): a backfill page
that lists an object as it was before a webhook's newer re-read changes nothing
(``services.mirror``: the mirror never goes back in time).

``ProviderUnavailable`` stops the run cleanly: what was stored stays, the cursor
says where to continue, and ``sync_billing`` is simply run again.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from ..errors import ProviderUnavailable, ValidationFailed
from ..models import MirrorCustomer, SyncState, Workspace
from ..providers import get_provider
from ..providers.base import BillingProvider
from .mirror import mirror_read_clock, mirror_upsert_many

# In dependency order: catalog, customers, then what refers to them.
TOP_LEVEL_RESOURCES = (
    "products",
    "prices",
    "customers",
    "subscriptions",
    "invoices",
    "charges",
    "refunds",
)
PER_CUSTOMER_RESOURCES = ("payment_methods", "balance_transactions")
SYNC_RESOURCES = TOP_LEVEL_RESOURCES + PER_CUSTOMER_RESOURCES
PAGE_SIZE = 100

Progress = Callable[[str, int], None]


@dataclass
class SyncReport:
    synced: dict[str, int] = field(default_factory=dict)
    completed: list[str] = field(default_factory=list)
    interrupted: str = ""  # the resource Stripe stopped answering on
    error: str = ""


def sync_states_reset(*, workspace: Workspace, resources: list[str]) -> int:
    """Forget the cursors of ``resources``: the next run starts them from the beginning."""
    return SyncState.objects.filter(workspace=workspace, resource__in=resources).update(
        cursor="", completed=False, objects_synced=0, started_at=None
    )


def _state(workspace: Workspace, resource: str) -> SyncState:
    state, _ = SyncState.objects.get_or_create(workspace=workspace, resource=resource)
    if state.started_at is None:
        state.started_at = timezone.now()
        state.save(update_fields=["started_at", "updated_at"])
    return state


@transaction.atomic
def _store_page(
    *,
    workspace: Workspace,
    state_pk: int,
    objects: list[dict],
    cursor: str,
    done: bool,
    read_at: datetime,
) -> int:
    count = mirror_upsert_many(workspace=workspace, objects=objects, read_at=read_at)
    state = SyncState.objects.select_for_update().get(pk=state_pk)
    state.cursor = cursor
    state.completed = done
    state.objects_synced += count
    state.save(update_fields=["cursor", "completed", "objects_synced", "updated_at"])
    return count


def _sync_top_level(
    *, workspace: Workspace, provider: BillingProvider, state: SyncState, progress: Progress
) -> int:
    total = 0
    cursor = state.cursor or None
    while True:
        read_at = mirror_read_clock()
        page = provider.list_objects(state.resource, cursor=cursor, limit=PAGE_SIZE)
        if page.objects:
            cursor = str(page.objects[-1]["id"])
        count = _store_page(
            workspace=workspace,
            state_pk=state.pk,
            objects=page.objects,
            cursor=cursor or "",
            done=not page.has_more,
            read_at=read_at,
        )
        total += count
        progress(state.resource, len(page.objects))
        if not page.has_more:
            return total


def _sync_per_customer(
    *, workspace: Workspace, provider: BillingProvider, state: SyncState, progress: Progress
) -> int:
    try:
        return _sync_each_customer(
            workspace=workspace, provider=provider, state=state, progress=progress
        )
    except ValidationFailed as exc:
        if exc.code != "unknown_resource":
            raise
    # A provider that lists these objects account-wide (the sandbox) is paged flat.
    SyncState.objects.filter(pk=state.pk).update(cursor="")
    state.cursor = ""
    return _sync_top_level(workspace=workspace, provider=provider, state=state, progress=progress)


def _sync_each_customer(
    *, workspace: Workspace, provider: BillingProvider, state: SyncState, progress: Progress
) -> int:
    total = 0
    customers = list(
        MirrorCustomer.objects.filter(workspace=workspace, deleted=False)
        .filter(stripe_id__gt=state.cursor)
        .order_by("stripe_id")
        .values_list("stripe_id", flat=True)
    )
    for customer_id in customers:
        objects: list[dict] = []
        cursor: str | None = None
        read_at = mirror_read_clock()  # the customer's first page: the oldest of its reads
        while True:
            page = provider.list_objects(
                f"customers/{customer_id}/{state.resource}", cursor=cursor, limit=PAGE_SIZE
            )
            objects.extend(
                {**obj, "customer": obj.get("customer") or customer_id} for obj in page.objects
            )
            progress(state.resource, len(page.objects))
            if not page.has_more or not page.objects:
                break
            cursor = str(page.objects[-1]["id"])
        total += _store_page(
            workspace=workspace,
            state_pk=state.pk,
            objects=objects,
            cursor=customer_id,
            done=False,
            read_at=read_at,
        )
    SyncState.objects.filter(pk=state.pk).update(completed=True)
    return total


def billing_sync(
    *,
    workspace: Workspace,
    resources: list[str] | None = None,
    restart: bool = False,
    provider: BillingProvider | None = None,
    progress: Progress | None = None,
) -> SyncReport:
    """Backfill ``resources`` (default: all, in dependency order) from where the last run stopped."""
    wanted = list(resources or SYNC_RESOURCES)
    unknown = sorted(set(wanted) - set(SYNC_RESOURCES))
    if unknown:
        raise ValidationFailed(
            f"Unknown resources: {', '.join(unknown)}.",
            code="unknown_resource",
            details={"known": list(SYNC_RESOURCES)},
        )
    wanted = [r for r in SYNC_RESOURCES if r in wanted]
    if restart:
        sync_states_reset(workspace=workspace, resources=wanted)
    provider = provider or get_provider(workspace)
    progress = progress or (lambda resource, count: None)
    report = SyncReport()
    for resource in wanted:
        state = _state(workspace, resource)
        if state.completed:
            report.completed.append(resource)
            continue
        sync = _sync_per_customer if resource in PER_CUSTOMER_RESOURCES else _sync_top_level
        try:
            report.synced[resource] = sync(
                workspace=workspace, provider=provider, state=state, progress=progress
            )
        except ProviderUnavailable as exc:
            report.interrupted = resource
            report.error = exc.message
            return report
        report.completed.append(resource)
    if report.synced.get("charges") or report.synced.get("invoices"):
        # The history now holds past payment failures: record them and their recoveries.
        from .payment_failures import payment_failures_sync

        payment_failures_sync(workspace=workspace)
    return report
