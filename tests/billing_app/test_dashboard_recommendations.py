"""The recommendations about the self-service features (issue 18) follow the workspace's state.

``payment_failure_churn``, ``self_service_refunds`` and ``billing_faq`` advised building
card-update prompts, a self-service refund flow and a billing FAQ widget. Those exist now:
a feature that is off is to be turned on (and where), one that is on is judged by its own
figures (the Self-service section). ``recommendations_derive`` stays pure — the
workspace's state comes in with the figures (``workspace.features``).
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone, translation

from billing_app.models import BillingWidget, SelfServiceLink
from billing_app.selectors.dashboard import dashboard_build, recommendations_derive
from billing_app.selectors.months import Month

from .dashboard_data import self_service_state


def figures(**state) -> dict:
    """A month in which all three rules fire: churn 20 % of failures, refunds 30 % of the
    agents' handling time, and tax questions 20 % of billing tickets, none auto-resolved."""
    return {
        "payment_failures": {
            "count": 10,
            "churned_accounts": 2,
            "churn_pct_of_failures": 20.0,
            "churned_mrr": {"display": "$100.00"},
            "reasons": [],
        },
        "actions": {
            "rows": [{"key": "issue_refund", "handling_seconds": 300}],
            "handling_seconds": 1000,
            "total_time_ms": 0,
            "avg_approval_hours": None,
            "approvals_decided": 0,
        },
        "tickets": {"resolution_within_target": True, "avg_resolution_minutes": 1.0},
        "categories": [
            {
                "key": "refund_request",
                "label": "Refund request",
                "share_pct": 5.0,
                "tickets": 1,
                "auto_resolved_pct": 100.0,
            },
            {
                "key": "overcharge_dispute",
                "label": "Overcharge dispute",
                "share_pct": 0.0,
                "tickets": 0,
                "auto_resolved_pct": None,
            },
            {
                "key": "tax_question",
                "label": "Tax question",
                "share_pct": 20.0,
                "tickets": 4,
                "auto_resolved_pct": 0.0,
            },
        ],
        "health": {
            "response_times": [],
            "webhooks": {"success_rate_pct": None, "failed": 0, "delivered": 0},
        },
        **self_service_state(**state),
    }


def advice(**state) -> dict[str, tuple[str, str, str]]:
    return {
        r["rule"]: (r.get("variant", ""), r["text"], r["evidence"])
        for r in recommendations_derive(figures(**state))
    }


def test_features_that_are_off_are_to_be_turned_on_in_admin():
    found = advice()

    assert found["payment_failure_churn"][:2] == (
        "turn_on",
        "Reduce payment failure churn: turn on card-update prompts "
        "(Django admin → Workspaces → Card prompts enabled)",
    )
    assert found["payment_failure_churn"][2].endswith("; card-update prompts are off")
    assert found["self_service_refunds"][:2] == (
        "turn_on",
        "Turn on self-service refunds: set a self-service refund limit "
        "(Django admin → Workspaces → Self service refund limit)",
    )
    assert found["self_service_refunds"][2] == (
        "refunds took 30.0% of agents' handling time; refund requests were 5.0% of billing "
        "tickets; the self-service refund limit is 0, so every request goes to an agent"
    )
    assert found["billing_faq"] == (
        "turn_on",
        "Turn on the billing help widget to deflect common billing questions "
        "(Django admin → Billing widgets)",
        "Tax question: 20.0% of billing tickets, 0% auto-resolved; the billing help widget is off",
    )
    for _variant, text, _evidence in found.values():
        assert "add an automated" not in text and "Create a self-service" not in text


def test_a_limit_without_links_sent_is_not_yet_on_for_customers():
    variant, text, evidence = advice(refund_limit=10000, links_sent=0)["self_service_refunds"]

    assert variant == "send_links"
    assert text.startswith("Turn on self-service refunds for your customers")
    assert evidence.endswith("; no refund request link was sent this month")


@pytest.mark.parametrize(
    ("sent_to_agents_pct", "variant"),
    [(80.0, "raise_limit"), (50.0, "more_links"), (None, "more_links")],
)
def test_self_service_on_is_judged_by_where_its_requests_went(sent_to_agents_pct, variant):
    found, text, evidence = advice(
        refund_limit=10000,
        links_sent=12,
        requests=10 if sent_to_agents_pct is not None else 0,
        executed=2 if sent_to_agents_pct == 80.0 else 5,
        sent_to_agents_pct=sent_to_agents_pct,
    )["self_service_refunds"]

    assert found == variant
    if variant == "raise_limit":
        assert text == (
            "Consider raising the self-service refund limit "
            "(Django admin → Workspaces → Self service refund limit)"
        )
        assert evidence.endswith(
            "; 12 refund request links sent, 2 of 10 requests refunded within the "
            "self-service limit of $100.00; 80.0% of them went to agents"
        )
    else:
        assert text.startswith("Offer the self-service refund link on more refund tickets")


