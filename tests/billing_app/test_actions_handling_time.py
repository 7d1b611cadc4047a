"""Handling time capture: ``POST actions/`` keeps ``handling_started_at`` (the panel's open
on the ticket, as ``GET me/`` served it) when it is plausible, and never fails over it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from billing_app.catalog import Role
from billing_app.models import BillingAction
from billing_app.services.actions.submit import handling_start_accept

from .actions_support import account_seed, next_key


@pytest.fixture
def acme(workspace):
    return account_seed(workspace)


def submit(client, handling_started_at):
    payload = {
        "kind": "resend_invoice",
        "customer_id": "cus_acme",
        "ticket_id": "1001",
        "params": {"invoice_id": "in_acme_paid"},
        "idempotency_key": next_key(),
    }
    if handling_started_at is not ...:
        payload["handling_started_at"] = handling_started_at
    return client.post("/api/v1/actions/", payload, format="json")


def test_me_says_the_servers_now(workspace, api_as):
    before = timezone.now()
    body = api_as(workspace, Role.L1).get("/api/v1/me/").json()
    now = parse_datetime(body["now"])
    assert before <= now <= timezone.now()


def test_the_panels_open_time_is_stored(workspace, acme, api_as):
    # given a panel opened on the ticket 7 minutes ago (the server's time from GET me/)
    client = api_as(workspace, Role.L1)
    opened = timezone.now() - timedelta(minutes=7)

    # when the agent's action is submitted with it
    response = submit(client, opened.isoformat())

    # then the action keeps it, and says it back
    assert response.status_code == 201, response.json()
    action = BillingAction.objects.get(pk=response.json()["id"])
    assert action.handling_started_at == opened
    assert parse_datetime(response.json()["handling_started_at"]) == opened


@pytest.mark.parametrize(
    "value",
    [
        ...,  # not sent
        None,
        "",
        "yesterday-ish",
        "2026-13-45T99:00:00Z",
        12345,
        "x" * 200,
        "future",
        "too old",
    ],
)
def test_an_implausible_open_time_is_ignored_not_refused(value, workspace, acme, api_as):
    now = timezone.now()
    if value == "future":
        value = (now + timedelta(minutes=5)).isoformat()
    elif value == "too old":
        value = (now - timedelta(hours=24, minutes=1)).isoformat()

    response = submit(api_as(workspace, Role.L1), value)

    assert response.status_code == 201, response.json()
    assert response.json()["status"] == "succeeded"
    assert BillingAction.objects.get(pk=response.json()["id"]).handling_started_at is None


def test_the_open_time_is_not_part_of_the_idempotent_request(workspace, acme, api_as):
    # given an action submitted with one open time
    client = api_as(workspace, Role.L1)
    payload = {
        "kind": "resend_invoice",
        "customer_id": "cus_acme",
        "params": {"invoice_id": "in_acme_paid"},
        "idempotency_key": "same-key",
        "handling_started_at": (timezone.now() - timedelta(minutes=3)).isoformat(),
    }
    first = client.post("/api/v1/actions/", payload, format="json")

    # when the retry carries another (the panel reopened)
    payload["handling_started_at"] = (timezone.now() - timedelta(minutes=1)).isoformat()
    again = client.post("/api/v1/actions/", payload, format="json")

    # then it is the same action, answered again
    assert again.status_code == 200
    assert again.json()["id"] == first.json()["id"]
    assert BillingAction.objects.count() == 1


def test_the_rule_at_its_edges():
    now = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)
    assert handling_start_accept(now, now=now) == now
    assert handling_start_accept(now - timedelta(hours=24), now=now) == now - timedelta(hours=24)
    assert handling_start_accept(now - timedelta(hours=24, seconds=1), now=now) is None
    assert handling_start_accept(now + timedelta(seconds=1), now=now) is None
    naive = datetime(2026, 12, 4, 11, 0)
    assert handling_start_accept(naive, now=now) == datetime(2026, 12, 4, 11, 0, tzinfo=UTC)
    assert handling_start_accept(None, now=now) is None
