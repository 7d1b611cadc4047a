"""Resume a paused subscription and keep one set to cancel ("Keep subscription"), end to end.

On the sandbox through ``action_submit`` and ``POST /api/v1/actions/``, and on Stripe
(intercepted) through the API: the state rule refuses what cannot apply, in words,
before any provider call.
"""

from __future__ import annotations

import time
from datetime import timedelta

import pytest

from billing_app.catalog import ActionKind, Role
from billing_app.errors import PreconditionFailed
from billing_app.models import BillingAction, MirrorSubscription
from billing_app.services.actions import action_submit
from billing_app.services.actions import run as actions_run
from billing_app.services.identity import AgentContext
from billing_app.services.mirror import mirror_upsert

from .actions_support import ProviderSpy, account_seed, next_key
from .stripe_support import StripeMock, load, make_stripe_workspace, params_of

K = ActionKind
SUB = {"subscription_id": "sub_acme"}


@pytest.fixture
def acme(workspace):
    return account_seed(workspace)


@pytest.fixture
def manager(workspace, sign_in):
    membership, _ = sign_in(workspace, Role.MANAGER)
    return AgentContext(
        user=membership.user,
        workspace=workspace,
        membership=membership,
        installation=membership.installation,
        role=Role.MANAGER,
    )


@pytest.fixture
def spy(monkeypatch):
    spy = ProviderSpy()
    real = actions_run.get_provider
    monkeypatch.setattr(actions_run, "get_provider", lambda ws: spy.wrap(real(ws)))
    return spy


def submit(context, kind, params=SUB, customer="cus_acme"):
    return action_submit(
        context=context,
        kind=kind,
        customer_id=customer,
        ticket_id="1001",
        params=params,
        idempotency_key=next_key(),
    )


def sub_row(workspace, sub_id="sub_acme"):
    return MirrorSubscription.objects.get(workspace=workspace, stripe_id=sub_id)


# --- sandbox, service level -----------------------------------------------------------------


def test_a_paused_subscription_is_resumed_now(acme, manager, spy, workspace):
    # given Acme's subscription paused until a date
    pause = {
        "subscription_id": "sub_acme",
        "behavior": "void",
        "resumes_at": "2099-03-01T00:00:00Z",
    }
    assert submit(manager, K.PAUSE_SUBSCRIPTION, pause).status == "succeeded"
    assert sub_row(workspace).pause_collection

    # when a manager resumes it
    action = submit(manager, K.RESUME_SUBSCRIPTION)

    # then collection is on again, once, with the action's key, and the pause is on record
    assert action.status == BillingAction.Status.SUCCEEDED, action.error_message
    assert action.decision == BillingAction.Decision.ALLOW
    ((method, kwargs),) = spy.writes("resume_subscription")
    assert kwargs["idempotency_key"].startswith(f"billing-desk-{action.id}-resume_subscription")
    assert kwargs["subscription_id"] == "sub_acme"
    assert action.result["paused"]["behavior"] == "void"
    assert not sub_row(workspace).pause_collection


def test_a_subscription_that_is_not_paused_is_not_resumed(acme, manager, spy):
    with pytest.raises(PreconditionFailed) as raised:
        submit(manager, K.RESUME_SUBSCRIPTION)

    assert raised.value.code == "not_paused"
    assert raised.value.message == (
        "Payment collection on this subscription is not paused; there is nothing to resume."
    )
    assert spy.calls == []
    assert not BillingAction.objects.exists()


def test_a_period_end_cancellation_is_undone(acme, manager, spy, workspace):
    # given Acme set to cancel at the period end
    cancel = {"subscription_id": "sub_acme", "reason": "unused", "customer_requested": True}
    assert submit(manager, K.CANCEL_SUBSCRIPTION, cancel).status == "succeeded"
    ends = sub_row(workspace).current_period_end
    assert sub_row(workspace).cancel_at_period_end

    # when the agent keeps it
    action = submit(manager, K.UNDO_CANCELLATION)

    # then it renews again; the end date it had is on record
    assert action.status == BillingAction.Status.SUCCEEDED, action.error_message
    assert len(spy.writes("undo_cancellation")) == 1
    row = sub_row(workspace)
    assert not row.cancel_at_period_end and row.cancel_at is None
    assert action.result["was_ending_at"][:10] == ends.date().isoformat()

    # and cancelling again is possible (the rule no longer sees it ending)
    assert submit(manager, K.CANCEL_SUBSCRIPTION, cancel).status == "succeeded"


