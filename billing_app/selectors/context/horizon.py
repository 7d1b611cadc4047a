"""The context's time horizon, where the context reads it (issue 15).

The collector lives in ``selectors.horizon`` so that the modules the context calls
(``selectors.payments``: the first page of the payment history) note their boundaries
without importing the context package, which imports them.
"""

from __future__ import annotations

from ..horizon import (
    TICK,
    Horizon,
    horizon_collect,
    horizon_note,
    horizon_note_real,
    months_window_exit,
    window_exit,
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
