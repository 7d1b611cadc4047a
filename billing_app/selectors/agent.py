"""What the calling agent is and may do (``GET /api/v1/me/``)."""

from __future__ import annotations

from typing import Any

from ..agent_context import AgentContext
from ..catalog import (
    APPROVE_ACTIONS,
    APPROVER_ROLES,
    KIND_POLICY_ACTION,
    POLICY_MEASURE,
    ActionKind,
    Measure,
)
from ..models import ActionPolicy, ApprovalRoute
from ..money import format_money
from ..roles import user_has_workspace_perm


def _limit_display(measure: Measure, limit: int | None, currency: str) -> str:
    if limit is None or measure == Measure.NONE:
        return ""
    if measure == Measure.AMOUNT:
        return format_money(limit, currency)
    if measure == Measure.PERCENT:
        return f"{limit}%"
    return f"{limit} days"


def agent_capabilities(*, context: AgentContext) -> dict[str, Any]:
    workspace, role = context.workspace, context.role
    cells = {
        cell.action: cell
        for cell in ActionPolicy.objects.filter(workspace=workspace, role=role.value)
    }
    # Who approves a request of each matrix row, by size (the panel names them in its confirmation).
    routes: dict[str, list[dict[str, Any]]] = {}
    for route in ApprovalRoute.objects.filter(workspace=workspace).order_by("threshold"):
        routes.setdefault(route.action, []).append(
            {
                "threshold": route.threshold,
                "inclusive": route.threshold_inclusive,
                "roles": list(route.approver_roles),
            }
        )
    actions = []
    for kind in ActionKind:
        policy_action = KIND_POLICY_ACTION[kind]
        cell = cells.get(policy_action.value)
        permitted = user_has_workspace_perm(context.user, policy_action.value, workspace)
        if cell is None or not permitted or cell.effect == ActionPolicy.Effect.DENY:
            mode = "not_permitted"
        elif cell.effect == ActionPolicy.Effect.REQUEST:
            mode = "request_approval"
        else:
            mode = "direct"
        measure = POLICY_MEASURE.get(policy_action, Measure.NONE)
        limit = cell.limit if cell and mode == "direct" else None
        actions.append(
            {
                "kind": kind.value,
                "mode": mode,
                "measure": measure.value,
                "limit": limit,
                "limit_inclusive": cell.limit_inclusive if cell else True,
                "limit_display": _limit_display(measure, limit, workspace.base_currency),
                "above_limit": cell.above_limit if cell and limit is not None else "",
                "customer_requested_only": bool(cell and cell.customer_requested_only),
                "approval_routes": routes.get(policy_action.value, []),
            }
        )
    return {
        "agent": {
            "id": context.user.pk,
            "name": context.membership.display_name or context.user.get_username(),
            "email": context.membership.email,
            "helpdesk_user_id": context.membership.helpdesk_user_id,
        },
        "workspace": {
            "slug": workspace.slug,
            "name": workspace.name,
            "base_currency": workspace.base_currency,
            "provider": workspace.provider,
        },
        "role": {"key": role.value, "label": role.label, "source": context.membership.role_source},
        # Whether this agent decides approval requests (the panel's Approvals tab).
        "can_approve": role in APPROVER_ROLES
        and user_has_workspace_perm(context.user, APPROVE_ACTIONS, workspace),
        "actions": actions,
    }
