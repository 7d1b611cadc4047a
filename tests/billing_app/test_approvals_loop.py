"""Approvals close the loop: the requester sees each request's outcome and the customer
message for it; an action opens into its details in words; approvers see the customer,
money, plan, MRR, the parameters in words, the ticket link and their decided history, on
the API and on the /approvals/ pages (with sign-out)."""

from __future__ import annotations

import pytest
from django.test import Client

from billing_app.catalog import ActionKind, Role
from billing_app.models import ApprovalRequest, BillingAction
from billing_app.selectors import approvals as approvals_selectors
from billing_app.selectors.action_details import ticket_url
from billing_app.selectors.action_messages import reason_clause
from billing_app.services.actions import run as actions_run
from helpdesk_connectors.models import Installation

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
def specialist(workspace, acme, api_as):
    return api_as(workspace, Role.SPECIALIST, agent_id="spec-1")


@pytest.fixture
def big_refund(specialist):
    """A Billing Specialist's $1,200 refund: above their $1,000 limit, so a Manager decides."""
    body = post_action(specialist, K.ISSUE_REFUND, refund(120_000)).json()
    assert body["status"] == "pending_approval", body
    assert body["approval"]["required_roles"] == ["manager"]
    return body


def lines(details):
    return {line["label"]: line["text"] for line in details["lines"]}


# --- the requester's side --------------------------------------------------------------------


def test_an_action_opens_into_its_details_in_words(workspace, specialist, big_refund, api_as):
    # when the requester opens the pending action
    response = specialist.get(f"/api/v1/actions/{big_refund['id']}/")

    # then it says what was asked, who must decide and why, in words
    assert response.status_code == 200
    body = response.json()
    assert body["id"] == big_refund["id"] and body["status"] == "pending_approval"
    details = body["details"]
    assert details["kind_label"] == "Issue refund"
    assert details["outcome"] == {"state": "pending", "title": "Waiting for approval by Manager"}
    assert lines(details)["Refund"] == "$1,200.00"
    assert lines(details)["Reason"] == "Requested by customer"
    assert lines(details)["Charge"].startswith("Payment of $3,400.00 on ")
    trail = details["trail"]
    assert trail["requested_by"] == "Billing Specialist spec-1"
    assert trail["requested_role"] == "Billing Specialist"
    assert trail["approver_roles"] == "Manager"
    assert trail["reason"] == "$1,200.00 is above the Billing Specialist limit (up to $1,000.00)"
    assert trail["decided_by"] is None
    assert details["note"]["label"]
    assert details["customer_message"] == ""

    # and another workspace's agent cannot open it
    assert (
        api_as(_other(workspace), Role.MANAGER)
        .get(f"/api/v1/actions/{big_refund['id']}/")
        .status_code
        == 404
    )


def _other(workspace):
    from billing_app.services.workspaces import installation_add, workspace_create

    other = workspace_create(slug="globex", name="Globex", provider="sandbox")
    installation_add(workspace=other, connector="demo", domain="globex.demo.local")
    return other


def test_the_requester_sees_the_approval_and_the_approved_message(
    workspace, specialist, big_refund, api_as, spy
):
    manager = api_as(workspace, Role.MANAGER, agent_id="mgr-1")
    approval_id = big_refund["approval"]["id"]

    # when a Manager approves it
    decided = manager.post(
        f"/api/v1/approvals/{approval_id}/approve/", {"comment": "Loyal customer"}, format="json"
    )
    assert decided.status_code == 200
    assert decided.json()["details"]["outcome"]["state"] == "approved"

    # then the requester's list for the customer shows the outcome and the approved message
    mine = specialist.get("/api/v1/approvals/requested/", {"customer_id": "cus_acme"}).json()
    (item,) = mine["results"]
    details = item["details"]
    assert details["outcome"] == {
        "state": "approved",
        "title": "Approved by Manager mgr-1 (Manager) and done",
    }
    assert details["customer_message"].startswith("We've processed your refund of $1,200.00.")
    assert details["message_title"] == "Message for the customer (request approved)"
    assert details["trail"]["decided_by"] == "Manager mgr-1"
    assert details["trail"]["decided_role"] == "Manager"
    assert details["trail"]["comment"] == "Loyal customer"
    assert details["provider_object_id"] == item["provider_object_id"] != ""
    assert len(spy.writes("refund")) == 1

    # and another agent's list, or another customer's, does not show it
    other = api_as(workspace, Role.SPECIALIST, agent_id="spec-2")
    assert other.get("/api/v1/approvals/requested/", {"customer_id": "cus_acme"}).json() == {
        "results": []
    }
    assert (
        specialist.get("/api/v1/approvals/requested/", {"customer_id": "cus_other"}).json()[
            "results"
        ]
        == []
    )


