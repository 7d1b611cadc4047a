"""A subscription's state in the context — paused, ending, cancelled, trialing, past due — and
the one rule that decides which subscription actions it allows (the panel's offer and the
server's refusals)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from billing_app.catalog import ActionKind
from billing_app.models import MirrorCustomer
from billing_app.selectors.context import customer_context
from billing_app.selectors.context.subscription_state import (
    SubscriptionFacts,
    applicable_kinds,
    state_refusal,
    subscription_state,
)
from billing_app.services.mirror import mirror_upsert

from . import actions_support as s

K = ActionKind
DAY = datetime(2026, 3, 1, tzinfo=UTC)


# --- the rule -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("facts", "state"),
    [
        (SubscriptionFacts(status="active"), "active"),
        (SubscriptionFacts(status="active", paused=True), "paused"),
        (SubscriptionFacts(status="active", cancel_at_period_end=True, cancel_at=DAY), "ending"),
        (SubscriptionFacts(status="active", cancel_at=DAY), "ending"),
        (SubscriptionFacts(status="canceled", paused=True), "canceled"),
        (SubscriptionFacts(status="incomplete_expired"), "canceled"),
        (SubscriptionFacts(status="trialing"), "trialing"),
        (SubscriptionFacts(status="past_due"), "past_due"),
    ],
)
def test_the_state_of_a_subscription(facts, state):
    assert subscription_state(facts) == state


def test_each_state_offers_only_what_can_apply():
    active = SubscriptionFacts(status="active")
    paused = SubscriptionFacts(status="active", paused=True, resumes_at=DAY)
    ending = SubscriptionFacts(status="active", cancel_at_period_end=True, cancel_at=DAY)
    cancelled = SubscriptionFacts(status="canceled", ended_at=DAY)
    trialing = SubscriptionFacts(status="trialing", trial_end=DAY)

    assert applicable_kinds(active) == [
        "change_plan",
        "adjust_seats",
        "apply_discount",
        "pause_subscription",
        "cancel_subscription",
        "force_cancel",
        "extend_grace_period",
    ]
    assert "resume_subscription" in applicable_kinds(paused)
    assert "pause_subscription" not in applicable_kinds(paused)
    assert "undo_cancellation" in applicable_kinds(ending)
    assert "cancel_subscription" not in applicable_kinds(ending)
    assert "force_cancel" in applicable_kinds(ending)
    assert applicable_kinds(cancelled) == []
    assert "extend_trial" in applicable_kinds(trialing)
    assert "extend_trial" not in applicable_kinds(active)


@pytest.mark.parametrize("kind", list(K))
def test_every_refusal_is_a_sentence_without_codes(kind):
    for facts in (
        SubscriptionFacts(status="canceled", ended_at=DAY),
        SubscriptionFacts(status="active", paused=True, resumes_at=DAY),
        SubscriptionFacts(status="active", cancel_at_period_end=True, cancel_at=DAY),
        SubscriptionFacts(status="active"),
        SubscriptionFacts(status="incomplete"),
    ):
        refusal = state_refusal(kind, facts)
        if refusal is None:
            continue
        code, message = refusal
        assert code and message.endswith(".")
        assert "_" not in message, message
        assert message[0].isupper()


def test_refusals_name_the_dates_in_words():
    paused = SubscriptionFacts(status="active", paused=True, resumes_at=DAY)
    ending = SubscriptionFacts(status="active", cancel_at_period_end=True, cancel_at=DAY)

    assert state_refusal(K.PAUSE_SUBSCRIPTION, paused) == (
        "already_paused",
        "Payment collection on this subscription is already paused until March 1, 2026.",
    )
    code, message = state_refusal(K.CANCEL_SUBSCRIPTION, ending)
    assert code == "cancel_already_scheduled"
    assert message.startswith("This subscription is already set to end on March 1, 2026.")
    # a fixed end date is not a period-end cancellation: "keep" does not apply to it
    fixed = SubscriptionFacts(status="active", cancel_at=DAY)
    assert state_refusal(K.UNDO_CANCELLATION, fixed)[0] == "not_canceling"


# --- the context ----------------------------------------------------------------------------


@pytest.fixture
def acme(workspace):
    return s.account_seed(workspace)


def put_acme_subscription(workspace, acc, **overrides):
    start, end = acc.now - timedelta(days=10), acc.now + timedelta(days=20)
    price = s.price("price_pro_seat", "prod_pro", 4800, acc.now)
    sub = s.subscription(
        "sub_acme",
        "cus_acme",
        [s.item("si_acme_plan", "sub_acme", price, 50, start, end)],
        acc.now,
        metadata={"seats_used": "45"},
    )
    sub.update(overrides)
    mirror_upsert(workspace=workspace, obj=sub)
    return end


def subscription_of(workspace, acc):
    customer = MirrorCustomer.objects.get(workspace=workspace, stripe_id="cus_acme")
    ctx = customer_context(workspace=workspace, customer=customer, now=acc.now)
    return ctx, ctx["subscription"]


def words(value):
    return f"{value:%B} {value.day}, {value.year}"


def test_an_active_subscription_renews_and_offers_pause_and_cancel(workspace, acme):
    ctx, sub = subscription_of(workspace, acme)

    assert sub["state"] == "active" and sub["state_label"] == "Active"
    assert sub["renews_at"] == ctx["account"]["renews_at"] is not None
    assert sub["ends_at"] is None
    assert "pause_subscription" in sub["applicable_kinds"]
    assert "resume_subscription" not in sub["applicable_kinds"]
    assert "undo_cancellation" not in sub["applicable_kinds"]


def test_a_paused_subscription_says_until_when_and_offers_resume(workspace, acme):
    resumes = acme.now + timedelta(days=30)
    put_acme_subscription(
        workspace,
        acme,
        pause_collection={"behavior": "void", "resumes_at": s.unix(resumes)},
    )

    ctx, sub = subscription_of(workspace, acme)

    assert sub["state"] == "paused" and sub["state_label"] == "Paused"
    assert sub["pause_collection"]["resumes_at"] == resumes.date().isoformat()
    assert sub["state_detail"] == (
        f"Payment collection is paused until {words(resumes)}. Void invoices while paused."
    )
    # no "renews …" line while paused
    assert sub["renews_at"] is None and ctx["account"]["renews_at"] is None
    assert "resume_subscription" in sub["applicable_kinds"]
    assert "pause_subscription" not in sub["applicable_kinds"]


def test_an_ending_subscription_says_its_end_date_and_offers_keep(workspace, acme):
    end = put_acme_subscription(workspace, acme, cancel_at_period_end=True)

    ctx, sub = subscription_of(workspace, acme)

    assert sub["state"] == "ending" and sub["state_label"] == "Ending"
    assert sub["ends_at"] == end.date().isoformat() == ctx["account"]["ends_at"]
    assert sub["state_detail"].startswith(f"Set to cancel: it ends on {words(end)}")
    assert sub["renews_at"] is None and ctx["account"]["renews_at"] is None
    assert "undo_cancellation" in sub["applicable_kinds"]
    assert "cancel_subscription" not in sub["applicable_kinds"]


def test_a_cancelled_subscription_offers_nothing_that_cannot_apply(workspace, acme):
    ended = acme.now - timedelta(days=3)
    put_acme_subscription(
        workspace,
        acme,
        status="canceled",
        canceled_at=s.unix(ended),
        ended_at=s.unix(ended),
    )

    ctx, sub = subscription_of(workspace, acme)

    assert sub["state"] == "canceled" and sub["state_label"] == "Cancelled"
    assert sub["state_detail"] == (
        f"Cancelled on {words(ended)}. It no longer bills and cannot be changed."
    )
    assert sub["renews_at"] is None and ctx["account"]["renews_at"] is None
    assert sub["applicable_kinds"] == []


def test_trialing_and_past_due_say_so(workspace, acme):
    trial_end = acme.now + timedelta(days=4)
    put_acme_subscription(workspace, acme, status="trialing", trial_end=s.unix(trial_end))
    _, sub = subscription_of(workspace, acme)
    assert sub["state"] == "trialing" and sub["state_label"] == "Trial"
    assert sub["state_detail"] == (
        f"In a trial until {words(trial_end)}; the first invoice comes then."
    )
    assert "extend_trial" in sub["applicable_kinds"]

    put_acme_subscription(workspace, acme, status="past_due")
    _, sub = subscription_of(workspace, acme)
    assert sub["state"] == "past_due" and sub["state_label"] == "Past due"
    assert "Stripe is retrying" in sub["state_detail"]
    assert "extend_trial" not in sub["applicable_kinds"]


def test_the_context_api_serves_the_state(workspace, acme, api_as):
    from billing_app.catalog import Role

    put_acme_subscription(workspace, acme, cancel_at_period_end=True)

    response = api_as(workspace, Role.L2).get("/api/v1/customers/cus_acme/context/")

    assert response.status_code == 200
    sub = response.json()["subscription"]
    assert sub["state"] == "ending"
    assert sub["ends_at"]
    assert "undo_cancellation" in sub["applicable_kinds"]


def test_stripes_own_paused_status_is_not_offered_a_resume_it_cannot_do(workspace, acme):
    # given a subscription Stripe paused itself (a trial ended without a payment method)
    put_acme_subscription(workspace, acme, status="paused")

    _, sub = subscription_of(workspace, acme)

    # then it reads as paused, says why, and offers no Resume (that clears a collection pause)
    assert sub["state"] == "paused"
    assert sub["state_detail"] == (
        "Paused by Stripe: the trial ended without a payment method on file."
    )
    assert "resume_subscription" not in sub["applicable_kinds"]
    assert "pause_subscription" not in sub["applicable_kinds"]
