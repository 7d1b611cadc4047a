"""Dashboard figures mean what the brief means (issue 14, point 8).

Each test builds a small month of its own: totals that add up, handling time in minutes,
a 0 % success row that is not "ok", recovery after agent intervention as its own figure,
CSV money in major units with a currency column, and the billing clock's month first.
"""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

import pytest
from django.contrib.auth.models import User
from django.utils import timezone

from billing_app.catalog import Role
from billing_app.models import PaymentFailure, SandboxControl
from billing_app.selectors.dashboard import dashboard_build
from billing_app.selectors.dashboard.failures import RECOVERY_ACTION_KINDS
from billing_app.selectors.months import Month
from billing_app.selectors.report import report_build, report_csv
from billing_app.services.payment_failures import recovery
from billing_app.web.dashboard import dashboard_charts

from .dashboard_data import action, actor, at, build_january, failure, ticket
from .two_factor_support import verified_login

JAN = Month(2026, 1)


def test_resolved_escalated_and_still_open_add_up_to_the_billing_tickets(workspace):
    # given four billing tickets: one solved cleanly, one escalated and solved, one
    # escalated (an approval) and still open, one neither solved nor escalated
    user = actor()
    ticket(workspace, "1", category="payment_failed", created=at(3), resolution=100)
    ticket(workspace, "2", category="refund_request", created=at(4), resolution=200, escalated=True)
    ticket(workspace, "3", category="refund_request", created=at(5))
    action(
        workspace,
        user,
        "issue_refund",
        created=at(5),
        ticket_id="3",
        decision="approval",
        status="pending_approval",
        amount_base=90000,
    )
    ticket(workspace, "4", category="tax_question", created=at(6))

    tickets = dashboard_build(workspace=workspace, month=JAN)["tickets"]

    # then each ticket is counted once: 1 + 2 + 1 = 4 (the escalated open one is not
    # also "still open", which is what made the old figures add up to 5)
    assert (
        tickets["resolved_without_escalation"],
        tickets["escalated"],
        tickets["still_open"],
    ) == (
        1,
        2,
        1,
    )
    assert (
        tickets["resolved_without_escalation"] + tickets["escalated"] + tickets["still_open"]
        == tickets["billing"]
        == 4
    )
    assert tickets["still_open_pct"] == 25.0
    assert tickets["unresolved"] == 2  # not solved, escalated or not: a separate figure


def test_a_zero_percent_success_row_is_below_target_not_ok(workspace, client):
    # given a month where every payment link failed and every invoice resend worked
    user = actor()
    for day in (3, 4):
        action(
            workspace,
            user,
            "generate_payment_link",
            created=at(day),
            status="failed",
            duration_ms=300,
        )
    action(workspace, user, "resend_invoice", created=at(5), duration_ms=300)

    figures = dashboard_build(workspace=workspace, month=JAN)
    rows = {r["key"]: r for r in figures["actions"]["rows"]}

    # then the status words come from the rate against its target
    assert rows["generate_payment_link"]["success_rate_pct"] == 0.0
    assert rows["generate_payment_link"]["success_status"] == "below_target"
    assert rows["generate_payment_link"]["success_status_label"] == "below target"
    assert rows["resend_invoice"]["success_status"] == "on_target"
    chart = str(dashboard_charts(figures)["actions"])
    assert "0.0% success, below target" in chart
    assert "0.0% ok" not in chart and " ok<" not in chart
    verified_login(client, User.objects.create_user("boss", is_staff=True, is_superuser=True))
    html = client.get("/dashboard/", {"workspace": workspace.slug, "month": "2026-01"})
    assert 'class="bad">below target</small>' in html.content.decode()


