"""Builders of Stripe-shaped objects for the sandbox simulation and the demo seed.

Each function returns a plain dict in the JSON shape Stripe sends at the API
version pinned in settings (``STRIPE_API_VERSION``): invoices with ``parent``,
``total_taxes`` and an expanded ``payments`` list, invoice lines with
``pricing.price_details`` and ``parent.subscription_item_details``, subscription
items carrying ``current_period_start`` / ``current_period_end``, discounts with
``source.coupon``. The mirror stores these exactly as it would store Stripe's.

Amounts are integer minor units; currencies are lower case, as Stripe writes them.
Everything here is pure: no database, no clock.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from datetime import datetime
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from ...money import format_money

Obj = dict[str, Any]

SANDBOX_HOST = "https://sandbox.billing-desk.invalid"
ACCOUNT_NAME = "Billing Desk Sandbox"


def unix(value: datetime | None) -> int | None:
    return int(value.timestamp()) if value is not None else None


def digest_id(prefix: str, *parts: object) -> str:
    """A deterministic object id: the same parts always give the same id."""
    raw = ":".join(str(p) for p in parts).encode()
    return f"{prefix}_sbx_{hashlib.sha256(raw).hexdigest()[:20]}"


def _list(data: list[Obj], url: str) -> Obj:
    return {
        "object": "list",
        "data": data,
        "has_more": False,
        "total_count": len(data),
        "url": url,
    }


def address(
    line1: str = "",
    city: str = "",
    state: str = "",
    postal_code: str = "",
    country: str = "",
    line2: str = "",
) -> Obj:
    return {
        "city": city or None,
        "country": country or None,
        "line1": line1 or None,
        "line2": line2 or None,
        "postal_code": postal_code or None,
        "state": state or None,
    }


def hosted_invoice_url(invoice_id: str) -> str:
    return f"{SANDBOX_HOST}/i/{invoice_id}"


def invoice_pdf_url(invoice_id: str) -> str:
    return f"{SANDBOX_HOST}/i/{invoice_id}/pdf"


# --- customers and payment methods ---------------------------------------------------


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


# --- catalogue ------------------------------------------------------------------------


def product(
    *, id: str, name: str, created: datetime, metadata: dict[str, str] | None = None
) -> Obj:
    return {
        "id": id,
        "object": "product",
        "active": True,
        "created": unix(created),
        "default_price": None,
        "description": None,
        "images": [],
        "livemode": False,
        "marketing_features": [],
        "metadata": dict(metadata or {}),
        "name": name,
        "package_dimensions": None,
        "shippable": None,
        "statement_descriptor": None,
        "tax_code": None,
        "type": "service",
        "unit_label": None,
        "updated": unix(created),
        "url": None,
    }


def price(
    *,
    id: str,
    product: Obj | str,
    unit_amount: int,
    currency: str,
    created: datetime,
    interval: str | None = "month",
    interval_count: int = 1,
    nickname: str | None = None,
    lookup_key: str | None = None,
    active: bool = True,
) -> Obj:
    """A per-unit price; ``interval=None`` is a one-time price. ``product`` may be expanded."""
    return {
        "id": id,
        "object": "price",
        "active": active,
        "billing_scheme": "per_unit",
        "created": unix(created),
        "currency": currency.lower(),
        "custom_unit_amount": None,
        "livemode": False,
        "lookup_key": lookup_key,
        "metadata": {},
        "nickname": nickname,
        "product": product,
        "recurring": {
            "interval": interval,
            "interval_count": interval_count,
            "meter": None,
            "trial_period_days": None,
            "usage_type": "licensed",
        }
        if interval
        else None,
        "tax_behavior": "exclusive",
        "tiers_mode": None,
        "transform_quantity": None,
        "type": "recurring" if interval else "one_time",
        "unit_amount": unit_amount,
        "unit_amount_decimal": str(unit_amount),
    }


def price_product_id(price_obj: Obj) -> str:
    product_ref = price_obj.get("product")
    return product_ref.get("id", "") if isinstance(product_ref, dict) else str(product_ref or "")


def price_product_name(price_obj: Obj) -> str:
    product_ref = price_obj.get("product")
    if isinstance(product_ref, dict):
        return str(product_ref.get("name") or "")
    return str(price_obj.get("nickname") or "")


# --- subscriptions --------------------------------------------------------------------


def subscription_item(
    *,
    id: str,
    subscription_id: str,
    price: Obj,
    quantity: int,
    created: datetime,
    period_start: datetime,
    period_end: datetime,
    metadata: dict[str, str] | None = None,
) -> Obj:
    return {
        "id": id,
        "object": "subscription_item",
        "billing_thresholds": None,
        "created": unix(created),
        "current_period_end": unix(period_end),
        "current_period_start": unix(period_start),
        "discounts": [],
        "metadata": dict(metadata or {}),
        "price": price,
        "quantity": quantity,
        "subscription": subscription_id,
        "tax_rates": [],
    }


def subscription(
    *,
    id: str,
    customer_id: str,
    currency: str,
    items: list[Obj],
    created: datetime,
    start_date: datetime,
    billing_cycle_anchor: datetime,
    status: str = "active",
    collection_method: str = "charge_automatically",
    days_until_due: int | None = None,
    default_payment_method: str | None = None,
    latest_invoice: str | None = None,
    metadata: dict[str, str] | None = None,
    trial_start: datetime | None = None,
    trial_end: datetime | None = None,
    cancel_at_period_end: bool = False,
    cancel_at: datetime | None = None,
    canceled_at: datetime | None = None,
    ended_at: datetime | None = None,
    cancellation_details: Obj | None = None,
    pause_collection: Obj | None = None,
    discounts: list[Obj] | None = None,
    schedule: str | None = None,
) -> Obj:
    """A subscription with its items (and their prices) and discounts expanded."""
    return {
        "id": id,
        "object": "subscription",
        "application": None,
        "application_fee_percent": None,
        "automatic_tax": {"disabled_reason": None, "enabled": False, "liability": None},
        "billing_cycle_anchor": unix(billing_cycle_anchor),
        "billing_cycle_anchor_config": None,
        "billing_mode": {"type": "classic"},
        "billing_thresholds": None,
        "cancel_at": unix(cancel_at),
        "cancel_at_period_end": cancel_at_period_end,
        "canceled_at": unix(canceled_at),
        "cancellation_details": cancellation_details
        or {"comment": None, "feedback": None, "reason": None},
        "collection_method": collection_method,
        "created": unix(created),
        "currency": currency.lower(),
        "customer": customer_id,
        "days_until_due": days_until_due,
        "default_payment_method": default_payment_method,
        "default_source": None,
        "default_tax_rates": [],
        "description": None,
        "discounts": list(discounts or []),
        "ended_at": unix(ended_at),
        "invoice_settings": {"account_tax_ids": None, "issuer": {"type": "self"}},
        "items": _list(items, f"/v1/subscription_items?subscription={id}"),
        "latest_invoice": latest_invoice,
        "livemode": False,
        "metadata": dict(metadata or {}),
        "next_pending_invoice_item_invoice": None,
        "on_behalf_of": None,
        "pause_collection": pause_collection,
        "payment_settings": {
            "payment_method_options": None,
            "payment_method_types": None,
            "save_default_payment_method": "off",
        },
        "pending_invoice_item_interval": None,
        "pending_setup_intent": None,
        "pending_update": None,
        "schedule": schedule,
        "start_date": unix(start_date),
        "status": status,
        "test_clock": None,
        "transfer_data": None,
        "trial_end": unix(trial_end),
        "trial_settings": {"end_behavior": {"missing_payment_method": "create_invoice"}},
        "trial_start": unix(trial_start),
    }


def coupon(
    *,
    id: str,
    percent_off: float,
    duration: str,
    duration_in_months: int | None,
    created: datetime,
    name: str = "",
) -> Obj:
    return {
        "id": id,
        "object": "coupon",
        "amount_off": None,
        "created": unix(created),
        "currency": None,
        "duration": duration,
        "duration_in_months": duration_in_months,
        "livemode": False,
        "max_redemptions": None,
        "metadata": {},
        "name": name or f"{percent_off:g}% off",
        "percent_off": percent_off,
        "redeem_by": None,
        "times_redeemed": 1,
        "valid": True,
    }


def discount(
    *,
    id: str,
    coupon: Obj,
    customer_id: str,
    subscription_id: str | None,
    start: datetime,
    end: datetime | None,
) -> Obj:
    return {
        "id": id,
        "object": "discount",
        "checkout_session": None,
        "customer": customer_id,
        "end": unix(end),
        "invoice": None,
        "invoice_item": None,
        "promotion_code": None,
        "source": {"coupon": coupon, "type": "coupon"},
        "start": unix(start),
        "subscription": subscription_id,
        "subscription_item": None,
    }


# --- invoices -------------------------------------------------------------------------


def _round(value: Decimal) -> int:
    return int(value.quantize(Decimal(1), rounding=ROUND_HALF_EVEN))


def interval_label(price_obj: Obj) -> str:
    recurring = price_obj.get("recurring") or {}
    interval = recurring.get("interval") or ""
    count = int(recurring.get("interval_count") or 1)
    return f"every {count} {interval}s" if count > 1 else interval


def line_item(
    *,
    id: str,
    invoice_id: str,
    amount: int,
    currency: str,
    description: str,
    period_start: datetime,
    period_end: datetime,
    price: Obj | None = None,
    quantity: int | None = 1,
    subscription_id: str | None = None,
    subscription_item_id: str | None = None,
    proration: bool = False,
    credited_invoice: str | None = None,
) -> Obj:
    """A line of an invoice. Subscription lines carry ``parent.subscription_item_details``."""
    if subscription_item_id:
        parent: Obj = {
            "invoice_item_details": None,
            "subscription_item_details": {
                "invoice_item": digest_id("ii", id) if proration else None,
                "proration": proration,
                "proration_details": {
                    "credited_items": {"invoice": credited_invoice, "invoice_line_items": []}
                    if credited_invoice
                    else None
                },
                "subscription": subscription_id,
                "subscription_item": subscription_item_id,
            },
            "type": "subscription_item_details",
        }
    else:
        parent = {
            "invoice_item_details": {
                "invoice_item": digest_id("ii", id),
                "proration": proration,
                "proration_details": {"credited_items": None},
                "subscription": subscription_id,
            },
            "subscription_item_details": None,
            "type": "invoice_item_details",
        }
    return {
        "id": id,
        "object": "line_item",
        "amount": amount,
        "currency": currency.lower(),
        "description": description,
        "discount_amounts": [],
        "discountable": not proration,
        "discounts": [],
        "invoice": invoice_id,
        "livemode": False,
        "metadata": {},
        "parent": parent,
        "period": {"end": unix(period_end), "start": unix(period_start)},
        "pretax_credit_amounts": [],
        "pricing": {
            "price_details": {"price": price["id"], "product": price_product_id(price)}
            if price
            else None,
            "type": "price_details",
            "unit_amount_decimal": price.get("unit_amount_decimal") if price else None,
        },
        "quantity": quantity,
        "subtotal": amount,
        "taxes": [],
    }


def recurring_line_description(price_obj: Obj, quantity: int) -> str:
    """Stripe's wording: ``50 × Enterprise Pro (at $48.00 / month)``."""
    name = price_product_name(price_obj)
    unit = format_money(int(price_obj["unit_amount"]), str(price_obj["currency"]))
    return f"{quantity} × {name} (at {unit} / {interval_label(price_obj)})"