@pytest.mark.parametrize(
    ("state", "variant", "evidence"),
    [
        ({"prompts_sent": 0}, "follow_up", "; no card-update prompt was sent this month"),
        (
            {"prompts_sent": 20, "update_rate_pct": 15.0},
            "review_prompt",
            "; 15.0% of 20 card-update prompts led to a card update",
        ),
        (
            {"prompts_sent": 20, "update_rate_pct": 40.0},
            "follow_up",
            "; 40.0% of 20 card-update prompts led to a card update",
        ),
    ],
)
def test_card_prompts_on_are_judged_by_their_update_rate(state, variant, evidence):
    found = advice(prompts_enabled=True, **state)["payment_failure_churn"]

    assert found[0] == variant
    assert found[2].endswith(evidence)
    if variant == "review_prompt":
        assert found[1] == (
            "Reduce payment failure churn: review the card-update prompt wording "
            "(Django admin → Card prompt templates)"
        )


@pytest.mark.parametrize(
    ("state", "variant", "evidence"),
    [
        ({}, "embed", "; the billing help widget had no visits this month"),
        ({"visits": 5}, "improve_answers", "; the billing help widget answered no question"),
        (
            {"visits": 9, "answered_visits": 8, "deflection_rate_pct": 37.5},
            "improve_answers",
            "; the billing help widget deflected 37.5% of 8 answered visits",
        ),
        (
            {"visits": 9, "answered_visits": 8, "deflection_rate_pct": 50.0},
            "show_more",
            "; the billing help widget deflected 50.0% of 8 answered visits",
        ),
    ],
)
def test_the_widget_on_is_judged_by_its_deflection_rate(state, variant, evidence):
    found = advice(widget_enabled=True, **state)["billing_faq"]

    assert found[0] == variant
    assert evidence in found[2]


def test_the_dashboard_reads_the_workspaces_features(workspace):
    # given a workspace with prompts on, a limit, an enabled widget and a link this month
    workspace.card_prompts_enabled = True
    workspace.self_service_refund_limit = 2500
    workspace.save(update_fields=["card_prompts_enabled", "self_service_refund_limit"])
    BillingWidget.objects.create(workspace=workspace, enabled=True)
    link = SelfServiceLink.objects.create(
        workspace=workspace,
        customer_id="cus_1",
        expires_at=timezone.now() + timedelta(days=7),
    )
    month = Month.of(link.created_at)  # the link's month, even if midnight passed since

    features = dashboard_build(workspace=workspace, month=month)["workspace"]["features"]

    assert features == {
        "card_prompts_enabled": True,
        "self_service_refund_limit": features["self_service_refund_limit"]
        | {"amount": 2500, "currency": "USD"},
        "refund_links_sent": 1,
        "widget_enabled": True,
    }
    # the month before had no link
    before = dashboard_build(workspace=workspace, month=month.shift(-1))
    assert before["workspace"]["features"]["refund_links_sent"] == 0


def test_the_advice_reads_german():
    state = {
        "prompts_enabled": True,
        "prompts_sent": 1,
        "update_rate_pct": 0.0,
        "refund_limit": 10000,
        "links_sent": 3,
        "requests": 4,
        "executed": 1,
        "sent_to_agents_pct": 75.0,
        "widget_enabled": True,
        "visits": 3,
        "answered_visits": 2,
        "deflection_rate_pct": 50.0,
    }
    with translation.override("de"):
        found = advice(**state)

    assert found["payment_failure_churn"][0] == "review_prompt"
    assert found["payment_failure_churn"][2].endswith(
        "; 0,0\u00a0% von 1 Aufforderung zur Kartenaktualisierung führte zu einer "
        "Kartenaktualisierung"
    )
    assert found["self_service_refunds"][1] == (
        "Eine Erhöhung des Self-Service-Limits für Erstattungen erwägen "
        "(Django-Admin → Workspaces → Self service refund limit)"
    )
    assert found["self_service_refunds"][2].endswith(
        "; 3 Links für Erstattungsanfragen gesendet, 1 von 4 Anfragen im Rahmen des "
        "Self-Service-Limits von 100,00\u00a0$ erstattet; 75,0\u00a0% davon gingen an Agenten"
    )
    assert found["billing_faq"][1] == (
        "Das Abrechnungshilfe-Widget auf mehr Seiten Ihres Produkts anzeigen"
    )
    assert found["billing_faq"][2].endswith(
        "; das Abrechnungshilfe-Widget hat 50,0\u00a0% von 2 Besuchen mit beantworteter "
        "Frage abgefangen"
    )
