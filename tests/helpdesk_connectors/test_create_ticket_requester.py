"""``create_ticket`` with the customer as the requester (issue 18), on every connector, and
through the ``customer_ticket`` outbox kind (``billing_app.services.customer_tickets``).

HTTP to Zendesk and Freshdesk is intercepted with ``responses``; the answers are shaped like
Zendesk Support API v2's ``POST /api/v2/tickets.json`` / ``PUT /api/v2/tickets/{id}.json``
and Freshdesk API v2's ``POST /api/v2/tickets``, ``POST /api/v2/tickets/{id}/notes`` and
``GET /api/v2/search/tickets``.

What the customer reads (the ticket's description) and what only agents read (the
investigation, a private note) are kept apart; a ticket that no helpdesk opens fails
visibly; a retry after an unknown outcome does not open a second ticket.
"""

from __future__ import annotations

import json
import logging
from urllib.parse import parse_qs, urlparse

import pytest
import requests

from billing_app.models import OutboxMessage
from billing_app.services.customer_tickets import (
    customer_ticket_enqueue,
    customer_ticket_source_register,
    customer_ticket_state,
)
from billing_app.services.outbox import MAX_ATTEMPTS, outbox_backlog, outbox_message_deliver
from helpdesk_connectors.base import HelpdeskApiError
from helpdesk_connectors.models import DemoTicket, DemoTicketComment
from helpdesk_connectors.registry import get_connector

from .conftest import FRESHDESK_BASE, ZENDESK_BASE


def zendesk_ticket_created(ticket_id: int, requester_id: int = 381950021) -> dict:
    return {
        "ticket": {
            "url": f"{ZENDESK_BASE}/api/v2/tickets/{ticket_id}.json",
            "id": ticket_id,
            "subject": "Refund request",
            "status": "new",
            "requester_id": requester_id,
            "submitter_id": 35436,
            "assignee_id": None,
            "group_id": None,
            "tags": ["billing_desk"],
            "created_at": "2026-12-05T10:00:00Z",
            "updated_at": "2026-12-05T10:00:00Z",
        },
        "audit": {"id": 92001, "ticket_id": ticket_id, "events": []},
    }


def zendesk_comment_added(ticket_id: int, comment_id: int = 93001) -> dict:
    """``PUT /api/v2/tickets/{id}.json`` with a comment: the ticket and the audit."""
    return {
        "ticket": {"id": ticket_id, "status": "open", "tags": ["billing_desk"]},
        "audit": {
            "id": 92002,
            "ticket_id": ticket_id,
            "events": [{"id": comment_id, "type": "Comment", "public": False, "body": "…"}],
        },
    }


def freshdesk_ticket_created(ticket_id: int) -> dict:
    return {
        "id": ticket_id,
        "subject": "Refund request",
        "description": "<div>Investigation</div>",
        "description_text": "Investigation",
        "email_config_id": None,
        "group_id": None,
        "priority": 2,
        "requester_id": 43009001,
        "responder_id": None,
        "source": 2,
        "status": 2,
        "tags": ["billing_desk"],
        "created_at": "2026-12-05T10:00:00Z",
        "updated_at": "2026-12-05T10:00:00Z",
    }


def freshdesk_note_created(ticket_id: int, note_id: int = 43000888) -> dict:
    return {
        "id": note_id,
        "body": "<div>note</div>",
        "body_text": "note",
        "incoming": False,
        "private": True,
        "user_id": 43000123,
        "ticket_id": ticket_id,
        "attachments": [],
        "created_at": "2026-12-05T10:00:01Z",
        "updated_at": "2026-12-05T10:00:01Z",
    }


EVIL = '<a href="https://evil.example/approve">Approve</a><img src="https://evil.example/p.gif">'


# --- the connectors ------------------------------------------------------------------------------