def test_a_denied_request_carries_the_comment_and_a_well_formed_denied_message(
    workspace, specialist, big_refund, api_as, spy
):
    manager = api_as(workspace, Role.MANAGER)

    manager.post(
        f"/api/v1/approvals/{big_refund['approval']['id']}/deny/",
        {"comment": "Outside the 30-day refund window."},
        format="json",
    )

    (item,) = specialist.get("/api/v1/approvals/requested/", {"customer_id": "cus_acme"}).json()[
        "results"
    ]
    details = item["details"]
    assert details["outcome"]["state"] == "denied"
    assert details["outcome"]["title"].endswith(": Outside the 30-day refund window.")
    assert details["customer_message"] == (
        "Based on our refund policy, this charge isn't eligible for refund because outside the "
        "30-day refund window."
    )
    assert details["message_title"] == "Message for the customer (request denied)"
    assert spy.writes() == []


def test_an_expired_request_reads_as_expired(workspace, specialist, big_refund):
    from django.utils import timezone

    from billing_app.services.approvals import approvals_expire

    ApprovalRequest.objects.filter(pk=big_refund["approval"]["id"]).update(
        expires_at=timezone.now()
    )
    assert approvals_expire() == 1

    (item,) = specialist.get("/api/v1/approvals/requested/", {"customer_id": "cus_acme"}).json()[
        "results"
    ]
    assert item["details"]["outcome"] == {
        "state": "expired",
        "title": "Expired: nobody decided in time",
    }


def test_the_requested_list_needs_a_customer_id(specialist):
    response = specialist.get("/api/v1/approvals/requested/")
    assert response.status_code == 400
    assert response.json()["error"]["code"]


@pytest.mark.parametrize(
    ("reason", "clause"),
    [
        ("Outside the 30-day refund window.", "outside the 30-day refund window"),
        ("Because the plan was used all month", "the plan was used all month"),
        ("VAT was already reclaimed.", "VAT was already reclaimed"),
        ("  the charge is  for a month already used. ", "the charge is for a month already used"),
        ("I checked: it was used", "I checked: it was used"),
    ],
)
def test_a_reason_reads_as_the_end_of_the_denied_sentence(reason, clause):
    assert reason_clause(reason) == clause


# --- the approvers' side: the API ----------------------------------------------------------


def test_approvers_see_the_customer_the_words_and_whether_they_may_decide(
    workspace, specialist, api_as
):
    # given a Specialist's 20% discount (VP) and force cancellation (Legal)
    discount = post_action(
        specialist,
        K.APPLY_DISCOUNT,
        {
            "subscription_id": "sub_acme",
            "percent_off": "20",
            "duration": "repeating",
            "duration_in_months": 3,
        },
    ).json()
    cancel = post_action(specialist, K.FORCE_CANCEL).json()
    assert discount["approval"]["required_roles"] == ["vp"]
    assert cancel["approval"]["required_roles"] == ["legal"]

    # when the VP lists what they may decide
    (item,) = api_as(workspace, Role.VP).get("/api/v1/approvals/").json()["results"]

    # then the request reads as words, with the customer's name, plan and MRR
    assert item["id"] == discount["approval"]["id"]
    assert item["required_role_labels"] == "VP Approver"
    assert item["can_decide"] is True
    assert item["customer"]["name"] == "Acme Corp"
    assert item["customer"]["plan"].startswith("Enterprise Pro")
    assert item["customer"]["mrr"]["display"] == "$3,400.00"
    words = lines(item["details"])
    assert words["Discount"] == "20% off"
    assert words["Duration"] == "For 3 months"
    assert words["Subscription"] == "Enterprise Pro subscription"
    assert "sub_acme" not in str(item["details"])

    # and Legal sees the cancellation, now and not at period end
    (legal_item,) = api_as(workspace, Role.LEGAL).get("/api/v1/approvals/").json()["results"]
    assert legal_item["required_role_labels"] == "Legal Approver"
    assert lines(legal_item["details"])["When"] == "Now, immediately"


