"""``create_ticket`` with the customer as the requester (issue 18), on every connector, and
through the ``customer_ticket`` outbox kind (``billing_app.services.customer_tickets``).

HTTP to Zendesk and Freshdesk is intercepted with ``responses``; the answers are shaped like
Zendesk Support API v2's ``POST /api/v2/tickets.json`` and Freshdesk API v2's
``POST /api/v2/tickets``.
"""

from __future__ import annotations

import json

import pytest

from billing_app.models import OutboxMessage
from billing_app.services.customer_tickets import (
    customer_ticket_enqueue,
    customer_ticket_source_register,
)
from billing_app.services.outbox import outbox_message_deliver
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


# --- the connectors ------------------------------------------------------------------------------


def test_zendesk_ticket_with_the_customer_as_requester_and_no_group(http, zendesk_installation):
    http.post(f"{ZENDESK_BASE}/api/v2/tickets.json", status=201, json=zendesk_ticket_created(9301))
    ticket_id = get_connector("zendesk").create_ticket(
        zendesk_installation,
        subject="Refund request",
        body="Investigation",
        requester_email="billing@acme.example",
        requester_name="Acme Corp",
    )
    assert ticket_id == "9301"
    assert len(http.calls) == 1  # no group lookup without a group
    sent = json.loads(http.calls[0].request.body)["ticket"]
    assert sent["requester"] == {"email": "billing@acme.example", "name": "Acme Corp"}
    assert sent["comment"] == {"body": "Investigation", "public": False}
    assert "group_id" not in sent


def test_zendesk_ticket_without_requester_is_unchanged(http, zendesk_installation):
    http.post(f"{ZENDESK_BASE}/api/v2/tickets.json", status=201, json=zendesk_ticket_created(9302))
    get_connector("zendesk").create_ticket(zendesk_installation, subject="s", body="b", group="77")
    sent = json.loads(http.calls[0].request.body)["ticket"]
    assert sent["group_id"] == 77 and "requester" not in sent


def test_freshdesk_ticket_with_the_customer_as_requester(http, freshdesk_installation):
    http.post(f"{FRESHDESK_BASE}/api/v2/tickets", status=201, json=freshdesk_ticket_created(9401))
    ticket_id = get_connector("freshdesk").create_ticket(
        freshdesk_installation,
        subject="Refund request",
        body="Investigation",
        requester_email="billing@acme.example",
        requester_name="Acme Corp",
    )
    assert ticket_id == "9401"
    assert len(http.calls) == 1
    sent = json.loads(http.calls[0].request.body)
    assert sent["email"] == "billing@acme.example" and sent["name"] == "Acme Corp"
    assert "group_id" not in sent


def test_freshdesk_ticket_without_requester_uses_the_api_email(http, freshdesk_installation):
    http.post(f"{FRESHDESK_BASE}/api/v2/tickets", status=201, json=freshdesk_ticket_created(9402))
    get_connector("freshdesk").create_ticket(
        freshdesk_installation, subject="s", body="b", group="43000700"
    )
    sent = json.loads(http.calls[0].request.body)
    assert sent["email"] == "admin@acme.example" and "name" not in sent
    assert sent["group_id"] == 43000700


def test_demo_ticket_records_the_requester(workspace):
    installation = workspace.installation_links.get().installation
    ticket_id = get_connector("demo").create_ticket(
        installation,
        subject="Refund request",
        body="Investigation",
        requester_email="billing@acme.example",
        requester_name="Acme Corp",
    )
    ticket = DemoTicket.objects.get(installation=installation, ticket_id=ticket_id)
    assert ticket.requester_email == "billing@acme.example" and ticket.group == ""
    comment = DemoTicketComment.objects.get(installation=installation, ticket_id=ticket_id)
    assert comment.body == "Investigation" and not comment.public


# --- through the outbox --------------------------------------------------------------------------


@pytest.fixture
def seen():
    """What the outbox told the ticket's source: (source_id, reference)."""
    calls: list[tuple[str, str]] = []
    customer_ticket_source_register(
        source="test_source", on_created=lambda sid, ref: calls.append((sid, ref))
    )
    return calls