def test_zendesk_ticket_with_the_customer_as_requester_and_no_group(http, zendesk_installation):
    http.post(f"{ZENDESK_BASE}/api/v2/tickets.json", status=201, json=zendesk_ticket_created(9301))
    ticket_id = get_connector("zendesk").create_ticket(
        zendesk_installation,
        subject="Refund request",
        body="We received your refund request.",
        requester_email="billing@acme.example",
        requester_name="Acme Corp",
        idempotency_key="customer-ticket-abc",
    )
    assert ticket_id == "9301"
    assert len(http.calls) == 1  # no group lookup without a group
    request = http.calls[0].request
    sent = json.loads(request.body)["ticket"]
    assert sent["requester"] == {"email": "billing@acme.example", "name": "Acme Corp"}
    # the description is the customer's to read: a public first comment
    assert sent["comment"] == {"body": "We received your refund request.", "public": True}
    assert "group_id" not in sent
    assert request.headers["Idempotency-Key"] == "customer-ticket-abc"


def test_zendesk_ticket_without_requester_is_unchanged(http, zendesk_installation):
    http.post(f"{ZENDESK_BASE}/api/v2/tickets.json", status=201, json=zendesk_ticket_created(9302))
    get_connector("zendesk").create_ticket(zendesk_installation, subject="s", body="b", group="77")
    request = http.calls[0].request
    sent = json.loads(request.body)["ticket"]
    assert sent["group_id"] == 77 and "requester" not in sent
    assert sent["comment"] == {"body": "b", "public": False}  # an internal ticket
    assert "Idempotency-Key" not in request.headers


def test_freshdesk_ticket_with_the_customer_as_requester(http, freshdesk_installation):
    http.post(f"{FRESHDESK_BASE}/api/v2/tickets", status=201, json=freshdesk_ticket_created(9401))
    ticket_id = get_connector("freshdesk").create_ticket(
        freshdesk_installation,
        subject="Refund request",
        body="Your request:\n" + EVIL,
        requester_email="billing@acme.example",
        requester_name="Acme Corp",
        idempotency_key="customer-ticket-abc",
    )
    assert ticket_id == "9401"
    assert len(http.calls) == 1
    sent = json.loads(http.calls[0].request.body)
    assert sent["email"] == "billing@acme.example" and sent["name"] == "Acme Corp"
    assert "group_id" not in sent
    # ``description`` is HTML: the text is escaped and its line breaks kept
    assert "<a " not in sent["description"] and "<img" not in sent["description"]
    assert sent["description"].startswith("Your request:<br>")
    assert "&lt;img src=&quot;https://evil.example/p.gif&quot;&gt;" in sent["description"]
    # marked for a retry to find it
    assert sent["tags"][0] == "billing_desk" and sent["tags"][1].startswith("bd-")
    assert len(sent["tags"][1]) <= 32


def test_freshdesk_ticket_without_requester_uses_the_api_email(http, freshdesk_installation):
    http.post(f"{FRESHDESK_BASE}/api/v2/tickets", status=201, json=freshdesk_ticket_created(9402))
    get_connector("freshdesk").create_ticket(
        freshdesk_installation, subject="s", body="b", group="43000700"
    )
    sent = json.loads(http.calls[0].request.body)
    assert sent["email"] == "admin@acme.example" and "name" not in sent
    assert sent["group_id"] == 43000700
    assert sent["tags"] == ["billing_desk"]


def test_freshdesk_notes_are_escaped_html(http, freshdesk_installation):
    http.post(
        f"{FRESHDESK_BASE}/api/v2/tickets/9401/notes", status=201, json=freshdesk_note_created(9401)
    )
    get_connector("freshdesk").post_internal_note(freshdesk_installation, "9401", f"a\n{EVIL}")
    sent = json.loads(http.calls[0].request.body)
    assert sent["private"] is True
    assert sent["body"].startswith("a<br>") and "<img" not in sent["body"]


