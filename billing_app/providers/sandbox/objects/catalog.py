"""Products, prices and tax rates."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from .common import (
    Obj,
    unix,
)


def product(
    *, id: str, name: str, created: datetime, metadata: dict[str, str] | None = None
) -> Obj:
    return {
        "id": id,
        "object": "product",
        "active": True,
        "created": unix(created),
        "default_price": None,
        "description": None,
        "images": [],
        "livemode": False,
        "marketing_features": [],
        "metadata": dict(metadata or {}),
        "name": name,
        "package_dimensions": None,
        "shippable": None,
        "statement_descriptor": None,
        "tax_code": None,
        "type": "service",
        "unit_label": None,
        "updated": unix(created),
        "url": None,
    }


def price(
    *,
    id: str,
    product: Obj | str,
    unit_amount: int,
    currency: str,
    created: datetime,
    interval: str | None = "month",
    interval_count: int = 1,
    nickname: str | None = None,
    lookup_key: str | None = None,
    active: bool = True,
) -> Obj:
    """A per-unit price; ``interval=None`` is a one-time price. ``product`` may be expanded."""
    return {
        "id": id,
        "object": "price",
        "active": active,
        "billing_scheme": "per_unit",
        "created": unix(created),
        "currency": currency.lower(),
        "custom_unit_amount": None,
        "livemode": False,
        "lookup_key": lookup_key,
        "metadata": {},
        "nickname": nickname,
        "product": product,
        "recurring": {
            "interval": interval,
            "interval_count": interval_count,
            "meter": None,
            "trial_period_days": None,
            "usage_type": "licensed",
        }
        if interval
        else None,
        "tax_behavior": "exclusive",
        "tiers_mode": None,
        "transform_quantity": None,
        "type": "recurring" if interval else "one_time",
        "unit_amount": unit_amount,
        "unit_amount_decimal": str(unit_amount),
    }


def price_product_id(price_obj: Obj) -> str:
    product_ref = price_obj.get("product")
    return product_ref.get("id", "") if isinstance(product_ref, dict) else str(product_ref or "")


def price_product_name(price_obj: Obj) -> str:
    product_ref = price_obj.get("product")
    if isinstance(product_ref, dict):
        return str(product_ref.get("name") or "")
    return str(price_obj.get("nickname") or "")


def tax_rate(
    *,
    id: str,
    percentage: Decimal,
    created: datetime,
    country: str,
    display_name: str = "VAT",
    description: str | None = None,
    inclusive: bool = False,
    tax_type: str = "vat",
) -> Obj:
    """A percentage tax rate (Stripe's ``tax_rate``), e.g. Germany's 19 % VAT."""
    number = float(percentage)
    return {
        "id": id,
        "object": "tax_rate",
        "active": True,
        "country": country.upper(),
        "created": unix(created),
        "description": description,
        "display_name": display_name,
        "effective_percentage": number,
        "flat_amount": None,
        "inclusive": inclusive,
        "jurisdiction": country.upper(),
        "jurisdiction_level": "country",
        "livemode": False,
        "metadata": {},
        "percentage": int(number) if number.is_integer() else number,
        "rate_type": "percentage",
        "state": None,
        "tax_type": tax_type,
    }