def invoice(
    *,
    id: str,
    customer: Obj,
    number: str | None,
    created: datetime,
    lines: list[Obj],
    status: str,
    period_start: datetime,
    period_end: datetime,
    subscription_id: str | None = None,
    collection_method: str = "charge_automatically",
    billing_reason: str = "subscription_cycle",
    due_date: datetime | None = None,
    paid_at: datetime | None = None,
    payment_intent: str | None = None,
    amount_paid_override: int | None = None,
    attempt_count: int = 0,
    next_payment_attempt: datetime | None = None,
    starting_balance: int = 0,
    tax_rate_percent: Decimal | None = None,
    tax_rate_id: str | None = None,
    discount: Obj | None = None,
    default_payment_method: str | None = None,
    description: str | None = None,
) -> Obj:
    """A finalized (or draft) invoice; totals, taxes, discounts and balances computed from the lines.

    ``starting_balance`` is the customer's balance applied (negative = credit used).
    A paid invoice's ``payments`` list names its payment intent.
    """
    currency = str(customer.get("currency") or (lines[0]["currency"] if lines else "usd")).lower()
    percent = None
    if discount is not None:
        percent = Decimal(str(discount["source"]["coupon"]["percent_off"]))
    subtotal = 0
    discount_total = 0
    tax_total = 0
    taxable_total = 0
    for line in lines:
        subtotal += int(line["amount"])
        line_discount = 0
        if discount is not None and percent is not None and line.get("discountable"):
            line_discount = _round(Decimal(int(line["amount"])) * percent / 100)
            line["discount_amounts"] = [{"amount": line_discount, "discount": discount["id"]}]
            line["discounts"] = [discount["id"]]
        discount_total += line_discount
        if tax_rate_percent is not None:
            taxable = int(line["amount"]) - line_discount
            line_tax = _round(Decimal(taxable) * tax_rate_percent / 100)
            line["taxes"] = [
                {
                    "amount": line_tax,
                    "tax_behavior": "exclusive",
                    "tax_rate_details": {"tax_rate": tax_rate_id},
                    "taxability_reason": "standard_rated",
                    "taxable_amount": taxable,
                    "type": "tax_rate_details",
                }
            ]
            tax_total += line_tax
            taxable_total += taxable
    total_excluding_tax = subtotal - discount_total
    total = total_excluding_tax + tax_total
    finalized = status != "draft"
    net = total + starting_balance
    amount_due = max(0, net) if finalized else total
    ending_balance = min(0, net) if finalized else None
    if status == "paid":
        amount_paid = amount_due if amount_paid_override is None else amount_paid_override
        amount_remaining = 0
    elif status in {"void", "uncollectible"}:
        amount_paid, amount_remaining = 0, 0 if status == "void" else amount_due
    else:
        amount_paid, amount_remaining = 0, amount_due
    payments: list[Obj] = []
    if payment_intent:
        payments.append(
            {
                "id": digest_id("inpay", id, payment_intent),
                "object": "invoice_payment",
                "amount_paid": amount_paid if status == "paid" else None,
                "amount_requested": amount_due,
                "created": unix(created),
                "currency": currency,
                "invoice": id,
                "is_default": True,
                "livemode": False,
                "payment": {"payment_intent": payment_intent, "type": "payment_intent"},
                "status": "paid" if status == "paid" else "open",
                "status_transitions": {"canceled_at": None, "paid_at": unix(paid_at)},
            }
        )
    address_obj = customer.get("address") or {}
    return {
        "id": id,
        "object": "invoice",
        "account_country": "US",
        "account_name": ACCOUNT_NAME,
        "account_tax_ids": None,
        "amount_due": amount_due,
        "amount_overpaid": 0,
        "amount_paid": amount_paid,
        "amount_remaining": amount_remaining,
        "amount_shipping": 0,
        "application": None,
        "attempt_count": attempt_count,
        "attempted": attempt_count > 0 or status == "paid",
        "auto_advance": status in {"draft", "open"},
        "automatic_tax": {
            "disabled_reason": None,
            "enabled": False,
            "liability": None,
            "provider": None,
            "status": None,
        },
        "automatically_finalizes_at": None,
        "billing_reason": billing_reason,
        "collection_method": collection_method,
        "created": unix(created),
        "currency": currency,
        "custom_fields": None,
        "customer": customer["id"],
        "customer_address": address_obj,
        "customer_email": customer.get("email"),
        "customer_name": customer.get("name"),
        "customer_phone": None,
        "customer_shipping": None,
        "customer_tax_exempt": customer.get("tax_exempt") or "none",
        "customer_tax_ids": [
            {"type": t["type"], "value": t["value"]}
            for t in ((customer.get("tax_ids") or {}).get("data") or [])
        ],
        "default_payment_method": default_payment_method,
        "default_source": None,
        "default_tax_rates": [],
        "description": description,
        "discounts": [discount["id"]] if discount else [],
        "due_date": unix(due_date),
        "effective_at": unix(created) if finalized else None,
        "ending_balance": ending_balance,
        "footer": None,
        "from_invoice": None,
        "hosted_invoice_url": hosted_invoice_url(id) if finalized else None,
        "invoice_pdf": invoice_pdf_url(id) if finalized else None,
        "issuer": {"type": "self"},
        "last_finalization_error": None,
        "latest_revision": None,
        "lines": _list(lines, f"/v1/invoices/{id}/lines"),
        "livemode": False,
        "metadata": {},
        "next_payment_attempt": unix(next_payment_attempt),
        "number": number,
        "on_behalf_of": None,
        "parent": {
            "quote_details": None,
            "subscription_details": {"metadata": {}, "subscription": subscription_id},
            "type": "subscription_details",
        }
        if subscription_id
        else None,
        "payment_settings": {
            "default_mandate": None,
            "payment_method_options": None,
            "payment_method_types": None,
        },
        "payments": _list(payments, f"/v1/invoice_payments?invoice={id}"),
        "period_end": unix(period_end),
        "period_start": unix(period_start),
        "post_payment_credit_notes_amount": 0,
        "pre_payment_credit_notes_amount": 0,
        "receipt_number": None,
        "rendering": None,
        "shipping_cost": None,
        "shipping_details": None,
        "starting_balance": starting_balance,
        "statement_descriptor": None,
        "status": status,
        "status_transitions": {
            "finalized_at": unix(created) if finalized else None,
            "marked_uncollectible_at": None,
            "paid_at": unix(paid_at) if status == "paid" else None,
            "voided_at": None,
        },
        "subtotal": subtotal,
        "subtotal_excluding_tax": subtotal,
        "test_clock": None,
        "total": total,
        "total_discount_amounts": [{"amount": discount_total, "discount": discount["id"]}]
        if discount is not None and discount_total
        else [],
        "total_excluding_tax": total_excluding_tax,
        "total_pretax_credit_amounts": [],
        "total_taxes": [
            {
                "amount": tax_total,
                "tax_behavior": "exclusive",
                "tax_rate_details": {"tax_rate": tax_rate_id},
                "taxability_reason": "standard_rated",
                "taxable_amount": taxable_total,
                "type": "tax_rate_details",
            }
        ]
        if tax_rate_percent is not None
        else [],
        "webhooks_delivered_at": unix(created),
    }