def test_freshdesk_finds_a_ticket_by_its_idempotency_tag(http, freshdesk_installation):
    connector = get_connector("freshdesk")
    http.post(f"{FRESHDESK_BASE}/api/v2/tickets", status=201, json=freshdesk_ticket_created(9403))
    connector.create_ticket(
        freshdesk_installation,
        subject="s",
        body="b",
        requester_email="billing@acme.example",
        idempotency_key="customer-ticket-k1",
    )
    tag = json.loads(http.calls[0].request.body)["tags"][1]
    found = freshdesk_ticket_created(9403) | {"tags": ["billing_desk", tag]}
    http.get(f"{FRESHDESK_BASE}/api/v2/search/tickets", json={"results": [found], "total": 1})
    assert connector.find_ticket(freshdesk_installation, idempotency_key="customer-ticket-k1") == (
        "9403"
    )
    query = parse_qs(urlparse(http.calls[1].request.url).query)["query"]
    assert query == [f"\"tag:'{tag}'\""]


def test_demo_ticket_records_the_requester(workspace):
    installation = workspace.installation_links.get().installation
    connector = get_connector("demo")
    ticket_id = connector.create_ticket(
        installation,
        subject="Refund request",
        body="We received your request.",
        requester_email="billing@acme.example",
        requester_name="Acme Corp",
        idempotency_key="customer-ticket-k2",
    )
    ticket = DemoTicket.objects.get(installation=installation, ticket_id=ticket_id)
    assert ticket.requester_email == "billing@acme.example" and ticket.group == ""
    comment = DemoTicketComment.objects.get(installation=installation, ticket_id=ticket_id)
    assert comment.body == "We received your request." and comment.public
    assert connector.find_ticket(installation, idempotency_key="customer-ticket-k2") == ticket_id
    assert connector.find_ticket(installation, idempotency_key="customer-ticket-other") is None


def test_demo_ticket_without_requester_is_internal(workspace):
    installation = workspace.installation_links.get().installation
    ticket_id = get_connector("demo").create_ticket(installation, subject="CSM", body="Outreach")
    comment = DemoTicketComment.objects.get(installation=installation, ticket_id=ticket_id)
    assert not comment.public


# --- through the outbox --------------------------------------------------------------------------


@pytest.fixture
def seen():
    """What the outbox told the ticket's source: (source_id, reference)."""
    calls: list[tuple[str, str]] = []
    customer_ticket_source_register(
        source="test_source", on_created=lambda sid, ref: calls.append((sid, ref))
    )
    return calls


@pytest.fixture
def failed():
    """(source_id, code) for each ticket the outbox gave up on."""
    calls: list[tuple[str, str]] = []
    customer_ticket_source_register(
        source="test_source",
        on_created=lambda sid, ref: None,
        on_failed=lambda sid, code: calls.append((sid, code)),
    )
    return calls


INVESTIGATION = (
    "Charge ch_1 · $49.00\nAbove the self-service limit\nApprove: https://desk/approvals/7"
)
DESCRIPTION = "You asked for a refund of $49.00 on ch_1.\nAn agent will reply by email."


def _enqueue(workspace, installation=None, source_id="req-1", internal_note=INVESTIGATION):
    return customer_ticket_enqueue(
        workspace=workspace,
        customer_id="cus_acme",
        subject="Refund request: ch_1",
        body=DESCRIPTION,
        internal_note=internal_note,
        requester_email="billing@acme.example",
        requester_name="Acme Corp",
        source="test_source",
        source_id=source_id,
        installation=installation,
    )


def _only_demo_cannot_open(monkeypatch):
    from helpdesk_connectors.demo.connector import DemoConnector

    monkeypatch.setattr(DemoConnector, "features", DemoConnector.features - {"create_ticket"})


def _posts(http, suffix):
    return [c for c in http.calls if c.request.method == "POST" and c.request.url.endswith(suffix)]


def test_enqueue_twice_is_one_message(workspace):
    first = _enqueue(workspace)
    again = _enqueue(workspace)
    assert first.pk == again.pk
    assert OutboxMessage.objects.filter(kind=OutboxMessage.Kind.CUSTOMER_TICKET).count() == 1
    assert first.payload["requester_email"] == "billing@acme.example"
    assert customer_ticket_state(workspace=workspace, source="test_source", source_id="req-1") == (
        "pending"
    )


