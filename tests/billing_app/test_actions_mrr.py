"""The MRR change every plan change, seat change and discount records when it executes,
and the plan item seats are counted on when a subscription has an add-on.

Figures by hand. Acme: 50 seats of Enterprise Pro at $48.00 a month, plus add-ons of
$500.00, $300.00 and $200.00 a month (USD). Add-on Co: 3 seats of Team at $20.00 a month
and a $300.00 a month add-on whose product says ``addon: "true"``.
"""

from __future__ import annotations

import pytest

from billing_app.catalog import ActionKind, Role
from billing_app.errors import ProviderOutcomeUnknown
from billing_app.models import BillingAction, MirrorSubscriptionItem
from billing_app.services.actions import action_submit
from billing_app.services.actions import run as actions_run
from billing_app.services.identity import AgentContext
from billing_app.services.mirror import mirror_upsert
from billing_app.services.reconcile import actions_unknown_reconcile

from .actions_support import ProviderSpy, account_seed, addon_account_seed, next_key, price

K = ActionKind


@pytest.fixture
def acme(workspace):
    account = account_seed(workspace)
    addon_account_seed(workspace, account.now)
    return account


@pytest.fixture
def spy(monkeypatch):
    spy = ProviderSpy()
    real = actions_run.get_provider
    monkeypatch.setattr(actions_run, "get_provider", lambda ws: spy.wrap(real(ws)))
    return spy


@pytest.fixture
def agent(workspace, sign_in):
    def make(role: Role) -> AgentContext:
        membership, _ = sign_in(workspace, role)
        return AgentContext(
            user=membership.user,
            workspace=workspace,
            membership=membership,
            installation=membership.installation,
            role=Role(role),
        )

    return make


def submit(context, kind, params, customer="cus_acme"):
    return action_submit(
        context=context,
        kind=kind,
        customer_id=customer,
        ticket_id="1001",
        params=params,
        idempotency_key=next_key("mrr"),
    )


def quantity(workspace, item_id):
    return MirrorSubscriptionItem.objects.get(workspace=workspace, stripe_id=item_id).quantity


def test_seats_without_an_item_id_change_the_plan_item_not_the_larger_add_on(
    workspace, acme, agent, spy
):
    # given Add-on Co: 3 × $20.00 seats and a $300.00 add-on (the larger item)
    # when an L2 agent sets 5 seats without naming an item
    action = submit(
        agent(Role.L2),
        K.ADJUST_SEATS,
        {"subscription_id": "sub_addon", "quantity": 5},
        customer="cus_addon",
    )

    # then the seat item changed, the add-on did not, and the MRR grew by 2 × $20.00
    assert action.status == BillingAction.Status.SUCCEEDED, action.error_message
    ((_, sent),) = spy.writes("adjust_seats")
    assert sent["item_id"] == "si_addon_plan"
    assert quantity(workspace, "si_addon_plan") == 5
    assert quantity(workspace, "si_addon_platform") == 1
    assert action.result["previous_quantity"] == 3
    assert action.result["mrr_delta"] == 2 * 2000
    assert action.result["mrr_currency"] == "USD"


def test_fewer_seats_record_a_negative_mrr_change(acme, agent, spy):
    # given Acme's 50 seats at $48.00 (45 in use)
    # when the seats go down to 46
    action = submit(agent(Role.L2), K.ADJUST_SEATS, {"subscription_id": "sub_acme", "quantity": 46})

    # then 4 seats × $48.00 a month less
    assert action.status == BillingAction.Status.SUCCEEDED, action.error_message
    assert action.result["mrr_delta"] == -4 * 4800
    assert action.result["mrr_currency"] == "USD"


def test_an_upgrade_records_the_plan_items_monthly_change(acme, agent, spy):
    # given 50 seats of Pro at $48.00
    # when they move to Ultimate at $72.00 (an upgrade, invoiced now)
    action = submit(
        agent(Role.L2),
        K.CHANGE_PLAN,
        {"subscription_id": "sub_acme", "price_id": "price_ultimate_seat"},
    )

    # then 50 × ($72.00 − $48.00) a month more; the add-ons do not count
    assert action.status == BillingAction.Status.SUCCEEDED, action.error_message
    assert action.result["direction"] == "upgrade"
    assert action.result["mrr_delta"] == 50 * (7200 - 4800)
    assert action.result["mrr_currency"] == "USD"