def test_avg_time_is_the_agents_handling_minutes_and_untimed_actions_are_left_out(workspace):
    # given three refunds: 2 min direct (ran in 2 s), 4 min to an approval request that
    # ran a day later, and one without a panel-open time
    user = actor()
    action(
        workspace,
        user,
        "issue_refund",
        created=at(3),
        handling=2.0,
        duration_ms=2000,
        completed=at(3) + timedelta(seconds=2),
        amount_base=100,
    )
    action(
        workspace,
        user,
        "issue_refund",
        created=at(4),
        handling=4.0,
        decision="approval",
        completed=at(5),
        amount_base=100,
    )
    action(workspace, user, "issue_refund", created=at(6), duration_ms=1000, amount_base=100)

    row = dashboard_build(workspace=workspace, month=JAN)["actions"]["rows"][0]

    # then the average is (2 + 4) / 2 minutes, not seconds of system time nor a day
    assert (row["avg_handling_minutes"], row["handling_measured"], row["count"]) == (3.0, 2, 3)
    assert row["avg_execution_seconds"] == 1.5


def _recovery_month(workspace):
    """Four failures of four customers in January 2026 (see the test below)."""
    user = actor()
    failure(
        workspace,
        "f_agent",
        failed=at(5),
        category="card_expired",
        customer="cus_a",
        recovered=at(6),
        by_agent=True,
    )
    failure(
        workspace,
        "f_auto",
        failed=at(6),
        category="insufficient_funds",
        customer="cus_b",
        recovered=at(7),
    )
    tried = failure(workspace, "f_tried", failed=at(7), category="card_declined", customer="cus_c")
    failure(workspace, "f_alone", failed=at(8), category="other", customer="cus_d")
    later = tried.created_at + timedelta(minutes=5)
    # an agent's payment link for cus_c after its failure was recorded: an intervention
    action(
        workspace,
        user,
        "generate_payment_link",
        created=at(7, 12),
        customer_id="cus_c",
        completed=later,
    )
    # not interventions: before the failure, a failed link, another kind, another customer
    action(
        workspace,
        user,
        "generate_payment_link",
        created=at(2),
        customer_id="cus_d",
        completed=tried.created_at - timedelta(days=2),
    )
    action(
        workspace,
        user,
        "generate_payment_link",
        created=at(8, 12),
        customer_id="cus_d",
        status="failed",
        completed=later,
    )
    action(
        workspace,
        user,
        "apply_credit",
        created=at(8, 13),
        customer_id="cus_d",
        completed=later,
        amount_base=100,
    )
    action(
        workspace,
        user,
        "update_payment_method",
        created=at(8, 14),
        customer_id="cus_x",
        completed=later,
    )


def test_recovery_after_agent_intervention_is_its_own_figure_and_the_parts_add_up(workspace):
    _recovery_month(workspace)

    failures = dashboard_build(workspace=workspace, month=JAN)["payment_failures"]

    # then the headline (2 of 4) splits into after an agent's action and automatic
    assert (failures["count"], failures["recovered"], failures["recovery_rate_pct"]) == (4, 2, 50.0)
    assert failures["recovered_after_agent_action"] == 1
    assert failures["recovered_automatically"] == 1
    assert failures["recovered_after_agent_action_pct"] == 25.0
    assert failures["recovered_automatically_pct"] == 25.0
    assert (
        failures["recovered_after_agent_action_pct"] + failures["recovered_automatically_pct"]
        == failures["recovery_rate_pct"]
    )
    # and of the 2 failures an agent acted on (cus_a credited, cus_c tried), 1 recovered
    assert failures["agent_intervened"] == 2
    assert failures["agent_intervention_recovery_pct"] == 50.0


def test_the_report_shows_the_recovery_after_agent_intervention(workspace):
    _recovery_month(workspace)

    recovery_figures = report_build(workspace=workspace, month=JAN)["financial"]["payment_recovery"]

    assert recovery_figures["agent_intervened"] == 2
    assert recovery_figures["recovered_after_agent_action"] == 1
    assert recovery_figures["recovered_automatically"] == 1


def test_the_dashboard_counts_the_same_recovery_actions_as_the_recovery_workflow():
    assert set(RECOVERY_ACTION_KINDS) == set(recovery.RECOVERY_ACTION_KINDS)


def _csv(text: str) -> dict[tuple[str, str], tuple[str, str]]:
    reader = csv.reader(io.StringIO(text))
    assert next(reader) == ["section", "metric", "value", "currency"]
    return {(r[0], r[1]): (r[2], r[3]) for r in reader}


