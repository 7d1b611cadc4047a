"""Calendar months in UTC: what the dashboard and the monthly report are computed for."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime

from babel import Locale
from babel.dates import format_date
from django.utils import timezone
from django.utils.translation import to_locale

from ..errors import ValidationFailed
from ..money import money_language

_MONTH = re.compile(r"^([0-9]{4})-([0-9]{2})$")


@dataclass(frozen=True, order=True)
class Month:
    year: int
    month: int

    @classmethod
    def parse(cls, value: object) -> Month:
        """``"2026-01"`` → ``Month(2026, 1)``; anything else is a 400 ``invalid_month``."""
        match = _MONTH.match(value.strip()) if isinstance(value, str) else None
        if match is None or not 1 <= int(match.group(2)) <= 12 or int(match.group(1)) < 2000:
            raise ValidationFailed(
                "month must be a calendar month written YYYY-MM, e.g. 2026-01.",
                code="invalid_month",
                details={"month": [str(value)[:20]]},
            )
        return cls(int(match.group(1)), int(match.group(2)))

    @classmethod
    def current(cls, now: datetime | None = None) -> Month:
        now = (now or timezone.now()).astimezone(UTC)
        return cls(now.year, now.month)

    @classmethod
    def of(cls, moment: datetime | date) -> Month:
        return cls(moment.year, moment.month)

    def shift(self, months: int) -> Month:
        index = self.year * 12 + (self.month - 1) + months
        return Month(index // 12, index % 12 + 1)

    @property
    def start(self) -> datetime:
        return datetime(self.year, self.month, 1, tzinfo=UTC)

    @property
    def end(self) -> datetime:
        """The first instant of the next month (exclusive bound)."""
        return self.shift(1).start

    @property
    def first_day(self) -> date:
        return date(self.year, self.month, 1)

    @property
    def key(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"

    @property
    def label(self) -> str:
        """``January 2026``; in another active language as CLDR writes it (``Januar 2026``)."""
        return self._written("%B %Y", "LLLL y")

    @property
    def short_label(self) -> str:
        """``Jan 2026``; in another active language as CLDR writes it (``Jan. 2026``)."""
        return self._written("%b %Y", "MMM y")

    def _written(self, english: str, cldr: str) -> str:
        language = money_language()
        if language is None:
            return self.start.strftime(english)
        return str(format_date(self.first_day, cldr, locale=Locale.parse(to_locale(language))))

    def __str__(self) -> str:
        return self.key
