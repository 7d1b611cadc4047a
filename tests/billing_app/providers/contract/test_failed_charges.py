"""Contract: a charge the provider fails is recorded as a payment failure, the same way for
every provider (Stripe's events through the webhook path; the sandbox announces the same)."""

from __future__ import annotations

from datetime import timedelta

from .world import ACME, BETA, SUB, SUB_BETA


def test_a_renewal_charged_to_an_expired_card_fails_and_is_recorded(harness):
    # when Beta's period ends and its renewal is charged to a card that has expired
    harness.advance(harness.now + timedelta(days=21))

    # then the provider shows a failed charge on an open invoice and a past-due subscription
    subscription = harness.retrieve("subscription", SUB_BETA)
    assert subscription["status"] == "past_due"
    invoice = harness.retrieve("invoice", subscription["latest_invoice"])
    assert (invoice["status"], invoice["attempt_count"], invoice["amount_due"]) == ("open", 1, 4000)

    # and Billing Desk holds one failure record for it, with the decline in plain words
    failures = [f for f in harness.failures() if f.customer_id == BETA]
    assert len(failures) == 1
    failure = failures[0]
    assert (failure.subscription_id, failure.invoice_id, failure.amount, failure.currency) == (
        SUB_BETA,
        invoice["id"],
        4000,
        "USD",
    )
    assert "expired_card" in {failure.decline_code, failure.failure_code}
    assert failure.charge_id


def test_a_renewal_that_is_paid_records_no_failure(harness):
    harness.advance(harness.now + timedelta(days=21))
    subscription = harness.retrieve("subscription", SUB)
    assert subscription["status"] == "active"
    assert harness.retrieve("invoice", subscription["latest_invoice"])["status"] == "paid"
    assert [f for f in harness.failures() if f.customer_id == ACME] == []
