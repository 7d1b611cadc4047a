"""Notes back to the ticket: outbox rows posted after commit, re-driven, never undoing the action."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta

import pytest
import requests
from django.utils import timezone
from kombu.exceptions import OperationalError

from billing_app.catalog import Role
from billing_app.errors import BillingDeskError, PreconditionFailed
from billing_app.models import ApprovalRequest, BillingAction, MirrorCustomer, OutboxMessage
from billing_app.services import notes
from billing_app.services.note_templates import short_reference
from billing_app.services.outbox import LEASE, outbox_claim, outbox_redrive
from billing_app.tasks.outbox import outbox_deliver_task
from helpdesk_connectors.models import DemoTicketComment
from tests.helpdesk_support import zendesk_installation_add

ZENDESK = "https://acme.zendesk.com"


@pytest.fixture
def zendesk(workspace):
    return zendesk_installation_add(workspace)


@pytest.fixture
def make_action(workspace, sign_in):
    membership, _token = sign_in(workspace, Role.L2, agent_id="35436")

    def make(installation, **fields):
        defaults = dict(
            workspace=workspace,
            installation=installation,
            actor=membership.user,
            actor_role="l2",
            ticket_id="4711",
            customer_id="cus_Acme01",
            kind="issue_refund",
            params={"charge_id": "ch_3Mtw", "reason": "duplicate"},
            amount=5000,
            currency="USD",
            status=BillingAction.Status.SUCCEEDED,
            decision=BillingAction.Decision.ALLOW,
            decision_reason="Within the L2 refund limit.",
            idempotency_key=str(uuid.uuid4()),
            request_fingerprint="f" * 64,
            provider="stripe",
            provider_object_id="re_3MtwBw",
        )
        defaults.update(fields)
        return BillingAction.objects.create(**defaults)

    return make


def _zendesk_comments(http, ticket_id="4711", comments=()):
    """``GET /api/v2/tickets/{id}/comments.json``: what Zendesk holds (newest first)."""
    http.get(
        f"{ZENDESK}/api/v2/tickets/{ticket_id}/comments.json",
        json={
            "comments": list(comments),
            "next_page": None,
            "previous_page": None,
            "count": len(comments),
        },
    )


def _puts(http, ticket_id="4711"):
    return [
        c
        for c in http.calls
        if c.request.method == "PUT"
        and c.request.url == f"{ZENDESK}/api/v2/tickets/{ticket_id}.json"
    ]


def _later(**delta):
    return timezone.now() + timedelta(**delta)


def _redrive_until_settled(runs=10):
    """Re-drive as beat would, each run two hours after the last (past any backoff)."""
    for n in range(1, runs + 1):
        outbox_redrive(now=_later(hours=2 * n))


@pytest.fixture
def broker_down(monkeypatch):
    """The doorbell fails as kombu fails when Redis refuses connections."""

    def refuse(*args, **kwargs):
        raise OperationalError("Error 111 connecting to 127.0.0.1:6390. Connection refused.")

    monkeypatch.setattr(outbox_deliver_task, "delay", refuse)
    return monkeypatch


def _zendesk_ok(http, ticket_id="4711"):
    http.put(
        f"{ZENDESK}/api/v2/tickets/{ticket_id}.json",
        json={
            "ticket": {"id": int(ticket_id)},
            "audit": {"id": 1, "events": [{"id": 2, "type": "Comment", "public": False}]},
        },
    )


def test_note_is_posted_after_commit_with_the_action_facts(
    http, zendesk, workspace, make_action, django_capture_on_commit_callbacks
):
    # given a succeeded refund on ticket 4711 for a customer the mirror knows
    MirrorCustomer.objects.create(
        workspace=workspace, stripe_id="cus_Acme01", name="Acme Corp", email="billing@acme.example"
    )
    action = make_action(zendesk)
    _zendesk_ok(http)

    # when the note is enqueued and the transaction commits
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        notes.action_note_enqueue(action=action)
    action.refresh_from_db()
    assert action.note_status == "pending" and not http.calls  # nothing before commit
    for callback in callbacks:
        callback()

    # then Zendesk received one private comment describing it, in words
    action.refresh_from_db()
    assert (action.note_status, action.note_attempts) == ("posted", 1)
    comment = json.loads(http.calls[0].request.body)["ticket"]["comment"]
    assert comment["public"] is False
    body = comment["body"]
    for expected in [
        "Billing Desk · Issue refund: Done",
        "By: L2 Agent 35436 (L2 Agent)",
        "Customer: Acme Corp (billing@acme.example)",
        "Refund: $50.00",
        "Reason: Duplicate charge",
        "Stripe reference: re_3MtwBw",
        f"Reference: {short_reference(action)}",
    ]:
        assert expected in body.splitlines()
    # and no customer id, raw reason code or action id in the text (the marker keeps its ref)
    text = body.rsplit("\n", 1)[0]
    for unwanted in ["cus_Acme01", "Reason: duplicate", str(action.pk), "issue_refund", "l2"]:
        assert unwanted not in text


def test_429_is_retried_honouring_retry_after(
    http, zendesk, make_action, django_capture_on_commit_callbacks
):
    # given Zendesk rate-limits the first post for 90 s, then accepts
    action = make_action(zendesk)
    http.put(
        f"{ZENDESK}/api/v2/tickets/4711.json",
        status=429,
        headers={"Retry-After": "90"},
        json={"error": "TooManyRequests"},
    )
    _zendesk_ok(http)

    # when the note is enqueued and committed
    before = timezone.now()
    with django_capture_on_commit_callbacks(execute=True):
        notes.action_note_enqueue(action=action)
    after = timezone.now()

    # then it waits for Retry-After (longer than the 30 s first backoff), still pending
    message = OutboxMessage.objects.get(target_id=str(action.pk))
    action.refresh_from_db()
    assert (action.note_status, action.note_attempts, message.status) == ("pending", 1, "pending")
    assert (
        before + timedelta(seconds=90) <= message.next_attempt_at <= after + timedelta(seconds=90)
    )
    assert not message.outcome_unknown  # a 429 proves nothing was created: no read needed

    # and a re-drive before that time does nothing; one at that time posts it
    outbox_redrive(now=message.next_attempt_at - timedelta(seconds=1))
    assert len(_puts(http)) == 1
    outbox_redrive(now=message.next_attempt_at)
    action.refresh_from_db()
    assert (action.note_status, action.note_attempts) == ("posted", 2)
    assert len(_puts(http)) == 2 and not [c for c in http.calls if c.request.method == "GET"]


def test_backoff_is_exponential_and_capped():
    from billing_app.services.outbox import BACKOFF_MAX_SECONDS, backoff_seconds

    assert [backoff_seconds(attempts=n + 1, retry_after=None) for n in range(4)] == [
        30,
        60,
        120,
        240,
    ]
    assert backoff_seconds(attempts=21, retry_after=None) == BACKOFF_MAX_SECONDS == 3600
    assert backoff_seconds(attempts=1, retry_after=300.5) == 300


def test_failure_leaves_the_action_intact(
    http, zendesk, make_action, django_capture_on_commit_callbacks
):
    # given Zendesk is down for every attempt (503: the comment may or may not exist,
    # so every retry reads the ticket first and finds nothing)
    action = make_action(zendesk)
    http.put(f"{ZENDESK}/api/v2/tickets/4711.json", status=503, json={"error": "unavailable"})
    _zendesk_comments(http)
    before = BillingAction.objects.filter(pk=action.pk).values().get()

    with django_capture_on_commit_callbacks(execute=True):
        notes.action_note_enqueue(action=action)
    _redrive_until_settled()

    after = BillingAction.objects.filter(pk=action.pk).values().get()
    assert after["note_status"] == "failed"
    assert after["note_attempts"] == notes.NOTE_MAX_RETRIES + 1
    assert len(_puts(http)) == notes.NOTE_MAX_RETRIES + 1
    assert OutboxMessage.objects.get(target_id=str(action.pk)).status == "failed"
    for field in ("status", "amount", "provider_object_id", "result", "error_code", "completed_at"):
        assert after[field] == before[field]


def test_non_retryable_failure_is_not_retried(
    http, zendesk, make_action, django_capture_on_commit_callbacks
):
    action = make_action(zendesk)
    http.put(f"{ZENDESK}/api/v2/tickets/4711.json", status=404, json={"error": "RecordNotFound"})
    with django_capture_on_commit_callbacks(execute=True):
        notes.action_note_enqueue(action=action)
    _redrive_until_settled(runs=2)
    action.refresh_from_db()
    assert (action.note_status, action.note_attempts, action.status) == ("failed", 1, "succeeded")


def test_no_ticket_means_no_note(http, zendesk, make_action, django_capture_on_commit_callbacks):
    action = make_action(zendesk, ticket_id="")
    with django_capture_on_commit_callbacks(execute=True):
        notes.action_note_enqueue(action=action)
    action.refresh_from_db()
    assert action.note_status == "none" and not http.calls


def test_the_same_outcome_enqueued_twice_is_one_note(
    http, zendesk, make_action, django_capture_on_commit_callbacks
):
    # given a refund whose success path enqueues its note twice (e.g. a retried caller)
    action = make_action(zendesk)
    _zendesk_ok(http)
    with django_capture_on_commit_callbacks(execute=True):
        notes.action_note_enqueue(action=action)
        notes.action_note_enqueue(action=action)
    _redrive_until_settled(runs=2)

    # then one outbox row, one post
    assert OutboxMessage.objects.filter(target_id=str(action.pk)).count() == 1
    assert len(_puts(http)) == 1


def test_a_note_carries_its_dedupe_marker(
    http, zendesk, make_action, django_capture_on_commit_callbacks
):
    action = make_action(zendesk)
    _zendesk_ok(http)
    with django_capture_on_commit_callbacks(execute=True):
        notes.action_note_enqueue(action=action)
    message = OutboxMessage.objects.get(target_id=str(action.pk))
    body = json.loads(_puts(http)[0].request.body)["ticket"]["comment"]["body"]
    assert body.splitlines()[-1] == f"Billing Desk ref: {message.pk}"
    assert (message.status, message.result_ref) == ("done", "2")


# --- the broker is only a doorbell ---------------------------------------------------------


def test_broker_down_leaves_the_note_pending_and_one_redrive_posts_each_once(
    http, zendesk, make_action, django_capture_on_commit_callbacks, broker_down
):
    # given three refunds whose doorbells fail because the broker is down
    actions = [make_action(zendesk, ticket_id=str(4800 + n)) for n in range(3)]
    for action in actions:
        _zendesk_ok(http, ticket_id=action.ticket_id)
    with django_capture_on_commit_callbacks(execute=True):
        for action in actions:
            notes.action_note_enqueue(action=action)  # does not raise

    # then every note is pending, nothing was posted
    assert not http.calls
    assert set(BillingAction.objects.values_list("note_status", flat=True)) == {"pending"}

    # when the broker is back and beat's re-drive runs (twice, as it does every minute)
    broker_down.undo()
    first = outbox_redrive(now=_later(minutes=2))
    second = outbox_redrive(now=_later(minutes=3))

    # then each note was posted exactly once
    assert (first.delivered, second.delivered) == (3, 0)
    for action in actions:
        assert len(_puts(http, action.ticket_id)) == 1
        action.refresh_from_db()
        assert action.note_status == "posted"


def test_a_fresh_row_is_left_to_its_doorbell(
    http, zendesk, make_action, django_capture_on_commit_callbacks, broker_down
):
    action = make_action(zendesk)
    with django_capture_on_commit_callbacks(execute=True):
        notes.action_note_enqueue(action=action)
    # a re-drive in the same minute does not race the doorbell's own attempt
    assert outbox_redrive().delivered == 0 and not http.calls


def test_approval_decision_note_survives_the_broker_being_down(
    http, zendesk, workspace, make_action, django_capture_on_commit_callbacks, broker_down
):
    action = make_action(zendesk, status="denied", decision="approval")
    approval = ApprovalRequest.objects.create(
        action=action,
        workspace=workspace,
        required_roles=["manager"],
        reason="Refunds need a Manager.",
        status="denied",
        expires_at="2030-01-01T00:00:00Z",
    )
    _zendesk_ok(http)
    with django_capture_on_commit_callbacks(execute=True):
        notes.approval_note_enqueue(approval=approval)
    assert OutboxMessage.objects.get(kind="approval_note").status == "pending"

    broker_down.undo()
    outbox_redrive(now=_later(minutes=2))

    assert OutboxMessage.objects.get(kind="approval_note").status == "done"
    body = json.loads(_puts(http)[0].request.body)["ticket"]["comment"]["body"]
    assert body.startswith("Billing Desk · Approval denied: Issue refund\n")


# --- exactly once on the ticket --------------------------------------------------------------


def _zendesk_that_acts_then_times_out(http, ticket_id="4711", *, acts: bool):
    """Zendesk stores the comment (when ``acts``), then the answer never arrives."""
    stored: list[dict] = []

    def put(request):
        if acts:
            comment = json.loads(request.body)["ticket"]["comment"]
            stored.append(
                {
                    "id": 88001 + len(stored),
                    "type": "Comment",
                    "author_id": 35436,
                    "body": comment["body"],
                    "html_body": '<div class="zd-comment"><p>...</p></div>',
                    "plain_body": comment["body"],
                    "public": comment["public"],
                    "attachments": [],
                    "audit_id": 77001,
                    "via": {"channel": "api", "source": {"from": {}, "to": {}, "rel": None}},
                    "created_at": "2026-12-03T10:00:00Z",
                    "metadata": {"system": {}, "custom": {}},
                }
            )
        raise requests.exceptions.ReadTimeout("Read timed out. (read timeout=10)")

    def comments(request):
        body = {"comments": stored[::-1], "next_page": None, "previous_page": None}
        return 200, {}, json.dumps({**body, "count": len(stored)})

    http.add_callback("PUT", f"{ZENDESK}/api/v2/tickets/{ticket_id}.json", callback=put)
    http.add_callback(
        "GET", f"{ZENDESK}/api/v2/tickets/{ticket_id}/comments.json", callback=comments
    )
    return stored


def test_a_timeout_after_zendesk_created_the_comment_is_not_posted_again(
    http, zendesk, make_action, django_capture_on_commit_callbacks
):
    # given Zendesk creates the comment, then the answer times out
    action = make_action(zendesk)
    stored = _zendesk_that_acts_then_times_out(http, acts=True)
    with django_capture_on_commit_callbacks(execute=True):
        notes.action_note_enqueue(action=action)
    message = OutboxMessage.objects.get(target_id=str(action.pk))
    assert (message.status, message.outcome_unknown) == ("pending", True)

    # when the re-drive retries it
    _redrive_until_settled(runs=3)

    # then it read the ticket, found its marker and did not post a second time
    assert len(_puts(http)) == 1 and len(stored) == 1
    message.refresh_from_db()
    action.refresh_from_db()
    assert (message.status, message.result_ref) == ("done", "88001")
    assert action.note_status == "posted"
    reads = [c for c in http.calls if c.request.method == "GET"]
    assert len(reads) == 1 and "sort_order=desc" in reads[0].request.url


def test_a_timeout_before_zendesk_acted_is_posted_again_once(
    http, zendesk, make_action, django_capture_on_commit_callbacks
):
    # given the first post timed out without Zendesk creating anything
    action = make_action(zendesk)
    _zendesk_that_acts_then_times_out(http, acts=False)
    with django_capture_on_commit_callbacks(execute=True):
        notes.action_note_enqueue(action=action)
    http.replace("PUT", f"{ZENDESK}/api/v2/tickets/4711.json", json={"audit": {"id": 5}})

    # when the re-drive retries: the read finds nothing, so it posts
    _redrive_until_settled(runs=3)

    assert len(_puts(http)) == 2
    action.refresh_from_db()
    assert action.note_status == "posted"


def test_a_worker_killed_mid_task_is_redriven_after_its_lease(
    http, zendesk, make_action, django_capture_on_commit_callbacks, broker_down
):
    # given a note whose worker claimed it, marked the post under way, and was killed
    action = make_action(zendesk)
    with django_capture_on_commit_callbacks(execute=True):
        notes.action_note_enqueue(action=action)
    message = OutboxMessage.objects.get(target_id=str(action.pk))
    claimed_at = _later(minutes=2)
    assert outbox_claim(message_id=message.pk, now=claimed_at)
    OutboxMessage.objects.filter(pk=message.pk).update(outcome_unknown=True)
    _zendesk_comments(http)
    _zendesk_ok(http)

    # when the re-drive runs while the lease holds, nothing happens
    assert outbox_redrive(now=claimed_at + LEASE - timedelta(seconds=1)).delivered == 0
    assert not http.calls

    # then after the lease lapses it reads the ticket and posts the note, once
    assert outbox_redrive(now=claimed_at + LEASE).delivered == 1
    assert outbox_redrive(now=claimed_at + LEASE + timedelta(minutes=1)).delivered == 0
    assert len(_puts(http)) == 1
    message.refresh_from_db()
    assert (message.status, message.attempts) == ("done", 2)


def test_demo_notes_land_on_the_demo_ticket(
    workspace, make_action, django_capture_on_commit_callbacks
):
    demo = workspace.installation_links.get(installation__connector="demo").installation
    action = make_action(demo, ticket_id="DEMO-1", status="pending_approval", decision="approval")
    ApprovalRequest.objects.create(
        action=action,
        workspace=workspace,
        required_roles=["manager"],
        reason="Refunds need a Manager.",
        expires_at="2030-01-01T00:00:00Z",
    )
    with django_capture_on_commit_callbacks(execute=True):
        notes.action_note_enqueue(action=action)
    note = DemoTicketComment.objects.get(ticket_id="DEMO-1")
    assert not note.public
    assert "Billing Desk · Issue refund: Waiting for approval by Manager" in note.body
    assert "Approval: Requested by L2 Agent 35436 (L2 Agent) on " in note.body
    assert "(Refunds need a Manager.); waiting for Manager" in note.body


def test_approval_decision_note(
    http, zendesk, workspace, make_action, django_capture_on_commit_callbacks, sign_in
):
    manager, _ = sign_in(workspace, Role.MANAGER, agent_id="99")
    action = make_action(zendesk, status="succeeded", decision="approval")
    approval = ApprovalRequest.objects.create(
        action=action,
        workspace=workspace,
        required_roles=["manager"],
        reason="Refunds need a Manager.",
        status="approved",
        decided_by=manager.user,
        decided_role="manager",
        comment="OK, goodwill.",
        expires_at="2030-01-01T00:00:00Z",
    )
    _zendesk_ok(http)
    with django_capture_on_commit_callbacks(execute=True):
        notes.approval_note_enqueue(approval=approval)
    body = json.loads(http.calls[0].request.body)["ticket"]["comment"]["body"].splitlines()
    assert body[0] == "Billing Desk · Approval granted: Issue refund"
    assert body[1] == "Approved by Manager 99 (Manager)"
    assert body[2] == "Comment: “OK, goodwill.”"
    assert "Needed approval because: Refunds need a Manager." in body


def test_public_reply(http, zendesk, make_action):
    action = make_action(zendesk)
    _zendesk_ok(http)
    assert (
        notes.public_reply_post(action=action, body="Hi! Your refund of $50.00 is on its way.")
        == "2"
    )
    assert json.loads(http.calls[0].request.body)["ticket"]["comment"]["public"] is True


def test_public_reply_errors_are_domain_errors(http, zendesk, make_action):
    action = make_action(zendesk)
    with pytest.raises(PreconditionFailed):
        notes.public_reply_post(action=action, body="  ")
    with pytest.raises(PreconditionFailed):
        notes.public_reply_post(action=make_action(zendesk, ticket_id=""), body="Hi")
    http.put(f"{ZENDESK}/api/v2/tickets/4711.json", status=429, json={})
    with pytest.raises(BillingDeskError) as excinfo:
        notes.public_reply_post(action=action, body="Hi")
    assert (excinfo.value.code, excinfo.value.status) == ("helpdesk_unavailable", 503)


def test_a_request_note_that_cannot_be_recorded_never_undoes_the_request(
    workspace, zendesk, make_action, monkeypatch, caplog
):
    # given a request whose note cannot be written (the outbox insert fails)
    action = make_action(zendesk, status="pending_approval", decision="approval")
    approval = ApprovalRequest.objects.create(
        action=action,
        workspace=workspace,
        required_roles=["manager"],
        reason="Refunds need a Manager.",
        expires_at="2030-01-01T00:00:00Z",
    )

    def fail(**kwargs):
        raise RuntimeError("database hiccup")

    monkeypatch.setattr(notes, "outbox_enqueue", fail)

    # when the request's note is asked for, it is logged, not raised
    notes.approval_request_note_enqueue(approval=approval)

    # then the request stands and nothing is queued
    assert ApprovalRequest.objects.filter(pk=approval.pk, status="pending").exists()
    assert not OutboxMessage.objects.exists()
    assert any("could not enqueue the note" in r.getMessage() for r in caplog.records)
