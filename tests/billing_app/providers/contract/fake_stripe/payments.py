"""Charges, payment intents and methods, refunds, the catalog and hosted pages."""

from __future__ import annotations

import copy

from .core import FakeCore
from .wire import Obj, StripeRefusal, listing, missing, to_int


class FakePayments(FakeCore):
    # --- payments -----------------------------------------------------------------------------
    def charges_list(self, params: Obj, expand: list[str]) -> Obj:
        found = [
            self.render(c, expand)
            for c in sorted(self.of("charge"), key=lambda c: -int(c["created"]))
            if not params.get("customer") or c["customer"] == params["customer"]
        ]
        return listing("/v1/charges", found, params)

    def charge_retrieve(self, params: Obj, expand: list[str], charge_id: str) -> Obj:
        return self.render(self.get("charge", charge_id), expand)

    def payment_intent_retrieve(self, params: Obj, expand: list[str], intent_id: str) -> Obj:
        charge = next((c for c in self.of("charge") if c.get("payment_intent") == intent_id), None)
        if charge is None:
            raise missing("payment_intent", intent_id)
        failed = charge["status"] == "failed"
        return {
            "id": intent_id,
            "object": "payment_intent",
            "amount": charge["amount"],
            "amount_received": 0 if failed else charge["amount"],
            "created": charge["created"],
            "currency": charge["currency"],
            "customer": charge["customer"],
            "last_payment_error": {
                "code": charge["failure_code"],
                "decline_code": charge["outcome"]["reason"],
                "message": charge["failure_message"],
                "type": "card_error",
            }
            if failed
            else None,
            "latest_charge": self.render(charge, []) if "latest_charge" in expand else charge["id"],
            "livemode": False,
            "metadata": {},
            "payment_method": charge["payment_method"],
            "status": "requires_payment_method" if failed else "succeeded",
        }

    def payment_method_retrieve(self, params: Obj, expand: list[str], pm_id: str) -> Obj:
        return copy.deepcopy(self.get("payment_method", pm_id))

    def refunds_list(self, params: Obj, expand: list[str]) -> Obj:
        found = [
            copy.deepcopy(r)
            for r in reversed(self.of("refund"))
            if not params.get("charge") or r["charge"] == params["charge"]
        ]
        return listing("/v1/refunds", found, params)

    def refund_retrieve(self, params: Obj, expand: list[str], refund_id: str) -> Obj:
        return copy.deepcopy(self.get("refund", refund_id))

    def refund_create(self, params: Obj, expand: list[str]) -> Obj:
        charge = self.get("charge", params["charge"])
        amount = int(params.get("amount") or charge["amount_captured"] - charge["amount_refunded"])
        if charge["status"] != "succeeded":
            raise StripeRefusal(
                400,
                "invalid_request_error",
                "Charge was not successful.",
                code="charge_not_refundable",
            )
        if amount > charge["amount_captured"] - charge["amount_refunded"]:
            raise StripeRefusal(
                400,
                "invalid_request_error",
                "Refund exceeds the charge.",
                code="amount_too_large",
                param="amount",
            )
        charge["amount_refunded"] += amount
        charge["refunded"] = charge["amount_refunded"] >= charge["amount_captured"]
        refund = {
            "id": self.new_id("re"),
            "object": "refund",
            "amount": amount,
            "balance_transaction": None,
            "charge": charge["id"],
            "created": self.clock,
            "currency": charge["currency"],
            "destination_details": None,
            "metadata": params.get("metadata") or {},
            "payment_intent": charge["payment_intent"],
            "payment_method": charge["payment_method"],
            "reason": params.get("reason"),
            "receipt_number": None,
            "source_transfer_reversal": None,
            "status": "succeeded",
            "transfer_reversal": None,
        }
        self.objects[refund["id"]] = refund
        self.event("charge.refunded", self.render(charge, []))
        return copy.deepcopy(refund)

    # --- catalog and hosted pages -------------------------------------------------------------
    def products_list(self, params: Obj, expand: list[str]) -> Obj:
        ids = params.get("ids") or []
        found = [copy.deepcopy(p) for p in self.of("product") if not ids or p["id"] in ids]
        return listing("/v1/products", found, params)

    def coupon_create(self, params: Obj, expand: list[str]) -> Obj:
        coupon = {
            "id": self.new_id("co"),
            "object": "coupon",
            "amount_off": None,
            "created": self.clock,
            "currency": None,
            "duration": params["duration"],
            "duration_in_months": to_int(params.get("duration_in_months")),
            "livemode": False,
            "max_redemptions": None,
            "metadata": params.get("metadata") or {},
            "name": params.get("name"),
            "percent_off": float(params["percent_off"]),
            "redeem_by": None,
            "times_redeemed": 0,
            "valid": True,
        }
        self.objects[coupon["id"]] = coupon
        return copy.deepcopy(coupon)

    def checkout_session_create(self, params: Obj, expand: list[str]) -> Obj:
        session_id = self.new_id("cs_test")
        return {
            "id": session_id,
            "object": "checkout.session",
            "customer": params.get("customer"),
            "currency": params.get("currency"),
            "expires_at": self.clock + 86_400,
            "livemode": False,
            "metadata": params.get("metadata") or {},
            "mode": params.get("mode"),
            "status": "open",
            "url": f"https://checkout.stripe.com/c/pay/{session_id}",
        }

    def portal_session_create(self, params: Obj, expand: list[str]) -> Obj:
        session_id = self.new_id("bps")
        return {
            "id": session_id,
            "object": "billing_portal.session",
            "created": self.clock,
            "customer": params.get("customer"),
            "flow": {"type": (params.get("flow_data") or {}).get("type")},
            "livemode": False,
            "return_url": params.get("return_url"),
            "url": f"https://billing.stripe.com/p/session/{session_id}",
        }