# --- payments -------------------------------------------------------------------------

# Stripe's failure codes and the issuer's decline reasons, with Stripe's messages.
FAILURES: dict[str, tuple[str, str, str]] = {
    # failure_code: (outcome.reason / decline code, failure_message, outcome.type)
    "expired_card": ("expired_card", "Your card has expired.", "issuer_declined"),
    "card_declined": ("generic_decline", "Your card was declined.", "issuer_declined"),
    "insufficient_funds": (
        "insufficient_funds",
        "Your card has insufficient funds.",
        "issuer_declined",
    ),
}


def charge(
    *,
    id: str,
    customer_id: str,
    amount: int,
    currency: str,
    created: datetime,
    payment_method: Obj,
    payment_intent: str | None,
    description: str | None = None,
    failure_code: str | None = None,
    refunds: list[Obj] | None = None,
    disputed: bool = False,
    receipt_email: str | None = None,
) -> Obj:
    """A succeeded charge, or a failed one when ``failure_code`` is given."""
    refunds = list(refunds or [])
    failed = failure_code is not None
    refunded_total = sum(int(r["amount"]) for r in refunds if r.get("status") == "succeeded")
    if failed:
        reason, message, outcome_type = FAILURES.get(
            failure_code or "", (failure_code or "", "Your card was declined.", "issuer_declined")
        )
        outcome: Obj = {
            "advice_code": "do_not_try_again" if failure_code == "expired_card" else None,
            "network_advice_code": None,
            "network_decline_code": "54" if failure_code == "expired_card" else "05",
            "network_status": "declined_by_network",
            "reason": reason,
            "risk_level": "normal",
            "seller_message": f"The bank returned the decline code `{reason}`.",
            "type": outcome_type,
        }
    else:
        message = None
        outcome = {
            "advice_code": None,
            "network_advice_code": None,
            "network_decline_code": None,
            "network_status": "approved_by_network",
            "reason": None,
            "risk_level": "normal",
            "seller_message": "Payment complete.",
            "type": "authorized",
        }
    return {
        "id": id,
        "object": "charge",
        "amount": amount,
        "amount_captured": 0 if failed else amount,
        "amount_refunded": refunded_total,
        "application": None,
        "application_fee": None,
        "application_fee_amount": None,
        "balance_transaction": None if failed else digest_id("txn", id),
        "billing_details": payment_method.get("billing_details"),
        "calculated_statement_descriptor": "BILLING DESK SANDBOX",
        "captured": not failed,
        "created": unix(created),
        "currency": currency.lower(),
        "customer": customer_id,
        "description": description,
        "disputed": disputed,
        "failure_balance_transaction": None,
        "failure_code": failure_code,
        "failure_message": message,
        "fraud_details": {},
        "livemode": False,
        "metadata": {},
        "on_behalf_of": None,
        "outcome": outcome,
        "paid": not failed,
        "payment_intent": payment_intent,
        "payment_method": payment_method["id"],
        "payment_method_details": payment_method_details(payment_method),
        "receipt_email": receipt_email,
        "receipt_number": None,
        "receipt_url": None if failed else f"{SANDBOX_HOST}/r/{id}",
        "refunded": bool(refunds) and refunded_total >= amount,
        "refunds": _list(refunds, f"/v1/charges/{id}/refunds"),
        "review": None,
        "shipping": None,
        "source_transfer": None,
        "statement_descriptor": None,
        "statement_descriptor_suffix": None,
        "status": "failed" if failed else "succeeded",
        "transfer_data": None,
        "transfer_group": None,
    }