def test_outbox_opens_the_ticket_on_zendesk(http, workspace, zendesk_installation, seen):
    http.post(f"{ZENDESK_BASE}/api/v2/tickets.json", status=201, json=zendesk_ticket_created(9501))
    http.put(f"{ZENDESK_BASE}/api/v2/tickets/9501.json", json=zendesk_comment_added(9501))
    message = _enqueue(workspace, installation=zendesk_installation)
    assert outbox_message_deliver(message_id=message.pk, first=True) == "done"
    message.refresh_from_db()
    assert message.result_ref == "zendesk:9501"
    assert seen == [("req-1", "zendesk:9501")]
    create = http.calls[0].request
    sent = json.loads(create.body)["ticket"]
    assert sent["requester"]["email"] == "billing@acme.example"
    # the customer reads the description; the investigation is not in it
    assert sent["comment"] == {"body": DESCRIPTION, "public": True}
    assert create.headers["Idempotency-Key"] == f"customer-ticket-{message.pk}"
    # the investigation: a private comment on the new ticket, with the marker line
    note = json.loads(http.calls[1].request.body)["ticket"]["comment"]
    assert note["public"] is False
    assert note["body"].startswith(INVESTIGATION)
    assert f"billing-desk: customer-ticket {message.pk}" in note["body"]
    assert customer_ticket_state(workspace=workspace, source="test_source", source_id="req-1") == (
        "opened"
    )


def test_a_zendesk_retry_after_a_timeout_sends_the_same_idempotency_key(
    http, workspace, zendesk_installation, seen
):
    url = f"{ZENDESK_BASE}/api/v2/tickets.json"
    http.post(url, body=requests.exceptions.ReadTimeout("read timed out"))
    message = _enqueue(workspace, installation=zendesk_installation)
    assert outbox_message_deliver(message_id=message.pk, first=True) == "pending"
    message.refresh_from_db()
    assert message.outcome_unknown  # it may have landed
    # Zendesk answers the repeat with the first ticket (``x-idempotency-lookup: hit``)
    http.replace(
        "POST",
        url,
        status=201,
        json=zendesk_ticket_created(9502),
        headers={"x-idempotency-lookup": "hit"},
    )
    http.put(f"{ZENDESK_BASE}/api/v2/tickets/9502.json", json=zendesk_comment_added(9502))
    assert outbox_message_deliver(message_id=message.pk, now=message.next_attempt_at) == "done"
    keys = [c.request.headers.get("Idempotency-Key") for c in _posts(http, "/tickets.json")]
    assert keys == [f"customer-ticket-{message.pk}"] * 2
    assert seen == [("req-1", "zendesk:9502")]


def test_outbox_opens_the_ticket_on_freshdesk(http, workspace, freshdesk_installation, seen):
    http.post(f"{FRESHDESK_BASE}/api/v2/tickets", status=201, json=freshdesk_ticket_created(9601))
    http.post(
        f"{FRESHDESK_BASE}/api/v2/tickets/9601/notes", status=201, json=freshdesk_note_created(9601)
    )
    message = customer_ticket_enqueue(
        workspace=workspace,
        customer_id="cus_acme",
        subject="Refund request: ch_1",
        body=f"Your comment:\n{EVIL}",
        internal_note=f"Comment: {EVIL}\nApprove: https://desk/approvals/7",
        requester_email="billing@acme.example",
        requester_name="Acme Corp",
        source="test_source",
        source_id="req-1",
        installation=freshdesk_installation,
    )
    assert outbox_message_deliver(message_id=message.pk, first=True) == "done"
    assert seen == [("req-1", "freshdesk:9601")]
    ticket = json.loads(http.calls[0].request.body)
    assert ticket["email"] == "billing@acme.example"
    # the customer's HTML is text, its lines kept; nothing of the investigation is in it
    assert ticket["description"].startswith("Your comment:<br>")
    assert "<img" not in ticket["description"] and "<a " not in ticket["description"]
    assert "approvals" not in ticket["description"]
    note = json.loads(http.calls[1].request.body)
    assert note["private"] is True
    assert "https://desk/approvals/7" in note["body"] and "<img" not in note["body"]
    assert f"billing-desk: customer-ticket {message.pk}" in note["body"]


