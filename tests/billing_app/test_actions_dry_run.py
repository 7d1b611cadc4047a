"""``POST /api/v1/actions/dry-run/`` never disagrees with ``POST /api/v1/actions/``.

Every case runs the dry run, checks that it wrote nothing and called no provider write,
then submits the very same request for real on the sandbox and asserts agreement:
execute ↔ ``succeeded``, approval ↔ ``pending_approval`` with the same approver roles,
refused ↔ the same HTTP status and error code. The cases walk the brief's matrix on every
boundary (each agent role × each action kind × just below / at / above each limit), the
refund pattern (2 against 3 refunds in 90 days, in-flight ones counted), a missing
exchange rate (a ¥1,000 credit), customer-requested or not, and precondition refusals.
Each case also pins what the brief says the answer is, so agreement on a wrong answer
fails too.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from billing_app.catalog import ActionKind, Role
from billing_app.models import (
    ActionPolicy,
    ApprovalRequest,
    BillingAction,
    CurrencyRate,
    CustomerLock,
    MirrorCustomer,
)
from billing_app.services.actions import run as actions_run
from billing_app.services.mirror import mirror_upsert

from .actions_support import ProviderSpy, account_seed, customer, next_key
from .test_actions_service import HAPPY

K = ActionKind
L1, L2, MGR, SPEC = Role.L1, Role.L2, Role.MANAGER, Role.SPECIALIST
ROLES = (L1, L2, MGR, SPEC)
E = "execute"
X = "not_permitted"  # refused by the matrix (403)
M, VP, LEGAL = Role.MANAGER, Role.VP, Role.LEGAL


@pytest.fixture
def acme(workspace):
    return account_seed(workspace)


@pytest.fixture
def spy(monkeypatch):
    spy = ProviderSpy()
    real = actions_run.get_provider
    monkeypatch.setattr(actions_run, "get_provider", lambda ws: spy.wrap(real(ws)))
    return spy


def body(kind: ActionKind, customer_id: str, params: dict, key: str | None = None) -> dict:
    out = {"kind": kind.value, "customer_id": customer_id, "ticket_id": "1001", "params": params}
    if key:
        out["idempotency_key"] = key
    return out


def happy(kind: ActionKind, **changes) -> tuple[ActionKind, str, dict]:
    customer_id, params = HAPPY[kind]
    return kind, customer_id, {**params, **changes}


def refund(amount: int, charge: str = "ch_acme_paid", **extra) -> tuple[ActionKind, str, dict]:
    params = {"charge_id": charge, "amount": amount, "currency": "USD", "reason": "billing_error"}
    return K.ISSUE_REFUND, "cus_acme", {**params, **extra}


def credit(amount: int, currency: str = "USD", customer_id: str = "cus_acme"):
    return K.APPLY_CREDIT, customer_id, {"amount": amount, "currency": currency}


def discount(percent: str):
    return happy(K.APPLY_DISCOUNT, percent_off=percent)


def cancel(requested: bool):
    return happy(K.CANCEL_SUBSCRIPTION, customer_requested=requested)


# -- setups: the history a case needs, written before the dry run -------------------------


def prior_refunds(count: int):
    """``count`` executed $10.00 refunds of Acme's paid charge, by a Manager."""

    def setup(workspace, api_as):
        manager = api_as(workspace, MGR, agent_id="history-manager")
        for _ in range(count):
            response = manager.post(
                "/api/v1/actions/",
                {**body(*refund(1_000)), "idempotency_key": next_key("history")},
                format="json",
            )
            assert response.json()["status"] == "succeeded", response.json()

    return setup


def refund_awaiting_approval_and_one_done(workspace, api_as):
    """One executed refund and two waiting for approval: three in 90 days, in flight counted."""
    prior_refunds(1)(workspace, api_as)
    workspace_cell = ActionPolicy.objects.get(workspace=workspace, action="issue_refund", role="l2")
    workspace_cell.effect = "request"  # this workspace lets L2 escalate refunds (admin option)
    workspace_cell.save()
    l2 = api_as(workspace, L2, agent_id="history-l2")
    for _ in range(2):
        response = l2.post(
            "/api/v1/actions/",
            {**body(*refund(1_000)), "idempotency_key": next_key("history")},
            format="json",
        )
        assert response.json()["status"] == "pending_approval", response.json()
    workspace_cell.effect = "deny"  # back to the brief for the case itself
    workspace_cell.save()


