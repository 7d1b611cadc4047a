"""Subscriptions, their items, coupons and discounts."""

from __future__ import annotations

from datetime import datetime

from .common import (
    Obj,
    _list,
    unix,
)


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
    default_tax_rates: list[Obj] | None = None,
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
        "default_tax_rates": list(default_tax_rates or []),
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
