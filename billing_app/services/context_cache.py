"""The Redis accelerator in front of the context snapshots, and the one invalidation call.

Since issue 15 the panel's context is computed when the mirror changes and stored
per customer (``services.snapshots``: the truth, one indexed query to read). This
cache keeps the stored snapshot (its data, ``as_of``, ``deleted`` and time horizon)
in Redis so a panel reopened within ``BILLING_DESK_CONTEXT_CACHE_SECONDS`` (60 s by
default; 0 turns it off, the default under tests) skips even that row's transfer and
decoding. It keeps its own version keys rather than the snapshot's versions, because
reading those would cost the query the cache exists to save:

* a **customer version** ``ctxv:<workspace>:<customer>`` — bumped after commit by every
  ``customer_context_invalidate(workspace_id=, customer_id=)``: the same calls that
  raise the snapshot's ``wanted_version`` in the writer's transaction;
* a **workspace version** ``ctxv:<workspace>`` — bumped by
  ``customer_context_invalidate(workspace_id=)`` without a customer: the same calls
  that raise ``Workspace.context_generation`` (settings, names, catalog, the sandbox's
  clock; ``services.snapshot_signals``).

So an entry is dropped exactly when the snapshot stops being current by a write. Time
is the entry's own: it carries the snapshot's ``valid_until`` / ``valid_until_real``
and an entry read after either is a miss (``fresh``). Versions are read *before* the
snapshot is, and bumped *after* the writer commits, so an entry stored from a snapshot
that a write was superseding is stored under the old versions and never served again.
What no version covers is never cached: the per-request flags (``stale``,
``refreshing``, ``provider_status``, ``now``) are computed on every request, the
pending-event check included (``services.context_read``).

Entries are per language (``ctx:<workspace>:<customer>`` for the default language,
``ctx:<workspace>:<customer>:<language>`` otherwise: a German agent never gets the English
texts, nor the other way round); the version keys are per customer, so one bump drops
the customer's entries in every language, as one write makes every language row stale.

The cache is an accelerator, never a source of truth: every cache error (Redis down
or slow) is logged and treated as a miss, so the panel reads the snapshot instead.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import DEFAULT_DB_ALIAS, connections, transaction

from .snapshots import snapshot_mark_stale

logger = logging.getLogger(__name__)

_last_warning = 0.0


def context_cache_seconds() -> int:
    default = 0 if getattr(settings, "TESTING", False) else 60
    return int(getattr(settings, "BILLING_DESK_CONTEXT_CACHE_SECONDS", default))


def _warn(operation: str, exc: Exception) -> None:
    """Log cache failures at most once every ten seconds per process (no log flood in an outage)."""
    global _last_warning
    now = time.monotonic()
    if now - _last_warning > 10:
        _last_warning = now
        logger.warning("context cache %s failed (%s); serving from the database", operation, exc)


def _workspace_key(workspace_id: int) -> str:
    return f"billing-desk:ctxv:{workspace_id}"


def _customer_key(workspace_id: int, customer_id: str) -> str:
    return f"billing-desk:ctxv:{workspace_id}:{customer_id}"


def _entry_key(workspace_id: int, customer_id: str, locale: str = "") -> str:
    key = f"billing-desk:ctx:{workspace_id}:{customer_id}"
    return f"{key}:{locale}" if locale else key


def _token() -> str:
    return os.urandom(8).hex()


def _bump_now(key: str) -> None:
    try:
        cache.set(key, _token(), None)
    except Exception as exc:  # the entry still expires on its own
        _warn("invalidation", exc)


class _Bump:
    """An ``on_commit`` callback bumping one version key (recognisable, so it is queued once)."""

    __slots__ = ("done", "key")

    def __init__(self, key: str):
        self.key = key
        self.done = False

    def __call__(self) -> None:
        self.done = True
        _bump_now(self.key)


def _schedule(key: str) -> None:
    connection = connections[DEFAULT_DB_ALIAS]
    if not connection.in_atomic_block:
        _bump_now(key)
        return
    for _, callback, *_ in connection.run_on_commit:
        if isinstance(callback, _Bump) and callback.key == key and not callback.done:
            return
    transaction.on_commit(_Bump(key))


def customer_context_invalidate(*, workspace_id: int, customer_id: str | None = None) -> None:
    """The customer's context (or, without ``customer_id``, every context of the workspace)
    changed: mark its snapshot stale in the caller's transaction and drop the cached copy.

    Safe to call inside a transaction: the snapshot's version is raised with the
    caller's writes (once per transaction per customer, ``snapshots.snapshot_mark_stale``)
    and the cache keys are bumped when it commits, once per key. Works with the cache off.
    """
    if not workspace_id:
        return
    snapshot_mark_stale(workspace_id=workspace_id, customer_id=customer_id)
    if context_cache_seconds() <= 0:
        return
    if customer_id:
        _schedule(_customer_key(workspace_id, str(customer_id)))
    else:
        _schedule(_workspace_key(workspace_id))


def customer_context_cached(
    *,
    workspace_id: int,
    customer_id: str,
    build: Callable[[], dict[str, Any]],
    fresh: Callable[[dict[str, Any]], bool] | None = None,
    locale: str = "",
) -> tuple[dict[str, Any], bool]:
    """``(entry, hit)``: the customer's cached entry in ``locale`` (a snapshot row's
    language, "" the default), else ``build()`` (then cached).

    An entry ``fresh`` refuses (its time horizon has passed) counts as a miss.
    """
    seconds = context_cache_seconds()
    if seconds <= 0:
        return build(), False
    wkey = _workspace_key(workspace_id)
    ckey = _customer_key(workspace_id, customer_id)
    ekey = _entry_key(workspace_id, customer_id, locale)
    try:
        found = cache.get_many([wkey, ckey, ekey])
    except Exception as exc:
        _warn("read", exc)
        return build(), False
    versions = [found.get(wkey), found.get(ckey)]
    entry = found.get(ekey)
    if (
        None not in versions
        and isinstance(entry, dict)
        and entry.get("v") == versions
        and (fresh is None or fresh(entry["data"]))
    ):
        return entry["data"], True
    try:
        for index, key in enumerate((wkey, ckey)):
            if versions[index] is None:
                token = _token()
                # add(): a concurrent writer's bump wins over our first version.
                versions[index] = token if cache.add(key, token, None) else cache.get(key)
    except Exception as exc:
        _warn("version", exc)
        return build(), False
    data = build()
    if None in versions:
        return data, False
    try:
        cache.set(ekey, {"v": versions, "data": data}, seconds)
    except Exception as exc:
        _warn("write", exc)
    return data, False
