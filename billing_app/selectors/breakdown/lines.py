"""An invoice's lines as the breakdown reads them: their products, kinds and recurring charges.

A line is a *proration* (Stripe's "Unused time on …" / "Remaining time on …"), an
*add-on* (its product is marked ``metadata.addon = "true"``, the rulebook's
``is_addon_product``), the *plan* (a subscription item's line) or a *one-time*
invoice item.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime

from django.utils.translation import gettext, ngettext

from ...models import (
    MirrorInvoiceLine,
    MirrorPrice,
    MirrorProduct,
    MirrorSubscriptionItem,
    Workspace,
)
from ...playbook import interval_word
from ...subscriptions import is_addon_product
from ..context.subscription_state import date_words

_DESCRIBED = re.compile(
    r"^(?:(?:Unused|Remaining) time on )?(?:\d+ × )?(?P<name>.+?)"
    r"(?: \(at .*\)| (?:after|from) .*)?$"
)


def iso(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None


def long_date(value: datetime | None) -> str:
    """``March 1, 2026`` (German ``1. März 2026``)."""
    return date_words(value) if value else ""


def plural(n: int, word: str) -> str:
    """``3 seats``, ``1 day``: a count of seats or days in the active language."""
    if word == "seat":
        return ngettext("%(count)d seat", "%(count)d seats", n) % {"count": n}
    if word == "day":
        return ngettext("%(count)d day", "%(count)d days", n) % {"count": n}
    return f"{n} {word}{'' if n == 1 else 's'}"


@dataclass
class LineCatalog:
    """The mirrored prices and products an invoice's lines name."""

    names: dict[str, str] = field(default_factory=dict)
    addons: set[str] = field(default_factory=set)
    price_products: dict[str, str] = field(default_factory=dict)
    price_units: dict[str, int] = field(default_factory=dict)
    price_intervals: dict[str, tuple[str, int]] = field(default_factory=dict)

    def product_of(self, line: MirrorInvoiceLine | MirrorSubscriptionItem) -> str:
        return line.product_id or self.price_products.get(line.price_id, "") or line.price_id

    def name(self, product_id: str) -> str:
        return self.names.get(product_id) or product_id or gettext("Item")

    def is_addon(self, product_id: str) -> bool:
        return product_id in self.addons

    def interval_word(self, price_id: str) -> str:
        """``monthly``, ``yearly``…: how often the price bills (monthly when unknown)."""
        return interval_word(*self.price_intervals.get(price_id, ("month", 1)))


def line_catalog_load(
    workspace: Workspace, price_ids: set[str], product_ids: set[str]
) -> LineCatalog:
    """Two queries: the prices, then their products and the lines' own."""
    catalog = LineCatalog()
    for price in MirrorPrice.objects.filter(workspace=workspace, stripe_id__in=price_ids):
        catalog.price_products[price.stripe_id] = price.product_id
        if price.unit_amount is not None:
            catalog.price_units[price.stripe_id] = int(price.unit_amount)
        catalog.price_intervals[price.stripe_id] = (
            price.recurring_interval,
            price.recurring_interval_count,
        )
        product_ids.add(price.product_id)
        if price.nickname:
            catalog.names.setdefault(price.product_id, price.nickname)
    for product in MirrorProduct.objects.filter(workspace=workspace, stripe_id__in=product_ids):
        if product.name:
            catalog.names[product.stripe_id] = product.name
        if is_addon_product({"id": product.stripe_id, "metadata": product.metadata or {}}):
            catalog.addons.add(product.stripe_id)
    return catalog


def line_kind(line: MirrorInvoiceLine, catalog: LineCatalog) -> str:
    """``proration``, ``addon``, ``plan`` or ``one_time``."""
    if line.proration:
        return "proration"
    if not line.subscription_item_id and not line.price_id:
        return "one_time"
    if catalog.is_addon(catalog.product_of(line)):
        return "addon"
    if line.subscription_item_id:
        return "plan"
    return "one_time"


def line_name(line: MirrorInvoiceLine, catalog: LineCatalog, product: str) -> str:
    """The product's name; unmirrored, the name in Stripe's line wording ``50 × Name (at …)``."""
    if product in catalog.names:
        return catalog.names[product]
    match = _DESCRIBED.match(line.description or "")
    return match["name"] if match else catalog.name(product)


@dataclass
class Recurring:
    """What an invoice charges for one product on its cycle (plan or add-on)."""

    product_id: str
    name: str
    amount: int
    quantity: int
    unit_amount: int | None
    addon: bool
    price_id: str
    interval: str = "monthly"


def recurring_charges(lines: list[MirrorInvoiceLine], catalog: LineCatalog) -> dict[str, Recurring]:
    """The invoice's plan and add-on charges, by product."""
    found: dict[str, Recurring] = {}
    for line in lines:
        kind = line_kind(line, catalog)
        if kind not in ("plan", "addon"):
            continue
        product = catalog.product_of(line)
        quantity = int(line.quantity or 1)
        entry = found.get(product)
        if entry is None:
            found[product] = Recurring(
                product_id=product,
                name=line_name(line, catalog, product),
                amount=line.amount,
                quantity=quantity,
                unit_amount=line.amount // quantity if quantity else None,
                addon=kind == "addon",
                price_id=line.price_id,
                interval=catalog.interval_word(line.price_id),
            )
        else:
            entry.amount += line.amount
            entry.quantity += quantity
    return found
