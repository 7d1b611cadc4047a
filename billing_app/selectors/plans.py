"""Which plans a customer's subscription can change to (the panel's plan-change form).

The subscription is the one the panel shows and changes: the context's primary
subscription (``selectors.context.subscription.primary_subscription``), when it is
live (the rulebook's ``is_live``, where a plan change is allowed).
"""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext, ngettext

from ..errors import NotFound
from ..models import MirrorCustomer, MirrorPrice, MirrorProduct, MirrorSubscription, Workspace
from ..money import money_json, short_money
from ..subscriptions import is_live
from .context import Catalog, primary_subscription, sub_items
from .context.products import period_words
from .context.subscription import per_period
from .products import addon_product_ids

Obj = dict[str, Any]

INTERVAL_ORDER = {"day": 0, "week": 1, "month": 2, "year": 3}
# A plan product's pricing family (``metadata.pricing``: ``per_seat`` or ``flat``). When the
# current plan's product names one, the form offers the plans of that family only: a
# flat plan priced × the seats of a per-seat one reads nonsense (issue 14: Starter at
# 50 × $49 = $2,450 above Business at $1,500). Products without it are always offered.
PRICING_METADATA_KEY = "pricing"


def _family(product: MirrorProduct | None) -> str:
    return str(((product.metadata if product else None) or {}).get(PRICING_METADATA_KEY) or "")


def plan_options(*, workspace: Workspace, customer_id: str) -> dict[str, Any]:
    """Active recurring plan prices in the currency of the customer's primary live subscription.

    Add-on products (``metadata.addon = "true"``) and archived products or prices are
    left out; the subscription's current price is marked. The action service
    re-checks the chosen price (active, recurring, same currency) before any change.
    """
    customer = MirrorCustomer.objects.filter(
        workspace=workspace, stripe_id=customer_id, deleted=False
    ).first()
    if customer is None:
        raise NotFound(
            gettext("No customer %(id)s in this workspace.") % {"id": customer_id},
            code="customer_not_found",
        )
    subscription, catalog = _subscription_of(workspace, customer_id)
    currency = str((subscription or {}).get("currency") or customer.currency or "").upper()
    current: set[str] = set()
    quantity = 1
    interval: tuple[str, int] | None = None
    plan_product = ""
    if subscription is not None:
        current = {catalog.view(item).price.id for item in sub_items(subscription)}
        plan = catalog.plan_item(subscription)
        if plan is not None:
            view = catalog.view(plan)
            quantity = view.quantity or 1
            interval = (view.price.interval or "month", view.price.interval_count)
            plan_product = str(view.price.product_id or "")
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
    addons = addon_product_ids(workspace=workspace, product_ids=products)
    family = _family(
        products.get(plan_product)
        or MirrorProduct.objects.filter(workspace=workspace, stripe_id=plan_product).first()
        if plan_product
        else None
    )
    options = [
        _option(price, product, quantity=quantity, current=price.stripe_id in current)
        for price in prices
        if (product := products.get(price.product_id)) is not None
        and product.active
        and product.stripe_id not in addons
        and (not family or _family(product) in ("", family))
    ]
    options.sort(
        key=lambda o: (INTERVAL_ORDER.get(o["interval"], 9), o["amount"]["amount"], o["name"])
    )
    return {
        "subscription_id": subscription.get("id") if subscription else None,
        "quantity": quantity,
        "currency": currency,
        "plans": options,
    }


def _option(price: MirrorPrice, product: MirrorProduct, *, quantity: int, current: bool) -> Obj:
    """One plan price, priced for the subscription's seat count."""
    unit = int(price.unit_amount or 0)
    amount = unit * quantity
    count = price.recurring_interval_count or 1
    every = price.recurring_interval or "month"
    name = product.name or price.nickname or price.stripe_id
    display = gettext("%(name)s (%(price)s)") % {
        "name": name,
        "price": per_period(short_money(amount, price.currency), period_words(every, count)),
    }
    if quantity > 1:
        display += " · " + ngettext(
            "%(unit)s × %(count)d seat", "%(unit)s × %(count)d seats", quantity
        ) % {"unit": short_money(unit, price.currency), "count": quantity}
    return {
        "id": price.stripe_id,
        "name": name,
        "nickname": price.nickname,
        "unit_amount": money_json(unit, price.currency),
        "quantity": quantity,
        "amount": money_json(amount, price.currency),
        "interval": every,
        "interval_count": count,
        "current": current,
        "display": display,
    }


def _subscription_of(workspace: Workspace, customer_id: str) -> tuple[Obj | None, Catalog]:
    """The subscription the panel changes: the context's primary one, when it is live."""
    rows = MirrorSubscription.objects.filter(workspace=workspace, customer_id=customer_id)
    subs = [dict(r.data) for r in rows.order_by("-created", "-id") if r.data]
    catalog = Catalog(workspace, subs)
    primary = primary_subscription(subs, catalog)
    return (primary if primary is not None and is_live(primary.get("status")) else None), catalog
