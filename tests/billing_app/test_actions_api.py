"""``/api/v1/actions/`` and the plan-change preview, end to end on the sandbox, per role."""

from __future__ import annotations

from datetime import datetime

import pytest
from rest_framework.test import APIClient

from billing_app.catalog import ActionKind, Role
from billing_app.models import ApprovalRequest, BillingAction, MirrorInvoice, MirrorSubscriptionItem
from billing_app.services.actions import run as actions_run

from .actions_support import ProviderSpy, account_seed, addon_account_seed, next_key
from .test_actions_service import HAPPY

K = ActionKind
L1, L2, MGR, SPEC = Role.L1, Role.L2, Role.MANAGER, Role.SPECIALIST
OK = "ok"  # executes now


@pytest.fixture
def acme(workspace):
    return account_seed(workspace)


@pytest.fixture
def spy(monkeypatch):
    spy = ProviderSpy()
    real = actions_run.get_provider
    monkeypatch.setattr(actions_run, "get_provider", lambda ws: spy.wrap(real(ws)))
    return spy


def post_action(client, kind, params=None, customer=None, key=None):
    default_customer, default_params = (
        HAPPY[K(kind)] if kind in K._value2member_map_ else ("cus_acme", {})
    )
    return client.post(
        "/api/v1/actions/",
        {
            "kind": str(kind),
            "customer_id": customer or default_customer,
            "ticket_id": "1001",
            "params": default_params if params is None else params,
            "idempotency_key": key or next_key(),
        },
        format="json",
    )


def refund(amount, charge="ch_acme_paid"):
    return {
        "charge_id": charge,
        "amount": amount,
        "currency": "USD",
        "reason": "requested_by_customer",
    }


# DESIGN.md section 3, cell by cell: OK executes now; NO is not permitted (the brief's ❌:
# 403, recorded, nothing sent); a role name means "escalated to it".
NO = "not_permitted"
MATRIX = [
    ("payment link", K.GENERATE_PAYMENT_LINK, None, {L1: OK, L2: OK, MGR: OK, SPEC: OK}),
    ("resend invoice", K.RESEND_INVOICE, None, {L1: OK, L2: OK, MGR: OK, SPEC: OK}),
    (
        "credit < $100",
        K.APPLY_CREDIT,
        {"amount": 5000, "currency": "USD"},
        {L1: NO, L2: OK, MGR: OK, SPEC: OK},
    ),
    (
        "credit $100-500",
        K.APPLY_CREDIT,
        {"amount": 30000, "currency": "USD"},
        {L1: NO, L2: NO, MGR: OK, SPEC: OK},
    ),
    (
        "credit > $500",
        K.APPLY_CREDIT,
        {"amount": 60000, "currency": "USD"},
        {L1: NO, L2: NO, MGR: NO, SPEC: Role.VP},
    ),
    ("refund $100", K.ISSUE_REFUND, refund(10000), {L1: NO, L2: NO, MGR: OK, SPEC: OK}),
    ("refund $1,200", K.ISSUE_REFUND, refund(120000), {L1: NO, L2: NO, MGR: OK, SPEC: MGR}),
    ("trial +7 days", K.EXTEND_TRIAL, None, {L1: OK, L2: OK, MGR: OK, SPEC: OK}),
    (
        "trial +20 days",
        K.EXTEND_TRIAL,
        {"subscription_id": "sub_trial", "days": 20},
        {L1: MGR, L2: MGR, MGR: OK, SPEC: MGR},
    ),
    ("pause", K.PAUSE_SUBSCRIPTION, None, {L1: NO, L2: NO, MGR: OK, SPEC: OK}),
    ("change plan", K.CHANGE_PLAN, None, {L1: NO, L2: OK, MGR: OK, SPEC: OK}),
    ("cancel (customer asked)", K.CANCEL_SUBSCRIPTION, None, {L1: NO, L2: NO, MGR: OK, SPEC: OK}),
    (
        "cancel (not asked)",
        K.CANCEL_SUBSCRIPTION,
        {"subscription_id": "sub_acme", "reason": "unused", "customer_requested": False},
        {L1: NO, L2: NO, MGR: OK, SPEC: NO},
    ),
    ("force cancel", K.FORCE_CANCEL, None, {L1: NO, L2: NO, MGR: NO, SPEC: Role.LEGAL}),
    ("payment method link", K.UPDATE_PAYMENT_METHOD, None, {L1: NO, L2: OK, MGR: OK, SPEC: OK}),
    ("seats", K.ADJUST_SEATS, None, {L1: NO, L2: OK, MGR: OK, SPEC: OK}),
    ("discount 10%", K.APPLY_DISCOUNT, None, {L1: NO, L2: NO, MGR: OK, SPEC: OK}),
    (
        "discount 20%",
        K.APPLY_DISCOUNT,
        {"subscription_id": "sub_acme", "percent_off": "20", "duration": "forever"},
        {L1: NO, L2: NO, MGR: NO, SPEC: Role.VP},
    ),
    ("duplicate refund", K.REFUND_DUPLICATE_CHARGE, None, {L1: NO, L2: NO, MGR: OK, SPEC: OK}),
    ("grace 7 days", K.EXTEND_GRACE_PERIOD, None, {L1: OK, L2: OK, MGR: OK, SPEC: OK}),
    (
        "grace 30 days",
        K.EXTEND_GRACE_PERIOD,
        {"subscription_id": "sub_acme", "days": 30},
        {L1: MGR, L2: MGR, MGR: OK, SPEC: MGR},
    ),
    ("tax invoice", K.SEND_TAX_INVOICE, None, {L1: OK, L2: OK, MGR: OK, SPEC: OK}),
]
CASES = [
    pytest.param(kind, params, role, expected, id=f"{label} · {role.value}")
    for label, kind, params, by_role in MATRIX
    for role, expected in by_role.items()
]


