"""Exactly once under real concurrency (PostgreSQL: SQLite has no row locks and one writer)."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import timedelta

import pytest
from django.db import connection, connections
from django.utils import timezone

from billing_app.catalog import ActionKind, Role
from billing_app.errors import Conflict
from billing_app.models import ActionPolicy, ApprovalRequest, BillingAction, MirrorRefund
from billing_app.services.actions import action_submit
from billing_app.services.actions import run as actions_run
from billing_app.services.approvals import approval_decide
from billing_app.services.identity import AgentContext
from tests.concurrency import run_at_once

from .actions_support import ProviderSpy, account_seed

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif(
        connection.vendor != "postgresql",
        reason="needs PostgreSQL (DATABASE_URL) for concurrent transactions and row locks",
    ),
    pytest.mark.django_db(transaction=True),
]

REFUND = {
    "charge_id": "ch_acme_paid",
    "amount": 10000,
    "currency": "USD",
    "reason": "billing_error",
}


@pytest.fixture
def spy(monkeypatch):
    spy = ProviderSpy()
    real = actions_run.get_provider
    monkeypatch.setattr(actions_run, "get_provider", lambda ws: spy.wrap(real(ws)))
    return spy


def context_for(membership, workspace) -> AgentContext:
    return AgentContext(
        user=membership.user,
        workspace=workspace,
        membership=membership,
        installation=membership.installation,
        role=Role(membership.role),
    )


def test_fifty_identical_refund_submissions_make_one_refund(workspace, sign_in, spy):
    # given a Manager and a refundable charge
    account_seed(workspace)
    membership, _ = sign_in(workspace, Role.MANAGER)
    context = context_for(membership, workspace)

    # when the same submission arrives fifty times at once
    results = run_at_once(
        50,
        lambda i: action_submit(
            context=context,
            kind=ActionKind.ISSUE_REFUND,
            customer_id="cus_acme",
            ticket_id="1001",
            params=REFUND,
            idempotency_key="panel-double-submit",
        ),
    )

    # then every caller gets the same succeeded action, and the provider refunded once
    errors = [r for r in results if isinstance(r, BaseException)]
    assert errors == []
    assert {r.pk for r in results} == {results[0].pk}
    assert {r.status for r in results} == {BillingAction.Status.SUCCEEDED}
    assert sum(1 for r in results if not r.replayed) == 1
    assert len(spy.writes("refund")) == 1
    assert BillingAction.objects.count() == 1
    assert MirrorRefund.objects.filter(workspace=workspace, charge_id="ch_acme_paid").count() == 1


def _escalate_for_l1(workspace, action: str) -> None:
    """The admin's per-cell option: L1 may request approval for this ❌ action."""
    ActionPolicy.objects.filter(workspace=workspace, action=action, role="l1").update(
        effect="request"
    )


def test_two_approvers_at_once_produce_one_decision(workspace, sign_in, spy):
    # given an L1 agent's refund (escalation turned on for the cell) waiting for a
    # Manager, and two Managers
    account_seed(workspace)
    _escalate_for_l1(workspace, "issue_refund")
    l1, _ = sign_in(workspace, Role.L1)
    action = action_submit(
        context=context_for(l1, workspace),
        kind=ActionKind.ISSUE_REFUND,
        customer_id="cus_acme",
        ticket_id="1001",
        params=REFUND,
        idempotency_key="escalate-me",
    )
    approval_id = action.approval.pk
    managers = [sign_in(workspace, Role.MANAGER, f"mgr-{n}")[0] for n in range(2)]

    # when both approve at the same moment
    results = run_at_once(
        2,
        lambda i: approval_decide(
            approval_id=approval_id,
            user=managers[i].user,
            workspace=workspace,
            decision="approve",
            comment=f"ok from {i}",
        ),
    )

    # then one decision stands, the other is told it was already decided, one refund happens
    outcomes = Counter(r.code if isinstance(r, Conflict) else type(r).__name__ for r in results)
    assert outcomes == Counter({"ApprovalRequest": 1, "already_decided": 1}), results
    approval = ApprovalRequest.objects.get(pk=approval_id)
    assert approval.status == "approved"
    assert approval.decided_by_id in {m.user_id for m in managers}
    action.refresh_from_db()
    assert action.status == "succeeded"
    assert action.approved_by_id == approval.decided_by_id
    assert len(spy.writes("refund")) == 1


