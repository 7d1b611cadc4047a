"""Rate limiting for log lines: a burst of identical failures is one line and a count.

Why: during a 10 s database outage every request failed the same way and each one
wrote two tracebacks; the log grew 10 MB in 12 s, burying the one line that mattered
and filling disks on small hosts. The request path now writes one line per failure
(``billing_app.middleware``); this filter, on the handlers, lets the first
``per_window`` lines of one kind through per ``window_seconds`` — only the first of
them with its traceback — and drops the rest, counting them. The count is reported on
the first line of the same kind in a later window ("... [37 more like this suppressed
in the previous 60 s]").

"One kind" is ``record.log_key`` when the caller passes one (``extra={"log_key": ...}``),
else the logger, level, message template and HTTP status: "Not Found: %s" for two
different paths is one kind, a 404 and a 503 are two.

Lines below ``min_level`` (INFO by default: successful actions, audits) are never limited.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

# Keys kept at most; beyond it, windows that have ended are forgotten (and, if needed, all).
MAX_KEYS = 1024


@dataclass
class _Window:
    started: float
    passed: int = 0
    suppressed: int = 0


class RepeatLimitFilter(logging.Filter):
    def __init__(
        self,
        per_window: int = 10,
        window_seconds: float = 60.0,
        tracebacks_per_window: int = 1,
        min_level: int | str = logging.WARNING,
        clock: Callable[[], float] = time.monotonic,
    ):
        super().__init__()
        self.per_window = int(per_window)
        self.window_seconds = float(window_seconds)
        self.tracebacks_per_window = int(tracebacks_per_window)
        self.min_level = (
            logging.getLevelName(min_level) if isinstance(min_level, str) else int(min_level)
        )
        self.clock = clock
        self._windows: dict[Any, _Window] = {}
        self._lock = threading.Lock()

    @staticmethod
    def key_for(record: logging.LogRecord) -> Any:
        key = getattr(record, "log_key", None)
        if key is not None:
            return ("key", key)
        return (record.name, record.levelno, str(record.msg), getattr(record, "status_code", None))

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < self.min_level:
            return True
        key = self.key_for(record)
        with self._lock:
            now = self.clock()
            window = self._windows.get(key)
            earlier = 0
            if window is None or now - window.started >= self.window_seconds:
                earlier = window.suppressed if window is not None else 0
                if window is None and len(self._windows) >= MAX_KEYS:
                    self._forget(now)
                window = self._windows[key] = _Window(started=now)
            if window.passed >= self.per_window:
                window.suppressed += 1
                return False
            window.passed += 1
            keep_traceback = window.passed <= self.tracebacks_per_window
        if not keep_traceback and (record.exc_info or record.exc_text):
            record.exc_info = None
            record.exc_text = None
            record.stack_info = None
        if earlier:
            # The suffix holds no "%": safe to append to a %-style template.
            suffix = (
                f" [{earlier} more like this suppressed in the previous {self.window_seconds:g} s]"
            )
            record.msg = f"{record.msg}{suffix}"
        return True

    def _forget(self, now: float) -> None:
        for key in [k for k, w in self._windows.items() if now - w.started >= self.window_seconds]:
            del self._windows[key]
        if len(self._windows) >= MAX_KEYS:
            self._windows.clear()
