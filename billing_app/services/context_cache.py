"""The panel context, cached per customer and invalidated by the writes that change it.

Building a customer's context costs about fifteen queries and a large serializer
pass; agents reopen the same tickets all day. So the serialized context is kept
in the cache under versions that writers bump:

* a **customer version** ``ctxv:<workspace>:<customer>`` — bumped by
  ``mirror_upsert`` for every object of that customer it actually writes
  (webhooks, refreshes, the provider's own writes; a write skipped because the
  mirror already holds a newer read bumps nothing, so the cache never moves to
  an older state), when a refresh moves the customer's ``bundle_synced_at``
  forward, by the actions service when an action of the customer is recorded,
  finishes or fails, and by the approvals service;
* a **workspace version** ``ctxv:<workspace>`` — for changes that touch every
  customer of a workspace (``customer_context_invalidate(workspace_id=...)`` without
  a customer).

One ``get_many`` reads both versions and the cached entry; an entry built for
other versions is ignored. Versions are read *before* the context is built and
bumped *after* the writer's transaction commits (``transaction.on_commit``), so a
build that raced a write is stored under the old version and never served again.
Entries also expire after ``BILLING_DESK_CONTEXT_CACHE_SECONDS`` (60 s by default;
0 turns the cache off, the default under tests), which bounds what no version
covers: a renamed product, a workspace's settings edited in admin, the sandbox's
clock, time itself (a trial ending, an approval expiring), a write path that
forgets to bump.

The cache is an accelerator, never a source of truth: every cache error (Redis
down or slow) is logged and treated as a miss, so the panel degrades to building
the context from the database instead of failing.
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


def _entry_key(workspace_id: int, customer_id: str) -> str:
    return f"billing-desk:ctx:{workspace_id}:{customer_id}"


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
    """Drop the cached context of one customer (or, without ``customer_id``, of the workspace).

    Safe to call inside a transaction: the bump happens when it commits, once per key.
    """
    if context_cache_seconds() <= 0 or not workspace_id:
        return
    if customer_id:
        _schedule(_customer_key(workspace_id, str(customer_id)))
    else:
        _schedule(_workspace_key(workspace_id))


def customer_context_cached(
    *, workspace_id: int, customer_id: str, build: Callable[[], dict[str, Any]]
) -> dict[str, Any]:
    """The customer's serialized context from the cache, else ``build()`` (then cached)."""
    seconds = context_cache_seconds()
    if seconds <= 0:
        return build()
    wkey = _workspace_key(workspace_id)
    ckey = _customer_key(workspace_id, customer_id)
    ekey = _entry_key(workspace_id, customer_id)
    try:
        found = cache.get_many([wkey, ckey, ekey])
    except Exception as exc:
        _warn("read", exc)
        return build()
    versions = [found.get(wkey), found.get(ckey)]
    entry = found.get(ekey)
    if None not in versions and isinstance(entry, dict) and entry.get("v") == versions:
        return entry["data"]
    try:
        for index, key in enumerate((wkey, ckey)):
            if versions[index] is None:
                token = _token()
                # add(): a concurrent writer's bump wins over our first version.
                versions[index] = token if cache.add(key, token, None) else cache.get(key)
    except Exception as exc:
        _warn("version", exc)
        return build()
    data = build()
    if None in versions:
        return data
    try:
        cache.set(ekey, {"v": versions, "data": data}, seconds)
    except Exception as exc:
        _warn("write", exc)
    return data
