"""Stripe writes on the customer: tax ids and billing address."""

from __future__ import annotations

from typing import Any

from ...errors import PreconditionFailed, ProviderError, ValidationFailed
from ..arguments import tax_details_check
from ..base import TaxDetailsResult, TaxIdInput
from . import readers as r
from .core import CUSTOMER_EXPAND, StripeCore
from .keys import key_required, step_key

Obj = dict[str, Any]

# Stripe's error codes for a tax id it will not store.
STRIPE_TAX_ID_REFUSALS = frozenset({"tax_id_invalid", "tax_id_prohibited"})


class StripeCustomers(StripeCore):
    def update_tax_details(
        self,
        *,
        customer_id: str,
        tax_id: TaxIdInput | None,
        address: dict[str, str] | None,
        idempotency_key: str,
    ) -> TaxDetailsResult:
        key = key_required(idempotency_key)
        clean = tax_details_check(tax_id=tax_id, address=address)
        customer = self.api.customer_retrieve(customer_id, expand=CUSTOMER_EXPAND)
        if customer.get("deleted"):
            raise PreconditionFailed(
                "This customer was deleted in Stripe.", code="customer_deleted"
            )
        if clean:
            customer = self.api.customer_update(
                customer_id,
                {"address": clean, "expand": CUSTOMER_EXPAND},
                key=step_key(key, "address"),
            )
        if tax_id is not None:
            value = tax_id.value.strip()
            existing = {
                (t["type"], t["value"].replace(" ", "").upper())
                for t in r.customer_tax_ids(customer)
            }
            if (tax_id.type, value.replace(" ", "").upper()) not in existing:
                created = self._tax_id_create(customer_id, tax_id.type, value, key=key)
                tax_ids = dict(customer.get("tax_ids") or {"object": "list", "data": []})
                tax_ids["data"] = [*(tax_ids.get("data") or []), created]
                customer = {**customer, "tax_ids": tax_ids}
        return TaxDetailsResult(
            customer_id=customer_id,
            tax_ids=r.customer_tax_ids(customer),
            address=r.customer_address(customer),
        ).with_changes(self._changed(customer))

    def _tax_id_create(self, customer_id: str, tax_type: str, value: str, *, key: str) -> Obj:
        """Stripe validates the id itself; its refusal is our ``invalid_tax_id`` (the code
        every provider answers with), Stripe's own code kept in the details."""
        try:
            return self.api.customer_tax_id_create(
                customer_id, {"type": tax_type, "value": value}, key=step_key(key, "tax_id")
            )
        except ProviderError as exc:
            if exc.provider_code not in STRIPE_TAX_ID_REFUSALS:
                raise
            raise ValidationFailed(
                f"Stripe does not accept {value!r} as a {tax_type} tax id.",
                code="invalid_tax_id",
                details={**(exc.details or {}), "field": "tax_id"},
            ) from exc
