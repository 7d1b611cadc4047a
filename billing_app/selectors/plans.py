"""Which plans a customer's subscription can change to (the panel's plan-change form)."""

from __future__ import annotations

from typing import Any

from ..errors import NotFound
from ..models import MirrorCustomer, MirrorPrice, MirrorProduct, MirrorSubscription, Workspace
from ..money import Money, short_money
from ..subscriptions import LIVE_STATUSES, is_addon_product, item_view_from_stripe, plan_item

INTERVAL_ORDER = {"day": 0, "week": 1, "month": 2, "year": 3}


def plan_options(*, workspace: Workspace, customer_id: str) -> dict[str, Any]:
    """Active recurring plan prices in the currency of the customer's live subscription.

    Add-on products (``metadata.addon = "true"``) and archived products or prices are
    left out; the subscription's current price is marked. The action service
    re-checks the chosen price (active, recurring, same currency) before any change.
    """
    customer = MirrorCustomer.objects.filter(
        workspace=workspace, stripe_id=customer_id, deleted=False
    ).first()
    if customer is None:
        raise NotFound(f"No customer {customer_id} in this workspace.", code="customer_not_found")
    subscription = (
        MirrorSubscription.objects.filter(
            workspace=workspace, customer_id=customer_id, status__in=LIVE_STATUSES
        )
        .order_by("created", "pk")
        .first()
    )
    currency = ((subscription and subscription.currency) or customer.currency or "").upper()
    current: set[str] = set()
    quantity = 1
    interval: tuple[str, int] | None = None
    if subscription is not None:
        items = (subscription.data.get("items") or {}).get("data") or []
        for item in items:
            current.add(item_view_from_stripe(item).price.id)
        plan = _plan_item(workspace, items)
        if plan is not None:
            quantity = int(plan.get("quantity") or 1)
            recurring = (plan.get("price") or {}).get("recurring") or {}
            interval = (
                recurring.get("interval") or "month",
                int(recurring.get("interval_count") or 1),
            )
    candidates = MirrorPrice.objects.filter(
        workspace=workspace, active=True, type="recurring", currency__iexact=currency
    )
    if interval is not None:
        # The panel offers plans of the current billing interval (the rulebook would allow
        # another one; changing the interval is not offered from this form).
        candidates = candidates.filter(
            recurring_interval=interval[0], recurring_interval_count=interval[1]
        )
    prices = list(candidates)
    products = {
        p.stripe_id: p
        for p in MirrorProduct.objects.filter(
            workspace=workspace, stripe_id__in={p.product_id for p in prices}
        )
    }
    options: list[dict[str, Any]] = []
    for price in prices:
        product = products.get(price.product_id)
        if product is None or not product.active or _is_addon(product):
            continue
        unit = int(price.unit_amount or 0)
        amount = unit * quantity
        count = price.recurring_interval_count or 1
        every = price.recurring_interval or "month"
        per = every if count == 1 else f"{count} {every}s"
        name = product.name or price.nickname or price.stripe_id
        display = f"{name} ({short_money(amount, price.currency)}/{per})"
        if quantity > 1:
            display += f" · {short_money(unit, price.currency)} × {quantity} seats"
        options.append(
            {
                "id": price.stripe_id,
                "name": name,
                "nickname": price.nickname,
                "unit_amount": Money(unit, price.currency.upper()).to_dict(),
                "quantity": quantity,
                "amount": Money(amount, price.currency.upper()).to_dict(),
                "interval": every,
                "interval_count": count,
                "current": price.stripe_id in current,
                "display": display,
            }
        )
    options.sort(
        key=lambda o: (INTERVAL_ORDER.get(o["interval"], 9), o["amount"]["amount"], o["name"])
    )
    return {
        "subscription_id": subscription.stripe_id if subscription else None,
        "quantity": quantity,
        "currency": currency,
        "plans": options,
    }


def _is_addon(product: MirrorProduct) -> bool:
    return is_addon_product({"id": product.stripe_id, "metadata": product.metadata or {}})


def _plan_item(workspace: Workspace, items: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The subscription's plan item (the rulebook's ``plan_item``); add-on flags from the mirror."""
    product_ids = {item_view_from_stripe(item).price.product_id for item in items}
    addons = {
        product.stripe_id
        for product in MirrorProduct.objects.filter(workspace=workspace, stripe_id__in=product_ids)
        if _is_addon(product)
    }
    return plan_item(items, lambda item: item_view_from_stripe(item, addon_products=addons))