@pytest.mark.parametrize(("kind", "params", "role", "expected"), CASES)
def test_permission_matrix_end_to_end(kind, params, role, expected, workspace, acme, api_as, spy):
    # given an agent of this role in the panel
    client = api_as(workspace, role)

    # when they submit the action
    response = post_action(client, kind, params)

    # then it executes now, becomes an approval request for the right role, or is refused
    # (recorded, nothing sent), as section 3 says
    if expected == NO:
        assert response.status_code == 403, response.json()
        assert response.json()["error"]["code"] == "not_permitted"
        assert BillingAction.objects.get().status == "not_permitted"
        assert spy.writes() == [], "a refused action must not touch the provider"
        return
    assert response.status_code == 201, response.json()
    body = response.json()
    action = BillingAction.objects.get(pk=body["id"])
    assert action.actor == client.membership.user
    if expected == OK:
        assert body["status"] == "succeeded", body["error"]
        assert body["decision"]["outcome"] == "allow"
        assert body["approval"] is None
        assert spy.writes(), "nothing reached the provider"
    else:
        assert body["status"] == "pending_approval"
        assert body["decision"]["outcome"] == "approval"
        assert body["decision"]["approver_roles"] == [expected.value]
        assert body["decision"]["reason"]
        assert body["approval"]["required_roles"] == [expected.value]
        assert ApprovalRequest.objects.filter(action=action, status="pending").exists()
        assert spy.writes() == [], "an escalated action must not touch the provider"


def test_response_carries_result_and_customer_message(workspace, acme, api_as, spy):
    client = api_as(workspace, MGR)
    response = post_action(client, K.REFUND_DUPLICATE_CHARGE)

    body = response.json()
    assert response.status_code == 201
    assert body["status"] == "succeeded"
    assert body["result"]["charge_id"] == "ch_acme_dup2"
    assert body["amount"] == {"amount": 4900, "currency": "USD", "exponent": 2, "display": "$49.00"}
    assert body["customer_message"].startswith("We found a duplicate charge of $49.00.")
    assert body["actor"]["role"] == "manager"
    assert body["provider_object_id"] == body["result"]["refund_id"]
    # the short reference the note quotes, e.g. BD-3F2A91C0
    assert body["reference"] == "BD-" + body["id"].replace("-", "")[:8].upper()


