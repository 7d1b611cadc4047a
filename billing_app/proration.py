"""Stripe's proration arithmetic: the unused part of a period, by seconds.

Stripe credits the unused time on the old price and charges the remaining time
on the new one, each ``amount × (period_end − at) / (period_end − period_start)``
over the seconds of the current period, rounded to the currency's minor unit.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any, Literal

from dateutil.relativedelta import relativedelta


def remaining_fraction(*, period_start: datetime, period_end: datetime, at: datetime) -> Decimal:
    total = Decimal(int((period_end - period_start).total_seconds()))
    if total <= 0:
        return Decimal(0)
    remaining = Decimal(int((period_end - at).total_seconds()))
    remaining = min(max(remaining, Decimal(0)), total)
    return remaining / total


def prorate(amount: int, *, period_start: datetime, period_end: datetime, at: datetime) -> int:
    """``amount`` (minor units for a whole period) scaled to what is left of the period at ``at``."""
    fraction = remaining_fraction(period_start=period_start, period_end=period_end, at=at)
    return int((Decimal(amount) * fraction).quantize(Decimal(1), rounding=ROUND_HALF_EVEN))


def proration_line(
    side: Literal["unused", "remaining"],
    *,
    name: str,
    quantity: int,
    amount: int,
    period_start: datetime,
    period_end: datetime,
    at: datetime,
) -> tuple[str, int]:
    """One of Stripe's two proration lines for ``quantity`` × ``name`` (``amount``: the whole
    period's): the credit for the unused time (negative) or the charge for the remaining
    time, worded as Stripe words them (``Unused time on 50 × Enterprise Pro after 15 Jan 2026``)."""
    share = prorate(amount, period_start=period_start, period_end=period_end, at=at)
    label = f"{_counted(quantity, name)} after {proration_date_label(at)}"
    if side == "unused":
        return f"Unused time on {label}", -share
    return f"Remaining time on {label}", share


def _counted(quantity: int, name: str) -> str:
    return f"{quantity} × {name}" if quantity != 1 else name


def proration_date_label(at: datetime) -> str:
    """The date as Stripe writes it in proration lines: ``15 Jan 2026``."""
    return at.strftime("%d %b %Y")


def period_end_after(
    start: datetime, price: dict[str, Any], *, anchor: datetime | None = None
) -> datetime:
    """The end of the billing period of ``price`` that starts at ``start``.

    Months and years count from the billing cycle ``anchor`` (default: ``start``), as
    Stripe does: anchored on the 31st, periods end on 28 Feb, then 31 Mar.
    """
    recurring = price.get("recurring") or {}
    count = int(recurring.get("interval_count") or 1)
    interval = recurring.get("interval") or "month"
    if interval == "week":
        return start + timedelta(weeks=count)
    if interval == "day":
        return start + timedelta(days=count)
    step = relativedelta(years=count) if interval == "year" else relativedelta(months=count)
    anchor = anchor if anchor is not None and anchor <= start else start
    n = 1
    while (end := anchor + step * n) <= start:
        n += 1
    return end
