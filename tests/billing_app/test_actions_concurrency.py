"""Exactly once under real concurrency (PostgreSQL: SQLite has no row locks and one writer)."""

from __future__ import annotations

import threading
from collections import Counter

import pytest
from django.db import connection, connections

from billing_app.catalog import ActionKind, Role
from billing_app.errors import Conflict
from billing_app.models import ApprovalRequest, BillingAction, MirrorRefund
from billing_app.services import actions as actions_service
from billing_app.services.actions import action_submit
from billing_app.services.approvals import approval_decide
from billing_app.services.identity import AgentContext

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
    real = actions_service.get_provider
    monkeypatch.setattr(actions_service, "get_provider", lambda ws: spy.wrap(real(ws)))
    return spy


def run_at_once(count: int, work):
    """Run ``work(i)`` in ``count`` threads released together; return results or exceptions."""
    barrier = threading.Barrier(count)
    results: list = [None] * count

    def worker(i: int) -> None:
        try:
            barrier.wait()
            results[i] = work(i)
        except BaseException as exc:  # collected for the assertions
            results[i] = exc
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "a worker hung"
    return results


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


def test_two_approvers_at_once_produce_one_decision(workspace, sign_in, spy):
    # given an L1 agent's refund waiting for a Manager, and two Managers
    account_seed(workspace)
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