def test_a_freshdesk_retry_after_a_timeout_finds_the_ticket_by_its_tag(
    http, workspace, freshdesk_installation, seen
):
    http.post(
        f"{FRESHDESK_BASE}/api/v2/tickets", body=requests.exceptions.ReadTimeout("read timed out")
    )
    message = _enqueue(workspace, installation=freshdesk_installation)
    assert outbox_message_deliver(message_id=message.pk, first=True) == "pending"
    tag = json.loads(http.calls[0].request.body)["tags"][1]
    # the ticket did land: the search finds it, so the retry opens no second one
    found = freshdesk_ticket_created(9602) | {"tags": ["billing_desk", tag]}
    http.get(f"{FRESHDESK_BASE}/api/v2/search/tickets", json={"results": [found], "total": 1})
    http.post(
        f"{FRESHDESK_BASE}/api/v2/tickets/9602/notes", status=201, json=freshdesk_note_created(9602)
    )
    message.refresh_from_db()
    assert outbox_message_deliver(message_id=message.pk, now=message.next_attempt_at) == "done"
    assert len(_posts(http, "/api/v2/tickets")) == 1
    assert seen == [("req-1", "freshdesk:9602")]


def test_a_crash_before_the_reference_is_stored_looks_before_creating_again(
    http, workspace, freshdesk_installation, seen, monkeypatch
):
    # given a ticket Freshdesk created, and a worker that dies before its reference is stored
    from billing_app.services import customer_tickets

    http.post(f"{FRESHDESK_BASE}/api/v2/tickets", status=201, json=freshdesk_ticket_created(9604))
    real_open = customer_tickets._ticket_open

    def open_then_crash(message, description):
        real_open(message, description)
        raise RuntimeError("worker lost before the reference was stored")

    monkeypatch.setattr(customer_tickets, "_ticket_open", open_then_crash)
    message = _enqueue(workspace, installation=freshdesk_installation)
    assert outbox_message_deliver(message_id=message.pk, first=True) == "pending"
    message.refresh_from_db()
    # then the row still says the outcome is unknown, so the retry searches first
    assert message.outcome_unknown
    assert "ticket" not in message.payload
    monkeypatch.setattr(customer_tickets, "_ticket_open", real_open)
    tag = json.loads(http.calls[0].request.body)["tags"][1]
    found = freshdesk_ticket_created(9604) | {"tags": ["billing_desk", tag]}
    http.get(f"{FRESHDESK_BASE}/api/v2/search/tickets", json={"results": [found], "total": 1})
    http.post(
        f"{FRESHDESK_BASE}/api/v2/tickets/9604/notes", status=201, json=freshdesk_note_created(9604)
    )
    assert outbox_message_deliver(message_id=message.pk, now=message.next_attempt_at) == "done"
    assert len(_posts(http, "/api/v2/tickets")) == 1
    assert seen == [("req-1", "freshdesk:9604")]
    message.refresh_from_db()
    assert not message.outcome_unknown


def test_a_failed_search_after_an_unknown_outcome_is_retried_not_created_again(
    http, workspace, freshdesk_installation, seen
):
    # given a create that timed out (it may have landed) and a search the token may not use
    http.post(
        f"{FRESHDESK_BASE}/api/v2/tickets", body=requests.exceptions.ReadTimeout("read timed out")
    )
    message = _enqueue(workspace, installation=freshdesk_installation)
    assert outbox_message_deliver(message_id=message.pk, first=True) == "pending"
    http.get(
        f"{FRESHDESK_BASE}/api/v2/search/tickets",
        status=403,
        json={"code": "access_denied", "message": "You are not authorized to perform this action."},
    )
    message.refresh_from_db()
    # when it is retried, then it waits for a later try: no blind second ticket
    assert outbox_message_deliver(message_id=message.pk, now=message.next_attempt_at) == "pending"
    assert len(_posts(http, "/api/v2/tickets")) == 1
    message.refresh_from_db()
    assert message.outcome_unknown and seen == []


