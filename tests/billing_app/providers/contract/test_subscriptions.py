"""Contract: one subscription's changes — trial, pause and resume, cancel and undo, seats,
discounts, the grace period of a failed payment."""

from __future__ import annotations

from datetime import timedelta

import pytest

from billing_app.errors import BillingDeskError

from .world import (
    INV_BETA,
    INV_OPEN,
    SI_ADDON,
    SI_PLAN,
    SI_TRIAL,
    SUB,
    SUB_CANCELED,
    SUB_TRIAL,
    unix,
)

KEY = "contract-subscription-write"


def items_of(subscription):
    return {i["id"]: (i["price"]["id"], i["quantity"]) for i in subscription["items"]["data"]}


# --- trial ---------------------------------------------------------------------------------------


def test_a_trial_is_extended(harness):
    new_end = harness.now + timedelta(days=12)
    result = harness.provider.extend_trial(
        subscription_id=SUB_TRIAL, trial_end=new_end, idempotency_key=KEY
    )
    assert (result.subscription_id, result.status, result.trial_end) == (
        SUB_TRIAL,
        "trialing",
        new_end,
    )
    assert harness.retrieve("subscription", SUB_TRIAL)["trial_end"] == unix(new_end)


@pytest.mark.parametrize(
    ("subscription", "days", "code"),
    [(SUB, 12, "not_trialing"), (SUB_TRIAL, 2, "trial_end_not_later")],
)
def test_trials_that_cannot_be_extended(harness, subscription, days, code):
    with pytest.raises(BillingDeskError) as refused:
        harness.provider.extend_trial(
            subscription_id=subscription,
            trial_end=harness.now + timedelta(days=days),
            idempotency_key=KEY,
        )
    assert refused.value.code == code


# --- pause and resume ----------------------------------------------------------------------------


def test_collection_is_paused_until_a_date_then_resumed(harness):
    # when collection is paused for a week
    resumes = harness.now + timedelta(days=7)
    paused = harness.provider.pause_subscription(
        subscription_id=SUB, behavior="void", resumes_at=resumes, idempotency_key=KEY
    )

    # then the subscription says so
    assert paused.pause_collection == {"behavior": "void", "resumes_at": unix(resumes)}
    assert harness.retrieve("subscription", SUB)["pause_collection"]["behavior"] == "void"

    # and when it is resumed, collection is no longer paused
    resumed = harness.provider.resume_subscription(subscription_id=SUB, idempotency_key=KEY + "-r")
    assert resumed.pause_collection is None
    assert harness.retrieve("subscription", SUB)["pause_collection"] is None


def test_a_subscription_that_is_not_paused_cannot_be_resumed(harness):
    with pytest.raises(BillingDeskError) as refused:
        harness.provider.resume_subscription(subscription_id=SUB, idempotency_key=KEY)
    assert refused.value.code == "not_paused"


@pytest.mark.parametrize(
    ("subscription", "behavior", "days", "code"),
    [
        (SUB, "forever", 7, "invalid_pause_behavior"),
        (SUB, "void", -1, "invalid_resume_date"),
        (SUB_CANCELED, "void", 7, "subscription_not_active"),
    ],
)
def test_pauses_that_cannot_be_made(harness, subscription, behavior, days, code):
    with pytest.raises(BillingDeskError) as refused:
        harness.provider.pause_subscription(
            subscription_id=subscription,
            behavior=behavior,
            resumes_at=harness.now + timedelta(days=days),
            idempotency_key=KEY,
        )
    assert refused.value.code == code


# --- cancel and undo -----------------------------------------------------------------------------


