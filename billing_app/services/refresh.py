"""Keeping a customer's mirrored billing data fresh for the panel (DESIGN.md section 4).

The panel never waits on the billing provider when the customer is already
mirrored: if the data is older than ``settings.MIRROR_STALE_AFTER_SECONDS`` a
background refresh is queued (after commit) and the panel answers at once with
the mirrored data, ``stale: true, refreshing: true``. A cache lock per customer
makes concurrent requests queue one refresh, not one each.

A customer that is not mirrored at all is fetched synchronously — one
``fetch_customer_bundle``, whose provider calls run concurrently — because there
is nothing to show yet.

Freshness is a *read* time (issue 12): a bundle is stamped with when its reads
were sent, ``bundle_synced_at`` only ever moves forward, and a bundle whose
answer arrives after a newer read was stored changes nothing (``services.mirror``).
The panel is also told ``stale`` when the mirror is known to be superseded: a
webhook event about the customer is stored but not applied yet
(``selectors.mirror_freshness``).

Provider health: any ``ProviderUnavailable`` seen here (or the sandbox's down
switch) is recorded in the cache for a short while (``providers.health``), and the
panel shows the mirrored data under a "provider unavailable" banner until a call
succeeds again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from ..errors import NotFound, ProviderError, ProviderUnavailable
from ..models import MirrorCustomer, Workspace
from ..providers import get_provider
from ..providers.base import CustomerBundle
from ..providers.health import (  # noqa: F401  (re-exported: services import them from here)
    PROVIDER_DOWN_SECONDS,
    provider_health_record,
    provider_health_status,
)
from ..queue import enqueue
from ..selectors.mirror_freshness import customer_data_as_of, customer_mirror_superseded
from .context_cache import customer_context_invalidate
from .mirror import mirror_read_clock
from .mirror_bulk import mirror_bundle_upsert

logger = logging.getLogger(__name__)

# The background refresh (``tasks.refresh``), named: services never import tasks.
REFRESH_TASK = "billing_app.refresh_customer"
# How long one background refresh may hold the per-customer lock.
REFRESH_LOCK_SECONDS = 120


def _lock_key(workspace_id: int, customer_id: str) -> str:
    return f"billing-desk:refresh:{workspace_id}:{customer_id}"


def customer_data_age(*, customer: MirrorCustomer) -> datetime | None:
    """When this customer's mirrored data was last read from the provider."""
    return customer_data_as_of(customer=customer)


def customer_is_stale(*, customer: MirrorCustomer, now: datetime | None = None) -> bool:
    synced = customer_data_age(customer=customer)
    if synced is None:
        return True
    age = (now or timezone.now()) - synced
    return age > timedelta(seconds=settings.MIRROR_STALE_AFTER_SECONDS)


def _bundle_objects(bundle: CustomerBundle) -> list[dict[str, Any]]:
    """The bundle's objects in an order where referenced objects come first."""
    discounts = [
        d
        for sub in bundle.subscriptions
        for d in (sub.get("discounts") or [])
        if isinstance(d, dict) and d.get("object") == "discount"
    ]
    return [
        *bundle.products,
        *bundle.prices,
        *bundle.payment_methods,
        bundle.customer,
        *bundle.subscriptions,
        *discounts,
        *bundle.invoices,
        *bundle.charges,
        *bundle.refunds,
        *bundle.balance_transactions,
    ]


@transaction.atomic
def customer_bundle_store(
    *, workspace: Workspace, customer_id: str, bundle: CustomerBundle, read_at: datetime
) -> MirrorCustomer | None:
    """Upsert every object of the bundle read at ``read_at`` (when its requests were sent)
    and move the customer's ``bundle_synced_at`` forward to it — never back.

    In bulk (``mirror_bulk``): a first panel load waits for this after the Stripe round trip.
    A customer seen for the first time is inserted with its ``bundle_synced_at`` and
    handed back as stored (no ``UPDATE``, no re-read: ``mirror_bundle_upsert``).
    """
    inserted = mirror_bundle_upsert(
        workspace=workspace,
        objects=_bundle_objects(bundle),
        read_at=read_at,
        customer_id=customer_id,
    )
    if inserted is not None:
        return inserted
    if (
        MirrorCustomer.objects.filter(workspace=workspace, stripe_id=customer_id)
        .filter(Q(bundle_synced_at__isnull=True) | Q(bundle_synced_at__lt=read_at))
        .update(bundle_synced_at=read_at)
    ):
        customer_context_invalidate(workspace_id=workspace.pk, customer_id=customer_id)
    return MirrorCustomer.objects.filter(workspace=workspace, stripe_id=customer_id).first()


