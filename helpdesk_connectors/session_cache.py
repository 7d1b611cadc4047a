"""Versioned cache entries for app session checks: what a request would read, without reading it.

Every API request proves who it is with an app session token (``sessions``). The
token's signature and age need no database; what it binds — the installation's
version and credential fingerprint here, the agent's grant on the billing side —
does, and used to cost queries on every request. This module lets both checks read
what they need from the cache (Redis in production) instead, exactly, or not at all:

* **Scopes and versions.** Each piece of state a check reads belongs to a *scope*
  (``installation:7``; the billing side adds ``workspace:3``, ``user:12``, …) with a
  version key holding a random token. An entry is stored with the tokens of every
  scope it was built from, read **before** the database, and served only while all
  of them are still current — an entry built from a read that raced a change carries
  the old token and is never served.
* **Bumps.** Whatever changes a scope's state calls ``scopes_changed`` (model
  signals, plus explicit calls next to ``QuerySet.update()``, which sends none).
  Inside a transaction the version becomes *pending* at once, naming the transaction
  as one of its owners — no entry is served or stored for the scope while a change is
  in flight — and a fresh token after the commit (``on_commit``), but only once its
  last owner has settled: a transaction committing while another's change to the same
  scope is still in flight leaves the scope pending (each settle is a compare-and-set
  of the whole value: WATCH/MULTI on Redis). Outside a transaction, a fresh token at
  once (or nothing, while changes are in flight). If a transaction rolls back, or the
  after-commit write fails, its ownership stays until its deadline
  (``PENDING_SECONDS``) and the scope is simply read from the database meanwhile:
  every failure leaves the cache *off*, never stale.
* **Tokens, not counters.** A version key evicted by Redis or lost in a restart comes
  back as a new random token, never as a value an old entry was stored under.
* **The cache can only say yes.** A check accepts from an entry only when it holds
  everything the database check would have accepted; any doubt (a miss, a mismatch,
  a pending scope, a cache error) goes to the database, which decides as before.
* **Cache away.** Errors and an unreachable Redis (``billing_app.cache`` turns them into
  misses) read as misses; the request is checked against the database, and the
  failure is logged at most once every ten seconds per process.

``APP_SESSION_CACHE_SECONDS`` bounds an entry's life (120 s; 0 turns the cache off,
the default under tests, where whole tests run inside one transaction that never
commits). This module knows nothing of models, so ``models`` can call it.
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from django.conf import settings
from django.core.cache import caches
from django.core.cache.backends.redis import RedisCache
from django.db import DEFAULT_DB_ALIAS, connections, transaction

logger = logging.getLogger(__name__)

CACHE_ALIAS = "default"
PREFIX = "app-session"
PENDING = "pending:"
# How long a change in flight keeps its scopes uncached when its transaction never
# commits (rolled back, crashed) or the after-commit bump could not be written.
PENDING_SECONDS = 120
WARN_EVERY_SECONDS = 10.0

_last_warning = 0.0


def cache_seconds() -> int:
    default = 0 if getattr(settings, "TESTING", False) else 120
    return int(getattr(settings, "APP_SESSION_CACHE_SECONDS", default))


def version_key(scope: str) -> str:
    return f"{PREFIX}:v:{scope}"


def entry_key(kind: str, *ids: object) -> str:
    return ":".join([PREFIX, kind, *("-" if i is None else str(i) for i in ids)])


def _token() -> str:
    return os.urandom(8).hex()


def _warn(operation: str, exc: object) -> None:
    """Log a cache failure at most once every ten seconds per process (no flood in an outage)."""
    global _last_warning
    now = time.monotonic()
    if now - _last_warning >= WARN_EVERY_SECONDS:
        _last_warning = now
        logger.warning(
            "app session cache %s failed (%s); checking sessions against the database",
            operation,
            exc,
        )


# ---------------------------------------------------------------------------- bumps
#
# A version key holds either a settled token or ``PENDING`` followed by the changes in
# flight, ``owner@deadline`` each (one owner per transaction). Every change of a version
# key is a read-modify-write of that whole value, so that a transaction settling (its
# commit) cannot end another's pending mark: the scope gets a fresh token only when its
# last owner settles. On Redis the read-modify-write is one WATCH/MULTI transaction
# (retried if another writer touched the key); on other caches (LocMem under tests) it
# is a get then a set, with a window between the two in which a concurrent writer's
# change can be lost — no such cache is used across processes.


def _owners(value: Any) -> dict[str, float]:
    """The live owners of a pending version (expired ones dropped); ``{}`` for a settled one."""
    if not (isinstance(value, str) and value.startswith(PENDING)):
        return {}
    now = time.time()
    owners: dict[str, float] = {}
    for item in value[len(PENDING) :].split():
        owner, _, deadline = item.partition("@")
        try:
            until = float(deadline)
        except ValueError:
            continue
        if until > now:
            owners[owner] = until
    return owners


def _pending(owners: Mapping[str, float]) -> tuple[str, int]:
    """The pending value and how long it must live (until its last owner's deadline)."""
    value = PENDING + " ".join(f"{owner}@{until:.3f}" for owner, until in owners.items())
    return value, max(1, math.ceil(max(owners.values()) - time.time()))


def _update(keys: Iterable[str], change: Callable[[Any], tuple[str, int | None]]) -> None:
    """Replace each key's value by ``change(current)`` → (value, timeout), atomically on Redis."""
    keys = sorted(keys)
    if not keys:
        return
    try:
        cache = caches[CACHE_ALIAS]
        if isinstance(cache, RedisCache):
            _update_redis(cache, keys, change)
            return
        found = cache.get_many(keys)
        for key in keys:
            value, timeout = change(found.get(key))
            cache.set(key, value, timeout)
    except Exception as exc:  # pending marks expire; entries expire: never stale for long
        _warn("version bump", exc)


def _update_redis(
    cache: RedisCache, keys: list[str], change: Callable[[Any], tuple[str, int | None]]
) -> None:
    if time.monotonic() < getattr(cache, "_down_until", 0.0):
        return  # billing_app.cache's back-off after a failure: Redis is not asked meanwhile
    client = cache._cache  # django's RedisCacheClient: its serializer and redis client
    serializer = client._serializer  # type: ignore[attr-defined]
    raw = [cache.make_and_validate_key(key) for key in keys]
    redis = client.get_client(raw[0], write=True)

    def apply(pipe: Any) -> None:
        current = pipe.mget(raw)
        updates = [change(None if value is None else serializer.loads(value)) for value in current]
        pipe.multi()
        for key, (value, timeout) in zip(raw, updates, strict=True):
            pipe.set(key, serializer.dumps(value), ex=timeout)

    redis.transaction(apply, *raw)


def _begin(owner: str) -> Callable[[Any], tuple[str, int | None]]:
    """The scope is pending for one more owner (one more change in flight)."""

    def change(current: Any) -> tuple[str, int | None]:
        owners = _owners(current)
        owners[owner] = time.time() + PENDING_SECONDS
        return _pending(owners)

    return change


def _end(owner: str | None) -> Callable[[Any], tuple[str, int | None]]:
    """``owner``'s change is settled: a fresh token, unless other changes are still in flight."""

    def change(current: Any) -> tuple[str, int | None]:
        owners = _owners(current)
        owners.pop(owner or "", None)
        if owners:
            return _pending(owners)
        return _token(), None

    return change


class _Settle:
    """The ``on_commit`` callback settling the scopes one transaction changed (its owner id)."""

    __slots__ = ("done", "keys", "owner")

    def __init__(self) -> None:
        self.keys: set[str] = set()
        self.done = False
        self.owner = _token()

    def __call__(self) -> None:
        self.done = True
        _update(self.keys, _end(self.owner))


def scopes_changed(*scopes: str, using: str = DEFAULT_DB_ALIAS) -> None:
    """Invalidate every entry built from these scopes, for good once the change commits.

    Call it from inside the writer's transaction (or right after an autocommitted
    write): the scopes read as pending now and get fresh tokens after the commit —
    unless another transaction's change to them is still in flight, in which case they
    stay pending until that one settles too. Once per scope per transaction however
    often it is called.
    """
    if not scopes or cache_seconds() <= 0:
        return
    keys = {version_key(scope) for scope in scopes}
    connection = connections[using]
    if not connection.in_atomic_block:
        _update(keys, _end(None))
        return
    settle = next(
        (
            callback
            for _, callback, *_ in connection.run_on_commit
            if isinstance(callback, _Settle) and not callback.done
        ),
        None,
    )
    if settle is None:
        settle = _Settle()
        transaction.on_commit(settle, using=using, robust=True)
    new = keys - settle.keys
    if new:
        settle.keys |= new
        _update(new, _begin(settle.owner))


# ---------------------------------------------------------------------------- reads


class Lookup:
    """What the cache said: the entry (only if current) and the versions to store a new one under."""

    __slots__ = ("entry", "versions")

    def __init__(self, entry: Any = None, versions: list[str] | None = None):
        self.entry = entry
        self.versions = versions


def lookup(key: str, scopes: Iterable[str]) -> Lookup:
    """Read the scopes' versions and the entry in one round trip.

    ``entry`` is set only when it was stored under every scope's current version.
    ``versions`` is set when an entry may be stored after reading the database:
    every scope has a settled version (missing ones are created first — before the
    caller reads the database, which is what keeps a racing read from being served).
    Both ``None``: the cache is off, away, or a scope is pending; use the database.
    """
    if cache_seconds() <= 0:
        return Lookup()
    keys = [version_key(scope) for scope in scopes]
    cache = caches[CACHE_ALIAS]
    try:
        found = cache.get_many([*keys, key])
    except Exception as exc:
        _warn("read", exc)
        return Lookup()
    versions: list[Any] = [found.get(k) for k in keys]
    if any(isinstance(v, str) and v.startswith(PENDING) for v in versions):
        return Lookup()
    entry = found.get(key)
    if None not in versions and isinstance(entry, dict) and entry.get("v") == versions:
        return Lookup(entry=entry.get("data"), versions=versions)
    try:
        for index, vkey in enumerate(keys):
            if versions[index] is None:
                token = _token()
                # add(): a concurrent bump (or another reader's token) wins over ours.
                versions[index] = token if cache.add(vkey, token, None) else cache.get(vkey)
    except Exception as exc:
        _warn("version read", exc)
        return Lookup()
    if None in versions:  # a cache that stores nothing (Redis away, degraded to misses)
        _warn("version read", "no version could be stored")
        return Lookup()
    if any(isinstance(v, str) and v.startswith(PENDING) for v in versions):
        return Lookup()
    return Lookup(versions=versions)


def store(key: str, versions: list[str] | None, data: Any) -> None:
    """Keep ``data`` under the versions read before it was built (no-op without them)."""
    if versions is None:
        return
    try:
        caches[CACHE_ALIAS].set(key, {"v": versions, "data": data}, cache_seconds())
    except Exception as exc:
        _warn("write", exc)


# ---------------------------------------------------------------------------- installation


def installation_scope(installation_id: int) -> str:
    return f"installation:{installation_id}"


def installation_changed(installation_id: int | None, *, using: str = DEFAULT_DB_ALIAS) -> None:
    """For write paths that bypass ``save()`` (``QuerySet.update``) on an installation."""
    if installation_id is not None:
        scopes_changed(installation_scope(installation_id), using=using)


def _installation_saved(
    sender: Any, instance: Any, using: str = DEFAULT_DB_ALIAS, **_: Any
) -> None:
    installation_changed(instance.pk, using=using)


def _connect() -> None:
    """Installation saves and deletes bump its scope, before the write and after it.

    Connected with a lazy sender so this module needs no import of ``models`` (which
    imports it); the pre-signal covers autocommitted writes, where the post-signal
    runs after the row is already committed.
    """
    from django.db.models import signals

    for signal in (signals.pre_save, signals.post_save, signals.pre_delete, signals.post_delete):
        signal.connect(
            _installation_saved,
            sender="helpdesk_connectors.Installation",
            dispatch_uid="app-session-installation",
        )


_connect()
