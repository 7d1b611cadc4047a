"""Billing Desk's own records in the context: approvals pending and the recent actions.

Both move with the wall clock (``horizon_note_real``): an approval stops being pending
when it expires, and an action leaves the recent ones 90 days after it was made
(``facts.action_window_exit``; an action pending approval stays).
"""

from __future__ import annotations

from datetime import datetime

from ...models import ApprovalRequest, BillingAction
from ...money import money_json
from .facts import action_window_exit
from .horizon import horizon_note_real
from .shapes import Obj

RECENT_ACTIONS = 10


def _actor_name(action: BillingAction) -> str:
    user = action.actor
    return user.get_full_name() or user.get_username()


def _action_amount(action: BillingAction) -> Obj | None:
    if action.amount is None or not action.currency:
        return None
    return money_json(action.amount, action.currency)


def pending_approvals(actions: list[BillingAction], real_now: datetime) -> list[Obj]:
    """The approval requests still pending and not expired (in wall-clock time)."""
    pending = []
    for action in actions:
        if action.status != BillingAction.Status.PENDING_APPROVAL:
            continue
        approval = getattr(action, "approval", None)
        if (
            approval is None
            or approval.status != ApprovalRequest.Status.PENDING
            or approval.expires_at <= real_now
        ):
            continue
        horizon_note_real(approval.expires_at)  # expired from then on
        pending.append(
            {
                "id": approval.pk,
                "action_id": str(action.pk),
                "kind": action.kind,
                "amount": _action_amount(action),
                "requested_by": _actor_name(action),
                "required_roles": list(approval.required_roles or []),
                "reason": approval.reason_text,
                "expires_at": approval.expires_at.isoformat(),
                "created_at": approval.created_at.isoformat(),
            }
        )
    return pending


def recent_actions(actions: list[BillingAction]) -> list[Obj]:
    """The newest ``RECENT_ACTIONS`` actions read; the list changes when one of them leaves."""
    for action in actions[:RECENT_ACTIONS]:
        horizon_note_real(action_window_exit(action))
    return [
        {
            "id": str(a.pk),
            "kind": a.kind,
            "status": a.status,
            "amount": _action_amount(a),
            "actor": _actor_name(a),
            "created_at": a.created_at.isoformat(),
            "ticket_id": a.ticket_id,
            "provider_object_id": a.provider_object_id,
        }
        for a in actions[:RECENT_ACTIONS]
    ]
