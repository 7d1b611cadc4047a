"""Builders of Stripe-shaped objects for the sandbox simulation and the demo seed.

Each function returns a plain dict in the JSON shape Stripe sends at the API
version pinned in settings (``STRIPE_API_VERSION``): invoices with ``parent``,
``total_taxes`` and an expanded ``payments`` list, invoice lines with
``pricing.price_details`` and ``parent.subscription_item_details``, subscription
items carrying ``current_period_start`` / ``current_period_end``, discounts with
``source.coupon``. The mirror stores these exactly as it would store Stripe's.

Amounts are integer minor units; currencies are lower case, as Stripe writes them.
Everything here is pure: no database, no clock.

One module per kind of object: ``common`` (ids, timestamps, lists, addresses, hosted
pages), ``customers`` (customers, tax ids, payment methods), ``catalog`` (products,
prices, tax rates), ``subscriptions`` (subscriptions, items, coupons, discounts), ``invoices``
(invoices and lines), ``payments`` (charges, refunds, balance transactions). Every
builder is importable from here (``from ...providers.sandbox import objects as o``).
"""

from __future__ import annotations

from .catalog import price, price_product_id, price_product_name, product, tax_rate
from .common import (
    ACCOUNT_NAME,
    SANDBOX_HOST,
    address,
    digest_id,
    hosted_invoice_url,
    invoice_pdf_url,
    unix,
)
from .customers import (
    bank_payment_method,
    card_payment_method,
    customer,
    payment_method_details,
    tax_id,
)
from .invoices import interval_label, invoice, line_item, recurring_line_description
from .payments import FAILURES, balance_transaction, charge, refund
from .subscriptions import coupon, discount, subscription, subscription_item

__all__ = [
    "ACCOUNT_NAME",
    "FAILURES",
    "SANDBOX_HOST",
    "address",
    "balance_transaction",
    "bank_payment_method",
    "card_payment_method",
    "charge",
    "coupon",
    "customer",
    "digest_id",
    "discount",
    "hosted_invoice_url",
    "interval_label",
    "invoice",
    "invoice_pdf_url",
    "line_item",
    "payment_method_details",
    "price",
    "price_product_id",
    "price_product_name",
    "product",
    "recurring_line_description",
    "refund",
    "subscription",
    "subscription_item",
    "tax_id",
    "tax_rate",
    "unix",
]
