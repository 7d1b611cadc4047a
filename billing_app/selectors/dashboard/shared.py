"""What every dashboard section shares: the month's rows, percentages, durations, money.

Months are calendar months in UTC (``selectors.months.Month``); a record belongs to the
month of its creation time. Tickets, actions and approvals are read from the daily
roll-ups (``MonthRollups``: UTC days, kept by ``services.rollups`` at write time). Money is integer minor units; amounts in other currencies
are brought to the workspace's base currency with its ``CurrencyRate`` rows (how many
base units one unit of the currency buys). A currency without a rate is left out.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from babel import Locale
from babel.numbers import format_decimal
from django.db.models import CharField, OuterRef, Q, QuerySet, Sum, Value
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Coalesce, NullIf
from django.utils.translation import to_locale

from ...models import BillingAction, CurrencyRate, DailyRollup, PaymentFailure, Workspace
from ...models.rollups import MEASURE_FIELDS
from ...money import Money, exponent, money_language
from ...subscriptions import MONTHS_PER_INTERVAL
from ..months import Month

# --- numbers -----------------------------------------------------------------------------------


def pct(part: float | int | None, whole: float | int | None, digits: int = 1) -> float | None:
    """``part / whole`` in percent, or None when there is nothing to divide by."""
    if not whole or part is None:
        return None
    return round(100.0 * float(part) / float(whole), digits)


def number_text(value: float | int, decimals: int | None = None, *, grouped: bool = False) -> str:
    """A figure written for the reader: in English as Python writes it (``12.5``, with
    ``decimals`` ``f"{value:.1f}"``, ``grouped`` ``3,000``), in another active language as
    CLDR writes it there (German ``12,5``, ``3.000``)."""
    language = money_language()
    if language is None:
        spec = ("," if grouped else "") + (f".{decimals}f" if decimals is not None else "")
        return format(value, spec) if spec else str(value)
    if decimals is None:  # as many decimals as English shows (``10.0`` → ``10,0``)
        decimals = len(str(value).partition(".")[2]) if isinstance(value, float) else 0
    pattern = ("#,##0" if grouped else "0") + ("." + "0" * decimals if decimals else "")
    return str(
        format_decimal(
            value, format=pattern, locale=Locale.parse(to_locale(language)), group_separator=grouped
        )
    )


def pct_text(value: float | int, decimals: int | None = None) -> str:
    """A percentage for the reader: English ``12.5%``, German ``12,5 %`` (CLDR puts a
    no-break space before the sign)."""
    text = number_text(value, decimals)
    return f"{text}%" if money_language() is None else f"{text}\u00a0%"


def round_or_none(value: float | Decimal | None, digits: int = 1) -> float | None:
    return None if value is None else round(float(value), digits)


def seconds(value: timedelta | float | None) -> float | None:
    """A duration aggregate in seconds (SQLite may hand back microseconds)."""
    if value is None:
        return None
    if isinstance(value, timedelta):
        return value.total_seconds()
    return float(value) / 1_000_000


def plural(count: int, word: str) -> str:
    """``1 account``, ``2 accounts``."""
    return f"{count} {word}{'' if count == 1 else 's'}"


# --- money -------------------------------------------------------------------------------------


def money(amount: int | None, currency: str) -> dict[str, Any]:
    """A money figure as JSON (``Money.to_dict``); ``amount`` in whole minor units."""
    return Money(amount or 0, currency).to_dict()


def currency_rates(workspace: Workspace) -> dict[str, Decimal]:
    """The workspace's exchange rates into its base currency, by upper-case currency."""
    return {
        r.currency.upper(): r.rate
        for r in CurrencyRate.objects.filter(workspace=workspace).exclude(
            currency=workspace.base_currency
        )
    }


def to_base_exact(
    amount: Decimal | int, currency: str, *, base: str, rates: dict[str, Decimal]
) -> Decimal | None:
    """``amount`` minor units of ``currency`` in (fractional) base minor units, or None
    when the workspace has no rate for ``currency``. Decimal throughout."""
    code, base = currency.upper(), base.upper()
    if code == base:
        return Decimal(amount)
    rate = rates.get(code)
    if rate is None:
        return None
    return Decimal(amount) * Decimal(rate) * Decimal(10) ** (exponent(base) - exponent(code))


def whole_minor_units(amount: Decimal | int | None) -> int:
    """Fractional minor units rounded half-even to a whole amount (None → 0)."""
    if amount is None:
        return 0
    return int(Decimal(amount).quantize(Decimal(1), rounding=ROUND_HALF_EVEN))


