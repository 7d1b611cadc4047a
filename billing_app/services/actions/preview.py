"""The plan-change preview: the provider's proration, after the checks the change runs."""

from __future__ import annotations

from typing import Any

from ...catalog import ActionKind
from ...errors import NotFound
from ...roles import user_has_workspace_perm
from ..identity import AgentContext
from .params import action_params_validate
from .preconditions import action_customer, action_prepare
from .run import action_provider


def plan_change_preview(
    *, context: AgentContext, customer_id: str, subscription_id: str, price_id: str
) -> Any:
    """The provider's proration preview for a plan change, after the same checks the change runs."""
    workspace = context.workspace
    if not user_has_workspace_perm(context.user, "view_billing", workspace):
        raise NotFound(f"No customer {customer_id} in this workspace.", code="customer_not_found")
    params = action_params_validate(
        kind=ActionKind.CHANGE_PLAN,
        params={"subscription_id": subscription_id, "price_id": price_id},
    )
    customer = action_customer(workspace, customer_id)
    action_prepare(
        kind=ActionKind.CHANGE_PLAN, workspace=workspace, customer=customer, params=params
    )
    return action_provider(workspace).preview_plan_change(
        subscription_id=params["subscription_id"], new_price_id=params["price_id"]
    )
