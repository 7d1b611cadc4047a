"""Invoices and their lines: totals, discounts, taxes and balances computed from the lines."""

from __future__ import annotations

from datetime import datetime
from decimal import ROUND_HALF_EVEN, Decimal

from ....money import format_money
from .catalog import price_product_id, price_product_name
from .common import (
    ACCOUNT_NAME,
    Obj,
    _list,
    digest_id,
    hosted_invoice_url,
    invoice_pdf_url,
    unix,
)


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
