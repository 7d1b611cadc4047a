"""Products and items as the context reads them: names, add-on flags, and the rulebook's views.

What is a plan item, an add-on or a monthly amount is decided by the rulebook
(``billing_app.subscriptions``); this module only finds the products a customer's
subscriptions name (expanded in the mirrored JSON, else the mirrored product rows)
and reads Stripe-shaped items through it.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.utils.translation import gettext, npgettext, pgettext

from ...models import MirrorProduct, Workspace
from ...subscriptions import ItemView, is_addon_product, item_view_from_stripe, plan_item
from .shapes import Obj


def sub_items(sub: Obj) -> list[Obj]:
    """A Stripe-shaped subscription's items."""
    return list((sub.get("items") or {}).get("data") or [])


def product_id(price: Obj) -> str:
    product = price.get("product")
    return str(product.get("id") or "") if isinstance(product, dict) else str(product or "")


def interval_text(price: Obj) -> str:
    """``month``, ``year``, ``3 months``: how often a price bills."""
    recurring = price.get("recurring") or {}
    count = int(recurring.get("interval_count") or 1)
    interval = recurring.get("interval") or "month"
    return f"{count} {interval}s" if count > 1 else interval


def interval_words(price: Obj) -> str:
    """:func:`interval_text` in the active language (``month``, ``3 months``; ``Monat``)."""
    recurring = price.get("recurring") or {}
    count = int(recurring.get("interval_count") or 1)
    return period_words(str(recurring.get("interval") or "month"), count)


def period_words(interval: str, count: int = 1) -> str:
    """``month`` (one) or ``3 months`` in the active language; an unknown interval as is."""
    if count > 1:
        if interval == "day":
            text = npgettext("billing interval", "%(count)d day", "%(count)d days", count)
        elif interval == "week":
            text = npgettext("billing interval", "%(count)d week", "%(count)d weeks", count)
        elif interval == "year":
            text = npgettext("billing interval", "%(count)d year", "%(count)d years", count)
        elif interval == "month":
            text = npgettext("billing interval", "%(count)d month", "%(count)d months", count)
        else:
            return f"{count} {interval}s"
        return text % {"count": count}
    if interval == "day":
        return pgettext("billing interval", "day")
    if interval == "week":
        return pgettext("billing interval", "week")
    if interval == "year":
        return pgettext("billing interval", "year")
    if interval == "month":
        return pgettext("billing interval", "month")
    return interval


class Catalog:
    """Product names and add-on flags, from expanded prices or the mirrored products.

    One query at most: the mirrored products the subscriptions name without expanding.
    """

    def __init__(self, workspace: Workspace, subscriptions: Iterable[Obj]):
        self.products: dict[str, Obj] = {}
        missing: set[str] = set()
        for sub in subscriptions:
            for item in sub_items(sub):
                product = (item.get("price") or {}).get("product")
                if isinstance(product, dict):
                    self.products[str(product.get("id"))] = product
                elif product:
                    missing.add(str(product))
        missing -= set(self.products)
        if missing:
            for row in MirrorProduct.objects.filter(workspace=workspace, stripe_id__in=missing):
                self.products[row.stripe_id] = {
                    "id": row.stripe_id,
                    "name": row.name,
                    "metadata": row.metadata,
                }
        self.addon_products = frozenset(
            pid for pid, product in self.products.items() if is_addon_product(product)
        )

    def name(self, price: Obj) -> str:
        product = self.products.get(product_id(price)) or {}
        return str(
            product.get("name") or price.get("nickname") or product_id(price) or gettext("Plan")
        )

    def view(self, item: Obj) -> ItemView:
        """A Stripe-shaped item as the rulebook reads it."""
        return item_view_from_stripe(item, addon_products=self.addon_products)

    def plan_item(self, sub: Obj) -> Obj | None:
        """The subscription's plan item (the rulebook's ``plan_item``); None when all are add-ons."""
        return plan_item(sub_items(sub), self.view)


__all__ = ["Catalog", "interval_text", "interval_words", "period_words", "product_id", "sub_items"]
