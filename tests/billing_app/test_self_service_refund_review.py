"""Self-service refund requests: the security review's findings (r2), each asserted fixed.

Who may send a link (a role that may refund), the link's sender on the resulting action,
requests whose submitter died (the page and the re-drive finish them), reconciliation
moving a request on, the approver's internal comment never shown to the customer, a
deactivated workspace's links, and another link's open request on the same payment.
"""

from __future__ import annotations

import json
from datetime import timedelta
from urllib.parse import urlsplit

import pytest
from django.test import Client
from django.utils import timezone

from billing_app.catalog import Role
from billing_app.errors import ProviderOutcomeUnknown
from billing_app.models import (
    ActionPolicy,
    ApprovalRequest,
    AuditEntry,
    BillingAction,
    OutboxMessage,
    SelfServiceLink,
    SelfServiceRefundRequest,
)
from billing_app.services.approvals import approval_decide
from billing_app.services.reconcile import actions_stale_reconcile, actions_unknown_reconcile
from billing_app.services.refund_links import refund_link_create, refund_link_read
from billing_app.services.self_service_refunds import requests as ssr
from billing_app.services.self_service_refunds.page import refund_page_payments, request_message
from billing_app.services.self_service_refunds.requests import (
    REQUEST_PENDING,
    refund_request_submit,
    refund_requests_redrive,
)

from . import self_service_refund_support as support
from .two_factor_support import verified_login

Status = SelfServiceRefundRequest.Status
spy = support.spy
acme = support.acme
ENDPOINT = "/api/v1/customers/cus_acme/refund-link/"


def _link(workspace, **kwargs):
    return refund_link_create(workspace=workspace, customer_id="cus_acme", source="panel", **kwargs)


def _path(url: str) -> str:
    return urlsplit(url).path


def _tickets():
    return OutboxMessage.objects.filter(kind=OutboxMessage.Kind.CUSTOMER_TICKET)


# --- 1. who may send a link ------------------------------------------------------------------


@pytest.mark.parametrize("role", [Role.L1, Role.L2])
def test_a_role_that_may_not_refund_gets_403_and_no_link(api_as, acme, spy, role):
    # the matrix: L1 and L2 may not issue refunds (not even by asking for approval)
    support.self_service_limit_set(acme, 10000)
    client = api_as(acme, role)
    me = client.get("/api/v1/me/").json()
    assert next(a for a in me["actions"] if a["kind"] == "issue_refund")["mode"] == "not_permitted"
    response = client.post(ENDPOINT, {"ticket_id": "77"}, format="json")
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "not_permitted"
    assert not SelfServiceLink.objects.exists() and not spy.writes("refund")


def test_a_role_whose_matrix_cell_is_not_permitted_gets_403(api_as, acme):
    ActionPolicy.objects.filter(
        workspace=acme, role=Role.SPECIALIST.value, action="issue_refund"
    ).update(effect=ActionPolicy.Effect.DENY)
    response = api_as(acme, Role.SPECIALIST).post(ENDPOINT, {}, format="json")
    assert response.status_code == 403 and not SelfServiceLink.objects.exists()


def test_a_role_without_the_issue_refund_permission_gets_403(api_as, acme):
    from guardian.shortcuts import remove_perm

    client = api_as(acme, Role.MANAGER)
    for group in client.membership.user.groups.all():
        remove_perm("issue_refund", group, acme)
    response = client.post(ENDPOINT, {}, format="json")
    assert response.status_code == 403 and not SelfServiceLink.objects.exists()


def test_a_role_that_refunds_only_by_approval_may_send_a_link(api_as, acme):
    ActionPolicy.objects.filter(workspace=acme, role=Role.L2.value, action="issue_refund").update(
        effect=ActionPolicy.Effect.REQUEST
    )
    client = api_as(acme, Role.L2)
    me = client.get("/api/v1/me/").json()
    mode = next(a for a in me["actions"] if a["kind"] == "issue_refund")["mode"]
    response = client.post(ENDPOINT, {}, format="json")
    # the endpoint and the panel's GET me/ agree
    assert (response.status_code == 201) == (mode != "not_permitted"), (mode, response.content)


