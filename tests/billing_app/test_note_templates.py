"""Notes in words, from the product's wording or a workspace's template: every kind, every event,
no customer ids, enumeration values or action ids; bad templates refused; admin edits and previews."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from billing_app.action_words import FACT_NAMES
from billing_app.catalog import ActionKind, Role
from billing_app.errors import ValidationFailed
from billing_app.models import (
    ApprovalRequest,
    BillingAction,
    MirrorCustomer,
    MirrorPrice,
    MirrorProduct,
    NoteTemplate,
    OutboxMessage,
)
from billing_app.services import notes
from billing_app.services.note_templates import (
    DEFAULT_BODIES,
    EVENT_PLACEHOLDERS,
    PLACEHOLDERS,
    note_fill,
    note_preview,
    note_template_validate,
    note_text,
    short_reference,
)
from billing_app.vocabulary import action_label

from .test_action_words import CASES, EXPECTED, NAMES

Event = NoteTemplate.Event
# snake_case words (enumeration values, kinds, roles' codes) — ids like in_42 or re_3Mtw have digits
RAW_VALUE = re.compile(r"\b[a-z]+(?:_[a-z]+)+\b|\bTrue\b|\bFalse\b|\bNone\b")


@pytest.fixture
def demo(workspace):
    return workspace.installation_links.get(installation__connector="demo").installation


@pytest.fixture
def acme_names(workspace):
    """The customer and the plans the sample actions name, as the mirror holds them."""
    MirrorCustomer.objects.create(
        workspace=workspace, stripe_id="cus_Acme01", name="Acme Corp", email="billing@acme.example"
    )
    for price, product, name in [
        ("price_starter", "prod_s", "Starter (monthly)"),
        ("price_business", "prod_b", "Business (monthly)"),
    ]:
        MirrorProduct.objects.create(workspace=workspace, stripe_id=product, name=name)
        MirrorPrice.objects.create(
            workspace=workspace, stripe_id=price, product_id=product, currency="usd"
        )


@pytest.fixture
def make_action(workspace, demo, sign_in):
    membership, _token = sign_in(workspace, Role.L2, agent_id="dana")
    membership.user.first_name, membership.user.last_name = "Dana", "Scott"
    membership.user.save()

    def make(kind="issue_refund", **fields):
        case = CASES[ActionKind(kind)]
        defaults = dict(
            workspace=workspace,
            installation=demo,
            actor=membership.user,
            actor_role="l2",
            ticket_id="DEMO-1",
            customer_id="cus_Acme01",
            kind=kind,
            params=case["params"],
            amount=case.get("amount"),
            currency=case.get("currency", ""),
            result=case.get("result") or {},
            status=BillingAction.Status.SUCCEEDED,
            decision=BillingAction.Decision.ALLOW,
            decision_reason="within the L2 Agent limit",
            idempotency_key=str(uuid.uuid4()),
            request_fingerprint="f" * 64,
            provider="stripe",
            provider_object_id="re_3MtwBw",
        )
        defaults.update(fields)
        return BillingAction.objects.create(**defaults)

    return make


def _no_ids_or_codes(body: str, action: BillingAction) -> None:
    assert "cus_Acme01" not in body
    assert str(action.pk) not in body and str(action.pk).replace("-", "") not in body
    for line in body.splitlines():
        if "https://" not in line:
            assert not RAW_VALUE.search(line), line


# --- the product's wording, every kind --------------------------------------------------------


@pytest.mark.parametrize("kind", list(ActionKind))
def test_each_kinds_default_note_says_it_in_words(kind, acme_names, make_action):
    # given a done action of this kind for Acme Corp
    action = make_action(kind.value)

    # when its note is written
    body = note_text(action=action)

    # then it says who, what, for whom and the parameters, in words
    lines = body.splitlines()
    assert lines[0] == f"Billing Desk · {action_label(kind)}: Done"
    assert "By: Dana Scott (L2 Agent)" in lines
    assert "Customer: Acme Corp (billing@acme.example)" in lines
    for label, text in EXPECTED[kind].items():
        if text in NAMES.values():  # names come from the mirror here (see the plan change)
            continue
        assert f"{label}: {text}" in lines, (label, body)
    assert f"Reference: {short_reference(action)}" in lines
    # and no customer id, action id or raw code
    _no_ids_or_codes(body, action)


def test_a_plan_change_note_names_the_plans(acme_names, make_action):
    body = note_text(action=make_action("change_plan"))
    assert "From: Starter (monthly)" in body and "To: Business (monthly)" in body
    assert "Charged now: $450.00" in body


def test_a_failed_action_says_what_went_wrong(acme_names, make_action):
    action = make_action(
        "issue_refund",
        status=BillingAction.Status.FAILED,
        error_message="The charge was already refunded in full.",
        provider_object_id="",
    )
    body = note_text(action=action)
    assert "Error: The charge was already refunded in full." in body
    assert body.splitlines()[0].startswith("Billing Desk · Issue refund: Failed")


def test_a_customer_missing_from_the_mirror_is_not_shown_by_id(make_action):
    action = make_action("apply_credit")
    body = note_text(action=action)
    assert "Customer: (name not on file)" in body
    _no_ids_or_codes(body, action)


# --- approval notes ----------------------------------------------------------------------------


def _approval(action, status="pending", decider=None, **fields):
    return ApprovalRequest.objects.create(
        action=action,
        workspace=action.workspace,
        required_roles=["manager", "vp"],
        reason="$600.00 is above the L2 Agent limit ($100.00)",
        status=status,
        decided_by=decider,
        decided_role="manager" if decider else "",
        expires_at=datetime(2030, 1, 3, 9, 15, tzinfo=UTC),
        **fields,
    )


def test_approval_requested_note(acme_names, make_action):
    action = make_action(
        "issue_refund", status="pending_approval", decision="approval", provider_object_id=""
    )
    approval = _approval(action)
    body = notes.approval_note_body(approval=approval)
    lines = body.splitlines()
    assert lines[0] == "Billing Desk · Approval requested: Issue refund"
    assert "Requested by: Dana Scott (L2 Agent)" in lines
    assert "Customer: Acme Corp (billing@acme.example)" in lines
    assert "Refund: $600.00" in lines and "Reason: Billing error" in lines
    assert "Needs approval because: $600.00 is above the L2 Agent limit ($100.00)" in lines
    assert "Who may approve: Manager or VP Approver" in lines
    assert "Expires: January 3, 2030, 09:15 UTC" in lines
    _no_ids_or_codes(body, action)


@pytest.mark.parametrize(
    ("status", "first", "verb"),
    [
        ("approved", "Billing Desk · Approval granted: Issue refund", "Approved"),
        ("denied", "Billing Desk · Approval denied: Issue refund", "Denied"),
    ],
)
def test_approval_decided_notes_carry_the_trail(
    status, first, verb, acme_names, make_action, sign_in, workspace
):
    manager, _ = sign_in(workspace, Role.MANAGER, agent_id="maria")
    manager.user.first_name, manager.user.last_name = "Maria", "Lopez"
    manager.user.save()
    action = make_action("issue_refund", status="succeeded" if status == "approved" else "denied")
    decided = datetime(2030, 1, 2, 11, 40, tzinfo=UTC)
    approval = _approval(
        action, status=status, decider=manager.user, decided_at=decided, comment="Goodwill"
    )
    body = notes.approval_note_body(approval=approval)
    lines = body.splitlines()
    assert lines[0] == first
    assert lines[1] == f"{verb} by Maria Lopez (Manager) on January 2, 2030, 11:40 UTC"
    assert "Comment: “Goodwill”" in lines
    assert lines[3].startswith("Requested by: Dana Scott (L2 Agent) on ")
    assert "Needed approval because: $600.00 is above the L2 Agent limit ($100.00)" in lines
    _no_ids_or_codes(body, action)


def test_an_approved_actions_own_note_carries_the_trail(
    acme_names, make_action, sign_in, workspace
):
    manager, _ = sign_in(workspace, Role.MANAGER, agent_id="maria")
    action = make_action("issue_refund")
    _approval(action, status="approved", decider=manager.user, comment="ok")
    body = note_text(action=action)
    trail = next(line for line in body.splitlines() if line.startswith("Approval: "))
    assert trail.startswith("Approval: Approved by Manager maria (Manager): “ok”; requested by ")


# --- a workspace's own wording ---------------------------------------------------------------


def test_a_workspace_template_overrides_kind_first_then_every_kind(
    acme_names, make_action, workspace, make_workspace
):
    action = make_action("issue_refund")
    NoteTemplate.objects.create(
        workspace=workspace, kind="", event=Event.ACTION, body="{who} did {what} for {customer}."
    )
    assert note_text(action=action) == (
        "Dana Scott (L2 Agent) did Issue refund for Acme Corp (billing@acme.example)."
    )
    NoteTemplate.objects.create(
        workspace=workspace,
        kind="issue_refund",
        event=Event.ACTION,
        body="Refunded {amount} ({reason}).[[ Link: {link}]]\n{details}",
    )
    body = note_text(action=action)
    assert body.splitlines()[0] == "Refunded $600.00 (Billing error)."
    assert "Charge: ch_9" in body
    # another kind still takes the every-kind template; another workspace's is never used
    assert note_text(action=make_action("extend_trial")).startswith("Dana Scott (L2 Agent) did")
    NoteTemplate.objects.filter(workspace=workspace).update(workspace=make_workspace("other"))
    assert note_text(action=action).startswith("Billing Desk · Issue refund: Done")


def test_an_inactive_template_and_an_unfillable_one_give_the_products_wording(
    acme_names, make_action, workspace
):
    action = make_action("issue_refund")
    template = NoteTemplate.objects.create(
        workspace=workspace, kind="issue_refund", event=Event.ACTION, body="{what}", is_active=False
    )
    assert note_text(action=action).startswith("Billing Desk · Issue refund: Done")
    # {days} has no value for a refund, outside [[ … ]]: this note falls back, it is never lost
    NoteTemplate.objects.filter(pk=template.pk).update(is_active=True, body="{what} for {days}")
    assert note_text(action=action).startswith("Billing Desk · Issue refund: Done")


def test_the_approval_events_use_their_own_templates(acme_names, make_action, workspace):
    action = make_action("issue_refund", status="pending_approval", decision="approval")
    NoteTemplate.objects.create(
        workspace=workspace,
        event=Event.APPROVAL_REQUESTED,
        body="{who} asks {approvers} to approve {what} ({amount}).",
    )
    assert notes.approval_note_body(approval=_approval(action)) == (
        "Dana Scott (L2 Agent) asks Manager or VP Approver to approve Issue refund ($600.00)."
    )


@pytest.mark.parametrize(
    ("event", "body", "code"),
    [
        (Event.ACTION, "{who} did {customer_id}", "template_unknown_placeholder"),
        (Event.APPROVAL_REQUESTED, "Decided by {decided_by}", "template_unknown_placeholder"),
        (Event.ACTION, "{who.password}", "template_unknown_placeholder"),
        (Event.ACTION, "[[ {who} [[ {what} ]] ]]", "template_brackets"),
        (Event.ACTION, "{who!r}", "template_syntax"),
        (Event.ACTION, "{what", "template_syntax"),
        (Event.ACTION, "   ", "template_empty"),
    ],
)
def test_a_bad_template_is_refused(event, body, code):
    with pytest.raises(ValidationFailed) as excinfo:
        note_template_validate(event=event, body=body)
    assert excinfo.value.code == code


def test_the_unknown_placeholder_error_names_it_and_the_offer():
    with pytest.raises(ValidationFailed) as excinfo:
        note_template_validate(event=Event.ACTION, body="{who} {customer_id}")
    assert excinfo.value.message.startswith("Unknown placeholders: customer_id. This note offers: ")
    assert "{customer_name}" in excinfo.value.message


def test_the_defaults_are_valid_and_fill_with_only_the_values_every_note_has():
    always = {"who": "Dana", "what": "Issue refund", "customer": "Acme", "status": "Done"}
    always["reference"] = "BD-1"
    for event, body in DEFAULT_BODIES.items():
        if event in EVENT_PLACEHOLDERS:
            assert note_template_validate(event=event, body=body) == body.strip()
        values = {name: always.get(name, "") for name in PLACEHOLDERS}
        assert note_fill(event=event, values=values).startswith("Billing Desk · ")
    assert set(FACT_NAMES) <= set(PLACEHOLDERS)


def test_the_preview_fills_a_sample_and_warns_of_a_placeholder_it_leaves_empty():
    text, warning = note_preview(
        kind="change_plan", event=Event.ACTION, body="{who}: {what} from {from} to {to}"
    )
    assert (text, warning) == ("Dana Scott (L2 Agent): Change plan from Starter to Business", "")
    text, warning = note_preview(kind="issue_refund", event=Event.ACTION, body="{what} {percent}")
    assert text == "Issue refund —" and "{percent}" in warning


# --- posted once, through the outbox, in the transaction that makes the change ------------------


def _trial_request(api_as, workspace, key="trial-30"):
    """An L2 agent's 30-day trial extension: above the 14 days anyone may give, to a Manager."""
    from .test_actions_api import post_action

    l2 = api_as(workspace, Role.L2, agent_id="l2-requester")
    response = post_action(
        l2, ActionKind.EXTEND_TRIAL, {"subscription_id": "sub_trial", "days": 30}, key=key
    )
    return l2, response


