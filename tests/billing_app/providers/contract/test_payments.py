"""Contract: money owed and paid — payment links, invoice resends, credits, refunds, card updates."""

from __future__ import annotations

import pytest

from billing_app.errors import BillingDeskError, Conflict
from billing_app.money import Money

from .world import (
    ACME,
    BETA,
    CH_DISPUTED,
    CH_FAILED,
    CH_OLD,
    CH_PAID,
    GAMMA,
    INV_BETA,
    INV_DRAFT,
    INV_OPEN,
    INV_PAID,
)

KEY = "billing-desk-5b7f1c8e-0000-4000-8000-00000000c0de-contract"


def refund(
    harness,
    amount=10_000,
    *,
    charge=CH_PAID,
    reason="requested_by_customer",
    key=KEY,
    currency="USD",
):
    return harness.provider.refund(
        charge_id=charge, amount=Money(amount, currency), reason=reason, idempotency_key=key
    )


# --- payment links -------------------------------------------------------------------------------


def test_a_payment_link_is_the_open_invoices_hosted_page(harness):
    link = harness.provider.create_payment_link(
        customer_id=ACME, invoice_id=INV_OPEN, idempotency_key=KEY
    )
    assert (link.kind, link.object_id) == ("hosted_invoice", INV_OPEN)
    assert link.url == harness.retrieve("invoice", INV_OPEN)["hosted_invoice_url"]


def test_without_an_invoice_the_link_is_the_oldest_open_invoice(harness):
    link = harness.provider.create_payment_link(
        customer_id=ACME, invoice_id=None, idempotency_key=KEY
    )
    assert (link.kind, link.object_id) == ("hosted_invoice", INV_OPEN)


def test_with_nothing_open_the_link_is_a_checkout(harness):
    link = harness.provider.create_payment_link(
        customer_id=GAMMA, invoice_id=None, idempotency_key=KEY
    )
    assert link.kind == "checkout"
    assert link.url.startswith("https://") and link.object_id


@pytest.mark.parametrize(
    ("customer", "invoice", "code"),
    [(BETA, INV_OPEN, "invoice_not_for_customer"), (ACME, INV_PAID, "invoice_not_open")],
)
def test_payment_links_that_cannot_be_made(harness, customer, invoice, code):
    with pytest.raises(BillingDeskError) as refused:
        harness.provider.create_payment_link(
            customer_id=customer, invoice_id=invoice, idempotency_key=KEY
        )
    assert refused.value.code == code


def test_the_card_update_link_is_a_hosted_page(harness):
    link = harness.provider.payment_method_update_link(
        customer_id=ACME, return_url="https://help.example/tickets/1", idempotency_key=KEY
    )
    assert link.kind == "billing_portal"
    assert link.url.startswith("https://") and link.object_id


def test_the_card_update_link_needs_a_web_return_url(harness):
    with pytest.raises(BillingDeskError) as refused:
        harness.provider.payment_method_update_link(
            customer_id=ACME, return_url="ftp://help.example", idempotency_key=KEY
        )
    assert refused.value.code == "invalid_return_url"


# --- invoices ------------------------------------------------------------------------------------


def test_an_open_emailed_invoice_is_sent_again(harness):
    sent = harness.provider.resend_invoice(invoice_id=INV_OPEN, idempotency_key=KEY)
    assert (sent.invoice_id, sent.method) == (INV_OPEN, "email")
    assert sent.hosted_invoice_url and sent.invoice_pdf


def test_a_paid_invoice_is_linked_not_emailed(harness):
    sent = harness.provider.resend_invoice(invoice_id=INV_PAID, idempotency_key=KEY)
    assert (sent.invoice_id, sent.method) == (INV_PAID, "link")
    assert sent.hosted_invoice_url


def test_a_draft_invoice_cannot_be_sent(harness):
    with pytest.raises(BillingDeskError) as refused:
        harness.provider.resend_invoice(invoice_id=INV_DRAFT, idempotency_key=KEY)
    assert refused.value.code == "invoice_not_sendable"


