"""``SandboxProvider``: a deterministic billing simulation with Stripe's semantics, in the database.

The simulation's state *is* the mirror: every write builds the Stripe-shaped
objects Stripe would return (``objects``) and stores them with
``services.mirror.mirror_upsert``; reads return the stored ``data``. So the demo
and the service-layer tests exercise exactly the code paths a Stripe workspace
uses, without a Stripe key or a network.

What it simulates, as Stripe does it:

* refunds never exceed the refundable remainder (``amount_captured −
  amount_refunded``), are refused on disputed charges, update the charge's
  ``amount_refunded`` / ``refunded`` and create a refund object;
* credits are customer balance transactions with a negative amount, moving
  ``customer.balance``; invoices apply the balance (``starting_balance``);
* trial extension only while trialing; ``pause_collection``; cancellation at the
  period end or at once, with ``cancellation_details``;
* plan changes: the preview prorates by seconds over the current period — unused
  time on the old price credited, remaining time on the new price charged — and
  the change produces the same numbers (pin ``proration_date``). An upgrade swaps
  the item's price at once and invoices the proration immediately (Stripe's
  ``proration_behavior=always_invoice``); a downgrade is scheduled for the period
  end (a subscription schedule, recorded as ``schedule`` plus
  ``metadata.pending_price_id`` / ``pending_change_at``). Only changes within the
  same billing interval and currency are simulated;
* seat changes prorate the same way and are invoiced at once (a decrease becomes
  a credit on the customer balance);
* coupons applied through ``discounts``; payment links to the open invoice's
  hosted page (``https://sandbox.billing-desk.invalid/i/<invoice>``) or a
  Checkout-like session; a Billing-Portal-like link for a payment-method update;
  tax ids and address; a grace period before dunning resumes.

Determinism and exactly-once: object ids derive from the idempotency key
(``re_sbx_<sha256(workspace, key)>``), and the first result of each key is kept
in ``SandboxIdempotency``; the same key returns that result without acting
again, the same key with other parameters is refused (``idempotency_conflict``,
as Stripe does). Writes hold the workspace's ``SandboxControl`` row lock, so
concurrent calls act one at a time.

``SandboxControl.down`` makes every call raise ``ProviderUnavailable``;
``SandboxControl.clock`` freezes time (a test clock).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, TypeVar

from django.db import transaction
from django.db.models import Model
from django.utils import timezone

from ...errors import (
    Conflict,
    PreconditionFailed,
    ProviderError,
    ProviderUnavailable,
    ValidationFailed,
)
from ...models import (
    MirrorBalanceTransaction,
    MirrorCharge,
    MirrorCustomer,
    MirrorDiscount,
    MirrorInvoice,
    MirrorPaymentMethod,
    MirrorPrice,
    MirrorProduct,
    MirrorRefund,
    MirrorSubscription,
    MirrorSubscriptionItem,
    SandboxControl,
    SandboxIdempotency,
    Workspace,
)
from ...money import Money
from ...services.mirror import mirror_upsert
from ..base import (
    CANCELLATION_FEEDBACK,
    DISCOUNT_DURATIONS,
    PAUSE_BEHAVIORS,
    STRIPE_REFUND_REASONS,
    BillingProvider,
    CreditResult,
    CustomerBundle,
    DiscountResult,
    InvoiceSendResult,
    LinkResult,
    Page,
    PlanChangePreview,
    PlanChangeResult,
    ProrationLine,
    RefundResult,
    StripeObject,
    SubscriptionResult,
    TaxDetailsResult,
    TaxIdInput,
)
from . import objects
from .codec import decode, encode, request_hash
from .control import sandbox_control_get
from .proration import prorate, proration_date_label

T = TypeVar("T")
Obj = dict[str, Any]

SANDBOX_HOST = objects.SANDBOX_HOST
# Stripe's refund reasons (``STRIPE_REFUND_REASONS``); Billing Desk's finer reasons travel in metadata.
LIVE_STATUSES = frozenset({"active", "trialing", "past_due", "unpaid", "incomplete"})
# Formats Stripe validates for the tax id types agents meet most (others: any 3–30 characters).
TAX_ID_FORMATS: dict[str, re.Pattern[str]] = {
    "eu_vat": re.compile(
        r"^(AT|BE|BG|CY|CZ|DE|DK|EE|EL|ES|FI|FR|HR|HU|IE|IT|LT|LU|LV|MT|NL|PL|PT|RO|SE|SI|SK|XI)[0-9A-Z+*]{8,12}$"
    ),
    "gb_vat": re.compile(r"^GB([0-9]{9}|[0-9]{12})$"),
    "ch_vat": re.compile(r"^CHE-?[0-9]{3}\.?[0-9]{3}\.?[0-9]{3} ?(MWST|TVA|IVA)$"),
    "us_ein": re.compile(r"^[0-9]{2}-?[0-9]{7}$"),
    "au_abn": re.compile(r"^[0-9]{11}$"),
    "ca_bn": re.compile(r"^[0-9]{9}$"),
    "jp_cn": re.compile(r"^[0-9]{13}$"),
    "no_vat": re.compile(r"^[0-9]{9}MVA$"),
    "in_gst": re.compile(r"^[0-9]{2}[A-Z0-9]{10}[0-9A-Z]{3}$"),
}
KNOWN_TAX_ID_TYPES = frozenset(
    {*TAX_ID_FORMATS, "ae_trn", "br_cnpj", "ca_gst_hst", "mx_rfc", "nz_gst", "sg_gst", "za_vat"}
)
ADDRESS_FIELDS = ("line1", "line2", "city", "state", "postal_code", "country")

_RESOURCES: dict[str, type[Model]] = {
    "customer": MirrorCustomer,
    "subscription": MirrorSubscription,
    "subscription_item": MirrorSubscriptionItem,
    "invoice": MirrorInvoice,
    "charge": MirrorCharge,
    "refund": MirrorRefund,
    "payment_method": MirrorPaymentMethod,
    "price": MirrorPrice,
    "product": MirrorProduct,
    "customer_balance_transaction": MirrorBalanceTransaction,
    "balance_transaction": MirrorBalanceTransaction,
    "discount": MirrorDiscount,
}


def _resource_model(resource: str) -> type[Model]:
    name = resource.strip().lower()
    model = _RESOURCES.get(name) or _RESOURCES.get(name.removesuffix("s"))
    if model is None:
        raise ValidationFailed(f"Unknown resource {resource!r}.", code="unknown_resource")
    return model


def _missing(kind: str, object_id: str) -> ProviderError:
    """Stripe's 404 for an unknown id, as the Stripe provider translates it."""
    return ProviderError(
        f"No such {kind}: '{object_id}'",
        code="invalid_request",
        status=404,
        details={"provider": "sandbox", "provider_code": "resource_missing"},
        provider_code="resource_missing",
    )


