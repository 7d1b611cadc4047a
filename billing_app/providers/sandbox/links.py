"""Links and invoices sent: a payment link, an invoice re-sent, a payment-method update page."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

from ...errors import PreconditionFailed, ValidationFailed
from ...models import MirrorCustomer, MirrorInvoice
from ..base import InvoiceSendResult, LinkResult
from . import objects
from .state import SANDBOX_HOST, Obj, SandboxState


class SandboxLinks(SandboxState):
    def create_payment_link(
        self, *, customer_id: str, invoice_id: str | None, idempotency_key: str
    ) -> LinkResult:
        params = {"customer_id": customer_id, "invoice_id": invoice_id}

        def act(now: datetime) -> LinkResult:
            customer = self._row(MirrorCustomer, customer_id, "customer")
            invoice: Obj | None
            if invoice_id:
                invoice = self._get(MirrorInvoice, invoice_id, "invoice")
                if invoice.get("customer") != customer_id:
                    raise ValidationFailed(
                        "That invoice belongs to another customer.", code="invoice_not_for_customer"
                    )
                if invoice.get("status") != "open":
                    raise PreconditionFailed(
                        f"Invoice {invoice_id} is {invoice.get('status')}; only an open invoice can be paid.",
                        code="invoice_not_open",
                        details={"status": invoice.get("status")},
                    )
            else:
                # The oldest open invoice, as the Stripe provider picks it.
                row = (
                    MirrorInvoice.objects.filter(
                        workspace=self.workspace, customer_id=customer_id, status="open"
                    )
                    .order_by("created", "stripe_id")
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
            if customer.deleted:  # as the Stripe provider refuses a Checkout for it
                raise PreconditionFailed(
                    "This customer was deleted in Stripe.", code="customer_deleted"
                )
            session_id = self._id("cs", idempotency_key)
            return LinkResult(
                url=f"{SANDBOX_HOST}/c/{session_id}?customer={customer_id}",
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
