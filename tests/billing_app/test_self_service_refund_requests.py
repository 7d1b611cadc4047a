"""Self-service refund requests (issue 18): held to exactly the agents' rules, executed once
within the workspace's self-service limit, otherwise an approval and a ticket for agents."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from billing_app.catalog import ActionKind, PolicyAction, Role
from billing_app.errors import NotFound, ValidationFailed
from billing_app.models import (
    ApprovalRequest,
    AuditEntry,
    BillingAction,
    OutboxMessage,
    SelfServiceLink,
    SelfServiceRefundRequest,
)
from billing_app.money import Money
from billing_app.policy import ActionRequest, Allow, Deny, NeedsApproval
from billing_app.services.actions import action_dry_run, action_submit
from billing_app.services.actions.decision import SELF_SERVICE_LIMIT, self_service_cap
from billing_app.services.approvals import approval_decide, approvals_expire
from billing_app.services.identity import AgentContext
from billing_app.services.mirror import mirror_upsert
from billing_app.services.outbox import outbox_message_deliver
from billing_app.services.policy import policy_rules_load
from billing_app.services.refund_links import refund_link_create
from billing_app.services.self_service_refunds.requests import (
    REQUESTS_PER_CUSTOMER_PER_DAY,
    REQUESTS_PER_LINK_PER_HOUR,
    SELF_SERVICE_PERMS,
    RequestRateLimited,
    refund_request_submit,
    self_service_context,
)
from helpdesk_connectors.models import DemoTicket, DemoTicketComment
from tests.helpdesk_support import freshdesk_installation_add

from . import self_service_refund_support as support
from .actions_support import charge

Status = SelfServiceRefundRequest.Status


_limit = support.self_service_limit_set
spy = support.spy  # the fixtures, shared with the page and concurrency tests
acme = support.acme


def _link(workspace, customer_id="cus_acme", **kwargs):
    return refund_link_create(
        workspace=workspace, customer_id=customer_id, source="panel", **kwargs
    )[0]


def _ticket_messages():
    return OutboxMessage.objects.filter(kind=OutboxMessage.Kind.CUSTOMER_TICKET)


def _investigation(message) -> str:
    """The agents' investigation: the ticket's private note (its description is for the
    customer); the older payload kept it as ``body``."""
    return message.payload.get("internal_note") or message.payload["body"]


# --- the self-service cap inside the agents' decision ----------------------------------------


def _rules(workspace):
    return policy_rules_load(workspace=workspace)


def _refund(amount: int, currency="USD") -> ActionRequest:
    return ActionRequest(PolicyAction.ISSUE_REFUND, amount=Money(amount, currency))


def test_the_cap_turns_an_allow_above_the_limit_into_an_approval(workspace):
    rules = _rules(workspace)
    capped = self_service_cap(Allow(), request=_refund(5000), rules=rules, limit=4999)
    assert isinstance(capped, NeedsApproval) and capped.code == SELF_SERVICE_LIMIT
    assert Role.MANAGER in capped.approver_roles
    assert "self-service limit" in capped.reason


def test_the_cap_lets_an_allow_within_the_limit_through(workspace):
    allow = Allow()
    assert (
        self_service_cap(allow, request=_refund(5000), rules=_rules(workspace), limit=5000) is allow
    )


def test_a_zero_limit_sends_every_refund_to_agents(workspace):
    capped = self_service_cap(Allow(), request=_refund(1), rules=_rules(workspace), limit=0)
    assert isinstance(capped, NeedsApproval)


def test_a_refund_that_cannot_be_valued_goes_to_agents(workspace):
    capped = self_service_cap(
        Allow(), request=_refund(100, "JPY"), rules=_rules(workspace), limit=10**9
    )
    assert isinstance(capped, NeedsApproval)


def test_stricter_answers_stand(workspace):
    rules = _rules(workspace)
    deny = Deny("no")
    approval = NeedsApproval((Role.VP,), "big")
    assert self_service_cap(deny, request=_refund(5000), rules=rules, limit=0) is deny
    assert self_service_cap(approval, request=_refund(5000), rules=rules, limit=0) is approval


def test_the_self_service_context_holds_exactly_view_billing_and_issue_refund(acme):
    link = _link(acme)
    context = self_service_context(link=link)
    assert context.role == Role.SPECIALIST
    assert context.perms == SELF_SERVICE_PERMS == frozenset({"view_billing", "issue_refund"})
    assert not context.may("apply_credit") and not context.may("approve_actions")
    assert context.user.has_usable_password() is False and context.user.is_active is False
    assert context.self_service_limit == 0


def test_an_agents_context_is_not_capped(acme, sign_in):
    _limit(acme, 0)
    membership, _ = sign_in(acme, Role.SPECIALIST)
    context = AgentContext(
        user=membership.user,
        workspace=acme,
        membership=membership,
        installation=None,
        role=Role.SPECIALIST,
    )
    dry = action_dry_run(
        context=context,
        kind=ActionKind.ISSUE_REFUND,
        customer_id="cus_acme",
        params={"charge_id": "ch_acme_dup1", "amount": 4900, "currency": "USD", "reason": "other"},
    )
    assert dry.outcome == "execute"


# --- within the limit: executed once, audited, noted ------------------------------------------


def test_within_the_limit_the_refund_executes_once_with_audit(acme, spy):
    _limit(acme, 10000)
    link = _link(acme, ticket_id="5001", installation=acme.installation_links.get().installation)
    request = refund_request_submit(
        link=link, charge_id="ch_acme_dup1", reason="charged_twice", comment="Paid twice"
    )
    assert request.status == Status.REFUNDED and request.decided_at is not None
    action = request.action
    assert action.status == BillingAction.Status.SUCCEEDED
    assert action.kind == ActionKind.ISSUE_REFUND and action.amount == 4900
    assert action.params["reason"] == "duplicate" and action.params["comment"] == "Paid twice"
    assert action.idempotency_key == f"selfservice:{link.pk}:ch_acme_dup1"
    assert action.actor.username == f"self-service:{acme.slug}"
    assert action.ticket_id == "5001"
    assert len(spy.writes("refund")) == 1
    assert AuditEntry.objects.filter(event="action.submitted", subject_id=str(action.pk)).exists()
    # the action's note on the link's ticket goes through the actions' own outbox kind
    assert OutboxMessage.objects.filter(kind=OutboxMessage.Kind.ACTION_NOTE).exists()
    assert not _ticket_messages().exists()  # no ticket for a refund that is done

    # when the customer submits again (reload, second tab): the first request, no new refund
    again = refund_request_submit(link=link, charge_id="ch_acme_dup1", reason="other")
    assert again.pk == request.pk and again.reason == "charged_twice"
    assert len(spy.writes("refund")) == 1
    assert BillingAction.objects.count() == 1


def test_a_second_link_for_the_same_charge_is_refused_like_an_agents_second_refund(acme, spy):
    _limit(acme, 10000)
    first = refund_request_submit(link=_link(acme), charge_id="ch_acme_dup1", reason="other")
    second = refund_request_submit(link=_link(acme), charge_id="ch_acme_dup1", reason="other")
    assert first.status == Status.REFUNDED
    assert second.status == Status.REFUSED and second.refusal_code == "already_refunded"
    assert len(spy.writes("refund")) == 1


# --- beyond the limit: an approval and a ticket with the customer as requester ---------------


def test_above_the_self_service_limit_it_goes_to_agents_with_a_ticket(acme, spy, settings):
    _limit(acme, 1000)
    link = _link(acme)
    request = refund_request_submit(
        link=link, charge_id="ch_acme_dup1", reason="wrong_amount", comment="Seats were wrong"
    )
    assert request.status == Status.WITH_AGENTS and request.decided_at is None
    action = request.action
    assert action.status == BillingAction.Status.PENDING_APPROVAL
    approval = ApprovalRequest.objects.get(action=action)
    assert approval.reason.startswith("$49.00 is above the self-service limit ($10.00)")
    assert spy.writes("refund") == []

    message = _ticket_messages().get()
    assert message.payload["requester_email"] == "billing@acme.example"
    assert message.payload["requester_name"] == "Acme Corp"
    # the description is the customer's: their payment, amount, reason and comment, no more
    public = message.payload["body"]
    for expected in ("$49.00", "The amount is wrong", "Seats were wrong", "reply to you by email"):
        assert expected in public, expected
    for internal in ("self-service limit", "approvals", "Refunds in the last"):
        assert internal not in public, internal
    body = _investigation(message)
    for expected in (
        "ch_acme_dup1",
        "$49.00",
        "The amount is wrong",
        "Seats were wrong",
        "above the self-service limit",
        "Refunds in the last 90 days, this request included: 1",
        f"{settings.PUBLIC_BASE_URL}/approvals/{approval.pk}/",
    ):
        assert expected in body, expected

    # when the outbox delivers it: a demo ticket with the customer as requester
    assert outbox_message_deliver(message_id=message.pk, first=True) == "done"
    ticket = DemoTicket.objects.get(subject=message.payload["subject"])
    assert ticket.requester_email == "billing@acme.example"
    comments = DemoTicketComment.objects.filter(ticket_id=ticket.ticket_id)
    assert comments.filter(body__contains="ch_acme_dup1").exists()
    request.refresh_from_db()
    assert request.ticket_ref == f"demo:{ticket.ticket_id}"


def test_by_default_every_request_goes_to_agents(acme, spy):
    request = refund_request_submit(link=_link(acme), charge_id="ch_acme_dup1", reason="other")
    assert request.status == Status.WITH_AGENTS
    assert spy.writes("refund") == []


def test_above_the_roles_limit_it_goes_to_agents_even_within_the_self_service_limit(acme, spy):
    _limit(acme, 10_000_00)  # $10,000; the Billing Specialist may refund up to $1,000
    request = refund_request_submit(link=_link(acme), charge_id="ch_acme_paid", reason="other")
    assert request.status == Status.WITH_AGENTS
    assert request.action.decision_reason.startswith("$3,400.00 is above the Billing Specialist")
    assert spy.writes("refund") == []


def test_a_refund_pattern_goes_to_manager_review_even_within_the_limit(acme, spy):
    _limit(acme, 10000)
    now = timezone.now()
    for n in range(3):
        mirror_upsert(
            workspace=acme,
            obj={
                "id": f"re_prior_{n}",
                "object": "refund",
                "amount": 100,
                "charge": "ch_acme_paid",
                "created": int((now - timedelta(days=5 + n)).timestamp()),
                "currency": "usd",
                "metadata": {},
                "payment_intent": "pi_acme_paid",
                "reason": "requested_by_customer",
                "status": "succeeded",
            },
        )
    request = refund_request_submit(link=_link(acme), charge_id="ch_acme_dup1", reason="other")
    assert request.status == Status.WITH_AGENTS
    assert request.action.decision == BillingAction.Decision.APPROVAL
    assert "refund pattern" in request.action.decision_reason
    assert "Refunds in the last 90 days, this request included: 4" in _investigation(
        _ticket_messages().get()
    )


# --- refused by the agents' rules ------------------------------------------------------------


def test_a_disputed_charge_is_refused_with_the_agents_code(acme, spy):
    _limit(acme, 10**8)
    request = refund_request_submit(link=_link(acme), charge_id="ch_acme_disputed", reason="other")
    assert request.status == Status.REFUSED and request.refusal_code == "charge_disputed"
    assert request.action is None and spy.writes() == []
    assert not _ticket_messages().exists()


def test_a_charge_outside_the_refund_window_is_refused(acme, spy):
    acme.refund_window_days = 5
    acme.save(update_fields=["refund_window_days"])
    request = refund_request_submit(link=_link(acme), charge_id="ch_acme_paid", reason="other")
    assert request.status == Status.REFUSED and request.refusal_code == "refund_window_passed"


def test_a_fully_refunded_charge_is_refused(acme, spy):
    mirror_upsert(
        workspace=acme,
        obj=charge("ch_acme_back", "cus_acme", 2000, timezone.now(), amount_refunded=2000),
    )
    request = refund_request_submit(link=_link(acme), charge_id="ch_acme_back", reason="other")
    assert request.status == Status.REFUSED and request.refusal_code == "already_refunded"


def test_another_customers_charge_is_not_found_and_nothing_is_recorded(acme, spy):
    with pytest.raises(NotFound):
        refund_request_submit(link=_link(acme), charge_id="ch_other_paid", reason="other")
    assert not SelfServiceRefundRequest.objects.exists() and not BillingAction.objects.exists()


def test_an_unknown_reason_is_refused_before_anything_is_recorded(acme):
    with pytest.raises(ValidationFailed):
        refund_request_submit(link=_link(acme), charge_id="ch_acme_dup1", reason="fraudulent")
    assert not SelfServiceRefundRequest.objects.exists()


def test_the_page_dry_run_and_the_submission_agree(acme, spy):
    from billing_app.services.self_service_refunds.page import refund_page_payments

    _limit(acme, 10000)
    link = _link(acme)
    rows = {row.charge_id: row for row in refund_page_payments(link=link)}
    assert (rows["ch_acme_dup1"].state, rows["ch_acme_dup1"].route) == ("eligible", "now")
    assert (rows["ch_acme_paid"].state, rows["ch_acme_paid"].route) == ("eligible", "review")
    assert rows["ch_acme_disputed"].state == "refused"
    assert "ch_acme_failed" not in rows and "ch_acme_old" not in rows
    expected = {"ch_acme_dup1": Status.REFUNDED, "ch_acme_paid": Status.WITH_AGENTS}
    for charge_id, status in expected.items():
        assert (
            refund_request_submit(link=link, charge_id=charge_id, reason="other").status == status
        )
    assert (
        refund_request_submit(link=link, charge_id="ch_acme_disputed", reason="other").status
        == Status.REFUSED
    )
    after = {row.charge_id: row for row in refund_page_payments(link=link)}
    assert after["ch_acme_dup1"].state == "request"
    assert after["ch_acme_dup1"].message.startswith("We've processed your refund of $49.00.")
    assert "disputed" in after["ch_acme_disputed"].message


# --- rate limits ----------------------------------------------------------------------------


def _charges(workspace, count: int, prefix="ch_extra"):
    now = timezone.now()
    ids = []
    for n in range(count):
        cid = f"{prefix}_{n}"
        mirror_upsert(
            workspace=workspace,
            obj=charge(cid, "cus_acme", 1000 + n, now - timedelta(hours=n + 1)),
        )
        ids.append(cid)
    return ids


def test_requests_per_link_are_rate_limited(acme, spy):
    link = _link(acme)
    ids = _charges(acme, REQUESTS_PER_LINK_PER_HOUR + 1)
    for cid in ids[:-1]:
        refund_request_submit(link=link, charge_id=cid, reason="other")
    with pytest.raises(RequestRateLimited) as excinfo:
        refund_request_submit(link=link, charge_id=ids[-1], reason="other")
    assert excinfo.value.status == 429
    # a request already made is still answered (it is not a new one)
    assert refund_request_submit(link=link, charge_id=ids[0], reason="other").charge_id == ids[0]
    assert SelfServiceRefundRequest.objects.count() == REQUESTS_PER_LINK_PER_HOUR


def test_requests_per_customer_are_rate_limited_across_links(acme, spy):
    ids = _charges(acme, REQUESTS_PER_CUSTOMER_PER_DAY + 1)
    # links sent over the day (the link limit is per hour)
    links = []
    for _ in ids:
        links.append(_link(acme))
        SelfServiceLink.objects.filter(pk=links[-1].pk).update(
            created_at=timezone.now() - timedelta(hours=2)
        )
    for link, cid in zip(links[:-1], ids[:-1], strict=True):
        refund_request_submit(link=link, charge_id=cid, reason="other")
    with pytest.raises(RequestRateLimited):
        refund_request_submit(link=links[-1], charge_id=ids[-1], reason="other")


# --- agents decide: the request follows ------------------------------------------------------


@pytest.fixture
def waiting(acme, spy):
    return refund_request_submit(
        link=_link(acme), charge_id="ch_acme_dup1", reason="not_satisfied", comment="Slow"
    )


def test_an_approved_request_is_refunded_and_says_so(acme, waiting, sign_in, spy):
    manager, _ = sign_in(acme, Role.MANAGER)
    approval_decide(
        approval_id=waiting.action.approval.pk,
        user=manager.user,
        workspace=acme,
        decision="approve",
    )
    waiting.refresh_from_db()
    assert waiting.status == Status.APPROVED and waiting.decided_at is not None
    assert len(spy.writes("refund")) == 1


def test_a_denied_request_is_declined_without_the_approvers_internal_comment(
    acme, waiting, sign_in
):
    from billing_app.services.self_service_refunds.page import request_message

    manager, _ = sign_in(acme, Role.MANAGER)
    approval_decide(
        approval_id=waiting.action.approval.pk,
        user=manager.user,
        workspace=acme,
        decision="deny",
        comment="The service credit was already applied.",
    )
    waiting.refresh_from_db()
    assert waiting.status == Status.DENIED
    message = request_message(waiting, workspace=acme)
    assert message.startswith("Based on our refund policy, this charge isn't eligible")
    assert "our billing team reviewed your request and declined it" in message
    assert "service credit" not in message.lower()


def test_an_expired_approval_declines_the_request(acme, waiting):
    approvals_expire(now=timezone.now() + timedelta(hours=acme.approval_ttl_hours + 1))
    waiting.refresh_from_db()
    assert waiting.status == Status.DENIED and waiting.refusal_code == "approval_expired"


def test_an_agent_cannot_replay_the_customers_key(acme, waiting, sign_in):
    """The key belongs to the self-service user: an agent's submission with it is refused."""
    from billing_app.errors import Conflict

    manager, _ = sign_in(acme, Role.MANAGER)
    context = AgentContext(
        user=manager.user,
        workspace=acme,
        membership=manager,
        installation=None,
        role=Role.MANAGER,
    )
    with pytest.raises(Conflict):
        action_submit(
            context=context,
            kind=ActionKind.ISSUE_REFUND,
            customer_id="cus_acme",
            ticket_id="",
            params={
                "charge_id": "ch_acme_dup1",
                "amount": 4900,
                "currency": "USD",
                "reason": "other",
            },
            idempotency_key=waiting.action.idempotency_key,
        )