def test_keep_is_refused_for_a_subscription_not_set_to_end(acme, manager, spy):
    with pytest.raises(PreconditionFailed) as raised:
        submit(manager, K.UNDO_CANCELLATION)

    assert raised.value.code == "not_canceling"
    assert "not set to end" in raised.value.message
    assert spy.calls == []


@pytest.mark.parametrize(
    ("kind", "params", "code"),
    [
        (K.UNDO_CANCELLATION, SUB, "already_canceled"),
        (K.RESUME_SUBSCRIPTION, SUB, "subscription_not_active"),
        (K.PAUSE_SUBSCRIPTION, {**SUB, "behavior": "void"}, "subscription_not_active"),
        (K.ADJUST_SEATS, {**SUB, "quantity": 60}, "subscription_not_active"),
        (K.CHANGE_PLAN, {**SUB, "price_id": "price_ultimate_seat"}, "subscription_not_active"),
        (
            K.APPLY_DISCOUNT,
            {**SUB, "percent_off": "5", "duration": "once"},
            "subscription_not_active",
        ),
        (K.CANCEL_SUBSCRIPTION, {**SUB, "reason": "other"}, "already_canceled"),
    ],
)
def test_nothing_applies_to_a_cancelled_subscription(kind, params, code, acme, manager, spy):
    # given Acme's subscription cancelled (ended) yesterday
    MirrorSubscription.objects.filter(stripe_id="sub_acme").update(
        status="canceled", ended_at=acme.now - timedelta(days=1)
    )

    # when anything is asked of it
    with pytest.raises(PreconditionFailed) as raised:
        submit(manager, kind, params)

    # then it is refused in words, before any provider call
    assert raised.value.code == code
    ended = acme.now - timedelta(days=1)
    assert raised.value.message.startswith(
        f"This subscription was cancelled on {ended:%B} {ended.day}, {ended.year}; "
    )
    assert "_" not in raised.value.message
    assert spy.calls == []


def test_resume_and_keep_sit_under_the_pause_and_cancel_rows_of_the_matrix(
    acme, workspace, sign_in
):
    # given an L1 agent (the brief's matrix: no pause, no cancel)
    membership, _ = sign_in(workspace, Role.L1)
    l1 = AgentContext(
        user=membership.user,
        workspace=workspace,
        membership=membership,
        installation=membership.installation,
        role=Role.L1,
    )
    MirrorSubscription.objects.filter(stripe_id="sub_acme").update(
        pause_collection={"behavior": "void", "resumes_at": None}
    )

    # when they try to resume, it is not permitted and nothing is called
    from billing_app.errors import NotPermitted

    with pytest.raises(NotPermitted):
        submit(l1, K.RESUME_SUBSCRIPTION)
    assert sub_row(workspace).pause_collection


# --- sandbox, through the API ---------------------------------------------------------------


def test_resume_through_the_api(acme, api_as, workspace, manager):
    pause = {"subscription_id": "sub_acme", "behavior": "keep_as_draft"}
    assert submit(manager, K.PAUSE_SUBSCRIPTION, pause).status == "succeeded"
    client = api_as(workspace, Role.MANAGER)

    response = client.post(
        "/api/v1/actions/",
        {
            "kind": "resume_subscription",
            "customer_id": "cus_acme",
            "ticket_id": "1001",
            "params": SUB,
            "idempotency_key": next_key(),
        },
        format="json",
    )

    assert response.status_code in (200, 201), response.json()
    assert response.json()["status"] == "succeeded", response.json()
    assert not sub_row(workspace).pause_collection


def test_keep_refusal_through_the_api_is_words_not_a_code(acme, api_as, workspace):
    client = api_as(workspace, Role.MANAGER)

    response = client.post(
        "/api/v1/actions/",
        {
            "kind": "undo_cancellation",
            "customer_id": "cus_acme",
            "ticket_id": "1001",
            "params": SUB,
            "idempotency_key": next_key(),
        },
        format="json",
    )

    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "not_canceling"
    assert error["message"] == "This subscription is not set to end; there is nothing to keep."


