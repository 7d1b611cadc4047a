"""The billing support dashboard, figure by figure, on a data set known in advance.

January 2026 in workspace ``acme`` (``dashboard_data.build_january``):

Tickets — 20 in January, 10 of them billing (50.0%):
  #1 payment_failed 120 s CSAT 5, payment link by the agent directly → auto-resolved
  #2 payment_failed 240 s CSAT 4, no action
  #3 refund_request 600 s CSAT 3, refund that needed approval → escalated
  #4 refund_request 360 s, direct refund → auto-resolved
  #5 plan_change 180 s CSAT 5, direct upgrade → auto-resolved
  #6 plan_change still open, downgrade
  #7 overcharge 420 s CSAT 2, escalated in the helpdesk
  #8 invoice_discrepancy 300 s CSAT 4, direct credit → auto-resolved
  #9 tax_question 60 s, no action
  #10 other_billing 120 s CSAT 5, invoice resent → auto-resolved
  Escalated 2 (20.0%); resolved without escalation 7 (70.0%); average resolution
  2400 s / 9 = 266.7 s = 4.4 min; CSAT 28 / 7 = 4.0.
Actions — 12 counted (one not permitted is left out), 4 needing approval (33.3%);
  approvals decided in 2 h, 4 h and 6 h → 4.0 h. Handling time (panel open → action
  done; for an approval, → its submission): payment links 1.0 and 0.6 min, refunds 3.0
  (approved, ran 5 days later) and 2.0 min, upgrade 1.5 min; the invoice resent has a
  panel-open time after the action (left out); 5 timed, 486 s → 1.6 min.
Refunds — 3 succeeded: $250 billing error, $50 service outage, $30 duplicate = $330;
  paths over 5 refund requests: auto 2, manager 1, VP 0, denied 1, pending 1.
Payment failures (``PaymentFailure`` records) — 4 in January, 2 recovered (after 2
  days and 1 day → 1.5 days), one of them after an agent's action;
  one per reason; sub_2 ended after its unrecovered failure → 1 account churned
  (25.0%), $100.00 MRR ($1,200/year); at risk sub_1 $200 + sub_2 $100 + sub_3 €50 at
  1.1 = $55 → $355; retained sub_1 + sub_3 = $255.
Health — 9 provider calls, 1 unavailable (88.89% uptime), 7 ok (77.78%); webhook
  events 8 delivered, 1 failed, 1 pending (88.89%).
"""

from __future__ import annotations

import pytest

from billing_app.catalog import Role
from billing_app.models import BillingAction, HelpdeskTicket
from billing_app.selectors.dashboard import dashboard_build, recommendations_derive
from billing_app.selectors.months import Month
from billing_app.services.rollups import rollups_rebuild

from .dashboard_data import at, build_january, build_noise, self_service_state, ticket

JAN = Month(2026, 1)


@pytest.fixture
def january(workspace, make_workspace):
    build_january(workspace)
    build_noise(make_workspace("globex"))
    return workspace


def by_key(rows):
    return {r["key"]: r for r in rows}


def test_ticket_metrics(january):
    # when the dashboard for January is computed
    tickets = dashboard_build(workspace=january, month=JAN)["tickets"]

    # then every ticket figure is the one worked out by hand
    assert tickets == {
        "total": 20,
        "billing": 10,
        "billing_share_pct": 50.0,
        "resolved_without_escalation": 7,
        "resolved_without_escalation_pct": 70.0,
        "escalated": 2,
        "escalated_pct": 20.0,
        "still_open": 1,
        "still_open_pct": 10.0,
        "unresolved": 1,
        "reopens": 0,
        "avg_resolution_seconds": 266.7,
        "avg_resolution_minutes": 4.4,
        "resolution_target_seconds": 300,
        "resolution_within_target": True,
        "csat": 4.0,
        "csat_responses": 7,
    }


