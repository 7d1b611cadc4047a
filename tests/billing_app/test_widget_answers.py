"""What the billing widget answers from the customer's own account, the links it hands out,
"contact support" as a ticket, and the events deflection is counted from (issue 18)."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import urlsplit

import pytest
from babel.dates import format_date
from django.conf import settings
from django.core.cache import cache
from django.utils import timezone

from billing_app.models import BillingWidgetEvent, OutboxMessage, SelfServiceLink
from billing_app.services.card_prompts import card_update_token_read
from billing_app.services.customer_tickets import customer_ticket_deliver
from billing_app.services.refund_links import refund_link_read
from billing_app.services.widget import answers as widget_answers
from billing_app.services.widget import contact as widget_contact
from helpdesk_connectors.models import DemoTicket
from tests.helpdesk_support import zendesk_installation_add

from .actions_support import account_seed
from .widget_support import ORIGIN, VISIT, call, widget_enable

Kind = BillingWidgetEvent.Kind


@pytest.fixture
def acc(workspace):
    return account_seed(workspace)


@pytest.fixture
def widget(workspace, acc):
    cache.clear()  # the hourly request counters live in the cache
    yield widget_enable(workspace)
    cache.clear()


def events(**filters):
    return list(
        BillingWidgetEvent.objects.filter(**filters)
        .order_by("pk")
        .values_list("kind", "question", "visit")
    )


def answer(client, workspace, question, **kwargs):
    response = call(client, workspace, f"answers/{question}/", **kwargs)
    assert response.status_code == 200, response.content
    assert response["Access-Control-Allow-Origin"] == ORIGIN
    return response.json()["answer"]


def test_start_gives_the_widgets_words_and_questions_and_records_nothing(client, widget):
    response = call(client, widget.workspace, "start/", lang="en")

    assert response.status_code == 200
    texts = response.json()["texts"]
    assert texts["launcher"] == "Billing help"
    assert [q["key"] for q in texts["questions"]] == [
        "next_invoice",
        "last_payment",
        "invoices",
        "update_card",
        "refund",
    ]
    assert "billing@acme.example" in texts["contact_intro"]
    assert response["Content-Language"] == "en"
    assert events() == []


def test_the_next_invoice_is_the_renewal_the_panel_computes_and_the_open_invoice_to_pay(
    client, widget, acc
):
    # given Acme renews in 20 days: 50 seats × $48 + add-ons $500 + $300 + $200 = $3,400.00,
    # and an invoice of $3,400.00 is open after a failed attempt
    renewal = acc.now + timedelta(days=20)

    got = answer(client, widget.workspace, "next_invoice")

    assert got["title"] == "Next invoice"
    assert got["lines"] == [
        f"Your next invoice is due on {renewal:%B} {renewal.day}, {renewal.year} for $3,400.00."
    ]
    assert got["data"]["next_invoice"]["date"] == renewal.date().isoformat()
    assert got["data"]["next_invoice"]["amount"]["amount"] == 340000
    [open_invoice] = got["items"]
    assert open_invoice["label"] == "Open invoice INV-OPEN: $3,400.00 to pay"
    assert open_invoice["links"] == [
        {
            "label": "Pay now",
            "url": "https://invoice.stripe.com/i/acct_test/in_acme_open",
            "kind": "pay",
        }
    ]


def test_the_last_payment_says_it_failed_in_the_customers_words(client, widget):
    got = answer(client, widget.workspace, "last_payment")

    assert got["data"]["status"] == "failed"
    assert got["data"]["amount"]["amount"] == 340000
    assert "Your payment of $3,400.00" in got["lines"][0]
    assert "failed because of an expired card" in got["lines"][0]


def test_a_payment_that_went_through_says_so(client, widget, acc):
    from billing_app.models import MirrorCharge

    MirrorCharge.objects.filter(stripe_id="ch_acme_failed").delete()
    MirrorCharge.objects.filter(stripe_id__in=["ch_acme_dup2", "ch_acme_dup1"]).delete()
    MirrorCharge.objects.filter(stripe_id="ch_acme_disputed").delete()

    got = answer(client, widget.workspace, "last_payment")

    assert got["data"] == {
        "amount": got["data"]["amount"],
        "date": (acc.now - timedelta(days=10)).date().isoformat(),
        "status": "succeeded",
        "succeeded": True,
    }
    assert got["lines"][0].startswith("Your payment of $3,400.00 on ")
    assert got["lines"][0].endswith(" went through.")


def test_invoices_are_the_customers_own_finalized_ones_with_their_pages_and_pdfs(client, widget):
    got = answer(client, widget.workspace, "invoices")

    # the open and the paid invoice — not the draft, not another customer's
    assert got["data"]["invoices"] == ["in_acme_open", "in_acme_paid"]
    paid = got["items"][1]
    assert paid["label"] == "INV-PAID · $3,400.00"
    assert paid["detail"].endswith("· Paid")
    assert paid["links"] == [
        {
            "label": "View",
            "url": "https://invoice.stripe.com/i/acct_test/in_acme_paid",
            "kind": "link",
        },
        {
            "label": "Download PDF",
            "url": "https://pay.stripe.com/invoice/acct_test/in_acme_paid/pdf",
            "kind": "pdf",
        },
    ]


def test_answers_come_in_the_language_the_page_asks_for(client, widget, acc):
    renewal = acc.now + timedelta(days=20)

    response = call(client, widget.workspace, "answers/next_invoice/", lang="de")

    assert response["Content-Language"] == "de"
    line = response.json()["answer"]["lines"][0]
    # the figures as German writes them (CLDR), whatever the catalog's words
    assert "3.400,00\xa0$" in line
    assert format_date(renewal.date(), format="long", locale="de") in line


def test_update_card_hands_out_the_prompts_signed_link_for_this_customer(client, widget):
    got = answer(client, widget.workspace, "update_card")

    [link] = got["links"]
    assert link["kind"] == "card"
    assert link["url"].startswith(f"{settings.PUBLIC_BASE_URL}/billing/card/")
    token = urlsplit(link["url"]).path.rstrip("/").rsplit("/", 1)[-1]
    claim = card_update_token_read(token)
    assert claim is not None
    assert (claim.workspace_id, claim.customer_id) == (widget.workspace.pk, "cus_acme")


def test_refund_hands_out_a_refund_request_link_and_reuses_a_live_one(client, widget):
    # when the customer asks twice, in two visits
    first = answer(client, widget.workspace, "refund", visit="visit-first-0001")
    second = answer(client, widget.workspace, "refund", visit="visit-second-002")

    # then one link, from the widget, for this customer, that the refund page accepts
    [link] = SelfServiceLink.objects.all()
    assert (link.customer_id, link.source, link.created_by) == ("cus_acme", "widget", None)
    for got in (first, second):
        [url] = [entry["url"] for entry in got["links"]]
        token = urlsplit(url).path.rstrip("/").rsplit("/", 1)[-1]
        assert refund_link_read(token) == link
    # and both visits count the question
    assert events(kind=Kind.ANSWERED) == [
        ("answered", "refund", "visit-first-0001"),
        ("answered", "refund", "visit-second-002"),
    ]


def test_a_link_about_to_expire_is_not_handed_out_again(client, widget):
    answer(client, widget.workspace, "refund", visit="visit-first-0001")
    # a week-long link with an hour left (less than a day: not handed out again)
    link = SelfServiceLink.objects.get()
    SelfServiceLink.objects.update(
        created_at=link.created_at - timedelta(days=7) + timedelta(hours=1),
        expires_at=link.created_at + timedelta(hours=1),
    )

    answer(client, widget.workspace, "refund", visit="visit-second-002")

    assert SelfServiceLink.objects.count() == 2


def test_opened_and_answered_are_counted_once_per_visit(client, widget):
    for _ in range(2):
        assert call(client, widget.workspace, "open/").status_code == 200
        answer(client, widget.workspace, "invoices")
    answer(client, widget.workspace, "next_invoice")
    call(client, widget.workspace, "open/", visit="another-visit-01")

    assert events() == [
        ("opened", "", VISIT),
        ("answered", "invoices", VISIT),
        ("answered", "next_invoice", VISIT),
        ("opened", "", "another-visit-01"),
    ]
    assert set(BillingWidgetEvent.objects.values_list("customer_id", flat=True)) == {"cus_acme"}


def test_unknown_questions_and_bad_visit_ids_are_refused(client, widget):
    unknown = call(client, widget.workspace, "answers/password/")
    bad_visit = call(client, widget.workspace, "answers/invoices/", visit="<script>")

    assert unknown.status_code == 400
    assert unknown.json()["error"]["code"] == "unknown_question"
    assert unknown["Access-Control-Allow-Origin"] == ORIGIN
    assert bad_visit.status_code == 400
    assert bad_visit.json()["error"]["code"] == "invalid_visit"
    assert events() == []


def test_answers_are_rate_limited_per_customer(client, widget, monkeypatch):
    monkeypatch.setattr(widget_answers, "EVENTS_PER_HOUR", 2)
    call(client, widget.workspace, "open/", visit="visit-one-00001")
    call(client, widget.workspace, "open/", visit="visit-two-00002")

    response = call(client, widget.workspace, "answers/invoices/", visit="visit-three-0003")

    assert response.status_code == 429
    assert response.json()["error"]["code"] == "widget_rate_limited"
    assert response["Access-Control-Allow-Origin"] == ORIGIN


# --- contact support ------------------------------------------------------------------------


def tickets():
    return list(OutboxMessage.objects.filter(kind=OutboxMessage.Kind.CUSTOMER_TICKET))


def test_contact_support_queues_a_ticket_with_the_customer_as_requester_and_the_context(
    client, widget
):
    response = call(client, widget.workspace, "contact/", message="Why was I charged twice?")

    assert response.status_code == 200
    assert "billing@acme.example" in response.json()["message"]
    [message] = tickets()
    payload = message.payload
    assert payload["requester_email"] == "billing@acme.example"
    assert payload["requester_name"] == "Acme Corp"
    assert payload["source"] == "widget"
    assert payload["subject"] == "Billing question from Acme Corp (help widget)"
    # the description is the customer's own message; the billing context a private note
    assert payload["body"] == "Why was I charged twice?"
    body = payload["internal_note"]
    assert "Why was I charged twice?" not in body
    assert "Customer: Acme Corp <billing@acme.example> (cus_acme)" in body
    assert "for $3,400.00." in body  # the next invoice
    assert "failed because of an expired card" in body  # the last payment
    assert "INV-PAID · $3,400.00" in body  # the invoices
    [event] = BillingWidgetEvent.objects.filter(kind=Kind.CONTACT)
    assert payload["source_id"] == str(event.pk)


def test_a_contact_is_one_ticket_per_visit_whatever_the_resends(client, widget):
    for _ in range(3):
        assert call(client, widget.workspace, "contact/", message="Hello").status_code == 200

    assert len(tickets()) == 1
    assert events(kind=Kind.CONTACT) == [("contact", "", VISIT)]


def test_contacts_are_rate_limited_per_customer(client, widget, workspace):
    for n in range(widget_contact.CONTACTS_PER_HOUR):
        ok = call(client, workspace, "contact/", message="Hello", visit=f"visit-contact-{n:04}")
        assert ok.status_code == 200

    refused = call(client, workspace, "contact/", message="Hello", visit="visit-contact-last")

    assert refused.status_code == 429
    assert refused.json()["error"]["details"] == {"retry_after": 3600}
    assert len(tickets()) == widget_contact.CONTACTS_PER_HOUR
    # another customer of the workspace is not limited by Acme's contacts
    other = call(client, workspace, "contact/", customer="cus_other", message="Hi")
    assert other.status_code == 200


def test_contacts_are_rate_limited_per_customer_per_day(client, widget, workspace):
    # Earlier today, more than an hour ago: outside the hourly limit, inside the daily one.
    for n in range(widget_contact.CONTACTS_PER_DAY):
        event = BillingWidgetEvent.objects.create(
            workspace=workspace,
            customer_id="cus_acme",
            visit=f"visit-day-{n:04}",
            kind=Kind.CONTACT,
        )
        earlier = timezone.now() - timedelta(hours=2, minutes=n)
        BillingWidgetEvent.objects.filter(pk=event.pk).update(created_at=earlier)

    refused = call(client, workspace, "contact/", message="Hello", visit="visit-contact-day")

    assert refused.status_code == 429
    assert refused.json()["error"]["details"] == {"retry_after": 86400}
    assert tickets() == []


@pytest.mark.parametrize(
    ("message", "code"),
    [
        ("", "message_required"),
        ("   ", "message_required"),
        (None, "message_required"),
        ("x" * 4001, "message_too_long"),
    ],
)
def test_a_contact_needs_a_message_of_sensible_length(client, widget, message, code):
    response = call(client, widget.workspace, "contact/", message=message)

    assert response.status_code == 400
    assert response.json()["error"]["code"] == code
    assert tickets() == []


def test_the_ticket_is_opened_on_the_helpdesk_and_its_reference_kept(client, widget):
    call(client, widget.workspace, "contact/", message="Please call me back")
    [message] = tickets()

    ref = customer_ticket_deliver(message)

    [ticket] = DemoTicket.objects.all()
    assert ticket.requester_email == "billing@acme.example"
    assert ref == f"demo:{ticket.ticket_id}"
    assert BillingWidgetEvent.objects.get(kind=Kind.CONTACT).ticket_ref == ref


def test_on_zendesk_the_message_is_the_public_description_and_the_context_a_private_note(
    client, widget, http
):
    """HTTP to Zendesk intercepted: Support API v2 ``POST /api/v2/tickets.json`` then the
    private note as ``PUT /api/v2/tickets/{id}.json`` with ``public: false``."""
    import json

    from billing_app.services.outbox import outbox_message_deliver

    workspace = widget.workspace
    workspace.installation_links.all().delete()
    zendesk_installation_add(workspace)
    http.post(
        "https://acme.zendesk.com/api/v2/tickets.json",
        status=201,
        json={
            "ticket": {"id": 9701, "status": "new", "requester_id": 381950021, "tags": []},
            "audit": {"id": 92001, "ticket_id": 9701, "events": []},
        },
    )
    http.put(
        "https://acme.zendesk.com/api/v2/tickets/9701.json",
        json={
            "ticket": {"id": 9701, "status": "open", "tags": []},
            "audit": {"id": 92002, "ticket_id": 9701, "events": []},
        },
    )
    assert call(client, workspace, "contact/", message="Why twice?").status_code == 200
    [message] = tickets()

    assert outbox_message_deliver(message_id=message.pk, first=True) == "done"

    created = json.loads(http.calls[0].request.body)["ticket"]
    assert created["comment"] == {"body": "Why twice?", "public": True}
    assert created["requester"] == {"email": "billing@acme.example", "name": "Acme Corp"}
    note = json.loads(http.calls[1].request.body)["ticket"]["comment"]
    assert note["public"] is False
    assert "Customer: Acme Corp <billing@acme.example> (cus_acme)" in note["body"]
    assert BillingWidgetEvent.objects.get(kind=Kind.CONTACT).ticket_ref == "zendesk:9701"


def test_contact_is_refused_when_no_installation_can_open_tickets(client, widget):
    widget.workspace.installation_links.all().delete()
    assert widget_contact.widget_helpdesk_ready(workspace=widget.workspace) is False

    response = call(client, widget.workspace, "contact/", message="Hello")

    assert response.status_code == 503
    assert response.json()["error"]["code"] == "no_helpdesk"
    assert tickets() == []