# --- credits -------------------------------------------------------------------------------------


def test_a_credit_is_a_negative_balance_the_customer_holds(harness):
    credit = harness.provider.apply_credit(
        customer_id=ACME, amount=Money(5000, "USD"), description="Outage", idempotency_key=KEY
    )
    assert (credit.amount, credit.ending_balance) == (Money(5000, "USD"), Money(-5000, "USD"))
    assert credit.transaction_id
    assert harness.retrieve("customer", ACME)["balance"] == -5000


def test_a_credit_must_be_positive(harness):
    with pytest.raises(BillingDeskError) as refused:
        harness.provider.apply_credit(
            customer_id=ACME, amount=Money(0, "USD"), description="", idempotency_key=KEY
        )
    assert refused.value.code == "invalid_amount"


# --- refunds -------------------------------------------------------------------------------------


def test_a_partial_refund_moves_the_charge(harness):
    result = refund(harness, 10_000)
    assert (result.charge_id, result.amount, result.status, result.reason) == (
        CH_PAID,
        Money(10_000, "USD"),
        "succeeded",
        "requested_by_customer",
    )
    charge = harness.retrieve("charge", CH_PAID)
    assert (charge["amount_refunded"], charge["refunded"]) == (10_000, False)


def test_the_same_key_refunds_once(harness):
    first = refund(harness, 10_000)
    again = refund(harness, 10_000)
    assert again.refund_id == first.refund_id
    assert harness.retrieve("charge", CH_PAID)["amount_refunded"] == 10_000


def test_the_same_key_with_other_parameters_is_refused(harness):
    refund(harness, 10_000)
    with pytest.raises(Conflict) as refused:
        refund(harness, 20_000)
    assert refused.value.code == "idempotency_conflict"


def test_every_write_needs_an_idempotency_key(harness):
    with pytest.raises(BillingDeskError) as refused:
        refund(harness, 10_000, key="")
    assert refused.value.code == "idempotency_key_required"


def test_a_full_refund_leaves_nothing_to_refund(harness):
    # (two actions: a refund of the same action is found again by its tag, not refused)
    refund(harness, 36_000, key="contract-full-refund")
    assert harness.retrieve("charge", CH_PAID)["refunded"] is True
    with pytest.raises(BillingDeskError) as refused:
        refund(harness, 100, key="contract-another-refund")
    assert refused.value.code == "already_refunded"


@pytest.mark.parametrize(
    ("charge", "amount", "currency", "reason", "code"),
    [
        (CH_PAID, 36_001, "USD", "duplicate", "exceeds_refundable"),
        (CH_PAID, 0, "USD", "duplicate", "invalid_amount"),
        (CH_PAID, 100, "EUR", "duplicate", "currency_mismatch"),
        (CH_PAID, 100, "USD", "because", "invalid_refund_reason"),
        (CH_FAILED, 100, "USD", "duplicate", "charge_not_refundable"),
        (CH_DISPUTED, 100, "USD", "duplicate", "charge_disputed"),
        (CH_OLD, 100, "USD", "duplicate", "refund_window_passed"),
    ],
)
def test_refunds_that_cannot_be_made(harness, charge, amount, currency, reason, code):
    with pytest.raises(BillingDeskError) as refused:
        refund(harness, amount, charge=charge, reason=reason, currency=currency)
    assert refused.value.code == code
    assert harness.retrieve("charge", charge)["amount_refunded"] == 0


def test_a_refund_of_another_customers_charge_is_still_its_charges(harness):
    # the provider refunds by charge: the customer check is the service's (preconditions)
    result = refund(harness, 1000, charge="ch_ContractBetaPaid")
    assert result.charge_id == "ch_ContractBetaPaid"
    assert harness.retrieve("invoice", INV_BETA)["status"] == "paid"
