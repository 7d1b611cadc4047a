"""Stripe writes on the customer: tax ids and billing address."""

from __future__ import annotations

from typing import Any

from ...errors import PreconditionFailed, ProviderError, ValidationFailed
from ..base import TaxDetailsResult, TaxIdInput
from . import readers as r
from .core import CUSTOMER_EXPAND, StripeCore
from .keys import key_required, step_key

Obj = dict[str, Any]

ADDRESS_FIELDS = frozenset({"line1", "line2", "city", "state", "postal_code", "country"})
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
        if tax_id is None and not address:
            raise ValidationFailed("Give a tax id, an address or both.", code="nothing_to_update")
        if address:
            unknown = set(address) - ADDRESS_FIELDS
            if unknown:
                raise ValidationFailed(
                    "Unknown address fields.",
                    code="invalid_address",
                    details={"fields": sorted(unknown)},
                )
            country = address.get("country", "")
            if country and not (len(country) == 2 and country.isalpha()):
                raise ValidationFailed("country is a two-letter ISO code.", code="invalid_address")
        if tax_id is not None and not (tax_id.type and tax_id.value.strip()):
            raise ValidationFailed("A tax id needs a type and a value.", code="invalid_tax_id")
        customer = self.api.customer_retrieve(customer_id, expand=CUSTOMER_EXPAND)
        if customer.get("deleted"):
            raise PreconditionFailed(
                "This customer was deleted in Stripe.", code="customer_deleted"
            )
        if address:
            clean = {k: v.strip() for k, v in address.items()}
            if clean.get("country"):
                clean["country"] = clean["country"].upper()
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
