"""Internal notes in the acting agent's language (issue 16).

The agent's language comes from their helpdesk profile (``AgentProfile.locale``, signed
into the session token and activated for each request). A note is written later, by the
outbox, whatever language is active then: the outbox message records the language the
action was taken in (``payload["locale"]``) and the note is written under it — money and
dates formatted for it. A message recorded before notes had a language is written in
``settings.LANGUAGE_CODE``.
"""

from __future__ import annotations

import itertools
from datetime import timedelta

import pytest
from django.utils import timezone, translation
from rest_framework.test import APIClient

from billing_app.catalog import Role
from billing_app.models import BillingAction, OutboxMessage
from billing_app.services import notes
from billing_app.services.outbox import outbox_redrive
from helpdesk_connectors.base import HelpdeskApiError
from helpdesk_connectors.models import DemoTicketComment

from .actions_support import account_seed, next_key
from .locale_support import agent_speaking

_agents = itertools.count(1)


def agent(workspace, role: Role, *, locale: str, name: str = "Jana Weber") -> APIClient:
    """An API client for an agent whose helpdesk profile is in ``locale``."""
    return agent_speaking(
        workspace, role, locale, agent_id=f"de-agent-{next(_agents)}", name=name, connector="demo"
    )


def credit(client, amount: int = 5000, ticket: str = "DE-1"):
    response = client.post(
        "/api/v1/actions/",
        {
            "kind": "apply_credit",
            "customer_id": "cus_acme",
            "ticket_id": ticket,
            "params": {"amount": amount, "currency": "USD", "description": "Ausfall im März"},
            "idempotency_key": next_key("de-note"),
        },
        format="json",
    )
    assert response.status_code == 201, response.json()
    return response.json()


def note_lines(ticket: str) -> list[str]:
    comment = DemoTicketComment.objects.get(ticket_id=ticket, public=False)
    return comment.body.splitlines()


@pytest.fixture
def acme(workspace):
    return account_seed(workspace)


def test_a_german_agents_action_posts_a_german_note(
    workspace, acme, django_capture_on_commit_callbacks
):
    # given an L2 agent whose helpdesk profile is German
    client = agent(workspace, Role.L2, locale="de-DE")

    # when they apply a $50.00 credit on a ticket, and the outbox delivers the note while
    # English is active (as a worker would: the request's language is long gone)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        done = credit(client, ticket="DE-1")
    assert done["status"] == "succeeded"
    message = OutboxMessage.objects.get(kind=OutboxMessage.Kind.ACTION_NOTE)
    assert message.payload == {"locale": "de"}
    with translation.override("en"):
        for callback in callbacks:
            callback()

    # then the internal note is German, its money German-formatted
    lines = note_lines("DE-1")
    action = BillingAction.objects.get(pk=done["id"])
    assert lines[0] == "Billing Desk · Gutschrift erteilen: Erledigt"
    assert "Von: Jana Weber (L2 Agent)" in lines
    assert "Kunde: Acme Corp (billing@acme.example)" in lines
    assert "Gutschrift: 50,00\xa0$" in lines
    assert "Beschreibung: Ausfall im März" in lines
    assert "Richtlinie: 50,00\xa0$ liegt im Limit für L2 Agent (unter 100,00\xa0$)" in lines
    assert f"Referenz: {action.reference}" in lines
    # the marker line the outbox dedupes by stays as it is in every language
    assert lines[-1] == f"{notes.NOTE_MARKER_PREFIX} {message.pk}"
    english = "\n".join(lines[:-1])
    for word in ("Customer:", "By:", "Reference:", "Done", "$50.00", "Apply credit"):
        assert word not in english


def test_the_agents_own_language_decides_not_the_workers(
    workspace, acme, django_capture_on_commit_callbacks
):
    # given an English agent, and a worker that happens to run in German
    client = agent(workspace, Role.L2, locale="en-US", name="Sam Lee")
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        credit(client, ticket="EN-1")
    with translation.override("de"):
        for callback in callbacks:
            callback()

    # then the note is English, byte for byte as before
    lines = note_lines("EN-1")
    assert lines[0] == "Billing Desk · Apply credit: Done"
    assert "By: Sam Lee (L2 Agent)" in lines
    assert "Credit: $50.00" in lines
    assert "Policy: $50.00 is within the L2 Agent limit (below $100.00)" in lines


