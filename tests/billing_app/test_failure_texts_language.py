"""Which language the payment-failure texts speak (issue 16 review, items 3 and 4).

* A failure's stored reason is English, whatever language was active when it was
  recorded; every reader shows it in the reader's language, derived again from the
  decline or failure code the row keeps (an unknown code's filled "Payment failed (…)"
  matches no catalog entry).
* The suspension warning note and the CSM outreach ticket are written in the
  deployment's default language (``settings.LANGUAGE_CODE``), words, money and dates
  alike, also when an eager outbox delivers them inside a German agent's request.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import translation

from billing_app.models import MirrorCharge, MirrorCustomer, PaymentFailure
from billing_app.providers.sandbox.payments import sandbox_payment_attempt
from billing_app.selectors.context import customer_context
from billing_app.selectors.failures import customer_failures, failure_reason_text
from billing_app.services.payment_failures import (
    csm_outreach_body,
    csm_outreach_subject,
    payment_failure_record,
    suspension_warning_body,
)
from helpdesk_connectors.models import DemoTicket, DemoTicketComment

from .context_support import AS_OF
from .test_payment_failures import NW, NW_INVOICE, failures, link_from_ticket, seeded, ws

__all__ = ["link_from_ticket", "seeded", "ws"]  # the fixtures this module borrows

LINES = (
    "Customer: Northwind Traders (cus_sbx_northwind, ap@northwind.example)\n"
    "Consecutive payment failures: 3\n"
    "Subscription: sub_sbx_northwind\n"
    "Invoice: in_sbx_northwind_07\n"
    "Latest: $149.00 on January 15, 2026 — Card expired (attempt 3)\n"
    "Next automatic retry: January 18, 2026\n"
    "  · January 12, 2026: $149.00, Card expired\n"
    "  · January 14, 2026: $149.00, Card expired\n"
    "  · January 15, 2026: $149.00, Card expired\n"
)
# The English texts, byte for byte as they were before the texts became translatable.
WARNING = (
    "Billing Desk · Account suspension warning\n"
    + LINES
    + "The account will be suspended unless the payment is recovered. Send the customer a "
    "payment link or extend the grace period; CSM outreach has been requested."
)
CSM_SUBJECT = "CSM outreach: Northwind Traders — 3 consecutive payment failures"
CSM_BODY = (
    "Billing Desk · CSM outreach requested\n"
    + LINES
    + "An account suspension warning was issued. Please contact the customer to recover the "
    "payment before the account is suspended."
)


def third_failure(ws, callbacks, *, language=None):
    """Northwind's third failed attempt (the seed holds two), its on-commit work run eagerly,
    inside ``language`` when given (as in an agent's request)."""
    with translation.override(language), callbacks(execute=True):
        sandbox_payment_attempt(
            workspace=ws,
            invoice_id=NW_INVOICE,
            decline_code="expired_card",
            at=AS_OF + timedelta(hours=1),
        )
    return failures(ws)[-1]


# --- the stored reason and its readers -----------------------------------------------------------


def unknown_code_failures(ws):
    """Northwind's two failed charges declined with a code Billing Desk does not know and no
    message from Stripe, recorded while a German agent's request is active."""
    charges = MirrorCharge.objects.filter(workspace=ws, customer_id=NW, status="failed")
    charges.update(decline_code="expired_token", failure_code="", failure_message="")
    PaymentFailure.objects.filter(workspace=ws, customer_id=NW).delete()  # recorded afresh
    with translation.override("de"):
        for charge in charges.order_by("created"):
            payment_failure_record(workspace=ws, charge=charge)
    return failures(ws)


def test_an_unknown_code_is_stored_in_english_and_read_in_the_readers_language(ws):
    rows = unknown_code_failures(ws)

    assert [f.reason for f in rows] == ["Payment failed (expired token)"] * 2
    with translation.override("de"):
        shown = customer_failures(workspace=ws, customer_id=NW)["items"]
    assert [item["reason"] for item in shown] == ["Zahlung fehlgeschlagen (expired token)"] * 2
    english = customer_failures(workspace=ws, customer_id=NW)["items"]
    assert [item["reason"] for item in english] == ["Payment failed (expired token)"] * 2


def test_the_panels_failure_alert_reads_an_unknown_code_in_german(ws):
    unknown_code_failures(ws)
    customer = MirrorCustomer.objects.get(workspace=ws, stripe_id=NW)

    with translation.override("de"):
        alerts = {a["type"]: a for a in customer_context(workspace=ws, customer=customer)["alerts"]}
    assert alerts["payment_failed"]["data"]["reason"] == "Zahlung fehlgeschlagen (expired token)"

    alerts = {a["type"]: a for a in customer_context(workspace=ws, customer=customer)["alerts"]}
    assert alerts["payment_failed"]["data"]["reason"] == "Payment failed (expired token)"


@pytest.mark.parametrize(
    ("codes", "stored", "english", "german"),
    [
        # a known code: its words, whatever the row holds (a row written in German before
        # the reasons were stored in English reads right too)
        (("expired_card", ""), "Karte abgelaufen", "Card expired", "Karte abgelaufen"),
        (("", "processing_error"), "Gateway error", "Gateway error", "Fehler beim Zahlungsdienst"),
        # an unknown code with Stripe's message: Stripe's words, as Stripe wrote them
        (
            ("weird_new_code", ""),
            "Your card was declined",
            "Your card was declined",
            "Your card was declined",
        ),
        # no code: the stored English words translated, else as stored
        (("", ""), "Payment failed", "Payment failed", "Zahlung fehlgeschlagen"),
        (("", ""), "Something new", "Something new", "Something new"),
    ],
)
def test_a_reason_is_shown_in_the_readers_language(codes, stored, english, german):
    decline_code, failure_code = codes
    failure = PaymentFailure(
        decline_code=decline_code,
        failure_code=failure_code,
        failure_message="Your card was declined." if decline_code == "weird_new_code" else "",
        reason=stored,
    )
    assert failure_reason_text(failure) == english
    with translation.override("de"):
        assert failure_reason_text(failure) == german


# --- the suspension warning note and the CSM outreach ticket -----------------------------------


def test_escalation_texts_are_in_the_default_language_whatever_is_active(
    ws, link_from_ticket, django_capture_on_commit_callbacks
):
    link_from_ticket()
    # when the third failure is recorded during a German agent's request (eager outbox)
    failure = third_failure(ws, django_capture_on_commit_callbacks, language="de")

    # then the note and the CSM ticket went out in English, money and dates too
    assert failure.suspension_note_status == "posted"
    assert failure.csm_outreach_status == "ticket"
    note = DemoTicketComment.objects.get(ticket_id="NW-1", body__contains="suspension warning")
    assert note.body == WARNING + f"\nBilling Desk ref: payment-failure-{failure.pk}-warning"
    (ticket,) = DemoTicket.objects.all()
    assert ticket.subject == CSM_SUBJECT
    assert DemoTicketComment.objects.get(ticket_id=ticket.ticket_id).body == CSM_BODY
    # and rendering them again, in German or not, writes the same text (a worker's retry)
    for language in ("de", "en", None):
        with translation.override(language):
            assert suspension_warning_body(failure=failure) == WARNING
            assert csm_outreach_subject(failure=failure) == CSM_SUBJECT
            assert csm_outreach_body(failure=failure) == CSM_BODY


def test_with_german_as_the_default_language_the_texts_are_all_german(
    ws, settings, link_from_ticket, django_capture_on_commit_callbacks
):
    link_from_ticket()
    failure = third_failure(ws, django_capture_on_commit_callbacks)
    settings.LANGUAGE_CODE = "de"

    with translation.override("en"):
        warning = suspension_warning_body(failure=failure)
        subject = csm_outreach_subject(failure=failure)
        body = csm_outreach_body(failure=failure)

    assert "Letzte: 149,00\xa0$ am 15. Januar 2026 — Karte abgelaufen (Versuch 3)" in warning
    assert "  · 12. Januar 2026: 149,00\xa0$, Karte abgelaufen" in warning
    assert "Nächster automatischer Versuch: 18. Januar 2026" in body
    assert (
        subject == "CSM-Kontaktaufnahme: Northwind Traders — 3 fehlgeschlagene Zahlungen in Folge"
    )
    for text in (warning, body):
        assert "$149.00" not in text and "January" not in text and "Customer:" not in text
