"""Invoices the simulation finalizes at once and collects, as Stripe does for a subscription update."""

from __future__ import annotations

from datetime import datetime, timedelta

from . import objects
from .state import Obj, SandboxState, _card_expired


class SandboxInvoicing(SandboxState):
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
