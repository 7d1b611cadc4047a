"""The broker (Redis) down, or a worker killed: side effects wait in the outbox, then go out once.

Issue 12 saw, with Redis down for 18 s: notes left ``pending`` for good, webhook
deliveries answered HTML 500, stored events processed 18 minutes later, and a
killed worker's task held for an hour. Here the broker is really unreachable (the
Celery app pointed at a closed loopback port, eager mode off), and a worker is
"killed" by an exception no handler catches, in the middle of posting a note.
"""

from __future__ import annotations

import json
import socket
import threading
from datetime import timedelta

import pytest
import requests
from django.db import connection
from django.utils import timezone
from rest_framework.test import APIClient

from billing_app.catalog import Role
from billing_app.celery import app as celery_app
from billing_app.models import BillingAction, OutboxMessage, StripeEvent
from billing_app.services import notes
from billing_app.services.identity import agent_sign_in
from billing_app.services.outbox import outbox_message_deliver, outbox_redrive
from billing_app.services.workspaces import installation_add
from helpdesk_connectors.base import AgentProfile, HelpdeskIdentity
from tests.billing_app.stripe_support import event, load, sign
from tests.concurrency import run_at_once

from .conftest import CH, CUS, NOW, refund_body

FRESHDESK = "https://acme.freshdesk.com"
TICKET = "4821"
NOTES_URL = f"{FRESHDESK}/api/v2/tickets/{TICKET}/notes"
CONVERSATIONS_URL = f"{FRESHDESK}/api/v2/tickets/{TICKET}/conversations"
SUB = "sub_1RbAcmeEnterprise01"


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]  # closed again when the with block ends


@pytest.fixture
def broker_unreachable():
    """Celery publishes for real, to a Redis that is not there (connection refused)."""
    conf = celery_app.conf
    saved = {key: conf.get(key) for key in ("task_always_eager", "broker_url")}

    def reset_pools() -> None:
        # Forget the cached pools (kombu keeps one per broker URL; none is closed here).
        celery_app._pool = None
        celery_app.amqp._producer_pool = None

    reset_pools()
    # The production transport options and publish retry policy apply (settings.py).
    conf.update(task_always_eager=False, broker_url=f"redis://127.0.0.1:{_closed_port()}/11")

    class Broker:
        @staticmethod
        def back() -> None:
            reset_pools()
            conf.update(saved)

    yield Broker
    Broker.back()


def _note_created(conversation_id: int, body: str) -> dict:
    """Freshdesk's ``POST /tickets/{id}/notes`` answer (201)."""
    return {
        "body": f"<div>{body}</div>",
        "body_text": body,
        "id": conversation_id,
        "incoming": False,
        "private": True,
        "user_id": 43000123,
        "support_email": None,
        "ticket_id": int(TICKET),
        "to_emails": None,
        "attachments": [],
        "created_at": "2026-12-03T10:00:00Z",
        "updated_at": "2026-12-03T10:00:00Z",
    }


class FakeFreshdesk:
    """Notes and conversations of one ticket, kept between calls (``responses`` callbacks)."""

    def __init__(self, http):
        self.conversations: list[dict] = []
        self.posts = 0
        self.lock = threading.Lock()
        self.after_store = None  # what happens once a note is stored: e.g. the answer is lost
        http.add_callback("POST", NOTES_URL, callback=self._post)
        http.add_callback("GET", CONVERSATIONS_URL, callback=self._list)

    def _post(self, request):
        with self.lock:
            self.posts += 1
            body = json.loads(request.body)["body"]
            created = _note_created(43000700 + len(self.conversations), body)
            self.conversations.append(created)
        if self.after_store is not None:
            self.after_store()
        return 201, {}, json.dumps(created)

    def _list(self, request):
        with self.lock:
            return 200, {}, json.dumps(self.conversations)


@pytest.fixture
def freshdesk(http):
    return FakeFreshdesk(http)


