"""The customer's refund-request page, ``/billing/refund/<token>/``.

Reached only through a signed, expiring link (``services.refund_links``).
Anything else — a forged, altered, expired, revoked or unknown token — gets one
generic page with status 404 and no customer data, whatever the reason.

GET shows the customer's recent payments, what a request on each would do and the
status of their requests; it changes nothing (mail scanners open links). A request is
a POST with Django's CSRF check, answered with a redirect back to the page (so a reload
does not post again; a repeated post finds the first request anyway). The page is in
the customer's language (their Stripe ``preferred_locales``, else the browser's), sends
a strict Content-Security-Policy (no script at all), denies framing, is never cached and
sends no referrer to other sites (the token is in the URL).
"""

from __future__ import annotations

import logging

from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.utils import translation
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods

from ..errors import NotFound, ValidationFailed
from ..models import SelfServiceLink
from ..selectors.action_messages import customer_language
from ..services.refund_links import refund_link_read
from ..services.self_service_refunds.page import reason_choices, refund_page_payments
from ..services.self_service_refunds.requests import (
    COMMENT_MAX,
    RequestRateLimited,
    refund_request_submit,
)

logger = logging.getLogger(__name__)

REFUND_PAGE_CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
    "base-uri 'none'; frame-ancestors 'none'"
)


def _secure(response: HttpResponse) -> HttpResponse:
    response["Content-Security-Policy"] = REFUND_PAGE_CSP
    # The token is in the URL: no referrer leaves for another site. Not "no-referrer": with
    # it Chromium sends "Origin: null" on the form's POST, which Django's CSRF check refuses.
    response["Referrer-Policy"] = "same-origin"
    response["X-Robots-Tag"] = "noindex"
    return response


def _invalid(request: HttpRequest) -> HttpResponse:
    return _secure(render(request, "self_service/refund_link_invalid.html", {}, status=404))


def _page(
    request: HttpRequest, link: SelfServiceLink, *, error: str = "", status: int = 200
) -> HttpResponse:
    context = {
        "workspace": link.workspace,
        "link": link,
        "payments": refund_page_payments(link=link),
        "reasons": reason_choices(),
        "comment_max": COMMENT_MAX,
        "error": error,
    }
    return _secure(render(request, "self_service/refund_request.html", context, status=status))


@never_cache
@require_http_methods(["GET", "POST"])
def refund_request_page(request: HttpRequest, token: str) -> HttpResponse:
    link = refund_link_read(token)
    if link is None:
        return _invalid(request)
    language = customer_language(workspace_id=link.workspace_id, customer_id=link.customer_id)
    with translation.override(language):
        if request.method != "POST":
            return _page(request, link)
        try:
            refund_request_submit(
                link=link,
                charge_id=str(request.POST.get("charge_id", ""))[:255],
                reason=str(request.POST.get("reason", "")),
                comment=str(request.POST.get("comment", "")),
            )
        except RequestRateLimited as exc:
            logger.info("refund request rate-limited on link %s", link.pk)
            response = _page(request, link, error=exc.message, status=429)
            response["Retry-After"] = str(exc.details.get("retry_after", 3600))
            return response
        except (ValidationFailed, NotFound) as exc:
            return _page(request, link, error=exc.message, status=400)
        response = HttpResponseRedirect(request.path, status=303)
        response.status_code = 303
        return _secure(response)
