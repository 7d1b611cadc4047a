"""The MRR change a plan change, a seat change or a discount records when it executes.

The contract the monthly report and the demo read (``BillingAction.result``):
``mrr_delta`` — a signed int, minor units per month, in the subscription's currency —
and ``mrr_currency`` (ISO, upper case). It is computed at execution time, from the
items the provider changes as the preview names them and the prices of the day, with
the rulebook's monthly amounts (``billing_app.subscriptions``), so the report never
derives it later from prices that have moved since. A downgrade scheduled for the period
end changes nothing now, but its delta is recorded with the item's real quantity.

A discount's delta is the percentage of the subscription's monthly amount (all items:
a coupon on the subscription discounts each of them), whatever its duration.
"""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal
from typing import Any

from ...models import MirrorPrice, MirrorSubscription, MirrorSubscriptionItem, Workspace
from ...subscriptions import (
    discounted_mrr_delta,
    item_view_from_mirror,
    monthly_total,
    mrr_delta,
    price_view_from_mirror,
)
from .preconditions import mirror_item_views, subscription_items

MRR_FIELDS = ("mrr_delta", "mrr_currency")


def _record(delta: int, currency: str) -> dict[str, Any]:
    return {"mrr_delta": int(delta), "mrr_currency": currency.upper()}


def _currency(subscription: MirrorSubscription, *fallbacks: str) -> str:
    return next((c for c in (subscription.currency, *fallbacks) if c), "").upper()


def plan_change_mrr(
    *,
    workspace: Workspace,
    subscription: MirrorSubscription,
    item: MirrorSubscriptionItem,
    new_price: MirrorPrice,
    replaced_price_id: str = "",
) -> dict[str, Any]:
    """The plan item's monthly amount on the new price minus on the old one, same quantity.

    ``replaced_price_id`` is the price the provider's preview says it replaces: when it
    names another item's price than the precondition's ``item``, that item is the one.
    """
    if replaced_price_id and replaced_price_id != item.price_id:
        item = next(
            (
                i
                for i in subscription_items(workspace, subscription.stripe_id)
                if i.price_id == replaced_price_id
            ),
            item,
        )
    before = item_view_from_mirror(item)
    after = replace(before, price=price_view_from_mirror(new_price))
    return _record(
        mrr_delta([before], [after]), _currency(subscription, item.currency, new_price.currency)
    )


def seat_change_mrr(
    *, subscription: MirrorSubscription, item: MirrorSubscriptionItem, quantity: int
) -> dict[str, Any]:
    """The item's monthly amount at ``quantity`` minus at its current quantity."""
    before = item_view_from_mirror(item)
    after = replace(before, quantity=int(quantity))
    return _record(mrr_delta([before], [after]), _currency(subscription, item.currency))


def discount_mrr(
    *, workspace: Workspace, subscription: MirrorSubscription, percent_off: Decimal | str
) -> dict[str, Any]:
    """Minus ``percent_off`` of the subscription's monthly amount (every item)."""
    items = subscription_items(workspace, subscription.stripe_id)
    view = mirror_item_views(workspace, items)
    monthly = monthly_total(view(i) for i in items)
    currency = _currency(subscription, *(i.currency for i in items))
    return _record(discounted_mrr_delta(monthly, percent_off=percent_off), currency)


def mrr_recorded(result: dict[str, Any] | None) -> dict[str, Any]:
    """The MRR fields an action already holds (kept while its outcome was unknown)."""
    return {k: result[k] for k in MRR_FIELDS if result and k in result}
