"""The sandbox's products and prices, shared by the seeded customers and the history.

One place names every price the demo sells, so a customer's subscription, its
invoices and the history's plan changes all read the same unit amounts.

Two plan families, each a sane ladder, marked on the product (``metadata.pricing``):

* **per seat** — Business $30, Enterprise Pro $48 (the brief's Acme: 50 seats =
  $2,400/month), Enterprise Plus $64 a seat a month;
* **flat** — Starter $49, Pro $149, Team $299 a month for the account (one seat).

The plan-change form offers the plans of the subscription's own family
(``selectors.plans``): Acme's 50 seats see Business $1,500, Enterprise Pro $2,400,
Enterprise Plus $3,200 — not Starter at 50 × $49 = $2,450 above Business (issue 14).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ..providers.sandbox import objects as o

Obj = dict[str, Any]

# ``metadata.pricing`` of a plan product (``selectors.plans.PRICING_METADATA_KEY``).
PER_SEAT, FLAT = "per_seat", "flat"

# What each plan includes, as Stripe holds it on the product (``description`` and
# ``marketing_features``): the panel's plan card and the plan-change message read it.
INCLUDED: dict[str, tuple[str, tuple[str, ...]]] = {
    "Starter": ("For small teams getting started.", ("5 projects", "Email support")),
    "Pro": ("For growing teams.", ("Unlimited projects", "Integrations", "Email support")),
    "Team": ("For teams that work together.", ("Shared workspaces", "Admin roles")),
    "Business": ("Per-seat plan for businesses.", ("SSO", "Audit log", "Phone support")),
    "Enterprise Pro": (
        "Per-seat plan for large organisations.",
        ("SSO", "Audit log", "99.9% uptime SLA"),
    ),
    "Enterprise Plus": (
        "Enterprise Pro with dedicated help.",
        ("Everything in Enterprise Pro", "Dedicated success manager", "Sandbox workspace"),
    ),
    "Growth": ("For growing teams in Europe.", ("Unlimited projects", "EU data residency")),
    "Growth Plus": (
        "Growth with advanced reporting.",
        ("Everything in Growth", "Advanced reporting", "Priority support"),
    ),
    "Standard": ("For teams in Japan.", ("10 projects", "Email support")),
    "Premium": ("Standard with more room.", ("Unlimited projects", "Phone support")),
}


class DemoCatalog:
    """The demo's products and prices as Stripe-shaped dicts (upserted, never duplicated)."""

    def __init__(self, created: datetime):
        self.created = created
        self.products: dict[str, Obj] = {}
        self.prices: dict[str, Obj] = {}
        flat, seat = {"pricing": FLAT}, {"pricing": PER_SEAT}
        self.starter = self.price("starter__monthly", "Starter", 4900, metadata=flat)
        self.pro = self.price("pro__monthly", "Pro", 14900, metadata=flat)
        self.pro_annual = self.price("pro__annual", "Pro", 149000, interval="year", metadata=flat)
        self.team = self.price("team__monthly", "Team", 29900, metadata=flat)
        self.business = self.price("business__monthly", "Business", 3000, metadata=seat)
        self.enterprise = self.price(
            "enterprise_pro__monthly", "Enterprise Pro", 4800, metadata=seat
        )
        self.enterprise_annual = self.price(
            "enterprise_pro__annual", "Enterprise Pro", 57600, interval="year", metadata=seat
        )
        self.enterprise_plus = self.price(
            "enterprise_plus__monthly", "Enterprise Plus", 6400, metadata=seat
        )
        self.analytics = self.price(
            "advanced_analytics__annual", "Advanced Analytics", 600000, interval="year", addon=True
        )
        self.support = self.price(
            "priority_support__annual", "Priority Support", 360000, interval="year", addon=True
        )
        self.api_pack = self.price(
            "api_extra_pack__annual", "API Extra Pack", 240000, interval="year", addon=True
        )
        self.growth_eur = self.price("growth__eur_monthly", "Growth", 99000, currency="eur")
        self.growth_plus_eur = self.price(
            "growth_plus__eur_monthly", "Growth Plus", 149000, currency="eur"
        )
        self.standard_jpy = self.price("standard__jpy_monthly", "Standard", 49800, currency="jpy")
        self.premium_jpy = self.price("premium__jpy_monthly", "Premium", 98000, currency="jpy")

    def price(
        self,
        key: str,
        name: str,
        amount: int,
        currency: str = "usd",
        interval: str | None = "month",
        addon: bool = False,
        metadata: dict[str, str] | None = None,
    ) -> Obj:
        product_id = f"prod_sbx_{key.split('__')[0]}"
        product = self.products.get(product_id) or o.product(
            id=product_id,
            name=name,
            created=self.created,
            metadata={"addon": "true"} if addon else dict(metadata or {}),
        )
        if name in INCLUDED:
            product["description"] = INCLUDED[name][0]
            product["marketing_features"] = [{"name": f} for f in INCLUDED[name][1]]
        self.products[product_id] = product
        price = o.price(
            id=f"price_sbx_{key}",
            product=product,
            unit_amount=amount,
            currency=currency,
            created=self.created,
            interval=interval,
            nickname=name,
        )
        self.prices[price["id"]] = price
        return price

    def objects(self) -> list[Obj]:
        """Every product, then every price, in the order they were named."""
        return [*self.products.values(), *self.prices.values()]