def test_categories_with_auto_resolved_share(january):
    categories = dashboard_build(workspace=january, month=JAN)["categories"]

    assert [c["key"] for c in categories] == [
        "payment_failed",
        "plan_change_request",
        "refund_request",
        "invoice_discrepancy",
        "overcharge_dispute",
        "tax_question",
        "duplicate_charge",
        "payment_method_update",
        "other_billing",
    ]
    rows = by_key(categories)
    expected = {
        # key: (tickets, share, avg minutes, auto-resolved, auto %)
        "payment_failed": (2, 20.0, 3.0, 1, 50.0),
        "plan_change_request": (2, 20.0, 3.0, 1, 50.0),
        "refund_request": (2, 20.0, 8.0, 1, 50.0),
        "invoice_discrepancy": (1, 10.0, 5.0, 1, 100.0),
        "overcharge_dispute": (1, 10.0, 7.0, 0, 0.0),
        "tax_question": (1, 10.0, 1.0, 0, 0.0),
        "duplicate_charge": (0, 0.0, None, 0, None),
        "payment_method_update": (0, 0.0, None, 0, None),
        "other_billing": (1, 10.0, 2.0, 1, 100.0),
    }
    for key, (count, share, minutes, auto, auto_pct) in expected.items():
        row = rows[key]
        assert (
            row["tickets"],
            row["share_pct"],
            row["avg_resolution_minutes"],
            row["auto_resolved"],
            row["auto_resolved_pct"],
        ) == (count, share, minutes, auto, auto_pct), key
    assert rows["payment_failed"]["label"] == "Payment failed"


def test_agent_actions_table(january):
    actions = dashboard_build(workspace=january, month=JAN)["actions"]

    table = [
        (
            r["label"],
            r["count"],
            r["success_rate_pct"],
            r["avg_handling_minutes"],
            r["handling_measured"],
            r["requiring_approval"],
        )
        for r in actions["rows"]
    ]
    # Avg time is the agent's handling time in minutes; untimed actions are left out
    assert table == [
        ("Refund processed", 4, 100.0, 2.5, 2, 3),
        ("Generate payment link", 2, 50.0, 0.8, 2, 0),
        ("Resend invoice", 1, 100.0, None, 0, 0),
        ("Apply credit (<$100)", 1, 100.0, None, 0, 0),
        ("Apply credit (>$500)", 1, 100.0, None, 0, 1),
        ("Duplicate charge refund", 1, 100.0, None, 0, 0),
        ("Plan upgrade", 1, 100.0, 1.5, 1, 0),
        ("Plan downgrade", 1, 100.0, None, 0, 0),
    ]
    # the system's execution time stays, as its own figure
    assert [r["avg_execution_seconds"] for r in actions["rows"]] == [
        1.5,
        1.0,
        0.4,
        0.6,
        0.9,
        1.1,
        1.5,
        1.0,
    ]
    assert (actions["handling_measured"], actions["handling_seconds"]) == (5, 486.0)
    assert actions["avg_handling_minutes"] == 1.6
    assert actions["avg_execution_seconds"] == 1.05
    assert actions["total"] == 12
    assert actions["requiring_approval"] == 4
    assert actions["requiring_approval_pct"] == 33.3
    assert actions["approvals_decided"] == 3
    assert actions["avg_approval_seconds"] == 14400.0
    assert actions["avg_approval_hours"] == 4.0
    assert actions["total_time_ms"] == 10500


def test_refund_analytics(january):
    refunds = dashboard_build(workspace=january, month=JAN)["refunds"]

    assert refunds["count"] == 3
    assert refunds["total"] == {
        "amount": 33000,
        "currency": "USD",
        "exponent": 2,
        "display": "$330.00",
    }
    assert [(r["label"], r["count"], r["amount"]["amount"]) for r in refunds["by_reason"]] == [
        ("Billing error", 1, 25000),
        ("Duplicate charge", 1, 3000),
        ("Service outage credit", 1, 5000),
    ]
    assert [(r["label"], r["count"], r["pct"]) for r in refunds["by_approval_path"]] == [
        ("Auto-approved (within agent limits)", 2, 40.0),
        ("Manager-approved", 1, 20.0),
        ("VP-approved", 0, 0.0),
        ("Denied", 1, 20.0),
        ("Pending", 1, 20.0),
    ]