def _is_missing(exc: ProviderError) -> bool:
    return exc.status == 404 or exc.provider_code == "resource_missing"


@dataclass(frozen=True)
class FetchedBundle:
    """A customer's bundle as the provider answered it, not stored yet, and when its
    requests were sent (the read time ``customer_bundle_store`` stamps it with)."""

    bundle: CustomerBundle
    read_at: datetime


def customer_bundle_fetch(*, workspace: Workspace, customer_id: str) -> FetchedBundle:
    """Fetch a customer's bundle from the workspace's provider, without storing it.

    Called outside any transaction: the provider's latency (and its retries) must not
    keep a database connection idle in a transaction. Records the provider's health.
    Raises ``NotFound`` when the workspace's own provider does not know the id (so
    another tenant's customer id is a 404, never their data) and ``ProviderUnavailable``
    when the provider does not answer.
    """
    provider = get_provider(workspace)
    read_at = mirror_read_clock()
    try:
        bundle = provider.fetch_customer_bundle(customer_id)
    except ProviderUnavailable:
        provider_health_record(workspace_id=workspace.pk, available=False)
        raise
    except ProviderError as exc:
        if _is_missing(exc):
            raise NotFound("No such billing customer.", code="customer_not_found") from exc
        raise
    provider_health_record(workspace_id=workspace.pk, available=True)
    if not bundle.customer or bundle.customer.get("id") != customer_id:
        raise NotFound("No such billing customer.", code="customer_not_found")
    return FetchedBundle(bundle=bundle, read_at=read_at)


def customer_fetched_store(
    *, workspace: Workspace, customer_id: str, fetched: FetchedBundle
) -> MirrorCustomer:
    """Mirror a bundle ``customer_bundle_fetch`` read; the customer as stored (``NotFound``
    when the mirror holds none after it)."""
    customer = customer_bundle_store(
        workspace=workspace, customer_id=customer_id, bundle=fetched.bundle, read_at=fetched.read_at
    )
    if customer is None:
        raise NotFound("No such billing customer.", code="customer_not_found")
    return customer


def customer_fetch_now(*, workspace: Workspace, customer_id: str) -> MirrorCustomer:
    """Fetch a customer the mirror does not know yet, mirror it, and return it
    (``customer_bundle_fetch`` then ``customer_fetched_store``: same errors)."""
    fetched = customer_bundle_fetch(workspace=workspace, customer_id=customer_id)
    return customer_fetched_store(workspace=workspace, customer_id=customer_id, fetched=fetched)


def customer_refresh(*, workspace_id: int, customer_id: str) -> bool:
    """The background refresh: re-fetch the bundle and mirror it. Safe to run twice.

    Returns whether the mirror was refreshed. An outage is recorded, not raised:
    the panel keeps showing the mirrored data with a banner.
    """
    try:
        workspace = Workspace.objects.filter(pk=workspace_id, is_active=True).first()
        if workspace is None:
            return False
        read_at = mirror_read_clock()
        try:
            bundle = get_provider(workspace).fetch_customer_bundle(customer_id)
        except ProviderUnavailable:
            provider_health_record(workspace_id=workspace_id, available=False)
            logger.warning(
                "refresh of %s in workspace %s: provider unavailable", customer_id, workspace_id
            )
            return False
        except ProviderError as exc:
            logger.warning(
                "refresh of %s in workspace %s failed: %s", customer_id, workspace_id, exc.code
            )
            return False
        provider_health_record(workspace_id=workspace_id, available=True)
        customer_bundle_store(
            workspace=workspace, customer_id=customer_id, bundle=bundle, read_at=read_at
        )
        return True
    finally:
        cache.delete(_lock_key(workspace_id, customer_id))


