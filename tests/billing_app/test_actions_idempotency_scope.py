"""Idempotency keys are scoped to the agent who first sent them (issue 12, point 8).

Keys stay unique per workspace; a key another agent already used is a 409, never a replay
of that agent's action.
"""

from __future__ import annotations

import pytest

from billing_app.catalog import ActionKind, Role
from billing_app.errors import Conflict
from billing_app.models import BillingAction
from billing_app.services.actions import action_submit
from billing_app.services.actions import run as actions_run
from billing_app.services.identity import AgentContext

from .actions_support import ProviderSpy, account_seed

REFUND = {
    "charge_id": "ch_acme_paid",
    "amount": 10000,
    "currency": "USD",
    "reason": "billing_error",
}


@pytest.fixture
def acme(workspace):
    return account_seed(workspace)


@pytest.fixture
def spy(monkeypatch):
    spy = ProviderSpy()
    real = actions_run.get_provider
    monkeypatch.setattr(actions_run, "get_provider", lambda ws: spy.wrap(real(ws)))
    return spy


def context(workspace, sign_in, role: Role) -> AgentContext:
    membership, _ = sign_in(workspace, role)
    return AgentContext(
        user=membership.user,
        workspace=workspace,
        membership=membership,
        installation=membership.installation,
        role=role,
    )


def submit(agent: AgentContext, key: str, params: dict = REFUND) -> BillingAction:
    return action_submit(
        context=agent,
        kind=ActionKind.ISSUE_REFUND,
        customer_id="cus_acme",
        ticket_id="1001",
        params=params,
        idempotency_key=key,
    )


def snapshot(action: BillingAction) -> dict:
    action.refresh_from_db()
    return {
        f: getattr(action, f)
        for f in ("status", "actor_id", "amount", "result", "completed_at", "note_status")
    }


def test_another_agents_key_and_body_is_a_409_not_a_replay(workspace, acme, sign_in, spy):
    # given a Manager's executed refund
    manager = context(workspace, sign_in, Role.MANAGER)
    first = submit(manager, "mgr-refund-1")
    assert first.status == "succeeded"
    before = snapshot(first)

    # when an L1 agent sends the same key and the same body
    with pytest.raises(Conflict) as raised:
        submit(context(workspace, sign_in, Role.L1), "mgr-refund-1")

    # then it is refused without naming or replaying the Manager's action, which is unchanged
    assert raised.value.code == "idempotency_key_owned_by_another_agent"
    assert raised.value.details == {}
    assert snapshot(first) == before
    assert BillingAction.objects.count() == 1
    assert len(spy.writes("refund")) == 1


def test_another_agents_key_with_another_body_is_the_same_409(workspace, acme, sign_in, spy):
    # given a Manager's refund; another Manager sends its key with another amount
    submit(context(workspace, sign_in, Role.MANAGER), "shared-key")
    other = context(workspace, sign_in, Role.MANAGER)

    with pytest.raises(Conflict) as raised:
        submit(other, "shared-key", {**REFUND, "amount": 500})

    # then the refusal does not tell whether the body matched
    assert raised.value.code == "idempotency_key_owned_by_another_agent"
    assert len(spy.writes("refund")) == 1


def test_the_same_agent_still_gets_the_first_answer(workspace, acme, sign_in, spy):
    manager = context(workspace, sign_in, Role.MANAGER)
    first = submit(manager, "double-click")
    again = submit(manager, "double-click")

    assert again.pk == first.pk and again.replayed is True
    assert len(spy.writes("refund")) == 1


def test_the_api_answers_409_in_the_error_envelope(workspace, acme, api_as, spy):
    # given a Manager's refund made through the API
    body = {
        "kind": "issue_refund",
        "customer_id": "cus_acme",
        "ticket_id": "1001",
        "params": REFUND,
        "idempotency_key": "panel-key-1",
    }
    first = api_as(workspace, Role.MANAGER).post("/api/v1/actions/", body, format="json")
    assert first.status_code == 201

    # when an L1 agent posts the same key and body
    response = api_as(workspace, Role.L1).post("/api/v1/actions/", body, format="json")

    # then 409, with nothing of the Manager's action in it
    assert response.status_code == 409
    error = response.json()["error"]
    assert error["code"] == "idempotency_key_owned_by_another_agent"
    assert first.json()["id"] not in response.content.decode()
    assert len(spy.writes("refund")) == 1