def _enqueue(workspace, installation=None, source_id="req-1"):
    return customer_ticket_enqueue(
        workspace=workspace,
        customer_id="cus_acme",
        subject="Refund request: ch_1",
        body="Charge ch_1 · $49.00",
        requester_email="billing@acme.example",
        requester_name="Acme Corp",
        source="test_source",
        source_id=source_id,
        installation=installation,
    )


def test_enqueue_twice_is_one_message(workspace):
    first = _enqueue(workspace)
    again = _enqueue(workspace)
    assert first.pk == again.pk
    assert OutboxMessage.objects.filter(kind=OutboxMessage.Kind.CUSTOMER_TICKET).count() == 1
    assert first.payload["requester_email"] == "billing@acme.example"


def test_outbox_opens_the_ticket_on_zendesk(http, workspace, zendesk_installation, seen):
    http.post(f"{ZENDESK_BASE}/api/v2/tickets.json", status=201, json=zendesk_ticket_created(9501))
    message = _enqueue(workspace, installation=zendesk_installation)
    assert outbox_message_deliver(message_id=message.pk, first=True) == "done"
    message.refresh_from_db()
    assert message.result_ref == "zendesk:9501"
    assert seen == [("req-1", "zendesk:9501")]
    sent = json.loads(http.calls[0].request.body)["ticket"]
    assert sent["requester"]["email"] == "billing@acme.example"
    assert f"billing-desk: customer-ticket {message.pk}" in sent["comment"]["body"]


def test_outbox_opens_the_ticket_on_freshdesk(http, workspace, freshdesk_installation, seen):
    http.post(f"{FRESHDESK_BASE}/api/v2/tickets", status=201, json=freshdesk_ticket_created(9601))
    message = _enqueue(workspace, installation=freshdesk_installation)
    assert outbox_message_deliver(message_id=message.pk, first=True) == "done"
    assert seen == [("req-1", "freshdesk:9601")]
    assert json.loads(http.calls[0].request.body)["email"] == "billing@acme.example"


def test_outbox_opens_the_ticket_on_the_demo_helpdesk(workspace, seen):
    message = _enqueue(workspace)
    assert outbox_message_deliver(message_id=message.pk, first=True) == "done"
    ticket = DemoTicket.objects.get()
    assert seen == [("req-1", f"demo:{ticket.ticket_id}")]
    assert ticket.requester_email == "billing@acme.example"


def test_a_helpdesk_outage_is_retried_then_delivered(http, workspace, zendesk_installation, seen):
    http.post(f"{ZENDESK_BASE}/api/v2/tickets.json", status=503, json={"error": "unavailable"})
    message = _enqueue(workspace, installation=zendesk_installation)
    assert outbox_message_deliver(message_id=message.pk, first=True) == "pending"
    assert seen == [] and DemoTicket.objects.count() == 0  # not opened elsewhere meanwhile
    http.replace(
        "POST", f"{ZENDESK_BASE}/api/v2/tickets.json", status=201, json=zendesk_ticket_created(7)
    )
    message.refresh_from_db()
    assert outbox_message_deliver(message_id=message.pk, now=message.next_attempt_at) == "done"
    assert seen == [("req-1", "zendesk:7")]


def test_a_refusing_helpdesk_falls_back_to_the_next(http, workspace, zendesk_installation, seen):
    http.post(f"{ZENDESK_BASE}/api/v2/tickets.json", status=422, json={"error": "RecordInvalid"})
    message = _enqueue(workspace, installation=zendesk_installation)
    assert outbox_message_deliver(message_id=message.pk, first=True) == "done"
    assert seen[0][1].startswith("demo:")


def test_a_connector_that_cannot_open_tickets_is_skipped(workspace, seen, monkeypatch):
    from helpdesk_connectors.demo.connector import DemoConnector

    monkeypatch.setattr(DemoConnector, "features", DemoConnector.features - {"create_ticket"})
    message = _enqueue(workspace)
    assert outbox_message_deliver(message_id=message.pk, first=True) == "done"
    assert seen == [("req-1", "")]


def test_create_ticket_errors_are_helpdesk_errors(http, zendesk_installation):
    http.post(f"{ZENDESK_BASE}/api/v2/tickets.json", status=401, json={"error": "Couldn't auth"})
    with pytest.raises(HelpdeskApiError):
        get_connector("zendesk").create_ticket(
            zendesk_installation, subject="s", body="b", requester_email="a@b.example"
        )