def test_payment_failure_trend(january):
    failures = dashboard_build(workspace=january, month=JAN)["payment_failures"]

    assert failures["count"] == 4
    assert failures["recovered"] == 2
    assert failures["recovery_rate_pct"] == 50.0
    assert failures["recovered_after_agent_action"] == 1
    assert failures["agent_recovery_pct"] == 50.0
    assert failures["avg_recovery_seconds"] == 129600.0
    assert failures["avg_recovery_days"] == 1.5
    assert [(r["label"], r["count"], r["pct"]) for r in failures["reasons"]] == [
        ("Card expired", 1, 25.0),
        ("Insufficient funds", 1, 25.0),
        ("Card declined (bank)", 1, 25.0),
        ("Other", 1, 25.0),
    ]
    assert failures["churned_accounts"] == 1
    assert failures["churn_pct_of_failures"] == 25.0
    assert failures["churned_mrr"]["amount"] == 10000
    assert failures["revenue_at_risk_mrr"]["amount"] == 35500
    assert failures["recovered_mrr"]["amount"] == 25500
    assert [(t["month"], t["failures"], t["recovered"]) for t in failures["trend"]] == [
        ("2025-08", 0, 0),
        ("2025-09", 0, 0),
        ("2025-10", 0, 0),
        ("2025-11", 0, 0),
        ("2025-12", 1, 0),
        ("2026-01", 4, 2),
    ]


def test_system_health(january):
    health = dashboard_build(workspace=january, month=JAN)["health"]

    components = {
        c["key"]: (c["status"], c["availability_pct"], c["calls"]) for c in health["components"]
    }
    assert components == {
        "provider_api": ("outage", 88.89, 9),
        "invoice_generation": ("operational", 100.0, 1),
        "payment_processing": ("operational", 100.0, 2),
        "refund_processing": ("operational", 100.0, 2),
        "webhook_delivery": ("outage", 88.89, 10),
    }
    assert health["components"][0]["label"] == "Sandbox API connection"
    # now: the last calls whatever the month (9 in January + 1 unavailable in February)
    assert (health["current"]["status"], health["current"]["calls"]) == ("outage", 10)
    assert health["current"]["availability_pct"] == 80.0
    times = {
        r["key"]: (r["avg_ms"], r["target_ms"], r["within_target"])
        for r in health["response_times"]
    }
    assert times == {
        "billing_data_retrieval": (350.0, 500, True),
        "payment_link_generation": (250.0, 500, True),
        "refund_processing": (1500.0, 3000, True),
    }
    assert health["uptime_pct"] == 88.89
    assert health["api_success_rate_pct"] == 77.78
    assert health["payment_processing_success_pct"] == 42.9
    assert health["webhooks"] == {
        "received": 10,
        "delivered": 8,
        "failed": 1,
        "pending": 1,
        "success_rate_pct": 88.89,
    }


def test_recommendations_follow_the_rules(january):
    recommendations = dashboard_build(workspace=january, month=JAN)["recommendations"]

    assert [(r["rule"], r["evidence"]) for r in recommendations] == [
        (
            "payment_failure_churn",
            "1 account churned after payment failures (25.0% of 4 failures, $100.00 MRR); "
            "25.0% of failures were expired cards; card-update prompts are off",
        ),
        (
            "self_service_refunds",
            "refunds took 61.7% of agents' handling time; refund requests were 20.0% of billing "
            "tickets; the self-service refund limit is 0, so every request goes to an agent",
        ),
        (
            "billing_faq",
            "Overcharge dispute: 10.0% of billing tickets, 0% auto-resolved; "
            "Tax question: 10.0% of billing tickets, 0% auto-resolved; "
            "the billing help widget is off",
        ),
        ("invoice_preview", "1 overcharge dispute (10.0% of billing tickets)"),
        ("webhook_delivery", "1 of 9 webhook events failed (88.89% delivered)"),
    ]
    assert recommendations[0]["text"].startswith("Reduce payment failure churn: turn on")
    # the self-service features are off in this workspace: each rule says to turn its on
    assert [r.get("variant") for r in recommendations[:3]] == ["turn_on"] * 3


def test_an_empty_month_is_all_zeros_and_na(workspace):
    figures = dashboard_build(workspace=workspace, month=Month(2025, 3))

    assert figures["tickets"]["billing"] == 0
    assert figures["tickets"]["billing_share_pct"] is None
    assert figures["tickets"]["avg_resolution_minutes"] is None
    assert figures["tickets"]["resolution_within_target"] is None
    assert figures["tickets"]["csat"] is None
    assert all(c["tickets"] == 0 and c["share_pct"] is None for c in figures["categories"])
    assert figures["actions"] | {"rows": None} == {
        "rows": None,
        "total": 0,
        "requiring_approval": 0,
        "requiring_approval_pct": None,
        "approvals_decided": 0,
        "avg_approval_seconds": None,
        "avg_approval_hours": None,
        "handling_measured": 0,
        "handling_seconds": 0,
        "avg_handling_minutes": None,
        "success_rate_target_pct": 95.0,
        "total_time_ms": 0,
        "avg_execution_seconds": None,
    }
    assert figures["refunds"]["count"] == 0
    assert figures["payment_failures"]["recovery_rate_pct"] is None
    assert figures["payment_failures"]["revenue_at_risk_mrr"]["amount"] == 0
    assert figures["health"]["uptime_pct"] is None
    assert {c["status"] for c in figures["health"]["components"]} == {"no_data"}
    assert figures["recommendations"] == []


