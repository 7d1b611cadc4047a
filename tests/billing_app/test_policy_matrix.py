"""The permission matrix of DESIGN.md section 3, cell by cell.

Every row of ``MATRIX`` is one size of one action (below / at / above each limit);
every column one agent role. Each (row, role) pair is its own test, run twice:
once on ``PolicyRules`` built directly from ``policy_defaults`` as pure values, and
once on the rules ``services.policy.policy_rules_load`` reads from a new
workspace's database rows.
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from billing_app.catalog import AGENT_ROLES, KIND_POLICY_ACTION, ActionKind, PolicyAction, Role
from billing_app.models import ActionPolicy, ApprovalRoute, CurrencyRate
from billing_app.money import Money
from billing_app.policy import (
    ActionRequest,
    Allow,
    Deny,
    History,
    NeedsApproval,
    PolicyCell,
    PolicyRoute,
    PolicyRules,
    can_approve,
    decide,
)
from billing_app.policy_defaults import DEFAULT_CELLS, DEFAULT_ROUTES
from billing_app.services.policy import policy_rules_load

L1, L2, MANAGER, SPECIALIST = Role.L1, Role.L2, Role.MANAGER, Role.SPECIALIST
ROLES = (L1, L2, MANAGER, SPECIALIST)

# Expected outcomes, as the matrix says them.
OK = ("allow",)
M = ("approval", (Role.MANAGER,))  # ⬆ Manager approves
VP = ("approval", (Role.VP,))  # ⬆ VP approves
LEGAL = ("approval", (Role.LEGAL,))  # ⬆ Legal approves
NO = ("deny",)


def usd(cents: int) -> dict:
    return {"amount": Money(cents, "USD")}


def pct(value: int | str) -> dict:
    return {"percent": Decimal(str(value))}


def days(n: int) -> dict:
    return {"days": n}


REQUESTED = {"customer_requested": True}
NOT_REQUESTED = {"customer_requested": False}
A = PolicyAction

# fmt: off
MATRIX = [
    # action                    size             request            L1     L2     Manager  Specialist
    (A.VIEW_BILLING,            "any",           {},                OK,    OK,    OK,      OK),
    (A.GENERATE_PAYMENT_LINK,   "any",           {},                OK,    OK,    OK,      OK),
    (A.RESEND_INVOICE,          "any",           {},                OK,    OK,    OK,      OK),
    # One-time credit: < $100 L2; $100–500 Manager; > $500 Specialist after VP approval; ❌ else.
    (A.APPLY_CREDIT,            "$0.01",         usd(1),            NO,    OK,    OK,      OK),
    (A.APPLY_CREDIT,            "$99.99",        usd(9_999),        NO,    OK,    OK,      OK),
    (A.APPLY_CREDIT,            "$100.00",       usd(10_000),       NO,    NO,    OK,      OK),
    (A.APPLY_CREDIT,            "$250.00",       usd(25_000),       NO,    NO,    OK,      OK),
    (A.APPLY_CREDIT,            "$500.00",       usd(50_000),       NO,    NO,    OK,      OK),
    (A.APPLY_CREDIT,            "$500.01",       usd(50_001),       NO,    NO,    NO,      VP),
    (A.APPLY_CREDIT,            "$10,000.00",    usd(1_000_000),    NO,    NO,    NO,      VP),
    # Refund: Manager any amount; Specialist up to $1,000, above → Manager approval; L1/L2 ❌.
    (A.ISSUE_REFUND,            "$0.01",         usd(1),            NO,    NO,    OK,      OK),
    (A.ISSUE_REFUND,            "$999.99",       usd(99_999),       NO,    NO,    OK,      OK),
    (A.ISSUE_REFUND,            "$1,000.00",     usd(100_000),      NO,    NO,    OK,      OK),
    (A.ISSUE_REFUND,            "$1,000.01",     usd(100_001),      NO,    NO,    OK,      M),
    (A.ISSUE_REFUND,            "$50,000.00",    usd(5_000_000),    NO,    NO,    OK,      M),
    # Extend trial up to 14 days; longer → Manager approval (the Manager's own is direct).
    (A.EXTEND_TRIAL,            "1 day",         days(1),           OK,    OK,    OK,      OK),
    (A.EXTEND_TRIAL,            "14 days",       days(14),          OK,    OK,    OK,      OK),
    (A.EXTEND_TRIAL,            "15 days",       days(15),          M,     M,     OK,      M),
    (A.EXTEND_TRIAL,            "90 days",       days(90),          M,     M,     OK,      M),
    # Payment grace period: the same limits as a trial extension.
    (A.EXTEND_GRACE_PERIOD,     "14 days",       days(14),          OK,    OK,    OK,      OK),
    (A.EXTEND_GRACE_PERIOD,     "15 days",       days(15),          M,     M,     OK,      M),
    (A.PAUSE_SUBSCRIPTION,      "any",           {},                NO,    NO,    OK,      OK),
    (A.CHANGE_PLAN,             "any",           {},                NO,    OK,    OK,      OK),
    # Cancel: Specialist only when the customer requested it (otherwise that is a force cancel).
    (A.CANCEL_SUBSCRIPTION,     "requested",     REQUESTED,         NO,    NO,    OK,      OK),
    (A.CANCEL_SUBSCRIPTION,     "not requested", NOT_REQUESTED,     NO,    NO,    OK,      NO),
    # Force cancellation: only the Specialist, after Legal approval.
    (A.FORCE_CANCEL,            "requested",     REQUESTED,         NO,    NO,    NO,      LEGAL),
    (A.FORCE_CANCEL,            "not requested", NOT_REQUESTED,     NO,    NO,    NO,      LEGAL),
    (A.UPDATE_PAYMENT_METHOD,   "any",           {},                NO,    OK,    OK,      OK),
    (A.ADJUST_SEATS,            "any",           {},                NO,    OK,    OK,      OK),
    # Discount up to 15%: Manager and Specialist; above 15%: Specialist after VP approval.
    (A.APPLY_DISCOUNT,          "1%",            pct(1),            NO,    NO,    OK,      OK),
    (A.APPLY_DISCOUNT,          "15%",           pct(15),           NO,    NO,    OK,      OK),
    (A.APPLY_DISCOUNT,          "15.5%",         pct("15.5"),       NO,    NO,    NO,      VP),
    (A.APPLY_DISCOUNT,          "16%",           pct(16),           NO,    NO,    NO,      VP),
    (A.APPLY_DISCOUNT,          "100%",          pct(100),          NO,    NO,    NO,      VP),
]
# fmt: on

CELLS = [
    pytest.param(action, params, role, expected, id=f"{action.value}-{size}-{role.value}")
    for action, size, params, *expected_by_role in MATRIX
    for role, expected in zip(ROLES, expected_by_role, strict=True)
]


def pure_rules(*, base_currency: str = "USD", rates: dict | None = None, **extra) -> PolicyRules:
    """``policy_defaults`` as plain values, with no database."""
    cells = {
        (PolicyAction(action), Role(role)): PolicyCell(*cell)
        for action, row in DEFAULT_CELLS.items()
        for role, cell in row.items()
    }
    routes = {
        PolicyAction(action): tuple(
            PolicyRoute(r.threshold, r.inclusive, tuple(Role(x) for x in r.approvers))
            for r in action_routes
        )
        for action, action_routes in DEFAULT_ROUTES.items()
    }
    return PolicyRules(base_currency, cells, routes, rates or {}, **extra)


@pytest.fixture(params=["pure", "workspace"])
def rules(request) -> PolicyRules:
    if request.param == "pure":
        return pure_rules()
    return policy_rules_load(workspace=request.getfixturevalue("workspace"))


def outcome(decision) -> tuple:
    if isinstance(decision, Allow):
        return OK
    if isinstance(decision, NeedsApproval):
        assert decision.reason
        return ("approval", decision.approver_roles)
    assert isinstance(decision, Deny)
    assert decision.reason
    return NO


def ask(role, action, rules, history=History(), permitted=True, **params):
    return decide(
        role=role,
        request=ActionRequest(action=action, **params),
        history=history,
        rules=rules,
        permitted=permitted,
    )


@pytest.mark.parametrize(("action", "params", "role", "expected"), CELLS)
def test_matrix_cell(rules, action, params, role, expected):
    # given the default matrix, when a role asks for an action of that size
    decision = ask(role, action, rules, **params)

    # then the matrix cell answers
    assert outcome(decision) == expected


def test_matrix_table_covers_every_action_and_every_agent_role():
    # given the table above, then every matrix row is tested for every agent role
    assert {row[0] for row in MATRIX} == set(PolicyAction)
    assert ROLES == AGENT_ROLES
    # and the seed data has exactly those cells
    assert set(DEFAULT_CELLS) == {a.value for a in PolicyAction}
    for action, row in DEFAULT_CELLS.items():
        assert set(row) == {r.value for r in AGENT_ROLES}, action


def test_every_action_kind_falls_under_a_matrix_row():
    assert set(KIND_POLICY_ACTION) == set(ActionKind)
    assert KIND_POLICY_ACTION[ActionKind.REFUND_DUPLICATE_CHARGE] == PolicyAction.ISSUE_REFUND
    assert KIND_POLICY_ACTION[ActionKind.SEND_TAX_INVOICE] == PolicyAction.RESEND_INVOICE


def test_a_new_workspace_loads_exactly_the_default_matrix(workspace):
    # given a freshly created workspace, when its rules are loaded from the database
    loaded = policy_rules_load(workspace=workspace)

    # then they are the defaults, cell for cell and route for route
    expected = pure_rules()
    assert dict(loaded.cells) == dict(expected.cells)
    assert dict(loaded.routes) == dict(expected.routes)
    assert loaded.base_currency == "USD"
    assert (loaded.refund_pattern_count, loaded.refund_pattern_days) == (3, 90)


@pytest.mark.parametrize("role", [*ROLES, Role.VP, Role.LEGAL])
def test_approver_only_roles_hold_no_agent_cell(role):
    rules = pure_rules()
    decision = ask(role, A.VIEW_BILLING, rules)
    if role in ROLES:
        assert isinstance(decision, Allow)
    else:
        assert isinstance(decision, Deny)


# -- the refund-pattern rule -------------------------------------------------

PATTERN = History(refunds_in_pattern_window=3)
NORMAL = History(refunds_in_pattern_window=2)


@pytest.mark.parametrize("role", [MANAGER, SPECIALIST])
@pytest.mark.parametrize("cents", [1, 100_000, 100_001])
def test_refund_pattern_sends_every_refund_to_manager_review(rules, role, cents):
    # given a customer with 3 refunds in the last 90 days
    # when a role that may refund — a Manager included — asks for a refund of any size
    decision = ask(role, A.ISSUE_REFUND, rules, history=PATTERN, **usd(cents))

    # then a Manager has to review it
    assert isinstance(decision, NeedsApproval)
    assert decision.approver_roles == (Role.MANAGER,)
    assert decision.code == "refund_pattern"
    assert "refund pattern: 3 refunds in the last 90 days" in decision.reason


@pytest.mark.parametrize("role", [L1, L2])
def test_refund_pattern_does_not_open_a_refund_the_brief_marks_not_permitted(rules, role):
    # L1 and L2 may not refund (❌): a pattern does not turn that into a request
    assert isinstance(ask(role, A.ISSUE_REFUND, rules, history=PATTERN, **usd(100)), Deny)


def test_refund_pattern_applies_to_an_escalated_cell(workspace):
    # given an admin who lets L1 escalate refunds (the per-cell option)
    rules = _edit_cell(workspace, A.ISSUE_REFUND, L1, effect="request")

    # then a pattern is named in the Manager review
    decision = ask(L1, A.ISSUE_REFUND, rules, history=PATTERN, **usd(100))
    assert outcome(decision) == M
    assert "refund pattern" in decision.reason


@pytest.mark.parametrize(
    ("role", "expected"), [(L1, NO), (L2, NO), (MANAGER, OK), (SPECIALIST, OK)]
)
def test_two_refunds_is_no_pattern(rules, role, expected):
    decision = ask(role, A.ISSUE_REFUND, rules, history=NORMAL, **usd(5_000))
    assert outcome(decision) == expected
    assert "refund pattern" not in getattr(decision, "reason", "")


def test_refund_pattern_also_covers_duplicate_charge_refunds(rules):
    # refund_duplicate_charge is decided under the refund row
    action = KIND_POLICY_ACTION[ActionKind.REFUND_DUPLICATE_CHARGE]
    decision = ask(MANAGER, action, rules, history=History(refunds_in_pattern_window=7), **usd(10))
    assert outcome(decision) == M


def test_refund_pattern_does_not_touch_credits(rules):
    decision = ask(
        L2, A.APPLY_CREDIT, rules, history=History(refunds_in_pattern_window=9), **usd(500)
    )
    assert isinstance(decision, Allow)


def test_refund_pattern_threshold_is_the_workspace_setting(workspace):
    # given a workspace that counts a pattern from 5 refunds
    workspace.refund_pattern_count = 5
    workspace.refund_pattern_days = 30
    workspace.save()
    rules = policy_rules_load(workspace=workspace)

    # then 4 refunds are normal and 5 are a pattern, named with the workspace's window
    assert isinstance(ask(MANAGER, A.ISSUE_REFUND, rules, History(4), **usd(100)), Allow)
    decision = ask(MANAGER, A.ISSUE_REFUND, rules, History(5), **usd(100))
    assert outcome(decision) == M
    assert "5 refunds in the last 30 days" in decision.reason


def test_refund_pattern_keeps_a_stricter_route_the_matrix_requires():
    # given an admin route: refunds of $5,000 or more need a VP
    base = pure_rules()
    routes = dict(base.routes)
    routes[A.ISSUE_REFUND] = (
        PolicyRoute(0, True, (Role.MANAGER,)),
        PolicyRoute(500_000, True, (Role.VP,)),
    )
    rules = PolicyRules("USD", base.cells, routes)

    # when a Specialist asks for $6,000 for a customer with a refund pattern
    decision = ask(SPECIALIST, A.ISSUE_REFUND, rules, history=PATTERN, **usd(600_000))

    # then the pattern does not loosen the VP approval
    assert decision.approver_roles == (Role.VP,)
    assert "refund pattern" in decision.reason


def test_refund_pattern_does_not_turn_a_deny_into_a_request():
    base = pure_rules()
    cells = dict(base.cells)
    cells[(A.ISSUE_REFUND, MANAGER)] = PolicyCell("deny")
    rules = PolicyRules("USD", cells, base.routes)
    assert isinstance(ask(MANAGER, A.ISSUE_REFUND, rules, history=PATTERN, **usd(100)), Deny)


# -- currency conversion with admin-set rates --------------------------------


def test_eur_amount_is_converted_with_the_admin_rate_before_the_limit():
    # given 1 EUR = 1.10 USD
    rules = pure_rules(rates={"EUR": Decimal("1.10")})

    # when an L2 credits €90.90 (= $99.99) and €90.91 (≈ $100.00)
    below = ask(L2, A.APPLY_CREDIT, rules, amount=Money(9_090, "EUR"))
    at_limit = ask(L2, A.APPLY_CREDIT, rules, amount=Money(9_091, "EUR"))

    # then the first is below the $100 limit and the second is above it (❌ for L2)
    assert isinstance(below, Allow)
    assert "$99.99" in below.reason
    assert outcome(at_limit) == NO
    assert "$100.00" in at_limit.reason


def test_jpy_is_zero_decimal_when_converted():
    # given 1 JPY = 0.01 USD: ¥9,999 is $99.99, ¥10,000 is $100.00, ¥50,001 is $500.01
    rules = pure_rules(rates={"JPY": Decimal("0.01")})

    assert isinstance(ask(L2, A.APPLY_CREDIT, rules, amount=Money(9_999, "JPY")), Allow)
    assert outcome(ask(L2, A.APPLY_CREDIT, rules, amount=Money(10_000, "JPY"))) == NO
    assert isinstance(ask(MANAGER, A.APPLY_CREDIT, rules, amount=Money(50_000, "JPY")), Allow)
    assert outcome(ask(MANAGER, A.APPLY_CREDIT, rules, amount=Money(50_001, "JPY"))) == NO
    assert outcome(ask(SPECIALIST, A.APPLY_CREDIT, rules, amount=Money(50_001, "JPY"))) == VP


def test_limits_are_in_the_workspace_base_currency():
    # given a EUR workspace: the same numbers are euro cents, no rate needed
    rules = pure_rules(base_currency="EUR")
    assert isinstance(ask(L2, A.APPLY_CREDIT, rules, amount=Money(9_999, "EUR")), Allow)
    assert outcome(ask(L2, A.APPLY_CREDIT, rules, amount=Money(10_000, "EUR"))) == NO
    # and a dollar amount there has no rate
    decision = ask(L2, A.APPLY_CREDIT, rules, amount=Money(1, "USD"))
    assert outcome(decision) == VP
    assert "no exchange rate for USD to EUR" in decision.reason


@pytest.mark.parametrize(
    ("role", "action", "params", "expected"),
    [
        # the strictest route of the row: credits → VP, refunds → Manager, discounts unaffected
        (L2, A.APPLY_CREDIT, {"amount": Money(1, "GBP")}, VP),
        (MANAGER, A.APPLY_CREDIT, {"amount": Money(1, "GBP")}, VP),
        (SPECIALIST, A.APPLY_CREDIT, {"amount": Money(1, "GBP")}, VP),
        (MANAGER, A.ISSUE_REFUND, {"amount": Money(1, "GBP")}, M),
        (SPECIALIST, A.ISSUE_REFUND, {"amount": Money(1, "GBP")}, M),
        (MANAGER, A.ISSUE_REFUND, {"amount": Money(1, "XTS")}, M),
    ],
)
def test_unknown_currency_needs_approval_on_the_strictest_route(
    rules, role, action, params, expected
):
    # given no GBP rate, when any role asks with a GBP amount — however small
    decision = ask(role, action, rules, **params)

    # then it is never executed directly (fail safe)
    assert outcome(decision) == expected
    assert decision.code == "no_exchange_rate"
    assert "no exchange rate" in decision.reason


@pytest.mark.parametrize("action", [A.APPLY_CREDIT, A.ISSUE_REFUND])
def test_a_missing_rate_does_not_open_a_cell_the_brief_marks_not_permitted(rules, action):
    # L1 may neither credit nor refund (❌): no rate does not make it a request
    assert outcome(ask(L1, action, rules, amount=Money(1, "GBP"))) == NO


def test_a_zero_rate_counts_as_no_rate():
    rules = pure_rules(rates={"EUR": Decimal("0")})
    decision = ask(L2, A.APPLY_CREDIT, rules, amount=Money(1_000_000, "EUR"))
    assert outcome(decision) == VP


def test_workspace_rates_are_loaded_from_admin_rows(workspace):
    # given an admin-set EUR rate on the workspace
    CurrencyRate.objects.create(workspace=workspace, currency="EUR", rate=Decimal("1.10"))
    rules = policy_rules_load(workspace=workspace)

    # then EUR amounts are measured with it
    assert rules.rates == {"EUR": Decimal("1.10")}
    assert isinstance(ask(L2, A.APPLY_CREDIT, rules, amount=Money(9_090, "EUR")), Allow)
    assert outcome(ask(L2, A.APPLY_CREDIT, rules, amount=Money(9_091, "EUR"))) == NO


# -- guardian permission, admin-edited cells, bad sizes ----------------------


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("action", [A.VIEW_BILLING, A.ISSUE_REFUND, A.FORCE_CANCEL])
def test_without_the_guardian_permission_the_action_is_denied(rules, role, action):
    decision = ask(role, action, rules, permitted=False, **usd(1), customer_requested=True)
    assert isinstance(decision, Deny)
    assert decision.code == "permission_missing"
    assert "its group lacks the permission" in decision.reason
    assert "_" not in decision.reason


def _edit_cell(workspace, action, role, **changes):
    ActionPolicy.objects.filter(workspace=workspace, action=action.value, role=role.value).update(
        **changes
    )
    return policy_rules_load(workspace=workspace)


def test_admin_denied_cell_denies(workspace, make_workspace):
    # given an admin who set "L2 · change plan" to not permitted in this workspace
    rules = _edit_cell(workspace, A.CHANGE_PLAN, L2, effect="deny")

    # then L2 may neither change plans nor request it — and another workspace is untouched
    assert isinstance(ask(L2, A.CHANGE_PLAN, rules), Deny)
    other = policy_rules_load(workspace=make_workspace("globex"))
    assert isinstance(ask(L2, A.CHANGE_PLAN, other), Allow)


def test_admin_denied_request_cell_denies(workspace):
    rules = _edit_cell(workspace, A.FORCE_CANCEL, SPECIALIST, effect="deny")
    assert isinstance(ask(SPECIALIST, A.FORCE_CANCEL, rules, **REQUESTED), Deny)


def test_an_escalated_not_permitted_cell_goes_to_its_route(workspace):
    # given an admin who escalates "Manager · force cancel" (❌ in the brief)
    rules = _edit_cell(workspace, A.FORCE_CANCEL, MANAGER, effect="request")

    # then the Manager may request it and Legal approves
    decision = ask(MANAGER, A.FORCE_CANCEL, rules, **REQUESTED)
    assert outcome(decision) == LEGAL
    assert decision.code == "approval_required"


def test_above_limit_deny_denies_above_but_allows_at_the_limit(workspace):
    # given "Specialist · refund": above $1,000 is not permitted (instead of Manager approval)
    rules = _edit_cell(workspace, A.ISSUE_REFUND, SPECIALIST, above_limit="deny")

    assert isinstance(ask(SPECIALIST, A.ISSUE_REFUND, rules, **usd(100_000)), Allow)
    decision = ask(SPECIALIST, A.ISSUE_REFUND, rules, **usd(100_001))
    assert isinstance(decision, Deny)
    assert "above the Billing Specialist limit (up to $1,000.00)" in decision.reason


def test_admin_raised_limit_applies(workspace):
    rules = _edit_cell(workspace, A.APPLY_CREDIT, L2, limit=20_000)
    assert isinstance(ask(L2, A.APPLY_CREDIT, rules, **usd(19_999)), Allow)
    assert outcome(ask(L2, A.APPLY_CREDIT, rules, **usd(20_000))) == NO


def test_customer_requested_only_with_deny_refuses_unrequested_cancel(workspace):
    rules = _edit_cell(workspace, A.CANCEL_SUBSCRIPTION, SPECIALIST, above_limit="deny")
    assert isinstance(ask(SPECIALIST, A.CANCEL_SUBSCRIPTION, rules, **REQUESTED), Allow)
    assert isinstance(ask(SPECIALIST, A.CANCEL_SUBSCRIPTION, rules, **NOT_REQUESTED), Deny)


def test_missing_cell_denies(workspace):
    ActionPolicy.objects.filter(workspace=workspace, action="pause_subscription").delete()
    rules = policy_rules_load(workspace=workspace)
    assert isinstance(ask(MANAGER, A.PAUSE_SUBSCRIPTION, rules), Deny)


def test_admin_route_change_picks_the_approvers(workspace):
    # given force cancellation routed to Legal or VP
    ApprovalRoute.objects.filter(workspace=workspace, action="force_cancel").update(
        approver_roles=["legal", "vp"]
    )
    rules = policy_rules_load(workspace=workspace)
    decision = ask(SPECIALIST, A.FORCE_CANCEL, rules, **REQUESTED)
    assert decision.approver_roles == (Role.LEGAL, Role.VP)


@pytest.mark.parametrize(
    ("action", "params"),
    [
        (A.APPLY_CREDIT, usd(-10_000)),
        (A.ISSUE_REFUND, usd(-1)),
        (A.APPLY_DISCOUNT, pct(-5)),
        (A.EXTEND_TRIAL, days(-3)),
    ],
)
def test_negative_sizes_are_denied(rules, action, params):
    assert isinstance(ask(SPECIALIST, action, rules, **params), Deny)


@pytest.mark.parametrize(
    ("role", "action", "expected"),
    [
        (L2, A.APPLY_CREDIT, VP),  # limited cell, no amount → strictest route
        (SPECIALIST, A.APPLY_DISCOUNT, VP),
        (SPECIALIST, A.EXTEND_TRIAL, M),
        (MANAGER, A.EXTEND_TRIAL, OK),  # no limit: nothing to measure
    ],
)
def test_a_missing_size_is_never_executed_under_a_limit(rules, role, action, expected):
    assert outcome(ask(role, action, rules)) == expected


# -- who may approve ---------------------------------------------------------


def test_an_approver_never_approves_their_own_request():
    decision = can_approve(
        approver_id=7, approver_role=Role.MANAGER, requester_id=7, required_roles=(Role.MANAGER,)
    )
    assert isinstance(decision, Deny)
    assert "own request" in decision.reason


@pytest.mark.parametrize(
    ("approver_role", "required", "allowed"),
    [
        (Role.MANAGER, (Role.MANAGER,), True),
        (Role.VP, (Role.VP,), True),
        (Role.LEGAL, ["legal"], True),  # as stored in ApprovalRequest.required_roles
        (Role.LEGAL, ["legal", "vp"], True),
        (Role.VP, ["legal", "vp"], True),
        (Role.MANAGER, (Role.VP,), False),
        (Role.VP, (Role.MANAGER,), False),
        (Role.SPECIALIST, (Role.MANAGER,), False),
        (Role.L2, ["manager"], False),
        (Role.MANAGER, ["legal"], False),
        (Role.MANAGER, [], False),
        (Role.MANAGER, ["ceo"], False),
        ("ceo", ["manager"], False),
    ],
)
def test_can_approve_needs_one_of_the_required_roles(approver_role, required, allowed):
    decision = can_approve(
        approver_id=1, approver_role=approver_role, requester_id=2, required_roles=required
    )
    assert isinstance(decision, Allow) is allowed
    if not allowed:
        assert isinstance(decision, Deny)


def test_decisions_name_their_reason(rules):
    decision = ask(L2, A.APPLY_CREDIT, rules, **usd(10_000))
    assert decision.reason == "$100.00 is above the L2 Agent limit (below $100.00)"
    decision = ask(MANAGER, A.APPLY_DISCOUNT, rules, **pct(15))
    assert decision.reason == "15% is within the Manager limit (up to 15%)"