def test_a_cancellation_at_the_period_end_can_be_undone(harness):
    # when Acme cancels at the period end
    canceling = harness.provider.cancel_subscription(
        subscription_id=SUB,
        at_period_end=True,
        reason="too_expensive",
        comment="Budget cut",
        idempotency_key=KEY,
    )

    # then it stays active until then
    assert (canceling.status, canceling.cancel_at_period_end) == ("active", True)
    assert harness.retrieve("subscription", SUB)["cancel_at_period_end"] is True

    # and when the cancellation is undone, it renews as before
    kept = harness.provider.undo_cancellation(subscription_id=SUB, idempotency_key=KEY + "-undo")
    assert (kept.status, kept.cancel_at_period_end) == ("active", False)
    assert harness.retrieve("subscription", SUB)["cancel_at_period_end"] is False


def test_a_cancellation_at_the_period_end_ends_the_subscription_then(harness):
    harness.provider.cancel_subscription(
        subscription_id=SUB, at_period_end=True, reason="unused", comment="", idempotency_key=KEY
    )
    harness.advance(harness.now + timedelta(days=21))
    assert harness.retrieve("subscription", SUB)["status"] == "canceled"


def test_an_immediate_cancellation_ends_it_now(harness):
    result = harness.provider.cancel_subscription(
        subscription_id=SUB, at_period_end=False, reason="other", comment="", idempotency_key=KEY
    )
    assert result.status == "canceled"
    assert harness.retrieve("subscription", SUB)["status"] == "canceled"


def test_a_canceled_subscription_cannot_be_canceled_or_kept(harness):
    with pytest.raises(BillingDeskError) as refused:
        harness.provider.cancel_subscription(
            subscription_id=SUB_CANCELED,
            at_period_end=True,
            reason="other",
            comment="",
            idempotency_key=KEY,
        )
    assert refused.value.code == "already_canceled"
    with pytest.raises(BillingDeskError) as refused:
        harness.provider.undo_cancellation(subscription_id=SUB_CANCELED, idempotency_key=KEY)
    assert refused.value.code == "already_canceled"


def test_a_subscription_not_set_to_cancel_has_nothing_to_undo(harness):
    with pytest.raises(BillingDeskError) as refused:
        harness.provider.undo_cancellation(subscription_id=SUB, idempotency_key=KEY)
    assert refused.value.code == "not_canceling"


# --- seats ---------------------------------------------------------------------------------------


def test_seat_changes_are_billed_on_the_next_invoice(harness):
    # given what Acme has been invoiced so far
    invoices_before = {
        i["id"]
        for i in harness.provider.fetch_customer_bundle(SUB and "cus_ContractAcme01").invoices
    }

    # when Acme goes from 3 to 5 seats
    result = harness.provider.adjust_seats(
        subscription_id=SUB, item_id=SI_PLAN, quantity=5, idempotency_key=KEY
    )

    # then the plan item has 5 seats, the add-on is untouched, and nothing is invoiced now
    assert (result.subscription_id, result.quantity) == (SUB, 5)
    subscription = harness.retrieve("subscription", SUB)
    assert items_of(subscription)[SI_PLAN][1] == 5
    assert items_of(subscription)[SI_ADDON] == ("price_ContractSupport300", 1)
    bundle = harness.provider.fetch_customer_bundle("cus_ContractAcme01")
    assert {i["id"] for i in bundle.invoices} == invoices_before

    # and when the period ends, the renewal bills 5 seats and the two extra seats' prorated
    # remainder of the period that just ended (2 × $20 × 20/30 days = $26.67)
    harness.advance(harness.now + timedelta(days=21))
    renewal = harness.retrieve("invoice", harness.retrieve("subscription", SUB)["latest_invoice"])
    lines = renewal["lines"]["data"]
    regular = sorted(line["amount"] for line in lines if not _proration(line))
    prorated = sum(line["amount"] for line in lines if _proration(line))
    assert regular == [10_000, 30_000]
    assert prorated == 2667
    assert renewal["amount_due"] == 10_000 + 30_000 + 2667


def _proration(line):
    parent = line.get("parent") or {}
    details = parent.get("subscription_item_details") or parent.get("invoice_item_details") or {}
    return bool(details.get("proration"))


