"""The transport under the Stripe client: how requests are sent, retried and classified,
and how Stripe's exceptions become ours (``stripe_errors``).

Transport, as verified in the installed stripe-python 16 (``stripe/_http_client.py``):

- requests go through ``requests`` (``RequestsClient``), so tests intercept them
  with ``responses``; every request carries ``timeout=settings.STRIPE_TIMEOUT_SECONDS``
  and ``Stripe-Version: settings.STRIPE_API_VERSION``;
- ``max_network_retries=settings.STRIPE_MAX_NETWORK_RETRIES``: the library retries
  connection errors and timeouts (``requests`` ``ConnectionError``/``Timeout``),
  409 and every 5xx, with exponential backoff and jitter (0.5 s doubling, capped at
  5 s), and obeys ``Stripe-Should-Retry: true|false`` when Stripe sends it. It does
  **not** retry a 429 unless Stripe adds ``Stripe-Should-Retry: true``; rate limits
  are exactly what a short backoff cures, so ``StripeHttpClient`` also retries 429
  (still honouring ``Stripe-Should-Retry: false``);
- the headers, ``Idempotency-Key`` included, are built once per call and reused
  by every retry, so a retried write is replayed by Stripe, never repeated. Every
  write here passes the caller's deterministic key; without one stripe-python
  would invent a random key per call, which protects retries inside one call but
  not a retry of the whole action.

What a failed write means (DESIGN.md section 9: nothing is recorded as not done
that may have been). stripe-python wraps every ``requests`` exception in one
``APIConnectionError``, so ``StripeHttpClient`` classifies each attempt's
transport failure itself and remembers, per thread, whether any attempt of the
current write may have reached Stripe:

- *refused*: Stripe answered 4xx (429 included): nothing changed;
- *never sent*: connection refused, DNS failure, connect timeout, TLS handshake:
  the request did not leave, nothing changed (``ProviderUnavailable``);
- *sent, outcome unknown*: read timeout, connection reset or closed after
  sending, a 5xx or an unreadable answer — on any attempt, because a later
  attempt that never left does not undo an earlier one that may have acted
  (``ProviderOutcomeUnknown``). Reads have no outcome: they stay ``ProviderUnavailable``.
"""

from __future__ import annotations

import hashlib
import logging
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any, ClassVar

import requests
import stripe
import urllib3.exceptions
from django.conf import settings
from stripe import StripeClient
from stripe._http_client import RequestsClient

from ...errors import (
    BillingDeskError,
    Conflict,
    ProviderError,
    ProviderOutcomeUnknown,
    ProviderUnavailable,
)

logger = logging.getLogger(__name__)

Obj = dict[str, Any]

NEVER_SENT = "never_sent"
OUTCOME_UNKNOWN = "outcome_unknown"

# Per thread: did any attempt of the write in progress possibly reach Stripe?
_transport = threading.local()

# Failures that happen before a byte of the request leaves this machine.
_NOT_SENT_TYPES: tuple[type[BaseException], ...] = (
    requests.exceptions.ConnectTimeout,
    requests.exceptions.SSLError,
    requests.exceptions.InvalidURL,
    requests.exceptions.MissingSchema,
    requests.exceptions.InvalidSchema,
    requests.exceptions.InvalidHeader,
    ConnectionRefusedError,
    socket.gaierror,
    urllib3.exceptions.ConnectTimeoutError,  # NewConnectionError and NameResolutionError too
)
# What urllib3 and the ``responses`` mock say when no connection could be opened.
_NOT_SENT_TEXT = ("Failed to establish a new connection", "Connection refused")


def transport_error_kind(exc: BaseException) -> str:
    """``never_sent`` when the request provably did not leave, else ``outcome_unknown``.

    Walks the wrapped causes (``requests`` wraps urllib3 which wraps the socket
    error): a read timeout, ``ConnectionResetError``, ``RemoteDisconnected`` or a
    broken chunked body after the request was written are all unknown.
    """
    if isinstance(exc, requests.exceptions.ReadTimeout | requests.exceptions.ChunkedEncodingError):
        return OUTCOME_UNKNOWN
    seen: set[int] = set()
    stack: list[Any] = [exc]
    while stack:
        current = stack.pop()
        if not isinstance(current, BaseException) or id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, _NOT_SENT_TYPES):
            return NEVER_SENT
        if isinstance(current, ConnectionResetError | TimeoutError):
            return OUTCOME_UNKNOWN
        stack.extend(current.args)
        stack.extend((getattr(current, "reason", None), current.__cause__, current.__context__))
    if isinstance(exc, requests.exceptions.ConnectionError) and any(
        text in str(exc) for text in _NOT_SENT_TEXT
    ):
        return NEVER_SENT
    return OUTCOME_UNKNOWN