def test_approve_and_deny_at_once_produce_one_decision(workspace, sign_in, spy):
    account_seed(workspace)
    _escalate_for_l1(workspace, "apply_credit")
    l1, _ = sign_in(workspace, Role.L1)
    action = action_submit(
        context=context_for(l1, workspace),
        kind=ActionKind.APPLY_CREDIT,
        customer_id="cus_acme",
        ticket_id="1001",
        params={"amount": 2500, "currency": "USD"},
        idempotency_key="credit-escalated",
    )
    managers = [sign_in(workspace, Role.MANAGER, f"m-{n}")[0] for n in range(2)]

    results = run_at_once(
        2,
        lambda i: approval_decide(
            approval_id=action.approval.pk,
            user=managers[i].user,
            workspace=workspace,
            decision=("approve", "deny")[i],
            comment="decided",
        ),
    )

    assert sum(isinstance(r, Conflict) for r in results) == 1
    action.refresh_from_db()
    approval = ApprovalRequest.objects.get(pk=action.approval.pk)
    assert (approval.status, action.status) in {("approved", "succeeded"), ("denied", "denied")}
    assert len(spy.writes("apply_credit")) == (1 if approval.status == "approved" else 0)


# --- decisions that count history: serialised per customer (issue 12) -----------------------


def small_refund(amount: int) -> dict:
    return {**REFUND, "amount": amount}


def submit_refund(context: AgentContext, amount: int, key: str) -> BillingAction:
    return action_submit(
        context=context,
        kind=ActionKind.ISSUE_REFUND,
        customer_id="cus_acme",
        ticket_id="1001",
        params=small_refund(amount),
        idempotency_key=key,
    )


def decision_of(result) -> str:
    """``succeeded`` / ``pending_approval`` for a recorded action, else the refusal's code."""
    if isinstance(result, BillingAction):
        return result.status
    return getattr(result, "code", type(result).__name__)


def pattern_counts(actions) -> list[int]:
    """The refund count each pattern decision saw ("refund pattern: N refunds …")."""
    return sorted(
        int(a.decision_reason.split("refund pattern: ")[1].split(" ")[0])
        for a in actions
        if "refund pattern: " in a.decision_reason
    )


def one_by_one(make_workspace, sign_in, amounts: list[int], **workspace_fields) -> list[str]:
    """The same submissions, sent one after the other to a twin workspace: the reference."""
    twin = make_workspace()
    for name, value in workspace_fields.items():
        setattr(twin, name, value)
    twin.save()
    account_seed(twin)
    membership, _ = sign_in(twin, Role.MANAGER)
    context = context_for(membership, twin)
    decisions = []
    for i, amount in enumerate(amounts):
        try:
            result = submit_refund(context, amount, f"twin-{i}")
        except Exception as exc:  # the refusal is the decision
            result = exc
        decisions.append(decision_of(result))
    return decisions


def test_fifty_refunds_at_once_get_the_decisions_they_would_get_one_by_one(
    workspace, make_workspace, sign_in, spy
):
    # given a Manager, a customer with no refunds yet, and a charge that covers all fifty
    account_seed(workspace)
    membership, _ = sign_in(workspace, Role.MANAGER)
    context = context_for(membership, workspace)
    amounts = [1000] * 50

    # when fifty different refunds for that customer arrive at once
    results = run_at_once(50, lambda i: submit_refund(context, amounts[i], f"refund-{i}"))

    # then, as one by one: the first three execute, the 4th onwards go to Manager review
    # ("3 or more refunds in 90 days"), each counting the refunds decided before it
    assert [r for r in results if not isinstance(r, BillingAction)] == []
    decisions = Counter(decision_of(r) for r in results)
    assert decisions == Counter({"succeeded": 3, "pending_approval": 47})
    assert len(spy.writes("refund")) == 3
    pending = [r for r in results if r.status == "pending_approval"]
    assert pattern_counts(pending) == list(range(3, 50))
    assert all(r.approval.required_roles == ["manager"] for r in pending)
    assert decisions == Counter(one_by_one(make_workspace, sign_in, amounts))


