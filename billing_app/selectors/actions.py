"""The audit trail of billing actions (``GET /api/v1/actions/``).

Which products are add-ons (the actions' plan item) is ``selectors.products``.
"""

from __future__ import annotations

from django.db.models import QuerySet

from ..models import BillingAction, Workspace


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
