"""Pure functions that read Stripe objects (plain dicts in Stripe's JSON shape).

Everything the Stripe provider reads from a Stripe object goes through here, so the
shape-conformance test can run each reader over Stripe's own example objects and
check that every field read exists there with the same JSON type.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ...money import Money
from ..base import Page, ProrationLine, SubscriptionResult
from ..rules import ref, subscription_items, ts

Obj = dict[str, Any]


def unix(value: datetime) -> int:
    return int(value.timestamp())


def page_read(listing: Obj) -> Page:
    objects = list(listing.get("data") or [])
    has_more = bool(listing.get("has_more"))
    return Page(
        objects=objects,
        has_more=has_more,
        next_cursor=str(objects[-1]["id"]) if (has_more and objects) else None,
    )


def customer_currency(customer: Obj) -> str:
    return str(customer.get("currency") or "").upper()


def customer_tax_ids(customer: Obj) -> list[dict[str, str]]:
    tax_ids = customer.get("tax_ids")
    data = tax_ids.get("data") if isinstance(tax_ids, dict) else None
    return [
        {
            "id": str(t.get("id") or ""),
            "type": str(t.get("type") or ""),
            "value": str(t.get("value") or ""),
        }
        for t in (data or [])
    ]


def customer_address(customer: Obj) -> dict[str, str]:
    address = customer.get("address") or {}
    return {key: str(value) for key, value in address.items() if value}


def invoice_customer_id(invoice: Obj) -> str:
    return ref(invoice.get("customer"))


def invoice_is_payable(invoice: Obj) -> bool:
    return invoice.get("status") == "open" and bool(invoice.get("hosted_invoice_url"))


def invoice_due_date(invoice: Obj) -> int | None:
    value = invoice.get("due_date")
    return int(value) if value else None


def subscription_period_end(subscription: Obj) -> int | None:
    """The current period's end; in this API version it lives on the items."""
    ends = [
        int(i["current_period_end"])
        for i in subscription_items(subscription)
        if i.get("current_period_end")
    ]
    return min(ends) if ends else None


def subscription_period_start(subscription: Obj) -> int | None:
    starts = [
        int(i["current_period_start"])
        for i in subscription_items(subscription)
        if i.get("current_period_start")
    ]
    return min(starts) if starts else None


def subscription_result(subscription: Obj, *, item_id: str = "") -> SubscriptionResult:
    quantity = None
    for item in subscription_items(subscription):
        if not item_id or item.get("id") == item_id:
            quantity = item.get("quantity")
            break
    pause = subscription.get("pause_collection")
    return SubscriptionResult(
        subscription_id=str(subscription.get("id") or ""),
        status=str(subscription.get("status") or ""),
        trial_end=ts(subscription.get("trial_end")),
        cancel_at_period_end=bool(subscription.get("cancel_at_period_end")),
        cancel_at=ts(subscription.get("cancel_at")),
        canceled_at=ts(subscription.get("canceled_at")),
        pause_collection=dict(pause) if isinstance(pause, dict) else None,
        quantity=quantity,
        schedule_id=ref(subscription.get("schedule")),
    )


def price_recurring(price: Obj) -> tuple[str, int]:
    recurring = price.get("recurring") or {}
    return str(recurring.get("interval") or ""), int(recurring.get("interval_count") or 1)


def recurring_amount_after(subscription: Obj, item_id: str, new_price: Obj) -> Money:
    """The subscription's recurring amount per period after the change, before discounts and tax."""
    total = 0
    for item in subscription_items(subscription):
        price = new_price if item.get("id") == item_id else (item.get("price") or {})
        total += int(price.get("unit_amount") or 0) * int(item.get("quantity") or 1)
    return Money(total, str(new_price.get("currency") or "").upper())


def proration_lines(invoice: Obj) -> list[ProrationLine]:
    lines = []
    currency = str(invoice.get("currency") or "").upper()
    for line in (invoice.get("lines") or {}).get("data") or []:
        parent = line.get("parent") or {}
        details = (
            parent.get("subscription_item_details") or parent.get("invoice_item_details") or {}
        )
        if not details.get("proration"):
            continue
        period = line.get("period") or {}
        lines.append(
            ProrationLine(
                description=str(line.get("description") or ""),
                amount=Money(int(line.get("amount") or 0), currency),
                period_start=ts(period.get("start")),
                period_end=ts(period.get("end")),
                proration=True,
            )
        )
    return lines


def schedule_phase_start(schedule: Obj) -> int | None:
    current = schedule.get("current_phase") or {}
    if current.get("start_date"):
        return int(current["start_date"])
    phases = schedule.get("phases") or []
    return int(phases[0]["start_date"]) if phases and phases[0].get("start_date") else None


def event_object(event: Obj) -> Obj:
    data = event.get("data") or {}
    obj = data.get("object")
    return obj if isinstance(obj, dict) else {}


def event_previous_attributes(event: Obj) -> Obj:
    previous = (event.get("data") or {}).get("previous_attributes")
    return previous if isinstance(previous, dict) else {}