def test_a_downgrade_scheduled_for_the_period_end_records_the_real_seat_count(
    workspace, acme, agent, spy
):
    # given 50 seats of Pro at $48.00
    # when they move to Business at $30.00 (a downgrade, scheduled for the period end)
    action = submit(
        agent(Role.L2),
        K.CHANGE_PLAN,
        {"subscription_id": "sub_acme", "price_id": "price_business_seat"},
    )

    # then nothing changed yet, and the recorded change counts all 50 seats (not 1)
    assert action.status == BillingAction.Status.SUCCEEDED, action.error_message
    assert action.result["direction"] == "downgrade"
    assert action.result["schedule_id"]
    plan = MirrorSubscriptionItem.objects.get(workspace=workspace, stripe_id="si_acme_plan")
    assert plan.price_id == "price_pro_seat"
    assert action.result["mrr_delta"] == 50 * (3000 - 4800)
    assert action.result["mrr_currency"] == "USD"


def test_a_discount_records_its_share_of_the_whole_subscription(acme, agent, spy):
    # given Acme's subscription at $2,400.00 + $500.00 + $300.00 + $200.00 = $3,400.00 a month
    # when a Manager gives 10% for three months
    action = submit(
        agent(Role.MANAGER),
        K.APPLY_DISCOUNT,
        {
            "subscription_id": "sub_acme",
            "percent_off": "10",
            "duration": "repeating",
            "duration_in_months": 3,
        },
    )

    # then 10% of $3,400.00 a month less
    assert action.status == BillingAction.Status.SUCCEEDED, action.error_message
    assert action.result["mrr_delta"] == -34000
    assert action.result["mrr_currency"] == "USD"


def test_a_seat_change_whose_outcome_is_unknown_keeps_its_mrr_change(acme, agent, spy):
    # given the provider takes the seat change and the answer is lost
    spy.fail("adjust_seats", *[ProviderOutcomeUnknown("read timeout")] * 3)

    # when the seats go up to 52
    action = submit(agent(Role.L2), K.ADJUST_SEATS, {"subscription_id": "sub_acme", "quantity": 52})

    # then the action is open, and the change it will record once confirmed is kept
    assert action.status == BillingAction.Status.OUTCOME_UNKNOWN
    assert action.result["mrr_delta"] == 2 * 4800
    assert action.result["mrr_currency"] == "USD"


@pytest.mark.parametrize(
    ("kind", "params"),
    [
        (K.EXTEND_GRACE_PERIOD, {"subscription_id": "sub_acme", "days": 7}),
        (K.PAUSE_SUBSCRIPTION, {"subscription_id": "sub_acme", "behavior": "keep_as_draft"}),
    ],
)
def test_other_subscription_actions_record_no_mrr_change(kind, params, acme, agent, spy):
    action = submit(agent(Role.MANAGER), kind, params)

    assert action.status == BillingAction.Status.SUCCEEDED, action.error_message
    assert "mrr_delta" not in action.result


def test_a_seat_change_settled_by_reconciliation_records_its_mrr_change(
    workspace, acme, agent, spy
):
    # given a seat change whose request was lost before the provider acted
    spy.fail("adjust_seats", *[ProviderOutcomeUnknown("read timeout")] * 3)
    action = submit(agent(Role.L2), K.ADJUST_SEATS, {"subscription_id": "sub_acme", "quantity": 52})
    assert action.status == BillingAction.Status.OUTCOME_UNKNOWN

    # when reconciliation replays it with the same key
    actions_unknown_reconcile()

    # then it succeeded once, with 2 seats × $48.00 a month recorded
    action.refresh_from_db()
    assert action.status == BillingAction.Status.SUCCEEDED
    assert quantity(workspace, "si_acme_plan") == 52
    assert (action.result["mrr_delta"], action.result["mrr_currency"]) == (2 * 4800, "USD")


def test_a_change_to_a_yearly_price_records_the_monthly_difference(workspace, acme, agent, spy):
    # given a yearly Pro price of $480.00 a seat ($40.00 a month)
    mirror_upsert(
        workspace=workspace,
        obj=price("price_pro_year", "prod_pro", 48000, acme.now, interval="year"),
    )

    # when Acme's 50 monthly seats at $48.00 move to it
    action = submit(
        agent(Role.L2), K.CHANGE_PLAN, {"subscription_id": "sub_acme", "price_id": "price_pro_year"}
    )

    # then 50 × ($40.00 − $48.00) a month
    assert action.status == BillingAction.Status.SUCCEEDED, action.error_message
    assert action.result["mrr_delta"] == 50 * (4000 - 4800)
    assert action.result["mrr_currency"] == "USD"