def yen_customer(workspace, api_as):
    mirror_upsert(
        workspace=workspace,
        obj=customer("cus_yen", "Yen KK", "ap@yen.example", timezone.now(), currency="jpy"),
    )


def yen_customer_with_rate(workspace, api_as):
    yen_customer(workspace, api_as)
    CurrencyRate.objects.create(workspace=workspace, currency="JPY", rate=Decimal("0.01"))


def refund_outcome_unknown(workspace, api_as):
    """A refund on Acme's paid charge sent to Stripe with no answer yet."""
    manager = api_as(workspace, MGR, agent_id="history-manager")
    BillingAction.objects.create(
        workspace=workspace,
        actor=manager.membership.user,
        actor_role="manager",
        customer_id="cus_acme",
        kind="issue_refund",
        params=refund(1_000)[2],
        amount=1_000,
        currency="USD",
        status=BillingAction.Status.OUTCOME_UNKNOWN,
        decision=BillingAction.Decision.ALLOW,
        idempotency_key=next_key("unknown"),
        result={"charge_id": "ch_acme_paid"},
        started_at=timezone.now() - timedelta(minutes=1),
    )


def escalatable_l1_credit(workspace, api_as):
    """An admin turned "L1 · credit" (❌ in the brief) into "May request approval"."""
    ActionPolicy.objects.filter(workspace=workspace, action="apply_credit", role="l1").update(
        effect="request"
    )


def _manager_does(kind: ActionKind, **changes):
    def setup(workspace, api_as):
        manager = api_as(workspace, MGR, agent_id="history-manager")
        response = manager.post(
            "/api/v1/actions/",
            {**body(*happy(kind, **changes)), "idempotency_key": next_key("history")},
            format="json",
        )
        assert response.json()["status"] == "succeeded", response.json()

    return setup


paused = _manager_does(K.PAUSE_SUBSCRIPTION)
ending = _manager_does(K.CANCEL_SUBSCRIPTION)
SUB = {"subscription_id": "sub_acme"}


def none(workspace, api_as):
    return None