def test_concurrent_partial_refunds_never_exceed_the_refundable_amount(
    workspace, make_workspace, sign_in, spy
):
    # given a $3,400.00 charge and a workspace whose refund pattern does not interfere
    workspace.refund_pattern_count = 1000
    workspace.save(update_fields=["refund_pattern_count"])
    account_seed(workspace)
    membership, _ = sign_in(workspace, Role.MANAGER)
    context = context_for(membership, workspace)
    amounts = [100000] * 50  # $1,000.00 each: three fit, a fourth would not

    # when fifty $1,000.00 refunds of it arrive at once
    results = run_at_once(50, lambda i: submit_refund(context, amounts[i], f"partial-{i}"))

    # then three are refunded and the rest are refused before anything reaches the provider
    decisions = Counter(decision_of(r) for r in results)
    assert decisions == Counter({"succeeded": 3, "exceeds_refundable": 47})
    assert len(spy.writes("refund")) == 3
    refunded = MirrorRefund.objects.filter(workspace=workspace, charge_id="ch_acme_paid")
    assert sum(r.amount for r in refunded) == 300000
    refusal = next(r for r in results if not isinstance(r, BillingAction))
    assert refusal.details["refundable"]["amount"] == 40000
    assert decisions == Counter(
        one_by_one(make_workspace, sign_in, amounts, refund_pattern_count=1000)
    )


def test_pending_refunds_hold_their_amount_against_concurrent_ones(
    workspace, make_workspace, sign_in, spy
):
    # given the default refund pattern (3 in 90 days) and $100.00 refunds of a $3,400.00 charge
    account_seed(workspace)
    membership, _ = sign_in(workspace, Role.MANAGER)
    context = context_for(membership, workspace)
    amounts = [10000] * 50

    # when fifty arrive at once
    results = run_at_once(50, lambda i: submit_refund(context, amounts[i], f"mixed-{i}"))

    # then three execute, thirty-one wait for review holding $3,100.00, and the last
    # sixteen find nothing left to refund: exactly as one by one
    decisions = Counter(decision_of(r) for r in results)
    assert decisions == Counter({"succeeded": 3, "pending_approval": 31, "already_refunded": 16})
    assert len(spy.writes("refund")) == 3
    held = BillingAction.objects.filter(
        workspace=workspace, status__in=("succeeded", "pending_approval")
    )
    assert sum(a.amount for a in held) == 340000
    assert decisions == Counter(one_by_one(make_workspace, sign_in, amounts))


def test_no_lock_is_held_while_the_provider_is_called(workspace, sign_in, monkeypatch):
    # given a customer with two refunds already, and a provider whose first refund call
    # does not return until the test lets it
    account_seed(workspace)
    for n in range(2):
        MirrorRefund.objects.create(
            workspace=workspace,
            stripe_id=f"re_earlier_{n}",
            charge_id="ch_acme_paid",
            amount=100,
            currency="usd",
            status="succeeded",
            created=timezone.now() - timedelta(days=3 + n),
        )
    entered, release = threading.Event(), threading.Event()
    real = actions_run.get_provider

    class Held:
        def __init__(self, inner):
            self._inner = inner

        def __getattr__(self, name):
            return getattr(self._inner, name)

        def refund(self, **kwargs):
            entered.set()
            assert release.wait(120), "the test never released the provider"
            return self._inner.refund(**kwargs)

    monkeypatch.setattr(actions_run, "get_provider", lambda ws: Held(real(ws)))
    membership, _ = sign_in(workspace, Role.MANAGER)
    context = context_for(membership, workspace)
    first: dict = {}

    def submit_first() -> None:
        try:
            first["action"] = submit_refund(context, 1000, "third-refund")
        finally:
            connections.close_all()

    worker = threading.Thread(target=submit_first)
    worker.start()
    try:
        assert entered.wait(120), "the third refund never reached the provider"

        # when a fourth refund for the same customer is submitted while the third is at
        # the provider (a held lock would fail it after lock_timeout instead of hanging)
        with connection.cursor() as cursor:
            cursor.execute("SET lock_timeout = '60s'")
        fourth = submit_refund(context, 1000, "fourth-refund")
    finally:
        release.set()
        worker.join(timeout=120)
        with connection.cursor() as cursor:
            cursor.execute("RESET lock_timeout")

    # then it was decided without waiting, counting the third (executing) as a refund
    assert fourth.status == "pending_approval"
    assert pattern_counts([fourth]) == [3]
    assert first["action"].status == "succeeded"
