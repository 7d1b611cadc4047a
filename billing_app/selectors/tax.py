"""A customer's tax details for a tax invoice (the brief's scenario 6), from the mirror.

``GET customers/{id}/tax/``: the tax ids and billing address on file, what a tax
invoice still lacks (street, city, postal code, country, a tax id), whether the
customer is tax exempt, the recent finalized invoices to send (with their
service period, tax and PDF link), and the tax id types Billing Desk validates.
Correcting the details and resending go through the ``send_tax_invoice`` action.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from babel.numbers import format_decimal
from django.utils.translation import gettext, gettext_noop, to_locale

from ..errors import NotFound
from ..models import (
    MirrorCustomer,
    MirrorInvoice,
    MirrorInvoiceLine,
    MirrorSubscription,
    Workspace,
)
from ..money import money_json, money_language
from ..playbook import invoice_period
from ..tax_rules import ADDRESS_FIELDS, TAX_ID_TYPES, tax_id_types, tax_invoice_missing
from ..vocabulary import Labels

Obj = dict[str, Any]
RECENT_INVOICES = 12

# What a tax invoice lacks (``tax_rules.tax_invoice_missing``), in an agent's words.
MISSING_LABELS = Labels(
    {
        "line1": gettext_noop("street address"),
        "city": gettext_noop("city"),
        "postal_code": gettext_noop("postal code"),
        "country": gettext_noop("country"),
        "tax_id": gettext_noop("tax ID (such as a VAT number)"),
    }
)


def missing_words(missing: list[str]) -> str:
    """``["line1", "postal_code", "tax_id"]`` → ``"Missing: street address, postal code and
    tax ID (such as a VAT number)."``; ``""`` when nothing is missing."""
    labels = [MISSING_LABELS.get(m) or m.replace("_", " ") for m in missing]
    if not labels:
        return ""
    listed = (
        labels[0]
        if len(labels) == 1
        else gettext("%(items)s and %(last)s")
        % {"items": ", ".join(labels[:-1]), "last": labels[-1]}
    )
    return gettext("Missing: %(items)s.") % {"items": listed}


def _percent(value: Any) -> str:
    """``19.0`` → ``19``, ``8.875`` → ``8.875`` (German ``8,875``)."""
    text = f"{value}"
    text = text[:-2] if text.endswith(".0") else text
    language = money_language()
    if language is None:
        return text
    return str(format_decimal(Decimal(text), locale=to_locale(language)))


def tax_jurisdiction(*, workspace: Workspace, customer: MirrorCustomer, address: Obj) -> Obj:
    """Where the customer is taxed: the billing address's country and state, and the tax
    rates their live subscriptions charge (Stripe ``tax_rate``: name, percentage, country)."""
    rates: list[Obj] = []
    seen: set[str] = set()
    for sub in MirrorSubscription.objects.filter(
        workspace=workspace, customer_id=customer.stripe_id
    ).exclude(status__in=("canceled", "incomplete_expired")):
        for rate in (sub.data or {}).get("default_tax_rates") or []:
            if not isinstance(rate, dict) or rate.get("id") in seen:
                continue
            seen.add(str(rate.get("id")))
            name = rate.get("description") or rate.get("display_name") or gettext("Tax")
            percent = rate.get("percentage")
            rates.append(
                {
                    "name": name,
                    "percentage": _percent(percent) if percent is not None else None,
                    "country": rate.get("country") or "",
                    "state": rate.get("state") or "",
                    "inclusive": bool(rate.get("inclusive")),
                    "display": (
                        gettext("%(name)s %(percent)s%% (included in the price)")
                        if rate.get("inclusive")
                        else gettext("%(name)s %(percent)s%%")
                    )
                    % {"name": name, "percent": _percent(percent)}
                    if percent is not None
                    else name,
                }
            )
    country = str(address.get("country") or (rates[0]["country"] if rates else "")).upper()
    exempt = {
        "exempt": gettext("Tax exempt"),
        "reverse": gettext("Reverse charge (the customer accounts for VAT)"),
    }
    return {
        "country": country,
        "state": address.get("state") or "",
        "tax_rates": rates,
        "treatment": exempt.get(customer.tax_exempt, gettext("Taxed")),
    }


def _address_display(address: Obj) -> str:
    parts = [address.get(k) for k in ("line1", "line2", "postal_code", "city", "state", "country")]
    return ", ".join(str(p) for p in parts if p)


def customer_tax_details(*, workspace: Workspace, customer_id: str) -> Obj:
    customer = MirrorCustomer.objects.filter(workspace=workspace, stripe_id=customer_id).first()
    if customer is None:
        raise NotFound(gettext("No such billing customer."), code="customer_not_found")
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
        "missing": (missing := tax_invoice_missing(address=address, tax_ids=tax_ids)),
        "missing_labels": [MISSING_LABELS.get(m) or m.replace("_", " ") for m in missing],
        "missing_display": missing_words(missing),
        "jurisdiction": tax_jurisdiction(workspace=workspace, customer=customer, address=address),
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


__all__ = ["MISSING_LABELS", "customer_tax_details", "missing_words", "tax_jurisdiction"]
