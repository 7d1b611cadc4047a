"""The history's billing actions: direct ones, and the escalated ones with their approvals."""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from typing import Any

from ...catalog import ActionKind, Role
from ...models import ApprovalRequest, BillingAction, TicketCategory
from .profile import ACTION_MS, MARKER, REFUND_REASONS
from .subscriptions import Change, discount, plan_change, seat_change
from .writer import HistoryWriter, weighted

# The kinds that change a history subscription (and record its MRR change).
SUBSCRIPTION_KINDS = (ActionKind.CHANGE_PLAN, ActionKind.ADJUST_SEATS, ActionKind.APPLY_DISCOUNT)


def _subscription_change(
    writer: HistoryWriter, rng: random.Random, kind: str, customer: int
) -> Change:
    sub = writer.subscription(customer)
    if kind == ActionKind.CHANGE_PLAN:
        return plan_change(sub, upgrade=rng.random() < 0.66, rng=rng)
    if kind == ActionKind.ADJUST_SEATS:
        return seat_change(sub, rng=rng)
    return discount(sub, rng=rng, coupon_id=f"coupon_{MARKER}_{writer.serial + 1}")


def direct_action(
    writer: HistoryWriter, rng: random.Random, kind: str, ticket: str, at: datetime
) -> None:
    ms = ACTION_MS.get(kind, 900)
    status = BillingAction.Status.SUCCEEDED if rng.random() < 0.985 else BillingAction.Status.FAILED
    succeeded = status == BillingAction.Status.SUCCEEDED
    params: dict[str, Any] = {}
    result: dict[str, Any] = {}
    amount = None
    if kind == ActionKind.APPLY_CREDIT:
        amount = rng.randrange(1000, 9900, 100)
    elif kind in (ActionKind.ISSUE_REFUND, ActionKind.REFUND_DUPLICATE_CHARGE):
        amount = rng.randrange(2000, 60000, 100)
        params["reason"] = (
            "duplicate"
            if kind == ActionKind.REFUND_DUPLICATE_CHARGE
            else weighted(rng, REFUND_REASONS)
        )
    elif kind in SUBSCRIPTION_KINDS:
        customer = writer.next_customer()
        change = _subscription_change(writer, rng, kind, customer)
        params, result = change.params, change.result
        if succeeded:
            writer.subscriptions[customer] = change.after
    writer.action(
        kind,
        at,
        ticket=ticket,
        status=status,
        amount=amount,
        params=params,
        result=result if succeeded else {},
        duration_ms=max(80, int(rng.gauss(ms, ms / 4))),
    )


def escalated_action(
    writer: HistoryWriter, rng: random.Random, category: str, ticket: str, at: datetime
) -> None:
    refund = category in (TicketCategory.REFUND_REQUEST, TicketCategory.DUPLICATE_CHARGE) or (
        rng.random() < 0.4
    )
    kind = ActionKind.ISSUE_REFUND if refund else ActionKind.APPLY_CREDIT
    amount = rng.randrange(20000, 250000, 100)
    decided = at + timedelta(minutes=rng.uniform(20, 260))
    outcome = weighted(rng, (("manager", 70), ("vp", 18), ("denied", 12)))
    approved = outcome != "denied"
    action = writer.action(
        kind,
        at,
        ticket=ticket,
        role=Role.L1,
        decision=BillingAction.Decision.APPROVAL,
        status=BillingAction.Status.SUCCEEDED if approved else BillingAction.Status.DENIED,
        amount=amount,
        params={"reason": weighted(rng, REFUND_REASONS)} if refund else {},
        duration_ms=max(200, int(rng.gauss(2100, 400))) if approved else None,
    )
    role = {"manager": Role.MANAGER, "vp": Role.VP}.get(outcome, Role.MANAGER)
    writer.approvals.append(
        (
            ApprovalRequest(
                action=action,
                workspace=writer.workspace,
                required_roles=[role.value],
                reason="above the agent's limit",
                status="approved" if approved else "denied",
                decided_role=role.value,
                decided_at=decided,
                comment="" if approved else "outside the refund policy",
                expires_at=at + timedelta(hours=writer.workspace.approval_ttl_hours),
            ),
            at,
        )
    )
