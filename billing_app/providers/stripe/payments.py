"""Stripe writes about money owed and paid: payment links, invoice resends, credits,
refunds, and the hosted page where a customer updates their card."""

from __future__ import annotations

from typing import Any, Literal

from ...errors import BillingDeskError, PreconditionFailed, ValidationFailed
from ...money import Money
from ..arguments import amount_positive_check, refund_reason_check, return_url_check
from ..base import (
    NO_CHANGES,
    STRIPE_REFUND_REASONS,
    BalanceChange,
    CreditResult,
    InvoiceSendResult,
    LinkResult,
    RefundResult,
)
from ..rules import charge_check_refundable
from . import readers as r
from .core import StripeCore
from .keys import action_tag, key_required

Obj = dict[str, Any]

REFUND_REASONS = STRIPE_REFUND_REASONS


class StripePayments(StripeCore):
    def create_payment_link(
        self, *, customer_id: str, invoice_id: str | None, idempotency_key: str
    ) -> LinkResult:
        """The open invoice's hosted page; with no open invoice, a Checkout Session in
        ``setup`` mode that saves a new card for the next automatic attempt.

        A ``payment``-mode Checkout for an arbitrary amount would not settle any
        Stripe invoice or balance, so the customer could end up paying twice; money
        owed is always on an invoice, and the invoice's own page collects it.
        """
        key = key_required(idempotency_key)
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
        key = key_required(idempotency_key)
        invoice = self.api.invoice_retrieve(invoice_id)
        if invoice.get("status") in {"draft", "void"}:
            raise PreconditionFailed(
                "A draft or void invoice cannot be sent.",
                code="invoice_not_sendable",
                details={"status": invoice.get("status")},
            )
        method: Literal["email", "link"] = "link"
        changes = NO_CHANGES
        if invoice.get("collection_method") == "send_invoice" and invoice.get("status") == "open":
            invoice = self.api.invoice_send(invoice_id, key=key)
            method = "email"
            changes = self._changed(invoice)
        return InvoiceSendResult(
            invoice_id=invoice["id"],
            method=method,
            hosted_invoice_url=str(invoice.get("hosted_invoice_url") or ""),
            invoice_pdf=str(invoice.get("invoice_pdf") or ""),
        ).with_changes(changes)

    def apply_credit(
        self, *, customer_id: str, amount: Money, description: str, idempotency_key: str
    ) -> CreditResult:
        key = key_required(idempotency_key)
        amount_positive_check(amount, what="credit")
        transaction = self.api.customer_balance_transaction_create(
            customer_id,
            {
                # Negative: money the customer holds against future invoices.
                "amount": -amount.amount,
                "currency": amount.currency.lower(),
                "description": description[:350] if description else "Billing Desk credit",
                **({"metadata": tag} if (tag := action_tag(key)) else {}),
            },
            key=key,
        )
        ending = Money(int(transaction.get("ending_balance") or 0), amount.currency)
        return CreditResult(
            transaction_id=transaction["id"], amount=amount, ending_balance=ending
        ).with_changes(
            self._changed(
                transaction, balances=(BalanceChange(customer_id=customer_id, balance=ending),)
            )
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
        key = key_required(idempotency_key)
        refund_reason_check(reason)
        amount_positive_check(amount, what="refund")
        charge = self.api.charge_retrieve(charge_id)
        params: dict[str, Any] = {"charge": charge_id, "amount": amount.amount, "reason": reason}
        metadata = action_tag(key, {str(k)[:40]: str(v)[:500] for k, v in (metadata or {}).items()})
        if metadata:
            params["metadata"] = metadata
        try:
            charge_check_refundable(
                charge, amount, window_days=self.workspace.refund_window_days, now=self.now()
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
        changes = self._changed(
            {**refund, "customer": refund.get("customer") or charge.get("customer")},
            self._reread_quietly("charge", charge_id),
        )
        return RefundResult(
            refund_id=refund["id"],
            charge_id=charge_id,
            amount=Money(int(refund.get("amount") or amount.amount), amount.currency),
            status=str(refund.get("status") or ""),
            reason=str(refund.get("reason") or reason),
        ).with_changes(changes)

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

    def payment_method_update_link(
        self, *, customer_id: str, return_url: str, idempotency_key: str
    ) -> LinkResult:
        key = key_required(idempotency_key)
        return_url_check(return_url)
        session = self.api.billing_portal_session_create(
            {
                "customer": customer_id,
                "return_url": return_url,
                "flow_data": {"type": "payment_method_update"},
            },
            key=key,
        )
        return LinkResult(url=session["url"], kind="billing_portal", object_id=session["id"])