# fmt: off
# (label, (kind, customer, params), setup, {role: expected}) — expected: E executes, X the
# matrix refuses (403 not_permitted), a Role goes to that approver, another string is the
# precondition's refusal code (the same for every role: preconditions run before the matrix).
CASES = [
    ("payment link",            happy(K.GENERATE_PAYMENT_LINK),                 none, (E, E, E, E)),
    ("resend invoice",          happy(K.RESEND_INVOICE),                        none, (E, E, E, E)),
    ("tax invoice",             happy(K.SEND_TAX_INVOICE),                      none, (E, E, E, E)),
    ("payment method link",     happy(K.UPDATE_PAYMENT_METHOD),                 none, (X, E, E, E)),
    # credit: < $100 L2; $100–500 Manager; > $500 Specialist after VP approval; ❌ otherwise
    ("credit $0.01",            credit(1),                                      none, (X, E, E, E)),
    ("credit $99.99",           credit(9_999),                                  none, (X, E, E, E)),
    ("credit $100.00",          credit(10_000),                                 none, (X, X, E, E)),
    ("credit $500.00",          credit(50_000),                                 none, (X, X, E, E)),
    ("credit $500.01",          credit(50_001),                                 none, (X, X, X, VP)),
    ("credit L1 escalation on", credit(5_000),                    escalatable_l1_credit, (M, E, E, E)),
    # a ¥1,000 credit with no JPY rate: never executed directly, the strictest route (VP)
    ("credit ¥1,000 no rate",   credit(1_000, "JPY", "cus_yen"),         yen_customer, (X, VP, VP, VP)),
    ("credit ¥9,999 at 0.01",   credit(9_999, "JPY", "cus_yen"), yen_customer_with_rate, (X, E, E, E)),
    ("credit ¥10,000 at 0.01",  credit(10_000, "JPY", "cus_yen"), yen_customer_with_rate, (X, X, E, E)),
    # refund: Manager any amount; Specialist up to $1,000, above → Manager approval
    ("refund $0.01",            refund(1),                                      none, (X, X, E, E)),
    ("refund $1,000.00",        refund(100_000),                                none, (X, X, E, E)),
    ("refund $1,000.01",        refund(100_001),                                none, (X, X, E, M)),
    ("duplicate refund",        happy(K.REFUND_DUPLICATE_CHARGE),               none, (X, X, E, E)),
    # refund pattern: 3 refunds in 90 days → Manager review whoever asks; 2 is no pattern
    ("refund after 2 refunds",  refund(1_000),                      prior_refunds(2), (X, X, E, E)),
    ("refund after 3 refunds",  refund(1_000),                      prior_refunds(3), (X, X, M, M)),
    ("refund, 2 of 3 in flight", refund(1_000),    refund_awaiting_approval_and_one_done, (X, X, M, M)),
    ("duplicate after 3",       happy(K.REFUND_DUPLICATE_CHARGE),   prior_refunds(3), (X, X, M, M)),
    # trial and grace: up to 14 days; longer → Manager approval (a Manager's own is direct)
    ("trial 14 days",           happy(K.EXTEND_TRIAL, days=14),                 none, (E, E, E, E)),
    ("trial 15 days",           happy(K.EXTEND_TRIAL, days=15),                 none, (M, M, E, M)),
    ("grace 14 days",           happy(K.EXTEND_GRACE_PERIOD, days=14),          none, (E, E, E, E)),
    ("grace 15 days",           happy(K.EXTEND_GRACE_PERIOD, days=15),          none, (M, M, E, M)),
    ("pause",                   happy(K.PAUSE_SUBSCRIPTION),                    none, (X, X, E, E)),
    ("change plan",             happy(K.CHANGE_PLAN),                           none, (X, E, E, E)),
    ("seats 55",                happy(K.ADJUST_SEATS),                          none, (X, E, E, E)),
    # cancel: Specialist only when the customer requested it; force: Specialist after Legal
    ("cancel, requested",       cancel(True),                                   none, (X, X, E, E)),
    ("cancel, not requested",   cancel(False),                                  none, (X, X, E, X)),
    ("force cancel",            happy(K.FORCE_CANCEL),                          none, (X, X, X, LEGAL)),
    # resume and keep sit under the pause and cancel rows. Keeping a subscription counts as
    # customer-requested: the Specialist's customer-requested-only cancel cell allows it.
    ("resume a paused one",     (K.RESUME_SUBSCRIPTION, "cus_acme", SUB),     paused, (X, X, E, E)),
    ("keep one set to end",     (K.UNDO_CANCELLATION, "cus_acme", SUB),       ending, (X, X, E, E)),
    ("resume one not paused",   (K.RESUME_SUBSCRIPTION, "cus_acme", SUB),       none, ("not_paused",) * 4),
    # discount: up to 15% Manager and Specialist; above 15% Specialist after VP approval
    ("discount 15%",            discount("15"),                                 none, (X, X, E, E)),
    ("discount 15.5%",          discount("15.5"),                               none, (X, X, X, VP)),
    ("discount 16%",            discount("16"),                                 none, (X, X, X, VP)),
    # preconditions refuse before the matrix, for every role, with the execution's code
    ("refund past the window",  refund(1_000, "ch_acme_old"),         none, ("refund_window_passed",) * 4),
    ("refund of a dispute",     refund(1_000, "ch_acme_disputed"),    none, ("charge_disputed",) * 4),
    ("refund of a failed charge", refund(1_000, "ch_acme_failed"),    none, ("charge_not_refundable",) * 4),
    ("refund above refundable", refund(340_001),                      none, ("exceeds_refundable",) * 4),
    ("refund in another currency", refund(1_000, currency="EUR"),     none, ("currency_mismatch",) * 4),
    ("refund of another's charge", refund(1_000, "ch_other_paid"),    none, ("charge_not_found",) * 4),
    ("refund while one is unconfirmed", refund(1_000),  refund_outcome_unknown, ("action_outcome_unknown",) * 4),
    ("seats below those in use", happy(K.ADJUST_SEATS, quantity=44),  none, ("below_seats_used",) * 4),
    ("seats unchanged",         happy(K.ADJUST_SEATS, quantity=50),   none, ("same_quantity",) * 4),
    ("bad params",              discount("150"),                      none, ("invalid_params",) * 4),
]
# fmt: on

