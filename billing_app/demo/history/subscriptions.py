"""The subscriptions the history's plan changes, seat changes and discounts act on.

Each history customer (``cus_hist_NNN``) has one subscription on a per-seat plan of
the demo catalog (Business, Enterprise Pro, Enterprise Plus). The writer keeps its
state as the history changes it, and every change records the MRR contract the
monthly report reads: ``mrr_delta`` (signed int, minor units per month, in the
subscription's currency) and ``mrr_currency``, computed with the rulebook from the
prices, quantities and discount before and after the change — never drawn at random.

Pure: no database, no clock.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from ...subscriptions import (
    ItemView,
    item_view_from_stripe,
    monthly_total,
    plan_change_direction,
    price_view_from_stripe,
)
from ..catalog import DemoCatalog
from .profile import DISCOUNT_PERCENTS, SEAT_STEPS

Obj = dict[str, Any]

# The per-seat plans, cheapest first: an upgrade moves up this ladder, a downgrade down.
_CATALOG = DemoCatalog(datetime(2023, 1, 1, tzinfo=UTC))
PLAN_LADDER: tuple[Obj, ...] = (_CATALOG.business, _CATALOG.enterprise, _CATALOG.enterprise_plus)


@dataclass(frozen=True)
class HistorySubscription:
    id: str
    price: Obj  # a Stripe-shaped price of the demo catalog
    quantity: int
    percent_off: int = 0  # a "forever" discount, once one was applied

    @property
    def currency(self) -> str:
        return str(self.price["currency"]).upper()

    def items(self) -> list[ItemView]:
        item = {"id": f"si_{self.id.removeprefix('sub_')}", "price": self.price}
        return [item_view_from_stripe(item | {"quantity": self.quantity})]

    def monthly(self) -> Decimal:
        """What the subscription bills a month after its discount (fractional minor units)."""
        return monthly_total(self.items()) * (100 - self.percent_off) / 100


def history_subscription(customer: int) -> HistorySubscription:
    """The subscription of history customer ``customer`` before the history changes it."""
    return HistorySubscription(
        id=f"sub_hist_{customer:03d}",
        price=PLAN_LADDER[customer % len(PLAN_LADDER)],
        quantity=5 + (customer * 7) % 36,
    )


def mrr_record(before: HistorySubscription, after: HistorySubscription) -> dict[str, Any]:
    """``{"mrr_delta", "mrr_currency"}`` of a change from ``before`` to ``after``."""
    delta = (after.monthly() - before.monthly()).quantize(Decimal(1))
    return {"mrr_delta": int(delta), "mrr_currency": before.currency}


@dataclass(frozen=True)
class Change:
    """One change to a history subscription: what the action asked and what it recorded."""

    after: HistorySubscription
    params: dict[str, Any]
    result: dict[str, Any]


def plan_change(sub: HistorySubscription, *, upgrade: bool, rng: random.Random) -> Change:
    """To another plan of the ladder: a dearer one for an upgrade (if any), else a cheaper one."""
    rank = next(n for n, p in enumerate(PLAN_LADDER) if p["id"] == sub.price["id"])
    higher, lower = PLAN_LADDER[rank + 1 :], PLAN_LADDER[:rank]
    target = rng.choice((higher or lower) if upgrade else (lower or higher))
    after = replace(sub, price=target)
    direction = plan_change_direction(
        current=price_view_from_stripe(sub.price),
        new=price_view_from_stripe(target),
        quantity=sub.quantity,
    )
    return Change(
        after=after,
        params={"subscription_id": sub.id, "price_id": target["id"]},
        result={
            "subscription_id": sub.id,
            "direction": direction,
            "new_price_id": target["id"],
            "previous_price_id": sub.price["id"],
        }
        | mrr_record(sub, after),
    )


def seat_change(sub: HistorySubscription, *, rng: random.Random) -> Change:
    """More or fewer seats on the plan (never fewer than one)."""
    step = rng.choice(SEAT_STEPS)
    quantity = sub.quantity + step if sub.quantity + step >= 1 else sub.quantity + abs(step)
    after = replace(sub, quantity=quantity)
    return Change(
        after=after,
        params={"subscription_id": sub.id, "quantity": quantity},
        result={
            "subscription_id": sub.id,
            "status": "active",
            "quantity": quantity,
            "previous_quantity": sub.quantity,
        }
        | mrr_record(sub, after),
    )


def discount(sub: HistorySubscription, *, rng: random.Random, coupon_id: str) -> Change:
    """A retention discount for good (it replaces a discount the subscription had)."""
    percent = rng.choice(DISCOUNT_PERCENTS)
    after = replace(sub, percent_off=percent)
    return Change(
        after=after,
        params={"subscription_id": sub.id, "percent_off": str(percent), "duration": "forever"},
        result={
            "subscription_id": sub.id,
            "coupon_id": coupon_id,
            "percent_off": float(percent),
            "duration": "forever",
            "duration_in_months": None,
        }
        | mrr_record(sub, after),
    )
