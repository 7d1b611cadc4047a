"""Billing Desk models, one module per concern; import from ``billing_app.models``."""

from .audit import ApprovalRequest, BillingAction
from .audit_chain import AuditChainHead, AuditEntry, AuditVerification
from .events import StripeEvent
from .failures import PaymentFailure, PlaybookTemplate
from .flags import CustomerFlag
from .locks import CustomerLock
from .metrics import (
    HelpdeskTicket,
    MonthlyReport,
    ProviderCall,
    TicketCategory,
    TicketCategoryRule,
    TicketSyncState,
)
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
from .notes import NoteTemplate
from .outbox import OutboxMessage
from .policy import ActionPolicy, ApprovalRoute
from .rollups import DailyRollup, RollupSource
from .sandbox import SandboxControl, SandboxIdempotency
from .self_service import (
    BillingWidget,
    BillingWidgetEvent,
    CardPrompt,
    CardPromptTemplate,
    CustomerOptOut,
    SelfServiceLink,
    SelfServiceRefundRequest,
)
from .snapshots import CustomerSnapshot
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
    "AuditChainHead",
    "AuditEntry",
    "AuditVerification",
    "BillingAction",
    "BillingWidget",
    "BillingWidgetEvent",
    "CardPrompt",
    "CardPromptTemplate",
    "CurrencyRate",
    "CustomerFlag",
    "CustomerLink",
    "CustomerLock",
    "CustomerOptOut",
    "CustomerSnapshot",
    "DailyRollup",
    "HelpdeskTicket",
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
    "MonthlyReport",
    "NoteTemplate",
    "OutboxMessage",
    "PaymentFailure",
    "PlaybookTemplate",
    "ProviderCall",
    "RoleMappingRule",
    "RollupSource",
    "SandboxControl",
    "SandboxIdempotency",
    "SelfServiceLink",
    "SelfServiceRefundRequest",
    "StripeEvent",
    "SyncState",
    "TicketCategory",
    "TicketCategoryRule",
    "TicketSyncState",
    "Workspace",
    "WorkspaceInstallation",
]
