"""Invoices: retrieval, sending, previews, and finalizing and collecting one (balance, then card)."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from decimal import Decimal

from .core import FakeCore
from .wire import Obj, StripeRefusal, listing, to_int


class FakeInvoices(FakeCore):
    # --- invoices -----------------------------------------------------------------------------
    def invoices_list(self, params: Obj, expand: list[str]) -> Obj:
        found = [
            self.render(i, expand)
            for i in sorted(self.of("invoice"), key=lambda i: -int(i["created"]))
            if (not params.get("customer") or i["customer"] == params["customer"])
            and (not params.get("status") or i["status"] == params["status"])
        ]
        return listing("/v1/invoices", found, params)

    def invoice_retrieve(self, params: Obj, expand: list[str], invoice_id: str) -> Obj:
        return self.render(self.get("invoice", invoice_id), expand)

    def invoice_send(self, params: Obj, expand: list[str], invoice_id: str) -> Obj:
        invoice = self.get("invoice", invoice_id)
        if invoice["status"] != "open" or invoice["collection_method"] != "send_invoice":
            raise StripeRefusal(
                400, "invalid_request_error", "Only open send_invoice invoices can be sent."
            )
        return self.render(invoice, expand)

    def invoice_update(self, params: Obj, expand: list[str], invoice_id: str) -> Obj:
        invoice = self.get("invoice", invoice_id)
        if "due_date" in params:
            invoice["due_date"] = to_int(params["due_date"])
        return self.render(invoice, expand)

    def invoice_preview(self, params: Obj, expand: list[str]) -> Obj:
        sub = copy.deepcopy(self.get("subscription", params["subscription"]))
        details = params.get("subscription_details") or {}
        at = to_int(details.get("proration_date")) or self.clock
        lines = self._proration_lines(sub, details.get("items") or [], at)
        return self._invoice_shape(sub, lines, invoice_id="upcoming_in", billing_reason="upcoming")

    def _invoice_shape(
        self, sub: Obj, lines: list[Obj], *, invoice_id: str, billing_reason: str
    ) -> Obj:
        total = sum(int(line["amount"]) for line in lines)
        for line in lines:
            line["invoice"] = invoice_id
        return {
            "id": invoice_id,
            "object": "invoice",
            "amount_due": max(total, 0),
            "amount_paid": 0,
            "amount_remaining": max(total, 0),
            "attempt_count": 0,
            "billing_reason": billing_reason,
            "collection_method": sub["collection_method"],
            "created": self.clock,
            "currency": sub["currency"],
            "customer": sub["customer"],
            "discounts": [],
            "due_date": None,
            "ending_balance": 0,
            "hosted_invoice_url": f"https://invoice.stripe.com/i/acct_test/{invoice_id}",
            "invoice_pdf": f"https://pay.stripe.com/invoice/{invoice_id}/pdf",
            "lines": {
                "object": "list",
                "data": lines,
                "has_more": False,
                "total_count": len(lines),
                "url": f"/v1/invoices/{invoice_id}/lines",
            },
            "livemode": False,
            "metadata": {},
            "next_payment_attempt": None,
            "number": None,
            "parent": {
                "quote_details": None,
                "subscription_details": {"metadata": {}, "subscription": sub["id"]},
                "type": "subscription_details",
            },
            "payments": {
                "object": "list",
                "data": [],
                "has_more": False,
                "total_count": 0,
                "url": f"/v1/invoices/{invoice_id}/payments",
            },
            "period_end": self.clock,
            "period_start": self.clock,
            "starting_balance": 0,
            "status": "draft",
            "status_transitions": {
                "finalized_at": None,
                "marked_uncollectible_at": None,
                "paid_at": None,
                "voided_at": None,
            },
            "subtotal": total,
            "total": total,
            "total_discount_amounts": [],
            "total_taxes": [],
        }

    def _invoice(self, sub: Obj, lines: list[Obj], *, billing_reason: str) -> Obj:
        """Finalize an invoice of ``lines`` and collect it as Stripe does (balance, then card)."""
        invoice = self._invoice_shape(
            sub, lines, invoice_id=self.new_id("in"), billing_reason=billing_reason
        )
        customer = self.objects[sub["customer"]]
        discounted = invoice["total"]
        for discount_id in sub.get("discounts") or []:
            coupon = self.objects[discount_id]["source"]["coupon"]
            cut = int(
                (Decimal(discounted) * Decimal(str(coupon["percent_off"] or 0)) / 100).quantize(
                    Decimal(1)
                )
            )
            invoice["total_discount_amounts"].append({"amount": cut, "discount": discount_id})
            discounted -= cut
        invoice["total"] = discounted
        balance = int(customer.get("balance") or 0)
        applied = max(balance, -discounted) if balance < 0 else 0
        invoice.update(starting_balance=balance, ending_balance=balance - applied)
        customer["balance"] = balance - applied
        due = max(discounted + applied, 0)
        invoice.update(
            amount_due=due, amount_remaining=due, status="open", number=invoice["id"][-6:]
        )
        invoice["status_transitions"]["finalized_at"] = self.clock
        self.objects[invoice["id"]] = invoice
        if due == 0:
            invoice.update(status="paid", amount_remaining=0)
            invoice["status_transitions"]["paid_at"] = self.clock
        elif sub["collection_method"] == "charge_automatically":
            self._collect(invoice, sub)
        self.event("invoice.finalized", invoice)
        return invoice

    def _collect(self, invoice: Obj, sub: Obj) -> None:
        customer = self.objects[invoice["customer"]]
        pm_id = (
            sub.get("default_payment_method")
            or customer["invoice_settings"]["default_payment_method"]
        )
        pm = self.objects.get(pm_id or "")
        at = datetime.fromtimestamp(self.clock, tz=UTC)
        expired = pm is None or (int(pm["card"]["exp_year"]), int(pm["card"]["exp_month"])) < (
            at.year,
            at.month,
        )
        charge_id = self.new_id("ch")
        intent = f"pi_{charge_id[3:]}"
        charge = {
            "id": charge_id,
            "object": "charge",
            "amount": invoice["amount_due"],
            "amount_captured": 0 if expired else invoice["amount_due"],
            "amount_refunded": 0,
            "captured": not expired,
            "created": self.clock,
            "currency": invoice["currency"],
            "customer": invoice["customer"],
            "description": "Subscription update",
            "disputed": False,
            "failure_code": "expired_card" if expired else None,
            "failure_message": "Your card has expired." if expired else None,
            "livemode": False,
            "metadata": {},
            "outcome": {
                "network_status": "declined_by_network" if expired else "approved_by_network",
                "reason": "expired_card" if expired else None,
                "risk_level": "normal",
                "seller_message": "The bank returned the decline code `expired_card`."
                if expired
                else "Payment complete.",
                "type": "issuer_declined" if expired else "authorized",
            },
            "paid": not expired,
            "payment_intent": intent,
            "payment_method": pm_id,
            "payment_method_details": {
                "card": {**(pm or {}).get("card", {}), "network": "visa"},
                "type": "card",
            },
            "refunded": False,
            "status": "failed" if expired else "succeeded",
        }
        self.objects[charge_id] = charge
        invoice["attempt_count"] = int(invoice.get("attempt_count") or 0) + 1
        invoice["payments"]["data"].append(
            {
                "id": self.new_id("inpay"),
                "object": "invoice_payment",
                "amount_paid": None if expired else invoice["amount_due"],
                "amount_requested": invoice["amount_due"],
                "created": self.clock,
                "currency": invoice["currency"],
                "invoice": invoice["id"],
                "is_default": True,
                "livemode": False,
                "payment": {"payment_intent": intent, "type": "payment_intent"},
                "status": "open" if expired else "paid",
                "status_transitions": {
                    "canceled_at": None,
                    "paid_at": None if expired else self.clock,
                },
            }
        )
        if expired:
            invoice["next_payment_attempt"] = self.clock + 3 * 86_400
            sub["status"] = "past_due"
            customer["delinquent"] = True
            self.event("charge.failed", self.render(charge, []))
            self.event("invoice.payment_failed", self.render(invoice, []))
        else:
            invoice.update(status="paid", amount_paid=invoice["amount_due"], amount_remaining=0)
            invoice["status_transitions"]["paid_at"] = self.clock
            self.event("charge.succeeded", self.render(charge, []))
            self.event("invoice.paid", self.render(invoice, []))
