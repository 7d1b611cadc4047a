"""A Redis cache that degrades instead of failing when Redis is down or slow.

Billing Desk uses the cache only as an accelerator and a coordinator of
best-effort work — the panel context (``services.context_cache``), provider health
for the outage banner, the per-customer refresh lock — never as the record of
anything: money, actions, approvals and events live in PostgreSQL behind unique
constraints. So when Redis refuses a connection or times out, every read is a
miss, every write is dropped and ``add`` answers False (the caller skips the
optional work it guards: a background refresh waits for the next request). The
panel keeps answering from the database — slower, never wrong.

Timeouts are short (``socket_connect_timeout`` / ``socket_timeout``, 0.25 s by
default) so an unreachable Redis costs a request a fraction of a second, and a
failed Redis is not asked again for ``BACKOFF_SECONDS`` (per process), so an
outage does not add that delay to every request. ``/readyz`` still reports the
cache as down (its write-then-read check reads nothing back).
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from django.core.cache.backends.base import DEFAULT_TIMEOUT
from django.core.cache.backends.redis import RedisCache
from django.utils.functional import cached_property

logger = logging.getLogger(__name__)

BACKOFF_SECONDS = 5.0


class ResilientRedisCache(RedisCache):
    def __init__(self, server: str, params: dict[str, Any]):
        options = dict(params.get("OPTIONS") or {})
        options.setdefault("socket_connect_timeout", 0.25)
        options.setdefault("socket_timeout", 0.25)
        super().__init__(server, {**params, "OPTIONS": options})
        self._down_until = 0.0
        self._lock = threading.Lock()

    @cached_property
    def _cache(self) -> Any:
        """Django builds a new ``redis.Redis`` (hundreds of dict writes) for every cache call;
        one per connection pool serves every thread (it is thread-safe) at no cost."""
        client = super()._cache
        build = client.get_client
        built: dict[int, Any] = {}

        def get_client(key: Any = None, *, write: bool = False) -> Any:
            index = client._get_connection_pool_index(write)  # type: ignore[attr-defined]
            redis_client = built.get(index)
            if redis_client is None:
                redis_client = built[index] = build(key, write=write)
            return redis_client

        client.get_client = get_client  # type: ignore[method-assign]
        return client

    def _guard(self, operation: str, default: Any, call: Any, *args: Any, **kwargs: Any) -> Any:
        if time.monotonic() < self._down_until:
            return default
        try:
            return call(*args, **kwargs)
        except Exception as exc:  # redis.ConnectionError, TimeoutError, ResponseError, ...
            with self._lock:
                first = time.monotonic() >= self._down_until
                self._down_until = time.monotonic() + BACKOFF_SECONDS
            if first:
                logger.warning(
                    "cache %s failed (%s: %s); serving without the cache for %.0f s",
                    operation,
                    type(exc).__name__,
                    exc,
                    BACKOFF_SECONDS,
                )
            return default

    def get(self, key: Any, default: Any = None, version: int | None = None) -> Any:
        return self._guard("get", default, super().get, key, default, version)

    def get_many(self, keys: Any, version: int | None = None) -> dict[Any, Any]:
        return self._guard("get_many", {}, super().get_many, keys, version)

    def set(
        self, key: Any, value: Any, timeout: Any = DEFAULT_TIMEOUT, version: int | None = None
    ) -> None:
        self._guard("set", None, super().set, key, value, timeout, version)

    def set_many(
        self, data: Any, timeout: Any = DEFAULT_TIMEOUT, version: int | None = None
    ) -> list[Any]:
        return self._guard("set_many", list(data), super().set_many, data, timeout, version)

    def add(
        self, key: Any, value: Any, timeout: Any = DEFAULT_TIMEOUT, version: int | None = None
    ) -> bool:
        return self._guard("add", False, super().add, key, value, timeout, version)

    def delete(self, key: Any, version: int | None = None) -> bool:
        return self._guard("delete", False, super().delete, key, version)

    def delete_many(self, keys: Any, version: int | None = None) -> None:
        self._guard("delete_many", None, super().delete_many, keys, version)

    def has_key(self, key: Any, version: int | None = None) -> bool:
        return self._guard("has_key", False, super().has_key, key, version)

    def touch(self, key: Any, timeout: Any = DEFAULT_TIMEOUT, version: int | None = None) -> bool:
        return self._guard("touch", False, super().touch, key, timeout, version)

    def incr(self, key: Any, delta: int = 1, version: int | None = None) -> int:
        # A missing key raises ValueError in Django's API: let that one through.
        if time.monotonic() < self._down_until:
            raise ValueError(f"Key {key!r} not found (cache unavailable).")
        try:
            return super().incr(key, delta, version)
        except ValueError:
            raise
        except Exception as exc:
            self._guard("incr", None, _raise, exc)
            raise ValueError(f"Key {key!r} not found (cache unavailable).") from exc

    def clear(self) -> None:
        self._guard("clear", None, super().clear)


def _raise(exc: Exception) -> None:
    raise exc


def cache_window_hit(key: str, *, seconds: int) -> int | None:
    """Count one hit of ``key`` in a fixed window of ``seconds`` (the first hit opens it);
    the hits so far, this one included — or None when the cache cannot count (Redis down,
    the key evicted): a rate limit built on it fails open, as the cache is never the record
    of anything. ``add`` then ``incr`` are atomic in Redis, so concurrent hits all count."""
    from django.core.cache import cache

    cache.add(key, 0, timeout=seconds)
    try:
        return cache.incr(key)
    except ValueError:  # the key is gone (cache down or evicted): nothing to count against
        return None