def test_the_links_sender_is_recorded_with_the_requests_action(api_as, acme, spy):
    support.self_service_limit_set(acme, 10000)
    client = api_as(acme, Role.SPECIALIST)
    sender = client.membership.user
    url = client.post(ENDPOINT, {"ticket_id": "77"}, format="json").json()["url"]
    link = refund_link_read(_path(url).rstrip("/").rsplit("/", 1)[-1])
    request = refund_request_submit(link=link, charge_id="ch_acme_dup1", reason="charged_twice")
    assert request.status == Status.REFUNDED
    # the action's actor is the self-service user; the audit names the link's sender with it
    assert request.action.actor != sender
    entry = AuditEntry.objects.get(event="self_service_request.submitted")
    data = json.loads(entry.content)["data"]
    assert data["action_id"] == str(request.action_id)
    assert data["link_created_by_id"] == sender.pk and data["ticket_id"] == "77"


def test_the_agents_ticket_says_who_sent_the_link(acme, spy, sign_in):
    manager, _ = sign_in(acme, Role.MANAGER)
    link, _url = _link(acme, created_by=manager.user)
    refund_request_submit(link=link, charge_id="ch_acme_dup1", reason="other")
    payload = _tickets().get().payload
    body = payload.get("internal_note") or payload["body"]  # the investigation
    name = manager.user.get_full_name() or manager.user.get_username()
    assert f"The link was sent by {name}." in body


# --- 2. a request whose submitter died --------------------------------------------------------


def test_a_request_orphaned_mid_provider_call_is_finished_by_the_redrive(acme, spy):
    support.self_service_limit_set(acme, 10000)
    link, url = _link(acme)
    spy.fail("refund", SystemExit())  # the process dies inside the provider call
    with pytest.raises(SystemExit):
        refund_request_submit(link=link, charge_id="ch_acme_dup1", reason="charged_twice")
    request = SelfServiceRefundRequest.objects.get()
    assert request.status == Status.RECEIVED and request.action_id is None
    # a fresh request is left to its submitter
    assert refund_requests_redrive(now=timezone.now() + timedelta(minutes=1)) == 0
    # minutes later the re-drive records the (still executing) action on it
    assert refund_requests_redrive(now=timezone.now() + timedelta(minutes=10)) == 1
    request.refresh_from_db()
    assert request.status == Status.PROCESSING and request.action_id is not None
    # reconciliation takes the stale action over; the request follows it
    assert actions_stale_reconcile(now=timezone.now() + timedelta(hours=1)) == 1
    request.refresh_from_db()
    assert request.status == Status.REFUNDED
    assert len(spy.writes("refund")) == 2  # the first (died) and the takeover, one key
    assert len({kw["idempotency_key"] for _n, kw in spy.writes("refund")}) == 1


def test_the_page_picks_up_an_orphaned_requests_action_by_its_key(acme, spy):
    support.self_service_limit_set(acme, 10000)
    link, url = _link(acme)
    spy.fail("refund", SystemExit())
    with pytest.raises(SystemExit):
        refund_request_submit(link=link, charge_id="ch_acme_dup1", reason="charged_twice")
    assert actions_stale_reconcile(now=timezone.now() + timedelta(hours=1)) == 1
    body = Client().get(_path(url)).content.decode()
    request = SelfServiceRefundRequest.objects.get()
    assert request.status == Status.REFUNDED and request.action_id is not None
    assert "Refunded" in body and "We are confirming your refund" not in body


