"""The one way connectors talk HTTP to a helpdesk API.

Explicit timeouts on every call; transport errors, 429 and 5xx become a retryable
``HelpdeskApiError`` (with ``retry_after`` from ``Retry-After`` when the helpdesk
sends it); other refusals become a non-retryable one carrying the HTTP status. No
call retries or sleeps here: the entry views fail fast and the Celery note task
owns the backoff.
"""

from __future__ import annotations

import json as jsonlib
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import requests
from django.conf import settings

from .base import HelpdeskApiError

logger = logging.getLogger(__name__)

USER_AGENT = "BillingDesk/1.0 (+helpdesk connector)"
# Never trust a Retry-After longer than this (a broken header must not park a task for days).
MAX_RETRY_AFTER_SECONDS = 3600.0


def timeout() -> tuple[float, float]:
    """``(connect, read)`` seconds, from ``HELPDESK_HTTP_TIMEOUT_SECONDS`` (read; default 10)."""
    read = float(getattr(settings, "HELPDESK_HTTP_TIMEOUT_SECONDS", 10))
    return (min(5.0, read), read)


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header: delta-seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - (now or datetime.now(tz=UTC))).total_seconds()
    if seconds != seconds:  # NaN
        return None
    return max(0.0, min(seconds, MAX_RETRY_AFTER_SECONDS))


_STATUS_CODES = {
    400: "helpdesk_bad_request",
    401: "helpdesk_unauthorized",
    403: "helpdesk_forbidden",
    404: "helpdesk_not_found",
    409: "helpdesk_conflict",
    422: "helpdesk_rejected",
}


@dataclass(frozen=True)
class HttpResponse:
    status: int
    headers: dict[str, str]
    text: str

    def json(self) -> Any:
        try:
            return jsonlib.loads(self.text)
        except ValueError as exc:
            raise HelpdeskApiError(
                "The helpdesk answered with something that is not JSON.",
                code="helpdesk_bad_response",
                http_status=self.status,
            ) from exc


def send(
    method: str,
    url: str,
    *,
    service: str,
    auth: tuple[str, str] | None = None,
    headers: dict[str, str] | None = None,
    params: dict[str, Any] | None = None,
    json: Any = None,
) -> HttpResponse:
    """Send one request; return the response on 2xx, raise ``HelpdeskApiError`` otherwise.

    ``service`` (e.g. ``"Zendesk"``) only names the helpdesk in error messages, which
    carry the path but never credentials or bodies (bodies may hold PII).
    """
    all_headers = {"User-Agent": USER_AGENT, "Accept": "application/json"}
    all_headers.update(headers or {})
    path = requests.utils.urlparse(url).path
    try:
        response = requests.request(
            method,
            url,
            auth=auth,
            headers=all_headers,
            params=params,
            json=json,
            timeout=timeout(),
            allow_redirects=False,
        )
    except requests.Timeout as exc:
        raise HelpdeskApiError(
            f"{service} did not answer in time ({method} {path}).",
            code="helpdesk_timeout",
            retryable=True,
        ) from exc
    except requests.RequestException as exc:
        raise HelpdeskApiError(
            f"{service} could not be reached ({method} {path}).",
            code="helpdesk_unreachable",
            retryable=True,
        ) from exc
    status = response.status_code
    if 200 <= status < 300:
        return HttpResponse(status=status, headers=dict(response.headers), text=response.text)
    retry_after = parse_retry_after(response.headers.get("Retry-After"))
    logger.warning("helpdesk api %s %s %s -> %s", service, method, path, status)
    if status == 429:
        raise HelpdeskApiError(
            f"{service} rate limit reached ({method} {path}).",
            code="helpdesk_rate_limited",
            retryable=True,
            retry_after=retry_after,
            http_status=status,
        )
    if status >= 500:
        raise HelpdeskApiError(
            f"{service} failed with HTTP {status} ({method} {path}).",
            code="helpdesk_unavailable",
            retryable=True,
            retry_after=retry_after,
            http_status=status,
        )
    raise HelpdeskApiError(
        f"{service} refused the request with HTTP {status} ({method} {path}).",
        code=_STATUS_CODES.get(status, "helpdesk_refused"),
        http_status=status,
    )
