"""Billing Desk models, one module per concern; import from ``billing_app.models``."""

from .audit import ApprovalRequest, BillingAction
from .events import StripeEvent
from .mirror import (
    CustomerLink,
    MirrorBalanceTransaction,
    MirrorCharge,
    MirrorCustomer,
    MirrorDiscount,
    MirrorInvoice,
    MirrorInvoiceLine,
    MirrorPaymentMethod,
    MirrorPrice,
    MirrorProduct,
    MirrorRefund,
    MirrorSubscription,
    MirrorSubscriptionItem,
    SyncState,
)
from .policy import ActionPolicy, ApprovalRoute
from .tenancy import (
    AgentMembership,
    CurrencyRate,
    RoleMappingRule,
    Workspace,
    WorkspaceInstallation,
)

__all__ = [
    "ActionPolicy",
    "AgentMembership",
    "ApprovalRequest",
    "ApprovalRoute",
    "BillingAction",
    "CurrencyRate",
    "CustomerLink",
    "MirrorBalanceTransaction",
    "MirrorCharge",
    "MirrorCustomer",
    "MirrorDiscount",
    "MirrorInvoice",
    "MirrorInvoiceLine",
    "MirrorPaymentMethod",
    "MirrorPrice",
    "MirrorProduct",
    "MirrorRefund",
    "MirrorSubscription",
    "MirrorSubscriptionItem",
    "RoleMappingRule",
    "StripeEvent",
    "SyncState",
    "Workspace",
    "WorkspaceInstallation",
]
