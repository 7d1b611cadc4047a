"""The permission matrix as a pure function (DESIGN.md section 3).

``decide`` takes everything it needs as values — the role, the request, the
customer's recent refund history and the workspace's rules — and returns
``Allow``, ``NeedsApproval(approver_roles, reason)`` or ``Deny(reason)``. No
database access happens here, so every cell of the matrix is tested directly.
Reasons are in words, in the active language (the agent's); codes stay English.
Each decision also carries its reason as ``words.Words`` (msgids and parameters), which
is what is stored: whoever reads it later reads it in their own language.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal

from django.utils.translation import gettext as _

from . import words as W
from .catalog import POLICY_MEASURE, Measure, PolicyAction, Role
from .money import Money, convert
from .words import Words

ALLOW, REQUEST, DENY = "allow", "request", "deny"

# A matrix row as the verb of "the L2 Agent role may (not) …" (English: the row's value in words).
POLICY_VERBS: Mapping[PolicyAction, Words] = {
    PolicyAction.VIEW_BILLING: W.pgettext("policy action", "view billing"),
    PolicyAction.GENERATE_PAYMENT_LINK: W.pgettext("policy action", "generate payment link"),
    PolicyAction.RESEND_INVOICE: W.pgettext("policy action", "resend invoice"),
    PolicyAction.APPLY_CREDIT: W.pgettext("policy action", "apply credit"),
    PolicyAction.ISSUE_REFUND: W.pgettext("policy action", "issue refund"),
    PolicyAction.EXTEND_TRIAL: W.pgettext("policy action", "extend trial"),
    PolicyAction.PAUSE_SUBSCRIPTION: W.pgettext("policy action", "pause subscription"),
    PolicyAction.CHANGE_PLAN: W.pgettext("policy action", "change plan"),
    PolicyAction.CANCEL_SUBSCRIPTION: W.pgettext("policy action", "cancel subscription"),
    PolicyAction.FORCE_CANCEL: W.pgettext("policy action", "force cancel"),
    PolicyAction.UPDATE_PAYMENT_METHOD: W.pgettext("policy action", "update payment method"),
    PolicyAction.ADJUST_SEATS: W.pgettext("policy action", "adjust seats"),
    PolicyAction.APPLY_DISCOUNT: W.pgettext("policy action", "apply discount"),
    PolicyAction.EXTEND_GRACE_PERIOD: W.pgettext("policy action", "extend grace period"),
}


def _days(count: int | Decimal) -> Words:
    return W.ngettext("%(count)s day", "%(count)s days", count, count=count)


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
    words: Words | None = field(default=None, compare=False)  # ``reason`` as stored words


@dataclass(frozen=True)
class NeedsApproval:
    approver_roles: tuple[Role, ...]
    reason: str
    code: str = APPROVAL_REQUIRED
    words: Words | None = field(default=None, compare=False)


@dataclass(frozen=True)
class Deny:
    reason: str
    code: str = ROLE_MAY_NOT
    words: Words | None = field(default=None, compare=False)


def _allow(words: Words, code: str = ALLOWED) -> Allow:
    return Allow(str(words), code, words)


def _approval(approvers: tuple[Role, ...], words: Words, code: str) -> NeedsApproval:
    return NeedsApproval(approvers, str(words), code, words)


def _deny(words: Words, code: str = ROLE_MAY_NOT) -> Deny:
    return Deny(str(words), code, words)


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
    words: Words
    missing_rate: str = ""

    @property
    def display(self) -> str:
        return str(self.words)


_NOTHING = W.literal("")


def measure(request: ActionRequest, rules: PolicyRules) -> Measured:
    """The request's size in the unit of the action's limits (base-currency minor units, %, days).

    An amount in another currency is converted with the workspace's admin-set rate;
    with no usable rate (none, zero or negative) the size is unknown, and ``decide``
    fails safe by asking for approval.
    """
    kind = POLICY_MEASURE.get(request.action, Measure.NONE)
    if kind == Measure.AMOUNT:
        if request.amount is None:
            return Measured(None, W.gettext("no amount"))
        amount = request.amount
        if amount.currency == rules.base_currency:
            return Measured(amount.amount, W.value(amount))
        rate = rules.rates.get(amount.currency)
        if rate is None or rate <= 0:
            return Measured(None, W.value(amount), missing_rate=amount.currency)
        base = convert(amount.amount, amount.currency, rules.base_currency, rate)
        return Measured(
            base,
            W.gettext(
                "%(amount)s (≈ %(base)s)", amount=amount, base=Money(base, rules.base_currency)
            ),
        )
    if kind == Measure.PERCENT:
        if request.percent is None:
            return Measured(None, W.gettext("no percentage"))
        return Measured(request.percent, W.gettext("%(percent)s%%", percent=request.percent))
    if kind == Measure.DAYS:
        if request.days is None:
            return Measured(None, W.gettext("no number of days"))
        return Measured(request.days, _days(request.days))
    return Measured(None, _NOTHING)


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


def _limit_text(cell: PolicyCell, action: PolicyAction, currency: str) -> Words:
    kind = POLICY_MEASURE.get(action, Measure.NONE)
    if cell.limit is None:
        return W.gettext("no limit")
    limit = cell.limit
    shown: Money | Words | str
    if kind == Measure.AMOUNT:
        shown = Money(limit, currency)
    elif kind == Measure.PERCENT:
        shown = W.gettext("%(percent)s%%", percent=limit)
    elif kind == Measure.DAYS:
        shown = _days(limit)
    else:
        shown = str(limit)
    if cell.limit_inclusive:
        return W.gettext("up to %(limit)s", limit=shown)
    return W.gettext("below %(limit)s", limit=shown)


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
        count = history.refunds_in_pattern_window
        pattern = W.ngettext(
            "refund pattern: %(count)s refund in the last %(days)s days — Manager review required",
            "refund pattern: %(count)s refunds in the last %(days)s days — Manager review required",
            count,
            count=count,
            days=rules.refund_pattern_days,
        )
        if isinstance(decision, NeedsApproval):
            return _approval(
                decision.approver_roles,
                W.gettext(
                    "%(first)s; %(second)s",
                    first=pattern,
                    second=decision.words or W.literal(decision.reason),
                ),
                REFUND_PATTERN,
            )
        return _approval((Role.MANAGER,), pattern, REFUND_PATTERN)
    return decision


def _decide_by_matrix(
    *, role: Role, request: ActionRequest, rules: PolicyRules, permitted: bool
) -> Decision:
    action = request.action
    verb = POLICY_VERBS.get(action) or action.value.replace("_", " ")
    who = {"role": role.label, "action": verb}
    if not permitted:
        return _deny(
            W.gettext(
                "the %(role)s role may not %(action)s in this workspace (its group lacks the "
                "permission)",
                **who,
            ),
            PERMISSION_MISSING,
        )
    cell = rules.cells.get((action, role))
    if cell is None or cell.effect == DENY:
        return _deny(W.gettext("the %(role)s role may not %(action)s", **who), ROLE_MAY_NOT)
    measured = measure(request, rules)
    size = measured.words
    if measured.value is not None and measured.value < 0:
        return _deny(W.gettext("%(size)s is negative", size=size), NEGATIVE_SIZE)
    # An unmeasurable size (no exchange rate, size missing) takes the strictest route.
    approvers = route_for(action, measured.value, rules)
    no_rate = (
        W.gettext(
            "no exchange rate for %(currency)s to %(base)s",
            currency=measured.missing_rate,
            base=rules.base_currency,
        )
        if measured.missing_rate
        else None
    )
    if cell.effect == REQUEST:
        reason = W.gettext("the %(role)s role may %(action)s only with approval", **who)
        if no_rate:
            return _approval(
                approvers,
                W.gettext("%(reason)s; %(no_rate)s (fail safe)", reason=reason, no_rate=no_rate),
                NO_EXCHANGE_RATE,
            )
        return _approval(approvers, reason, APPROVAL_REQUIRED)
    if cell.customer_requested_only and not request.customer_requested:
        if cell.above_limit == DENY:
            return _deny(
                W.gettext(
                    "the %(role)s role may %(action)s only when the customer requested it", **who
                ),
                NOT_CUSTOMER_REQUESTED,
            )
        return _approval(
            approvers,
            W.gettext(
                "not requested by the customer — the %(role)s role needs approval", role=role.label
            ),
            NOT_CUSTOMER_REQUESTED,
        )
    if no_rate:
        # Fail safe even without a limit: an amount we cannot value is never executed directly.
        return _approval(
            approvers,
            W.gettext("%(no_rate)s — approval required (fail safe)", no_rate=no_rate),
            NO_EXCHANGE_RATE,
        )
    if cell.limit is None:
        return _allow(W.gettext("the %(role)s role may %(action)s", **who), ALLOWED)
    if measured.value is None:
        return _approval(
            approvers,
            W.gettext("the request's size is missing (%(size)s) — approval required", size=size),
            SIZE_MISSING,
        )
    limit = _limit_text(cell, action, rules.base_currency)
    sized = {"size": size, "role": role.label, "limit": limit}
    if _within(measured.value, cell):
        return _allow(
            W.gettext("%(size)s is within the %(role)s limit (%(limit)s)", **sized), WITHIN_LIMIT
        )
    above = W.gettext("%(size)s is above the %(role)s limit (%(limit)s)", **sized)
    if cell.above_limit == DENY:
        return _deny(above, ABOVE_LIMIT)
    return _approval(approvers, above, ABOVE_LIMIT)


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
        return Deny(_("an approver never approves their own request"))
    required = {role for role in map(_as_role, required_roles) if role is not None}
    if not required:
        return Deny(_("this request names no approver role"))
    if _as_role(approver_role) not in required:
        wanted = ", ".join(r.label for r in Role if r in required)
        return Deny(_("this request needs approval by: %(roles)s") % {"roles": wanted})
    return Allow(_("holds a required approver role"))


def _as_role(value: object) -> Role | None:
    if not isinstance(value, str):
        return None
    try:
        return Role(value)
    except ValueError:
        return None
