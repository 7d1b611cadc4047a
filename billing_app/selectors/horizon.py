"""When a context built at ``now`` stops being true without any write (issue 15).

(Read through ``selectors.context.horizon``; it lives here, beside the selectors the
context calls, so that they note their boundaries without importing the context.)

Snapshots (``models.snapshots``) are built when the mirror changes, not when the panel
opens, so every comparison of the context against a clock must say when its answer
would flip. Code that compares an instant with ``now`` calls ``horizon_note(instant)``
with the instant at which the comparison changes (a failure leaves the 90-day window at
``created + 90 days``; a trial is "ending" from ``trial_end - 7 days``). Comparisons
with the wall clock (approvals expire in real time) call ``horizon_note_real``.

Outside ``horizon_collect`` both are no-ops, so the selectors cost nothing extra when
nobody collects. Instants not after the build's ``now`` are ignored: they have already
flipped.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime, timedelta

from dateutil.relativedelta import relativedelta


@dataclass
class Horizon:
    """The first future instants, on each clock, at which the built context would change."""

    now: datetime  # the billing clock the context is built for
    real_now: datetime  # the wall clock
    billing: datetime | None = None
    real: datetime | None = None

    def note(self, instant: datetime | None) -> None:
        if instant is not None and instant > self.now:
            self.billing = instant if self.billing is None else min(self.billing, instant)

    def note_real(self, instant: datetime | None) -> None:
        if instant is not None and instant > self.real_now:
            self.real = instant if self.real is None else min(self.real, instant)


_current: ContextVar[Horizon | None] = ContextVar("billing_desk_context_horizon", default=None)


@contextmanager
def horizon_collect(*, now: datetime, real_now: datetime) -> Iterator[Horizon]:
    """Collect the horizon of everything built inside the block."""
    horizon = Horizon(now=now, real_now=real_now)
    token = _current.set(horizon)
    try:
        yield horizon
    finally:
        _current.reset(token)


def horizon_note(instant: datetime | None) -> None:
    """A comparison against the billing clock flips at ``instant``."""
    horizon = _current.get()
    if horizon is not None:
        horizon.note(instant)


def horizon_note_real(instant: datetime | None) -> None:
    """A comparison against the wall clock flips at ``instant``."""
    horizon = _current.get()
    if horizon is not None:
        horizon.note_real(instant)


# The clocks' resolution (database timestamps keep microseconds): a window bound that
# includes its own instant (``created >= now - 90 days``) still holds at that instant and
# flips one tick later.
TICK = timedelta(microseconds=1)


def window_exit(start: datetime | None, length: timedelta) -> datetime | None:
    """When a row dated ``start`` leaves the window ``date >= now - length``.

    The first ``now`` with ``now - length > start``: one tick after ``start + length``.
    """
    return None if start is None else start + length + TICK


def months_window_exit(start: datetime | None, months: int) -> datetime | None:
    """When a row dated ``start`` leaves the window ``date >= now - relativedelta(months=months)``.

    Calendar months shorten at the month's end (August 31 − 6 months is the last day
    of February), so ``start + months`` is not always the answer: when adding clamps
    the day, every instant up to the end of that month still reaches back to a day
    before ``start``, and the row leaves at the first instant of the next month.
    """
    if start is None:
        return None
    shifted = start + relativedelta(months=months)
    if shifted - relativedelta(months=months) == start:
        return shifted + TICK
    return (shifted + relativedelta(months=1)).replace(
        day=1, hour=0, minute=0, second=0, microsecond=0
    )


__all__ = [
    "TICK",
    "Horizon",
    "horizon_collect",
    "horizon_note",
    "horizon_note_real",
    "months_window_exit",
    "window_exit",
]