def test_pending_plan_and_seat_changes_say_from_and_to(workspace, acme, sign_in):
    # given a plan change and a seat change waiting for approval (nothing changed yet)
    from billing_app.selectors.action_details import action_words

    agent, _ = sign_in(workspace, Role.L2)
    for n, (kind, params) in enumerate(
        (
            (K.CHANGE_PLAN, {"subscription_id": "sub_acme", "price_id": "price_ultimate_seat"}),
            (K.ADJUST_SEATS, {"subscription_id": "sub_acme", "quantity": 55}),
        )
    ):
        action = BillingAction.objects.create(
            workspace=workspace,
            actor=agent.user,
            actor_role="l2",
            customer_id="cus_acme",
            kind=kind,
            params=params,
            status=BillingAction.Status.PENDING_APPROVAL,
            decision="approval",
            idempotency_key=f"pending-{n}",
            request_fingerprint="x",
        )

        # then the words say where it starts from, read from the mirror, and where it goes
        words = {line["label"]: line["text"] for line in action_words(action)}
        if kind == K.CHANGE_PLAN:
            assert (words["From"], words["To"]) == ("Enterprise Pro", "Enterprise Ultimate")
        else:
            assert words["Seats"] == "50 → 55"
        assert words["Subscription"] == "Enterprise Pro subscription"


def test_the_decided_history_is_paged_and_can_show_only_mine(
    workspace, specialist, api_as, monkeypatch, spy
):
    monkeypatch.setattr(approvals_selectors, "HISTORY_PAGE", 1)
    manager = api_as(workspace, Role.MANAGER, agent_id="mgr-a")
    other_manager = api_as(workspace, Role.MANAGER, agent_id="mgr-b")
    first = post_action(specialist, K.ISSUE_REFUND, refund(110_000)).json()
    second = post_action(specialist, K.ISSUE_REFUND, refund(120_000)).json()
    for approver, body in ((manager, first), (other_manager, second)):
        decided = approver.post(
            f"/api/v1/approvals/{body['approval']['id']}/deny/", {"comment": "no"}, format="json"
        )
        assert decided.status_code == 200

    page1 = manager.get("/api/v1/approvals/decided/").json()
    page2 = manager.get("/api/v1/approvals/decided/", {"page": 2}).json()
    mine = manager.get("/api/v1/approvals/decided/", {"mine": "true"}).json()

    assert [r["id"] for r in page1["results"]] == [second["approval"]["id"]]
    assert page1["has_next"] is True
    assert [r["id"] for r in page2["results"]] == [first["approval"]["id"]]
    assert page2["has_next"] is False
    assert [r["id"] for r in mine["results"]] == [first["approval"]["id"]]
    assert page1["results"][0]["customer"]["name"] == "Acme Corp"
    # an agent who is no approver has no history to read
    assert specialist.get("/api/v1/approvals/decided/").status_code == 403
    assert manager.get("/api/v1/approvals/decided/", {"page": "x"}).status_code == 400


# --- the approvers' side: the /approvals/ pages ---------------------------------------------


@pytest.fixture
def vp_credit(specialist):
    body = post_action(
        specialist, K.APPLY_CREDIT, {"amount": 60000, "currency": "USD", "description": "Outage"}
    ).json()
    assert body["approval"]["required_roles"] == ["vp"]
    return body


def _browser_as(user):
    browser = Client(enforce_csrf_checks=True)
    verified_login(browser, user)
    return browser


def test_the_queue_page_reads_as_an_approver_weighs_it(workspace, vp_credit, sign_in):
    # given the request was made on a Zendesk ticket
    action = BillingAction.objects.get(pk=vp_credit["id"])
    Installation.objects.filter(pk=action.installation_id).update(
        connector="zendesk", domain="acme.zendesk.com"
    )
    vp, _ = sign_in(workspace, Role.VP, "vp-1")

    page = _browser_as(vp.user).get("/approvals/").content.decode()

    assert "Acme Corp" in page and "cus_acme" not in page
    assert "$600.00" in page and "60000" not in page
    assert "Enterprise Pro ($2,400/month)" in page
    assert "MRR $3,400.00" in page
    assert "awaits approval by VP Approver" in page
    assert "Vp" not in page
    assert 'href="https://acme.zendesk.com/agent/tickets/1001"' in page
    assert "$600.00 is above" in page  # the reason
    assert "Review and decide" in page

    detail = _browser_as(vp.user).get(f"/approvals/{vp_credit['approval']['id']}/").content
    detail = detail.decode()
    assert "Apply credit for Acme Corp" in detail
    assert "Awaits approval by VP Approver." in detail
    assert "Credit:</span> $600.00" in detail
    assert "Description:</span> Outage" in detail
    assert "Approve and execute" in detail


