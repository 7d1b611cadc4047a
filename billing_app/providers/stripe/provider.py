"""``StripeProvider``: the ``BillingProvider`` of a workspace connected to Stripe.

Where the mirror is written: every **write** method upserts the objects Stripe
returned into the mirror (``services.mirror.mirror_upsert``) before it returns, so
the panel shows the result at once; the webhook that follows re-reads the same
object and changes nothing. A failure to mirror is logged, never raised: the
money has moved, and the webhook or the next refresh repairs the mirror.
**Reads** (``fetch_customer_bundle``, ``find_customers_by_email``,
``list_objects``, ``retrieve_object``) only return objects; their callers (the
refresh service, the webhook processor, the backfill) decide what to store.

Idempotency: every write sends the caller's key (derived from the
``BillingAction`` id) as Stripe's ``Idempotency-Key``. An action that needs
several Stripe writes derives one key per step as ``"<key>:<step>"``, so a retry
of the whole action replays each step instead of repeating it.
"""

from __future__ import annotations

import logging
import re
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

from django.conf import settings
from django.utils import timezone

from ...errors import BillingDeskError, PreconditionFailed, ProviderError, ValidationFailed
from ...money import Money
from ..base import (
    CANCELLATION_FEEDBACK,
    DISCOUNT_DURATIONS,
    MIRRORED_RETRIEVABLE,
    PAUSE_BEHAVIORS,
    STRIPE_REFUND_REASONS,
    WRITE_ABSENT,
    BillingProvider,
    CreditResult,
    CustomerBundle,
    DiscountResult,
    InvoiceSendResult,
    LinkResult,
    Page,
    PlanChangePreview,
    PlanChangeResult,
    RefundResult,
    StripeObject,
    SubscriptionResult,
    TaxDetailsResult,
    TaxIdInput,
    WriteFound,
)
from . import readers as r
from .client import StripeApi, stripe_call_started, stripe_client_get

if TYPE_CHECKING:
    from ...models import Workspace

logger = logging.getLogger(__name__)

Obj = dict[str, Any]

REFUND_REASONS = STRIPE_REFUND_REASONS
CANCEL_FEEDBACK = CANCELLATION_FEEDBACK
ADDRESS_FIELDS = frozenset({"line1", "line2", "city", "state", "postal_code", "country"})

# What the panel needs expanded on each object (max four levels deep, Stripe's limit).
# Subscription items always carry their full Price; it is not expandable.
CUSTOMER_EXPAND = ["tax_ids", "discount.source.coupon"]
SUBSCRIPTION_EXPAND = ["discounts.source.coupon"]
INVOICE_EXPAND = ["payments"]
CHARGE_EXPAND = ["refunds"]

# Top-level resources the backfill pages through, with their list parameters.
LIST_RESOURCES: dict[str, dict[str, Any]] = {
    "products": {},
    "prices": {},
    "customers": {"expand": ["data.tax_ids", "data.discount.source.coupon"]},
    "subscriptions": {"status": "all", "expand": ["data.discounts.source.coupon"]},
    "invoices": {"expand": ["data.payments"]},
    "charges": {"expand": ["data.refunds"]},
    "refunds": {},
}
# Resources listed per customer: ``customers/<id>/<name>``.
CUSTOMER_LIST_RESOURCES = frozenset({"payment_methods", "balance_transactions"})
RETRIEVABLE = MIRRORED_RETRIEVABLE | {"payment_intent", "dispute", "subscription_schedule"}
BUNDLE_LIMIT = 100


def _step(key: str, step: str) -> str:
    return f"{key}:{step}"


_ACTION_IN_KEY = re.compile(
    r"^billing-desk-([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})-"
)


def _tag(key: str, metadata: dict[str, str] | None = None) -> dict[str, str]:
    """Stripe metadata naming the action a write belongs to (``billing_desk_action``).

    The action id is read from the idempotency key (``billing-desk-<action id>-<kind>``).
    When a write's answer is lost and Stripe's idempotency key has expired (24 h),
    this tag is the only way to find what the action did (``find_action_write``).
    """
    tagged = dict(metadata or {})
    match = _ACTION_IN_KEY.match(key)
    if match:
        tagged.setdefault("billing_desk_action", match.group(1))
    return tagged


def _meta(key: str) -> dict[str, Any]:
    """``{"metadata": …}`` for a write's params when the key names an action, else nothing."""
    tag = _tag(key)
    return {"metadata": tag} if tag else {}


def _tagged(obj: Obj | None, action_id: str) -> bool:
    return bool(obj) and (obj.get("metadata") or {}).get("billing_desk_action") == action_id  # type: ignore[union-attr]


# Kinds whose only write is one subscription update tagged with the action id: an
# untagged subscription proves the write did not happen.
_TAGGED_SUBSCRIPTION_KINDS = frozenset(
    {
        "extend_trial",
        "pause_subscription",
        "cancel_subscription",
        "adjust_seats",
        "apply_discount",
        "extend_grace_period",
    }
)


def _require_key(idempotency_key: str) -> str:
    if not idempotency_key or len(idempotency_key) > 200:
        raise ValidationFailed(
            "Every Stripe write needs an idempotency key (at most 200 characters).",
            code="idempotency_key_required",
        )
    return idempotency_key


