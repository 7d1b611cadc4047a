"""Stored policy reasons and action errors are language-independent (review 16, item 2).

A German agent's request that goes to approval stores its reason in English (the audit
text) and as words (``billing_app.words``); whoever reads it later — an English or a
German Manager through the API or the /approvals/ page, the context snapshot of either
language, a note — reads it in their own language. An action's error likewise. A row
written before words were stored shows its stored text.
"""

from __future__ import annotations

import itertools

import pytest
from django.test import Client
from django.utils import translation
from rest_framework.test import APIClient

from billing_app import words as W
from billing_app.catalog import ActionKind, PolicyAction, Role
from billing_app.models import ApprovalRequest, BillingAction, CustomerSnapshot, MirrorCharge
from billing_app.money import Money
from billing_app.policy import ActionRequest, History, NeedsApproval, decide
from billing_app.services.policy import policy_rules_load

from .actions_support import account_seed
from .locale_support import agent_speaking
from .test_actions_api import post_action, refund
from .two_factor_support import verified_login

K = ActionKind
_agents = itertools.count(1)

REASON_EN = "$1,200.00 is above the Billing Specialist limit (up to $1,000.00)"
REASON_DE = "1.200,00\xa0$ liegt über dem Limit für Billing Specialist (bis 1.000,00\xa0$)"
# Words only a German reason or error has, and only an English one has.
GERMAN = ("liegt", "Limit für", "\xa0$", "Zahlung", "Freigabe")
ENGLISH = ("is above", "$1,200.00", "This payment")


def agent(workspace, role: Role, locale: str) -> APIClient:
    """An API client for an agent whose helpdesk profile is in ``locale``."""
    return agent_speaking(
        workspace, role, locale, agent_id=f"{role.value}-{locale}-{next(_agents)}"
    )


@pytest.fixture
def acme(workspace):
    return account_seed(workspace)


@pytest.fixture
def german_request(workspace, acme):
    """A German Billing Specialist's $1,200 refund (above their $1,000 limit), waiting for a
    Manager."""
    body = post_action(agent(workspace, Role.SPECIALIST, "de"), K.ISSUE_REFUND, refund(120_000))
    body = body.json()
    assert body["status"] == "pending_approval", body
    # the requester reads their own answer in German
    assert body["decision"]["reason"] == REASON_DE
    assert body["approval"]["reason"] == REASON_DE
    return body


def listed_reason(client) -> str:
    (row,) = client.get("/api/v1/approvals/").json()["results"]
    return row["reason"]


def test_a_german_agents_request_stores_the_english_reason(workspace, german_request):
    action = BillingAction.objects.get(pk=german_request["id"])
    approval = ApprovalRequest.objects.get(action=action)
    assert action.decision_reason == REASON_EN
    assert approval.reason == REASON_EN
    assert action.words["locale"] == "de"
    # the words render as each language writes them, whatever language stored them
    with translation.override("de"):
        assert approval.reason_text == action.reason_text == REASON_DE
    with translation.override("en"):
        assert approval.reason_text == action.reason_text == REASON_EN


def test_managers_read_the_reason_in_their_own_language(workspace, german_request):
    english = agent(workspace, Role.MANAGER, "en-US")
    german = agent(workspace, Role.MANAGER, "de")

    assert listed_reason(english) == REASON_EN
    assert listed_reason(german) == REASON_DE
    action_url = f"/api/v1/actions/{german_request['id']}/"
    answer_en = english.get(action_url).json()
    answer_de = german.get(action_url).json()
    assert answer_en["decision"]["reason"] == answer_en["approval"]["reason"] == REASON_EN
    assert answer_de["decision"]["reason"] == answer_de["approval"]["reason"] == REASON_DE


def test_the_approvals_page_shows_the_readers_language(workspace, acme, sign_in):
    # given a German Billing Specialist's $600 credit, waiting for a VP (the web page's reader)
    body = post_action(
        agent(workspace, Role.SPECIALIST, "de"),
        K.APPLY_CREDIT,
        {"amount": 60000, "currency": "USD"},
    ).json()
    assert body["decision"]["approver_roles"] == ["vp"]
    vp, _token = sign_in(workspace, Role.VP, "vp-web")
    browser = Client()
    verified_login(browser, vp.user)
    english = "$600.00 is above the Billing Specialist limit (up to $500.00)"
    german = "600,00\xa0$ liegt über dem Limit für Billing Specialist (bis 500,00\xa0$)"
    detail = f"/approvals/{body['approval']['id']}/"

    for url in ("/approvals/", detail):
        page_en = browser.get(url, HTTP_ACCEPT_LANGUAGE="en").content.decode()
        page_de = browser.get(url, HTTP_ACCEPT_LANGUAGE="de").content.decode()
        assert english in page_en and "liegt über" not in page_en
        assert german in page_de and "is above" not in page_de