def refund(
    *,
    id: str,
    charge_id: str,
    payment_intent: str | None,
    amount: int,
    currency: str,
    created: datetime,
    reason: str | None,
    metadata: dict[str, str] | None = None,
) -> Obj:
    return {
        "id": id,
        "object": "refund",
        "amount": amount,
        "balance_transaction": digest_id("txn", id),
        "charge": charge_id,
        "created": unix(created),
        "currency": currency.lower(),
        "destination_details": {
            "card": {
                "reference": None,
                "reference_status": "pending",
                "reference_type": "acquirer_reference_number",
                "type": "refund",
            },
            "type": "card",
        },
        "metadata": dict(metadata or {}),
        "payment_intent": payment_intent,
        "reason": reason,
        "receipt_number": None,
        "source_transfer_reversal": None,
        "status": "succeeded",
        "transfer_reversal": None,
    }


def balance_transaction(
    *,
    id: str,
    customer_id: str,
    amount: int,
    currency: str,
    created: datetime,
    ending_balance: int,
    type: str = "adjustment",
    description: str | None = None,
    invoice_id: str | None = None,
    metadata: dict[str, str] | None = None,
) -> Obj:
    return {
        "id": id,
        "object": "customer_balance_transaction",
        "amount": amount,
        "checkout_session": None,
        "created": unix(created),
        "credit_note": None,
        "currency": currency.lower(),
        "customer": customer_id,
        "description": description,
        "ending_balance": ending_balance,
        "invoice": invoice_id,
        "livemode": False,
        "metadata": dict(metadata or {}),
        "type": type,
    }
