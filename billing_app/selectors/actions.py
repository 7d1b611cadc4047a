"""The audit trail of billing actions (``GET /api/v1/actions/``), and the mirror reads the
actions' rules need (which products are add-ons)."""

from __future__ import annotations

from collections.abc import Iterable

from django.db.models import QuerySet

from ..models import BillingAction, MirrorProduct, Workspace
from ..subscriptions import is_addon_product


def action_list(
    *,
    workspace: Workspace,
    customer_id: str = "",
    status: str = "",
    kind: str = "",
    ticket_id: str = "",
) -> QuerySet[BillingAction]:
    """Every attempt in the workspace, newest first, optionally narrowed; never another tenant's."""
    actions = BillingAction.objects.filter(workspace=workspace).select_related(
        "actor", "approved_by", "approval"
    )
    if customer_id:
        actions = actions.filter(customer_id=customer_id)
    if status:
        actions = actions.filter(status=status)
    if kind:
        actions = actions.filter(kind=kind)
    if ticket_id:
        actions = actions.filter(ticket_id=ticket_id)
    return actions.order_by("-created_at", "-id")


def addon_product_ids(*, workspace: Workspace, product_ids: Iterable[str]) -> frozenset[str]:
    """Which of these mirrored products are add-ons (the rulebook's ``is_addon_product``)."""
    ids = {p for p in product_ids if p}
    if not ids:
        return frozenset()
    return frozenset(
        product.stripe_id
        for product in MirrorProduct.objects.filter(workspace=workspace, stripe_id__in=ids).only(
            "stripe_id", "metadata"
        )
        if is_addon_product({"id": product.stripe_id, "metadata": product.metadata or {}})
    )