def monthly_in_base(
    rows: Iterable[Mapping[str, Any]], total: str, *, base: str, rates: dict[str, Decimal]
) -> int:
    """Σ of recurring amounts brought to a month and to the base currency, in minor units.

    ``rows`` are grouped by ``currency``, ``recurring_interval`` and
    ``recurring_interval_count`` with ``total`` the integer Σ unit amount × quantity
    of the group (the database sums, Python converts): months per interval as the
    rulebook counts them (``subscriptions.MONTHS_PER_INTERVAL``); unknown intervals and
    currencies without a rate are left out. Rounded once, at the end.
    """
    amount = Decimal(0)
    for row in rows:
        months = MONTHS_PER_INTERVAL.get(row["recurring_interval"] or "")
        if not row[total] or months is None:
            continue
        monthly = Decimal(row[total]) / (months * max(row["recurring_interval_count"] or 1, 1))
        converted = to_base_exact(monthly, row["currency"] or "", base=base, rates=rates)
        if converted is not None:
            amount += converted
    return whole_minor_units(amount)


# --- the month's roll-ups ----------------------------------------------------------------------

# The roll-up families and the key separator (``services.rollups`` writes them).
TICKET_FAMILY, ACTION_FAMILY, APPROVAL_FAMILY = "ticket", "action", "approval"
PROVIDER_CALL_FAMILY = "call"
SEP = "|"


class MonthRollups:
    """The month's ``DailyRollup`` rows summed per (family, key), read in one query:
    O(days × keys) rows whatever the month's volume of tickets and actions."""

    def __init__(self, sums: dict[str, dict[str, dict[str, int]]]) -> None:
        self._sums = sums

    def rows(self, family: str) -> dict[str, dict[str, int]]:
        """``{key: {"count": …, "m1": …, …}}`` of one family (keys whose count is 0 left out)."""
        return self._sums.get(family, {})

    @classmethod
    def read(cls, workspace: Workspace, month: Month) -> MonthRollups:
        measures = {f: Sum(f) for f in MEASURE_FIELDS}
        rows = (
            DailyRollup.objects.filter(
                workspace=workspace, day__gte=month.first_day, day__lt=month.shift(1).first_day
            )
            .values("family", "key")
            .annotate(**measures)
            .order_by()
        )
        sums: dict[str, dict[str, dict[str, int]]] = {}
        row: dict[str, Any]
        for row in rows:  # type: ignore[assignment]  # annotated values(): the plugin types two keys
            if row["count"]:
                sums.setdefault(row["family"], {})[row["key"]] = {
                    f: int(row[f] or 0) for f in MEASURE_FIELDS
                }
        return cls(sums)


# --- the month's records -----------------------------------------------------------------------


ACTION_KEY_PARTS = (
    "label",
    "kind",
    "status",
    "decision",
    "direction",
    "reason",
    "path",
    "mrr_currency",
    "channel",
)
# Roll-ups written before ``BillingAction.channel`` existed have no channel part: every
# action then was counted as an agent's (the column's default), so they read as ``agent``.
LEGACY_ACTION_KEY_PARTS = len(ACTION_KEY_PARTS) - 1
AGENT_CHANNEL = "agent"
ACTION_MEASURES = (
    ("m1", "time_ms"),
    ("m2", "timed"),
    ("m3", "handled"),
    ("m4", "handling_us"),
    ("m5", "amount"),
    ("m6", "unconverted"),
    ("m7", "mrr"),
    ("m8", "mrr_recorded"),
)


def action_groups(rollups: MonthRollups) -> list[dict[str, Any]]:
    """The month's actions (not those refused as not permitted) grouped by the roll-up's
    key parts (``ACTION_KEY_PARTS``), with their named sums (``ACTION_MEASURES``). Both
    channels: a figure about the agents' work keeps ``channel == AGENT_CHANNEL``."""
    groups = []
    for key, m in rollups.rows(ACTION_FAMILY).items():
        parts = key.split(SEP)
        if len(parts) == LEGACY_ACTION_KEY_PARTS:
            parts.append(AGENT_CHANNEL)
        group: dict[str, Any] = dict(zip(ACTION_KEY_PARTS, parts, strict=True))
        group["count"] = m["count"]
        group.update({name: m[column] for column, name in ACTION_MEASURES})
        groups.append(group)
    return groups


def failures_between(
    workspace: Workspace, start: datetime, end: datetime
) -> QuerySet[PaymentFailure]:
    return PaymentFailure.objects.filter(
        workspace=workspace, failed_at__gte=start, failed_at__lt=end
    )


def ticket_action(workspace: Workspace, **filters: Any) -> QuerySet[BillingAction]:
    """Actions on the outer ticket (same workspace and ticket id; same installation when known)."""
    return BillingAction.objects.filter(
        Q(installation_id=OuterRef("installation_id")) | Q(installation__isnull=True),
        workspace=workspace,
        ticket_id=OuterRef("external_id"),
        **filters,
    )


def action_direction() -> Coalesce:
    """A plan change's direction (``upgrade`` / ``downgrade``; ``""`` when not recorded)."""
    return Coalesce(
        NullIf(KeyTextTransform("direction", "result"), Value("")),
        NullIf(KeyTextTransform("direction", "params"), Value("")),
        Value(""),
        output_field=CharField(),
    )
