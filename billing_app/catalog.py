"""The vocabulary shared by the policy, the services and the API.

Plain enumerations with no Django model imports, so that ``policy.decide`` stays a
pure function that can be tested exhaustively.
"""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    L1 = "l1"
    L2 = "l2"
    MANAGER = "manager"
    SPECIALIST = "specialist"
    VP = "vp"
    LEGAL = "legal"

    @property
    def label(self) -> str:
        return ROLE_LABELS[self]


ROLE_LABELS: dict[Role, str] = {
    Role.L1: "L1 Agent",
    Role.L2: "L2 Agent",
    Role.MANAGER: "Manager",
    Role.SPECIALIST: "Billing Specialist",
    Role.VP: "VP Approver",
    Role.LEGAL: "Legal Approver",
}
# Roles an agent can hold in the helpdesk panel.
AGENT_ROLES: tuple[Role, ...] = (Role.L1, Role.L2, Role.MANAGER, Role.SPECIALIST)
# Roles that may decide approval requests (VP and Legal use the /approvals/ page).
APPROVER_ROLES: tuple[Role, ...] = (Role.MANAGER, Role.VP, Role.LEGAL)


class ActionKind(StrEnum):
    """What an agent can ask Billing Desk to do (``POST /api/v1/actions/`` ``kind``)."""

    GENERATE_PAYMENT_LINK = "generate_payment_link"
    RESEND_INVOICE = "resend_invoice"
    APPLY_CREDIT = "apply_credit"
    ISSUE_REFUND = "issue_refund"
    EXTEND_TRIAL = "extend_trial"
    PAUSE_SUBSCRIPTION = "pause_subscription"
    CHANGE_PLAN = "change_plan"
    CANCEL_SUBSCRIPTION = "cancel_subscription"
    FORCE_CANCEL = "force_cancel"
    UPDATE_PAYMENT_METHOD = "update_payment_method"
    ADJUST_SEATS = "adjust_seats"
    APPLY_DISCOUNT = "apply_discount"
    REFUND_DUPLICATE_CHARGE = "refund_duplicate_charge"
    EXTEND_GRACE_PERIOD = "extend_grace_period"
    SEND_TAX_INVOICE = "send_tax_invoice"
    # Undo a pause before its resume date, and undo a cancellation at period end
    # ("keep subscription"); each under the matrix row of the action it undoes.
    RESUME_SUBSCRIPTION = "resume_subscription"
    UNDO_CANCELLATION = "undo_cancellation"


class PolicyAction(StrEnum):
    """A row of the permission matrix; several action kinds share one row."""

    VIEW_BILLING = "view_billing"
    GENERATE_PAYMENT_LINK = "generate_payment_link"
    RESEND_INVOICE = "resend_invoice"
    APPLY_CREDIT = "apply_credit"
    ISSUE_REFUND = "issue_refund"
    EXTEND_TRIAL = "extend_trial"
    PAUSE_SUBSCRIPTION = "pause_subscription"
    CHANGE_PLAN = "change_plan"
    CANCEL_SUBSCRIPTION = "cancel_subscription"
    FORCE_CANCEL = "force_cancel"
    UPDATE_PAYMENT_METHOD = "update_payment_method"
    ADJUST_SEATS = "adjust_seats"
    APPLY_DISCOUNT = "apply_discount"
    EXTEND_GRACE_PERIOD = "extend_grace_period"


class Measure(StrEnum):
    """What a policy limit is measured in."""

    NONE = "none"
    AMOUNT = "amount"  # minor units of the workspace's base currency
    PERCENT = "percent"
    DAYS = "days"


