"""Lifetime value: revenue so far, months active, MRR and ARR.

Total revenue is the sum of ``amount_paid`` over paid invoices; months active run
from the first paid invoice or the earliest subscription start, whichever is first,
to now (or to when the last subscription ended). MRR sums the revenue subscriptions'
items (active / past_due / unpaid, not paused) at the rulebook's monthly amount —
yearly ÷ 12, weekly × 52 ÷ 12, daily × 365 ÷ 12, per ``interval_count`` — less
percentage discounts still running; trials are not revenue yet. ARR = 12 × MRR.

Time moves two figures without a write (``horizon``): months active grow at each
month anniversary of the start, and a percentage discount's end raises MRR.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from dateutil.relativedelta import relativedelta

from ...money import money_json
from ...subscriptions import monthly_total
from .horizon import horizon_note
from .products import Catalog, sub_items
from .shapes import Obj, minor_units, ts
from .subscription import discount_of, is_paused, percent_factor

# Statuses whose subscriptions are revenue now (a trial is not revenue yet).
REVENUE = frozenset({"active", "past_due", "unpaid"})


def monthly_recurring_revenue(
    subs: list[Obj], *, catalog: Catalog, discounts: dict[str, Obj], now: datetime
) -> int:
    total = Decimal(0)
    for sub in subs:
        if sub.get("status") not in REVENUE or is_paused(sub):
            continue
        discount = discount_of(sub, discounts)
        factor = percent_factor(discount, now)
        if factor != 1 and discount is not None:
            horizon_note(ts(discount.get("end")))  # no longer running from its end
        total += monthly_total(catalog.view(i) for i in sub_items(sub)) * factor
    return minor_units(total)


def months_between(start: datetime, end: datetime) -> int:
    delta = relativedelta(end, start)
    return max(0, delta.years * 12 + delta.months)


def months_active(
    subs: list[Obj], *, first_paid: datetime | None, still_live: bool, now: datetime
) -> int:
    starts = [t for t in (ts(s.get("start_date")) for s in subs) if t]
    if first_paid:
        starts.append(first_paid)
    if not starts:
        return 0
    end: datetime | None = None  # None: still running
    if not still_live and subs:
        ended = [t for t in (ts(s.get("ended_at") or s.get("canceled_at")) for s in subs) if t]
        end = max(ended) if ended else None
    start = min(starts)
    months = months_between(start, now if end is None else min(end, now))
    # One more month from the next anniversary of the start, if it comes before the end.
    anniversary = start + relativedelta(months=months + 1)
    if end is None or anniversary <= end:
        horizon_note(anniversary)
    return months


def lifetime_value(
    subs: list[Obj],
    *,
    catalog: Catalog,
    discounts: dict[str, Obj],
    revenue: int,
    first_paid: datetime | None,
    still_live: bool,
    currency: str,
    now: datetime,
) -> Obj:
    mrr = monthly_recurring_revenue(subs, catalog=catalog, discounts=discounts, now=now)
    return {
        "total_revenue": money_json(revenue, currency),
        "months_active": months_active(subs, first_paid=first_paid, still_live=still_live, now=now),
        "mrr": money_json(mrr, currency),
        "arr": money_json(12 * mrr, currency),
    }