@pytest.fixture
def seeded(workspace):
    from .actions_support import account_seed

    return account_seed(workspace)


def _approval_notes():
    return list(OutboxMessage.objects.filter(kind="approval_note").order_by("created_at"))


def test_a_request_decision_each_post_one_note_and_a_retry_none(
    workspace, seeded, api_as, django_capture_on_commit_callbacks
):
    from billing_app.services.approvals import approval_decide

    # given an L2 agent's request that needs a Manager
    with django_capture_on_commit_callbacks(execute=True):
        l2, response = _trial_request(api_as, workspace)
    assert response.status_code == 201, response.json()
    assert response.json()["status"] == "pending_approval"

    # then one "requested" note is on its way, in words
    requested = _approval_notes()
    assert len(requested) == 1
    body = requested[0].payload["body"]
    assert body.startswith("Billing Desk · Approval requested: Extend trial\n")
    assert "Trial extended by: 30 days" in body

    # when the same submission is retried, no second request and no second note
    with django_capture_on_commit_callbacks(execute=True):
        _again, replay = _trial_request(api_as, workspace)
    assert replay.json()["id"] == response.json()["id"]
    assert len(_approval_notes()) == 1

    # when a Manager denies it (and tries again)
    manager = api_as(workspace, Role.MANAGER, agent_id="mgr")
    approval = ApprovalRequest.objects.get(action_id=response.json()["id"])
    with django_capture_on_commit_callbacks(execute=True):
        approval_decide(
            approval_id=approval.pk,
            user=manager.membership.user,
            workspace=workspace,
            decision="deny",
            comment="Too long",
        )
    with pytest.raises(Exception):  # already decided
        approval_decide(
            approval_id=approval.pk,
            user=manager.membership.user,
            workspace=workspace,
            decision="deny",
            comment="Too long",
        )

    # then one "denied" note, after the one "requested" note
    bodies = [m.payload["body"] for m in _approval_notes()]
    assert len(bodies) == 2
    assert bodies[1].startswith("Billing Desk · Approval denied: Extend trial\n")
    assert "Comment: “Too long”" in bodies[1]