def test_a_failed_note_is_retried_without_a_second_ticket(
    http, workspace, freshdesk_installation, seen
):
    http.post(f"{FRESHDESK_BASE}/api/v2/tickets", status=201, json=freshdesk_ticket_created(9603))
    notes_url = f"{FRESHDESK_BASE}/api/v2/tickets/9603/notes"
    http.post(notes_url, status=503, json={"description": "unavailable"})
    message = _enqueue(workspace, installation=freshdesk_installation)
    assert outbox_message_deliver(message_id=message.pk, first=True) == "pending"
    assert seen == [("req-1", "freshdesk:9603")]  # the ticket exists: its source knows
    http.get(f"{FRESHDESK_BASE}/api/v2/tickets/9603/conversations", json=[])
    http.replace("POST", notes_url, status=201, json=freshdesk_note_created(9603))
    message.refresh_from_db()
    assert outbox_message_deliver(message_id=message.pk, now=message.next_attempt_at) == "done"
    assert len(_posts(http, "/api/v2/tickets")) == 1
    assert len(_posts(http, "/notes")) == 2


def test_outbox_opens_the_ticket_on_the_demo_helpdesk(workspace, seen):
    message = _enqueue(workspace)
    assert outbox_message_deliver(message_id=message.pk, first=True) == "done"
    ticket = DemoTicket.objects.get()
    assert seen == [("req-1", f"demo:{ticket.ticket_id}")]
    assert ticket.requester_email == "billing@acme.example"
    description, note = DemoTicketComment.objects.filter(ticket_id=ticket.ticket_id)
    assert (description.body, description.public) == (DESCRIPTION, True)
    assert note.body.startswith(INVESTIGATION) and not note.public


def test_the_older_form_keeps_the_investigation_private(workspace, seen):
    """A caller that passes only ``body`` (the investigation) gets it as the private note
    and a neutral description the customer may read."""
    message = customer_ticket_enqueue(
        workspace=workspace,
        customer_id="cus_acme",
        subject="Refund request: ch_1",
        body=INVESTIGATION,
        requester_email="billing@acme.example",
        requester_name="Acme Corp",
        source="test_source",
        source_id="req-old",
    )
    assert outbox_message_deliver(message_id=message.pk, first=True) == "done"
    description, note = DemoTicketComment.objects.all()
    assert description.public and "approvals" not in description.body
    assert description.body.startswith("Thank you for your message.")
    assert note.body.startswith(INVESTIGATION) and not note.public


def test_a_helpdesk_outage_is_retried_then_delivered(http, workspace, zendesk_installation, seen):
    http.post(f"{ZENDESK_BASE}/api/v2/tickets.json", status=503, json={"error": "unavailable"})
    message = _enqueue(workspace, installation=zendesk_installation)
    assert outbox_message_deliver(message_id=message.pk, first=True) == "pending"
    assert seen == [] and DemoTicket.objects.count() == 0  # not opened elsewhere meanwhile
    http.replace(
        "POST", f"{ZENDESK_BASE}/api/v2/tickets.json", status=201, json=zendesk_ticket_created(7)
    )
    http.put(f"{ZENDESK_BASE}/api/v2/tickets/7.json", json=zendesk_comment_added(7))
    message.refresh_from_db()
    assert outbox_message_deliver(message_id=message.pk, now=message.next_attempt_at) == "done"
    assert seen == [("req-1", "zendesk:7")]


def test_a_refusing_helpdesk_falls_back_to_the_next(http, workspace, zendesk_installation, seen):
    http.post(f"{ZENDESK_BASE}/api/v2/tickets.json", status=422, json={"error": "RecordInvalid"})
    message = _enqueue(workspace, installation=zendesk_installation)
    assert outbox_message_deliver(message_id=message.pk, first=True) == "done"
    assert seen[0][1].startswith("demo:")