def test_ticket_links_follow_the_helpdesk():
    assert ticket_url(connector="zendesk", domain="acme.zendesk.com", ticket_id="42") == (
        "https://acme.zendesk.com/agent/tickets/42"
    )
    assert ticket_url(connector="freshdesk", domain="acme.freshdesk.com", ticket_id="42") == (
        "https://acme.freshdesk.com/a/tickets/42"
    )
    assert ticket_url(connector="demo", domain="acme.demo.local", ticket_id="42") == ""
    assert ticket_url(connector="zendesk", domain="acme.zendesk.com", ticket_id="") == ""


def test_a_request_the_approver_cannot_decide_has_no_decide_form(workspace, vp_credit, sign_in):
    # a Manager may open the page of a VP request (same workspace) but not decide it
    manager, _ = sign_in(workspace, Role.MANAGER)
    browser = _browser_as(manager.user)
    assert f'data-approval-id="{vp_credit["approval"]["id"]}"' not in (
        browser.get("/approvals/").content.decode()
    )
    detail = browser.get(f"/approvals/{vp_credit['approval']['id']}/").content.decode()
    assert "Awaits approval by VP Approver." in detail
    assert "Approve and execute" not in detail


def test_the_decided_history_on_the_page(workspace, vp_credit, sign_in, spy, monkeypatch):
    vp, _ = sign_in(workspace, Role.VP, "vp-1")
    browser = _browser_as(vp.user)
    token = browser.get("/approvals/") and browser.cookies["csrftoken"].value
    browser.post(
        f"/approvals/{vp_credit['approval']['id']}/",
        {"decision": "deny", "comment": "Too generous", "csrfmiddlewaretoken": token},
    )

    page = browser.get("/approvals/").content.decode()
    assert 'data-testid="history"' in page
    assert "Decided recently in Acme" in page
    assert "Too generous" in page
    assert "VP Approver" in page  # the decider's role, by its label
    mine = browser.get("/approvals/?decided=mine").content.decode()
    assert "Too generous" in mine

    # paged: with one per page, the next page link appears once there is more
    monkeypatch.setattr(approvals_selectors, "HISTORY_PAGE", 1)
    ApprovalRequest.objects.create(
        action=BillingAction.objects.create(
            workspace=workspace,
            actor=vp.user,
            actor_role="specialist",
            customer_id="cus_acme",
            kind="apply_credit",
            params={},
            status="denied",
            decision="approval",
            idempotency_key="history-2",
            request_fingerprint="x",
        ),
        workspace=workspace,
        required_roles=["vp"],
        reason="test",
        status="denied",
        decided_by=vp.user,
        decided_at=ApprovalRequest.objects.get(pk=vp_credit["approval"]["id"]).decided_at,
        expires_at=ApprovalRequest.objects.get(pk=vp_credit["approval"]["id"]).expires_at,
    )
    page = browser.get("/approvals/").content.decode()
    assert "page=2" in page and "Older" in page
    assert "Newer" in browser.get("/approvals/?page=2").content.decode()


def test_every_approvals_page_signs_out_with_a_post(workspace, vp_credit, sign_in):
    vp, _ = sign_in(workspace, Role.VP, "vp-1")
    browser = _browser_as(vp.user)
    for url in ("/approvals/", f"/approvals/{vp_credit['approval']['id']}/"):
        page = browser.get(url).content.decode()
        assert '<form method="post" action="/accounts/logout/"' in page
        assert 'name="csrfmiddlewaretoken"' in page
        assert 'data-testid="sign-out"' in page

    # a sign-out without the CSRF token is refused; with it, the session ends
    assert browser.post("/accounts/logout/").status_code == 403
    assert browser.get("/approvals/").status_code == 200
    token = browser.cookies["csrftoken"].value
    response = browser.post("/accounts/logout/", {"csrfmiddlewaretoken": token})
    assert response.status_code == 200
    assert b"Signed out" in response.content
    assert browser.get("/approvals/").status_code == 302