def test_a_retried_delivery_keeps_the_language(
    workspace, acme, django_capture_on_commit_callbacks, monkeypatch
):
    # given the helpdesk refuses the first attempt (a retryable 503)
    real_post = notes._note_post
    attempts = []

    def flaky(**kwargs):
        attempts.append(kwargs["body"])
        if len(attempts) == 1:
            raise HelpdeskApiError(
                "Service unavailable", code="helpdesk_unavailable", retryable=True, http_status=503
            )
        return real_post(**kwargs)

    monkeypatch.setattr(notes, "_note_post", flaky)
    client = agent(workspace, Role.L2, locale="de")

    # when a German agent's credit is recorded and delivered, then re-driven later in English
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        done = credit(client, ticket="DE-2")
    with translation.override("en"):
        for callback in callbacks:
            callback()
        assert not DemoTicketComment.objects.filter(ticket_id="DE-2").exists()
        outbox_redrive(now=timezone.now() + timedelta(hours=2))

    # then the second attempt posted the German note, written under the recorded language
    assert len(attempts) == 2 and attempts[0] == attempts[1]  # the same German text twice
    lines = note_lines("DE-2")
    assert lines[0] == "Billing Desk · Gutschrift erteilen: Erledigt"
    assert "Gutschrift: 50,00\xa0$" in lines
    action = BillingAction.objects.get(pk=done["id"])
    assert (action.note_status, action.note_attempts) == ("posted", 2)


def test_an_old_payload_without_a_locale_is_written_in_the_default_language(
    workspace, acme, django_capture_on_commit_callbacks
):
    # given a note recorded before notes had a language (its payload names none)
    client = agent(workspace, Role.L2, locale="de")
    with django_capture_on_commit_callbacks(execute=False):
        credit(client, ticket="OLD-1")
    message = OutboxMessage.objects.get(kind=OutboxMessage.Kind.ACTION_NOTE)
    OutboxMessage.objects.filter(pk=message.pk).update(payload={})
    message.refresh_from_db()

    # when it is delivered while German happens to be active
    with translation.override("de"):
        notes.action_note_deliver(message)

    # then it is English (settings.LANGUAGE_CODE)
    lines = note_lines("OLD-1")
    assert lines[0] == "Billing Desk · Apply credit: Done"
    assert "Credit: $50.00" in lines


def test_a_german_agents_approval_request_note_is_german(
    workspace, acme, django_capture_on_commit_callbacks
):
    # given a German Billing Specialist asking for a credit that needs approval
    client = agent(workspace, Role.SPECIALIST, locale="de")
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = client.post(
            "/api/v1/actions/",
            {
                "kind": "apply_credit",
                "customer_id": "cus_acme",
                "ticket_id": "DE-3",
                "params": {"amount": 60000, "currency": "USD"},
                "idempotency_key": next_key("de-approval"),
            },
            format="json",
        )
    assert response.json().get("status") == "pending_approval", response.json()
    with translation.override("en"):
        for callback in callbacks:
            callback()

    # then the ticket's notes say so in German (the request's and the action's)
    bodies = [c.body for c in DemoTicketComment.objects.filter(ticket_id="DE-3", public=False)]
    assert bodies, "no note was posted"
    text = "\n".join(bodies)
    lines = text.splitlines()
    assert "Billing Desk · Genehmigung angefragt: Gutschrift erteilen" in lines
    assert "Angefragt von: Jana Weber (Billing Specialist)" in lines
    assert "Gutschrift: 600,00\xa0$" in lines
    assert (
        "Genehmigung nötig, weil: 600,00\xa0$ liegt über dem Limit für Billing Specialist "
        "(bis 500,00\xa0$)"
    ) in lines
    assert any(line.startswith("Läuft ab: ") and line.endswith(" UTC") for line in lines)
    assert "Customer:" not in text and "Reference:" not in text
    payloads = OutboxMessage.objects.values_list("payload", flat=True)
    assert all(p.get("locale") == "de" for p in payloads)
