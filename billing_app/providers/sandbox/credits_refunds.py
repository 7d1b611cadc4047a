"""Money moved back to the customer: balance credits and refunds, within Stripe's limits."""

from __future__ import annotations

from datetime import datetime

from ...errors import PreconditionFailed, ValidationFailed
from ...models import MirrorCharge
from ...money import Money
from ..base import STRIPE_REFUND_REASONS, CreditResult, RefundResult
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