def test_a_request_orphaned_after_its_approval_gets_its_ticket_and_follows_it(
    acme, spy, sign_in, monkeypatch
):
    link, url = _link(acme)
    real = ssr._ticket_enqueue

    def boom(*args, **kwargs):
        raise RuntimeError("db connection lost")  # any error inside _settled's transaction

    monkeypatch.setattr(ssr, "_ticket_enqueue", boom)
    with pytest.raises(RuntimeError):
        refund_request_submit(link=link, charge_id="ch_acme_dup1", reason="other")
    monkeypatch.setattr(ssr, "_ticket_enqueue", real)
    request = SelfServiceRefundRequest.objects.get()
    assert request.status == Status.RECEIVED and not _tickets().exists()
    # the customer reloads: the request finds its action, and the agents get their ticket
    Client().get(_path(url))
    request.refresh_from_db()
    assert request.status == Status.WITH_AGENTS and _tickets().count() == 1
    # and it follows the approval
    manager, _ = sign_in(acme, Role.MANAGER)
    approval = ApprovalRequest.objects.get()
    approval_decide(approval_id=approval.pk, user=manager.user, workspace=acme, decision="approve")
    request.refresh_from_db()
    assert request.status == Status.APPROVED and len(spy.writes("refund")) == 1
    # the re-drive has nothing left to do, and no second ticket is made
    assert refund_requests_redrive(now=timezone.now() + timedelta(minutes=10)) == 0
    assert _tickets().count() == 1


def test_the_redrive_records_an_approval_made_before_it(acme, spy, sign_in, monkeypatch):
    link, _url = _link(acme)
    real = ssr._settled
    monkeypatch.setattr(ssr, "_settled", _die)
    with pytest.raises(RuntimeError):
        refund_request_submit(link=link, charge_id="ch_acme_dup1", reason="other")
    monkeypatch.setattr(ssr, "_settled", real)
    manager, _ = sign_in(acme, Role.MANAGER)
    approval = ApprovalRequest.objects.get()
    approval_decide(approval_id=approval.pk, user=manager.user, workspace=acme, decision="approve")
    assert refund_requests_redrive(now=timezone.now() + timedelta(minutes=10)) == 1
    request = SelfServiceRefundRequest.objects.get()
    assert request.status == Status.APPROVED and request.action_id == approval.action_id


def _die(*args, **kwargs):
    raise RuntimeError("worker killed")


def test_the_redrive_submits_a_request_whose_action_was_never_made(acme, spy, monkeypatch):
    support.self_service_limit_set(acme, 10000)
    link, _url = _link(acme)
    real = ssr.refund_request_process
    monkeypatch.setattr(ssr, "refund_request_process", _die)  # died before action_submit
    with pytest.raises(RuntimeError):
        refund_request_submit(link=link, charge_id="ch_acme_dup1", reason="other")
    monkeypatch.setattr(ssr, "refund_request_process", real)
    assert not BillingAction.objects.exists()
    assert refund_requests_redrive(now=timezone.now() + timedelta(minutes=10)) == 1
    request = SelfServiceRefundRequest.objects.get()
    assert request.status == Status.REFUNDED and len(spy.writes("refund")) == 1
    # run again: nothing more happens
    assert refund_requests_redrive(now=timezone.now() + timedelta(minutes=20)) == 0
    assert len(spy.writes("refund")) == 1


def test_the_redrive_leaves_a_deactivated_workspaces_requests(acme, spy, monkeypatch):
    support.self_service_limit_set(acme, 10000)
    link, _url = _link(acme)
    real = ssr.refund_request_process
    monkeypatch.setattr(ssr, "refund_request_process", _die)
    with pytest.raises(RuntimeError):
        refund_request_submit(link=link, charge_id="ch_acme_dup1", reason="other")
    monkeypatch.setattr(ssr, "refund_request_process", real)
    acme.is_active = False
    acme.save(update_fields=["is_active"])
    assert refund_requests_redrive(now=timezone.now() + timedelta(minutes=10)) == 0
    assert not spy.writes("refund")


