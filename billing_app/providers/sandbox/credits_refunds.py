"""Money moved back to the customer: balance credits and refunds, within Stripe's limits."""

from __future__ import annotations

from datetime import datetime

from ...errors import ValidationFailed
from ...models import MirrorCharge
from ...money import Money
from ..base import STRIPE_REFUND_REASONS, CreditResult, RefundResult
from ..rules import charge_check_refundable
from . import objects
from .state import SandboxState, _money


class SandboxCreditsRefunds(SandboxState):
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
                description=description[:350] if description else "Billing Desk credit",
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
        if reason not in STRIPE_REFUND_REASONS:
            raise ValidationFailed(
                f"A Stripe refund reason is one of {', '.join(sorted(STRIPE_REFUND_REASONS))}.",
                code="invalid_refund_reason",
            )
        if amount.amount <= 0:
            raise ValidationFailed("A refund must be a positive amount.", code="invalid_amount")

        def act(now: datetime) -> RefundResult:
            charge = self._get(MirrorCharge, charge_id, "charge")
            # The checks the Stripe provider makes before asking Stripe, on the same object shape.
            charge_check_refundable(
                charge, amount, window_days=self.workspace.refund_window_days, now=now
            )
            currency = amount.currency
            refund_obj = objects.refund(
                id=self._id("re", idempotency_key),
                charge_id=charge_id,
                payment_intent=charge.get("payment_intent"),
                amount=amount.amount,
                currency=currency,
                created=now,
                reason=reason,
                metadata=dict(metadata or {}),
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
                reason=reason,
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