def test_unknown_parameters_are_refused_in_words(acme, api_as, workspace):
    client = api_as(workspace, Role.MANAGER)

    response = client.post(
        "/api/v1/actions/",
        {
            "kind": "resume_subscription",
            "customer_id": "cus_acme",
            "params": {**SUB, "when": "now"},
            "idempotency_key": next_key(),
        },
        format="json",
    )

    assert response.status_code == 400
    message = response.json()["error"]["message"]
    assert message == "Check the details of Resume subscription: Unknown parameter."


# --- Stripe (intercepted), through the API --------------------------------------------------

CUS = "cus_RbAcmeCorp0001"
NOW = int(time.time())


@pytest.fixture
def stripe_ws(make_workspace):
    workspace = make_stripe_workspace(make_workspace)
    mirror_upsert(workspace=workspace, obj=load("customer"))
    return workspace


def stripe_subscription(**overrides):
    sub = load("subscription")
    sub.update(customer=CUS, **overrides)
    return sub


def post(client, kind, sub_id):
    return client.post(
        "/api/v1/actions/",
        {
            "kind": kind,
            "customer_id": CUS,
            "ticket_id": "4821",
            "params": {"subscription_id": sub_id},
            "idempotency_key": next_key(),
        },
        format="json",
    )


def test_stripe_resume_clears_pause_collection_with_the_actions_key(stripe_ws, api_as, http):
    # given a Stripe subscription whose collection is paused
    paused = stripe_subscription(pause_collection={"behavior": "void", "resumes_at": None})
    mirror_upsert(workspace=stripe_ws, obj=paused)
    stripe = StripeMock(http)
    url = f"/v1/subscriptions/{paused['id']}"
    stripe.on("GET", url, paused)
    stripe.on("POST", url, {**paused, "pause_collection": None})

    # when a manager resumes it through the API
    response = post(api_as(stripe_ws, Role.MANAGER), "resume_subscription", paused["id"])

    # then Stripe was asked to clear pause_collection, with the action's idempotency key
    assert response.status_code in (200, 201), response.json()
    body = response.json()
    assert body["status"] == "succeeded", body
    writes = [c for c in http.calls if c.request.method == "POST"]
    assert writes, "no write to Stripe"
    sent = params_of(writes[-1])
    assert sent.get("pause_collection") == ""
    key = writes[-1].request.headers["Idempotency-Key"]
    assert key.startswith(f"billing-desk-{body['id']}-resume_subscription")
    # and the mirror holds what Stripe answered
    row = MirrorSubscription.objects.get(workspace=stripe_ws, stripe_id=paused["id"])
    assert not row.pause_collection


def test_stripe_keep_sets_cancel_at_period_end_back_to_false(stripe_ws, api_as, http):
    ending = stripe_subscription(cancel_at_period_end=True, cancel_at=NOW + 10 * 86400)
    mirror_upsert(workspace=stripe_ws, obj=ending)
    stripe = StripeMock(http)
    url = f"/v1/subscriptions/{ending['id']}"
    stripe.on("GET", url, ending)
    stripe.on("POST", url, {**ending, "cancel_at_period_end": False, "cancel_at": None})

    response = post(api_as(stripe_ws, Role.MANAGER), "undo_cancellation", ending["id"])

    assert response.status_code in (200, 201), response.json()
    assert response.json()["status"] == "succeeded", response.json()
    writes = [c for c in http.calls if c.request.method == "POST"]
    assert params_of(writes[-1]).get("cancel_at_period_end") == "false"
    row = MirrorSubscription.objects.get(workspace=stripe_ws, stripe_id=ending["id"])
    assert not row.cancel_at_period_end


def test_stripe_keep_of_a_cancelled_subscription_calls_nothing(stripe_ws, api_as, http):
    ended = stripe_subscription(status="canceled", ended_at=NOW - 86400, canceled_at=NOW - 86400)
    mirror_upsert(workspace=stripe_ws, obj=ended)

    response = post(api_as(stripe_ws, Role.MANAGER), "undo_cancellation", ended["id"])

    assert response.status_code == 422
    assert response.json()["error"]["code"] == "already_canceled"
    assert response.json()["error"]["message"].startswith("This subscription was cancelled on ")
    assert len(http.calls) == 0