# --- the ticket: the customer's description, the agents' private note, a failure said -------


def test_on_freshdesk_the_description_is_the_customers_and_the_investigation_private(acme, http):
    """HTTP to Freshdesk intercepted: API v2 ``POST /api/v2/tickets`` (the description),
    then ``POST /api/v2/tickets/{id}/notes`` with ``private: true`` (the investigation)."""
    import json

    acme.installation_links.all().delete()
    freshdesk = freshdesk_installation_add(acme)
    base = "https://acme.freshdesk.com/api/v2/tickets"
    http.post(
        base,
        status=201,
        json={"id": 9801, "subject": "Refund request", "requester_id": 43009001, "status": 2},
    )
    http.post(
        f"{base}/9801/notes",
        status=201,
        json={"id": 43000888, "private": True, "ticket_id": 9801, "body_text": "note"},
    )
    request = refund_request_submit(
        link=_link(acme, installation=freshdesk),
        charge_id="ch_acme_dup1",
        reason="charged_twice",
        comment="Twice on my card",
    )
    message = _ticket_messages().get()

    assert outbox_message_deliver(message_id=message.pk, first=True) == "done"

    ticket = json.loads(http.calls[0].request.body)
    assert ticket["email"] == "billing@acme.example"
    for expected in ("$49.00", "I was charged twice", "Twice on my card", "reply to you by email"):
        assert expected in ticket["description"], expected
    assert "approvals" not in ticket["description"]
    assert "self-service limit" not in ticket["description"]
    note = json.loads(http.calls[1].request.body)
    assert note["private"] is True
    assert "/approvals/" in note["body"] and "self-service limit" in note["body"]
    request.refresh_from_db()
    assert request.ticket_ref == "freshdesk:9801"


