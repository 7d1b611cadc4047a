"""Tax ids and billing addresses for tax invoices: the rules live in ``billing_app.tax_rules``.

One place decides whether a tax id is well formed and an address complete, for
every caller — the ``send_tax_invoice`` action's parameters, the tax details
endpoint (``selectors.tax``) and the sandbox provider. The rules are pure, so
they sit below the selectors and providers (``billing_app.tax_rules``); this
module keeps the names the services and their callers import.
"""

from __future__ import annotations

from ..tax_rules import (
    ADDRESS_FIELDS,
    TAX_ID_TYPES,
    TaxIdType,
    billing_address_validate,
    tax_id_normalize,
    tax_id_types,
    tax_invoice_missing,
)

__all__ = [
    "ADDRESS_FIELDS",
    "TAX_ID_TYPES",
    "TaxIdType",
    "billing_address_validate",
    "tax_id_normalize",
    "tax_id_types",
    "tax_invoice_missing",
]