def _ts(value: Any) -> datetime | None:
    return datetime.fromtimestamp(int(value), tz=UTC) if value else None


def _money(amount: int, currency: str) -> Money:
    return Money(int(amount), currency.upper())


def _monthly(unit_amount: int, quantity: int, price: Obj) -> Decimal:
    recurring = price.get("recurring") or {}
    count = int(recurring.get("interval_count") or 1)
    per = {"day": Decimal(365) / 12, "week": Decimal(52) / 12, "month": 1, "year": Decimal(1) / 12}
    factor = Decimal(per.get(recurring.get("interval") or "month", 1))
    return Decimal(unit_amount * quantity) * factor / count


def _is_addon(item: Obj) -> bool:
    product = (item.get("price") or {}).get("product")
    return isinstance(product, dict) and (product.get("metadata") or {}).get("addon") == "true"


def plan_item(subscription: Obj) -> Obj | None:
    """The subscription's plan item: its largest item that is not an add-on."""
    items = (subscription.get("items") or {}).get("data") or []
    candidates = [i for i in items if not _is_addon(i)] or items
    if not candidates:
        return None
    return max(
        candidates,
        key=lambda i: _monthly(
            int(i["price"].get("unit_amount") or 0), int(i["quantity"] or 0), i["price"]
        ),
    )


def _card_expired(pm: Obj | None, now: datetime) -> bool:
    card = (pm or {}).get("card") or {}
    if not card:
        return False
    return (int(card["exp_year"]), int(card["exp_month"])) < (now.year, now.month)


