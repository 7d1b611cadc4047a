"""Customers, their tax ids and payment methods."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from .common import (
    Obj,
    _list,
    address,
    digest_id,
    unix,
)


def tax_id(
    *, id: str, customer_id: str, type: str, value: str, created: datetime, country: str = ""
) -> Obj:
    return {
        "id": id,
        "object": "tax_id",
        "country": country or (value[:2].upper() if type.endswith("_vat") else None),
        "created": unix(created),
        "customer": customer_id,
        "livemode": False,
        "owner": {"customer": customer_id, "type": "customer"},
        "type": type,
        "value": value,
        "verification": {"status": "pending", "verified_address": None, "verified_name": None},
    }


def customer(
    *,
    id: str,
    name: str,
    email: str,
    created: datetime,
    currency: str,
    address: Obj | None = None,
    balance: int = 0,
    tax_exempt: str = "none",
    tax_ids: Iterable[Obj] = (),
    default_payment_method: Obj | str | None = None,
    metadata: dict[str, str] | None = None,
    delinquent: bool = False,
    phone: str | None = None,
    invoice_prefix: str = "",
) -> Obj:
    """A customer with ``tax_ids`` and the default payment method expanded."""
    return {
        "id": id,
        "object": "customer",
        "address": address
        if address is not None
        else {
            "city": None,
            "country": None,
            "line1": None,
            "line2": None,
            "postal_code": None,
            "state": None,
        },
        "balance": balance,
        "created": unix(created),
        "currency": currency.lower(),
        "default_source": None,
        "delinquent": delinquent,
        "description": None,
        "discount": None,
        "email": email,
        "invoice_prefix": invoice_prefix or id[-8:].upper(),
        "invoice_settings": {
            "custom_fields": None,
            "default_payment_method": default_payment_method,
            "footer": None,
            "rendering_options": None,
        },
        "livemode": False,
        "metadata": dict(metadata or {}),
        "name": name,
        "next_invoice_sequence": 1,
        "phone": phone,
        "preferred_locales": [],
        "shipping": None,
        "tax_exempt": tax_exempt,
        "tax_ids": _list(list(tax_ids), f"/v1/customers/{id}/tax_ids"),
        "test_clock": None,
    }


def card_payment_method(
    *,
    id: str,
    customer_id: str,
    created: datetime,
    brand: str,
    last4: str,
    exp_month: int,
    exp_year: int,
    name: str = "",
    email: str = "",
    country: str = "US",
) -> Obj:
    return {
        "id": id,
        "object": "payment_method",
        "allow_redisplay": "unspecified",
        "billing_details": {
            "address": address(country=country),
            "email": email or None,
            "name": name or None,
            "phone": None,
            "tax_id": None,
        },
        "card": {
            "brand": brand,
            "checks": {
                "address_line1_check": None,
                "address_postal_code_check": None,
                "cvc_check": "pass",
            },
            "country": country,
            "display_brand": brand,
            "exp_month": exp_month,
            "exp_year": exp_year,
            "fingerprint": digest_id("fp", id)[-16:],
            "funding": "credit",
            "generated_from": None,
            "last4": last4,
            "networks": {"available": [brand], "preferred": None},
            "regulated_status": "unregulated",
            "three_d_secure_usage": {"supported": True},
            "wallet": None,
        },
        "created": unix(created),
        "customer": customer_id,
        "livemode": False,
        "metadata": {},
        "type": "card",
    }


def bank_payment_method(
    *, id: str, customer_id: str, created: datetime, last4: str, bank_name: str, name: str = ""
) -> Obj:
    return {
        "id": id,
        "object": "payment_method",
        "allow_redisplay": "unspecified",
        "billing_details": {
            "address": address(country="US"),
            "email": None,
            "name": name or None,
            "phone": None,
            "tax_id": None,
        },
        "created": unix(created),
        "customer": customer_id,
        "livemode": False,
        "metadata": {},
        "type": "us_bank_account",
        "us_bank_account": {
            "account_holder_type": "company",
            "account_type": "checking",
            "bank_name": bank_name,
            "financial_connections_account": None,
            "fingerprint": digest_id("fp", id)[-16:],
            "last4": last4,
            "networks": {"preferred": "ach", "supported": ["ach"]},
            "routing_number": "110000000",
            "status_details": {},
        },
    }


def payment_method_details(pm: Obj) -> Obj:
    """A charge's ``payment_method_details`` for the payment method that paid it."""
    if pm.get("type") == "card":
        card = pm["card"]
        return {
            "card": {
                "amount_authorized": None,
                "brand": card["brand"],
                "checks": card["checks"],
                "country": card["country"],
                "exp_month": card["exp_month"],
                "exp_year": card["exp_year"],
                "fingerprint": card["fingerprint"],
                "funding": card["funding"],
                "installments": None,
                "last4": card["last4"],
                "mandate": None,
                "network": card["brand"],
                "network_token": {"used": False},
                "three_d_secure": None,
                "wallet": None,
            },
            "type": "card",
        }
    bank = pm.get("us_bank_account") or {}
    return {
        "type": "us_bank_account",
        "us_bank_account": {
            "account_holder_type": bank.get("account_holder_type"),
            "account_type": bank.get("account_type"),
            "bank_name": bank.get("bank_name"),
            "fingerprint": bank.get("fingerprint"),
            "last4": bank.get("last4"),
            "payment_method": pm.get("id"),
            "routing_number": bank.get("routing_number"),
        },
    }
