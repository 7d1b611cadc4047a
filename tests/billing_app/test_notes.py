"""Notes back to the ticket: posted after commit by a Celery task, retried, never undoing the action."""

from __future__ import annotations

import json
import uuid

import pytest

from billing_app.catalog import Role
from billing_app.errors import BillingDeskError, PreconditionFailed
from billing_app.models import ApprovalRequest, BillingAction
from billing_app.services import notes
from billing_app.services.workspaces import installation_add
from helpdesk_connectors.models import DemoTicketComment

ZENDESK = "https://acme.zendesk.com"


@pytest.fixture
def zendesk(workspace):
    return installation_add(
        workspace=workspace,
        connector="zendesk",
        domain="acme.zendesk.com",
        installation_id="360001234",
        app_id="818181",
        api_email="admin@acme.example",
        api_token="zdApiToken",
    )


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


def _zendesk_ok(http, ticket_id="4711"):
    http.put(
        f"{ZENDESK}/api/v2/tickets/{ticket_id}.json",
        json={
            "ticket": {"id": int(ticket_id)},
            "audit": {"id": 1, "events": [{"id": 2, "type": "Comment", "public": False}]},
        },
    )


def test_note_is_posted_after_commit_with_the_action_facts(
    http, zendesk, make_action, django_capture_on_commit_callbacks
):
    # given a succeeded refund on ticket 4711
    action = make_action(zendesk)
    _zendesk_ok(http)

    # when the note is enqueued and the transaction commits
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        notes.action_note_enqueue(action=action)
    action.refresh_from_db()
    assert action.note_status == "pending" and not http.calls  # nothing before commit
    for callback in callbacks:
        callback()

    # then Zendesk received one private comment describing it
    action.refresh_from_db()
    assert (action.note_status, action.note_attempts) == ("posted", 1)
    comment = json.loads(http.calls[0].request.body)["ticket"]["comment"]
    assert comment["public"] is False
    body = comment["body"]
    for expected in [
        "Issue refund",
        "Succeeded",
        "L2 Agent",
        "$50.00",
        "duplicate",
        "re_3MtwBw",
        "cus_Acme01",
        str(action.pk),
    ]:
        assert expected in body


def test_429_is_retried_honouring_retry_after(
    http, zendesk, make_action, django_capture_on_commit_callbacks, monkeypatch
):
    action = make_action(zendesk)
    http.put(
        f"{ZENDESK}/api/v2/tickets/4711.json",
        status=429,
        headers={"Retry-After": "90"},
        json={"error": "TooManyRequests"},
    )
    _zendesk_ok(http)
    countdowns = []
    real = notes.note_retry_countdown
    monkeypatch.setattr(
        "billing_app.tasks.notes.note_retry_countdown",
        lambda **kw: countdowns.append(real(**kw)) or countdowns[-1],
    )

    with django_capture_on_commit_callbacks(execute=True):
        notes.action_note_enqueue(action=action)

    action.refresh_from_db()
    assert (action.note_status, action.note_attempts) == ("posted", 2)
    assert countdowns == [90]  # Retry-After beat the 30 s first backoff


def test_backoff_is_exponential_and_capped():
    assert [notes.note_retry_countdown(retries=n, retry_after=None) for n in range(4)] == [
        30,
        60,
        120,
        240,
    ]
    assert (
        notes.note_retry_countdown(retries=20, retry_after=None) == notes.NOTE_BACKOFF_MAX_SECONDS
    )
    assert notes.note_retry_countdown(retries=0, retry_after=300.5) == 300


def test_failure_leaves_the_action_intact(
    http, zendesk, make_action, django_capture_on_commit_callbacks
):
    # given Zendesk is down for every attempt
    action = make_action(zendesk)
    http.put(f"{ZENDESK}/api/v2/tickets/4711.json", status=503, json={"error": "unavailable"})
    before = BillingAction.objects.filter(pk=action.pk).values().get()

    with django_capture_on_commit_callbacks(execute=True):
        notes.action_note_enqueue(action=action)

    after = BillingAction.objects.filter(pk=action.pk).values().get()
    assert after["note_status"] == "failed"
    assert after["note_attempts"] == notes.NOTE_MAX_RETRIES + 1
    for field in ("status", "amount", "provider_object_id", "result", "error_code", "completed_at"):
        assert after[field] == before[field]


def test_non_retryable_failure_is_not_retried(
    http, zendesk, make_action, django_capture_on_commit_callbacks
):
    action = make_action(zendesk)
    http.put(f"{ZENDESK}/api/v2/tickets/4711.json", status=404, json={"error": "RecordNotFound"})
    with django_capture_on_commit_callbacks(execute=True):
        notes.action_note_enqueue(action=action)
    action.refresh_from_db()
    assert (action.note_status, action.note_attempts, action.status) == ("failed", 1, "succeeded")


def test_no_ticket_means_no_note(http, zendesk, make_action, django_capture_on_commit_callbacks):
    action = make_action(zendesk, ticket_id="")
    with django_capture_on_commit_callbacks(execute=True):
        notes.action_note_enqueue(action=action)
    action.refresh_from_db()
    assert action.note_status == "none" and not http.calls


def test_a_posted_note_is_not_posted_twice(http, zendesk, make_action):
    action = make_action(zendesk, note_status="posted")
    assert notes.action_note_post(action_id=str(action.pk)) == ""
    assert not http.calls


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
    assert "Approval: pending (Manager) — Refunds need a Manager." in note.body


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
    body = json.loads(http.calls[0].request.body)["ticket"]["comment"]["body"]
    assert "approval approved" in body and "OK, goodwill." in body and "Manager" in body


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