def test_a_rejected_token_falls_back_to_the_next(http, workspace, zendesk_installation, seen):
    http.post(f"{ZENDESK_BASE}/api/v2/tickets.json", status=401, json={"error": "Couldn't auth"})
    message = _enqueue(workspace, installation=zendesk_installation)
    assert outbox_message_deliver(message_id=message.pk, first=True) == "done"
    assert seen[0][1].startswith("demo:")


def test_a_rejected_token_is_retried_until_an_admin_fixes_it(
    http, workspace, zendesk_installation, seen, monkeypatch
):
    _only_demo_cannot_open(monkeypatch)
    url = f"{ZENDESK_BASE}/api/v2/tickets.json"
    http.post(url, status=401, json={"error": "Couldn't authenticate you"})
    message = _enqueue(workspace, installation=zendesk_installation)
    assert outbox_message_deliver(message_id=message.pk, first=True) == "pending"
    message.refresh_from_db()
    assert message.last_error.startswith("helpdesk_unauthorized")
    # the admin rotates the token; the next attempt opens it
    http.replace("POST", url, status=201, json=zendesk_ticket_created(9701))
    http.put(f"{ZENDESK_BASE}/api/v2/tickets/9701.json", json=zendesk_comment_added(9701))
    assert outbox_message_deliver(message_id=message.pk, now=message.next_attempt_at) == "done"
    assert seen == [("req-1", "zendesk:9701")]


def test_a_token_never_fixed_fails_visibly_after_the_last_attempt(
    http, workspace, zendesk_installation, failed, monkeypatch, caplog
):
    _only_demo_cannot_open(monkeypatch)
    http.post(f"{ZENDESK_BASE}/api/v2/tickets.json", status=403, json={"error": "Forbidden"})
    message = _enqueue(workspace, installation=zendesk_installation)
    states = [outbox_message_deliver(message_id=message.pk, first=True)]
    while states[-1] == "pending":
        message.refresh_from_db()
        states.append(outbox_message_deliver(message_id=message.pk, now=message.next_attempt_at))
    assert states == ["pending"] * (MAX_ATTEMPTS - 1) + ["failed"]
    assert failed == [("req-1", "helpdesk_forbidden")]
    assert any(
        r.levelno == logging.ERROR and "NOT opened" in r.getMessage() for r in caplog.records
    )


def test_no_helpdesk_that_can_open_tickets_fails_the_message(
    workspace, failed, monkeypatch, caplog
):
    _only_demo_cannot_open(monkeypatch)
    message = _enqueue(workspace)
    assert outbox_message_deliver(message_id=message.pk, first=True) == "failed"
    message.refresh_from_db()
    assert message.status == "failed" and message.result_ref == ""
    assert message.last_error.startswith("customer_ticket_not_opened")
    assert failed == [("req-1", "customer_ticket_not_opened")]
    assert any(
        r.levelno == logging.ERROR and "NOT opened" in r.getMessage() for r in caplog.records
    )
    assert customer_ticket_state(workspace=workspace, source="test_source", source_id="req-1") == (
        "failed"
    )
    assert outbox_backlog()["failed"] == 1  # what /readyz reports


def test_every_helpdesk_refusing_fails_the_message(
    http, workspace, zendesk_installation, failed, monkeypatch
):
    _only_demo_cannot_open(monkeypatch)
    http.post(f"{ZENDESK_BASE}/api/v2/tickets.json", status=422, json={"error": "RecordInvalid"})
    message = _enqueue(workspace, installation=zendesk_installation)
    assert outbox_message_deliver(message_id=message.pk, first=True) == "failed"
    assert failed == [("req-1", "customer_ticket_not_opened")]


def test_create_ticket_errors_are_helpdesk_errors(http, zendesk_installation):
    http.post(f"{ZENDESK_BASE}/api/v2/tickets.json", status=401, json={"error": "Couldn't auth"})
    with pytest.raises(HelpdeskApiError):
        get_connector("zendesk").create_ticket(
            zendesk_installation, subject="s", body="b", requester_email="a@b.example"
        )
