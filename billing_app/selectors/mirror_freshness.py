"""How fresh a customer's mirrored data is, and whether it is known to be superseded.

The panel's ``as_of`` is a *read* time: when the requests that brought the data
were sent (``MirrorCustomer.bundle_synced_at``, else the customer row's own
``read_at``), never when the rows were written — a read answered late is as old
as when it started. ``synced_at`` (a write time) is only the fallback for rows
stored before read times were recorded.

Known to be superseded: Stripe told us something changed after that read — a
webhook event about this customer, created at or after ``as_of``, is stored but not
applied yet (received, being processed or failed). Until it is applied, the
context answers ``stale: true`` even though the data is young. Events name their
customer in ``StripeEvent.customer_id`` (filled at intake), so the check is one probe of
``stripe_event_pending_cust_idx`` — also inside the snapshot read's single query
(``services.snapshots``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db.models import QuerySet

from ..models import MirrorCustomer, StripeEvent, Workspace

PENDING = (StripeEvent.Status.RECEIVED, StripeEvent.Status.FAILED)


def customer_data_as_of(*, customer: MirrorCustomer) -> datetime | None:
    """When the customer's mirrored data was read from the provider."""
    return customer.bundle_synced_at or customer.read_at or customer.synced_at


def customer_pending_events(workspace_id: Any, customer_id: Any, since: Any = None) -> QuerySet:
    """Events about the customer stored but not applied, created at or after ``since``.

    The arguments may be expressions (``OuterRef``) for use as a subquery.
    """
    events = StripeEvent.objects.filter(
        workspace_id=workspace_id, customer_id=customer_id, status__in=PENDING
    )
    return events if since is None else events.filter(created__gte=since)


def customer_events_newer(*, workspace_id: int, customer_id: str, as_of: datetime | None) -> bool:
    """Whether an unapplied event about the customer was created at or after ``as_of``.

    ``created`` has whole seconds: an event of the read's own second may be newer.
    """
    since = as_of.replace(microsecond=0) if as_of is not None else None
    return customer_pending_events(workspace_id, customer_id, since).exists()


def customer_mirror_superseded(*, workspace: Workspace, customer: MirrorCustomer) -> bool:
    """Whether an event about ``customer`` newer than its mirrored data is still unapplied."""
    return customer_events_newer(
        workspace_id=workspace.pk,
        customer_id=customer.stripe_id,
        as_of=customer_data_as_of(customer=customer),
    )


__all__ = [
    "PENDING",
    "customer_data_as_of",
    "customer_events_newer",
    "customer_mirror_superseded",
    "customer_pending_events",
]
