"""Every billing-provider call, timed and recorded as a ``ProviderCall``.

``get_provider`` wraps each provider in ``InstrumentedProvider``: a proxy that
passes every call through unchanged (same result, same exception) and records
its operation (the interface method's name), its duration and its outcome —
``ok``, ``error`` (the provider refused: card error, invalid request, a state it
will not change) or ``unavailable`` (network, timeout, 429, 5xx: the provider
could not answer). The dashboard's response times, Stripe API status, uptime
and API success rate are aggregated from these rows.

Where the record is written, and why:

* The caller is not inside a transaction (the normal case: a provider call is a
  network call, and nobody should hold a database transaction open across it):
  one autocommitted INSERT on the default connection.
* The caller is inside ``transaction.atomic``: a record written on the same
  connection would vanish if that transaction rolls back — and a provider
  failure is exactly what makes callers roll back, so failures would go
  uncounted. On PostgreSQL the INSERT therefore goes through a second,
  autocommitting connection kept per thread (``connections.create_connection``),
  so it is durable whatever the caller's transaction does. It is still one
  statement (the INSERT and its roll-up increment in one data-modifying CTE,
  ``models.rollups.provider_call_insert``); the side connection is opened once per
  thread and reused.
* Where a side connection cannot work — SQLite (one writer: the second
  connection would wait on the caller's own write lock) and the test suite
  (everything runs inside one test transaction that a second connection cannot
  see, so a foreign key to an uncommitted workspace would block) — the record is
  written inside a savepoint of the caller's transaction: it survives if the
  caller commits.
* Outside a transaction on PostgreSQL: one autocommitted statement, the INSERT and
  its roll-up together (SQLite: both in one short transaction). ``settings.PROVIDER_CALLS_SIDE_CONNECTION`` (None = automatic)
  overrides the choice.

Recording never raises into the caller: a failed INSERT is logged and dropped.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, DatabaseError, connections, transaction
from django.utils import timezone

from ..errors import BillingDeskError, ProviderError, ProviderUnavailable
from .base import LOCAL_METHODS, BillingProvider

logger = logging.getLogger(__name__)

# The interface's methods: these calls are recorded; any other attribute passes through.
OPERATIONS: frozenset[str] = frozenset(
    name
    for name, value in vars(BillingProvider).items()
    if callable(value) and not name.startswith("_") and name not in LOCAL_METHODS
)

_side = threading.local()


class InstrumentedProvider:
    """A ``BillingProvider`` proxy recording each interface call as a ``ProviderCall``."""

    def __init__(self, inner: BillingProvider):
        self.inner = inner
        self.workspace = inner.workspace
        self.key = getattr(inner, "key", "") or type(inner).__name__.lower()
        self._wrapped: dict[str, Callable[..., Any]] = {}

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self.inner, name)
        if name not in OPERATIONS or not callable(attr):
            return attr
        wrapped = self._wrapped.get(name)
        if wrapped is None:
            wrapped = self._instrument(name, attr)
            self._wrapped[name] = wrapped
        return wrapped

    def __repr__(self) -> str:
        return f"InstrumentedProvider({self.inner!r})"

    def _instrument(self, operation: str, method: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(method)
        def call(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                result = method(*args, **kwargs)
            except BaseException as exc:
                outcome, code = _classify(exc)
                self._record(operation, started, outcome, code)
                raise
            self._record(operation, started, "ok", "")
            return result

        return call

    def _record(self, operation: str, started: float, outcome: str, error_code: str) -> None:
        duration_ms = max(0, round((time.perf_counter() - started) * 1000))
        provider_call_record(
            workspace_id=self.workspace.pk,
            provider=self.key,
            operation=operation,
            duration_ms=duration_ms,
            outcome=outcome,
            error_code=error_code,
        )


BillingProvider.register(InstrumentedProvider)


def _classify(exc: BaseException) -> tuple[str, str]:
    if isinstance(exc, ProviderUnavailable):
        return "unavailable", (exc.provider_code or exc.code)[:64]
    if isinstance(exc, ProviderError):
        return "error", (exc.decline_code or exc.provider_code or exc.code)[:64]
    if isinstance(exc, BillingDeskError):
        return "error", exc.code[:64]
    return "error", type(exc).__name__[:64]


def _side_connection_enabled() -> bool:
    configured = getattr(settings, "PROVIDER_CALLS_SIDE_CONNECTION", None)
    if configured is not None:
        return bool(configured)
    vendor = connections[DEFAULT_DB_ALIAS].vendor
    return vendor == "postgresql" and not getattr(settings, "TESTING", False)


def provider_call_side_connection_close() -> None:
    """Close this thread's side connection (tests, worker shutdown)."""
    conn = getattr(_side, "connection", None)
    if conn is not None:
        _side.connection = None
        conn.close()


def _insert_on_side_connection(values: dict[str, Any]) -> None:
    from ..models.rollups import provider_call_insert

    conn = getattr(_side, "connection", None)
    if conn is None:
        conn = connections.create_connection(DEFAULT_DB_ALIAS)
        _side.connection = conn
    try:
        conn.ensure_connection()
        provider_call_insert(conn, values)  # the call and its roll-up: one autocommitted statement
    except DatabaseError:
        provider_call_side_connection_close()
        raise


def provider_call_record(
    *,
    workspace_id: int,
    provider: str,
    operation: str,
    duration_ms: int,
    outcome: str,
    error_code: str = "",
) -> None:
    """Write one ``ProviderCall`` and count it in the dashboard's daily roll-ups; never
    raises (see the module docstring for where)."""
    from ..models import ProviderCall
    from ..models.rollups import provider_call_insert, provider_call_rolled_up

    values = {
        "workspace_id": workspace_id,
        "provider": provider[:16],
        "operation": operation[:64],
        "duration_ms": duration_ms,
        "outcome": outcome,
        "error_code": error_code[:64],
        "created_at": timezone.now(),
    }
    conn = connections[DEFAULT_DB_ALIAS]
    try:
        if conn.in_atomic_block and _side_connection_enabled():
            try:
                _insert_on_side_connection(values)
                return
            except DatabaseError:
                logger.warning("provider call: side connection failed; recording in-transaction")
        if conn.in_atomic_block and conn.needs_rollback:
            logger.warning(
                "provider call %s not recorded: the caller's transaction failed", operation
            )
            return
        # Autocommit: the INSERT and its roll-up are one statement on PostgreSQL (one
        # transaction elsewhere); in a transaction, a savepoint, so a failed INSERT leaves
        # the caller's intact.
        if not conn.in_atomic_block and provider_call_insert(conn, values):
            return
        with transaction.atomic():
            if not provider_call_insert(conn, values):
                ProviderCall.objects.create(**values)
                provider_call_rolled_up(conn, values)
    except Exception:  # recording must never change what the caller sees
        logger.exception("provider call %s could not be recorded", operation)
