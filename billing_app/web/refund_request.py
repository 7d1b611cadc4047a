"""The customer's refund-request page, ``/billing/refund/<token>/``.

Reached only through a signed, expiring link (``services.self_service_refunds.links``).
Anything else — a forged, altered, expired, revoked or unknown token — gets one
generic page with status 404 and no customer data, whatever the reason.
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods

from ..services.self_service_refunds.links import refund_link_read

REFUND_PAGE_CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
    "base-uri 'none'; frame-ancestors 'none'"
)


def _secure(response: HttpResponse) -> HttpResponse:
    response["Content-Security-Policy"] = REFUND_PAGE_CSP
    response["Referrer-Policy"] = "no-referrer"
    response["X-Robots-Tag"] = "noindex"
    return response


def _invalid(request: HttpRequest) -> HttpResponse:
    return _secure(render(request, "self_service/refund_link_invalid.html", {}, status=404))


@never_cache
@require_http_methods(["GET", "POST"])
def refund_request_page(request: HttpRequest, token: str) -> HttpResponse:
    link = refund_link_read(token)
    if link is None:
        return _invalid(request)
    return _invalid(request)
