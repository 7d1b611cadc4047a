"""Small conversions the context's blocks share: Stripe timestamps, ISO days, addresses."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from ...money import money_language

Obj = dict[str, Any]


def ts(value: Any) -> datetime | None:
    """A Stripe timestamp (seconds) as an aware datetime; ``None`` for none."""
    return datetime.fromtimestamp(int(value), tz=UTC) if value else None


def day(value: datetime | date | None) -> str | None:
    if value is None:
        return None
    return (value.date() if isinstance(value, datetime) else value).isoformat()


def shown_day(value: datetime | date | None) -> str:
    """A day in a sentence for people: ISO in English (``2026-01-17``, as the English
    texts always wrote it), the long date in another language (``17. Januar 2026``)."""
    if value is None:
        return ""
    if money_language() is None:
        return day(value) or ""
    from .subscription_state import date_words

    return date_words(value)


def shown_moment(value: datetime) -> str:
    """An instant in a sentence: ``2026-01-15 12:00 UTC`` (English), else the long date
    and the time (``15. Januar 2026, 12:00 UTC``). ``value`` is in UTC."""
    if money_language() is None:
        return value.strftime("%Y-%m-%d %H:%M UTC")
    return f"{shown_day(value)}, {value:%H:%M} UTC"


def iso(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None


def minor_units(value: Decimal) -> int:
    """A fractional amount of minor units rounded half-even to a whole one."""
    return int(value.quantize(Decimal(1), rounding=ROUND_HALF_EVEN))


def address_display(address: Obj) -> str:
    parts = [address.get(k) for k in ("line1", "line2", "city", "state")]
    country = address.get("country")
    if country and country != "US":
        parts.append(country)
    return ", ".join(str(p) for p in parts if p)


def address_full(address: Obj) -> Obj:
    return {
        k: address.get(k) or ""
        for k in ("line1", "line2", "city", "state", "postal_code", "country")
    }