def test_a_ticket_no_helpdesk_opened_is_said_on_the_page_and_the_approval_stands(acme, spy):
    from billing_app.services.self_service_refunds.page import refund_page_payments

    link = _link(acme)
    request = refund_request_submit(link=link, charge_id="ch_acme_dup1", reason="other")
    acme.installation_links.all().delete()  # no helpdesk can open it now
    message = _ticket_messages().get()

    outbox_message_deliver(message_id=message.pk, first=True)

    message.refresh_from_db()
    assert message.status == OutboxMessage.Status.FAILED
    request.refresh_from_db()
    assert request.status == Status.WITH_AGENTS and request.ticket_ref == ""
    assert request.action.status == BillingAction.Status.PENDING_APPROVAL
    assert ApprovalRequest.objects.filter(action=request.action).exists()
    assert AuditEntry.objects.filter(
        event="self_service_request.ticket_failed", subject_id=str(request.pk)
    ).exists()
    [row] = [r for r in refund_page_payments(link=link) if r.charge_id == "ch_acme_dup1"]
    assert "could not pass it on to our support team" in row.message
    assert "contact support another way" in row.message
    assert "They will review it and reply to you by email" not in row.message


def test_a_ticket_still_on_its_way_keeps_the_usual_words(acme, spy):
    from billing_app.services.self_service_refunds.page import refund_page_payments

    link = _link(acme)
    refund_request_submit(link=link, charge_id="ch_acme_dup1", reason="other")
    [row] = [r for r in refund_page_payments(link=link) if r.charge_id == "ch_acme_dup1"]
    assert "They will review it and reply to you by email" in row.message
