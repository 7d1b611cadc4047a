"""Invoices the simulation finalizes and collects, and the items waiting for the next one.

As Stripe does it:

* ``proration_behavior=create_prorations`` (a seat change) adds *pending invoice
  items* — here, invoice lines not yet on an invoice (``invoice: null``) — that the
  subscription's next invoice collects; nothing is charged at once;
* ``proration_behavior=always_invoice`` (an upgrade) and a renewal finalize an
  invoice at once with the pending items of the subscription swept into it, apply
  the customer balance (``starting_balance``) and collect it: charged to the default
  card when the subscription charges automatically, left open until due for
  ``send_invoice``;
* a charge that fails (an expired card) leaves the invoice open with a retry in
  three days, moves an active subscription to ``past_due``, and is announced as
  ``charge.failed`` + ``invoice.payment_failed`` (a paid one as ``charge.succeeded``
  + ``invoice.paid``) through the ``deliver`` port — the intake of Stripe's webhooks,
  so the payment-failure records are the same as a Stripe workspace's;
* the subscription's ``default_tax_rates`` tax every invoice it finalizes: an
  exclusive rate adds its tax on the lines after discounts (``total_taxes``, total =
  subtotal − discount + tax), an inclusive one is already in the prices.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

from ...errors import PreconditionFailed
from ...invoice_rules import exclusive_tax_rate
from ...models import MirrorInvoiceLine, MirrorSubscription
from . import objects
from .ports import deliver_event
from .state import Obj, SandboxState, _card_expired

RETRY_AFTER = timedelta(days=3)  # Stripe's Smart Retries: the next attempt three days later
CHARGE_DESCRIPTIONS = {
    "subscription_update": "Subscription update",
    "subscription_cycle": "Subscription update",
    "subscription_create": "Subscription creation",
}


def _exclusive_tax(subscription: Obj) -> tuple[Decimal | None, str | None]:
    """The percentage the subscription's ``default_tax_rates`` add on top, and the id of
    the first such rate (the sandbox's invoices carry one tax entry); ``(None, None)``
    without one."""
    rates = list(subscription.get("default_tax_rates") or [])
    share = exclusive_tax_rate(rates)
    if share is None:
        return None, None
    first = next(
        r
        for r in rates
        if isinstance(r, dict) and not r.get("inclusive") and r.get("active") is not False
    )
    return share * 100, str(first.get("id") or "") or None


def _pending_subscription(line: Obj) -> str:
    details = (line.get("parent") or {}).get("subscription_item_details") or {}
    return str(details.get("subscription") or "")


def _line_item(line: Obj, *, id: str, invoice_id: str, currency: str, subscription_id: str) -> Obj:
    """An invoice line of the subscription from ``line`` (``description, amount, price,
    quantity, item_id, proration, period_start, period_end``)."""
    return objects.line_item(
        id=id,
        invoice_id=invoice_id,
        amount=int(line["amount"]),
        currency=currency,
        description=line["description"],
        period_start=line["period_start"],
        period_end=line["period_end"],
        price=line.get("price"),
        quantity=line.get("quantity"),
        subscription_id=subscription_id,
        subscription_item_id=line.get("item_id"),
        proration=bool(line.get("proration")),
    )


class SandboxInvoicing(SandboxState):
    # --- pending invoice items ----------------------------------------------------------

    def _pending_items(self, subscription_id: str) -> list[Obj]:
        """The subscription's invoice items not yet on an invoice, oldest first."""
        rows = MirrorInvoiceLine.objects.filter(
            workspace=self.workspace, invoice_id="", stripe_id__startswith="ii_"
        ).order_by("period_start", "stripe_id")
        return [
            dict(r.data)
            for r in rows
            if r.data and _pending_subscription(r.data) == subscription_id
        ]

    def _add_pending_item(
        self,
        *,
        item_id: str,
        subscription: Obj,
        line: Obj,
    ) -> Obj:
        """A pending invoice item (``invoiceitem``), kept as a line of the upcoming invoice."""
        currency = str(subscription.get("currency") or "usd")
        pending = _line_item(
            {**line, "proration": True},
            id=item_id,
            invoice_id="",
            currency=currency,
            subscription_id=subscription["id"],
        )
        pending["invoice"] = None
        pending["parent"]["subscription_item_details"]["invoice_item"] = item_id
        self._put(pending)
        return pending

    def invoice_pending_items(self, *, subscription_id: str, idempotency_key: str) -> str:
        """Invoice the subscription's pending items now and collect the invoice (Stripe:
        ``invoices.create(subscription=..., pending_invoice_items_behavior="include")``,
        finalized and paid). Returns the invoice id; ``nothing_to_invoice`` when none wait."""

        def act(now: datetime) -> str:
            sub = self._get(MirrorSubscription, subscription_id, "subscription")
            if not self._pending_items(subscription_id):
                raise PreconditionFailed(
                    "The subscription has no pending invoice items.", code="nothing_to_invoice"
                )
            invoice = self._bill_now(
                now=now,
                key=idempotency_key,
                customer=self._customer(str(sub["customer"])),
                subscription=sub,
                lines=[],
                billing_reason="manual",
            )
            self._put(sub)
            return str(invoice["id"])

        return self._write(
            "invoice_pending_items", idempotency_key, {"subscription_id": subscription_id}, act
        )

    # --- invoices ---------------------------------------------------------------------

    def _bill_now(
        self,
        *,
        now: datetime,
        key: str,
        customer: Obj,
        subscription: Obj,
        lines: list[Obj],
        billing_reason: str,
        period: tuple[datetime, datetime] | None = None,
        discount: Obj | None = None,
        paused_status: str | None = None,
    ) -> Obj:
        """Finalize an invoice of ``lines`` and the subscription's pending items, and collect it.

        ``lines`` hold ``description, amount, price, quantity, item_id, proration,
        period_start, period_end``. ``period``: the invoice's period (a renewal's is
        the period that ended; an update's is the moment itself). ``paused_status``
        (``draft``, ``void``, ``uncollectible``): collection is paused, so the invoice
        takes that status, applies no balance and is not charged.
        """
        currency = str(subscription.get("currency") or customer.get("currency") or "usd")
        invoice_id = self._id("in", key)
        built = [
            {**pending, "invoice": invoice_id}
            for pending in self._pending_items(str(subscription["id"]))
        ]
        built += [
            _line_item(
                line,
                id=self._id("il", key, n),
                invoice_id=invoice_id,
                currency=currency,
                subscription_id=subscription["id"],
            )
            for n, line in enumerate(lines)
        ]
        balance = int(customer.get("balance") or 0) if paused_status is None else 0
        pm = self._payment_method_of(customer, subscription)
        start, end = period or (now, now)
        number = self._next_number(customer)
        tax_percent, tax_rate_id = _exclusive_tax(subscription)

        def build(status: str, **collection: object) -> Obj:
            return objects.invoice(
                id=invoice_id,
                customer=customer,
                number=number,
                created=now,
                lines=built,
                status=status,
                period_start=start,
                period_end=end,
                subscription_id=subscription["id"],
                collection_method=str(
                    subscription.get("collection_method") or "charge_automatically"
                ),
                billing_reason=billing_reason,
                starting_balance=balance,
                default_payment_method=(pm or {}).get("id"),
                discount=discount,
                tax_rate_percent=tax_percent,
                tax_rate_id=tax_rate_id,
                **collection,  # type: ignore[arg-type]
            )

        # The amount due after discount and balance, as the finalized invoice states it.
        amount_due = int(build("open")["amount_due"])
        charge_obj: Obj | None = None
        collection: dict[str, object] = {}
        status, failed = "open", False
        if paused_status is not None:
            status = paused_status
        elif amount_due == 0:
            status, collection["paid_at"] = "paid", now
        elif subscription.get("collection_method") == "send_invoice":
            collection["due_date"] = now + timedelta(
                days=int(subscription.get("days_until_due") or 30)
            )
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
                description=CHARGE_DESCRIPTIONS.get(billing_reason),
                failure_code=failure,
                receipt_email=customer.get("email"),
            )
            collection.update(payment_intent=payment_intent, attempt_count=1)
            if failure is None:
                status, collection["paid_at"] = "paid", now
            else:
                failed = True
                collection["next_payment_attempt"] = now + RETRY_AFTER
        invoice_obj = build(status, **collection)
        new_balance = int(invoice_obj["ending_balance"] or 0)
        if paused_status is None and new_balance != balance:
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
        if failed:
            customer["delinquent"] = True
            if subscription.get("status") == "active":
                subscription["status"] = "past_due"
        subscription["latest_invoice"] = invoice_id
        self._put(customer)
        self._put(invoice_obj)
        if charge_obj is not None:
            self._put(charge_obj)
            # The hooks read the current state: the subscription is stored before they run.
            self._put(subscription)
            self._announce_payment(charge_obj, invoice_obj, failed=failed, at=now)
        return invoice_obj

    def _announce_payment(self, charge: Obj, invoice: Obj, *, failed: bool, at: datetime) -> None:
        """The events Stripe sends for a payment attempt on an invoice."""
        kinds = (
            ("charge.failed", "invoice.payment_failed")
            if failed
            else ("charge.succeeded", "invoice.paid")
        )
        seq = f"attempt{invoice.get('attempt_count') or 1}"
        deliver_event(workspace=self.workspace, event_type=kinds[0], obj=charge, at=at, seq=seq)
        deliver_event(workspace=self.workspace, event_type=kinds[1], obj=invoice, at=at, seq=seq)
