"""A prompt's outcome from Stripe's webhooks: card updated after the prompt → renewal paid.

Deliveries are signed as Stripe signs them and the objects they name are re-read from
Stripe (``responses`` answers with the project's fixtures in their *current* state), so the
tests also show duplicates and out-of-order deliveries record each step once.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from billing_app.models import CardPrompt, CurrencyRate
from billing_app.providers.stripe.client import StripeHttpClient
from billing_app.services.mirror import mirror_upsert

from .stripe_support import (
    event,
    load,
    make_stripe_workspace,
    stripe_state_setter,
    webhook_poster,
)

ACME = "cus_RbAcmeCorp0001"
VISA = "pm_1RbAcmeVisa4242"
NEW_CARD = "pm_1RbAcmeMc5454New"
INVOICE = "in_1RbAcmeOpen0023"
SUB = "sub_1RbAcmeEnterprise01"
SENT = 1772700000  # 2026-03-05 08:40 UTC
DAY = 86400


@pytest.fixture(autouse=True)
def _no_backoff(monkeypatch):
    monkeypatch.setattr(StripeHttpClient, "backoff_scale", 0.0)


@pytest.fixture
def ws(make_workspace):
    workspace = make_stripe_workspace(make_workspace)
    mirror_upsert(workspace=workspace, obj=load("customer"), source_updated=SENT - DAY)
    return workspace


@pytest.fixture
def prompt(ws):
    return CardPrompt.objects.create(
        workspace=ws,
        customer_id=ACME,
        payment_method_id=VISA,
        reason=CardPrompt.Reason.EXPIRING,
        subscription_id=SUB,
        window="exp-2026-03",
        status=CardPrompt.Status.SENT,
        sent_at=datetime.fromtimestamp(SENT, tz=UTC),
    )


@pytest.fixture
def deliver(client, ws, django_capture_on_commit_callbacks):
    return webhook_poster(client, ws, django_capture_on_commit_callbacks)


@pytest.fixture
def stripe_state(http):
    return stripe_state_setter(http)


def _customer_with(card: str):
    customer = load("customer")
    customer["invoice_settings"] = {**customer["invoice_settings"], "default_payment_method": card}
    return customer


def _paid_renewal(
    *, paid_at: int, invoice_id: str = "in_1RbAcmeRenewal24", reason="subscription_cycle"
):
    invoice = load("invoice", id=invoice_id, billing_reason=reason)
    invoice.update(
        status="paid",
        amount_paid=invoice["amount_due"],
        amount_remaining=0,
        status_transitions={**invoice["status_transitions"], "paid_at": paid_at},
    )
    return invoice


def _card_changed(deliver, stripe_state, *, at: int, n: int = 1):
    customer = _customer_with(NEW_CARD)
    stripe_state(f"/v1/customers/{ACME}", customer)
    deliver(event(f"evt_1CustomerUpdated{n}", "customer.updated", customer, created=at))


def _renewal_paid(deliver, stripe_state, *, at: int, n: int = 1, **kwargs):
    invoice = _paid_renewal(paid_at=at, **kwargs)
    stripe_state(f"/v1/invoices/{invoice['id']}", invoice)
    deliver(event(f"evt_1InvoicePaid{n}", "invoice.paid", invoice, created=at + 2))
    return invoice


def test_card_updated_then_renewal_paid(ws, prompt, deliver, stripe_state):
    # Given a prompt sent; when the customer saves a new default card two days later
    _card_changed(deliver, stripe_state, at=SENT + 2 * DAY)
    prompt.refresh_from_db()
    assert prompt.card_updated_at == datetime.fromtimestamp(SENT + 2 * DAY, tz=UTC)
    assert prompt.new_payment_method_id == NEW_CARD
    assert prompt.renewal_paid_at is None

    # When the next renewal is paid (delivered twice)
    invoice = _renewal_paid(deliver, stripe_state, at=SENT + 10 * DAY)
    _renewal_paid(deliver, stripe_state, at=SENT + 10 * DAY, n=2)

    prompt.refresh_from_db()
    assert prompt.renewal_invoice_id == invoice["id"]
    assert prompt.renewal_paid_at == datetime.fromtimestamp(SENT + 10 * DAY, tz=UTC)
    assert (prompt.renewal_amount, prompt.renewal_currency) == (invoice["amount_due"], "USD")
    assert prompt.renewal_amount_base == invoice["amount_due"]


def test_renewal_paid_before_the_update_event_arrives_is_still_counted(
    ws, prompt, deliver, stripe_state
):
    # The invoice.paid event is processed first (out of order), the card change after it.
    invoice = _renewal_paid(deliver, stripe_state, at=SENT + 3 * DAY)
    assert CardPrompt.objects.get().renewal_paid_at is None  # no update recorded yet
    _card_changed(deliver, stripe_state, at=SENT + 2 * DAY)
    prompt.refresh_from_db()
    assert prompt.renewal_invoice_id == invoice["id"]


def test_nothing_is_recorded_without_a_changed_card(ws, prompt, deliver, stripe_state):
    customer = _customer_with(VISA)  # another customer field changed; same card
    customer["name"] = "Acme Corporation"
    stripe_state(f"/v1/customers/{ACME}", customer)
    deliver(event("evt_1CustomerUpdatedName", "customer.updated", customer, created=SENT + DAY))
    _renewal_paid(deliver, stripe_state, at=SENT + 10 * DAY)
    prompt.refresh_from_db()
    assert prompt.card_updated_at is None and prompt.renewal_paid_at is None


def test_a_paid_invoice_before_the_update_is_not_the_renewal(ws, prompt, deliver, stripe_state):
    _renewal_paid(deliver, stripe_state, at=SENT + DAY, invoice_id="in_before")
    _card_changed(deliver, stripe_state, at=SENT + 2 * DAY)
    prompt.refresh_from_db()
    assert prompt.card_updated_at is not None and prompt.renewal_paid_at is None


def test_the_failed_invoice_paid_after_the_update_counts_and_converts_to_base(
    ws, deliver, stripe_state
):
    CurrencyRate.objects.create(workspace=ws, currency="EUR", rate=Decimal("1.10"))
    prompt = CardPrompt.objects.create(
        workspace=ws,
        customer_id=ACME,
        payment_method_id=VISA,
        reason=CardPrompt.Reason.FAILED,
        window=f"fail-{INVOICE}",
        status=CardPrompt.Status.SENT,
        sent_at=datetime.fromtimestamp(SENT, tz=UTC),
    )
    _card_changed(deliver, stripe_state, at=SENT + DAY)
    invoice = load("invoice", currency="eur", billing_reason="manual")
    invoice.update(
        status="paid",
        amount_paid=10000,
        amount_remaining=0,
        status_transitions={**invoice["status_transitions"], "paid_at": SENT + 2 * DAY},
    )
    stripe_state(f"/v1/invoices/{INVOICE}", invoice)
    deliver(
        event("evt_1InvoicePaidEur", "invoice.payment_succeeded", invoice, created=SENT + 2 * DAY)
    )
    prompt.refresh_from_db()
    assert (prompt.renewal_invoice_id, prompt.renewal_amount, prompt.renewal_currency) == (
        INVOICE,
        10000,
        "EUR",
    )
    assert prompt.renewal_amount_base == 11000


def test_unsent_prompts_and_other_customers_are_untouched(ws, prompt, deliver, stripe_state):
    CardPrompt.objects.filter(pk=prompt.pk).update(status=CardPrompt.Status.SUPPRESSED)
    _card_changed(deliver, stripe_state, at=SENT + DAY)
    assert CardPrompt.objects.get().card_updated_at is None


# --- the prompt's scope: its subscription's card and renewal (review of issue 18)


def _subscription_with(card: str | None):
    return load("subscription", default_payment_method=card)


def test_a_subscription_card_is_not_updated_by_an_unrelated_customer_change(
    ws, prompt, deliver, stripe_state
):
    # The subscription pays with its own card (the prompted one); the customer's default
    # is another card all along. A customer.updated for the name changes no card.
    mirror_upsert(workspace=ws, obj=_subscription_with(VISA), source_updated=SENT - DAY)
    customer = _customer_with(NEW_CARD)
    mirror_upsert(workspace=ws, obj=customer, source_updated=SENT - DAY)
    customer["name"] = "Acme Corporation"
    stripe_state(f"/v1/customers/{ACME}", customer)
    deliver(event("evt_1CustomerUpdatedName", "customer.updated", customer, created=SENT + DAY))
    prompt.refresh_from_db()
    assert prompt.card_updated_at is None

    # The customer then replaces the subscription's card: customer.subscription.updated
    subscription = _subscription_with(NEW_CARD)
    stripe_state(f"/v1/subscriptions/{SUB}", subscription)
    deliver(
        event(
            "evt_1SubscriptionUpdated",
            "customer.subscription.updated",
            subscription,
            created=SENT + 2 * DAY,
            previous_attributes={"default_payment_method": VISA},
        )
    )
    prompt.refresh_from_db()
    assert prompt.card_updated_at == datetime.fromtimestamp(SENT + 2 * DAY, tz=UTC)
    assert prompt.new_payment_method_id == NEW_CARD


def test_an_event_dated_before_the_send_is_not_the_prompts_outcome(
    ws, prompt, deliver, stripe_state
):
    # The change happened before the email went out (its event is processed late)
    _card_changed(deliver, stripe_state, at=SENT - 60)
    prompt.refresh_from_db()
    assert prompt.card_updated_at is None


def test_the_renewal_of_another_subscription_is_not_the_failure_avoided(
    ws, prompt, deliver, stripe_state
):
    _card_changed(deliver, stripe_state, at=SENT + DAY)
    other = _paid_renewal(paid_at=SENT + 2 * DAY, invoice_id="in_other_sub_cycle")
    other["parent"] = {
        **other["parent"],
        "subscription_details": {"metadata": {}, "subscription": "sub_OTHER"},
    }
    stripe_state(f"/v1/invoices/{other['id']}", other)
    deliver(event("evt_1InvoicePaidOther", "invoice.paid", other, created=SENT + 2 * DAY))
    prompt.refresh_from_db()
    assert prompt.renewal_paid_at is None
    # its own subscription's renewal is
    invoice = _renewal_paid(deliver, stripe_state, at=SENT + 3 * DAY)
    prompt.refresh_from_db()
    assert prompt.renewal_invoice_id == invoice["id"]


def test_a_renewal_paid_with_another_known_card_is_not_counted(ws, prompt):
    CardPrompt.objects.filter(pk=prompt.pk).update(
        card_updated_at=datetime.fromtimestamp(SENT + DAY, tz=UTC),
        new_payment_method_id=NEW_CARD,
    )
    invoice = _paid_renewal(paid_at=SENT + 2 * DAY)
    invoice["charge"] = "ch_renewal_other_card"
    mirror_upsert(workspace=ws, obj=invoice)
    mirror_upsert(
        workspace=ws,
        obj=load("charge", id="ch_renewal_other_card", payment_method="pm_someone_else"),
    )
    from billing_app.services.card_prompts import card_prompt_renewal_record

    assert card_prompt_renewal_record(prompt_id=prompt.pk) is False
    mirror_upsert(
        workspace=ws,
        obj=load("charge", id="ch_renewal_other_card", payment_method=NEW_CARD),
        source_updated=SENT + 3 * DAY,
    )
    assert card_prompt_renewal_record(prompt_id=prompt.pk) is True
