"""The permission matrix as a pure function (DESIGN.md section 3).

``decide`` takes everything it needs as values — the role, the request, the
customer's recent refund history and the workspace's rules — and returns
``Allow``, ``NeedsApproval(approver_roles, reason)`` or ``Deny(reason)``. No
database access happens here, so every cell of the matrix is tested directly.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal

from .catalog import POLICY_MEASURE, Measure, PolicyAction, Role
from .money import Money, convert, format_money

ALLOW, REQUEST, DENY = "allow", "request", "deny"


# What produced a decision, as a machine code (the dry run and the audit trail name it;
# people read ``reason``).
ALLOWED = "allowed"
WITHIN_LIMIT = "within_limit"
APPROVAL_REQUIRED = "approval_required"  # the cell is "may request approval"
ABOVE_LIMIT = "above_limit"
NOT_CUSTOMER_REQUESTED = "not_customer_requested"
NO_EXCHANGE_RATE = "no_exchange_rate"
SIZE_MISSING = "size_missing"
REFUND_PATTERN = "refund_pattern"
PERMISSION_MISSING = "permission_missing"
ROLE_MAY_NOT = "role_may_not"
NEGATIVE_SIZE = "negative_size"


@dataclass(frozen=True)
class Allow:
    reason: str = "within the role's limits"
    code: str = ALLOWED


@dataclass(frozen=True)
class NeedsApproval:
    approver_roles: tuple[Role, ...]
    reason: str
    code: str = APPROVAL_REQUIRED


@dataclass(frozen=True)
class Deny:
    reason: str
    code: str = ROLE_MAY_NOT


Decision = Allow | NeedsApproval | Deny


@dataclass(frozen=True)
class PolicyCell:
    effect: str  # allow | request | deny
    limit: int | None = None
    limit_inclusive: bool = True
    above_limit: str = REQUEST  # request | deny
    customer_requested_only: bool = False


@dataclass(frozen=True)
class PolicyRoute:
    threshold: int
    inclusive: bool
    approver_roles: tuple[Role, ...]


@dataclass(frozen=True)
class PolicyRules:
    """One workspace's matrix, loaded once per request by ``services.policy.policy_rules_load``."""

    base_currency: str
    cells: Mapping[tuple[PolicyAction, Role], PolicyCell]
    routes: Mapping[PolicyAction, tuple[PolicyRoute, ...]]
    rates: Mapping[str, Decimal] = field(default_factory=dict)  # 1 unit of key = rate units of base
    refund_pattern_count: int = 3
    refund_pattern_days: int = 90


@dataclass(frozen=True)
class ActionRequest:
    action: PolicyAction
    amount: Money | None = None  # credits and refunds
    percent: Decimal | None = None  # discounts
    days: int | None = None  # trial and grace extensions
    customer_requested: bool = False  # cancellations


@dataclass(frozen=True)
class History:
    refunds_in_pattern_window: int = 0


@dataclass(frozen=True)
class Measured:
    value: int | Decimal | None  # None: could not be measured (no exchange rate)
    display: str
    missing_rate: str = ""


def measure(request: ActionRequest, rules: PolicyRules) -> Measured:
    """The request's size in the unit of the action's limits (base-currency minor units, %, days).

    An amount in another currency is converted with the workspace's admin-set rate;
    with no usable rate (none, zero or negative) the size is unknown, and ``decide``
    fails safe by asking for approval.
    """
    kind = POLICY_MEASURE.get(request.action, Measure.NONE)
    if kind == Measure.AMOUNT:
        if request.amount is None:
            return Measured(None, "no amount")
        amount = request.amount
        if amount.currency == rules.base_currency:
            return Measured(amount.amount, str(amount))
        rate = rules.rates.get(amount.currency)
        if rate is None or rate <= 0:
            return Measured(None, str(amount), missing_rate=amount.currency)
        base = convert(amount.amount, amount.currency, rules.base_currency, rate)
        return Measured(base, f"{amount} (≈ {format_money(base, rules.base_currency)})")
    if kind == Measure.PERCENT:
        if request.percent is None:
            return Measured(None, "no percentage")
        return Measured(request.percent, f"{request.percent}%")
    if kind == Measure.DAYS:
        if request.days is None:
            return Measured(None, "no number of days")
        return Measured(request.days, f"{request.days} days")
    return Measured(None, "")


def _passes(value: int | Decimal, threshold: int, inclusive: bool) -> bool:
    return value >= threshold if inclusive else value > threshold


def route_for(
    action: PolicyAction, value: int | Decimal | None, rules: PolicyRules
) -> tuple[Role, ...]:
    """Approvers for a request of this size; an unmeasurable size takes the strictest route."""
    routes = sorted(rules.routes.get(action, ()), key=lambda r: r.threshold)
    if not routes:
        return (Role.MANAGER,)
    if value is None:
        return routes[-1].approver_roles
    chosen = routes[0]
    for route in routes:
        if _passes(value, route.threshold, route.inclusive):
            chosen = route
    return chosen.approver_roles


def _within(value: int | Decimal, cell: PolicyCell) -> bool:
    assert cell.limit is not None
    return value <= cell.limit if cell.limit_inclusive else value < cell.limit


