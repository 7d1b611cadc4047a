import pytest

from billing_app.catalog import ActionKind, Role
from billing_app.models import ActionPolicy


def test_me_lists_role_and_actions_with_limits(workspace, api_as):
    # given an L2 agent of the workspace
    client = api_as(workspace, Role.L2)

    # when they ask who they are
    response = client.get("/api/v1/me/")

    # then the role and the credit limit of the matrix come back
    assert response.status_code == 200
    body = response.json()
    assert body["role"]["key"] == "l2"
    credit = next(a for a in body["actions"] if a["kind"] == "apply_credit")
    assert credit["mode"] == "direct"
    assert credit["limit"] == 10_000
    assert credit["limit_display"] == "$100.00"
    assert credit["above_limit"] == "deny"  # $100 and more is ❌ for L2: offered with its limit
    refund = next(a for a in body["actions"] if a["kind"] == "issue_refund")
    assert refund["mode"] == "not_permitted"


# The brief's matrix (DESIGN.md section 3): what each role is offered, and how.
OFFERED = {
    Role.L1: {
        "direct": {
            "generate_payment_link",
            "resend_invoice",
            "send_tax_invoice",
            "extend_trial",
            "extend_grace_period",
        },
        "request_approval": set(),
    },
    Role.L2: {
        "direct": {
            "generate_payment_link",
            "resend_invoice",
            "send_tax_invoice",
            "extend_trial",
            "extend_grace_period",
            "apply_credit",
            "change_plan",
            "update_payment_method",
            "adjust_seats",
        },
        "request_approval": set(),
    },
    Role.MANAGER: {
        "direct": {k.value for k in ActionKind} - {"force_cancel"},
        "request_approval": set(),
    },
    Role.SPECIALIST: {
        "direct": {k.value for k in ActionKind} - {"force_cancel"},
        "request_approval": {"force_cancel"},
    },
}


@pytest.mark.parametrize("role", list(OFFERED))
def test_me_offers_no_action_the_brief_marks_not_permitted(role, workspace, api_as):
    # given an agent of this role on the default matrix
    body = api_as(workspace, role).get("/api/v1/me/").json()

    # then the ❌ cells are not offered at all — no "request approval" for them
    by_mode = {}
    for action in body["actions"]:
        by_mode.setdefault(action["mode"], set()).add(action["kind"])
    assert by_mode.get("direct", set()) == OFFERED[role]["direct"]
    assert by_mode.get("request_approval", set()) == OFFERED[role]["request_approval"]


def test_me_says_the_limits_and_what_happens_above_them(workspace, api_as):
    actions = {
        a["kind"]: a for a in api_as(workspace, Role.MANAGER).get("/api/v1/me/").json()["actions"]
    }
    credit, discount = actions["apply_credit"], actions["apply_discount"]
    assert (credit["limit_display"], credit["above_limit"]) == ("$500.00", "deny")
    assert (discount["limit_display"], discount["above_limit"]) == ("15%", "deny")
    specialist = {
        a["kind"]: a
        for a in api_as(workspace, Role.SPECIALIST).get("/api/v1/me/").json()["actions"]
    }
    assert specialist["apply_credit"]["above_limit"] == "request"
    assert specialist["cancel_subscription"]["customer_requested_only"] is True


def test_an_escalated_cell_is_offered_as_a_request(workspace, api_as):
    # given an admin who lets L1 escalate refunds (the per-cell option)
    ActionPolicy.objects.filter(workspace=workspace, action="issue_refund", role="l1").update(
        effect="request"
    )
    actions = {
        a["kind"]: a for a in api_as(workspace, Role.L1).get("/api/v1/me/").json()["actions"]
    }
    assert actions["issue_refund"]["mode"] == "request_approval"
    assert actions["refund_duplicate_charge"]["mode"] == "request_approval"


def test_me_without_token_is_401_with_www_authenticate(db, client):
    response = client.get("/api/v1/me/")
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert response.json()["error"]["code"] == "not_authenticated"


def test_token_rejected_after_role_change(workspace, sign_in, client):
    membership, token = sign_in(workspace, Role.L1, agent_id="42")
    sign_in(workspace, Role.MANAGER, agent_id="42")  # role changes: version bumps
    response = client.get("/api/v1/me/", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert response.status_code == 401
