"""How fresh a customer's mirrored data is, and whether it is known to be superseded.

The panel's ``as_of`` is a *read* time: when the requests that brought the data
were sent (``MirrorCustomer.bundle_synced_at``, else the customer row's own
``read_at``), never when the rows were written — a read answered late is as old
as when it started. ``synced_at`` (a write time) is only the fallback for rows
stored before read times were recorded.

Known to be superseded: Stripe told us something changed after that read — a
webhook event about this customer, created at or after ``as_of``, is stored but not
applied yet (received, being processed or failed). Until it is applied, the
context answers ``stale: true`` even though the data is young.
"""

from __future__ import annotations

from datetime import datetime

from django.db.models import Q

from ..models import MirrorCustomer, StripeEvent, Workspace

PENDING = (StripeEvent.Status.RECEIVED, StripeEvent.Status.FAILED)


def customer_data_as_of(*, customer: MirrorCustomer) -> datetime | None:
    """When the customer's mirrored data was read from the provider."""
    return customer.bundle_synced_at or customer.read_at or customer.synced_at


def customer_mirror_superseded(*, workspace: Workspace, customer: MirrorCustomer) -> bool:
    """Whether an event about ``customer`` newer than its mirrored data is still unapplied."""
    as_of = customer_data_as_of(customer=customer)
    cid = customer.stripe_id
    pending = StripeEvent.objects.filter(workspace=workspace, status__in=PENDING).filter(
        Q(payload__data__object__customer=cid)
        | Q(payload__data__object__object="customer", payload__data__object__id=cid)
    )
    if as_of is not None:
        # ``created`` has whole seconds: an event of the read's own second may be newer.
        pending = pending.filter(created__gte=as_of.replace(microsecond=0))
    return pending.exists()


__all__ = ["customer_data_as_of", "customer_mirror_superseded"]