def test_the_redrive_is_on_beats_schedule(settings):
    tasks = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    assert "billing_app.tasks.self_service_refunds.refund_requests_redrive_task" in tasks
    from billing_app.tasks.self_service_refunds import refund_requests_redrive_task

    assert refund_requests_redrive_task.name.endswith("refund_requests_redrive_task")


# --- 5. the approver's comment is internal ----------------------------------------------------


def test_the_approvers_deny_comment_is_never_shown_to_the_customer(acme, spy, sign_in):
    link, url = _link(acme)
    request = refund_request_submit(link=link, charge_id="ch_acme_dup1", reason="other")
    manager, _ = sign_in(acme, Role.MANAGER)
    approval_decide(
        approval_id=request.action.approval.pk,
        user=manager.user,
        workspace=acme,
        decision="deny",
        comment="Flagged by risk team: likely refund abuse, 4th this quarter",
    )
    body = Client().get(_path(url)).content.decode()
    assert "refund abuse" not in body and "risk team" not in body
    assert "our billing team reviewed your request and declined it" in body
    assert "Declined" in body


def test_the_approval_page_says_the_comment_is_internal_for_a_customers_request(acme, spy, sign_in):
    link, _url = _link(acme)
    request = refund_request_submit(link=link, charge_id="ch_acme_dup1", reason="other")
    manager, _ = sign_in(acme, Role.MANAGER)
    browser = Client()
    verified_login(browser, manager.user)
    page = browser.get(f"/approvals/{request.action.approval.pk}/").content.decode()
    assert 'data-testid="comment-internal"' in page and "your comment is internal" in page


# --- 6. reconciliation moves the request on --------------------------------------------------


def test_an_unknown_outcome_settled_by_reconciliation_moves_the_request(acme, spy):
    support.self_service_limit_set(acme, 10000)
    link, _url = _link(acme)
    spy.fail("refund", *[ProviderOutcomeUnknown("Stripe did not confirm this in time.")] * 3)
    request = refund_request_submit(link=link, charge_id="ch_acme_dup1", reason="other")
    assert request.status == Status.PROCESSING
    assert actions_unknown_reconcile() == 1
    request.refresh_from_db()
    assert request.status == Status.REFUNDED and request.decided_at is not None


# --- 8. a deactivated workspace's links ------------------------------------------------------


def test_a_deactivated_workspaces_link_reveals_nothing_and_refunds_nothing(acme, spy):
    support.self_service_limit_set(acme, 10000)
    link, url = _link(acme)
    acme.is_active = False
    acme.save(update_fields=["is_active"])
    client = Client()
    page = client.get(_path(url))
    assert page.status_code == 404 and b"ch_acme_dup1" not in page.content
    client.post(_path(url), {"charge_id": "ch_acme_dup1", "reason": "other"})
    assert not SelfServiceRefundRequest.objects.exists() and not spy.writes("refund")


# --- 10. another link's open request on the same payment --------------------------------------


def test_another_links_page_says_a_request_is_already_with_the_team(acme, spy):
    (first, _u1), (second, url) = _link(acme), _link(acme)
    made = refund_request_submit(link=first, charge_id="ch_acme_dup1", reason="other")
    assert made.status == Status.WITH_AGENTS
    rows = {row.charge_id: row for row in refund_page_payments(link=second)}
    row = rows["ch_acme_dup1"]
    assert row.state == "elsewhere" and "already been made" in row.message
    body = Client().get(_path(url)).content.decode()
    assert "already fully refunded" not in body
    # a request made anyway (a stale page) says the same, not "already refunded"
    again = refund_request_submit(link=second, charge_id="ch_acme_dup1", reason="other")
    assert again.status == Status.REFUSED and again.refusal_code == REQUEST_PENDING
    assert "already been made" in request_message(again, workspace=acme)
    assert len(spy.writes("refund")) == 0
