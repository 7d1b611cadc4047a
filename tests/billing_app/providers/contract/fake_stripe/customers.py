"""Customers: retrieval and search, address, tax ids (validated per type), balance."""

from __future__ import annotations

import copy
import re

from .core import FakeCore
from .wire import Obj, StripeRefusal, listing

TAX_ID_PATTERNS = {
    "eu_vat": re.compile(r"^[A-Z]{2}[0-9A-Z]{8,12}$"),
    "gb_vat": re.compile(r"^GB([0-9]{9}|[0-9]{12})$"),
    "us_ein": re.compile(r"^[0-9]{2}-?[0-9]{7}$"),
}


class FakeCustomers(FakeCore):
    # --- customers ----------------------------------------------------------------------------
    def customers_list(self, params: Obj, expand: list[str]) -> Obj:
        found = [
            self.render(c, expand)
            for c in self.of("customer")
            if not params.get("email") or c.get("email") == params["email"]
        ]
        return listing("/v1/customers", found, params)

    def customer_retrieve(self, params: Obj, expand: list[str], customer_id: str) -> Obj:
        return self.render(self.get("customer", customer_id), expand)

    def customer_update(self, params: Obj, expand: list[str], customer_id: str) -> Obj:
        customer = self.get("customer", customer_id)
        if "address" in params:
            customer["address"] = {**(customer.get("address") or {}), **params["address"]}
        self.event("customer.updated", self.render(customer, ["tax_ids"]))
        return self.render(customer, expand)

    def tax_id_create(self, params: Obj, expand: list[str], customer_id: str) -> Obj:
        customer = self.get("customer", customer_id)
        tax_type, value = params.get("type", ""), params.get("value", "")
        pattern = TAX_ID_PATTERNS.get(tax_type)
        if pattern is None or not pattern.match(value.replace(" ", "").upper()):
            raise StripeRefusal(
                400,
                "invalid_request_error",
                f"Invalid value for {tax_type}.",
                code="tax_id_invalid",
                param="value",
            )
        tax_id = {
            "id": self.new_id("txi"),
            "object": "tax_id",
            "country": value[:2].upper(),
            "created": self.clock,
            "customer": customer_id,
            "livemode": False,
            "owner": {"customer": customer_id, "type": "customer"},
            "type": tax_type,
            "value": value,
            "verification": {"status": "pending", "verified_address": None, "verified_name": None},
        }
        customer["tax_ids"]["data"].append(tax_id)
        return tax_id

    def customer_payment_methods(self, params: Obj, expand: list[str], customer_id: str) -> Obj:
        found = [
            copy.deepcopy(p) for p in self.of("payment_method") if p["customer"] == customer_id
        ]
        return listing(f"/v1/customers/{customer_id}/payment_methods", found, params)

    def balance_transactions(self, params: Obj, expand: list[str], customer_id: str) -> Obj:
        found = [
            copy.deepcopy(t)
            for t in reversed(self.of("customer_balance_transaction"))
            if t["customer"] == customer_id
        ]
        return listing(f"/v1/customers/{customer_id}/balance_transactions", found, params)

    def balance_transaction_create(self, params: Obj, expand: list[str], customer_id: str) -> Obj:
        customer = self.get("customer", customer_id)
        amount = int(params["amount"])
        if params.get("currency", "").lower() != customer.get("currency"):
            raise StripeRefusal(
                400, "invalid_request_error", "Currency mismatch.", param="currency"
            )
        customer["balance"] = int(customer.get("balance") or 0) + amount
        txn = {
            "id": self.new_id("cbtxn"),
            "object": "customer_balance_transaction",
            "amount": amount,
            "checkout_session": None,
            "created": self.clock,
            "credit_note": None,
            "currency": customer["currency"],
            "customer": customer_id,
            "customer_account": None,
            "description": params.get("description"),
            "ending_balance": customer["balance"],
            "invoice": None,
            "livemode": False,
            "metadata": params.get("metadata") or {},
            "type": "adjustment",
        }
        self.objects[txn["id"]] = txn
        return copy.deepcopy(txn)
