"""Customer details: tax ids and the billing address, checked by the shared rules (``tax_rules``)."""

from __future__ import annotations

from datetime import datetime

from ...errors import ValidationFailed
from ...tax_rules import billing_address_validate, tax_id_normalize
from ..base import TaxDetailsResult, TaxIdInput
from . import objects
from .state import SandboxState


class SandboxCustomers(SandboxState):
    def update_tax_details(
        self,
        *,
        customer_id: str,
        tax_id: TaxIdInput | None,
        address: dict[str, str] | None,
        idempotency_key: str,
    ) -> TaxDetailsResult:
        if tax_id is None and not address:
            raise ValidationFailed("Give a tax id, an address, or both.", code="nothing_to_update")
        # Validated as Stripe validates them, by the one shared rule (billing_app.tax_rules).
        value = ""
        if tax_id is not None:
            value = tax_id_normalize(tax_type=tax_id.type, value=tax_id.value)
        clean = billing_address_validate(address) if address else {}

        def act(now: datetime) -> TaxDetailsResult:
            customer = self._customer(customer_id)
            tax_ids = list((customer.get("tax_ids") or {}).get("data") or [])
            if tax_id is not None and not any(
                t["type"] == tax_id.type and t["value"] == value for t in tax_ids
            ):
                tax_ids.append(
                    objects.tax_id(
                        id=self._id("txi", idempotency_key),
                        customer_id=customer_id,
                        type=tax_id.type,
                        value=value,
                        created=now,
                    )
                )
                customer["tax_ids"] = {
                    **(customer.get("tax_ids") or {}),
                    "object": "list",
                    "data": tax_ids,
                    "has_more": False,
                    "total_count": len(tax_ids),
                }
            if clean:
                merged = {**(customer.get("address") or {})}
                for name, text in clean.items():
                    merged[name] = text or None
                customer["address"] = merged
            self._put(customer)
            return TaxDetailsResult(
                customer_id=customer_id,
                tax_ids=[{"id": t["id"], "type": t["type"], "value": t["value"]} for t in tax_ids],
                address={k: v or "" for k, v in (customer.get("address") or {}).items()},
            )

        return self._write(
            "update_tax_details",
            idempotency_key,
            {
                "customer_id": customer_id,
                "tax_id": [tax_id.type, tax_id.value] if tax_id else None,
                "address": address or {},
            },
            act,
        )
