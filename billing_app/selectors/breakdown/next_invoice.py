"""What a subscription's next renewal will invoice, from the mirrored rows.

The items due at the next renewal (those on another cycle, e.g. a yearly add-on,
are left out; a downgrade scheduled for the renewal is priced at its new price),
less the running discounts (a percentage or an amount; ``once`` coupons are spent),
plus tax at the given rate. Before any credit balance.
"""

from __future__ import annotations

from datetime import datetime
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from ...models import (
    MirrorDiscount,
    MirrorPrice,
    MirrorSubscription,
    MirrorSubscriptionItem,
    Workspace,
)
from ...money import money_json
from ...subscriptions import is_billing, item_view_from_mirror, period_amount

Obj = dict[str, Any]


def _round(value: Decimal) -> int:
    return int(value.quantize(Decimal(1), rounding=ROUND_HALF_EVEN))


def _renewal_at(sub: MirrorSubscription, items: list[MirrorSubscriptionItem]) -> datetime | None:
    ends = [i.current_period_end for i in items if i.current_period_end]
    when = min(ends) if ends else sub.current_period_end
    if sub.status == "trialing" and sub.trial_end:
        when = sub.trial_end
    return when


def _subtotal(
    workspace: Workspace,
    sub: MirrorSubscription,
    items: list[MirrorSubscriptionItem],
    when: datetime | None,
) -> int:
    meta = sub.metadata or {}
    pending_item, pending_price = meta.get("pending_item_id"), meta.get("pending_price_id")
    target = (
        MirrorPrice.objects.filter(workspace=workspace, stripe_id=pending_price).first()
        if pending_item and pending_price
        else None
    )
    subtotal = 0
    for item in items:
        ends = item.current_period_end
        if ends and when and sub.status != "trialing" and ends.date() != when.date():
            continue  # billed on another cycle (e.g. a yearly add-on)
        view = item_view_from_mirror(item)
        if target is not None and item.stripe_id == pending_item:
            # a downgrade scheduled for this renewal
            subtotal += int(target.unit_amount or 0) * view.quantity
        else:
            subtotal += period_amount(view)
    return subtotal


def _discount(
    workspace: Workspace, sub: MirrorSubscription, subtotal: int, when: datetime | None
) -> int:
    discount = 0
    for d in MirrorDiscount.objects.filter(
        workspace=workspace, subscription_id=sub.stripe_id, active=True
    ):
        if d.end is not None and when is not None and d.end <= when:
            continue
        if d.duration == "once":
            continue
        if d.percent_off is not None:
            discount += _round(Decimal(subtotal) * Decimal(d.percent_off) / 100)
        elif d.amount_off:
            discount += int(d.amount_off)
    return min(discount, subtotal)


def next_invoice_estimate(
    *, workspace: Workspace, subscription_id: str, tax_rate: Decimal | None = None
) -> Obj | None:
    """What the subscription's next renewal will invoice (before any credit balance)."""
    sub = MirrorSubscription.objects.filter(workspace=workspace, stripe_id=subscription_id).first()
    if sub is None or not is_billing(sub.status):
        return None
    if sub.cancel_at_period_end or sub.cancel_at:
        return None
    if (sub.pause_collection or {}).get("behavior") == "void":
        return None
    items = list(
        MirrorSubscriptionItem.objects.filter(workspace=workspace, subscription_id=sub.stripe_id)
    )
    if not items:
        return None
    when = _renewal_at(sub, items)
    currency = (sub.currency or items[0].currency or workspace.base_currency).upper()
    subtotal = _subtotal(workspace, sub, items, when)
    discount = _discount(workspace, sub, subtotal, when)
    tax = _round(Decimal(subtotal - discount) * tax_rate) if tax_rate else 0
    total = subtotal - discount + tax
    return {
        "date": when.date().isoformat() if when else None,
        "subtotal": money_json(subtotal, currency),
        "discount": money_json(discount, currency),
        "tax": money_json(tax, currency),
        "total": money_json(total, currency),
        "amount": money_json(total, currency),
        "subscription_id": sub.stripe_id,
    }
