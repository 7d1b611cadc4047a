"""A subscription's items and its plan item, read by the rulebook (``billing_app.subscriptions``)."""

from __future__ import annotations

from collections.abc import Collection
from functools import partial
from typing import Any

from ...subscriptions import item_view_from_stripe
from ...subscriptions import plan_item as rulebook_plan_item
from ..rules import subscription_items

Obj = dict[str, Any]


def plan_item(
    subscription: Obj, *, new_product: str | None = None, addon_products: Collection[str] = ()
) -> Obj | None:
    """The subscription's plan item, by the rulebook (``None`` when every item is an add-on).

    ``addon_products``: the add-on products among the items' products when they are not
    expanded (a product's ``metadata.addon``); ``SandboxState._plan_item`` looks them up.
    """
    return rulebook_plan_item(
        subscription_items(subscription),
        partial(item_view_from_stripe, addon_products=addon_products),
        new_product=new_product,
    )