def _write_begin() -> None:
    _transport.maybe_sent = False


def _write_maybe_sent() -> bool:
    return bool(getattr(_transport, "maybe_sent", False))


_call_clock = threading.local()


def stripe_call_started() -> datetime | None:
    """When this thread's latest Stripe request was sent (None before any).

    The provider stamps the objects a write returned with it, so the mirror can order
    that answer against re-reads (``services.mirror``: the mirror never goes back in time).
    """
    return getattr(_call_clock, "started", None)


class StripeHttpClient(RequestsClient):
    """``RequestsClient`` that also retries HTTP 429 within the bounded retry budget,
    waiting at least what ``Retry-After`` asks (capped: an agent is waiting)."""

    # Multiplies stripe-python's backoff; tests set it to 0 so retries do not sleep.
    backoff_scale: ClassVar[float] = 1.0
    # The longest Retry-After honoured per retry; stripe-python 16 ignores the header.
    max_retry_after: ClassVar[float] = 5.0
    _retry_after = threading.local()

    def _should_retry(
        self,
        response: tuple[Any, int, Any] | None,
        api_connection_error: stripe.APIConnectionError | None,
        num_retries: int,
        max_network_retries: int | None,
    ) -> bool:
        self._retry_after.seconds = _retry_after_seconds(response)
        if response is not None and response[1] >= 500:
            _transport.maybe_sent = True
        elif api_connection_error is not None:
            cause = api_connection_error.__cause__ or api_connection_error
            if transport_error_kind(cause) == OUTCOME_UNKNOWN:
                _transport.maybe_sent = True
        if response is not None and num_retries < (max_network_retries or 0):
            _, status_code, headers = response
            advice = (headers or {}).get("stripe-should-retry")
            if status_code == 429 and advice != "false":
                return True
        return super()._should_retry(
            response, api_connection_error, num_retries, max_network_retries
        )

    def _sleep_time_seconds(self, num_retries: int) -> float:
        seconds = super()._sleep_time_seconds(num_retries)
        hint = getattr(self._retry_after, "seconds", None)
        if hint is not None:
            seconds = max(seconds, min(hint, self.max_retry_after))
        return seconds * self.backoff_scale


def _retry_after_seconds(response: tuple[Any, int, Any] | None) -> float | None:
    """``Retry-After`` in seconds (Stripe sends a number), when the answer carries one."""
    if response is None:
        return None
    value = (response[2] or {}).get("retry-after")
    try:
        return max(0.0, float(value)) if value is not None else None
    except (TypeError, ValueError):
        return None


_clients: dict[tuple[Any, ...], StripeClient] = {}
_clients_lock = threading.Lock()
_MAX_CACHED_CLIENTS = 256


def stripe_client_build(*, api_key: str) -> StripeClient:
    """A ``StripeClient`` for one secret key, pinned to our API version, timeout and retries."""
    # STRIPE_API_BASE: a local Stripe stand-in (stripe-mock, the benchmarks' fake); empty = Stripe.
    api_base = getattr(settings, "STRIPE_API_BASE", "")
    return StripeClient(
        api_key,
        stripe_version=settings.STRIPE_API_VERSION,
        max_network_retries=settings.STRIPE_MAX_NETWORK_RETRIES,
        http_client=StripeHttpClient(timeout=settings.STRIPE_TIMEOUT_SECONDS),
        base_addresses={"api": api_base} if api_base else None,
    )


def stripe_client_get(*, workspace_id: int, api_key: str) -> StripeClient:
    """The cached client of one workspace (reusing its HTTP connections between requests).

    Keyed by a digest of the key and the transport settings, so rotating a
    workspace's key or changing the settings builds a new client.
    """
    digest = hashlib.sha256(api_key.encode()).hexdigest()
    cache_key = (
        workspace_id,
        digest,
        settings.STRIPE_API_VERSION,
        settings.STRIPE_TIMEOUT_SECONDS,
        settings.STRIPE_MAX_NETWORK_RETRIES,
        getattr(settings, "STRIPE_API_BASE", ""),
    )
    with _clients_lock:
        client = _clients.get(cache_key)
        if client is None:
            if len(_clients) >= _MAX_CACHED_CLIENTS:
                _clients.clear()
            client = _clients[cache_key] = stripe_client_build(api_key=api_key)
        return client


