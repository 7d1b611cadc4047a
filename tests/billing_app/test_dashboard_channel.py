"""Agents' figures and customers' self-service refunds (issue 18, ``BillingAction.channel``).

A refund a customer's self-service request made is the workspace's self-service user's
action, not an agent's: the agent-actions table (count, success, handling time, approvals
needed) and the agent-initiated refunds beside the Self-service section count only the
agents' actions, while refund analytics and the report's financial impact count every
refund Billing Desk made — a request refunded within the self-service limit under its own
approval path, "Self-service". The roll-ups kept at write time equal a rebuild from the
rows (SQLite: the Python upkeep; PostgreSQL: the one-statement upkeep).

Acme with a $100.00 self-service limit (``self_service_refund_support``): the customer
asks for the $49.00 duplicate (refunded within the limit) and the $3,400.00 invoice
payment (above the limit: sent to agents, approval pending); a Billing Specialist refunds $20.00
of the second duplicate from the panel, directly.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from billing_app.catalog import ActionKind as K
from billing_app.catalog import Role
from billing_app.models import BillingAction, DailyRollup, RollupSource
from billing_app.selectors.dashboard import dashboard_build
from billing_app.selectors.months import Month
from billing_app.selectors.report import report_build, report_csv
from billing_app.services.actions import action_submit
from billing_app.services.identity import AgentContext
from billing_app.services.refund_links import refund_link_create
from billing_app.services.rollups import rollups_rebuild
from billing_app.services.self_service_refunds.requests import refund_request_submit

from . import self_service_refund_support as support
from .actions_support import next_key
from .test_rollups import rollups

spy = support.spy
acme_limited = support.acme_limited


def _agent_refund(workspace, sign_in, amount: int) -> BillingAction:
    membership, _ = sign_in(workspace, Role.SPECIALIST)
    context = AgentContext(
        user=membership.user,
        workspace=workspace,
        membership=membership,
        installation=membership.installation,
        role=Role.SPECIALIST,
    )
    return action_submit(
        context=context,
        kind=K.ISSUE_REFUND,
        customer_id="cus_acme",
        ticket_id="1001",
        params={
            "charge_id": "ch_acme_dup2",
            "currency": "USD",
            "reason": "service_outage",
            "amount": amount,
        },
        idempotency_key=next_key(),
        handling_started_at=timezone.now() - timedelta(minutes=3),
    )


@pytest.fixture
def month_of_both(acme_limited, spy, sign_in):
    link, _url = refund_link_create(workspace=acme_limited, customer_id="cus_acme", source="panel")
    executed = refund_request_submit(link=link, charge_id="ch_acme_dup1", reason="other")
    to_agents = refund_request_submit(link=link, charge_id="ch_acme_paid", reason="other")
    agent = _agent_refund(acme_limited, sign_in, 2000)
    assert (executed.status, to_agents.status) == ("refunded", "with_agents")
    assert agent.status == BillingAction.Status.SUCCEEDED
    assert list(
        BillingAction.objects.order_by("created_at").values_list("channel", "decision")
    ) == [("self_service", "allow"), ("self_service", "approval"), ("agent", "allow")]
    return acme_limited


def _month() -> Month:
    """The month the fixture's actions were written in (not the clock's: midnight may pass)."""
    return Month.of(BillingAction.objects.earliest("created_at").created_at)


def test_the_agent_actions_table_counts_only_the_agents_actions(month_of_both):
    figures = dashboard_build(workspace=month_of_both, month=_month())

    actions = figures["actions"]
    row = next(r for r in actions["rows"] if r["key"] == "issue_refund")
    assert (row["count"], row["succeeded"], row["requiring_approval"]) == (1, 1, 0)
    assert row["success_rate_pct"] == 100.0
    assert row["handling_measured"] == 1
    assert (actions["total"], actions["requiring_approval"]) == (1, 0)
    # the system's execution time (health) is every executed action's, whoever asked
    executed = BillingAction.objects.filter(status=BillingAction.Status.SUCCEEDED)
    assert executed.count() == 2
    assert actions["total_time_ms"] == sum(a.duration_ms for a in executed)
    # the agent-initiated refunds beside the Self-service section are the agents' row
    agent_initiated = figures["self_service"]["refund_requests"]["agent_initiated"]
    assert agent_initiated["count"] == 1
    assert agent_initiated["avg_handling_minutes"] == row["avg_handling_minutes"]


def test_refund_analytics_and_the_financial_impact_count_every_refund(month_of_both):
    report = report_build(workspace=month_of_both, month=_month())
    refunds = report["dashboard"]["refunds"]

    # the $49.00 self-service refund and the agent's $20.00; the request sent to agents waits
    assert refunds["count"] == 2
    assert refunds["total"]["amount"] == 6900
    assert {r["key"]: r["count"] for r in refunds["by_reason"]} == {
        "other": 1,
        "service_outage": 1,
    }
    paths = {p["key"]: (p["count"], p["label"]) for p in refunds["by_approval_path"]}
    assert paths["self_service"] == (1, "Self-service (within the self-service limit)")
    assert paths["auto"][0] == 1
    assert paths["pending"][0] == 1
    assert sum(count for count, _ in paths.values()) == 3
    assert report["financial"]["refunds"]["count"] == 2
    assert report["financial"]["refunds"]["total"]["amount"] == 6900
    assert "refund_approval,self_service.count,1" in report_csv(report).replace("\r", "")


def test_the_kept_roll_ups_equal_a_rebuild_with_both_channels(month_of_both):
    kept = rollups(month_of_both)
    keys = [key for (_day, family, key) in kept if family == "action"]
    assert sorted(k.rsplit("|", 1)[1] for k in keys) == ["agent", "self_service", "self_service"]

    rollups_rebuild(workspace=month_of_both)

    assert rollups(month_of_both) == kept


def test_a_roll_up_written_before_the_channel_reads_as_the_agents(month_of_both):
    # given roll-ups as issue 15 wrote them: eight key parts, no channel
    for model in (DailyRollup, RollupSource):
        for row in model.objects.filter(workspace=month_of_both, family="action"):
            row.key = row.key.rsplit("|", 1)[0]
            row.save(update_fields=["key"])

    figures = dashboard_build(workspace=month_of_both, month=_month())

    # then every action counts as an agent's, as it did then
    assert figures["actions"]["total"] == 3
    assert figures["refunds"]["count"] == 2
