"""The demo's seeded history: every dashboard section populated, deterministic, idempotent."""

from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal

from billing_app import models
from billing_app.demo.history import MARKER, demo_history_seed
from billing_app.demo.history.subscriptions import (
    PLAN_LADDER,
    discount,
    history_subscription,
    plan_change,
    seat_change,
)
from billing_app.selectors.dashboard import dashboard_build
from billing_app.selectors.months import Month

AS_OF = datetime(2026, 1, 20, 12, tzinfo=UTC)
DECEMBER = Month(2025, 12)


def _figures(workspace):
    figures = dashboard_build(workspace=workspace, month=DECEMBER)
    figures.pop("generated_at")
    return figures


def _forget_history(workspace):
    models.BillingAction.objects.filter(workspace=workspace).delete()
    models.HelpdeskTicket.objects.filter(workspace=workspace).delete()
    models.ProviderCall.objects.filter(workspace=workspace).delete()
    models.StripeEvent.objects.filter(workspace=workspace).delete()
    models.PaymentFailure.objects.filter(workspace=workspace).delete()
    for model in (
        models.MirrorCustomer,
        models.MirrorSubscription,
        models.MirrorSubscriptionItem,
        models.MirrorPrice,
        models.MirrorInvoice,
        models.MirrorCharge,
    ):
        model.objects.filter(workspace=workspace).delete()


def test_demo_history_populates_every_section(workspace):
    # given three months of history up to 20 January
    seeded = demo_history_seed(workspace=workspace, months=3, as_of=AS_OF, scale=0.3)

    # when the dashboard of December (a complete month) is computed
    figures = dashboard_build(workspace=workspace, month=DECEMBER)

    # then every section has figures computed from the seeded rows
    assert seeded.created and seeded.tickets > 0 and seeded.failures > 0
    assert figures["tickets"]["billing"] > 0
    assert figures["tickets"]["csat"] is not None
    assert figures["tickets"]["escalated"] > 0
    assert sum(c["auto_resolved"] for c in figures["categories"]) > 0
    assert figures["actions"]["total"] > 0
    assert figures["actions"]["avg_approval_hours"] is not None
    assert figures["refunds"]["count"] > 0
    assert figures["payment_failures"]["count"] > 0
    assert figures["payment_failures"]["recovered"] > 0
    assert figures["health"]["uptime_pct"] is not None
    assert figures["health"]["webhooks"]["success_rate_pct"] is not None
    # and nothing is dated after as_of
    assert not models.HelpdeskTicket.objects.filter(created_at__gt=AS_OF).exists()
    assert not models.BillingAction.objects.filter(created_at__gt=AS_OF).exists()
    assert not models.ProviderCall.objects.filter(created_at__gt=AS_OF).exists()


def test_demo_history_shows_handling_times_and_recovery_after_agent_intervention(workspace):
    # given the demo history up to 20 January
    demo_history_seed(workspace=workspace, months=3, as_of=AS_OF, scale=0.3)

    # when December's dashboard is computed
    figures = dashboard_build(workspace=workspace, month=DECEMBER)

    # then the agents' handling times are shown in minutes, a few actions untimed
    actions = figures["actions"]
    assert 0 < actions["handling_measured"] < actions["total"]
    assert 0.3 < actions["avg_handling_minutes"] < 3.0
    rows = {r["key"]: r for r in actions["rows"]}
    assert (
        rows["issue_refund"]["avg_handling_minutes"]
        > rows["resend_invoice"]["avg_handling_minutes"]
    )
    # an approval's handling ends at its submission: minutes, not the approver's hours
    approvals = models.BillingAction.objects.filter(
        workspace=workspace, decision="approval", handling_started_at__isnull=False
    )
    assert approvals.exists()
    assert all((a.created_at - a.handling_started_at).total_seconds() < 3600 for a in approvals)
    # and some recoveries followed an agent's recovery action, the others were automatic
    failures = figures["payment_failures"]
    assert 0 < failures["recovered_after_agent_action"] < failures["recovered"]
    assert failures["recovered_automatically"] == (
        failures["recovered"] - failures["recovered_after_agent_action"]
    )
    assert failures["agent_intervened"] >= failures["recovered_after_agent_action"]
    credited = models.PaymentFailure.objects.filter(
        workspace=workspace, recovered_by="agent_action"
    ).select_related("recovery_action")
    assert all(
        f.recovery_action.customer_id == f.customer_id
        and f.failed_at <= f.recovery_action.completed_at <= f.recovered_at
        for f in credited
    )


def test_demo_history_is_deterministic_and_idempotent(workspace):
    demo_history_seed(workspace=workspace, months=2, as_of=AS_OF, scale=0.2)
    first = _figures(workspace)

    # a second call changes nothing
    assert demo_history_seed(workspace=workspace, months=2, as_of=AS_OF, scale=0.2).created is False
    assert _figures(workspace) == first

    # seeding again from scratch gives the same figures
    _forget_history(workspace)
    assert demo_history_seed(workspace=workspace, months=2, as_of=AS_OF, scale=0.2).created
    assert _figures(workspace) == first
    assert models.BillingAction.objects.filter(idempotency_key__startswith=MARKER).exists()


# -- the MRR change record (issue 13): from the history subscription's prices, not random ---

