"""Recommendations derived from the month's figures (pure: figures in, advice out)."""

from __future__ import annotations

from typing import Any

from ...models import TicketCategory
from .refunds import REFUND_KINDS
from .shared import pct, plural
from .tickets import RESOLUTION_TARGET_SECONDS

# Each recommendation rule: its threshold and what it says. Documented in docs/dashboard.md.
RECOMMENDATION_RULES: dict[str, dict[str, Any]] = {
    "payment_failure_churn": {
        "when": "accounts churned after payment failures ≥ 3% of payment failures",
        "threshold_pct": 3.0,
        "text": "Reduce payment failure churn: add an automated card update prompt",
    },
    "self_service_refunds": {
        "when": "refunds take ≥ 20% of agents' handling time, or refund requests are ≥ 10% of billing tickets",
        "time_share_pct": 20.0,
        "ticket_share_pct": 10.0,
        "text": "Create a self-service refund request flow",
    },
    "billing_faq": {
        "when": "a category holds ≥ 10% of billing tickets and < 50% of them are auto-resolved",
        "share_pct": 10.0,
        "auto_resolved_below_pct": 50.0,
        "text": "Add a billing FAQ in-app widget to deflect common billing questions",
    },
    "invoice_preview": {
        "when": "overcharge disputes are ≥ 5% of billing tickets",
        "share_pct": 5.0,
        "text": "Implement invoice preview before plan changes",
    },
    "resolution_time": {
        "when": "average resolution time is above the 5-minute target",
        "text": "Bring billing resolution time back under target",
    },
    "slow_operation": {
        "when": "an operation's average response time is above its target",
        "text": "Speed up slow billing operations",
    },
    "webhook_delivery": {
        "when": "webhook delivery success < 99%",
        "threshold_pct": 99.0,
        "text": "Investigate failing Stripe webhook deliveries",
    },
    "approval_time": {
        "when": "average approval time > 4 hours",
        "threshold_hours": 4.0,
        "text": "Shorten approval turnaround: add approvers or raise agent limits",
    },
}


def recommendations_derive(figures: dict[str, Any]) -> list[dict[str, str]]:
    """Recommendations from the month's figures, by the rules of ``RECOMMENDATION_RULES``. Pure."""
    rules = RECOMMENDATION_RULES
    out: list[dict[str, str]] = []

    def add(rule: str, evidence: str) -> None:
        out.append({"rule": rule, "text": rules[rule]["text"], "evidence": evidence})

    failures = figures["payment_failures"]
    churn_pct = failures["churn_pct_of_failures"]
    if churn_pct is not None and churn_pct >= rules["payment_failure_churn"]["threshold_pct"]:
        expired = next((r for r in failures["reasons"] if r["key"] == "card_expired"), None)
        evidence = (
            f"{plural(failures['churned_accounts'], 'account')} churned after payment failures "
            f"({churn_pct}% of {failures['count']} failures, "
            f"{failures['churned_mrr']['display']} MRR)"
        )
        if expired:
            evidence += f"; {expired['pct']}% of failures were expired cards"
        add("payment_failure_churn", evidence)

    actions, tickets = figures["actions"], figures["tickets"]
    # Agent time: the agents' measured handling time (not the system's execution time).
    refund_time = sum(r["handling_seconds"] for r in actions["rows"] if r["key"] in REFUND_KINDS)
    time_share = pct(refund_time, actions["handling_seconds"])
    categories = {c["key"]: c for c in figures["categories"]}
    refund_share = categories[TicketCategory.REFUND_REQUEST]["share_pct"]
    rule = rules["self_service_refunds"]
    if (time_share is not None and time_share >= rule["time_share_pct"]) or (
        refund_share is not None and refund_share >= rule["ticket_share_pct"]
    ):
        add(
            "self_service_refunds",
            f"refunds took {time_share if time_share is not None else 0}% of agents' handling time; "
            f"refund requests were {refund_share if refund_share is not None else 0}% "
            "of billing tickets",
        )

    rule = rules["billing_faq"]
    common = [
        c
        for c in figures["categories"]
        if c["share_pct"] is not None
        and c["share_pct"] >= rule["share_pct"]
        and (c["auto_resolved_pct"] or 0) < rule["auto_resolved_below_pct"]
    ]
    if common:
        add(
            "billing_faq",
            "; ".join(
                f"{c['label']}: {c['share_pct']}% of billing tickets, "
                f"{c['auto_resolved_pct'] or 0:.0f}% auto-resolved"
                for c in common
            ),
        )

    overcharge = categories[TicketCategory.OVERCHARGE_DISPUTE]
    if (
        overcharge["share_pct"] is not None
        and overcharge["share_pct"] >= rules["invoice_preview"]["share_pct"]
    ):
        add(
            "invoice_preview",
            f"{plural(overcharge['tickets'], 'overcharge dispute')} "
            f"({overcharge['share_pct']}% of billing tickets)",
        )

    if tickets["resolution_within_target"] is False:
        add(
            "resolution_time",
            f"average resolution {tickets['avg_resolution_minutes']} min "
            f"against a {RESOLUTION_TARGET_SECONDS // 60}-minute target",
        )

    slow = [r for r in figures["health"]["response_times"] if r["within_target"] is False]
    if slow:
        add(
            "slow_operation",
            "; ".join(
                f"{r['label']}: {r['avg_ms']:.0f} ms avg (target <{r['target_ms']} ms)"
                for r in slow
            ),
        )

    webhooks = figures["health"]["webhooks"]
    rate = webhooks["success_rate_pct"]
    if rate is not None and rate < rules["webhook_delivery"]["threshold_pct"]:
        add(
            "webhook_delivery",
            f"{webhooks['failed']} of {webhooks['delivered'] + webhooks['failed']} "
            f"webhook events failed ({rate}% delivered)",
        )

    hours = actions["avg_approval_hours"]
    if hours is not None and hours > rules["approval_time"]["threshold_hours"]:
        add(
            "approval_time",
            f"approvals took {hours} hours on average over {actions['approvals_decided']} decisions",
        )
    return out
