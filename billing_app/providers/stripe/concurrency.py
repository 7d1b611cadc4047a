"""Independent Stripe reads run at once, on one long-lived pool per process."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from django.conf import settings

_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def read_pool() -> ThreadPoolExecutor:
    """One long-lived pool per process (created on first use, so after any fork).

    Long-lived threads keep their per-thread ``requests`` sessions, so concurrent
    reads reuse open TLS connections to Stripe instead of handshaking every time.
    """
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(
                max_workers=int(getattr(settings, "STRIPE_READ_THREADS", 32)),
                thread_name_prefix="stripe-read",
            )
        return _pool


def run_concurrently(calls: dict[str, Callable[[], Any]]) -> dict[str, Any]:
    """Run independent Stripe reads at once: the wall time is the slowest call, not the sum.

    The calls only do HTTP (no database access, so no connection crosses threads).
    The first failure, in the order the calls were given, is raised once every call
    has finished.
    """
    pool = read_pool()
    futures = {name: pool.submit(fn) for name, fn in calls.items()}
    results: dict[str, Any] = {}
    first_error: BaseException | None = None
    for name, future in futures.items():
        try:
            results[name] = future.result()
        except BaseException as exc:  # re-raised below, after every call has finished
            first_error = first_error or exc
    if first_error is not None:
        raise first_error
    return results
