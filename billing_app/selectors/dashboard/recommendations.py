"""Recommendations derived from the month's figures (pure: figures in, advice out)."""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext, gettext_noop, ngettext

from ...models import TicketCategory
from .refunds import REFUND_KINDS
from .shared import number_text, pct, pct_text
from .tickets import RESOLUTION_TARGET_SECONDS

# Each recommendation rule: its threshold and what it says (``text`` in English, read in the
# active language when a recommendation is made). Documented in docs/dashboard.md.
RECOMMENDATION_RULES: dict[str, dict[str, Any]] = {
    "payment_failure_churn": {
        "when": "accounts churned after payment failures ≥ 3% of payment failures",
        "threshold_pct": 3.0,
        "text": gettext_noop("Reduce payment failure churn: add an automated card update prompt"),
    },
    "self_service_refunds": {
        "when": "refunds take ≥ 20% of agents' handling time, or refund requests are ≥ 10% of billing tickets",
        "time_share_pct": 20.0,
        "ticket_share_pct": 10.0,
        "text": gettext_noop("Create a self-service refund request flow"),
    },
    "billing_faq": {
        "when": "a category holds ≥ 10% of billing tickets and < 50% of them are auto-resolved",
        "share_pct": 10.0,
        "auto_resolved_below_pct": 50.0,
        "text": gettext_noop("Add a billing FAQ in-app widget to deflect common billing questions"),
    },
    "invoice_preview": {
        "when": "overcharge disputes are ≥ 5% of billing tickets",
        "share_pct": 5.0,
        "text": gettext_noop("Implement invoice preview before plan changes"),
    },
    "resolution_time": {
        "when": "average resolution time is above the 5-minute target",
        "text": gettext_noop("Bring billing resolution time back under target"),
    },
    "slow_operation": {
        "when": "an operation's average response time is above its target",
        "text": gettext_noop("Speed up slow billing operations"),
    },
    "webhook_delivery": {
        "when": "webhook delivery success < 99%",
        "threshold_pct": 99.0,
        "text": gettext_noop("Investigate failing Stripe webhook deliveries"),
    },
    "approval_time": {
        "when": "average approval time > 4 hours",
        "threshold_hours": 4.0,
        "text": gettext_noop("Shorten approval turnaround: add approvers or raise agent limits"),
    },
}


def recommendations_derive(figures: dict[str, Any]) -> list[dict[str, str]]:
    """Recommendations from the month's figures, by the rules of ``RECOMMENDATION_RULES``. Pure.

    The text and the evidence are written in the active language, numbers as it writes them.
    """
    rules = RECOMMENDATION_RULES
    out: list[dict[str, str]] = []
    num = number_text

    def add(rule: str, evidence: str) -> None:
        out.append({"rule": rule, "text": gettext(rules[rule]["text"]), "evidence": evidence})

    failures = figures["payment_failures"]
    churn_pct = failures["churn_pct_of_failures"]
    if churn_pct is not None and churn_pct >= rules["payment_failure_churn"]["threshold_pct"]:
        expired = next((r for r in failures["reasons"] if r["key"] == "card_expired"), None)
        accounts = failures["churned_accounts"]
        evidence = ngettext(
            "%(count)s account churned after payment failures "
            "(%(pct)s of %(failures)s failures, %(mrr)s MRR)",
            "%(count)s accounts churned after payment failures "
            "(%(pct)s of %(failures)s failures, %(mrr)s MRR)",
            accounts,
        ) % {
            "count": accounts,
            "pct": pct_text(churn_pct),
            "failures": failures["count"],
            "mrr": failures["churned_mrr"]["display"],
        }
        if expired:
            evidence += gettext("; %(pct)s of failures were expired cards") % {
                "pct": pct_text(expired["pct"])
            }
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
            gettext(
                "refunds took %(time)s of agents' handling time; "
                "refund requests were %(share)s of billing tickets"
            )
            % {
                "time": pct_text(time_share if time_share is not None else 0),
                "share": pct_text(refund_share if refund_share is not None else 0),
            },
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
                gettext("%(category)s: %(share)s of billing tickets, %(auto)s auto-resolved")
                % {
                    "category": c["label"],
                    "share": pct_text(c["share_pct"]),
                    "auto": pct_text(c["auto_resolved_pct"] or 0, 0),
                }
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
            ngettext(
                "%(count)s overcharge dispute (%(share)s of billing tickets)",
                "%(count)s overcharge disputes (%(share)s of billing tickets)",
                overcharge["tickets"],
            )
            % {"count": overcharge["tickets"], "share": pct_text(overcharge["share_pct"])},
        )

    if tickets["resolution_within_target"] is False:
        add(
            "resolution_time",
            gettext("average resolution %(minutes)s min against a %(target)s-minute target")
            % {
                "minutes": num(tickets["avg_resolution_minutes"]),
                "target": RESOLUTION_TARGET_SECONDS // 60,
            },
        )

    slow = [r for r in figures["health"]["response_times"] if r["within_target"] is False]
    if slow:
        add(
            "slow_operation",
            "; ".join(
                gettext("%(operation)s: %(ms)s ms avg (target <%(target)s ms)")
                % {
                    "operation": r["label"],
                    "ms": num(r["avg_ms"], 0),
                    "target": r["target_ms"],
                }
                for r in slow
            ),
        )

    webhooks = figures["health"]["webhooks"]
    rate = webhooks["success_rate_pct"]
    if rate is not None and rate < rules["webhook_delivery"]["threshold_pct"]:
        finished = webhooks["delivered"] + webhooks["failed"]
        add(
            "webhook_delivery",
            gettext("%(failed)s of %(finished)s webhook events failed (%(rate)s delivered)")
            % {"failed": webhooks["failed"], "finished": finished, "rate": pct_text(rate)},
        )

    hours = actions["avg_approval_hours"]
    if hours is not None and hours > rules["approval_time"]["threshold_hours"]:
        decided = actions["approvals_decided"]
        add(
            "approval_time",
            gettext("approvals took %(hours)s hours on average over %(count)s decisions")
            % {"hours": num(hours), "count": decided},
        )
    return out
