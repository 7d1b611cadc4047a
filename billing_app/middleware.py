"""Every error on the JSON surfaces is the error envelope, in DEBUG too; one log line each.

The JSON surfaces are the API (``/api/``), the helpdesk entries (``/zendesk/``,
``/freshdesk/``), the demo (``/demo/``) and Stripe's webhooks (``/webhooks/``). Their
callers are programs — the panel's JavaScript, Freshworks' proxy, Stripe, scanners — and
DESIGN.md 9 promises them a machine-readable 4xx and never a 500 for malformed input.
Django's own answers there were HTML: the technical 404 page in DEBUG, a 400 page for a
body over ``DATA_UPLOAD_MAX_MEMORY_SIZE``, an empty 405, a 500 page (with the traceback
in DEBUG) for anything a view let escape. This middleware, first in ``MIDDLEWARE``:

* refuses a declared body over ``DATA_UPLOAD_MAX_MEMORY_SIZE`` with 413 before any
  byte is read (``RequestDataTooBig``, raised lazily when a view reads ``request.body``,
  is answered 413 as well);
* turns an exception a view let escape into the envelope (``process_exception``): 404,
  403, 400 for ``BadRequest``/``SuspiciousOperation``/``RecursionError``, 503 for a
  database error, 500 for anything else — never a traceback in the body;
* replaces any other non-JSON error response (the technical 404, an empty 405, a CSRF
  403, Django's 400 page) by the envelope with the same status and headers (``Allow``,
  ``WWW-Authenticate``, ``Retry-After``, framing). An entry view's deliberate HTML error
  page (``helpdesk_connectors.entry.html_error``, shown to the agent inside the helpdesk
  frame) stays HTML for a client that asks for HTML, and is the envelope for any other.

Logging: a failure this middleware answers is logged once, by :func:`log_failure` —
one line, no traceback for an expected fault (a database outage, an oversized body) —
and the response is marked as logged so ``django.request`` does not log it again.
Identical lines in bursts are summarised by ``billing_app.log_limits``.

The HTML pages (``/approvals/``, ``/dashboard/``, ``/admin/``, the login) keep Django's
behaviour: the middleware passes them straight through.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from django.conf import settings
from django.core.exceptions import (
    BadRequest,
    PermissionDenied,
    RequestDataTooBig,
    SuspiciousOperation,
)
from django.db import DatabaseError
from django.http import Http404, HttpRequest, HttpResponse
from django.views import defaults

from helpdesk_connectors.wire import BodyRejected, error_response

logger = logging.getLogger("billing_app.requests")

JSON_PREFIXES = ("/api/", "/zendesk/", "/freshdesk/", "/demo/", "/webhooks/", "/widget/")
_BODY_HEADERS = {"content-type", "content-length", "content-language", "content-encoding"}

# The code and message a bare status gets when Django (not our code) produced the error.
STATUS_ERRORS = {
    400: ("bad_request", "The request could not be understood."),
    401: ("not_authenticated", "Authentication is required."),
    403: ("not_permitted", "This request is not permitted."),
    404: ("not_found", "No such endpoint."),
    405: ("method_not_allowed", "This method is not allowed here."),
    413: ("body_too_large", "The request body is too large."),
    415: ("unsupported_media_type", "This content type is not supported."),
    429: ("throttled", "Too many requests; try again shortly."),
    500: ("internal_error", "Something went wrong on our side."),
    503: (
        "service_unavailable",
        "The service could not complete this request; try again shortly "
        "(an action: with the same idempotency key).",
    ),
}


def is_json_surface(path: str) -> bool:
    return path.startswith(JSON_PREFIXES)


def _status_error(status: int) -> tuple[str, str]:
    if status in STATUS_ERRORS:
        return STATUS_ERRORS[status]
    return ("internal_error" if status >= 500 else "error", "The request failed.")


def body_too_large_response() -> HttpResponse:
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    return error_response(
        413,
        "body_too_large",
        f"The request body is larger than {limit} bytes.",
        {"max_bytes": limit},
    )


def log_failure(
    request: HttpRequest,
    response: HttpResponse,
    code: str,
    exc: BaseException | None = None,
    *,
    traceback: bool = False,
) -> HttpResponse:
    """Log one line for this failed request and mark the response so Django adds none.

    The line carries the status, the code, the method, the path (ids only: query strings,
    which may hold e-mail addresses, are left out) and the exception's class — not its
    message (a database error can quote the row it refused) and, unless ``traceback``,
    no traceback: an outage is one known cause repeated, not a bug to debug per request.
    """
    status = response.status_code
    error = type(exc).__name__ if exc is not None else "-"
    logger.log(
        logging.ERROR if status >= 500 else logging.WARNING,
        "request failed status=%s code=%s method=%s path=%s error=%s",
        status,
        code,
        request.method,
        request.path,
        error,
        exc_info=exc if traceback and exc is not None else None,
        extra={"log_key": f"{status}:{code}:{error}", "status_code": status},
    )
    response._has_been_logged = True  # type: ignore[attr-defined]  # django.utils.log.log_response
    return response


def exception_response(request: HttpRequest, exc: BaseException) -> HttpResponse:
    """The envelope for an exception that escaped a view on a JSON surface (logged once)."""
    if isinstance(exc, RequestDataTooBig):
        return log_failure(request, body_too_large_response(), "body_too_large", exc)
    if isinstance(exc, BodyRejected):
        response = error_response(exc.status, exc.code, exc.message, exc.details)
        return log_failure(request, response, exc.code, exc)
    if isinstance(exc, RecursionError):
        response = error_response(400, "nesting_too_deep", "The request nests too deeply.")
        return log_failure(request, response, "nesting_too_deep", exc)
    if isinstance(exc, Http404):
        code, message = STATUS_ERRORS[404]
        return log_failure(request, error_response(404, code, message), code, exc)
    if isinstance(exc, PermissionDenied):
        code, message = STATUS_ERRORS[403]
        return log_failure(request, error_response(403, code, message), code, exc)
    if isinstance(exc, (BadRequest, SuspiciousOperation)):
        code, message = STATUS_ERRORS[400]
        return log_failure(request, error_response(400, code, message), code, exc)
    if isinstance(exc, DatabaseError):
        code, message = STATUS_ERRORS[503]
        return log_failure(request, error_response(503, code, message), code, exc)
    # A bug: its one traceback is worth having (the log filter keeps the first per minute).
    code, message = STATUS_ERRORS[500]
    response = error_response(500, code, message)
    return log_failure(request, response, "internal_error", exc, traceback=True)


def _is_json(response: HttpResponse) -> bool:
    return str(response.get("Content-Type", "")).startswith("application/json")


def _wants_html(request: HttpRequest) -> bool:
    return "text/html" in request.headers.get("Accept", "")


def _as_envelope(request: HttpRequest, response: HttpResponse) -> HttpResponse:
    envelope = getattr(response, "error_envelope", None)
    if envelope is not None and _wants_html(request):
        return response  # an entry's page for the agent inside the helpdesk frame
    status = response.status_code
    if envelope is not None:
        code, message = envelope["error"]["code"], envelope["error"]["message"]
    else:
        code, message = _status_error(status)
    replacement = error_response(status, code, message)
    # Every header but the body's own: Allow, WWW-Authenticate, Retry-After, and the
    # framing/security headers the inner middleware and entry views set.
    for header, value in response.items():
        if header.lower() not in _BODY_HEADERS:
            replacement[header] = value
    if getattr(response, "_has_been_logged", False):
        replacement._has_been_logged = True  # type: ignore[attr-defined]
    return replacement


class JsonErrorMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if not is_json_surface(request.path_info):
            return self.get_response(request)
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        try:
            declared = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            code, message = STATUS_ERRORS[400]
            return log_failure(request, error_response(400, code, message), code)
        if limit is not None and declared > limit:
            return log_failure(request, body_too_large_response(), "body_too_large")
        response = self.get_response(request)
        if response.status_code >= 400 and not _is_json(response):
            response = _as_envelope(request, response)
        return response

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not is_json_surface(request.path_info):
            return None
        return exception_response(request, exception)


# --- handler404 / handler500 (billing_app/urls.py) --------------------------------------------


def page_not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """A URL on a JSON surface that matches no route answers the envelope, not Django's page."""
    if is_json_surface(request.path_info):
        code, message = STATUS_ERRORS[404]
        return error_response(404, code, message)
    return defaults.page_not_found(request, exception)


def server_error(request: HttpRequest) -> HttpResponse:
    """An exception raised outside a view (in another middleware) on a JSON surface."""
    if is_json_surface(request.path_info):
        code, message = STATUS_ERRORS[500]
        return error_response(500, code, message)
    return defaults.server_error(request)
