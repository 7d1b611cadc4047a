"""Customer details: tax ids and the billing address."""

from __future__ import annotations

import re
from datetime import datetime

from ...errors import ValidationFailed
from ..base import TaxDetailsResult, TaxIdInput
from . import objects
from .state import SandboxState

# Formats Stripe validates for the tax id types agents meet most (others: any 3–30 characters).
TAX_ID_FORMATS: dict[str, re.Pattern[str]] = {
    "eu_vat": re.compile(
        r"^(AT|BE|BG|CY|CZ|DE|DK|EE|EL|ES|FI|FR|HR|HU|IE|IT|LT|LU|LV|MT|NL|PL|PT|RO|SE|SI|SK|XI)[0-9A-Z+*]{8,12}$"
    ),
    "gb_vat": re.compile(r"^GB([0-9]{9}|[0-9]{12})$"),
    "ch_vat": re.compile(r"^CHE-?[0-9]{3}\.?[0-9]{3}\.?[0-9]{3} ?(MWST|TVA|IVA)$"),
    "us_ein": re.compile(r"^[0-9]{2}-?[0-9]{7}$"),
    "au_abn": re.compile(r"^[0-9]{11}$"),
    "ca_bn": re.compile(r"^[0-9]{9}$"),
    "jp_cn": re.compile(r"^[0-9]{13}$"),
    "no_vat": re.compile(r"^[0-9]{9}MVA$"),
    "in_gst": re.compile(r"^[0-9]{2}[A-Z0-9]{10}[0-9A-Z]{3}$"),
}
KNOWN_TAX_ID_TYPES = frozenset(
    {*TAX_ID_FORMATS, "ae_trn", "br_cnpj", "ca_gst_hst", "mx_rfc", "nz_gst", "sg_gst", "za_vat"}
)
ADDRESS_FIELDS = ("line1", "line2", "city", "state", "postal_code", "country")


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
        value = ""
        if tax_id is not None:
            value = re.sub(r"[\s]", "", tax_id.value or "").upper()
            if tax_id.type not in KNOWN_TAX_ID_TYPES:
                raise ValidationFailed(
                    f"Unknown tax id type {tax_id.type!r}.", code="invalid_tax_id_type"
                )
            pattern = TAX_ID_FORMATS.get(tax_id.type, re.compile(r"^[0-9A-Z.\-/]{3,30}$"))
            if not pattern.match(value):
                raise ValidationFailed(
                    f"{tax_id.value!r} is not a valid {tax_id.type} number.", code="invalid_tax_id"
                )
        if address:
            unknown = set(address) - set(ADDRESS_FIELDS)
            if unknown:
                raise ValidationFailed(
                    f"Unknown address fields: {', '.join(sorted(unknown))}.", code="invalid_address"
                )
            country = address.get("country")
            if country is not None and not re.match(r"^[A-Za-z]{2}$", country):
                raise ValidationFailed(
                    "country must be a two-letter ISO code.", code="invalid_address"
                )

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
            if address:
                merged = {**(customer.get("address") or {})}
                for name in ADDRESS_FIELDS:
                    if name in address:
                        text = (address[name] or "").strip()
                        merged[name] = (text.upper() if name == "country" else text) or None
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