KIND_POLICY_ACTION: dict[ActionKind, PolicyAction] = {
    ActionKind.GENERATE_PAYMENT_LINK: PolicyAction.GENERATE_PAYMENT_LINK,
    ActionKind.RESEND_INVOICE: PolicyAction.RESEND_INVOICE,
    ActionKind.APPLY_CREDIT: PolicyAction.APPLY_CREDIT,
    ActionKind.ISSUE_REFUND: PolicyAction.ISSUE_REFUND,
    ActionKind.EXTEND_TRIAL: PolicyAction.EXTEND_TRIAL,
    ActionKind.PAUSE_SUBSCRIPTION: PolicyAction.PAUSE_SUBSCRIPTION,
    ActionKind.CHANGE_PLAN: PolicyAction.CHANGE_PLAN,
    ActionKind.CANCEL_SUBSCRIPTION: PolicyAction.CANCEL_SUBSCRIPTION,
    ActionKind.FORCE_CANCEL: PolicyAction.FORCE_CANCEL,
    ActionKind.UPDATE_PAYMENT_METHOD: PolicyAction.UPDATE_PAYMENT_METHOD,
    ActionKind.ADJUST_SEATS: PolicyAction.ADJUST_SEATS,
    ActionKind.APPLY_DISCOUNT: PolicyAction.APPLY_DISCOUNT,
    # A duplicate-charge refund is a refund (reason ``duplicate``) under the refund row.
    ActionKind.REFUND_DUPLICATE_CHARGE: PolicyAction.ISSUE_REFUND,
    ActionKind.EXTEND_GRACE_PERIOD: PolicyAction.EXTEND_GRACE_PERIOD,
    # A tax invoice is the invoice resent with corrected tax details.
    ActionKind.SEND_TAX_INVOICE: PolicyAction.RESEND_INVOICE,
    ActionKind.RESUME_SUBSCRIPTION: PolicyAction.PAUSE_SUBSCRIPTION,
    ActionKind.UNDO_CANCELLATION: PolicyAction.CANCEL_SUBSCRIPTION,
}

POLICY_MEASURE: dict[PolicyAction, Measure] = {
    PolicyAction.APPLY_CREDIT: Measure.AMOUNT,
    PolicyAction.ISSUE_REFUND: Measure.AMOUNT,
    PolicyAction.APPLY_DISCOUNT: Measure.PERCENT,
    PolicyAction.EXTEND_TRIAL: Measure.DAYS,
    PolicyAction.EXTEND_GRACE_PERIOD: Measure.DAYS,
}

# django-guardian permission codenames on the Workspace (DESIGN.md section 2).
# Holding one means: may take that action here, directly or by approval request;
# the matrix says which.
APPROVE_ACTIONS = "approve_actions"
POLICY_CODENAME: dict[PolicyAction, str] = {action: action.value for action in PolicyAction}
WORKSPACE_PERMISSIONS: tuple[tuple[str, str], ...] = (
    ("view_billing", "View billing and payment history"),
    ("generate_payment_link", "Generate payment link"),
    ("resend_invoice", "Resend invoice"),
    ("apply_credit", "Apply one-time credit"),
    ("issue_refund", "Issue refund"),
    ("extend_trial", "Extend trial"),
    ("pause_subscription", "Pause subscription"),
    ("change_plan", "Change plan"),
    ("cancel_subscription", "Cancel subscription"),
    ("force_cancel", "Force cancellation"),
    ("update_payment_method", "Update payment method"),
    ("adjust_seats", "Adjust seat count"),
    ("apply_discount", "Apply discount"),
    ("extend_grace_period", "Extend payment grace period"),
    (APPROVE_ACTIONS, "Approve billing actions"),
)

# What each role group holds by default. Agents hold every action codename (the
# matrix decides direct vs. approval); approvers hold view + approve.
_AGENT_CODENAMES = tuple(code for code, _ in WORKSPACE_PERMISSIONS if code != APPROVE_ACTIONS)
ROLE_CODENAMES: dict[Role, tuple[str, ...]] = {
    Role.L1: _AGENT_CODENAMES,
    Role.L2: _AGENT_CODENAMES,
    Role.MANAGER: (*_AGENT_CODENAMES, APPROVE_ACTIONS),
    Role.SPECIALIST: _AGENT_CODENAMES,
    Role.VP: ("view_billing", APPROVE_ACTIONS),
    Role.LEGAL: ("view_billing", APPROVE_ACTIONS),
}