PARAMS = [
    pytest.param(kind, customer_id, params, setup, role, expected, id=f"{label} · {role.value}")
    for label, (kind, customer_id, params), setup, by_role in CASES
    for role, expected in zip(ROLES, by_role, strict=True)
]


def _written() -> tuple[int, int, int]:
    return (
        BillingAction.objects.count(),
        ApprovalRequest.objects.count(),
        CustomerLock.objects.count(),
    )


@pytest.mark.parametrize(("kind", "customer_id", "params", "setup", "role", "expected"), PARAMS)
def test_dry_run_and_execution_agree(
    kind, customer_id, params, setup, role, expected, workspace, acme, api_as, spy
):
    # given the case's history and an agent of this role
    setup(workspace, api_as)
    client = api_as(workspace, role)
    before, calls_before = _written(), len(spy.writes())

    # when they ask the dry run
    dry = client.post("/api/v1/actions/dry-run/", body(kind, customer_id, params), format="json")

    # then it answers, writes nothing and moves nothing
    assert dry.status_code == 200, dry.json()
    answer = dry.json()
    assert _written() == before
    assert len(spy.writes()) == calls_before
    assert answer["message"] and answer["headline"] and answer["reason"]

    # and it says what the brief says
    if expected == E:
        assert answer["outcome"] == "execute", answer
    elif isinstance(expected, Role):
        assert answer["outcome"] == "approval", answer
        assert [a["role"] for a in answer["approvers"]] == [expected.value]
        assert answer["approvers"][0]["label"] == expected.label
    else:
        assert (answer["outcome"], answer["code"]) == ("refused", expected), answer

    # when the same request is submitted for real
    real = client.post(
        "/api/v1/actions/", body(kind, customer_id, params, key=next_key()), format="json"
    )

    # then the execution does what the dry run said
    result = real.json()
    if answer["outcome"] == "execute":
        assert real.status_code == 201, result
        assert result["status"] == "succeeded", result
    elif answer["outcome"] == "approval":
        assert real.status_code == 201, result
        assert result["status"] == "pending_approval"
        assert result["approval"]["required_roles"] == [a["role"] for a in answer["approvers"]]
        assert result["decision"]["reason"] == answer["reason"]
    else:
        assert real.status_code == answer["status"], result
        assert result["error"]["code"] == answer["code"]


# -- the answer in words, and what the dry run is not ------------------------------------


def dry_run(client, kind, customer_id, params):
    response = client.post(
        "/api/v1/actions/dry-run/", body(kind, customer_id, params), format="json"
    )
    assert response.status_code == 200, response.json()
    return response.json()


def test_the_refund_pattern_is_said_in_words(workspace, acme, api_as, spy):
    # given a customer with 3 refunds in the last 90 days
    prior_refunds(3)(workspace, api_as)

    # when a Manager asks what a refund would do
    answer = dry_run(api_as(workspace, MGR), *refund(1_000))

    # then: goes to a Manager, because of the pattern — no codes in the words
    assert answer["outcome"] == "approval"
    assert answer["code"] == "refund_pattern"
    assert answer["headline"] == "Goes to a Manager for approval"
    assert "refund pattern: 3 refunds in the last 90 days" in answer["message"]
    assert "_" not in answer["message"]


def test_a_missing_rate_is_said_and_fails_safe(workspace, acme, api_as, spy):
    yen_customer(workspace, api_as)
    answer = dry_run(api_as(workspace, MGR), *credit(1_000, "JPY", "cus_yen"))
    assert answer["outcome"] == "approval"
    assert answer["code"] == "no_exchange_rate"
    assert answer["headline"] == "Goes to a VP Approver for approval"
    assert "no exchange rate for JPY to USD" in answer["message"]