def _limit_text(cell: PolicyCell, action: PolicyAction, currency: str) -> str:
    kind = POLICY_MEASURE.get(action, Measure.NONE)
    if cell.limit is None:
        return "no limit"
    shown = {
        Measure.AMOUNT: lambda v: format_money(v, currency),
        Measure.PERCENT: lambda v: f"{v}%",
        Measure.DAYS: lambda v: f"{v} days",
    }.get(kind, str)(cell.limit)
    return f"{'up to' if cell.limit_inclusive else 'below'} {shown}"


def decide(
    *,
    role: Role,
    request: ActionRequest,
    history: History,
    rules: PolicyRules,
    permitted: bool = True,
) -> Decision:
    """Whether ``role`` may do ``request`` now, may ask for approval (and from whom), or may not.

    ``permitted`` is whether the role group holds the action's guardian permission on
    the workspace; without it the action is not permitted at all. A refund for a
    customer with a refund pattern is never executed directly: it goes to Manager
    review whoever asks (a stricter approval the matrix already requires is kept).
    """
    decision = _decide_by_matrix(role=role, request=request, rules=rules, permitted=permitted)
    if (
        request.action == PolicyAction.ISSUE_REFUND
        and history.refunds_in_pattern_window >= rules.refund_pattern_count
        and not isinstance(decision, Deny)
    ):
        pattern = (
            f"refund pattern: {history.refunds_in_pattern_window} refunds in the last "
            f"{rules.refund_pattern_days} days — Manager review required"
        )
        if isinstance(decision, NeedsApproval):
            return NeedsApproval(
                decision.approver_roles, f"{pattern}; {decision.reason}", REFUND_PATTERN
            )
        return NeedsApproval((Role.MANAGER,), pattern, REFUND_PATTERN)
    return decision


def _decide_by_matrix(
    *, role: Role, request: ActionRequest, rules: PolicyRules, permitted: bool
) -> Decision:
    action = request.action
    label = action.value.replace("_", " ")
    if not permitted:
        return Deny(
            f"the {role.label} role may not {label} in this workspace (its group lacks the permission)",
            PERMISSION_MISSING,
        )
    cell = rules.cells.get((action, role))
    if cell is None or cell.effect == DENY:
        return Deny(f"the {role.label} role may not {label}", ROLE_MAY_NOT)
    measured = measure(request, rules)
    if measured.value is not None and measured.value < 0:
        return Deny(f"{measured.display} is negative", NEGATIVE_SIZE)
    # An unmeasurable size (no exchange rate, size missing) takes the strictest route.
    approvers = route_for(action, measured.value, rules)
    no_rate = (
        f"no exchange rate for {measured.missing_rate} to {rules.base_currency}"
        if measured.missing_rate
        else ""
    )
    if cell.effect == REQUEST:
        reason = f"the {role.label} role may {label} only with approval"
        if no_rate:
            return NeedsApproval(approvers, f"{reason}; {no_rate} (fail safe)", NO_EXCHANGE_RATE)
        return NeedsApproval(approvers, reason, APPROVAL_REQUIRED)
    if cell.customer_requested_only and not request.customer_requested:
        if cell.above_limit == DENY:
            return Deny(
                f"the {role.label} role may {label} only when the customer requested it",
                NOT_CUSTOMER_REQUESTED,
            )
        return NeedsApproval(
            approvers,
            f"not requested by the customer — the {role.label} role needs approval",
            NOT_CUSTOMER_REQUESTED,
        )
    if no_rate:
        # Fail safe even without a limit: an amount we cannot value is never executed directly.
        return NeedsApproval(
            approvers, f"{no_rate} — approval required (fail safe)", NO_EXCHANGE_RATE
        )
    if cell.limit is None:
        return Allow(f"the {role.label} role may {label}", ALLOWED)
    if measured.value is None:
        return NeedsApproval(
            approvers,
            f"the request's size is missing ({measured.display}) — approval required",
            SIZE_MISSING,
        )
    limit = _limit_text(cell, action, rules.base_currency)
    if _within(measured.value, cell):
        return Allow(f"{measured.display} is within the {role.label} limit ({limit})", WITHIN_LIMIT)
    if cell.above_limit == DENY:
        return Deny(f"{measured.display} is above the {role.label} limit ({limit})", ABOVE_LIMIT)
    return NeedsApproval(
        approvers, f"{measured.display} is above the {role.label} limit ({limit})", ABOVE_LIMIT
    )


def can_approve(
    *,
    approver_id: int,
    approver_role: Role,
    requester_id: int,
    required_roles: tuple[Role, ...] | list[str],
) -> Allow | Deny:
    """An approver never approves their own request, and must hold one of the required roles.

    ``required_roles`` lists alternatives: any one of them may approve. An unknown
    role value on either side refuses rather than raises (fail safe).
    """
    if approver_id == requester_id:
        return Deny("an approver never approves their own request")
    required = {role for role in map(_as_role, required_roles) if role is not None}
    if not required:
        return Deny("this request names no approver role")
    if _as_role(approver_role) not in required:
        wanted = ", ".join(r.label for r in Role if r in required)
        return Deny(f"this request needs approval by: {wanted}")
    return Allow("holds a required approver role")


def _as_role(value: object) -> Role | None:
    if not isinstance(value, str):
        return None
    try:
        return Role(value)
    except ValueError:
        return None
