"""The billing provider interface: what Billing Desk reads from and asks of a billing system.

Dataclasses cross this boundary, never vendor objects. Every write takes an
``idempotency_key`` derived from the ``BillingAction`` id, so a retry after a
timeout can never move money twice. Errors leave a provider only as
``billing_app.errors.ProviderError`` / ``ProviderUnavailable`` (or
``PreconditionFailed`` where the provider itself refuses a state change).

Reads feed the mirror: ``fetch_customer_bundle`` returns provider-shaped objects
(Stripe's JSON shapes, for both providers) that ``services.mirror`` upserts.

Writes return what they changed. A provider never writes the mirror (providers sit
below services and import neither services nor selectors): every write result
carries ``changes`` — the provider objects the write created or changed, in
Stripe's JSON shapes, with the time the request that returned them was sent —
and the service that made the call stores them with
``services.mirror.mirror_provider_changes``. ``changes`` is not a dataclass field:
it travels with the result without becoming part of what an action records
(``dataclasses.fields``, equality and ``repr`` ignore it).

Every provider passes the provider contract suite
(``tests/billing_app/providers/contract``) before it is done.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal, Self

from django.utils import timezone

from ..errors import ProviderError
from ..money import Money

if TYPE_CHECKING:
    from ..models import Workspace

StripeObject = dict[str, Any]

# Stripe's enumerations that both providers accept (the sandbox simulates Stripe).
STRIPE_REFUND_REASONS = frozenset({"duplicate", "fraudulent", "requested_by_customer"})
PAUSE_BEHAVIORS = frozenset({"keep_as_draft", "mark_uncollectible", "void"})
DISCOUNT_DURATIONS = frozenset({"once", "repeating", "forever"})
CANCELLATION_FEEDBACK = frozenset(
    {
        "customer_service",
        "low_quality",
        "missing_features",
        "other",
        "switched_service",
        "too_complex",
        "too_expensive",
        "unused",
    }
)


# Object types every provider can re-read one by one (``retrieve_object``) and the mirror
# stores: what a mirror write that cannot be ordered re-fetches.
MIRRORED_RETRIEVABLE = frozenset(
    {
        "customer",
        "subscription",
        "invoice",
        "charge",
        "refund",
        "payment_method",
        "product",
        "price",
    }
)


@dataclass(frozen=True)
class BalanceChange:
    """A customer's balance as the provider reported it after a write (a credit granted)."""

    customer_id: str
    balance: Money  # negative = credit the customer holds


@dataclass(frozen=True)
class ProviderChanges:
    """What one write changed at the provider, for ``services.mirror`` to store.

    ``objects``: the provider objects (Stripe's JSON shapes) as the provider returned
    them or re-read them after the write; ``read_at``: when the request that returned
    them was sent (the mirror orders states by it; ``None``: unknown, the mirror then
    re-fetches instead of overwriting); ``balances``: customer balances the write
    moved without returning the customer.
    """

    objects: tuple[StripeObject, ...] = ()
    read_at: datetime | None = None
    balances: tuple[BalanceChange, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.objects or self.balances)


NO_CHANGES = ProviderChanges()


class Changed:
    """Base of every write result: ``changes`` rides along without being a dataclass field.

    Set once by the provider that builds the result (``with_changes``); read by the
    service that stores it in the mirror. Results built without it carry
    ``NO_CHANGES`` (the sandbox, whose state *is* the mirror).
    """

    changes: ProviderChanges = NO_CHANGES

    def with_changes(self, changes: ProviderChanges) -> Self:
        object.__setattr__(self, "changes", changes)  # frozen dataclasses: set once, here
        return self


def changes_of(result: Any) -> ProviderChanges:
    """The changes a write result carries (``NO_CHANGES`` for anything else)."""
    changes = getattr(result, "changes", NO_CHANGES)
    return changes if isinstance(changes, ProviderChanges) else NO_CHANGES


@dataclass(frozen=True)
class CustomerBundle:
    """Everything the panel needs about one customer, as provider objects."""

    customer: StripeObject
    subscriptions: list[StripeObject] = field(default_factory=list)
    invoices: list[StripeObject] = field(default_factory=list)
    charges: list[StripeObject] = field(default_factory=list)
    refunds: list[StripeObject] = field(default_factory=list)
    payment_methods: list[StripeObject] = field(default_factory=list)
    balance_transactions: list[StripeObject] = field(default_factory=list)
    prices: list[StripeObject] = field(default_factory=list)
    products: list[StripeObject] = field(default_factory=list)


@dataclass(frozen=True)
class Page:
    objects: list[StripeObject]
    has_more: bool
    next_cursor: str | None