def test_execute_says_the_limit(workspace, acme, api_as, spy):
    answer = dry_run(api_as(workspace, MGR), *credit(30_000))
    assert answer == {
        "outcome": "execute",
        "code": "within_limit",
        "headline": "Happens now",
        "reason": "$300.00 is within the Manager limit (up to $500.00)",
        "message": "Happens now: $300.00 is within the Manager limit (up to $500.00).",
        "approvers": [],
        "status": None,
        "details": {},
    }


def test_a_refused_cell_says_why_in_words(workspace, acme, api_as, spy):
    answer = dry_run(api_as(workspace, MGR), *credit(50_001))
    assert answer["outcome"] == "refused"
    assert answer["code"] == "not_permitted"
    assert answer["status"] == 403
    assert answer["details"] == {"rule": "above_limit"}
    assert answer["message"] == (
        "Not possible: $500.01 is above the Manager limit (up to $500.00)."
    )


def test_a_precondition_refusal_carries_its_details(workspace, acme, api_as, spy):
    answer = dry_run(api_as(workspace, MGR), *happy(K.ADJUST_SEATS, quantity=40))
    assert (answer["outcome"], answer["code"], answer["status"]) == (
        "refused",
        "below_seats_used",
        422,
    )
    assert answer["details"]["seats_used"] == 45
    assert answer["message"].startswith("Not possible: ")


def test_a_used_idempotency_key_is_ignored(workspace, acme, api_as, spy):
    # given a refund already made under a key
    client = api_as(workspace, MGR)
    first = client.post("/api/v1/actions/", body(*refund(1_000), key="used"), format="json")
    assert first.json()["status"] == "succeeded"

    # when the dry run is sent with that key and another request
    response = client.post(
        "/api/v1/actions/dry-run/", body(*credit(5_000), key="used"), format="json"
    )

    # then it answers for the request, not with the earlier action
    assert response.status_code == 200
    assert response.json()["outcome"] == "execute"
    assert BillingAction.objects.count() == 1


@pytest.mark.parametrize(
    ("payload", "status", "code"),
    [
        ({"kind": "issue_refund"}, 400, "invalid"),
        ({"kind": "nope", "customer_id": "cus_acme", "params": {}}, 400, "unknown_kind"),
        ({"kind": "resend_invoice", "customer_id": "cus_acme", "params": [1]}, 400, "invalid"),
        (
            {
                "kind": "resend_invoice",
                "customer_id": "cus_nobody",
                "params": {"invoice_id": "in_x"},
            },
            404,
            None,
        ),
    ],
)
def test_a_malformed_dry_run_is_a_4xx(payload, status, code, workspace, acme, api_as):
    response = api_as(workspace, MGR).post("/api/v1/actions/dry-run/", payload, format="json")
    assert response.status_code == status
    assert response.json()["error"]["code"] == (code or "customer_not_found")
    assert not BillingAction.objects.exists()


def test_the_dry_run_needs_an_app_session(db, acme):
    from rest_framework.test import APIClient

    response = APIClient().post("/api/v1/actions/dry-run/", body(*credit(5_000)), format="json")
    assert response.status_code == 401


def test_another_workspaces_customer_is_404(workspace, acme, make_workspace, api_as):
    response = api_as(make_workspace("globex"), SPEC).post(
        "/api/v1/actions/dry-run/", body(*credit(5_000)), format="json"
    )
    assert response.status_code == 404
    assert MirrorCustomer.objects.filter(stripe_id="cus_acme").exists()


def test_execution_and_dry_run_share_one_decision_function(workspace, acme, api_as, monkeypatch):
    # given a recorder on the one decision function
    from billing_app.services.actions import decision, submit

    seen = []
    real = decision.action_decide

    def recording(**kwargs):
        seen.append(kwargs["kind"])
        return real(**kwargs)

    monkeypatch.setattr(decision, "action_decide", recording)
    monkeypatch.setattr(submit, "action_decide", recording)
    # the submission holds no copy of the matrix call
    assert not hasattr(submit, "decide")

    # when the dry run and the execution run
    client = api_as(workspace, MGR)
    client.post("/api/v1/actions/dry-run/", body(*credit(5_000)), format="json")
    client.post("/api/v1/actions/", body(*credit(5_000), key=next_key()), format="json")

    # then both went through it
    assert seen == [K.APPLY_CREDIT, K.APPLY_CREDIT]
