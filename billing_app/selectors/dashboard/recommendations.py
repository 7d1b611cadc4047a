"""Recommendations derived from the month's figures (pure: figures in, advice out).

Three rules advise the self-service features of issue 18 — card-update prompts,
self-service refunds, the billing help widget. Those features exist, so the advice
depends on the workspace's state, which the figures carry (``workspace.features``, read by
``features.self_service_features``; the feature's own figures are the Self-service
section, ``self_service``): a feature that is off is to be turned on, where it is (Django
admin); one that is on is judged by its own figures. Each such rule has a text per
``variant``; the recommendation names the variant it chose.
"""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext, gettext_noop, ngettext

from ...models import TicketCategory
from .refunds import REFUND_KINDS
from .shared import number_text, pct, pct_text
from .tickets import RESOLUTION_TARGET_SECONDS

# Each recommendation rule: its threshold and what it says (``text``, or ``texts`` by
# variant, in English, read in the active language when a recommendation is made).
# Documented in docs/dashboard.md.
RECOMMENDATION_RULES: dict[str, dict[str, Any]] = {
    "payment_failure_churn": {
        "when": "accounts churned after payment failures ≥ 3% of payment failures",
        "threshold_pct": 3.0,
        "update_rate_below_pct": 40.0,
        "texts": {
            # card-update prompts are off
            "turn_on": gettext_noop(
                "Reduce payment failure churn: turn on card-update prompts "
                "(Django admin → Workspaces → Card prompts enabled)"
            ),
            # on, and fewer than update_rate_below_pct of prompted customers updated
            "review_prompt": gettext_noop(
                "Reduce payment failure churn: review the card-update prompt wording "
                "(Django admin → Card prompt templates)"
            ),
            # on, and updating cards (or nothing to prompt this month)
            "follow_up": gettext_noop(
                "Reduce payment failure churn: card-update prompts are on; follow up the "
                "other failed payments with a payment link or a grace period"
            ),
        },
    },
    "self_service_refunds": {
        "when": "refunds take ≥ 20% of agents' handling time, or refund requests are ≥ 10% of billing tickets",
        "time_share_pct": 20.0,
        "ticket_share_pct": 10.0,
        "sent_to_agents_above_pct": 50.0,
        "texts": {
            # the self-service refund limit is 0: every request goes to an agent
            "turn_on": gettext_noop(
                "Turn on self-service refunds: set a self-service refund limit "
                "(Django admin → Workspaces → Self service refund limit)"
            ),
            # a limit is set, but no refund request link was sent this month
            "send_links": gettext_noop(
                "Turn on self-service refunds for your customers: send them the refund "
                "request link (the panel's refund section, a helpdesk macro or the billing "
                "help widget)"
            ),
            # on and used, and more than half of the month's requests went to agents
            "raise_limit": gettext_noop(
                "Consider raising the self-service refund limit "
                "(Django admin → Workspaces → Self service refund limit)"
            ),
            # on and used, and most requests were refunded without an agent
            "more_links": gettext_noop(
                "Offer the self-service refund link on more refund tickets "
                "(the panel's refund section or a helpdesk macro)"
            ),
        },
    },
    "billing_faq": {
        "when": "a category holds ≥ 10% of billing tickets and < 50% of them are auto-resolved",
        "share_pct": 10.0,
        "auto_resolved_below_pct": 50.0,
        "deflection_below_pct": 50.0,
        "texts": {
            # no enabled billing help widget
            "turn_on": gettext_noop(
                "Turn on the billing help widget to deflect common billing questions "
                "(Django admin → Billing widgets)"
            ),
            # enabled, but no customer opened it this month
            "embed": gettext_noop(
                "The billing help widget had no visits: add its script to your product's pages"
            ),
            # enabled, and fewer than deflection_below_pct of answered visits deflected
            "improve_answers": gettext_noop(
                "Improve the billing help widget's deflection: see which questions still "
                "end in a support contact"
            ),
            # enabled and deflecting
            "show_more": gettext_noop(
                "Show the billing help widget on more of your product's pages"
            ),
        },
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
    features = figures["workspace"]["features"]
    self_service = figures["self_service"]

    def add(rule: str, evidence: str, variant: str = "") -> None:
        text = rules[rule]["texts"][variant] if variant else rules[rule]["text"]
        found = {"rule": rule, "text": gettext(text), "evidence": evidence}
        if variant:
            found["variant"] = variant
        out.append(found)

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
        variant, more = _card_prompt_advice(features, self_service["card_prompts"]["current"])
        add("payment_failure_churn", evidence + more, variant)

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
        variant, more = _refund_advice(features, self_service["refund_requests"]["current"])
        add(
            "self_service_refunds",
            gettext(
                "refunds took %(time)s of agents' handling time; "
                "refund requests were %(share)s of billing tickets"
            )
            % {
                "time": pct_text(time_share if time_share is not None else 0),
                "share": pct_text(refund_share if refund_share is not None else 0),
            }
            + more,
            variant,
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
        variant, more = _widget_advice(features, self_service["widget"]["current"])
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
            )
            + more,
            variant,
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


# --- the self-service features' state (issue 18) -----------------------------------------------


def _card_prompt_advice(features: dict[str, Any], prompts: dict[str, Any]) -> tuple[str, str]:
    """(variant, evidence to append) for ``payment_failure_churn``."""
    if not features["card_prompts_enabled"]:
        return "turn_on", gettext("; card-update prompts are off")
    if not prompts["sent"]:
        return "follow_up", gettext("; no card-update prompt was sent this month")
    rate = prompts["update_rate_pct"]
    evidence = ngettext(
        "; %(rate)s of %(sent)s card-update prompt led to a card update",
        "; %(rate)s of %(sent)s card-update prompts led to a card update",
        prompts["sent"],
    ) % {"rate": pct_text(rate), "sent": prompts["sent"]}
    below = RECOMMENDATION_RULES["payment_failure_churn"]["update_rate_below_pct"]
    return ("review_prompt" if rate < below else "follow_up"), evidence


def _refund_advice(features: dict[str, Any], requests: dict[str, Any]) -> tuple[str, str]:
    """(variant, evidence to append) for ``self_service_refunds``."""
    if not features["self_service_refund_limit"]["amount"]:
        return "turn_on", gettext(
            "; the self-service refund limit is 0, so every request goes to an agent"
        )
    if not features["refund_links_sent"]:
        return "send_links", gettext("; no refund request link was sent this month")
    evidence = ngettext(
        "; %(links)s refund request link sent, %(executed)s of %(requests)s requests "
        "refunded within the self-service limit of %(limit)s",
        "; %(links)s refund request links sent, %(executed)s of %(requests)s requests "
        "refunded within the self-service limit of %(limit)s",
        features["refund_links_sent"],
    ) % {
        "links": features["refund_links_sent"],
        "executed": requests["executed"],
        "requests": requests["requests"],
        "limit": features["self_service_refund_limit"]["display"],
    }
    to_agents = requests["sent_to_agents_pct"]
    above = RECOMMENDATION_RULES["self_service_refunds"]["sent_to_agents_above_pct"]
    if to_agents is not None and to_agents > above:
        evidence += gettext("; %(pct)s of them went to agents") % {"pct": pct_text(to_agents)}
        return "raise_limit", evidence
    return "more_links", evidence


def _widget_advice(features: dict[str, Any], widget: dict[str, Any]) -> tuple[str, str]:
    """(variant, evidence to append) for ``billing_faq``."""
    if not features["widget_enabled"]:
        return "turn_on", gettext("; the billing help widget is off")
    if not widget["visits"]:
        return "embed", gettext("; the billing help widget had no visits this month")
    rate = widget["deflection_rate_pct"]
    if rate is None:  # visits, but no question answered
        return "improve_answers", gettext(
            "; the billing help widget answered no question this month"
        )
    evidence = ngettext(
        "; the billing help widget deflected %(rate)s of %(visits)s answered visit",
        "; the billing help widget deflected %(rate)s of %(visits)s answered visits",
        widget["answered_visits"],
    ) % {"rate": pct_text(rate), "visits": widget["answered_visits"]}
    below = RECOMMENDATION_RULES["billing_faq"]["deflection_below_pct"]
    return ("improve_answers" if rate < below else "show_more"), evidence
