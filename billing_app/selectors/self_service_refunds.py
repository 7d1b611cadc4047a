"""Reads for self-service refund requests: the customer's recent charges, their requests
on a link, and the refund history an agent's investigation shows."""

from __future__ import annotations

from datetime import datetime, timedelta
from uuid import UUID

from django.db.models import QuerySet

from ..models import (
    MirrorCharge,
    MirrorCustomer,
    MirrorRefund,
    SelfServiceLink,
    SelfServiceRefundRequest,
    Workspace,
)
from .payments import charges_light

# How many of the customer's latest charges the page lists, and how far back it looks
# (whichever is shorter; the refund window still decides what is eligible).
RECENT_CHARGES = 10
RECENT_DAYS_MIN = 90


def customer_recent_charges(
    *, workspace: Workspace, customer_id: str, now: datetime
) -> list[MirrorCharge]:
    """The customer's latest successful charges, newest first (failed ones paid nothing)."""
    days = max(workspace.refund_window_days, RECENT_DAYS_MIN)
    return list(
        charges_light(
            MirrorCharge.objects.filter(
                workspace=workspace,
                customer_id=customer_id,
                status="succeeded",
                created__gte=now - timedelta(days=days),
            )
        ).order_by("-created", "-stripe_id")[:RECENT_CHARGES]
    )


def link_requests(*, link: SelfServiceLink) -> dict[str, SelfServiceRefundRequest]:
    """The link's requests by charge id."""
    return {r.charge_id: r for r in SelfServiceRefundRequest.objects.filter(link=link)}


def customer_recent_refunds(
    *, workspace: Workspace, customer_id: str, limit: int = 5
) -> QuerySet[MirrorRefund]:
    """The customer's latest refunds from the mirror (the investigation's history)."""
    return (
        MirrorRefund.objects.filter(workspace=workspace, customer_id=customer_id)
        .exclude(status__in=("failed", "canceled"))
        .order_by("-created")[:limit]
    )


def customer_contact(*, workspace: Workspace, customer_id: str) -> tuple[str, str]:
    """(email, name) of the customer as the mirror has them; ("", "") when unknown."""
    row = (
        MirrorCustomer.objects.filter(workspace=workspace, stripe_id=customer_id)
        .values_list("email", "name")
        .first()
    )
    return (row[0] or "", row[1] or "") if row else ("", "")


def requests_since(*, link: SelfServiceLink, since: datetime) -> int:
    return SelfServiceRefundRequest.objects.filter(link=link, created_at__gt=since).count()


def customer_requests_since(*, workspace: Workspace, customer_id: str, since: datetime) -> int:
    return SelfServiceRefundRequest.objects.filter(
        workspace=workspace, customer_id=customer_id, created_at__gt=since
    ).count()


# A request that may still become a refund (received, processing, with an agent).
OPEN_STATUSES = (
    SelfServiceRefundRequest.Status.RECEIVED,
    SelfServiceRefundRequest.Status.PROCESSING,
    SelfServiceRefundRequest.Status.WITH_AGENTS,
)


def open_request_charges(
    *,
    workspace_id: int,
    customer_id: str,
    exclude_link_id: UUID | None = None,
    exclude_pk: UUID | None = None,
    charge_id: str = "",
) -> set[str]:
    """The charges the customer's open requests (on other links, or other rows) ask about."""
    rows = SelfServiceRefundRequest.objects.filter(
        workspace_id=workspace_id, customer_id=customer_id, status__in=OPEN_STATUSES
    )
    if charge_id:
        rows = rows.filter(charge_id=charge_id)
    if exclude_link_id is not None:
        rows = rows.exclude(link_id=exclude_link_id)
    if exclude_pk is not None:
        rows = rows.exclude(pk=exclude_pk)
    return set(rows.values_list("charge_id", flat=True).distinct())
