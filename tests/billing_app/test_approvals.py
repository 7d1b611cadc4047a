"""Approval requests: list, approve (executes with approved_by), deny, self-approval, roles, expiry."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from billing_app.catalog import ActionKind, Role
from billing_app.errors import Conflict, NotPermitted
from billing_app.models import (
    ApprovalRequest,
    BillingAction,
    MirrorBalanceTransaction,
    MirrorRefund,
)
from billing_app.services.actions import run as actions_run
from billing_app.services.approvals import approval_decide, approval_list_for, approvals_expire
from billing_app.tasks.approvals import approvals_expire_task

from .actions_support import ProviderSpy, account_seed
from .test_actions_api import post_action, refund
from .two_factor_support import verified_login

K = ActionKind


@pytest.fixture
def acme(workspace):
    return account_seed(workspace)


@pytest.fixture
def spy(monkeypatch):
    spy = ProviderSpy()
    real = actions_run.get_provider
    monkeypatch.setattr(actions_run, "get_provider", lambda ws: spy.wrap(real(ws)))
    return spy


@pytest.fixture
def escalated_refund(workspace, acme, api_as):
    """A Billing Specialist's $1,200 refund request (above their $1,000 limit), waiting for a
    Manager. (An L1 agent may not even request a refund: the brief's ❌.)"""
    requester = api_as(workspace, Role.SPECIALIST, agent_id="spec-requester")
    body = post_action(requester, K.ISSUE_REFUND, refund(120_000)).json()
    assert body["status"] == "pending_approval"
    return requester, body


def test_approver_sees_what_they_may_decide_and_nobody_else_does(
    workspace, escalated_refund, api_as
):
    requester, body = escalated_refund
    manager = api_as(workspace, Role.MANAGER)

    listed = manager.get("/api/v1/approvals/").json()["results"]
    assert [a["id"] for a in listed] == [body["approval"]["id"]]
    assert listed[0]["action"]["kind"] == "issue_refund"
    assert listed[0]["action"]["amount"]["display"] == "$1,200.00"
    assert listed[0]["required_roles"] == ["manager"]

    # the requester, an L2 agent and a VP (not a required role) see nothing
    assert requester.get("/api/v1/approvals/").json()["results"] == []
    assert api_as(workspace, Role.L2).get("/api/v1/approvals/").json()["results"] == []
    assert api_as(workspace, Role.VP).get("/api/v1/approvals/").json()["results"] == []


def test_approval_executes_once_with_the_approver_recorded(
    workspace, escalated_refund, api_as, spy, django_capture_on_commit_callbacks
):
    _, body = escalated_refund
    manager = api_as(workspace, Role.MANAGER, agent_id="mgr-1")

    with django_capture_on_commit_callbacks() as callbacks:
        response = manager.post(
            f"/api/v1/approvals/{body['approval']['id']}/approve/", {"comment": "ok"}, format="json"
        )

    assert response.status_code == 200, response.json()
    decided = response.json()
    assert decided["status"] == "approved"
    assert decided["decided_role"] == "manager"
    assert decided["action"]["status"] == "succeeded"
    assert decided["action"]["approved_by"] == manager.membership.user.get_full_name()
    action = BillingAction.objects.get(pk=body["id"])
    assert action.approved_by == manager.membership.user
    ((_, kwargs),) = spy.writes("refund")
    assert kwargs["idempotency_key"] == f"billing-desk-{action.id}-issue_refund"
    assert MirrorRefund.objects.filter(charge_id="ch_acme_paid", amount=120_000).count() == 1
    assert action.customer_message.startswith("We've processed your refund of $1,200.00.")
    # the decision note and the action note are both queued for the requester's ticket
    assert len(callbacks) == 2

    # a second approval of the same request changes nothing
    again = manager.post(f"/api/v1/approvals/{body['approval']['id']}/approve/", {}, format="json")
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "already_decided"
    assert len(spy.writes("refund")) == 1


def test_deny_needs_a_comment_and_sets_the_action_denied(workspace, escalated_refund, api_as, spy):
    _, body = escalated_refund
    manager = api_as(workspace, Role.MANAGER)
    url = f"/api/v1/approvals/{body['approval']['id']}/deny/"

    missing = manager.post(url, {"comment": "  "}, format="json")
    assert missing.status_code == 400
    assert missing.json()["error"]["code"] == "comment_required"
    assert ApprovalRequest.objects.get(pk=body["approval"]["id"]).status == "pending"

    denied = manager.post(url, {"comment": "the charge is for a month already used"}, format="json")
    assert denied.status_code == 200
    assert denied.json()["status"] == "denied"
    action = BillingAction.objects.get(pk=body["id"])
    assert action.status == "denied"
    assert action.completed_at is not None
    assert action.customer_message == (
        "Based on our refund policy, this charge isn't eligible for refund because the charge is "
        "for a month already used."
    )
    assert spy.writes() == []


def test_an_approver_never_approves_their_own_request(workspace, acme, api_as, spy):
    # given three refunds this quarter: the Manager's own refund goes to Manager review
    for n in range(3):
        MirrorRefund.objects.create(
            workspace=workspace,
            stripe_id=f"re_{n}",
            charge_id="ch_acme_paid",
            amount=100,
            currency="USD",
            status="succeeded",
            created=acme.now - timedelta(days=n + 1),
        )
    manager = api_as(workspace, Role.MANAGER, agent_id="mgr-self")
    body = post_action(manager, K.ISSUE_REFUND, refund(500)).json()
    assert body["status"] == "pending_approval"

    response = manager.post(
        f"/api/v1/approvals/{body['approval']['id']}/approve/", {}, format="json"
    )

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "self_approval"
    assert manager.get("/api/v1/approvals/").json()["results"] == []
    assert BillingAction.objects.get(pk=body["id"]).status == "pending_approval"
    # another Manager may
    other = api_as(workspace, Role.MANAGER, agent_id="mgr-other")
    assert (
        other.post(
            f"/api/v1/approvals/{body['approval']['id']}/approve/", {}, format="json"
        ).status_code
        == 200
    )
    assert len(spy.writes("refund")) == 1


def test_wrong_role_cannot_decide(workspace, acme, api_as, spy):
    # a $600 credit needs a VP; a Manager cannot approve it, an L2 is no approver at all
    body = post_action(
        api_as(workspace, Role.SPECIALIST), K.APPLY_CREDIT, {"amount": 60000, "currency": "USD"}
    ).json()
    url = f"/api/v1/approvals/{body['approval']['id']}/approve/"

    as_manager = api_as(workspace, Role.MANAGER).post(url, {}, format="json")
    assert as_manager.status_code == 403
    assert as_manager.json()["error"]["code"] == "wrong_approver_role"
    as_l2 = api_as(workspace, Role.L2).post(url, {}, format="json")
    assert as_l2.status_code == 403
    assert as_l2.json()["error"]["code"] == "not_an_approver"
    assert BillingAction.objects.get(pk=body["id"]).status == "pending_approval"
    assert spy.writes() == []


def test_approval_of_another_workspace_is_404(workspace, escalated_refund, api_as, make_workspace):
    _, body = escalated_refund
    globex_manager = api_as(make_workspace("globex"), Role.MANAGER)
    response = globex_manager.post(
        f"/api/v1/approvals/{body['approval']['id']}/approve/", {}, format="json"
    )
    assert response.status_code == 404
    assert ApprovalRequest.objects.get(pk=body["approval"]["id"]).status == "pending"


def test_expiry_marks_request_and_action_and_blocks_decisions(
    workspace, escalated_refund, api_as, spy, django_capture_on_commit_callbacks
):
    _, body = escalated_refund
    approval = ApprovalRequest.objects.get(pk=body["approval"]["id"])
    ApprovalRequest.objects.filter(pk=approval.pk).update(
        expires_at=timezone.now() - timedelta(minutes=1)
    )

    with django_capture_on_commit_callbacks() as callbacks:
        assert approvals_expire_task.delay().get() == 1

    approval.refresh_from_db()
    assert approval.status == "expired"
    assert BillingAction.objects.get(pk=body["id"]).status == "expired"
    assert len(callbacks) == 1  # the note on the requester's ticket
    assert approvals_expire() == 0  # idempotent

    manager = api_as(workspace, Role.MANAGER)
    response = manager.post(f"/api/v1/approvals/{approval.pk}/approve/", {}, format="json")
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "already_decided"
    assert spy.writes() == []


def test_deciding_an_overdue_request_expires_it(workspace, escalated_refund, api_as, spy):
    _, body = escalated_refund
    ApprovalRequest.objects.filter(pk=body["approval"]["id"]).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    manager = api_as(workspace, Role.MANAGER)
    assert manager.get("/api/v1/approvals/").json()["results"] == []

    response = manager.post(
        f"/api/v1/approvals/{body['approval']['id']}/approve/", {}, format="json"
    )

    assert response.status_code == 409
    assert response.json()["error"]["code"] == "approval_expired"
    assert ApprovalRequest.objects.get(pk=body["approval"]["id"]).status == "expired"
    assert BillingAction.objects.get(pk=body["id"]).status == "expired"
    assert spy.writes() == []


def test_two_decisions_in_a_row_produce_one(workspace, escalated_refund, sign_in, spy):
    _, body = escalated_refund
    first, _ = sign_in(workspace, Role.MANAGER, "m1")
    second, _ = sign_in(workspace, Role.MANAGER, "m2")
    approval_decide(
        approval_id=body["approval"]["id"], user=first.user, workspace=workspace, decision="approve"
    )

    with pytest.raises(Conflict) as raised:
        approval_decide(
            approval_id=body["approval"]["id"],
            user=second.user,
            workspace=workspace,
            decision="deny",
            comment="no",
        )
    assert raised.value.code == "already_decided"
    approval = ApprovalRequest.objects.get(pk=body["approval"]["id"])
    assert approval.status == "approved" and approval.decided_by == first.user
    assert len(spy.writes("refund")) == 1


def test_approval_rechecks_preconditions_before_executing(
    workspace, escalated_refund, sign_in, spy
):
    # given the charge got disputed while the request waited
    _, body = escalated_refund
    from billing_app.models import MirrorCharge

    MirrorCharge.objects.filter(workspace=workspace, stripe_id="ch_acme_paid").update(disputed=True)
    manager, _ = sign_in(workspace, Role.MANAGER)

    approval = approval_decide(
        approval_id=body["approval"]["id"],
        user=manager.user,
        workspace=workspace,
        decision="approve",
    )

    action = BillingAction.objects.get(pk=body["id"])
    assert approval.status == "approved"
    assert action.status == "failed"
    assert action.error_code == "charge_disputed"
    assert action.approved_by == manager.user
    assert spy.writes() == []


def test_vp_only_approver_is_refused_without_membership(
    workspace, escalated_refund, django_user_model
):
    stranger = django_user_model.objects.create_user("stranger")
    with pytest.raises(NotPermitted):
        approval_decide(
            approval_id=escalated_refund[1]["approval"]["id"],
            user=stranger,
            workspace=workspace,
            decision="approve",
        )
    assert approval_list_for(user=stranger, workspace=workspace) == []


# --- the /approvals/ web page for VP and Legal approvers ------------------------------------


@pytest.fixture
def vp_request(workspace, acme, api_as):
    """A Billing Specialist's $600 credit, waiting for a VP."""
    body = post_action(
        api_as(workspace, Role.SPECIALIST), K.APPLY_CREDIT, {"amount": 60000, "currency": "USD"}
    ).json()
    assert body["decision"]["approver_roles"] == ["vp"]
    return body


def test_web_queue_needs_a_login(db):
    response = Client().get("/approvals/")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


def test_vp_approves_on_the_web_page_with_csrf(workspace, vp_request, sign_in, spy):
    vp, _ = sign_in(workspace, Role.VP, "vp-1")
    browser = Client(enforce_csrf_checks=True)
    verified_login(browser, vp.user)

    page = browser.get("/approvals/")
    assert page.status_code == 200
    assert b"$600.00" in page.content and b"Apply credit" in page.content
    detail_url = f"/approvals/{vp_request['approval']['id']}/"
    detail = browser.get(detail_url)
    assert b"Approve and execute" in detail.content

    # a POST without the CSRF token is refused and changes nothing
    assert browser.post(detail_url, {"decision": "approve"}).status_code == 403
    assert BillingAction.objects.get(pk=vp_request["id"]).status == "pending_approval"

    token = browser.cookies["csrftoken"].value
    response = browser.post(
        detail_url, {"decision": "approve", "comment": "", "csrfmiddlewaretoken": token}
    )

    assert response.status_code == 302
    action = BillingAction.objects.get(pk=vp_request["id"])
    assert action.status == "succeeded"
    assert action.approved_by == vp.user
    assert (
        MirrorBalanceTransaction.objects.filter(customer_id="cus_acme", amount=-60000).count() == 1
    )
    assert len(spy.writes("apply_credit")) == 1
    assert b"Approved." in browser.get("/approvals/").content


def test_web_deny_without_comment_is_refused(workspace, vp_request, sign_in):
    vp, _ = sign_in(workspace, Role.VP)
    browser = Client()
    verified_login(browser, vp.user)
    response = browser.post(
        f"/approvals/{vp_request['approval']['id']}/", {"decision": "deny", "comment": ""}
    )
    assert response.status_code == 400
    assert b"Say why the request is denied" in response.content
    assert ApprovalRequest.objects.get(pk=vp_request["approval"]["id"]).status == "pending"


def test_web_page_hides_other_workspaces_and_roles(workspace, vp_request, sign_in, make_workspace):
    legal, _ = sign_in(workspace, Role.LEGAL)
    browser = Client()
    verified_login(browser, legal.user)
    # Legal may not decide a VP request: it is not listed and cannot be decided
    assert b"$600.00" not in browser.get("/approvals/").content
    response = browser.post(f"/approvals/{vp_request['approval']['id']}/", {"decision": "approve"})
    assert response.status_code == 403
    assert ApprovalRequest.objects.get(pk=vp_request["approval"]["id"]).status == "pending"

    outsider, _ = sign_in(make_workspace("globex"), Role.VP)
    verified_login(browser, outsider.user)
    assert browser.get(f"/approvals/{vp_request['approval']['id']}/").status_code == 404


def test_legal_approves_a_force_cancel_on_the_web(workspace, acme, api_as, sign_in, spy):
    body = post_action(api_as(workspace, Role.SPECIALIST), K.FORCE_CANCEL).json()
    assert body["decision"]["approver_roles"] == ["legal"]
    legal, _ = sign_in(workspace, Role.LEGAL)
    browser = Client()
    verified_login(browser, legal.user)

    browser.post(
        f"/approvals/{body['approval']['id']}/",
        {"decision": "approve", "comment": "fraud confirmed"},
    )

    action = BillingAction.objects.get(pk=body["id"])
    assert action.status == "succeeded", action.error_message
    assert action.result["status"] == "canceled"
    ((_, kwargs),) = spy.writes("cancel_subscription")
    assert kwargs["at_period_end"] is False
    assert kwargs["reason"] == "other" and kwargs["comment"] == "fraudulent signup"


def test_an_approver_without_staff_status_can_sign_in_to_the_queue(db):
    # given a VP approver who is not staff
    from django.contrib.auth.models import User

    User.objects.create_user("vp-anna", password="a-long-passphrase-42")
    client = Client()

    # when they sign in on the plain login page
    page = client.get("/accounts/login/?next=/approvals/")
    response = client.post(
        "/accounts/login/",
        {"username": "vp-anna", "password": "a-long-passphrase-42", "next": "/approvals/"},
    )

    # then they land on the approvals queue, not the admin
    assert page.status_code == 200
    assert response.status_code == 302
    assert response["Location"] == "/approvals/"
    assert client.get("/approvals/").status_code == 200
