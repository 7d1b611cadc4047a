"""The helpdesk's API down while the action's note is posted: the action stands."""

from __future__ import annotations

from datetime import timedelta

import pytest
import requests
from django.utils import timezone
from rest_framework.test import APIClient

from billing_app.catalog import Role
from billing_app.models import BillingAction
from billing_app.services import notes
from billing_app.services.identity import agent_sign_in
from billing_app.services.outbox import outbox_redrive
from helpdesk_connectors.base import AgentProfile, HelpdeskIdentity
from tests.billing_app.stripe_support import load
from tests.helpdesk_support import zendesk_installation_add

from .conftest import CH, NOW, refund_body

ZENDESK = "https://acme.zendesk.com"
NOTE_URL = f"{ZENDESK}/api/v2/tickets/4821.json"


@pytest.fixture
def zendesk_agent(ws):
    """A Manager who opened the panel from Zendesk (notes go to Zendesk's API)."""
    installation = zendesk_installation_add(ws)
    identity = HelpdeskIdentity(
        installation=installation,
        agent=AgentProfile(
            agent_id="35436", name="Dana Manager", email="dana@acme.example", helpdesk_role="admin"
        ),
    )
    _, minted = agent_sign_in(identity=identity, workspace=ws, role_override=Role.MANAGER)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {minted.token}")
    return client


@pytest.mark.parametrize(
    "fault",
    [
        {"body": requests.exceptions.ConnectionError("Connection reset by peer")},
        {"body": requests.exceptions.ReadTimeout("Read timed out.")},
        {"status": 503, "json": {"error": "Service Unavailable"}},
        {"status": 429, "json": {"error": "TooManyRequests"}, "headers": {"Retry-After": "30"}},
    ],
    ids=["reset", "timeout", "503", "429"],
)
def test_a_refund_stands_when_its_note_cannot_be_posted(
    ws, stripe, http, zendesk_agent, django_capture_on_commit_callbacks, fault
):
    # given Stripe refunds, and Zendesk's API fails every attempt to post the note
    stripe.on("GET", f"/v1/charges/{CH}", load("charge", created=NOW - 2 * 86400))
    stripe.on("POST", "/v1/refunds", load("refund"))
    http.add("PUT", NOTE_URL, **fault)
    # (after a reset, timeout or 5xx the comment may exist: each retry reads the ticket first)
    http.get(
        f"{ZENDESK}/api/v2/tickets/4821/comments.json",
        json={"comments": [], "next_page": None, "previous_page": None, "count": 0},
    )

    # when a Manager refunds from the ticket (the note is posted after commit, and the
    # outbox re-drive retries it, each run past the previous backoff)
    with django_capture_on_commit_callbacks(execute=True):
        response = zendesk_agent.post("/api/v1/actions/", refund_body(), format="json")
    for hours in range(2, 22, 2):
        outbox_redrive(now=timezone.now() + timedelta(hours=hours))

    # then the refund stands, recorded as succeeded; only the note is marked failed
    assert response.status_code == 201
    assert response.json()["status"] == "succeeded"
    action = BillingAction.objects.get(pk=response.json()["id"])
    assert action.status == BillingAction.Status.SUCCEEDED
    assert action.provider_object_id == "re_3RbAcmeRefund0001"
    assert action.note_status == "failed"
    assert action.note_attempts == notes.NOTE_MAX_RETRIES + 1
    puts = [c for c in http.calls if c.request.url == NOTE_URL]
    assert len(puts) == notes.NOTE_MAX_RETRIES + 1
    assert len(stripe.requests_to("POST", "/v1/refunds")) == 1