@dataclass(frozen=True)
class LinkResult(Changed):
    url: str
    kind: Literal["hosted_invoice", "checkout", "billing_portal"]
    object_id: str
    expires_at: datetime | None = None


@dataclass(frozen=True)
class InvoiceSendResult(Changed):
    invoice_id: str
    method: Literal["email", "link"]  # emailed by the provider, or a link for a public reply
    hosted_invoice_url: str
    invoice_pdf: str


@dataclass(frozen=True)
class CreditResult(Changed):
    transaction_id: str
    amount: Money  # positive: the credit granted
    ending_balance: Money  # the customer's balance after (negative = credit held)


@dataclass(frozen=True)
class RefundResult(Changed):
    refund_id: str
    charge_id: str
    amount: Money
    status: str
    reason: str


@dataclass(frozen=True)
class SubscriptionResult(Changed):
    subscription_id: str
    status: str
    trial_end: datetime | None = None
    cancel_at_period_end: bool = False
    cancel_at: datetime | None = None
    canceled_at: datetime | None = None
    pause_collection: dict[str, Any] | None = None
    quantity: int | None = None
    schedule_id: str = ""


@dataclass(frozen=True)
class ProrationLine:
    description: str
    amount: Money
    period_start: datetime | None
    period_end: datetime | None
    proration: bool


@dataclass(frozen=True)
class PlanChangePreview:
    subscription_id: str
    current_price_id: str
    new_price_id: str
    direction: Literal["upgrade", "downgrade"]
    lines: list[ProrationLine]
    amount_due_now: Money  # what the customer pays at once (upgrade), zero for a downgrade
    new_recurring_amount: Money  # the subscription's recurring amount after the change
    effective_date: datetime
    proration_date: datetime | None  # pin this when executing so the change matches the preview


@dataclass(frozen=True)
class PlanChangeResult(Changed):
    subscription_id: str
    direction: Literal["upgrade", "downgrade"]
    new_price_id: str
    effective_date: datetime
    invoice_id: str = ""  # the proration invoice of an upgrade
    schedule_id: str = ""  # the schedule carrying a downgrade


@dataclass(frozen=True)
class DiscountResult(Changed):
    subscription_id: str
    coupon_id: str
    percent_off: float
    duration: str
    duration_in_months: int | None


@dataclass(frozen=True)
class TaxDetailsResult(Changed):
    customer_id: str
    tax_ids: list[dict[str, str]]
    address: dict[str, str]


@dataclass(frozen=True)
class TaxIdInput:
    type: str  # Stripe's tax id type, e.g. ``eu_vat``
    value: str


@dataclass(frozen=True)
class WriteFound(Changed):
    """The object an action with an unknown outcome turned out to have created or changed."""

    object_id: str
    result: Any


# ``find_action_write``: searched, and the provider holds no write of that action.
WRITE_ABSENT: Literal["absent"] = "absent"