USD_MONTHLY_SEAT = {  # the demo catalog's per-seat plans, minor units per seat per month
    "price_sbx_business__monthly": 3000,
    "price_sbx_enterprise_pro__monthly": 4800,
    "price_sbx_enterprise_plus__monthly": 6400,
}


class FirstChoice:
    """An rng that always picks the first candidate (figures known in advance)."""

    def choice(self, seq):
        return seq[0]


class Picks:
    """An rng whose every choice is ``value`` (a seat step, a discount percent)."""

    def __init__(self, value):
        self.value = value

    def choice(self, seq):
        assert self.value in seq
        return self.value


def test_a_history_plan_change_records_the_mrr_of_its_subscription():
    # given 20 seats of Business ($30/seat/month)
    sub = replace(history_subscription(0), price=PLAN_LADDER[0], quantity=20)

    # when the history upgrades it (to Enterprise Pro, $48/seat)
    change = plan_change(sub, upgrade=True, rng=FirstChoice())

    # then the delta is 20 × ($48 − $30) = $360.00 a month, in USD, with the prices named
    assert change.result["mrr_delta"] == 36000
    assert change.result["mrr_currency"] == "USD"
    assert change.result["direction"] == "upgrade"
    assert change.result["previous_price_id"] == "price_sbx_business__monthly"
    assert change.result["new_price_id"] == "price_sbx_enterprise_pro__monthly"
    assert change.params == {
        "subscription_id": sub.id,
        "price_id": "price_sbx_enterprise_pro__monthly",
    }


def test_a_history_downgrade_uses_the_real_seat_quantity():
    # given 12 seats of Enterprise Plus ($64/seat)
    sub = replace(history_subscription(0), price=PLAN_LADDER[2], quantity=12)

    # when the history downgrades it (to Business, the first cheaper plan)
    change = plan_change(sub, upgrade=False, rng=FirstChoice())

    # then the delta is 12 × ($30 − $64) = −$408.00 a month
    assert change.result["direction"] == "downgrade"
    assert change.result["mrr_delta"] == -40800


def test_history_seat_changes_and_discounts_record_their_mrr():
    # given 20 seats of Business
    sub = replace(history_subscription(0), price=PLAN_LADDER[0], quantity=20)

    # when 10 seats are added, then 5 more
    seats = seat_change(sub, rng=Picks(10))
    more = seat_change(seats.after, rng=Picks(5))
    # and a 20 % discount is applied to the 35 seats
    cut = discount(more.after, rng=Picks(20), coupon_id="coupon_demo")
    # and the discounted subscription then moves to Enterprise Pro
    moved = plan_change(cut.after, upgrade=True, rng=FirstChoice())

    # then: +10 × $30 = $300.00, +5 × $30 = $150.00; −20 % of 35 × $30 = −$210.00;
    # 35 × ($48 − $30) × 80 % = $504.00
    assert (seats.result["mrr_delta"], seats.result["previous_quantity"]) == (30000, 20)
    assert (more.result["mrr_delta"], more.result["quantity"]) == (15000, 35)
    assert cut.result["mrr_delta"] == -21000 and cut.params["percent_off"] == "20"
    assert moved.result["mrr_delta"] == 50400
    assert {seats.result["mrr_currency"], cut.result["mrr_currency"]} == {"USD"}


def test_every_seeded_subscription_change_records_the_mrr_of_the_subscription_it_changed(
    workspace,
):
    # given two months of history
    demo_history_seed(workspace=workspace, months=2, as_of=AS_OF, scale=0.5)
    rows = sorted(
        models.BillingAction.objects.filter(
            workspace=workspace,
            kind__in=("change_plan", "adjust_seats", "apply_discount"),
            status="succeeded",
        ),
        key=lambda row: int(row.idempotency_key.rsplit("-", 1)[1]),
    )

    # when the recorded changes are replayed on each history customer's subscription
    # (price, seats, percent off), computing each month's amount by hand
    state = {}
    kinds = set()
    for row in rows:
        customer = int(row.customer_id.removeprefix("cus_hist_"))
        start = history_subscription(customer)
        price, seats, percent = state.get(customer, (start.price["id"], start.quantity, 0))
        before = USD_MONTHLY_SEAT[price] * seats * (100 - percent)
        if row.kind == "change_plan":
            assert row.result["previous_price_id"] == price
            price = row.result["new_price_id"]
        elif row.kind == "adjust_seats":
            assert row.result["previous_quantity"] == seats
            seats = row.result["quantity"]
        else:
            percent = int(row.params["percent_off"])
        after = USD_MONTHLY_SEAT[price] * seats * (100 - percent)
        state[customer] = (price, seats, percent)
        kinds.add(row.kind)

        # then every row recorded that change: signed int minor units a month, in USD
        expected = int((Decimal(after - before) / 100).quantize(Decimal(1)))
        assert row.result["mrr_delta"] == expected, row.idempotency_key
        assert isinstance(row.result["mrr_delta"], int)
        assert row.result["mrr_currency"] == "USD"
        assert row.params["subscription_id"] == f"sub_hist_{customer:03d}"
        if row.kind == "change_plan":
            assert (row.result["direction"] == "upgrade") == (expected > 0)
    assert kinds == {"change_plan", "adjust_seats", "apply_discount"}
