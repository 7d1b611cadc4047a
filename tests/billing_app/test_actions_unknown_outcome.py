"""``outcome_unknown`` on the service: held open, guarded per object, settled by reconciliation.

The provider is the sandbox behind ``ProviderSpy``, which raises
``ProviderOutcomeUnknown`` before the sandbox acts — so the replay in reconciliation
is what finally acts, once. (Stripe acting and then losing the answer is tested in
``tests/resilience/test_unknown_outcome.py``.)
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from billing_app.catalog import ActionKind, Role
from billing_app.errors import Conflict, ProviderOutcomeUnknown
from billing_app.models import BillingAction
from billing_app.services import actions as actions_service
from billing_app.services.actions import action_submit
from billing_app.services.actions import executors as actions_executors
from billing_app.services.actions import run as actions_run
from billing_app.services.identity import AgentContext
from billing_app.services.reconcile import action_outcome_resolve, actions_unknown_reconcile

from .actions_support import ProviderSpy, account_seed, next_key

K = ActionKind
CREDIT = {"amount": 5000, "currency": "USD", "description": "Outage"}
SEATS = {"subscription_id": "sub_acme", "quantity": 55}
PAUSE = {"subscription_id": "sub_acme", "behavior": "keep_as_draft"}
REFUND = {
    "charge_id": "ch_acme_paid",
    "amount": 10000,
    "currency": "USD",
    "reason": "service_outage",
}


def lost() -> ProviderOutcomeUnknown:
    return ProviderOutcomeUnknown("Stripe did not confirm this request in time.")


@pytest.fixture(autouse=True)
def _one_attempt(settings):
    settings.BILLING_DESK_ACTION_PROVIDER_RETRIES = 0


@pytest.fixture
def acme(workspace):
    return account_seed(workspace)


@pytest.fixture
def specialist(workspace, sign_in):
    membership, _ = sign_in(workspace, Role.SPECIALIST)
    return AgentContext(
        user=membership.user,
        workspace=workspace,
        membership=membership,
        installation=membership.installation,
        role=Role.SPECIALIST,
    )


@pytest.fixture
def spy(monkeypatch):
    spy = ProviderSpy()
    real = actions_run.get_provider
    monkeypatch.setattr(actions_run, "get_provider", lambda ws: spy.wrap(real(ws)))
    return spy


def submit(context, kind, params, key=None):
    return action_submit(
        context=context,
        kind=kind,
        customer_id="cus_acme",
        ticket_id="1001",
        params=params,
        idempotency_key=key or next_key(),
    )


def test_a_lost_answer_leaves_the_action_open_with_nothing_recorded(acme, specialist, spy):
    # given the provider's answer to a credit is lost
    spy.fail("apply_credit", lost())

    # when a specialist applies a credit
    action = submit(specialist, K.APPLY_CREDIT, CREDIT)

    # then it is open, honest, and nothing is recorded as done or not done
    assert action.status == BillingAction.Status.OUTCOME_UNKNOWN
    assert action.error_code == "provider_outcome_unknown"
    assert action.completed_at is None
    assert action.customer_message == ""
    assert action.provider_object_id == ""
    assert action.note_status == BillingAction.NoteStatus.NONE
    assert action.result["sent_at"]


@pytest.mark.parametrize(
    ("first", "first_params", "second", "second_params"),
    [
        (K.APPLY_CREDIT, CREDIT, K.APPLY_CREDIT, CREDIT),
        (K.ADJUST_SEATS, SEATS, K.PAUSE_SUBSCRIPTION, PAUSE),
        (K.ISSUE_REFUND, REFUND, K.ISSUE_REFUND, {**REFUND, "amount": 5000}),
    ],
    ids=["credit-same-customer", "subscription-same-subscription", "refund-same-charge"],
)
def test_the_same_money_action_on_an_open_object_is_refused(
    acme, specialist, spy, first, first_params, second, second_params
):
    # given an action whose outcome is unknown
    spy.fail({K.ISSUE_REFUND: "refund"}.get(first, first.value), lost())
    open_action = submit(specialist, first, first_params)
    assert open_action.status == BillingAction.Status.OUTCOME_UNKNOWN
    writes = len(spy.writes())

    # when another money action on the same object comes under a new key
    with pytest.raises(Conflict) as refused:
        submit(specialist, second, second_params)

    # then it is refused with the open action's id, recorded nowhere, sent nowhere
    assert refused.value.code == "action_outcome_unknown"
    assert refused.value.status == 409
    assert refused.value.details["action_id"] == str(open_action.pk)
    assert BillingAction.objects.count() == 1
    assert len(spy.writes()) == writes


def test_other_kinds_and_a_fresh_executing_action_are_not_refused(acme, specialist, spy):
    # given a credit whose outcome is unknown, and a refund executing right now
    spy.fail("apply_credit", lost())
    submit(specialist, K.APPLY_CREDIT, CREDIT)
    running = submit(specialist, K.ISSUE_REFUND, REFUND)
    BillingAction.objects.filter(pk=running.pk).update(
        status=BillingAction.Status.EXECUTING, started_at=timezone.now()
    )

    # when a resend of an invoice and another refund of the charge come
    resent = submit(specialist, K.RESEND_INVOICE, {"invoice_id": "in_acme_paid"})
    refund = submit(specialist, K.ISSUE_REFUND, {**REFUND, "amount": 5000})

    # then both run (the in-flight refund is counted by the decision, not refused)
    assert resent.status == BillingAction.Status.SUCCEEDED
    assert refund.status == BillingAction.Status.SUCCEEDED


def test_a_stale_executing_refund_is_refused_like_an_unknown_one(acme, specialist, spy, settings):
    # given a refund left executing longer than the stale threshold (its worker died)
    stuck = submit(specialist, K.ISSUE_REFUND, REFUND)
    BillingAction.objects.filter(pk=stuck.pk).update(
        status=BillingAction.Status.EXECUTING,
        started_at=timezone.now()
        - timedelta(seconds=getattr(settings, "BILLING_DESK_ACTION_STALE_SECONDS", 300) + 5),
    )

    # when another refund of that charge comes
    with pytest.raises(Conflict) as refused:
        submit(specialist, K.ISSUE_REFUND, {**REFUND, "amount": 5000})

    # then it is refused
    assert refused.value.code == "action_outcome_unknown"


def test_reconciliation_replays_the_same_key_and_records_success_once(acme, specialist, spy):
    # given a refund whose answer was lost before the provider acted
    spy.fail("refund", lost())
    action = submit(specialist, K.ISSUE_REFUND, REFUND)
    assert action.status == BillingAction.Status.OUTCOME_UNKNOWN

    # when reconciliation runs (the sandbox cannot be searched: the key is replayed)
    settled = actions_unknown_reconcile()

    # then the refund is made once and recorded as a normal success
    action.refresh_from_db()
    assert settled == 1
    assert action.status == BillingAction.Status.SUCCEEDED
    assert action.provider_object_id
    assert action.customer_message
    assert action.completed_at is not None
    assert action.note_status == BillingAction.NoteStatus.PENDING
    assert action.error_code == ""
    # and resolving it again changes nothing
    assert action_outcome_resolve(action_id=action.pk).status == BillingAction.Status.SUCCEEDED

    # and the charge may be refunded again now that the first refund is settled
    again = submit(specialist, K.ISSUE_REFUND, {**REFUND, "amount": 5000})
    assert again.status == BillingAction.Status.SUCCEEDED


def test_a_same_key_retry_of_an_open_action_answers_it_without_calling_the_provider(
    acme, specialist, spy
):
    # given an open credit
    spy.fail("apply_credit", lost())
    key = next_key()
    action = submit(specialist, K.APPLY_CREDIT, CREDIT, key=key)
    calls = len(spy.calls)

    # when the panel retries with the same key
    replay = submit(specialist, K.APPLY_CREDIT, CREDIT, key=key)

    # then it gets the open action back, and the provider is not called
    assert (replay.pk, replay.status) == (action.pk, BillingAction.Status.OUTCOME_UNKNOWN)
    assert replay.replayed is True
    assert len(spy.calls) == calls


# --- what can no longer be recorded "failed" after a write may have happened ---------------------


def test_a_takeover_whose_own_checks_see_the_lost_write_is_held_open_not_failed(
    acme, specialist, spy
):
    # given a seat change whose first executor died after Stripe acted: the mirror
    # already shows the new quantity, and the action is still "executing"
    spy.fail("adjust_seats", lost())
    action = submit(specialist, K.ADJUST_SEATS, SEATS)
    BillingAction.objects.filter(pk=action.pk).update(status=BillingAction.Status.EXECUTING)
    from billing_app.models import MirrorSubscriptionItem

    item = MirrorSubscriptionItem.objects.get(
        workspace=specialist.workspace, stripe_id="si_acme_plan"
    )
    MirrorSubscriptionItem.objects.filter(pk=item.pk).update(quantity=SEATS["quantity"])

    # when the takeover re-checks and finds "same quantity"
    taken = actions_service.action_execute(action_id=action.pk, takeover=True)

    # then it cannot prove nothing happened: the action stays open for reconciliation
    assert taken.status == BillingAction.Status.OUTCOME_UNKNOWN
    assert taken.completed_at is None
    assert "could not confirm" in taken.error_message


def test_an_approved_action_whose_state_changed_still_fails_cleanly(acme, specialist):
    # given an action moved to executing by an approval (nothing was ever sent)
    action = submit(specialist, K.ADJUST_SEATS, SEATS)
    BillingAction.objects.filter(pk=action.pk).update(
        status=BillingAction.Status.EXECUTING, provider_object_id=""
    )
    from billing_app.models import MirrorSubscriptionItem

    MirrorSubscriptionItem.objects.filter(
        workspace=specialist.workspace, stripe_id="si_acme_plan"
    ).update(quantity=SEATS["quantity"])

    # when it executes (not a takeover) and the state no longer allows it
    done = actions_service.action_execute(action_id=action.pk)

    # then it is a clean failure: nothing can have happened
    assert done.status == BillingAction.Status.FAILED


def test_a_workspace_whose_provider_cannot_be_built_fails_the_action_instead_of_leaving_it_running(
    acme, specialist, monkeypatch
):
    # given the provider cannot be built (no key, unknown provider)
    from billing_app.errors import BillingDeskError

    def unavailable(workspace):
        raise BillingDeskError("No provider.", code="provider_not_configured", status=503)

    monkeypatch.setattr(actions_run, "get_provider", unavailable)

    # when a credit is submitted
    action = submit(specialist, K.APPLY_CREDIT, CREDIT)

    # then it is failed (nothing was sent), never left "executing" for good
    action.refresh_from_db()
    assert action.status == BillingAction.Status.FAILED
    assert action.error_code == "provider_not_configured"


def test_an_unexpected_error_after_the_provider_answered_holds_the_action_open(
    acme, specialist, monkeypatch
):
    # given the provider acts, and building the result then breaks
    real = actions_executors.to_json
    calls = {"n": 0}

    def broken(value):
        calls["n"] += 1
        raise TypeError("cannot serialise")

    monkeypatch.setattr(actions_executors, "to_json", broken)

    # when a credit is submitted
    action = submit(specialist, K.APPLY_CREDIT, CREDIT)
    monkeypatch.setattr(actions_executors, "to_json", real)

    # then the money may have moved: the action is open, not "failed"
    action.refresh_from_db()
    assert calls["n"] >= 1
    assert action.status == BillingAction.Status.OUTCOME_UNKNOWN


def test_retries_stop_at_the_deadline(acme, specialist, spy, settings):
    # given three attempts allowed, but a deadline already passed after the first
    settings.BILLING_DESK_ACTION_PROVIDER_RETRIES = 2
    settings.BILLING_DESK_ACTION_PROVIDER_DEADLINE_SECONDS = 0
    spy.fail("apply_credit", lost(), lost(), lost())

    # when a credit is submitted
    action = submit(specialist, K.APPLY_CREDIT, CREDIT)

    # then only one attempt was made, and the action is held open
    assert len(spy.writes("apply_credit")) == 1
    action.refresh_from_db()
    assert action.status == BillingAction.Status.OUTCOME_UNKNOWN