def test_not_permitted_is_403_with_the_reason_and_recorded(workspace, acme, api_as, spy):
    client = api_as(workspace, Role.VP)
    response = post_action(client, K.RESEND_INVOICE, key="vp-try")

    assert response.status_code == 403
    error = response.json()["error"]
    assert error["code"] == "not_permitted"
    assert "may not resend invoice" in error["details"]["reason"]
    assert BillingAction.objects.get(idempotency_key="vp-try").status == "not_permitted"
    assert spy.calls == []
    # and asking again with the same key answers the same
    assert post_action(client, K.RESEND_INVOICE, key="vp-try").status_code == 403


def test_bad_params_are_400_with_codes_and_nothing_recorded(workspace, acme, api_as, spy):
    client = api_as(workspace, SPEC)
    response = post_action(
        client,
        K.APPLY_DISCOUNT,
        {"subscription_id": "sub_acme", "percent_off": "150", "duration": "once"},
    )

    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid_params"
    assert error["details"]["codes"] == {"percent_off": ["max_value"]}
    assert error["details"]["params"]["percent_off"]
    assert not BillingAction.objects.exists()
    assert spy.calls == []


@pytest.mark.parametrize(
    ("payload", "code"),
    [
        ({"kind": "issue_refund"}, "invalid"),
        (
            {
                "kind": "nope",
                "customer_id": "cus_acme",
                "ticket_id": "1",
                "params": {},
                "idempotency_key": "k",
            },
            "unknown_kind",
        ),
        (
            {
                "kind": "resend_invoice",
                "customer_id": "cus_acme",
                "ticket_id": "1",
                "params": [1],
                "idempotency_key": "k",
            },
            "invalid",
        ),
    ],
)
def test_malformed_requests_are_400(payload, code, workspace, acme, api_as):
    response = api_as(workspace, MGR).post("/api/v1/actions/", payload, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == code


def test_unparseable_json_is_400(workspace, api_as):
    response = api_as(workspace, MGR).post(
        "/api/v1/actions/", data="{not json", content_type="application/json"
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "malformed_request"


def test_unauthenticated_is_401_and_nothing_happens(db, acme, spy):
    response = APIClient().post("/api/v1/actions/", {"kind": "issue_refund"}, format="json")
    assert response.status_code == 401
    assert not BillingAction.objects.exists()


def test_another_workspaces_customer_is_404(workspace, acme, make_workspace, api_as, spy):
    globex = make_workspace("globex")
    response = post_action(api_as(globex, SPEC), K.ISSUE_REFUND)
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "customer_not_found"
    assert spy.calls == []


def test_charge_of_another_customer_is_404(workspace, acme, api_as, spy):
    response = post_action(
        api_as(workspace, MGR), K.ISSUE_REFUND, refund(100, charge="ch_other_paid")
    )
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "charge_not_found"
    assert not BillingAction.objects.exists()


def test_precondition_is_422_with_code(workspace, acme, api_as, spy):
    response = post_action(
        api_as(workspace, MGR), K.ISSUE_REFUND, refund(100, charge="ch_acme_disputed")
    )
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "charge_disputed"


def test_same_idempotency_key_returns_the_first_answer(workspace, acme, api_as, spy):
    client = api_as(workspace, MGR)
    first = post_action(client, K.ISSUE_REFUND, key="retry-after-timeout")
    again = post_action(client, K.ISSUE_REFUND, key="retry-after-timeout")

    assert first.status_code == 201
    assert again.status_code == 200
    assert again["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()
    assert len(spy.writes("refund")) == 1


def test_same_key_other_payload_is_409(workspace, acme, api_as, spy):
    client = api_as(workspace, MGR)
    post_action(client, K.ISSUE_REFUND, key="k")
    response = post_action(client, K.ISSUE_REFUND, refund(20000), key="k")
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "idempotency_key_reused"
    assert len(spy.writes("refund")) == 1


def test_provider_failure_is_201_failed_with_the_error(workspace, acme, api_as, spy):
    from billing_app.errors import ProviderError

    spy.fail(
        "apply_credit",
        ProviderError(
            "Invalid currency for customer.",
            code="invalid_request",
            provider_code="invalid_request_error",
        ),
    )
    response = post_action(api_as(workspace, MGR), K.APPLY_CREDIT)

    body = response.json()
    assert response.status_code == 201
    assert body["status"] == "failed"
    assert body["error"] == {"code": "invalid_request", "message": "Invalid currency for customer."}
    assert body["customer_message"] == ""


# --- seats on a subscription with an add-on ---------------------------------------------------


def test_seats_through_the_api_change_the_plan_item_beside_a_larger_add_on(
    workspace, acme, api_as, spy
):
    # given Add-on Co: 3 × $20.00 seats and a $300.00 a month add-on (product addon="true")
    addon_account_seed(workspace)

    # when an L2 agent asks for 5 seats without naming an item
    response = post_action(
        api_as(workspace, L2),
        K.ADJUST_SEATS,
        {"subscription_id": "sub_addon", "quantity": 5},
        customer="cus_addon",
    )

    # then the seat item has 5, the add-on still 1, and the MRR change is 2 × $20.00
    body = response.json()
    assert response.status_code == 201, body
    assert body["status"] == "succeeded", body["error"]
    items = dict(
        MirrorSubscriptionItem.objects.filter(
            workspace=workspace, subscription_id="sub_addon"
        ).values_list("stripe_id", "quantity")
    )
    assert items == {"si_addon_plan": 5, "si_addon_platform": 1}
    assert [kw["item_id"] for _, kw in spy.writes("adjust_seats")] == ["si_addon_plan"]
    assert body["result"]["previous_quantity"] == 3
    assert (body["result"]["mrr_delta"], body["result"]["mrr_currency"]) == (4000, "USD")


# --- the audit trail ------------------------------------------------------------------------


def test_audit_trail_filters_pages_and_stays_in_its_workspace(
    workspace, acme, api_as, make_workspace, spy
):
    manager, l1 = api_as(workspace, MGR), api_as(workspace, L1)
    post_action(manager, K.RESEND_INVOICE)
    post_action(manager, K.GENERATE_PAYMENT_LINK)
    post_action(l1, K.EXTEND_GRACE_PERIOD, {"subscription_id": "sub_acme", "days": 30})  # escalated
    post_action(
        manager,
        K.ADJUST_SEATS,
        {"subscription_id": "sub_other", "quantity": 6},
        customer="cus_other",
    )

    page = manager.get("/api/v1/actions/", {"customer_id": "cus_acme", "limit": 2}).json()
    assert len(page["results"]) == 2
    assert page["next"]
    rest = manager.get(page["next"]).json()
    assert len(rest["results"]) == 1
    assert {a["kind"] for a in page["results"] + rest["results"]} == {
        "resend_invoice",
        "generate_payment_link",
        "extend_grace_period",
    }

    pending = manager.get("/api/v1/actions/", {"status": "pending_approval"}).json()["results"]
    assert [a["kind"] for a in pending] == ["extend_grace_period"]
    assert pending[0]["approval"]["status"] == "pending"

    bad = manager.get("/api/v1/actions/", {"status": "done"})
    assert bad.status_code == 400

    globex = api_as(make_workspace("globex"), MGR)
    assert globex.get("/api/v1/actions/").json()["results"] == []
    action_id = pending[0]["id"]
    assert globex.get(f"/api/v1/actions/{action_id}/").status_code == 404
    assert manager.get(f"/api/v1/actions/{action_id}/").json()["status"] == "pending_approval"


# --- plan-change preview ----------------------------------------------------------------------


def test_preview_then_upgrade_produces_the_previewed_numbers(workspace, acme, api_as, spy):
    client = api_as(workspace, L2)

    preview = client.post(
        "/api/v1/customers/cus_acme/plan-change/preview/",
        {"subscription_id": "sub_acme", "price_id": "price_ultimate_seat"},
        format="json",
    )
    assert preview.status_code == 200, preview.json()
    numbers = preview.json()
    assert numbers["direction"] == "upgrade"
    assert numbers["new_recurring_amount"]["amount"] == 7200 * 50 + 50000 + 30000 + 20000
    assert len(numbers["lines"]) == 2 and all(line["proration"] for line in numbers["lines"])
    assert numbers["amount_due_now"]["amount"] == sum(
        line["amount"]["amount"] for line in numbers["lines"]
    )
    assert numbers["amount_due_now"]["amount"] > 0
    assert spy.writes() == []

    response = post_action(
        client,
        K.CHANGE_PLAN,
        {
            "subscription_id": "sub_acme",
            "price_id": "price_ultimate_seat",
            "proration_date": numbers["proration_date"],
        },
    )
    body = response.json()
    assert body["status"] == "succeeded", body["error"]
    invoice = MirrorInvoice.objects.get(workspace=workspace, stripe_id=body["result"]["invoice_id"])
    assert invoice.total == numbers["amount_due_now"]["amount"]
    assert body["result"]["preview"]["new_recurring_amount"] == numbers["new_recurring_amount"]
    assert datetime.fromisoformat(body["result"]["effective_date"]) == datetime.fromisoformat(
        numbers["effective_date"]
    )
    plan = MirrorSubscriptionItem.objects.get(workspace=workspace, stripe_id="si_acme_plan")
    assert plan.price_id == "price_ultimate_seat"
    assert "Your new monthly charge is $4,600.00" in body["customer_message"]


def test_preview_of_a_downgrade_is_scheduled_at_period_end(workspace, acme, api_as, spy):
    client = api_as(workspace, L2)
    numbers = client.post(
        "/api/v1/customers/cus_acme/plan-change/preview/",
        {"subscription_id": "sub_acme", "price_id": "price_business_seat"},
        format="json",
    ).json()
    assert numbers["direction"] == "downgrade"
    assert numbers["amount_due_now"]["amount"] == 0
    assert numbers["lines"] == []

    body = post_action(
        client, K.CHANGE_PLAN, {"subscription_id": "sub_acme", "price_id": "price_business_seat"}
    ).json()
    assert body["status"] == "succeeded"
    assert body["result"]["direction"] == "downgrade"
    assert body["result"]["schedule_id"]
    assert body["result"]["effective_date"][:19] == numbers["effective_date"][:19]
    # nothing changes before the period ends
    plan = MirrorSubscriptionItem.objects.get(workspace=workspace, stripe_id="si_acme_plan")
    assert plan.price_id == "price_pro_seat"


@pytest.mark.parametrize(
    ("payload", "status", "code"),
    [
        (
            {"subscription_id": "sub_other", "price_id": "price_ultimate_seat"},
            404,
            "subscription_not_found",
        ),
        ({"subscription_id": "sub_acme", "price_id": "price_pro_seat"}, 422, "same_price"),
        ({"subscription_id": "sub_acme"}, 400, "invalid"),
    ],
)
def test_preview_refuses_what_the_change_would_refuse(
    payload, status, code, workspace, acme, api_as
):
    response = api_as(workspace, L2).post(
        "/api/v1/customers/cus_acme/plan-change/preview/", payload, format="json"
    )
    assert response.status_code == status
    assert response.json()["error"]["code"] == code


def test_preview_for_another_workspace_is_404(workspace, acme, api_as, make_workspace):
    response = api_as(make_workspace("globex"), L2).post(
        "/api/v1/customers/cus_acme/plan-change/preview/",
        {"subscription_id": "sub_acme", "price_id": "price_ultimate_seat"},
        format="json",
    )
    assert response.status_code == 404