@pytest.fixture
def installation(ws):
    return installation_add(
        workspace=ws,
        connector="freshdesk",
        domain="acme.freshdesk.com",
        shared_secret="fd-shared-secret-4f9b2c61d0e8a7",
        api_email="admin@acme.example",
        api_token="fdApiKey123",
    )


@pytest.fixture
def freshdesk_agent(ws, installation):
    identity = HelpdeskIdentity(
        installation=installation,
        agent=AgentProfile(
            agent_id="43000123", name="Dana Manager", email="dana@acme.example", helpdesk_role="x"
        ),
    )
    _, minted = agent_sign_in(identity=identity, workspace=ws, role_override=Role.MANAGER)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {minted.token}")
    return client


def _later(**delta):
    return timezone.now() + timedelta(**delta)


# --- the broker down -----------------------------------------------------------------------


def test_a_refund_succeeds_with_the_broker_down_and_its_note_goes_out_once_after(
    ws,
    stripe,
    freshdesk,
    freshdesk_agent,
    broker_unreachable,
    django_capture_on_commit_callbacks,
    caplog,
):
    # given Stripe refunds, and the broker refuses connections
    stripe.on("GET", f"/v1/charges/{CH}", load("charge", created=NOW - 2 * 86400))
    stripe.on("POST", "/v1/refunds", load("refund"))

    # when a Manager refunds from the ticket
    with django_capture_on_commit_callbacks(execute=True):
        response = freshdesk_agent.post("/api/v1/actions/", refund_body(), format="json")

    # then the refund stands, its note waits in the outbox, nothing reached the helpdesk
    assert response.status_code == 201 and response.json()["status"] == "succeeded"
    action = BillingAction.objects.get(pk=response.json()["id"])
    assert action.note_status == "pending"
    (message,) = OutboxMessage.objects.filter(target_id=str(action.pk))
    assert (message.status, message.attempts) == ("pending", 0)
    assert freshdesk.posts == 0
    # and the lost doorbell is one log line, not a traceback
    lost = [r for r in caplog.records if "doorbell not sent" in r.getMessage()]
    assert len(lost) == 1 and lost[0].exc_info is None

    # when the broker is back and beat re-drives, twice
    broker_unreachable.back()
    outbox_redrive(now=_later(minutes=2))
    outbox_redrive(now=_later(minutes=3))

    # then the note was posted exactly once
    assert freshdesk.posts == 1
    assert freshdesk.conversations[0]["body_text"].endswith(f"Billing Desk ref: {message.pk}")
    action.refresh_from_db()
    assert action.note_status == "posted"


def test_the_webhook_endpoint_stores_and_answers_200_json_with_the_broker_down(
    ws, stripe, client, broker_unreachable, django_capture_on_commit_callbacks
):
    # given Stripe's current state of the subscription is past_due
    stripe.on("GET", f"/v1/subscriptions/{SUB}", load("subscription", status="past_due"))
    payload = json.dumps(
        event("evt_1BrokerDown", "customer.subscription.updated", load("subscription"))
    )

    # when Stripe delivers an event while the broker refuses connections
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            f"/webhooks/stripe/{ws.slug}/",
            data=payload,
            content_type="application/json",
            HTTP_STRIPE_SIGNATURE=sign(payload),
        )

    # then it is answered 200 JSON and the event is stored, not yet processed
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/json")
    assert response.json() == {"received": True, "event_id": "evt_1BrokerDown", "duplicate": False}
    stored = StripeEvent.objects.get(event_id="evt_1BrokerDown")
    assert stored.status == "received" and not stripe.calls

    # when the broker is back, the next minute's re-drive processes it, once
    broker_unreachable.back()
    assert outbox_redrive(now=_later(minutes=2)).stripe_events == 1
    assert outbox_redrive(now=_later(minutes=3)).stripe_events == 0
    stored.refresh_from_db()
    assert stored.status == "processed"
    # issue 15: the payload is newer than the (empty) mirror, so it is applied with no re-read
    assert stripe.requests_to("GET", f"/v1/subscriptions/{SUB}") == []