def customer_refresh_enqueue(*, workspace: Workspace, customer_id: str) -> bool:
    """Queue one background refresh of the customer, unless one is already under way.

    Returns True when a refresh is queued or in flight. The task is sent after
    the surrounding transaction commits (immediately outside one).
    """
    lock = _lock_key(workspace.pk, customer_id)
    if not cache.add(lock, timezone.now().isoformat(), REFRESH_LOCK_SECONDS):
        return True
    workspace_id = workspace.pk

    def send() -> None:
        try:
            enqueue(REFRESH_TASK, workspace_id, customer_id)
        except Exception:  # broker down: let the next request try again
            cache.delete(lock)
            logger.exception("could not queue the refresh of %s", customer_id)

    transaction.on_commit(send)
    return True


@dataclass(frozen=True)
class MirrorState:
    """What the panel needs to know about the freshness of one customer's data."""

    customer: MirrorCustomer
    stale: bool
    refreshing: bool
    provider_status: str


def customer_mirror_lookup(
    *, workspace: Workspace, customer_id: str
) -> MirrorCustomer | FetchedBundle:
    """The mirrored customer, or — not mirrored yet — its bundle fetched now, not stored
    (``NotFound`` / ``ProviderUnavailable`` propagate). The first half of
    ``customer_mirror_ensure``, for a caller that stores inside a transaction of its own:
    it looks up (and fetches) before opening it, so no transaction waits on the provider."""
    customer = MirrorCustomer.objects.filter(workspace=workspace, stripe_id=customer_id).first()
    if customer is not None:
        return customer
    return customer_bundle_fetch(workspace=workspace, customer_id=customer_id)


def customer_mirror_ensure(
    *,
    workspace: Workspace,
    customer_id: str,
    looked_up: MirrorCustomer | FetchedBundle | None = None,
) -> MirrorState:
    """Make sure the customer is mirrored and decide whether to refresh it in the background.

    Not mirrored → fetched now (``NotFound`` / ``ProviderUnavailable`` propagate:
    404 / 503). Mirrored but stale → a refresh is queued and the mirrored data
    is answered at once. Deleted customers are not refreshed. ``looked_up``: what
    ``customer_mirror_lookup`` answered before the caller's transaction (a fetched
    bundle is stored here, in it).
    """
    if looked_up is None:
        looked_up = customer_mirror_lookup(workspace=workspace, customer_id=customer_id)
    if isinstance(looked_up, FetchedBundle):
        return MirrorState(
            customer=customer_fetched_store(
                workspace=workspace, customer_id=customer_id, fetched=looked_up
            ),
            stale=False,
            refreshing=False,
            provider_status=provider_health_status(workspace_id=workspace.pk),
        )
    customer = looked_up
    stale, refreshing = customer_freshness(
        workspace=workspace,
        customer_id=customer_id,
        as_of=customer_data_age(customer=customer),
        deleted=customer.deleted,
        superseded=lambda: customer_mirror_superseded(workspace=workspace, customer=customer),
    )
    return MirrorState(
        customer=customer,
        stale=stale,
        refreshing=refreshing,
        provider_status=provider_health_status(workspace_id=workspace.pk),
    )


def customer_freshness(
    *,
    workspace: Workspace,
    customer_id: str,
    as_of: datetime | None,
    deleted: bool,
    superseded: bool | Callable[[], bool],
) -> tuple[bool, bool]:
    """``(stale, refreshing)`` for data read at ``as_of``; queues the refresh when stale.

    Stale: older than ``MIRROR_STALE_AFTER_SECONDS``, or known to be superseded (an
    event about the customer not applied yet; a callable is asked only when the age
    alone does not decide). Deleted customers are not refreshed. The one rule for
    ``customer_mirror_ensure`` and the snapshot read path (``services.context_read``).
    """
    stale = as_of is None or timezone.now() - as_of > timedelta(
        seconds=settings.MIRROR_STALE_AFTER_SECONDS
    )
    if not stale:
        stale = superseded() if callable(superseded) else superseded
    refreshing = False
    if stale and not deleted:
        refreshing = customer_refresh_enqueue(workspace=workspace, customer_id=customer_id)
    return stale, refreshing
