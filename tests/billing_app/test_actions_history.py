"""History rules count refunds still in flight, and decide under the customer's lock (issue 12).

The concurrent proofs are in ``test_actions_concurrency.py`` (PostgreSQL); these tests pin,
one submission after another, what each in-flight state counts for.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from billing_app.catalog import ActionKind, Role
from billing_app.errors import PreconditionFailed
from billing_app.models import BillingAction, CustomerLock, MirrorCharge, MirrorRefund
from billing_app.services.actions import (
    action_submit,
    refund_history,
    refundable,
    request_fingerprint,
)
from billing_app.services.actions import run as actions_run
from billing_app.services.approvals import approval_decide
from billing_app.services.identity import AgentContext

from .actions_support import ProviderSpy, account_seed, next_key

CHARGE = "ch_acme_paid"  # $3,400.00, captured, nothing refunded


@pytest.fixture
def acme(workspace):
    return account_seed(workspace)


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


@pytest.fixture
def spy(monkeypatch):
    spy = ProviderSpy()
    real = actions_run.get_provider
    monkeypatch.setattr(actions_run, "get_provider", lambda ws: spy.wrap(real(ws)))
    return spy


def refund(context: AgentContext, amount: int, key: str | None = None) -> BillingAction:
    return action_submit(
        context=context,
        kind=ActionKind.ISSUE_REFUND,
        customer_id="cus_acme",
        ticket_id="1001",
        params={
            "charge_id": CHARGE,
            "amount": amount,
            "currency": "USD",
            "reason": "billing_error",
        },
        idempotency_key=key or next_key("refund"),
    )


def in_flight(workspace, actor, status: str, amount: int) -> BillingAction:
    """A refund recorded as still moving (what an executing or unknown-outcome action looks like)."""
    params = {"charge_id": CHARGE, "amount": amount, "currency": "USD", "reason": "billing_error"}
    return BillingAction.objects.create(
        workspace=workspace,
        actor=actor,
        actor_role="manager",
        customer_id="cus_acme",
        kind=ActionKind.ISSUE_REFUND.value,
        params=params,
        amount=amount,
        currency="USD",
        status=status,
        decision=BillingAction.Decision.ALLOW,
        idempotency_key=next_key("in-flight"),
        request_fingerprint=request_fingerprint(
            kind="issue_refund", customer_id="cus_acme", params=params
        ),
        provider=workspace.provider,
        result={"charge_id": CHARGE},
    )


def charge(workspace) -> MirrorCharge:
    return MirrorCharge.objects.get(workspace=workspace, stripe_id=CHARGE)


def test_refunds_waiting_for_approval_count_toward_the_refund_pattern(acme, agent, spy):
    # given three refunds above a Specialist's $1,000 limit, all waiting for a Manager
    specialist = agent(Role.SPECIALIST)
    waiting = [refund(specialist, 100_001) for _ in range(3)]
    assert {a.status for a in waiting} == {"pending_approval"}

    # when a Manager refunds the same customer
    action = refund(agent(Role.MANAGER), 1000)

    # then the three waiting refunds make a pattern: Manager review, nothing sent
    assert action.status == "pending_approval"
    assert "refund pattern: 3 refunds" in action.decision_reason
    assert spy.writes("refund") == []


@pytest.mark.parametrize("status", ["executing", "outcome_unknown", "pending_approval"])
def test_a_refund_still_moving_counts_toward_pattern_and_remainder(
    status, workspace, acme, agent, spy
):
    # given two refunds done and a third executing, waiting for Stripe's answer or for approval
    manager = agent(Role.MANAGER)
    refund(manager, 1000)
    refund(manager, 1000)
    moving = in_flight(workspace, manager.user, status, 300000)

    # then it is counted as a refund, and its amount as gone from the charge (except when
    # that action itself is checked again before it executes)
    history = refund_history(workspace=workspace, customer_id="cus_acme")
    assert history.refunds_in_pattern_window == 3
    assert refundable(workspace, charge(workspace)) == 340000 - 2000 - 300000
    assert refundable(workspace, charge(workspace), exclude_action_id=moving.pk) == 340000 - 2000


def test_a_refund_of_more_than_is_left_beside_an_executing_one_is_refused(
    workspace, acme, agent, spy
):
    # given two refunds done and a $3,000.00 one executing right now
    manager = agent(Role.MANAGER)
    refund(manager, 1000)
    refund(manager, 1000)
    in_flight(workspace, manager.user, "executing", 300000)

    # when a refund of more than what is left is submitted
    with pytest.raises(PreconditionFailed) as raised:
        refund(manager, 40000)

    # then it is refused for the amount, and nothing more reaches the provider
    assert raised.value.code == "exceeds_refundable"
    assert raised.value.details["refundable"]["amount"] == 38000
    assert len(spy.writes("refund")) == 2


def test_a_refund_the_mirror_already_holds_is_counted_once(workspace, acme, agent):
    # given an executing refund whose Stripe refund the webhook already mirrored, tagged
    # with the action id, before the action recorded its result
    manager = agent(Role.MANAGER)
    moving = in_flight(workspace, manager.user, "executing", 100000)
    MirrorRefund.objects.create(
        workspace=workspace,
        stripe_id="re_from_webhook",
        charge_id=CHARGE,
        amount=100000,
        currency="usd",
        status="succeeded",
        created=acme.now,
        data={"id": "re_from_webhook", "metadata": {"billing_desk_action": str(moving.pk)}},
    )

    # then the charge and the pattern count that refund once, not twice
    assert refundable(workspace, charge(workspace)) == 240000
    assert (
        refund_history(workspace=workspace, customer_id="cus_acme").refunds_in_pattern_window == 1
    )


def test_a_pending_refund_holds_its_amount_until_it_is_decided(workspace, acme, agent, spy):
    # given a Specialist's request to refund the whole charge (above $1,000), waiting for a Manager
    whole = refund(agent(Role.SPECIALIST), 340000)
    assert whole.status == "pending_approval"
    manager = agent(Role.MANAGER)

    # when a Manager tries to refund part of it meanwhile, it is refused: nothing is left
    with pytest.raises(PreconditionFailed) as raised:
        refund(manager, 100)
    assert raised.value.code == "already_refunded"

    # when another Manager approves the request, its own amount is not held against it
    approver = agent(Role.MANAGER)
    approval_decide(
        approval_id=whole.approval.pk, user=approver.user, workspace=workspace, decision="approve"
    )

    # then the whole charge is refunded once
    whole.refresh_from_db()
    assert whole.status == "succeeded", (whole.error_code, whole.error_message)
    assert [kw["amount"].amount for _, kw in spy.writes("refund")] == [340000]
    assert refundable(workspace, charge(workspace)) == 0


def test_a_denied_request_releases_its_amount(workspace, acme, agent, spy):
    # given a pending whole-charge refund (a Specialist's, above $1,000) that a Manager denies
    whole = refund(agent(Role.SPECIALIST), 340000)
    approval_decide(
        approval_id=whole.approval.pk,
        user=agent(Role.MANAGER).user,
        workspace=workspace,
        decision="deny",
        comment="not eligible",
    )

    # when a Manager refunds part of the charge
    action = refund(agent(Role.MANAGER), 100)

    # then it executes: a denied request holds nothing
    assert action.status == "succeeded"
    assert len(spy.writes("refund")) == 1


def test_the_decision_lock_is_one_row_per_customer(workspace, acme, agent, spy):
    # given refunds and a credit for one customer, and a refund for another
    manager = agent(Role.MANAGER)
    refund(manager, 100)
    refund(manager, 100)
    action_submit(
        context=manager,
        kind=ActionKind.APPLY_CREDIT,
        customer_id="cus_acme",
        ticket_id="1001",
        params={"amount": 500, "currency": "USD"},
        idempotency_key=next_key(),
    )
    action_submit(
        context=manager,
        kind=ActionKind.ISSUE_REFUND,
        customer_id="cus_other",
        ticket_id="1002",
        params={
            "charge_id": "ch_other_paid",
            "amount": 100,
            "currency": "USD",
            "reason": "billing_error",
        },
        idempotency_key=next_key(),
    )

    # then each customer has one lock row, taken at each decision
    locks = CustomerLock.objects.filter(workspace=workspace)
    assert sorted(locks.values_list("customer_id", flat=True)) == ["cus_acme", "cus_other"]
    assert all(lock.last_decision_at is not None for lock in locks)


def test_an_old_refund_outside_the_window_still_counts_while_in_flight(workspace, acme, agent):
    # given a refund created long ago that is still waiting for Stripe's answer
    manager = agent(Role.MANAGER)
    stuck = in_flight(workspace, manager.user, "outcome_unknown", 100)
    BillingAction.objects.filter(pk=stuck.pk).update(
        created_at=acme.now - timedelta(days=workspace.refund_pattern_days + 5)
    )

    # then it still counts: it may move money now
    assert (
        refund_history(workspace=workspace, customer_id="cus_acme").refunds_in_pattern_window == 1
    )