# --- a worker killed mid-task, and an answer lost after the helpdesk acted ----------------------


class WorkerKilled(BaseException):
    """What SIGKILL looks like from inside: the task never reaches its own bookkeeping."""


def _make_action(ws, installation, user, n: int) -> BillingAction:
    return BillingAction.objects.create(
        workspace=ws,
        installation=installation,
        actor=user,
        actor_role="manager",
        ticket_id=TICKET,
        customer_id=CUS,
        kind="issue_refund",
        params={"charge_id": CH, "reason": "duplicate"},
        amount=5000 + n,
        currency="USD",
        status=BillingAction.Status.SUCCEEDED,
        decision=BillingAction.Decision.ALLOW,
        idempotency_key=f"broker-{n}",
        request_fingerprint="f" * 64,
        provider="stripe",
        provider_object_id=f"re_3RbAcme{n:04d}",
    )


@pytest.fixture
def manager(ws, sign_in):
    membership, _ = sign_in(ws, Role.MANAGER, agent_id="43000123")
    return membership.user


def test_a_worker_killed_after_freshdesk_stored_the_note_is_not_posted_twice(
    ws, installation, manager, freshdesk, django_capture_on_commit_callbacks
):
    # given the worker dies right after Freshdesk stored the note, before it hears back
    def kill():
        raise WorkerKilled

    freshdesk.after_store = kill
    action = _make_action(ws, installation, manager, 1)
    with pytest.raises(WorkerKilled), django_capture_on_commit_callbacks(execute=True):
        notes.action_note_enqueue(action=action)
    message = OutboxMessage.objects.get(target_id=str(action.pk))
    assert (message.status, message.outcome_unknown, freshdesk.posts) == ("sending", True, 1)
    freshdesk.after_store = None

    # when beat re-drives while the dead worker's lease still holds: nothing
    claimed_until = message.lease_until
    assert outbox_redrive(now=claimed_until - timedelta(seconds=1)).delivered == 0

    # then once the lease lapses the row is re-driven: it reads the ticket, finds its
    # marker, and records the note as posted without posting it again
    assert outbox_redrive(now=claimed_until).delivered == 1
    assert freshdesk.posts == 1
    message.refresh_from_db()
    action.refresh_from_db()
    assert (message.status, message.result_ref) == ("done", "43000700")
    assert action.note_status == "posted"


def test_a_timeout_after_freshdesk_stored_the_note_is_not_posted_twice(
    ws, installation, manager, freshdesk, django_capture_on_commit_callbacks
):
    # given Freshdesk stores the note but the answer times out
    def lose_answer():
        raise requests.exceptions.ReadTimeout("Read timed out. (read timeout=10)")

    freshdesk.after_store = lose_answer
    action = _make_action(ws, installation, manager, 2)
    with django_capture_on_commit_callbacks(execute=True):
        notes.action_note_enqueue(action=action)
    freshdesk.after_store = None
    message = OutboxMessage.objects.get(target_id=str(action.pk))
    assert (message.status, message.outcome_unknown, freshdesk.posts) == ("pending", True, 1)

    # when the re-drive retries after the backoff
    outbox_redrive(now=_later(minutes=5))

    # then one note on the ticket
    assert freshdesk.posts == 1 and len(freshdesk.conversations) == 1
    message.refresh_from_db()
    assert message.status == "done"


# --- two re-drivers at once (PostgreSQL: real row locks and concurrent transactions) -----------


