"""A customer's tax details for a tax invoice (the brief's scenario 6), from the mirror.

``GET customers/{id}/tax/``: the tax ids and billing address on file, what a tax
invoice still lacks (street, city, postal code, country, a tax id), whether the
customer is tax exempt, the recent finalized invoices to send (with their
service period, tax and PDF link), and the tax id types Billing Desk validates.
Correcting the details and resending go through the ``send_tax_invoice`` action.
"""

from __future__ import annotations

from typing import Any

from ..errors import NotFound
from ..models import MirrorCustomer, MirrorInvoice, MirrorInvoiceLine, Workspace
from ..money import money_json
from ..playbook import invoice_period
from ..tax_rules import ADDRESS_FIELDS, TAX_ID_TYPES, tax_id_types, tax_invoice_missing

Obj = dict[str, Any]
RECENT_INVOICES = 12


def _address_display(address: Obj) -> str:
    parts = [address.get(k) for k in ("line1", "line2", "postal_code", "city", "state", "country")]
    return ", ".join(str(p) for p in parts if p)


def customer_tax_details(*, workspace: Workspace, customer_id: str) -> Obj:
    customer = MirrorCustomer.objects.filter(workspace=workspace, stripe_id=customer_id).first()
    if customer is None:
        raise NotFound("No such billing customer.", code="customer_not_found")
    address = {k: (customer.address or {}).get(k) or "" for k in ADDRESS_FIELDS}
    tax_ids = [
        {
            "id": t.get("id"),
            "type": t.get("type"),
            "value": t.get("value"),
            "label": TAX_ID_TYPES[t["type"]].label
            if t.get("type") in TAX_ID_TYPES
            else t.get("type"),
        }
        for t in customer.tax_ids or []
    ]
    invoices = list(
        MirrorInvoice.objects.filter(
            workspace=workspace, customer_id=customer_id, status__in=("paid", "open")
        ).order_by("-created")[:RECENT_INVOICES]
    )
    lines: dict[str, list[MirrorInvoiceLine]] = {}
    for line in MirrorInvoiceLine.objects.filter(
        workspace=workspace, invoice_id__in=[i.stripe_id for i in invoices]
    ):
        lines.setdefault(line.invoice_id, []).append(line)
    return {
        "customer_id": customer_id,
        "name": customer.name,
        "email": customer.email,
        "tax_exempt": customer.tax_exempt,
        "tax_ids": tax_ids,
        "address": address,
        "address_display": _address_display(address),
        "missing": tax_invoice_missing(address=address, tax_ids=tax_ids),
        "invoices": [
            {
                "id": i.stripe_id,
                "number": i.number,
                "status": i.status,
                "period": invoice_period(i, lines.get(i.stripe_id, [])),
                "total": money_json(i.total, i.currency),
                "tax": money_json(i.tax, i.currency),
                "hosted_invoice_url": i.hosted_invoice_url or None,
                "invoice_pdf": i.invoice_pdf or None,
            }
            for i in invoices
        ],
        "supported_tax_id_types": tax_id_types(),
    }


__all__ = ["customer_tax_details"]