class SandboxProvider(BillingProvider):
    key = "sandbox"

    def __init__(self, workspace: Workspace, *, clock: Callable[[], datetime] | None = None):
        super().__init__(workspace)
        self._clock = clock

    # --- infrastructure -------------------------------------------------------------

    def _check_up(self, control: SandboxControl) -> None:
        if control.down:
            raise ProviderUnavailable(
                "The sandbox billing provider is switched off"
                + (f" ({control.down_reason})" if control.down_reason else "")
                + "; nothing was changed.",
                details={"provider": "sandbox"},
                provider_code="sandbox_down",
            )

    def _now(self, control: SandboxControl) -> datetime:
        if self._clock is not None:
            return self._clock()
        return control.clock or timezone.now()

    def _read(self) -> datetime:
        control = sandbox_control_get(workspace=self.workspace)
        self._check_up(control)
        return self._now(control)

    def _id(self, prefix: str, key: str, *parts: object) -> str:
        return objects.digest_id(prefix, self.workspace.slug, key, *parts)

    def _write(
        self,
        operation: str,
        idempotency_key: str,
        params: dict[str, Any],
        act: Callable[[datetime], T],
    ) -> T:
        """Run ``act`` once per idempotency key, under the workspace's sandbox lock."""
        if not idempotency_key:
            raise ValidationFailed(
                "An idempotency key is required.", code="idempotency_key_required"
            )
        fingerprint = request_hash(operation, params)
        sandbox_control_get(workspace=self.workspace)
        with transaction.atomic():
            control = SandboxControl.objects.select_for_update().get(workspace=self.workspace)
            self._check_up(control)
            done = SandboxIdempotency.objects.filter(
                workspace=self.workspace, key=idempotency_key
            ).first()
            if done is not None:
                if done.request_hash != fingerprint:
                    raise Conflict(
                        "This idempotency key was already used with other parameters.",
                        code="idempotency_conflict",
                        details={"provider": "sandbox", "operation": done.operation},
                    )
                return decode(done.result)
            result = act(self._now(control))
            SandboxIdempotency.objects.create(
                workspace=self.workspace,
                key=idempotency_key,
                operation=operation,
                request_hash=fingerprint,
                result=encode(result),
            )
            return result

    def _row(self, model: type[Model], object_id: str, kind: str) -> Any:
        row = model.objects.filter(workspace=self.workspace, stripe_id=object_id).first()  # type: ignore[attr-defined]
        if row is None or not row.data:
            raise _missing(kind, object_id)
        return row

    def _get(self, model: type[Model], object_id: str, kind: str) -> Obj:
        return dict(self._row(model, object_id, kind).data)

    def _customer(self, customer_id: str) -> Obj:
        row = self._row(MirrorCustomer, customer_id, "customer")
        if row.deleted:
            raise _missing("customer", customer_id)
        return dict(row.data)

    def _put(self, obj: Obj) -> None:
        mirror_upsert(workspace=self.workspace, obj=obj)

    def _payment_method_of(self, customer: Obj, subscription: Obj | None = None) -> Obj | None:
        ref = (customer.get("invoice_settings") or {}).get("default_payment_method") or (
            (subscription or {}).get("default_payment_method")
        )
        if isinstance(ref, dict):
            return ref
        if not ref:
            return None
        row = MirrorPaymentMethod.objects.filter(workspace=self.workspace, stripe_id=ref).first()
        return dict(row.data) if row is not None else None

    def _price(self, price_id: str) -> Obj:
        """A price with its product expanded, as subscription items carry it."""
        price = self._get(MirrorPrice, price_id, "price")
        product_ref = price.get("product")
        if isinstance(product_ref, str) and product_ref:
            row = MirrorProduct.objects.filter(
                workspace=self.workspace, stripe_id=product_ref
            ).first()
            if row is not None and row.data:
                price["product"] = dict(row.data)
        return price

    def _live_subscription(self, subscription_id: str) -> Obj:
        sub = self._get(MirrorSubscription, subscription_id, "subscription")
        if sub.get("status") not in LIVE_STATUSES:
            raise PreconditionFailed(
                f"Subscription {subscription_id} is {sub.get('status')}; it can no longer change.",
                code="subscription_not_active",
                details={"status": sub.get("status")},
            )
        return sub

    def _next_number(self, customer: Obj) -> str:
        sequence = int(customer.get("next_invoice_sequence") or 1)
        customer["next_invoice_sequence"] = sequence + 1
        return f"{customer.get('invoice_prefix') or 'SBX'}-{sequence:04d}"

    def _bill_now(
        self,
        *,
        now: datetime,
        key: str,
        customer: Obj,
        subscription: Obj,
        lines: list[Obj],
        billing_reason: str,
    ) -> Obj:
        """Finalize an invoice of ``lines`` at once, apply the customer balance, and collect it.

        ``lines`` hold ``description, amount, price, quantity, item_id, proration,
        period_start, period_end``. Charged to the default card when the
        subscription charges automatically (an expired card fails with
        ``expired_card``); a ``send_invoice`` subscription leaves it open until due.
        """
        currency = str(subscription.get("currency") or customer.get("currency") or "usd")
        invoice_id = self._id("in", key)
        built = [
            objects.line_item(
                id=self._id("il", key, n),
                invoice_id=invoice_id,
                amount=int(line["amount"]),
                currency=currency,
                description=line["description"],
                period_start=line["period_start"],
                period_end=line["period_end"],
                price=line.get("price"),
                quantity=line.get("quantity"),
                subscription_id=subscription["id"],
                subscription_item_id=line.get("item_id"),
                proration=bool(line.get("proration")),
            )
            for n, line in enumerate(lines)
        ]
        total = sum(int(line["amount"]) for line in lines)
        balance = int(customer.get("balance") or 0)
        amount_due = max(0, total + balance)
        pm = self._payment_method_of(customer, subscription)
        charge_obj: Obj | None = None
        payment_intent: str | None = None
        status, paid_at, attempts, next_attempt, due = "open", None, 0, None, None
        if amount_due == 0:
            status, paid_at = "paid", now
        elif subscription.get("collection_method") == "send_invoice":
            due = now + timedelta(days=int(subscription.get("days_until_due") or 30))
        elif pm is not None:
            payment_intent = self._id("pi", key)
            failure = "expired_card" if _card_expired(pm, now) else None
            charge_obj = objects.charge(
                id=self._id("ch", key),
                customer_id=customer["id"],
                amount=amount_due,
                currency=currency,
                created=now,
                payment_method=pm,
                payment_intent=payment_intent,
                description="Subscription update",
                failure_code=failure,
                receipt_email=customer.get("email"),
            )
            attempts = 1
            if failure is None:
                status, paid_at = "paid", now
            else:
                next_attempt = now + timedelta(days=3)
        invoice_obj = objects.invoice(
            id=invoice_id,
            customer=customer,
            number=self._next_number(customer),
            created=now,
            lines=built,
            status=status,
            period_start=now,
            period_end=now,
            subscription_id=subscription["id"],
            collection_method=str(subscription.get("collection_method") or "charge_automatically"),
            billing_reason=billing_reason,
            due_date=due,
            paid_at=paid_at,
            payment_intent=payment_intent,
            attempt_count=attempts,
            next_payment_attempt=next_attempt,
            starting_balance=balance,
            default_payment_method=(pm or {}).get("id"),
        )
        new_balance = int(invoice_obj["ending_balance"] or 0)
        if new_balance != balance:
            self._put(
                objects.balance_transaction(
                    id=self._id("cbtxn", key),
                    customer_id=customer["id"],
                    amount=new_balance - balance,
                    currency=currency,
                    created=now,
                    ending_balance=new_balance,
                    type="applied_to_invoice",
                    invoice_id=invoice_id,
                )
            )
            customer["balance"] = new_balance
        self._put(customer)
        self._put(invoice_obj)
        if charge_obj is not None:
            self._put(charge_obj)
        subscription["latest_invoice"] = invoice_id
        return invoice_obj

    @staticmethod
    def _result(sub: Obj) -> SubscriptionResult:
        item = plan_item(sub)
        return SubscriptionResult(
            subscription_id=sub["id"],
            status=sub["status"],
            trial_end=_ts(sub.get("trial_end")),
            cancel_at_period_end=bool(sub.get("cancel_at_period_end")),
            cancel_at=_ts(sub.get("cancel_at")),
            canceled_at=_ts(sub.get("canceled_at")),
            pause_collection=sub.get("pause_collection"),
            quantity=int(item["quantity"]) if item else None,
            schedule_id=sub.get("schedule") or "",
        )

    # --- reads ----------------------------------------------------------------------

    def fetch_customer_bundle(self, customer_id: str) -> CustomerBundle:
        self._read()
        row = self._row(MirrorCustomer, customer_id, "customer")
        if row.deleted:
            return CustomerBundle(
                customer={"id": customer_id, "object": "customer", "deleted": True}
            )
        ws = self.workspace

        def data(model: type[Model], **filters: Any) -> list[Obj]:
            rows = model.objects.filter(workspace=ws, **filters).order_by("-created", "stripe_id")  # type: ignore[attr-defined]
            return [dict(r.data) for r in rows if r.data]

        subscriptions = data(MirrorSubscription, customer_id=customer_id)
        price_ids = {
            objects_id
            for sub in subscriptions
            for item in (sub.get("items") or {}).get("data") or []
            if (objects_id := (item.get("price") or {}).get("id"))
        }
        prices = data(MirrorPrice, stripe_id__in=price_ids)
        product_ids = {objects.price_product_id(p) for p in prices}
        return CustomerBundle(
            customer=dict(row.data),
            subscriptions=subscriptions,
            invoices=data(MirrorInvoice, customer_id=customer_id),
            charges=data(MirrorCharge, customer_id=customer_id),
            refunds=data(MirrorRefund, customer_id=customer_id),
            payment_methods=data(MirrorPaymentMethod, customer_id=customer_id),
            balance_transactions=data(MirrorBalanceTransaction, customer_id=customer_id),
            prices=prices,
            products=data(MirrorProduct, stripe_id__in=product_ids),
        )

    def find_customers_by_email(self, email: str) -> list[StripeObject]:
        self._read()
        rows = MirrorCustomer.objects.filter(
            workspace=self.workspace, email=email.strip().lower(), deleted=False
        ).order_by("-created")
        return [dict(r.data) for r in rows if r.data]

    def list_objects(self, resource: str, *, cursor: str | None, limit: int = 100) -> Page:
        self._read()
        model = _resource_model(resource)
        rows = model.objects.filter(workspace=self.workspace).order_by("stripe_id")  # type: ignore[attr-defined]
        if cursor:
            rows = rows.filter(stripe_id__gt=cursor)
        limit = max(1, min(int(limit), 100))
        page = list(rows[: limit + 1])
        has_more = len(page) > limit
        page = page[:limit]
        return Page(
            objects=[dict(r.data) for r in page if r.data],
            has_more=has_more,
            next_cursor=page[-1].stripe_id if has_more and page else None,
        )

    def retrieve_object(self, resource: str, object_id: str) -> StripeObject:
        self._read()
        if resource.strip().lower().removesuffix("s") == "subscription_schedule":
            return self._schedule(object_id)
        model = _resource_model(resource)
        row = self._row(model, object_id, resource.removesuffix("s"))
        if isinstance(row, MirrorCustomer) and row.deleted:
            return {"id": object_id, "object": "customer", "deleted": True}
        return dict(row.data)

    def _schedule(self, schedule_id: str) -> Obj:
        row = MirrorSubscription.objects.filter(
            workspace=self.workspace, schedule_id=schedule_id
        ).first()
        if row is None:
            raise _missing("subscription_schedule", schedule_id)
        sub = dict(row.data)
        item = plan_item(sub) or {}
        meta = sub.get("metadata") or {}
        switch_at = int(meta.get("pending_change_at") or 0)
        return {
            "id": schedule_id,
            "object": "subscription_schedule",
            "customer": sub.get("customer"),
            "end_behavior": "release",
            "metadata": {},
            "phases": [
                {
                    "end_date": switch_at,
                    "items": [
                        {
                            "price": (item.get("price") or {}).get("id"),
                            "quantity": item.get("quantity"),
                        }
                    ],
                    "proration_behavior": "none",
                    "start_date": item.get("current_period_start"),
                },
                {
                    "end_date": None,
                    "items": [
                        {"price": meta.get("pending_price_id"), "quantity": item.get("quantity")}
                    ],
                    "proration_behavior": "none",
                    "start_date": switch_at,
                },
            ],
            "status": "active",
            "subscription": sub["id"],
        }

    # --- writes: links and invoices ---------------------------------------------------

    def create_payment_link(
        self, *, customer_id: str, invoice_id: str | None, idempotency_key: str
    ) -> LinkResult:
        params = {"customer_id": customer_id, "invoice_id": invoice_id}

        def act(now: datetime) -> LinkResult:
            customer = self._customer(customer_id)
            if invoice_id:
                invoice = self._get(MirrorInvoice, invoice_id, "invoice")
                if invoice.get("customer") != customer_id:
                    raise _missing("invoice", invoice_id)
                if invoice.get("status") != "open":
                    raise PreconditionFailed(
                        f"Invoice {invoice_id} is {invoice.get('status')}; only an open invoice can be paid.",
                        code="invoice_not_open",
                        details={"status": invoice.get("status")},
                    )
            else:
                row = (
                    MirrorInvoice.objects.filter(
                        workspace=self.workspace,
                        customer_id=customer_id,
                        status="open",
                        amount_remaining__gt=0,
                    )
                    .order_by("-created")
                    .first()
                )
                invoice = dict(row.data) if row is not None else None
            if invoice is not None:
                return LinkResult(
                    url=invoice.get("hosted_invoice_url")
                    or objects.hosted_invoice_url(invoice["id"]),
                    kind="hosted_invoice",
                    object_id=invoice["id"],
                )
            session_id = self._id("cs", idempotency_key)
            return LinkResult(
                url=f"{SANDBOX_HOST}/c/{session_id}?customer={customer['id']}",
                kind="checkout",
                object_id=session_id,
                expires_at=now + timedelta(hours=24),
            )

        return self._write("create_payment_link", idempotency_key, params, act)

    def resend_invoice(self, *, invoice_id: str, idempotency_key: str) -> InvoiceSendResult:
        def act(now: datetime) -> InvoiceSendResult:
            invoice = self._get(MirrorInvoice, invoice_id, "invoice")
            status = invoice.get("status")
            if status in {"draft", "void"}:
                raise PreconditionFailed(
                    f"Invoice {invoice_id} is {status}; only a finalized invoice can be sent.",
                    code="invoice_not_sendable",
                    details={"status": status},
                )
            emailed = invoice.get("collection_method") == "send_invoice" and status == "open"
            return InvoiceSendResult(
                invoice_id=invoice_id,
                method="email" if emailed else "link",
                hosted_invoice_url=invoice.get("hosted_invoice_url")
                or objects.hosted_invoice_url(invoice_id),
                invoice_pdf=invoice.get("invoice_pdf") or objects.invoice_pdf_url(invoice_id),
            )

        return self._write("resend_invoice", idempotency_key, {"invoice_id": invoice_id}, act)

    def payment_method_update_link(
        self, *, customer_id: str, return_url: str, idempotency_key: str
    ) -> LinkResult:
        if not re.match(r"^https?://", return_url or ""):
            raise ValidationFailed("return_url must be an http(s) URL.", code="invalid_return_url")

        def act(now: datetime) -> LinkResult:
            self._customer(customer_id)
            session_id = self._id("bps", idempotency_key)
            return LinkResult(
                url=f"{SANDBOX_HOST}/p/{session_id}?flow=payment_method_update",
                kind="billing_portal",
                object_id=session_id,
            )

        return self._write(
            "payment_method_update_link",
            idempotency_key,
            {"customer_id": customer_id, "return_url": return_url},
            act,
        )

    # --- writes: money ----------------------------------------------------------------

    def apply_credit(
        self, *, customer_id: str, amount: Money, description: str, idempotency_key: str
    ) -> CreditResult:
        if amount.amount <= 0:
            raise ValidationFailed("A credit must be a positive amount.", code="invalid_amount")

        def act(now: datetime) -> CreditResult:
            customer = self._customer(customer_id)
            currency = str(customer.get("currency") or "").upper()
            if currency and currency != amount.currency:
                raise ValidationFailed(
                    f"The customer's balance is in {currency}; the credit is in {amount.currency}.",
                    code="currency_mismatch",
                )
            ending = int(customer.get("balance") or 0) - amount.amount
            txn = objects.balance_transaction(
                id=self._id("cbtxn", idempotency_key),
                customer_id=customer_id,
                amount=-amount.amount,
                currency=amount.currency,
                created=now,
                ending_balance=ending,
                type="adjustment",
                description=description or None,
            )
            customer["balance"] = ending
            customer["currency"] = amount.currency.lower()
            self._put(customer)
            self._put(txn)
            return CreditResult(
                transaction_id=txn["id"],
                amount=amount,
                ending_balance=_money(ending, amount.currency),
            )

        return self._write(
            "apply_credit",
            idempotency_key,
            {"customer_id": customer_id, "amount": amount, "description": description},
            act,
        )

    def refund(
        self,
        *,
        charge_id: str,
        amount: Money,
        reason: str,
        idempotency_key: str,
        metadata: dict[str, str] | None = None,
    ) -> RefundResult:
        if amount.amount <= 0:
            raise ValidationFailed("A refund must be a positive amount.", code="invalid_amount")

        def act(now: datetime) -> RefundResult:
            charge = self._get(MirrorCharge, charge_id, "charge")
            if charge.get("status") != "succeeded":
                raise PreconditionFailed(
                    f"Charge {charge_id} did not succeed; there is nothing to refund.",
                    code="charge_not_refundable",
                    details={"status": charge.get("status")},
                )
            if charge.get("disputed"):
                raise PreconditionFailed(
                    f"Charge {charge_id} is disputed; it is settled through the dispute, not a refund.",
                    code="charge_disputed",
                )
            currency = str(charge["currency"]).upper()
            if currency != amount.currency:
                raise ValidationFailed(
                    f"The charge is in {currency}; the refund is in {amount.currency}.",
                    code="currency_mismatch",
                )
            remainder = int(charge.get("amount_captured") or 0) - int(
                charge.get("amount_refunded") or 0
            )
            if remainder <= 0:
                raise PreconditionFailed(
                    f"Charge {charge_id} has already been refunded in full.",
                    code="charge_already_refunded",
                )
            if amount.amount > remainder:
                raise PreconditionFailed(
                    f"At most {_money(remainder, currency)} of charge {charge_id} can still be refunded.",
                    code="refund_exceeds_remainder",
                    details={"refundable": _money(remainder, currency).to_dict()},
                )
            stripe_reason = reason if reason in STRIPE_REFUND_REASONS else "requested_by_customer"
            refund_obj = objects.refund(
                id=self._id("re", idempotency_key),
                charge_id=charge_id,
                payment_intent=charge.get("payment_intent"),
                amount=amount.amount,
                currency=currency,
                created=now,
                reason=stripe_reason,
                metadata={**(metadata or {}), "billing_desk_reason": reason},
            )
            refunds = list((charge.get("refunds") or {}).get("data") or [])
            refunds.insert(0, refund_obj)
            refunded = int(charge.get("amount_refunded") or 0) + amount.amount
            charge["amount_refunded"] = refunded
            charge["refunded"] = refunded >= int(charge.get("amount_captured") or 0)
            charge["refunds"] = {
                **(charge.get("refunds") or {}),
                "data": refunds,
                "total_count": len(refunds),
            }
            self._put(charge)
            return RefundResult(
                refund_id=refund_obj["id"],
                charge_id=charge_id,
                amount=amount,
                status="succeeded",
                reason=stripe_reason,
            )

        return self._write(
            "refund",
            idempotency_key,
            {
                "charge_id": charge_id,
                "amount": amount,
                "reason": reason,
                "metadata": metadata or {},
            },
            act,
        )

    # --- writes: subscriptions ----------------------------------------------------------

    def extend_trial(
        self, *, subscription_id: str, trial_end: datetime, idempotency_key: str
    ) -> SubscriptionResult:
        def act(now: datetime) -> SubscriptionResult:
            sub = self._get(MirrorSubscription, subscription_id, "subscription")
            if sub.get("status") != "trialing":
                raise PreconditionFailed(
                    f"Subscription {subscription_id} is {sub.get('status')}, not trialing; "
                    "only a trial can be extended.",
                    code="not_trialing",
                    details={"status": sub.get("status")},
                )
            if trial_end <= now:
                raise ValidationFailed(
                    "The new trial end must be in the future.", code="invalid_trial_end"
                )
            end = objects.unix(trial_end)
            sub["trial_end"] = end
            for item in (sub.get("items") or {}).get("data") or []:
                item["current_period_end"] = end
            self._put(sub)
            return self._result(sub)

        return self._write(
            "extend_trial",
            idempotency_key,
            {"subscription_id": subscription_id, "trial_end": trial_end},
            act,
        )

    def pause_subscription(
        self,
        *,
        subscription_id: str,
        behavior: str,
        resumes_at: datetime | None,
        idempotency_key: str,
    ) -> SubscriptionResult:
        if behavior not in PAUSE_BEHAVIORS:
            raise ValidationFailed(
                f"behavior must be one of {', '.join(sorted(PAUSE_BEHAVIORS))}.",
                code="invalid_pause_behavior",
            )

        def act(now: datetime) -> SubscriptionResult:
            sub = self._live_subscription(subscription_id)
            if resumes_at is not None and resumes_at <= now:
                raise ValidationFailed(
                    "resumes_at must be in the future.", code="invalid_resumes_at"
                )
            sub["pause_collection"] = {"behavior": behavior, "resumes_at": objects.unix(resumes_at)}
            self._put(sub)
            return self._result(sub)

        return self._write(
            "pause_subscription",
            idempotency_key,
            {"subscription_id": subscription_id, "behavior": behavior, "resumes_at": resumes_at},
            act,
        )

    def _plan_change(
        self, sub: Obj, new_price_id: str, at: datetime
    ) -> tuple[PlanChangePreview, Obj, Obj]:
        item = plan_item(sub)
        if item is None:
            raise PreconditionFailed("The subscription has no plan item.", code="no_plan_item")
        new_price = self._price(new_price_id)
        old_price = item["price"]
        if new_price_id == old_price.get("id"):
            raise PreconditionFailed(
                "The subscription is already on this price.", code="same_price"
            )
        if not new_price.get("active", True) or not new_price.get("recurring"):
            raise PreconditionFailed(
                "The target price is not an active recurring price.", code="price_not_available"
            )
        if str(new_price.get("currency")).lower() != str(old_price.get("currency")).lower():
            raise PreconditionFailed(
                "The target price is in another currency.", code="currency_mismatch"
            )
        old_rec, new_rec = old_price.get("recurring") or {}, new_price.get("recurring") or {}
        if (old_rec.get("interval"), old_rec.get("interval_count")) != (
            new_rec.get("interval"),
            new_rec.get("interval_count"),
        ):
            raise PreconditionFailed(
                "Changing the billing interval is not supported here; choose a price with the "
                "same interval.",
                code="interval_change_unsupported",
            )
        currency = str(old_price["currency"]).upper()
        qty = int(item.get("quantity") or 1)
        old_amount = int(old_price.get("unit_amount") or 0) * qty
        new_amount = int(new_price.get("unit_amount") or 0) * qty
        direction = "upgrade" if new_amount >= old_amount else "downgrade"
        start = _ts(item.get("current_period_start")) or at
        end = _ts(item.get("current_period_end")) or at
        at = min(max(at, start), end)
        others = sum(
            int(i["price"].get("unit_amount") or 0) * int(i.get("quantity") or 0)
            for i in (sub.get("items") or {}).get("data") or []
            if i["id"] != item["id"]
        )
        lines: list[ProrationLine] = []
        due_now = 0
        if sub.get("status") == "trialing":
            effective = at
        elif direction == "downgrade":
            effective = end
        else:
            effective = at
            label = proration_date_label(at)
            old_name = objects.price_product_name(old_price)
            new_name = objects.price_product_name(new_price)
            qty_label = f"{qty} × " if qty != 1 else ""
            credit = -prorate(old_amount, period_start=start, period_end=end, at=at)
            debit = prorate(new_amount, period_start=start, period_end=end, at=at)
            lines = [
                ProrationLine(
                    description=f"Unused time on {qty_label}{old_name} after {label}",
                    amount=_money(credit, currency),
                    period_start=at,
                    period_end=end,
                    proration=True,
                ),
                ProrationLine(
                    description=f"Remaining time on {qty_label}{new_name} after {label}",
                    amount=_money(debit, currency),
                    period_start=at,
                    period_end=end,
                    proration=True,
                ),
            ]
            customer_row = MirrorCustomer.objects.filter(
                workspace=self.workspace, stripe_id=sub["customer"]
            ).first()
            balance = customer_row.balance if customer_row is not None else 0
            due_now = max(0, credit + debit + balance)
        preview = PlanChangePreview(
            subscription_id=sub["id"],
            current_price_id=old_price["id"],
            new_price_id=new_price_id,
            direction=direction,  # type: ignore[arg-type]
            lines=lines,
            amount_due_now=_money(due_now, currency),
            new_recurring_amount=_money(others + new_amount, currency),
            effective_date=effective,
            proration_date=at,
        )
        return preview, item, new_price

    def preview_plan_change(
        self, *, subscription_id: str, new_price_id: str, at: datetime | None = None
    ) -> PlanChangePreview:
        now = self._read()
        sub = self._live_subscription(subscription_id)
        preview, _, _ = self._plan_change(sub, new_price_id, at or now)
        return preview

    def change_plan(
        self,
        *,
        subscription_id: str,
        new_price_id: str,
        proration_date: datetime | None,
        idempotency_key: str,
    ) -> PlanChangeResult:
        def act(now: datetime) -> PlanChangeResult:
            sub = self._live_subscription(subscription_id)
            preview, item, new_price = self._plan_change(sub, new_price_id, proration_date or now)
            meta = dict(sub.get("metadata") or {})
            for key in ("pending_price_id", "pending_change_at", "pending_item_id"):
                meta.pop(key, None)
            if preview.direction == "downgrade" and sub.get("status") != "trialing":
                schedule_id = self._id("sub_sched", idempotency_key)
                meta.update(
                    pending_price_id=new_price_id,
                    pending_change_at=str(objects.unix(preview.effective_date)),
                    pending_item_id=item["id"],
                )
                sub["metadata"] = meta
                sub["schedule"] = schedule_id
                self._put(sub)
                return PlanChangeResult(
                    subscription_id=subscription_id,
                    direction="downgrade",
                    new_price_id=new_price_id,
                    effective_date=preview.effective_date,
                    schedule_id=schedule_id,
                )
            sub["metadata"] = meta
            sub["schedule"] = None
            old_price = item["price"]
            item["price"] = new_price
            invoice_id = ""
            if preview.lines:
                customer = self._customer(str(sub["customer"]))
                invoice = self._bill_now(
                    now=now,
                    key=idempotency_key,
                    customer=customer,
                    subscription=sub,
                    billing_reason="subscription_update",
                    lines=[
                        {
                            "description": line.description,
                            "amount": line.amount.amount,
                            "price": new_price if n else old_price,
                            "quantity": item.get("quantity"),
                            "item_id": item["id"],
                            "proration": True,
                            "period_start": line.period_start,
                            "period_end": line.period_end,
                        }
                        for n, line in enumerate(preview.lines)
                    ],
                )
                invoice_id = invoice["id"]
            self._put(sub)
            return PlanChangeResult(
                subscription_id=subscription_id,
                direction=preview.direction,
                new_price_id=new_price_id,
                effective_date=preview.effective_date,
                invoice_id=invoice_id,
            )

        return self._write(
            "change_plan",
            idempotency_key,
            {
                "subscription_id": subscription_id,
                "new_price_id": new_price_id,
                "proration_date": proration_date,
            },
            act,
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
        def act(now: datetime) -> SubscriptionResult:
            sub = self._live_subscription(subscription_id)
            details = {
                "comment": comment or None,
                "feedback": reason if reason in CANCELLATION_FEEDBACK else "other",
                "reason": "cancellation_requested",
            }
            sub["cancellation_details"] = details
            if at_period_end:
                item = plan_item(sub) or {}
                end = sub.get("trial_end") if sub.get("status") == "trialing" else None
                sub["cancel_at_period_end"] = True
                sub["cancel_at"] = end or item.get("current_period_end")
                sub["canceled_at"] = objects.unix(now)
            else:
                sub["status"] = "canceled"
                sub["cancel_at_period_end"] = False
                sub["canceled_at"] = objects.unix(now)
                sub["ended_at"] = objects.unix(now)
                sub["cancel_at"] = None
            self._put(sub)
            return self._result(sub)

        return self._write(
            "cancel_subscription",
            idempotency_key,
            {
                "subscription_id": subscription_id,
                "at_period_end": at_period_end,
                "reason": reason,
                "comment": comment,
            },
            act,
        )

    def adjust_seats(
        self, *, subscription_id: str, item_id: str, quantity: int, idempotency_key: str
    ) -> SubscriptionResult:
        if not isinstance(quantity, int) or isinstance(quantity, bool) or quantity < 1:
            raise ValidationFailed(
                "Seats must be a whole number of at least 1.", code="invalid_quantity"
            )

        def act(now: datetime) -> SubscriptionResult:
            sub = self._live_subscription(subscription_id)
            items = (sub.get("items") or {}).get("data") or []
            item = next((i for i in items if i["id"] == item_id), None)
            if item is None:
                raise _missing("subscription_item", item_id)
            old_qty = int(item.get("quantity") or 0)
            if quantity == old_qty:
                raise PreconditionFailed(
                    f"The subscription already has {quantity} seats.", code="no_change"
                )
            item["quantity"] = quantity
            price = item["price"]
            unit = int(price.get("unit_amount") or 0)
            start = _ts(item.get("current_period_start")) or now
            end = _ts(item.get("current_period_end")) or now
            if sub.get("status") != "trialing" and start <= now < end:
                name = objects.price_product_name(price)
                label = proration_date_label(now)
                credit = -prorate(unit * old_qty, period_start=start, period_end=end, at=now)
                debit = prorate(unit * quantity, period_start=start, period_end=end, at=now)
                base_line = {
                    "price": price,
                    "item_id": item_id,
                    "proration": True,
                    "period_start": now,
                    "period_end": end,
                }
                self._bill_now(
                    now=now,
                    key=idempotency_key,
                    customer=self._customer(str(sub["customer"])),
                    subscription=sub,
                    billing_reason="subscription_update",
                    lines=[
                        {
                            **base_line,
                            "description": f"Unused time on {old_qty} × {name} after {label}",
                            "amount": credit,
                            "quantity": old_qty,
                        },
                        {
                            **base_line,
                            "description": f"Remaining time on {quantity} × {name} after {label}",
                            "amount": debit,
                            "quantity": quantity,
                        },
                    ],
                )
            self._put(sub)
            return self._result(sub)

        return self._write(
            "adjust_seats",
            idempotency_key,
            {"subscription_id": subscription_id, "item_id": item_id, "quantity": quantity},
            act,
        )

    def apply_discount(
        self,
        *,
        subscription_id: str,
        percent_off: float,
        duration: str,
        duration_in_months: int | None,
        idempotency_key: str,
    ) -> DiscountResult:
        if not 0 < float(percent_off) <= 100:
            raise ValidationFailed(
                "percent_off must be above 0 and at most 100.", code="invalid_percent"
            )
        if duration not in DISCOUNT_DURATIONS:
            raise ValidationFailed(
                "duration must be once, repeating or forever.", code="invalid_duration"
            )
        if (duration == "repeating") != (duration_in_months is not None):
            raise ValidationFailed(
                "duration_in_months is required for a repeating discount, and only for it.",
                code="invalid_duration",
            )
        if duration_in_months is not None and duration_in_months < 1:
            raise ValidationFailed(
                "duration_in_months must be at least 1.", code="invalid_duration"
            )

        def act(now: datetime) -> DiscountResult:
            sub = self._live_subscription(subscription_id)
            coupon_obj = objects.coupon(
                id=self._id("coupon", idempotency_key),
                percent_off=float(percent_off),
                duration=duration,
                duration_in_months=duration_in_months,
                created=now,
            )
            end = None
            if duration == "repeating" and duration_in_months:
                from dateutil.relativedelta import relativedelta

                end = now + relativedelta(months=duration_in_months)
            discount_obj = objects.discount(
                id=self._id("di", idempotency_key),
                coupon=coupon_obj,
                customer_id=str(sub["customer"]),
                subscription_id=subscription_id,
                start=now,
                end=end,
            )
            for old in sub.get("discounts") or []:
                if isinstance(old, dict):
                    self._put({**old, "deleted": True})
            sub["discounts"] = [discount_obj]
            self._put(discount_obj)
            self._put(sub)
            return DiscountResult(
                subscription_id=subscription_id,
                coupon_id=coupon_obj["id"],
                percent_off=float(percent_off),
                duration=duration,
                duration_in_months=duration_in_months,
            )

        return self._write(
            "apply_discount",
            idempotency_key,
            {
                "subscription_id": subscription_id,
                "percent_off": float(percent_off),
                "duration": duration,
                "duration_in_months": duration_in_months,
            },
            act,
        )

    def extend_grace_period(
        self, *, subscription_id: str, invoice_id: str | None, until: datetime, idempotency_key: str
    ) -> SubscriptionResult:
        def act(now: datetime) -> SubscriptionResult:
            sub = self._live_subscription(subscription_id)
            if until <= now:
                raise ValidationFailed(
                    "The grace period must end in the future.", code="invalid_until"
                )
            meta = dict(sub.get("metadata") or {})
            meta["grace_period_until"] = str(objects.unix(until))
            sub["metadata"] = meta
            if invoice_id:
                invoice = self._get(MirrorInvoice, invoice_id, "invoice")
                if invoice.get("customer") != sub.get("customer"):
                    raise _missing("invoice", invoice_id)
                if invoice.get("status") != "open":
                    raise PreconditionFailed(
                        f"Invoice {invoice_id} is {invoice.get('status')}, not open.",
                        code="invoice_not_open",
                    )
                invoice["next_payment_attempt"] = objects.unix(until)
                if invoice.get("collection_method") == "send_invoice":
                    invoice["due_date"] = objects.unix(until)
                self._put(invoice)
            self._put(sub)
            return self._result(sub)

        return self._write(
            "extend_grace_period",
            idempotency_key,
            {"subscription_id": subscription_id, "invoice_id": invoice_id, "until": until},
            act,
        )

    # --- writes: customer details -----------------------------------------------------

    def update_tax_details(
        self,
        *,
        customer_id: str,
        tax_id: TaxIdInput | None,
        address: dict[str, str] | None,
        idempotency_key: str,
    ) -> TaxDetailsResult:
        if tax_id is None and not address:
            raise ValidationFailed("Give a tax id, an address, or both.", code="nothing_to_update")
        value = ""
        if tax_id is not None:
            value = re.sub(r"[\s]", "", tax_id.value or "").upper()
            if tax_id.type not in KNOWN_TAX_ID_TYPES:
                raise ValidationFailed(
                    f"Unknown tax id type {tax_id.type!r}.", code="invalid_tax_id_type"
                )
            pattern = TAX_ID_FORMATS.get(tax_id.type, re.compile(r"^[0-9A-Z.\-/]{3,30}$"))
            if not pattern.match(value):
                raise ValidationFailed(
                    f"{tax_id.value!r} is not a valid {tax_id.type} number.", code="invalid_tax_id"
                )
        if address:
            unknown = set(address) - set(ADDRESS_FIELDS)
            if unknown:
                raise ValidationFailed(
                    f"Unknown address fields: {', '.join(sorted(unknown))}.", code="invalid_address"
                )
            country = address.get("country")
            if country is not None and not re.match(r"^[A-Za-z]{2}$", country):
                raise ValidationFailed(
                    "country must be a two-letter ISO code.", code="invalid_address"
                )

        def act(now: datetime) -> TaxDetailsResult:
            customer = self._customer(customer_id)
            tax_ids = list((customer.get("tax_ids") or {}).get("data") or [])
            if tax_id is not None and not any(
                t["type"] == tax_id.type and t["value"] == value for t in tax_ids
            ):
                tax_ids.append(
                    objects.tax_id(
                        id=self._id("txi", idempotency_key),
                        customer_id=customer_id,
                        type=tax_id.type,
                        value=value,
                        created=now,
                    )
                )
                customer["tax_ids"] = {
                    **(customer.get("tax_ids") or {}),
                    "object": "list",
                    "data": tax_ids,
                    "has_more": False,
                    "total_count": len(tax_ids),
                }
            if address:
                merged = {**(customer.get("address") or {})}
                for name in ADDRESS_FIELDS:
                    if name in address:
                        text = (address[name] or "").strip()
                        merged[name] = (text.upper() if name == "country" else text) or None
                customer["address"] = merged
            self._put(customer)
            return TaxDetailsResult(
                customer_id=customer_id,
                tax_ids=[{"id": t["id"], "type": t["type"], "value": t["value"]} for t in tax_ids],
                address={k: v or "" for k, v in (customer.get("address") or {}).items()},
            )

        return self._write(
            "update_tax_details",
            idempotency_key,
            {
                "customer_id": customer_id,
                "tax_id": [tax_id.type, tax_id.value] if tax_id else None,
                "address": address or {},
            },
            act,
        )

    def ping(self) -> bool:
        return not sandbox_control_get(workspace=self.workspace).down


__all__ = ["SandboxProvider", "plan_item"]