@pytest.mark.postgres
@pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="needs PostgreSQL (DATABASE_URL) for concurrent transactions and row locks",
)
@pytest.mark.django_db(transaction=True)
def test_two_concurrent_redrivers_post_every_note_exactly_once(
    ws, installation, manager, freshdesk, monkeypatch
):
    # given twelve notes waiting in the outbox (their doorbells were lost)
    from billing_app.tasks.outbox import outbox_deliver_task

    monkeypatch.setattr(outbox_deliver_task, "delay", _refuse)
    actions = [_make_action(ws, installation, manager, n) for n in range(10, 22)]
    for action in actions:
        notes.action_note_enqueue(action=action)
    monkeypatch.undo()
    ids = list(OutboxMessage.objects.values_list("pk", flat=True))
    assert len(ids) == 12

    # when two workers race for each single row
    when = _later(minutes=2)
    first = ids[0]
    outcomes = run_at_once(2, lambda i: outbox_message_deliver(message_id=first, now=when))
    assert sorted(outcomes) == ["done", "skipped"]

    # and two beat runs re-drive everything at once
    results = run_at_once(2, lambda i: outbox_redrive(now=when))

    # then each note was posted exactly once
    assert not [r for r in results if isinstance(r, BaseException)], results
    assert sum(r.delivered for r in results) == 11
    assert freshdesk.posts == 12
    bodies = [c["body_text"] for c in freshdesk.conversations]
    assert sorted(b.splitlines()[-1] for b in bodies) == sorted(
        f"Billing Desk ref: {pk}" for pk in ids
    )
    assert set(OutboxMessage.objects.values_list("status", flat=True)) == {"done"}
    assert set(BillingAction.objects.values_list("note_status", flat=True)) == {"posted"}


# --- the alert figure -------------------------------------------------------------------------


def test_readyz_reports_side_effects_overdue_for_the_redrive(
    ws, installation, manager, client, monkeypatch, django_capture_on_commit_callbacks
):
    # given a note whose doorbell was lost, and a Stripe event never processed
    from billing_app.tasks.outbox import outbox_deliver_task

    monkeypatch.setattr(outbox_deliver_task, "delay", _refuse)
    with django_capture_on_commit_callbacks(execute=True):
        notes.action_note_enqueue(action=_make_action(ws, installation, manager, 30))
    stored = StripeEvent.objects.create(
        workspace=ws,
        event_id="evt_1Overdue",
        type="customer.subscription.updated",
        created=timezone.now(),
        payload=event("evt_1Overdue", "customer.subscription.updated", load("subscription")),
    )

    # then while the re-drive has time, nothing is overdue
    outbox = client.get("/readyz").json()["outbox"]
    assert (outbox["pending"], outbox["overdue"], outbox["alert_after_seconds"]) == (1, 0, 300)

    # when both have waited past five re-drive periods (beat or the workers are down)
    OutboxMessage.objects.update(next_attempt_at=timezone.now() - timedelta(minutes=6))
    StripeEvent.objects.filter(pk=stored.pk).update(
        received_at=timezone.now() - timedelta(minutes=6)
    )

    # then /readyz reports them overdue, still answering 200: the app itself is ready
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json()["outbox"]["overdue"] == 2


def _refuse(*args, **kwargs):
    from kombu.exceptions import OperationalError

    raise OperationalError("Error 111 connecting to 127.0.0.1:6390. Connection refused.")


def test_a_failed_stripe_event_is_re_driven_after_its_backoff(ws, stripe):
    # given an event whose second processing failed (Stripe unavailable) just now
    stripe.on("GET", f"/v1/subscriptions/{SUB}", load("subscription", status="past_due"))
    failed_at = timezone.now()
    stored = StripeEvent.objects.create(
        workspace=ws,
        event_id="evt_1Backoff",
        type="customer.subscription.updated",
        created=failed_at,
        payload=event("evt_1Backoff", "customer.subscription.updated", load("subscription")),
        status=StripeEvent.Status.FAILED,
        attempts=2,
        processed_at=failed_at,
    )

    # then a re-drive within its backoff (2 minutes after a second failure) leaves it
    assert outbox_redrive(now=failed_at + timedelta(seconds=119)).stripe_events == 0
    # and the first re-drive after it processes it
    assert outbox_redrive(now=failed_at + timedelta(seconds=120)).stripe_events == 1
    stored.refresh_from_db()
    assert (stored.status, stored.attempts) == ("processed", 3)