def test_csv_money_is_in_major_units_with_a_currency_column(workspace, make_workspace):
    build_january(workspace)

    rows = _csv(report_csv(report_build(workspace=workspace, month=JAN)))

    # then money is in dollars and cents beside its currency; counts have no currency
    assert rows[("financial", "refunds_total")] == ("330.00", "USD")
    assert rows[("financial", "downgrades_mrr")] == ("-50.00", "USD")
    assert rows[("financial", "recovery_retained_mrr")] == ("255.00", "USD")
    assert rows[("refund_reasons", "billing_error.amount")] == ("250.00", "USD")
    assert rows[("payment_failures", "revenue_at_risk_mrr")] == ("355.00", "USD")
    assert rows[("financial", "refunds_count")] == ("3", "")
    assert rows[("volume", "still_open")] == ("1", "")
    assert rows[("actions", "issue_refund.avg_handling_minutes")] == ("2.5", "")


def test_csv_money_of_a_zero_decimal_currency_has_no_decimals(make_workspace):
    jpy = make_workspace("sakura", base_currency="JPY")
    action(
        jpy,
        actor(),
        "issue_refund",
        created=at(3),
        amount_base=1000,
        duration_ms=10,
        params={"reason": "other"},
    )

    rows = _csv(report_csv(report_build(workspace=jpy, month=JAN)))

    assert rows[("financial", "refunds_total")] == ("1000", "JPY")


@pytest.fixture
def frozen_demo(workspace):
    """A sandbox workspace on the clock ``seed_demo --as-of 2026-01-15`` sets."""
    SandboxControl.objects.update_or_create(
        workspace=workspace, defaults={"clock": datetime(2026, 1, 15, 12, tzinfo=UTC)}
    )
    return workspace


def test_the_dashboard_and_the_report_open_on_the_billing_clocks_month(frozen_demo, api_as, client):
    manager = api_as(frozen_demo, Role.MANAGER)

    # when the dashboard and the report are opened without a month
    dashboard = manager.get("/api/v1/dashboard/").json()
    report = manager.get("/api/v1/reports/monthly/").json()
    verified_login(client, User.objects.create_user("boss", is_staff=True, is_superuser=True))
    page = client.get("/dashboard/", {"workspace": frozen_demo.slug})
    report_page = client.get("/reports/monthly/", {"workspace": frozen_demo.slug})

    # then they open on the demo's January 2026, not on the wall clock's month
    assert Month.current() != JAN
    assert dashboard["month"] == report["month"] == "2026-01"
    assert "Billing support dashboard — January 2026" in page.content.decode()
    assert report_page.status_code == 302
    assert report_page["Location"].startswith("/reports/monthly/2026-01/")


def test_on_real_time_the_report_opens_on_the_last_complete_month(workspace, api_as):
    manager = api_as(workspace, Role.MANAGER)

    before = Month.current(timezone.now())
    report = manager.get("/api/v1/reports/monthly/").json()
    after = Month.current(timezone.now())  # midnight at a month's end may pass meanwhile

    assert report["month"] in {before.shift(-1).key, after.shift(-1).key}
    assert not PaymentFailure.objects.exists()


def test_every_action_kind_has_a_row_in_the_agent_actions_table():
    # a kind without a row would vanish from the table, its totals and the CSV
    from billing_app.catalog import ActionKind
    from billing_app.selectors.dashboard.actions import ACTION_LABELS

    keys = {key for key, _label in ACTION_LABELS}
    split = {"apply_credit": {"apply_credit_small", "apply_credit_medium", "apply_credit_large"}}
    for kind in ActionKind:
        assert kind.value in keys or split.get(kind.value, set()) <= keys and kind in split, kind


def test_every_action_kind_counts_toward_some_ticket_category():
    from billing_app.catalog import ActionKind
    from billing_app.selectors.dashboard.tickets import CATEGORY_ACTION_KINDS

    listed = {kind for kinds in CATEGORY_ACTION_KINDS.values() if kinds for kind in kinds}
    missing = set(ActionKind) - listed - {ActionKind.FORCE_CANCEL}
    assert not missing, missing