class BillingProvider(ABC):
    """One billing system for one workspace. Instances hold that workspace's credentials."""

    key: str = ""

    def __init__(self, workspace: Workspace):
        self.workspace = workspace

    @classmethod
    def clock_now(cls, workspace: Workspace) -> datetime:
        """The billing system's current time for ``workspace`` (``billing_app.clock``), read
        without building a provider (no credentials needed).

        Real time for a real billing system; a simulation may run on its own clock.
        """
        return timezone.now()

    def find_action_write(
        self, *, action_id: str, kind: str, customer_id: str, params: dict[str, Any], charge_id: str
    ) -> WriteFound | Literal["absent"] | None:
        """Find what an action whose answer was lost did, by the action id in the provider's
        metadata (``billing_desk_action``): ``WriteFound``, ``WRITE_ABSENT`` when the search
        proves there is none, ``None`` when this kind cannot be searched.

        Reconciliation uses it after the provider's idempotency keys expire (Stripe keeps
        them 24 hours), and first, to avoid acting again. The default cannot search: a
        provider whose writes never lose their answer (the in-process sandbox) needs none.
        """
        return None

    # --- reads (feed the mirror) ---
    @abstractmethod
    def fetch_customer_bundle(self, customer_id: str) -> CustomerBundle:
        """The customer and everything the panel shows about them, fetched concurrently."""

    @abstractmethod
    def find_customers_by_email(self, email: str) -> list[StripeObject]:
        """Customers whose email matches, case-insensitively (for customers not yet mirrored)."""

    @abstractmethod
    def list_objects(self, resource: str, *, cursor: str | None, limit: int = 100) -> Page:
        """One page of a resource for the backfill (``customers``, ``subscriptions``, ...)."""

    @abstractmethod
    def retrieve_object(self, resource: str, object_id: str) -> StripeObject:
        """The current state of one object; webhook processing re-reads instead of trusting order."""

    # --- writes ---
    @abstractmethod
    def create_payment_link(
        self, *, customer_id: str, invoice_id: str | None, idempotency_key: str
    ) -> LinkResult:
        """The open invoice's hosted page, else a Checkout Session for the amount due."""

    @abstractmethod
    def resend_invoice(self, *, invoice_id: str, idempotency_key: str) -> InvoiceSendResult: ...

    @abstractmethod
    def apply_credit(
        self, *, customer_id: str, amount: Money, description: str, idempotency_key: str
    ) -> CreditResult: ...

    @abstractmethod
    def refund(
        self,
        *,
        charge_id: str,
        amount: Money,
        reason: str,
        idempotency_key: str,
        metadata: dict[str, str] | None = None,
    ) -> RefundResult: ...

    @abstractmethod
    def extend_trial(
        self, *, subscription_id: str, trial_end: datetime, idempotency_key: str
    ) -> SubscriptionResult: ...

    @abstractmethod
    def pause_subscription(
        self,
        *,
        subscription_id: str,
        behavior: str,
        resumes_at: datetime | None,
        idempotency_key: str,
    ) -> SubscriptionResult: ...

    def resume_subscription(
        self, *, subscription_id: str, idempotency_key: str
    ) -> SubscriptionResult:
        """Resume collection on a paused subscription now (``pause_collection`` cleared).

        ``not_paused`` when collection is not paused. Not abstract, so a provider
        written before it existed still loads; the contract suite requires it.
        """
        raise _unsupported(self, "resume_subscription")

    def undo_cancellation(
        self, *, subscription_id: str, idempotency_key: str
    ) -> SubscriptionResult:
        """Keep a subscription that was set to cancel at its period end (Stripe: set
        ``cancel_at_period_end`` back to false). ``not_canceling`` when none is set;
        ``already_canceled`` once it has ended. Required by the contract suite."""
        raise _unsupported(self, "undo_cancellation")

    @abstractmethod
    def preview_plan_change(
        self, *, subscription_id: str, new_price_id: str, at: datetime | None = None
    ) -> PlanChangePreview: ...

    @abstractmethod
    def change_plan(
        self,
        *,
        subscription_id: str,
        new_price_id: str,
        proration_date: datetime | None,
        idempotency_key: str,
    ) -> PlanChangeResult:
        """Upgrade now with proration invoiced at once; downgrade at the period end via a schedule."""

    @abstractmethod
    def cancel_subscription(
        self,
        *,
        subscription_id: str,
        at_period_end: bool,
        reason: str,
        comment: str,
        idempotency_key: str,
    ) -> SubscriptionResult: ...

    @abstractmethod
    def payment_method_update_link(
        self, *, customer_id: str, return_url: str, idempotency_key: str
    ) -> LinkResult:
        """A hosted page where the customer updates their card; no card data passes through us."""

    @abstractmethod
    def adjust_seats(
        self, *, subscription_id: str, item_id: str, quantity: int, idempotency_key: str
    ) -> SubscriptionResult: ...

    @abstractmethod
    def apply_discount(
        self,
        *,
        subscription_id: str,
        percent_off: float,
        duration: str,
        duration_in_months: int | None,
        idempotency_key: str,
    ) -> DiscountResult: ...

    @abstractmethod
    def extend_grace_period(
        self, *, subscription_id: str, invoice_id: str | None, until: datetime, idempotency_key: str
    ) -> SubscriptionResult:
        """Keep the account active until ``until`` while the customer fixes a failed payment."""

    @abstractmethod
    def update_tax_details(
        self,
        *,
        customer_id: str,
        tax_id: TaxIdInput | None,
        address: dict[str, str] | None,
        idempotency_key: str,
    ) -> TaxDetailsResult: ...

    @abstractmethod
    def ping(self) -> bool:
        """Whether the provider answers (for ``/readyz`` and the dashboard's health)."""

    def now(self) -> datetime:
        """The billing system's current time (``clock_now`` of this workspace): real time,
        except where the provider simulates a clock (the sandbox's frozen or advanced
        clock, like a Stripe test clock). Not a remote call."""
        return type(self).clock_now(self.workspace)


# Methods of the interface that are not calls to the billing system (not recorded).
LOCAL_METHODS: frozenset[str] = frozenset({"now", "clock_now"})


def _unsupported(provider: BillingProvider, operation: str) -> ProviderError:
    return ProviderError(
        f"The {provider.key or type(provider).__name__} provider cannot {operation} yet.",
        code="operation_not_supported",
        status=501,
    )