def test_an_approved_request_posts_one_approved_note(
    workspace, seeded, api_as, django_capture_on_commit_callbacks
):
    from billing_app.services.approvals import approval_decide

    with django_capture_on_commit_callbacks(execute=True):
        _l2, response = _trial_request(api_as, workspace, key="trial-approve")
    manager = api_as(workspace, Role.MANAGER, agent_id="mgr2")
    approval = ApprovalRequest.objects.get(action_id=response.json()["id"])
    with django_capture_on_commit_callbacks(execute=True):
        approval_decide(
            approval_id=approval.pk,
            user=manager.membership.user,
            workspace=workspace,
            decision="approve",
            comment="",
        )
    bodies = [m.payload["body"] for m in _approval_notes()]
    assert [b.splitlines()[0] for b in bodies] == [
        "Billing Desk · Approval requested: Extend trial",
        "Billing Desk · Approval granted: Extend trial",
    ]
    # every note reached the demo ticket once
    assert OutboxMessage.objects.filter(kind="approval_note", status="done").count() == 2


# --- admin ----------------------------------------------------------------------------------


def _admin_url(name, *args):
    return reverse(f"admin:billing_app_notetemplate_{name}", args=args)


def test_admin_saves_a_template_and_shows_its_preview(admin_client, workspace):
    response = admin_client.post(
        _admin_url("add"),
        {
            "workspace": workspace.pk,
            "kind": "change_plan",
            "event": Event.ACTION,
            "body": "  {who} moved {customer} from {from} to {to}.[[ Charged {amount_charged}.]]  ",
            "is_active": "on",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    template = NoteTemplate.objects.get()
    assert template.body == (
        "{who} moved {customer} from {from} to {to}.[[ Charged {amount_charged}.]]"
    )
    page = admin_client.get(_admin_url("change", template.pk)).content.decode()
    assert (
        "Dana Scott (L2 Agent) moved Acme Corp (billing@acme.example) from Starter to Business. "
        "Charged $450.00." in page
    )
    assert "{amount_charged}" in page  # the placeholder list


def test_admin_refuses_an_unknown_placeholder_with_a_clear_error(admin_client, workspace):
    response = admin_client.post(
        _admin_url("add"),
        {"workspace": workspace.pk, "kind": "", "event": Event.ACTION, "body": "{customer_id}"},
    )
    assert response.status_code == 200
    assert "Unknown placeholders: customer_id. This note offers:" in response.content.decode()
    assert not NoteTemplate.objects.exists()


def test_admin_changelist_and_add_page_render(admin_client, workspace):
    NoteTemplate.objects.create(workspace=workspace, event=Event.APPROVAL_DENIED, body="{what}")
    assert admin_client.get(_admin_url("changelist")).status_code == 200
    add = admin_client.get(_admin_url("add"))
    assert add.status_code == 200 and "Billing Desk · Approval requested" in add.content.decode()


def test_admin_pages_need_staff(client, workspace):
    response = client.get(_admin_url("changelist"))
    assert response.status_code == 302 and "/admin/login/" in response["Location"]


def test_short_reference_is_stable_and_short(make_action):
    action = make_action("apply_credit")
    ref = short_reference(action)
    assert re.fullmatch(r"BD-[0-9A-F]{8}", ref) and ref == short_reference(action)
    assert timezone.now() - action.created_at < timedelta(minutes=5)