def test_the_context_snapshot_of_each_language_speaks_only_it(workspace, acme):
    english_agent = agent(workspace, Role.L2, "en-US")
    german_agent = agent(workspace, Role.L2, "de")
    context = "/api/v1/customers/cus_acme/context/"

    # a German agent's request, read by both
    post_action(agent(workspace, Role.SPECIALIST, "de"), K.ISSUE_REFUND, refund(120_000))
    (pending_en,) = english_agent.get(context).json()["pending_approvals"]
    (pending_de,) = german_agent.get(context).json()["pending_approvals"]
    assert pending_en["reason"] == REASON_EN
    assert pending_de["reason"] == REASON_DE
    english_body = CustomerSnapshot.objects.get(customer_id="cus_acme", locale="").body
    german_body = CustomerSnapshot.objects.get(customer_id="cus_acme", locale="de").body
    assert not any(word in english_body for word in ("liegt über", "Limit für"))
    assert REASON_EN not in german_body

    # and an English agent's request, read by the German agent
    post_action(
        agent(workspace, Role.SPECIALIST, "en-US"),
        K.ISSUE_REFUND,
        refund(110_000),
        key="en-request",
    )
    reasons_de = [p["reason"] for p in german_agent.get(context).json()["pending_approvals"]]
    reasons_en = [p["reason"] for p in english_agent.get(context).json()["pending_approvals"]]
    assert all("liegt über dem Limit" in reason for reason in reasons_de), reasons_de
    assert all("is above the Billing Specialist limit" in r for r in reasons_en), reasons_en
    german_body = CustomerSnapshot.objects.get(customer_id="cus_acme", locale="de").body
    assert "is above" not in german_body


def test_an_error_is_stored_in_english_and_read_in_each_language(workspace, german_request):
    # given the refunded payment is disputed before a German Manager approves the refund
    MirrorCharge.objects.filter(workspace=workspace, stripe_id="ch_acme_paid").update(disputed=True)
    german = agent(workspace, Role.MANAGER, "de")
    answer = german.post(
        f"/api/v1/approvals/{german_request['approval']['id']}/approve/", {}, format="json"
    )
    assert answer.status_code == 200, answer.json()

    # then the action failed; its error is stored in English, with its words
    action = BillingAction.objects.get(pk=german_request["id"])
    assert action.status == BillingAction.Status.FAILED
    assert action.error_code == "charge_disputed"
    english_error = (
        "This payment is disputed; the dispute decides where the money goes, so it cannot "
        "be refunded here."
    )
    assert action.error_message == english_error
    assert action.words["error"]

    # and each reader reads it in their language
    english = agent(workspace, Role.MANAGER, "en-US")
    url = f"/api/v1/actions/{action.pk}/"
    error_en = english.get(url).json()["error"]
    error_de = german.get(url).json()["error"]
    assert error_en == {"code": "charge_disputed", "message": english_error}
    assert error_de["code"] == "charge_disputed"
    assert error_de["message"] != english_error and "Zahlung" in error_de["message"]


def test_an_error_with_no_words_and_an_old_row_show_their_stored_text(workspace, german_request):
    # given rows written before words were stored: text only
    action = BillingAction.objects.get(pk=german_request["id"])
    BillingAction.objects.filter(pk=action.pk).update(
        words={}, decision_reason="an old reason", error_code="x", error_message="an old error"
    )
    ApprovalRequest.objects.filter(action=action).update(reason_words=[], reason="an old reason")

    # then every reader shows the stored text, in either language
    for locale in ("en-US", "de"):
        manager = agent(workspace, Role.MANAGER, locale)
        answer = manager.get(f"/api/v1/actions/{action.pk}/").json()
        assert answer["decision"]["reason"] == "an old reason"
        assert answer["approval"]["reason"] == "an old reason"
        assert answer["error"] == {"code": "x", "message": "an old error"}
        assert listed_reason(manager) == "an old reason"


def test_nested_words_round_trip_as_json(workspace, acme):
    # a refund-pattern reason nests the matrix's reason; both come back in each language
    rules = policy_rules_load(workspace=workspace)
    decision = decide(
        role=Role.SPECIALIST,
        request=ActionRequest(PolicyAction.ISSUE_REFUND, amount=Money(120_000, "USD")),
        history=History(refunds_in_pattern_window=5),
        rules=rules,
    )
    assert isinstance(decision, NeedsApproval) and decision.words is not None
    stored = decision.words.to_json()
    with translation.override("de"):
        german = W.words_render(stored)
        assert german == str(decision.words)
        assert "refund pattern" not in german and "is above" not in german
        assert "1.200,00\xa0$" in german
    with translation.override("en"):
        assert W.words_render(stored) == decision.words.english()
        assert decision.words.english().startswith("refund pattern: 5 refunds in the last")
        assert decision.words.english().endswith(REASON_EN)
