"""Billing tickets and their categories: volume, escalation, resolution, CSAT, auto-resolved.

The month's tickets come from the daily roll-ups (``ticket_groups``: one row per category
and state and day, summed); the ticket figures and the category table are both read
from them. ``ticket_state`` is the per-ticket state the roll-ups are filed under.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.db.models import Case, CharField, Exists, Q, Value, When
from django.utils.translation import gettext_noop

from ...catalog import ActionKind
from ...models import BillingAction, TicketCategory, Workspace
from ...vocabulary import Labels
from .shared import SEP, TICKET_FAMILY, MonthRollups, pct, round_or_none, ticket_action

RESOLUTION_TARGET_SECONDS = 300  # the brief: "target: <5 minutes"
RESOLVED_STATUSES = ("solved", "closed", "resolved")

# The categories' labels as the dashboard shows them, read in the active language (the
# model's choices keep the English words; a test keeps the two tables equal in English).
CATEGORY_LABELS: Labels = Labels(
    {
        TicketCategory.PAYMENT_FAILED: gettext_noop("Payment failed"),
        TicketCategory.INVOICE_DISCREPANCY: gettext_noop("Invoice discrepancy"),
        TicketCategory.PLAN_CHANGE_REQUEST: gettext_noop("Plan change request"),
        TicketCategory.REFUND_REQUEST: gettext_noop("Refund request"),
        TicketCategory.OVERCHARGE_DISPUTE: gettext_noop("Overcharge dispute"),
        TicketCategory.DUPLICATE_CHARGE: gettext_noop("Duplicate charge"),
        TicketCategory.PAYMENT_METHOD_UPDATE: gettext_noop("Payment method update"),
        TicketCategory.TAX_QUESTION: gettext_noop("Tax question"),
        TicketCategory.OTHER_BILLING: gettext_noop("Other billing"),
    }
)

# Which action kinds resolve a ticket of each category (for "auto-resolved").
CATEGORY_ACTION_KINDS: dict[str, tuple[str, ...] | None] = {
    TicketCategory.PAYMENT_FAILED: (
        ActionKind.GENERATE_PAYMENT_LINK,
        ActionKind.EXTEND_GRACE_PERIOD,
        ActionKind.UPDATE_PAYMENT_METHOD,
    ),
    TicketCategory.INVOICE_DISCREPANCY: (
        ActionKind.RESEND_INVOICE,
        ActionKind.APPLY_CREDIT,
        ActionKind.SEND_TAX_INVOICE,
    ),
    TicketCategory.PLAN_CHANGE_REQUEST: (
        ActionKind.CHANGE_PLAN,
        ActionKind.ADJUST_SEATS,
        ActionKind.EXTEND_TRIAL,
        ActionKind.PAUSE_SUBSCRIPTION,
        ActionKind.RESUME_SUBSCRIPTION,
        ActionKind.CANCEL_SUBSCRIPTION,
        ActionKind.UNDO_CANCELLATION,
        ActionKind.APPLY_DISCOUNT,
    ),
    TicketCategory.REFUND_REQUEST: (ActionKind.ISSUE_REFUND, ActionKind.REFUND_DUPLICATE_CHARGE),
    TicketCategory.OVERCHARGE_DISPUTE: (ActionKind.APPLY_CREDIT, ActionKind.ISSUE_REFUND),
    TicketCategory.DUPLICATE_CHARGE: (
        ActionKind.REFUND_DUPLICATE_CHARGE,
        ActionKind.ISSUE_REFUND,
    ),
    TicketCategory.PAYMENT_METHOD_UPDATE: (
        ActionKind.UPDATE_PAYMENT_METHOD,
        ActionKind.GENERATE_PAYMENT_LINK,
    ),
    TicketCategory.TAX_QUESTION: (ActionKind.SEND_TAX_INVOICE, ActionKind.RESEND_INVOICE),
    TicketCategory.OTHER_BILLING: None,  # any kind
}


def ticket_predicates(workspace: Workspace) -> tuple[Q, Q, Q]:
    """(resolved, escalated, auto-resolved action present) as conditions on a ticket row."""
    resolved = Q(solved_at__isnull=False) | Q(status__in=RESOLVED_STATUSES)
    escalated = Q(escalated=True) | Q(
        Exists(ticket_action(workspace, decision=BillingAction.Decision.APPROVAL))
    )
    direct_success = {
        "status": BillingAction.Status.SUCCEEDED,
        "decision": BillingAction.Decision.ALLOW,
    }
    auto = Q()
    for category, kinds in CATEGORY_ACTION_KINDS.items():
        extra = {"kind__in": [str(k) for k in kinds]} if kinds else {}
        auto |= Q(category=category) & Q(
            Exists(ticket_action(workspace, **direct_success, **extra))
        )
    return resolved, escalated, auto


# Each ticket of the month falls in exactly one state; grouping by it evaluates the
# per-ticket EXISTS lookups once per ticket (at most two: escalation, then auto-resolved).
NOT_BILLING, ESCALATED, AUTO_RESOLVED, RESOLVED, OPEN = "n", "e", "a", "r", "o"


def ticket_state(workspace: Workspace) -> Case:
    """The ticket's one-of-five state (``NOT_BILLING`` … ``OPEN``) as an expression on a
    ticket row: what ``services.rollups`` files each ticket under."""
    resolved, escalated, auto = ticket_predicates(workspace)
    return Case(
        When(is_billing=False, then=Value(NOT_BILLING)),
        When(escalated, then=Value(ESCALATED)),
        When(resolved & auto, then=Value(AUTO_RESOLVED)),
        When(resolved, then=Value(RESOLVED)),
        default=Value(OPEN),
        output_field=CharField(),
    )


def ticket_groups(*, rollups: MonthRollups) -> list[dict[str, Any]]:
    """The month's tickets counted by (category, state), with the sums the figures need,
    from the daily roll-ups (``services.rollups``: family ``ticket``)."""
    groups = []
    for key, m in rollups.rows(TICKET_FAMILY).items():
        category, state = key.split(SEP, 1)
        groups.append(
            {
                "category": category,
                "state": state,
                "tickets": m["count"],
                "resolved": m["m1"],
                "resolution_sum": m["m2"] if m["m3"] else None,
                "resolution_n": m["m3"],
                "csat_sum": m["m4"] if m["m5"] else None,
                "csat_n": m["m5"],
                "reopens": m["m6"],
            }
        )
    return groups


def _avg(total: float | None, count: int) -> float | None:
    return None if not count or total is None else float(total) / count


def _sum(rows: Iterable[dict[str, Any]], name: str) -> int:
    return sum(r[name] or 0 for r in rows)


def ticket_metrics(*, groups: list[dict[str, Any]]) -> dict[str, Any]:
    billing = [g for g in groups if g["state"] != NOT_BILLING]
    count, total = _sum(billing, "tickets"), _sum(groups, "tickets")
    escalated = _sum([g for g in billing if g["state"] == ESCALATED], "tickets")
    clean = _sum([g for g in billing if g["state"] in (AUTO_RESOLVED, RESOLVED)], "tickets")
    # Every billing ticket is in exactly one of the three: resolved without escalation,
    # escalated (solved or not), still open (neither) — they add up to ``billing``.
    still_open = _sum([g for g in billing if g["state"] == OPEN], "tickets")
    avg_resolution = round_or_none(
        _avg(_sum(billing, "resolution_sum"), _sum(billing, "resolution_n"))
    )
    return {
        "total": total,
        "billing": count,
        "billing_share_pct": pct(count, total),
        "resolved_without_escalation": clean,
        "resolved_without_escalation_pct": pct(clean, count),
        "escalated": escalated,
        "escalated_pct": pct(escalated, count),
        "still_open": still_open,
        "still_open_pct": pct(still_open, count),
        # Not solved or closed in the helpdesk, escalated or not (a workload figure; it
        # overlaps "escalated" and is not part of the breakdown above).
        "unresolved": count - _sum(billing, "resolved"),
        "reopens": _sum(billing, "reopens"),
        "avg_resolution_seconds": avg_resolution,
        "avg_resolution_minutes": round_or_none(avg_resolution / 60) if avg_resolution else None,
        "resolution_target_seconds": RESOLUTION_TARGET_SECONDS,
        "resolution_within_target": (
            None if avg_resolution is None else avg_resolution < RESOLUTION_TARGET_SECONDS
        ),
        "csat": round_or_none(_avg(_sum(billing, "csat_sum"), _sum(billing, "csat_n"))),
        "csat_responses": _sum(billing, "csat_n"),
    }


def category_metrics(*, groups: list[dict[str, Any]], billing_total: int) -> list[dict]:
    result: list[dict[str, Any]] = []
    for category in TicketCategory:
        rows = [g for g in groups if g["category"] == category.value and g["state"] != NOT_BILLING]
        tickets = _sum(rows, "tickets")
        avg = _avg(_sum(rows, "resolution_sum"), _sum(rows, "resolution_n"))
        auto = _sum([g for g in rows if g["state"] == AUTO_RESOLVED], "tickets")
        result.append(
            {
                "key": category.value,
                "label": CATEGORY_LABELS[category.value],
                "tickets": tickets,
                "share_pct": pct(tickets, billing_total),
                "avg_resolution_seconds": round_or_none(avg),
                "avg_resolution_minutes": round_or_none(avg / 60) if avg is not None else None,
                "auto_resolved": auto,
                "auto_resolved_pct": pct(auto, tickets, 0),
            }
        )
    order = [c.value for c in TicketCategory]
    result.sort(
        key=lambda c: (
            c["key"] == TicketCategory.OTHER_BILLING,
            -c["tickets"],
            order.index(c["key"]),
        )
    )
    return result