def _error_body(exc: stripe.StripeError) -> dict[str, Any]:
    body = exc.json_body if isinstance(exc.json_body, dict) else {}
    error = body.get("error")
    return error if isinstance(error, dict) else {}


def stripe_error_translate(exc: stripe.StripeError, *, write: bool = False) -> BillingDeskError:
    """Stripe's exception → ours, with Stripe's codes kept for the audit trail and logs.

    For a ``write``, a failure that may have reached Stripe (see the module
    docstring) is ``ProviderOutcomeUnknown``, whatever the last attempt saw.
    """
    error = _error_body(exc)
    provider_code = str(error.get("code") or getattr(exc, "code", "") or "")
    message = str(error.get("message") or exc.user_message or type(exc).__name__)
    details = {
        "provider": "stripe",
        "type": error.get("type") or "",
        "provider_code": provider_code,
        "param": error.get("param") or "",
        "request_id": exc.request_id or "",
    }
    if isinstance(exc, stripe.CardError):
        decline_code = str(error.get("decline_code") or "")
        return ProviderError(
            message,
            code="card_declined",
            status=422,
            details={**details, "decline_code": decline_code},
            provider_code=provider_code,
            decline_code=decline_code,
        )
    maybe_sent = write and (_write_maybe_sent() or isinstance(exc, stripe.APIError))
    if maybe_sent and isinstance(
        exc,
        stripe.RateLimitError
        | stripe.APIConnectionError
        | stripe.APIError
        | stripe.IdempotencyError,
    ):
        # A 5xx, an unreadable answer, or an earlier attempt lost after sending: a
        # later 429 or refused connection does not undo it; an idempotency error here
        # means the first attempt is still running at Stripe.
        return ProviderOutcomeUnknown(
            "Stripe did not confirm this request in time, so it may or may not have been "
            "carried out. Billing Desk is confirming with Stripe; do not retry it.",
            details={**details, "error_class": type(exc).__name__},
            provider_code=provider_code,
        )
    if isinstance(exc, stripe.IdempotencyError):
        return Conflict(
            "Stripe refused the request: this idempotency key was already used with other "
            "parameters.",
            code="idempotency_conflict",
            details=details,
        )
    if isinstance(exc, stripe.InvalidRequestError):
        if exc.http_status == 404:
            status = 404
        elif error.get("param"):
            status = 400
        else:
            status = 422
        return ProviderError(
            message,
            code="invalid_request",
            status=status,
            details=details,
            provider_code=provider_code,
        )
    if isinstance(exc, stripe.AuthenticationError | stripe.PermissionError):
        return ProviderError(
            "Stripe rejected this workspace's API key.",
            code="provider_auth",
            status=502,
            details=details,
            provider_code=provider_code,
        )
    if isinstance(exc, stripe.RateLimitError | stripe.APIConnectionError | stripe.APIError):
        # After the bounded retries: worth trying again later. Only a write that
        # provably never reached Stripe (or was refused with 429) "changed nothing";
        # a read changes nothing anyway.
        if not write:
            message = "Stripe is not answering right now. Try again shortly."
        elif isinstance(exc, stripe.RateLimitError):
            message = "Stripe refused the request for now (rate limit); nothing was changed."
        else:
            message = "Stripe could not be reached; the request was not sent, nothing was changed."
        return ProviderUnavailable(
            f"{message} Try again shortly." if write else message,
            details={**details, "error_class": type(exc).__name__},
            provider_code=provider_code,
        )
    return ProviderError(message, details=details, provider_code=provider_code)


@contextmanager
def stripe_errors(operation: str, *, write: bool = False) -> Iterator[None]:
    if write:
        _write_begin()
    try:
        yield
    except stripe.StripeError as exc:
        translated = stripe_error_translate(exc, write=write)
        logger.warning(
            "stripe %s failed: %s %s (request %s)",
            operation,
            type(exc).__name__,
            getattr(translated, "provider_code", ""),
            exc.request_id or "-",
        )
        raise translated from exc