@pytest.mark.parametrize(
    ("item", "quantity", "code"),
    [(SI_PLAN, 0, "invalid_quantity"), (SI_TRIAL, 4, "item_not_in_subscription")],
)
def test_seat_changes_that_cannot_be_made(harness, item, quantity, code):
    with pytest.raises(BillingDeskError) as refused:
        harness.provider.adjust_seats(
            subscription_id=SUB, item_id=item, quantity=quantity, idempotency_key=KEY
        )
    assert refused.value.code == code


# --- discounts -----------------------------------------------------------------------------------


def test_a_discount_is_applied_to_the_subscription(harness):
    result = harness.provider.apply_discount(
        subscription_id=SUB,
        percent_off=20,
        duration="repeating",
        duration_in_months=3,
        idempotency_key=KEY,
    )
    assert (
        result.subscription_id,
        result.percent_off,
        result.duration,
        result.duration_in_months,
    ) == (
        SUB,
        20.0,
        "repeating",
        3,
    )
    assert result.coupon_id
    assert harness.retrieve("subscription", SUB)["discounts"]


def test_a_second_discount_is_refused_and_the_first_replays(harness):
    def apply(percent, key):
        return harness.provider.apply_discount(
            subscription_id=SUB,
            percent_off=percent,
            duration="forever",
            duration_in_months=None,
            idempotency_key=key,
        )

    action_key = "billing-desk-5b7f1c8e-0000-4000-8000-00000000d15c-apply_discount"
    other_key = "billing-desk-5b7f1c8e-0000-4000-8000-00000000d15d-apply_discount"
    first = apply(10, action_key)
    # the same action sent again (its answer lost) is the same discount, not a second one
    assert apply(10, action_key).coupon_id == first.coupon_id
    with pytest.raises(BillingDeskError) as refused:
        apply(10, other_key)
    assert refused.value.code == "discount_exists"
    discounts = harness.retrieve("subscription", SUB)["discounts"]
    assert len(discounts) == 1


@pytest.mark.parametrize(
    ("percent", "duration", "months", "code"),
    [
        (0, "once", None, "invalid_percent"),
        (150, "once", None, "invalid_percent"),
        (10, "sometimes", None, "invalid_duration"),
        (10, "repeating", None, "invalid_duration"),
        (10, "once", 3, "invalid_duration"),
    ],
)
def test_discounts_that_cannot_be_applied(harness, percent, duration, months, code):
    with pytest.raises(BillingDeskError) as refused:
        harness.provider.apply_discount(
            subscription_id=SUB,
            percent_off=percent,
            duration=duration,
            duration_in_months=months,
            idempotency_key=KEY,
        )
    assert refused.value.code == code


# --- grace period --------------------------------------------------------------------------------


def test_a_grace_period_is_recorded_and_moves_the_emailed_invoices_due_date(harness):
    until = harness.now + timedelta(days=14)
    result = harness.provider.extend_grace_period(
        subscription_id=SUB, invoice_id=INV_OPEN, until=until, idempotency_key=KEY
    )
    assert (result.subscription_id, result.status) == (SUB, "active")
    subscription = harness.retrieve("subscription", SUB)
    assert subscription["metadata"]["grace_period_until"] == str(unix(until))
    assert harness.retrieve("invoice", INV_OPEN)["due_date"] == unix(until)


@pytest.mark.parametrize(
    ("invoice", "days", "code"),
    [(INV_OPEN, -1, "invalid_until"), (INV_BETA, 7, "invoice_not_for_subscription")],
)
def test_grace_periods_that_cannot_be_given(harness, invoice, days, code):
    with pytest.raises(BillingDeskError) as refused:
        harness.provider.extend_grace_period(
            subscription_id=SUB,
            invoice_id=invoice,
            until=harness.now + timedelta(days=days),
            idempotency_key=KEY,
        )
    assert refused.value.code == code