def test_a_month_with_tickets_but_none_billing(workspace):
    # given only non-billing tickets in the month
    for n in range(3):
        ticket(workspace, f"x{n}", created=at(5), resolution=100, csat=3)

    tickets = dashboard_build(workspace=workspace, month=JAN)["tickets"]

    assert tickets["total"] == 3
    assert tickets["billing"] == 0
    assert tickets["billing_share_pct"] == 0.0
    assert tickets["resolved_without_escalation_pct"] is None
    assert tickets["avg_resolution_seconds"] is None
    assert tickets["csat"] is None


def test_another_tenant_sees_only_its_own_records(january):
    globex = january.__class__.objects.get(slug="globex")

    figures = dashboard_build(workspace=globex, month=JAN)

    assert figures["tickets"]["billing"] == 5
    assert figures["actions"]["total"] == 1
    assert figures["payment_failures"]["count"] == 1
    assert figures["health"]["provider_calls"] == 1


def test_query_count_does_not_grow_with_data(january, make_workspace, django_assert_num_queries):
    # given the number of queries for the January data set
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as small:
        dashboard_build(workspace=january, month=JAN)
    # when the month holds three times as many records
    build_january_again = [
        HelpdeskTicket(
            workspace=january,
            installation=HelpdeskTicket.objects.filter(workspace=january).first().installation,
            external_id=f"bulk-{n}",
            category="tax_question",
            is_billing=True,
            created_at=at(20),
            updated_at=at(20),
        )
        for n in range(200)
    ]
    HelpdeskTicket.objects.bulk_create(build_january_again)
    user = BillingAction.objects.filter(workspace=january).first().actor
    BillingAction.objects.bulk_create(
        [
            BillingAction(
                workspace=january,
                actor=user,
                actor_role=Role.L2,
                customer_id="cus",
                kind="resend_invoice",
                status="succeeded",
                decision="allow",
                idempotency_key=f"bulk-{n}",
                request_fingerprint="x",
                duration_ms=10,
            )
            for n in range(200)
        ]
    )
    BillingAction.objects.filter(idempotency_key__startswith="bulk-").update(created_at=at(20))
    rollups_rebuild(workspace=january)  # bulk-written rows: rolled up as the migration does

    # then the dashboard runs the same number of queries
    with django_assert_num_queries(len(small.captured_queries)):
        figures = dashboard_build(workspace=january, month=JAN)
    assert figures["tickets"]["billing"] == 210
    assert len(small.captured_queries) <= 20


def test_recommendation_thresholds_are_inclusive_where_stated():
    # given figures exactly at each threshold
    figures = {
        "payment_failures": {
            "count": 100,
            "churned_accounts": 3,
            "churn_pct_of_failures": 3.0,
            "churned_mrr": {"display": "$1.00"},
            "reasons": [],
        },
        "actions": {
            "rows": [],
            "handling_seconds": 0,
            "total_time_ms": 0,
            "avg_approval_hours": 4.0,
            "approvals_decided": 1,
        },
        "tickets": {"resolution_within_target": True, "avg_resolution_minutes": 1.0},
        "categories": [
            {
                "key": "refund_request",
                "label": "Refund request",
                "share_pct": 9.9,
                "tickets": 1,
                "auto_resolved_pct": 90.0,
            },
            {
                "key": "overcharge_dispute",
                "label": "Overcharge dispute",
                "share_pct": 4.9,
                "tickets": 1,
                "auto_resolved_pct": 90.0,
            },
        ],
        "health": {
            "response_times": [],
            "webhooks": {"success_rate_pct": 99.0, "failed": 0, "delivered": 1},
        },
        **self_service_state(),
    }

    rules = [r["rule"] for r in recommendations_derive(figures)]

    # then only the churn rule (≥ 3%) fires; the others are just below or not above
    assert rules == ["payment_failure_churn"]