_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def _read_pool() -> ThreadPoolExecutor:
    """One long-lived pool per process (created on first use, so after any fork).

    Long-lived threads keep their per-thread ``requests`` sessions, so concurrent
    reads reuse open TLS connections to Stripe instead of handshaking every time.
    """
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(
                max_workers=int(getattr(settings, "STRIPE_READ_THREADS", 32)),
                thread_name_prefix="stripe-read",
            )
        return _pool


def _run_concurrently(calls: dict[str, Any]) -> dict[str, Any]:
    """Run independent Stripe reads at once: the wall time is the slowest call, not the sum.

    The calls only do HTTP (no database access, so no connection crosses threads).
    The first failure, in the order the calls were given, is raised once every call
    has finished.
    """
    pool = _read_pool()
    futures = {name: pool.submit(fn) for name, fn in calls.items()}
    results: dict[str, Any] = {}
    first_error: BaseException | None = None
    for name, future in futures.items():
        try:
            results[name] = future.result()
        except BaseException as exc:  # re-raised below, after every call has finished
            first_error = first_error or exc
    if first_error is not None:
        raise first_error
    return results


class StripeProvider(BillingProvider):
    """Stripe for one workspace: its own secret key, our pinned API version and transport."""

    key = "stripe"

    def __init__(self, workspace: Workspace, api: StripeApi | None = None):
        super().__init__(workspace)
        if api is None:
            secret = workspace.stripe_secret_key
            if not secret:
                raise ProviderError(
                    "This workspace has no Stripe secret key.",
                    code="provider_not_configured",
                    status=503,
                )
            api = StripeApi(stripe_client_get(workspace_id=workspace.pk, api_key=secret))
        self.api = api

    # --- mirror ---
    def _mirror(self, *objects: Obj | None) -> None:
        from ...services.mirror import mirror_upsert

        # The latest request's send time: a write's answer is ordered against re-reads by it.
        read_at = stripe_call_started()
        for obj in objects:
            if not obj:
                continue
            try:
                mirror_upsert(workspace=self.workspace, obj=obj, read_at=read_at)
            except Exception:  # the Stripe write stands; webhooks repair the mirror
                logger.exception(
                    "mirror upsert failed after a Stripe write (workspace %s, %s %s)",
                    self.workspace.pk,
                    obj.get("object"),
                    obj.get("id"),
                )

    def _mirror_balance(self, *, customer_id: str, balance: Money) -> None:
        from ...services.mirror import mirror_customer_balance_update

        try:
            mirror_customer_balance_update(
                workspace=self.workspace,
                customer_id=customer_id,
                balance=balance,
                read_at=stripe_call_started(),
            )
        except Exception:
            logger.exception("mirror balance update failed (workspace %s)", self.workspace.pk)

    # --- reads ---
    def fetch_customer_bundle(self, customer_id: str) -> CustomerBundle:
        """Six independent reads at once, then the products of the subscribed prices.

        Refunds come embedded in the charges (``expand=data.refunds``): Stripe cannot
        list refunds by customer. Prices come embedded in the subscription items.
        """
        if not customer_id:
            raise ValidationFailed("A customer id is required.", code="customer_required")
        api = self.api
        listing = {"customer": customer_id, "limit": BUNDLE_LIMIT}
        results = _run_concurrently(
            {
                "customer": lambda: api.customer_retrieve(customer_id, expand=CUSTOMER_EXPAND),
                "subscriptions": lambda: api.subscriptions_list(
                    {
                        **listing,
                        "status": "all",
                        "expand": [f"data.{e}" for e in SUBSCRIPTION_EXPAND],
                    }
                ),
                "invoices": lambda: api.invoices_list(
                    {**listing, "expand": [f"data.{e}" for e in INVOICE_EXPAND]}
                ),
                "charges": lambda: api.charges_list(
                    {**listing, "expand": [f"data.{e}" for e in CHARGE_EXPAND]}
                ),
                "payment_methods": lambda: api.customer_payment_methods_list(
                    customer_id, {"type": "card", "limit": BUNDLE_LIMIT}
                ),
                "balance_transactions": lambda: api.customer_balance_transactions_list(
                    customer_id, {"limit": BUNDLE_LIMIT}
                ),
            }
        )
        subscriptions = r.page_read(results["subscriptions"]).objects
        charges = r.page_read(results["charges"]).objects
        prices: dict[str, Obj] = {}
        for subscription in subscriptions:
            for item in r.subscription_items(subscription):
                price = item.get("price")
                if isinstance(price, dict) and price.get("id"):
                    prices[price["id"]] = price
        wanted = {r.ref(p.get("product")) for p in prices.values()} - {""}
        product_ids = sorted(wanted - self._mirrored_products(wanted))
        products: list[Obj] = []
        if product_ids:
            products = r.page_read(
                api.products_list({"ids": product_ids, "limit": BUNDLE_LIMIT})
            ).objects
        return CustomerBundle(
            customer=results["customer"],
            subscriptions=subscriptions,
            invoices=r.page_read(results["invoices"]).objects,
            charges=charges,
            refunds=[
                refund
                for charge in charges
                for refund in ((charge.get("refunds") or {}).get("data") or [])
            ],
            payment_methods=r.page_read(results["payment_methods"]).objects,
            balance_transactions=r.page_read(results["balance_transactions"]).objects,
            prices=list(prices.values()),
            products=products,
        )

    def _mirrored_products(self, product_ids: set[str]) -> set[str]:
        """Products the mirror already holds (backfill, ``product.*`` webhooks): not re-fetched,
        which saves the bundle its second round trip to Stripe."""
        from ...models import MirrorProduct

        if not product_ids:
            return set()
        return set(
            MirrorProduct.objects.filter(
                workspace_id=self.workspace.pk, stripe_id__in=product_ids
            ).values_list("stripe_id", flat=True)
        )

    def find_customers_by_email(self, email: str) -> list[StripeObject]:
        """Stripe's ``email`` filter is exact and case-sensitive: ask for the address as
        given and in lower case (how most systems store it), at once, and merge."""
        given = (email or "").strip()
        if "@" not in given:
            raise ValidationFailed("A valid email address is required.", code="invalid_email")
        variants = list(dict.fromkeys([given, given.lower()]))
        api = self.api
        results = _run_concurrently(
            {
                variant: (
                    lambda variant=variant: api.customers_list(
                        {"email": variant, "limit": BUNDLE_LIMIT}
                    )
                )
                for variant in variants
            }
        )
        found: dict[str, Obj] = {}
        for variant in variants:
            for customer in r.page_read(results[variant]).objects:
                if not customer.get("deleted"):
                    found.setdefault(customer["id"], customer)
        return list(found.values())

    def list_objects(self, resource: str, *, cursor: str | None, limit: int = 100) -> Page:
        """A page of ``products``, ``prices``, ``customers``, ``subscriptions``, ``invoices``,
        ``charges``, ``refunds`` or ``customers/<id>/payment_methods|balance_transactions``."""
        if not 1 <= limit <= 100:
            raise ValidationFailed("limit must be between 1 and 100.", code="invalid_limit")
        paging: dict[str, Any] = {"limit": limit}
        if cursor:
            paging["starting_after"] = cursor
        if resource in LIST_RESOURCES:
            fn = getattr(self.api, f"{resource}_list")
            return r.page_read(fn({**LIST_RESOURCES[resource], **paging}))
        parts = resource.split("/")
        if len(parts) == 3 and parts[0] == "customers" and parts[2] in CUSTOMER_LIST_RESOURCES:
            customer_id = parts[1]
            if parts[2] == "payment_methods":
                return r.page_read(
                    self.api.customer_payment_methods_list(customer_id, {"type": "card", **paging})
                )
            return r.page_read(self.api.customer_balance_transactions_list(customer_id, paging))
        raise ValidationFailed(f"Unknown resource {resource!r}.", code="unknown_resource")

    def retrieve_object(self, resource: str, object_id: str) -> StripeObject:
        """The current state of one object, by its Stripe object type (``event.data.object.object``)."""
        if resource not in RETRIEVABLE or not object_id:
            raise ValidationFailed(
                f"Cannot retrieve {resource!r} objects.", code="unknown_resource"
            )
        api = self.api
        match resource:
            case "customer":
                return api.customer_retrieve(object_id, expand=CUSTOMER_EXPAND)
            case "subscription":
                return api.subscription_retrieve(object_id, expand=SUBSCRIPTION_EXPAND)
            case "invoice":
                return api.invoice_retrieve(object_id, expand=INVOICE_EXPAND)
            case "charge":
                return api.charge_retrieve(object_id, expand=CHARGE_EXPAND)
            case "payment_intent":
                return api.payment_intent_retrieve(object_id, expand=["latest_charge"])
            case "subscription_schedule":
                return api.subscription_schedule_retrieve(object_id)
            case _:
                return getattr(api, f"{resource}_retrieve")(object_id)

    # --- writes ---
    def create_payment_link(
        self, *, customer_id: str, invoice_id: str | None, idempotency_key: str
    ) -> LinkResult:
        """The open invoice's hosted page; with no open invoice, a Checkout Session in
        ``setup`` mode that saves a new card for the next automatic attempt.

        A ``payment``-mode Checkout for an arbitrary amount would not settle any
        Stripe invoice or balance, so the customer could end up paying twice; money
        owed is always on an invoice, and the invoice's own page collects it.
        """
        key = _require_key(idempotency_key)
        if invoice_id:
            invoice = self.api.invoice_retrieve(invoice_id)
            if r.invoice_customer_id(invoice) != customer_id:
                raise ValidationFailed(
                    "That invoice belongs to another customer.", code="invoice_not_for_customer"
                )
            if not r.invoice_is_payable(invoice):
                raise PreconditionFailed(
                    "Only an open invoice can be paid by link.",
                    code="invoice_not_open",
                    details={"status": invoice.get("status")},
                )
            return LinkResult(
                url=invoice["hosted_invoice_url"], kind="hosted_invoice", object_id=invoice["id"]
            )
        open_invoices = r.page_read(
            self.api.invoices_list({"customer": customer_id, "status": "open", "limit": 10})
        ).objects
        payable = sorted(
            (i for i in open_invoices if r.invoice_is_payable(i)),
            key=lambda i: i.get("created") or 0,
        )
        if payable:
            invoice = payable[0]
            return LinkResult(
                url=invoice["hosted_invoice_url"], kind="hosted_invoice", object_id=invoice["id"]
            )
        customer = self.api.customer_retrieve(customer_id)
        if customer.get("deleted"):
            raise PreconditionFailed(
                "This customer was deleted in Stripe.", code="customer_deleted"
            )
        currency = (r.customer_currency(customer) or self.workspace.base_currency).lower()
        session = self.api.checkout_session_create(
            {
                "mode": "setup",
                "customer": customer_id,
                "currency": currency,
                "metadata": {"billing_desk": "payment_link"},
            },
            key=key,
        )
        return LinkResult(
            url=session["url"],
            kind="checkout",
            object_id=session["id"],
            expires_at=r.ts(session.get("expires_at")),
        )

    def resend_invoice(self, *, invoice_id: str, idempotency_key: str) -> InvoiceSendResult:
        key = _require_key(idempotency_key)
        invoice = self.api.invoice_retrieve(invoice_id)
        if invoice.get("status") in {"draft", "void"}:
            raise PreconditionFailed(
                "A draft or void invoice cannot be sent.",
                code="invoice_not_sendable",
                details={"status": invoice.get("status")},
            )
        method: Literal["email", "link"] = "link"
        if invoice.get("collection_method") == "send_invoice" and invoice.get("status") == "open":
            invoice = self.api.invoice_send(invoice_id, key=key)
            method = "email"
            self._mirror(invoice)
        return InvoiceSendResult(
            invoice_id=invoice["id"],
            method=method,
            hosted_invoice_url=str(invoice.get("hosted_invoice_url") or ""),
            invoice_pdf=str(invoice.get("invoice_pdf") or ""),
        )

    def apply_credit(
        self, *, customer_id: str, amount: Money, description: str, idempotency_key: str
    ) -> CreditResult:
        key = _require_key(idempotency_key)
        if amount.amount <= 0:
            raise ValidationFailed("A credit must be a positive amount.", code="invalid_amount")
        transaction = self.api.customer_balance_transaction_create(
            customer_id,
            {
                # Negative: money the customer holds against future invoices.
                "amount": -amount.amount,
                "currency": amount.currency.lower(),
                "description": description[:350] if description else "Billing Desk credit",
                **({"metadata": tag} if (tag := _tag(key)) else {}),
            },
            key=key,
        )
        ending = Money(int(transaction.get("ending_balance") or 0), amount.currency)
        self._mirror(transaction)
        self._mirror_balance(customer_id=customer_id, balance=ending)
        return CreditResult(transaction_id=transaction["id"], amount=amount, ending_balance=ending)

    def refund(
        self,
        *,
        charge_id: str,
        amount: Money,
        reason: str,
        idempotency_key: str,
        metadata: dict[str, str] | None = None,
    ) -> RefundResult:
        key = _require_key(idempotency_key)
        if reason not in REFUND_REASONS:
            raise ValidationFailed(
                f"A Stripe refund reason is one of {', '.join(sorted(REFUND_REASONS))}.",
                code="invalid_refund_reason",
            )
        if amount.amount <= 0:
            raise ValidationFailed("A refund must be a positive amount.", code="invalid_amount")
        charge = self.api.charge_retrieve(charge_id)
        params: dict[str, Any] = {"charge": charge_id, "amount": amount.amount, "reason": reason}
        metadata = _tag(key, {str(k)[:40]: str(v)[:500] for k, v in (metadata or {}).items()})
        if metadata:
            params["metadata"] = metadata
        try:
            r.charge_check_refundable(
                charge, amount, window_days=self.workspace.refund_window_days, now=timezone.now()
            )
        except PreconditionFailed as refused:
            # Refunded already — maybe by this very action, whose answer was lost (a
            # timeout, a worker that died before recording it): then that refund is the
            # result. Found by the action id our refunds carry in their metadata.
            earlier = self._earlier_refund(refused, charge_id, params.get("metadata") or {})
            if earlier is None:
                raise
            refund = earlier
        else:
            refund = self.api.refund_create(params, key=key)
        self._mirror(
            {**refund, "customer": refund.get("customer") or charge.get("customer")},
            self._reread_quietly("charge", charge_id),
        )
        return RefundResult(
            refund_id=refund["id"],
            charge_id=charge_id,
            amount=Money(int(refund.get("amount") or amount.amount), amount.currency),
            status=str(refund.get("status") or ""),
            reason=str(refund.get("reason") or reason),
        )

    def _earlier_refund(
        self, refused: PreconditionFailed, charge_id: str, metadata: dict[str, str]
    ) -> Obj | None:
        action = metadata.get("billing_desk_action")
        if not action or refused.code not in {"already_refunded", "exceeds_refundable"}:
            return None
        try:
            refunds = r.page_read(self.api.refunds_list({"charge": charge_id, "limit": 100}))
        except BillingDeskError:
            return None
        return next(
            (
                refund
                for refund in refunds.objects
                if (refund.get("metadata") or {}).get("billing_desk_action") == action
                and refund.get("status") in {"succeeded", "pending"}
            ),
            None,
        )

    def _reread_quietly(self, resource: str, object_id: str) -> Obj | None:
        """The object's state after a write, for the mirror; a failed read is not an error."""
        try:
            return self.retrieve_object(resource, object_id)
        except BillingDeskError:
            logger.warning("re-read of %s %s after a write failed", resource, object_id)
            return None

    def _live_subscription(self, subscription_id: str) -> Obj:
        subscription = self.api.subscription_retrieve(subscription_id)
        if not r.subscription_is_live(subscription):
            raise PreconditionFailed(
                "This subscription has ended.",
                code="subscription_not_active",
                details={"status": subscription.get("status")},
            )
        return subscription

    def extend_trial(
        self, *, subscription_id: str, trial_end: datetime, idempotency_key: str
    ) -> SubscriptionResult:
        key = _require_key(idempotency_key)
        subscription = self.api.subscription_retrieve(subscription_id)
        if subscription.get("status") != "trialing":
            raise PreconditionFailed(
                "Only a trialing subscription can have its trial extended.",
                code="not_trialing",
                details={"status": subscription.get("status")},
            )
        current_end = subscription.get("trial_end") or 0
        if r.unix(trial_end) <= max(int(current_end), int(timezone.now().timestamp())):
            raise ValidationFailed(
                "The new trial end must be later than the current one.",
                code="trial_end_not_later",
            )
        updated = self.api.subscription_update(
            subscription_id,
            {"trial_end": r.unix(trial_end), "proration_behavior": "none", **_meta(key)},
            key=key,
        )
        self._mirror(updated)
        return r.subscription_result(updated)

    def pause_subscription(
        self,
        *,
        subscription_id: str,
        behavior: str,
        resumes_at: datetime | None,
        idempotency_key: str,
    ) -> SubscriptionResult:
        key = _require_key(idempotency_key)
        if behavior not in PAUSE_BEHAVIORS:
            raise ValidationFailed(
                f"Pause behavior is one of {', '.join(sorted(PAUSE_BEHAVIORS))}.",
                code="invalid_pause_behavior",
            )
        if resumes_at is not None and resumes_at <= timezone.now():
            raise ValidationFailed(
                "The resume date must be in the future.", code="invalid_resume_date"
            )
        self._live_subscription(subscription_id)
        pause: dict[str, Any] = {"behavior": behavior}
        if resumes_at is not None:
            pause["resumes_at"] = r.unix(resumes_at)
        updated = self.api.subscription_update(
            subscription_id, {"pause_collection": pause, **_meta(key)}, key=key
        )
        self._mirror(updated)
        return r.subscription_result(updated)

    def _plan_change_inputs(
        self, subscription_id: str, new_price_id: str
    ) -> tuple[Obj, Obj, Obj, str]:
        api = self.api
        fetched = _run_concurrently(
            {
                "subscription": lambda: api.subscription_retrieve(subscription_id),
                "price": lambda: api.price_retrieve(new_price_id),
            }
        )
        subscription, price = fetched["subscription"], fetched["price"]
        item = r.plan_item_pick(subscription, price)
        r.plan_change_check(subscription, item, price)
        return subscription, item, price, r.plan_change_direction(item, price)

    def preview_plan_change(
        self, *, subscription_id: str, new_price_id: str, at: datetime | None = None
    ) -> PlanChangePreview:
        """Upgrades are previewed with ``invoices.create_preview`` (the proration Stripe will
        invoice now); a downgrade changes nothing before the period ends, so it has no
        proration to preview."""
        subscription, item, price, direction = self._plan_change_inputs(
            subscription_id, new_price_id
        )
        currency = str(price.get("currency") or "").upper()
        new_recurring = r.recurring_amount_after(subscription, item["id"], price)
        period_end = r.ts(r.subscription_period_end(subscription))
        if direction == "downgrade":
            return PlanChangePreview(
                subscription_id=subscription_id,
                current_price_id=r.ref(item.get("price")),
                new_price_id=new_price_id,
                direction="downgrade",
                lines=[],
                amount_due_now=Money(0, currency),
                new_recurring_amount=new_recurring,
                effective_date=period_end or timezone.now(),
                proration_date=None,
            )
        proration_date = (at or timezone.now()).replace(microsecond=0)
        preview = self.api.invoice_create_preview(
            {
                "subscription": subscription_id,
                "subscription_details": {
                    "items": [{"id": item["id"], "price": new_price_id}],
                    "proration_date": r.unix(proration_date),
                    "proration_behavior": "always_invoice",
                },
            }
        )
        lines = r.proration_lines(preview)
        return PlanChangePreview(
            subscription_id=subscription_id,
            current_price_id=r.ref(item.get("price")),
            new_price_id=new_price_id,
            direction="upgrade",
            lines=lines,
            amount_due_now=Money(sum(line.amount.amount for line in lines), currency),
            new_recurring_amount=new_recurring,
            effective_date=proration_date,
            proration_date=proration_date,
        )

    def change_plan(
        self,
        *,
        subscription_id: str,
        new_price_id: str,
        proration_date: datetime | None,
        idempotency_key: str,
    ) -> PlanChangeResult:
        key = _require_key(idempotency_key)
        subscription, item, price, direction = self._plan_change_inputs(
            subscription_id, new_price_id
        )
        if direction == "upgrade":
            params: dict[str, Any] = {
                "items": [{"id": item["id"], "price": new_price_id}],
                "proration_behavior": "always_invoice",
                "expand": ["latest_invoice"],
                **_meta(key),
            }
            if proration_date is not None:
                params["proration_date"] = r.unix(proration_date)
            updated = self.api.subscription_update(subscription_id, params, key=key)
            invoice = updated.get("latest_invoice")
            invoice = invoice if isinstance(invoice, dict) else None
            self._mirror(
                {**updated, "latest_invoice": r.ref(invoice)} if invoice else updated, invoice
            )
            return PlanChangeResult(
                subscription_id=subscription_id,
                direction="upgrade",
                new_price_id=new_price_id,
                effective_date=proration_date or timezone.now(),
                invoice_id=r.ref(invoice),
            )
        return self._schedule_downgrade(subscription, item, price, key=key)

    def _schedule_downgrade(
        self, subscription: Obj, item: Obj, price: Obj, *, key: str
    ) -> PlanChangeResult:
        """Two phases on a subscription schedule: the current items until the period ends,
        then the new price; the schedule releases the subscription after that phase."""
        subscription_id = subscription["id"]
        period_end = r.subscription_period_end(subscription)
        if not period_end:
            raise PreconditionFailed("The subscription has no current period.", code="no_period")
        schedule_id = r.ref(subscription.get("schedule"))
        if schedule_id:
            schedule = self.api.subscription_schedule_retrieve(schedule_id)
        else:
            schedule = self.api.subscription_schedule_create(
                {"from_subscription": subscription_id}, key=_step(key, "schedule")
            )
        start = r.schedule_phase_start(schedule) or r.subscription_period_start(subscription)
        current_items = [
            {"price": r.ref(i.get("price")), "quantity": int(i.get("quantity") or 1)}
            for i in r.subscription_items(subscription)
        ]
        next_items = [
            {
                "price": price["id"] if i.get("id") == item["id"] else r.ref(i.get("price")),
                "quantity": int(i.get("quantity") or 1),
            }
            for i in r.subscription_items(subscription)
        ]
        interval, count = r.price_recurring(price)
        schedule = self.api.subscription_schedule_update(
            schedule["id"],
            {
                "end_behavior": "release",
                "proration_behavior": "none",
                **_meta(key),
                "phases": [
                    {"items": current_items, "start_date": start, "end_date": period_end},
                    {
                        "items": next_items,
                        "duration": {"interval": interval, "interval_count": count},
                    },
                ],
            },
            key=_step(key, "phases"),
        )
        self._mirror(self._reread_quietly("subscription", subscription_id))
        return PlanChangeResult(
            subscription_id=subscription_id,
            direction="downgrade",
            new_price_id=price["id"],
            effective_date=r.ts(period_end) or timezone.now(),
            schedule_id=schedule["id"],
        )

    def cancel_subscription(
        self,
        *,
        subscription_id: str,
        at_period_end: bool,
        reason: str,
        comment: str,
        idempotency_key: str,
    ) -> SubscriptionResult:
        """``cancellation_details.feedback`` takes Stripe's enumeration; any other reason is
        kept, with the agent's comment, in ``cancellation_details.comment``."""
        key = _require_key(idempotency_key)
        subscription = self.api.subscription_retrieve(subscription_id)
        if subscription.get("status") in {"canceled", "incomplete_expired"}:
            raise PreconditionFailed(
                "This subscription is already canceled.", code="already_canceled"
            )
        feedback = reason if reason in CANCEL_FEEDBACK else "other"
        note = comment.strip()
        if reason and reason not in CANCEL_FEEDBACK:
            note = f"{reason}: {note}" if note else reason
        details: dict[str, Any] = {"feedback": feedback}
        if note:
            details["comment"] = note[:500]
        if at_period_end:
            updated = self.api.subscription_update(
                subscription_id,
                {"cancel_at_period_end": True, "cancellation_details": details, **_meta(key)},
                key=key,
            )
        else:
            updated = self.api.subscription_cancel(
                subscription_id, {"cancellation_details": details}, key=key
            )
        self._mirror(updated)
        return r.subscription_result(updated)

    def payment_method_update_link(
        self, *, customer_id: str, return_url: str, idempotency_key: str
    ) -> LinkResult:
        key = _require_key(idempotency_key)
        if not return_url.startswith(("https://", "http://")):
            raise ValidationFailed("return_url must be an http(s) URL.", code="invalid_return_url")
        session = self.api.billing_portal_session_create(
            {
                "customer": customer_id,
                "return_url": return_url,
                "flow_data": {"type": "payment_method_update"},
            },
            key=key,
        )
        return LinkResult(url=session["url"], kind="billing_portal", object_id=session["id"])

    def adjust_seats(
        self, *, subscription_id: str, item_id: str, quantity: int, idempotency_key: str
    ) -> SubscriptionResult:
        key = _require_key(idempotency_key)
        if not isinstance(quantity, int) or isinstance(quantity, bool) or quantity < 1:
            raise ValidationFailed(
                "Seats must be a whole number of at least 1.", code="invalid_quantity"
            )
        subscription = self._live_subscription(subscription_id)
        if item_id not in {i.get("id") for i in r.subscription_items(subscription)}:
            raise ValidationFailed(
                "That item is not part of this subscription.", code="item_not_in_subscription"
            )
        updated = self.api.subscription_update(
            subscription_id,
            {
                "items": [{"id": item_id, "quantity": quantity}],
                "proration_behavior": "create_prorations",
                **_meta(key),
            },
            key=key,
        )
        self._mirror(updated)
        return r.subscription_result(updated, item_id=item_id)

    def apply_discount(
        self,
        *,
        subscription_id: str,
        percent_off: float,
        duration: str,
        duration_in_months: int | None,
        idempotency_key: str,
    ) -> DiscountResult:
        """A coupon for this action, added to the subscription's discounts (existing
        discounts are kept: ``discounts`` replaces the whole list when set)."""
        key = _require_key(idempotency_key)
        if not 0 < float(percent_off) <= 100:
            raise ValidationFailed(
                "percent_off must be above 0 and at most 100.", code="invalid_percent"
            )
        if duration not in DISCOUNT_DURATIONS:
            raise ValidationFailed(
                "duration is once, repeating or forever.", code="invalid_duration"
            )
        if duration == "repeating" and not (duration_in_months and duration_in_months >= 1):
            raise ValidationFailed(
                "A repeating discount needs duration_in_months.", code="invalid_duration"
            )
        if duration != "repeating" and duration_in_months:
            raise ValidationFailed(
                "duration_in_months only applies to a repeating discount.", code="invalid_duration"
            )
        subscription = self._live_subscription(subscription_id)
        percent = round(float(percent_off), 2)
        coupon_params: dict[str, Any] = {
            "percent_off": percent,
            "duration": duration,
            "name": f"{percent:g}% off (Billing Desk)",
            "metadata": _tag(key, {"billing_desk_subscription": subscription_id}),
        }
        if duration == "repeating":
            coupon_params["duration_in_months"] = duration_in_months
        coupon = self.api.coupon_create(coupon_params, key=_step(key, "coupon"))
        discounts = [{"discount": d} for d in r.subscription_discount_ids(subscription)]
        discounts.append({"coupon": coupon["id"]})
        updated = self.api.subscription_update(
            subscription_id,
            {"discounts": discounts, "expand": SUBSCRIPTION_EXPAND, **_meta(key)},
            key=_step(key, "apply"),
        )
        self._mirror(updated)
        return DiscountResult(
            subscription_id=subscription_id,
            coupon_id=coupon["id"],
            percent_off=float(coupon.get("percent_off") or percent),
            duration=str(coupon.get("duration") or duration),
            duration_in_months=coupon.get("duration_in_months"),
        )

    def extend_grace_period(
        self, *, subscription_id: str, invoice_id: str | None, until: datetime, idempotency_key: str
    ) -> SubscriptionResult:
        """Record the grace period on the subscription (``metadata.grace_period_until``, unix seconds — the
        same key the sandbox writes and the panel reads — read by the
        payment-failure workflow before it warns or suspends) and, for an open invoice
        collected by ``send_invoice``, move its due date to ``until``.

        Automatic collection is deliberately not paused: Stripe's retries keep running,
        so the customer can still pay (and recover) during the grace period. An
        automatically-charged invoice has no due date to move.
        """
        key = _require_key(idempotency_key)
        if until <= timezone.now():
            raise ValidationFailed("The grace period must end in the future.", code="invalid_until")
        self._live_subscription(subscription_id)
        until_utc = until.astimezone(UTC).replace(microsecond=0)
        invoice: Obj | None = None
        if invoice_id:
            invoice = self.api.invoice_retrieve(invoice_id)
            if r.invoice_subscription_id(invoice) not in {"", subscription_id}:
                raise ValidationFailed(
                    "That invoice belongs to another subscription.",
                    code="invoice_not_for_subscription",
                )
        updated = self.api.subscription_update(
            subscription_id,
            {"metadata": _tag(key, {"grace_period_until": str(r.unix(until_utc))})},
            key=_step(key, "subscription"),
        )
        if (
            invoice is not None
            and invoice.get("collection_method") == "send_invoice"
            and invoice.get("status") == "open"
            and (r.invoice_due_date(invoice) or 0) < r.unix(until_utc)
        ):
            invoice = self.api.invoice_update(
                invoice["id"], {"due_date": r.unix(until_utc)}, key=_step(key, "invoice")
            )
            self._mirror(invoice)
        self._mirror(updated)
        return r.subscription_result(updated)

    def update_tax_details(
        self,
        *,
        customer_id: str,
        tax_id: TaxIdInput | None,
        address: dict[str, str] | None,
        idempotency_key: str,
    ) -> TaxDetailsResult:
        key = _require_key(idempotency_key)
        if tax_id is None and not address:
            raise ValidationFailed("Give a tax id, an address or both.", code="nothing_to_update")
        if address:
            unknown = set(address) - ADDRESS_FIELDS
            if unknown:
                raise ValidationFailed(
                    "Unknown address fields.",
                    code="invalid_address",
                    details={"fields": sorted(unknown)},
                )
            country = address.get("country", "")
            if country and not (len(country) == 2 and country.isalpha()):
                raise ValidationFailed("country is a two-letter ISO code.", code="invalid_address")
        if tax_id is not None and not (tax_id.type and tax_id.value.strip()):
            raise ValidationFailed("A tax id needs a type and a value.", code="invalid_tax_id")
        customer = self.api.customer_retrieve(customer_id, expand=CUSTOMER_EXPAND)
        if customer.get("deleted"):
            raise PreconditionFailed(
                "This customer was deleted in Stripe.", code="customer_deleted"
            )
        if address:
            clean = {k: v.strip() for k, v in address.items()}
            if clean.get("country"):
                clean["country"] = clean["country"].upper()
            customer = self.api.customer_update(
                customer_id,
                {"address": clean, "expand": CUSTOMER_EXPAND},
                key=_step(key, "address"),
            )
        if tax_id is not None:
            value = tax_id.value.strip()
            existing = {
                (t["type"], t["value"].replace(" ", "").upper())
                for t in r.customer_tax_ids(customer)
            }
            if (tax_id.type, value.replace(" ", "").upper()) not in existing:
                created = self.api.customer_tax_id_create(
                    customer_id, {"type": tax_id.type, "value": value}, key=_step(key, "tax_id")
                )
                tax_ids = dict(customer.get("tax_ids") or {"object": "list", "data": []})
                tax_ids["data"] = [*(tax_ids.get("data") or []), created]
                customer = {**customer, "tax_ids": tax_ids}
        self._mirror(customer)
        return TaxDetailsResult(
            customer_id=customer_id,
            tax_ids=r.customer_tax_ids(customer),
            address=r.customer_address(customer),
        )

    # --- reconciliation ---
    def find_action_write(
        self, *, action_id: str, kind: str, customer_id: str, params: dict[str, Any], charge_id: str
    ) -> WriteFound | Literal["absent"] | None:
        """Stripe's record of an action whose answer was lost, by ``metadata.billing_desk_action``:
        refunds listed by charge, balance transactions listed by customer, the subscription's
        own metadata for the kinds that make one tagged subscription update."""
        if kind in {"issue_refund", "refund_duplicate_charge"}:
            charge = charge_id or str(params.get("charge_id") or "")
            if not charge:
                return None
            page = r.page_read(self.api.refunds_list({"charge": charge, "limit": 100}))
            refund = next(
                (
                    x
                    for x in page.objects
                    if _tagged(x, action_id)
                    and x.get("status") in {"succeeded", "pending", "requires_action"}
                ),
                None,
            )
            if refund is None:
                return None if page.has_more else WRITE_ABSENT
            self._mirror(refund, self._reread_quietly("charge", charge))
            currency = str(refund.get("currency") or "").upper()
            return WriteFound(
                object_id=refund["id"],
                result=RefundResult(
                    refund_id=refund["id"],
                    charge_id=charge,
                    amount=Money(int(refund.get("amount") or 0), currency),
                    status=str(refund.get("status") or ""),
                    reason=str(refund.get("reason") or ""),
                ),
            )
        if kind == "apply_credit":
            page = r.page_read(
                self.api.customer_balance_transactions_list(customer_id, {"limit": 100})
            )
            txn = next((x for x in page.objects if _tagged(x, action_id)), None)
            if txn is None:
                return None if page.has_more else WRITE_ABSENT
            self._mirror(txn)
            currency = str(txn.get("currency") or "").upper()
            return WriteFound(
                object_id=txn["id"],
                result=CreditResult(
                    transaction_id=txn["id"],
                    amount=Money(-int(txn.get("amount") or 0), currency),
                    ending_balance=Money(int(txn.get("ending_balance") or 0), currency),
                ),
            )
        subscription_id = str(params.get("subscription_id") or "")
        if not subscription_id or kind not in _TAGGED_SUBSCRIPTION_KINDS | {
            "force_cancel",
            "change_plan",
        }:
            return None
        subscription = self.api.subscription_retrieve(subscription_id)
        if kind == "change_plan":
            return self._find_plan_change(subscription, action_id, str(params.get("price_id")))
        if _tagged(subscription, action_id) or (
            kind == "force_cancel" and subscription.get("status") == "canceled"
        ):
            self._mirror(subscription)
            return WriteFound(object_id=subscription_id, result=r.subscription_result(subscription))
        # An immediate cancel carries no metadata: only a canceled subscription is conclusive.
        # (A plan change is found by replaying its key: its result needs the preview.)
        return WRITE_ABSENT if kind in _TAGGED_SUBSCRIPTION_KINDS else None

    def _find_plan_change(
        self, subscription: Obj, action_id: str, price_id: str
    ) -> WriteFound | None:
        """An upgrade tags the subscription; a downgrade tags its schedule's phases update."""
        subscription_id = subscription["id"]
        if _tagged(subscription, action_id):
            self._mirror(subscription)
            return WriteFound(
                object_id=r.ref(subscription.get("latest_invoice")) or subscription_id,
                result=PlanChangeResult(
                    subscription_id=subscription_id,
                    direction="upgrade",
                    new_price_id=price_id,
                    effective_date=timezone.now(),
                    invoice_id=r.ref(subscription.get("latest_invoice")),
                ),
            )
        schedule_id = r.ref(subscription.get("schedule"))
        schedule = self.api.subscription_schedule_retrieve(schedule_id) if schedule_id else None
        if schedule is not None and _tagged(schedule, action_id):
            self._mirror(subscription)
            period_end = r.ts(r.subscription_period_end(subscription))
            return WriteFound(
                object_id=schedule["id"],
                result=PlanChangeResult(
                    subscription_id=subscription_id,
                    direction="downgrade",
                    new_price_id=price_id,
                    effective_date=period_end or timezone.now(),
                    schedule_id=schedule["id"],
                ),
            )
        # Neither tagged: the change did not happen, unless a schedule was created but
        # its phases never written — then replaying the key finishes it.
        return None

    def ping(self) -> bool:
        try:
            self.api.balance_retrieve()
        except BillingDeskError:
            return False
        return True
