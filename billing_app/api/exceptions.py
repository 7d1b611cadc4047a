"""One exception handler: every error leaves the API as ``{"error": {"code", "message", "details"}}``."""

from __future__ import annotations

import logging
from typing import Any

from django.core.exceptions import PermissionDenied
from django.db import DatabaseError
from django.http import Http404
from django.utils.translation import gettext as _
from rest_framework import exceptions as drf_exceptions
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from helpdesk_connectors.wire import error_body

from ..errors import BillingDeskError
from ..middleware import STATUS_ERRORS, log_failure
from .parsers import PayloadTooLarge

__all__ = ["error_body", "exception_handler"]

logger = logging.getLogger(__name__)

_DRF_CODES = {
    drf_exceptions.ValidationError: "invalid",
    drf_exceptions.ParseError: "malformed_request",
    drf_exceptions.AuthenticationFailed: "not_authenticated",
    drf_exceptions.NotAuthenticated: "not_authenticated",
    drf_exceptions.PermissionDenied: "not_permitted",
    drf_exceptions.NotFound: "not_found",
    drf_exceptions.MethodNotAllowed: "method_not_allowed",
    drf_exceptions.NotAcceptable: "not_acceptable",
    drf_exceptions.UnsupportedMediaType: "unsupported_media_type",
    drf_exceptions.Throttled: "throttled",
    PayloadTooLarge: "body_too_large",
}


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, BillingDeskError):
        return Response(error_body(exc.code, exc.message, exc.details), status=exc.status)
    if isinstance(exc, DatabaseError):
        # The database refused or dropped the request (restart, failover, lock timeout):
        # a 503 the panel can retry, in the one error shape, never an HTML 500. One log
        # line, no traceback: the driver's error chained into Django's printed two per
        # request, 10 MB of log in a 10 s outage (issue 12); the class says what happened.
        code, message = STATUS_ERRORS[503]
        response = Response(error_body(code, message), status=503)
        request = context.get("request")
        if request is not None:
            log_failure(request, response, code, exc)
        return response
    if isinstance(exc, Http404):
        exc = drf_exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = drf_exceptions.PermissionDenied()
    handled = drf_exception_handler(exc, context)
    if handled is None:
        return None
    code = next((c for cls, c in _DRF_CODES.items() if isinstance(exc, cls)), "error")
    if isinstance(exc, drf_exceptions.ParseError):
        # Our parser says which: ``nesting_too_deep`` or ``malformed_request``.
        detail_code = getattr(exc.detail, "code", None)
        if isinstance(detail_code, str) and detail_code != "parse_error":
            code = detail_code
    if isinstance(exc, drf_exceptions.ValidationError):
        message, details = _("The request is not valid."), exc.detail
    else:
        detail = getattr(exc, "detail", "")
        message, details = str(detail) or code, {}
    handled.data = error_body(code, message, details)
    return handled
