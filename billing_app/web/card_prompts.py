"""The customer's card pages: update the card, and unsubscribe from card-update prompts.

Reached only through a signed, expiring link (``services.card_prompts.links``). Anything
else — a forged, altered, expired or foreign token, a deleted customer, an inactive
workspace — gets one generic page with status 404 and no customer data, whatever the
reason. GETs change nothing (mail scanners open links): updating the card and
unsubscribing are POSTs, the page's with Django's CSRF check; only RFC 8058's one-click
endpoint, which mail clients POST to without a page, is CSRF-exempt and checks the token
alone. Every page sends a strict Content-Security-Policy (no script at all) and denies
framing; none is cached, and none sends a referrer to another site (the token is in the
URL): ``Referrer-Policy: same-origin``. Not ``no-referrer``: with it Chromium sends
``Origin: null`` on the page's own form POST, which Django's CSRF check refuses (403).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods, require_POST

from ..errors import ProviderError
from ..models import Workspace
from ..services.card_prompts import (
    CardLinkClaim,
    card_update_done_token_read,
    card_update_token_read,
    unsubscribe_token_read,
)
from ..services.card_prompts.optout import card_prompts_unsubscribe
from ..services.card_prompts.portal import (
    CardLinkRefused,
    CardLinkThrottled,
    card_link_workspace,
    card_update_return_path,
    card_update_session_create,
)

CARD_PAGE_CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self' {portal}; "
    "base-uri 'none'; frame-ancestors 'none'"
)


def _secure(response: HttpResponse) -> HttpResponse:
    # The form's POST answers with a redirect to the provider's page: form-action must
    # allow it (Chrome checks redirects of a form submission against form-action).
    response["Content-Security-Policy"] = CARD_PAGE_CSP.format(portal="https:")
    # same-origin: the provider's page gets no referrer (the token is in the URL), our own
    # form POST keeps its Origin (no-referrer makes Chromium send "Origin: null": CSRF 403).
    response["Referrer-Policy"] = "same-origin"
    response["X-Robots-Tag"] = "noindex"
    return response


def _page(request: HttpRequest, template: str, context: dict, status: int = 200) -> HttpResponse:
    return _secure(render(request, f"self_service/{template}", context, status=status))


def _invalid(request: HttpRequest) -> HttpResponse:
    return _page(request, "card_link_invalid.html", {}, status=404)


def _claimed(
    token: str, read: Callable[[str], CardLinkClaim | None]
) -> tuple[CardLinkClaim, Workspace] | None:
    """The token's claim and its workspace (a live customer in it), or ``None``: one refusal."""
    claim = read(token)
    if claim is None:
        return None
    try:
        return claim, card_link_workspace(claim=claim)
    except CardLinkRefused:
        return None


@never_cache
@require_http_methods(["GET", "POST"])
def card_update_page(request: HttpRequest, token: str) -> HttpResponse:
    """GET: the page with one button; POST (CSRF): a fresh hosted session, then 303 to it."""
    found = _claimed(token, card_update_token_read)
    if found is None:
        return _invalid(request)
    claim, workspace = found
    context: dict[str, Any] = {"workspace": workspace}
    if request.method == "POST":
        return_url = f"{settings.PUBLIC_BASE_URL}{card_update_return_path(claim=claim)}"
        try:
            url = card_update_session_create(claim=claim, return_url=return_url)
        except CardLinkRefused:
            return _invalid(request)
        except CardLinkThrottled:
            return _page(request, "card_update.html", context | {"throttled": True}, 429)
        except ProviderError:
            return _page(request, "card_update.html", context | {"unavailable": True}, 503)
        response = HttpResponseRedirect(url)
        response.status_code = 303
        return _secure(response)
    return _page(request, "card_update.html", context)


@never_cache
def card_update_done(request: HttpRequest, token: str) -> HttpResponse:
    """Where the provider sends the customer back. The change itself is read from webhooks."""
    found = _claimed(token, card_update_done_token_read)
    if found is None:
        return _invalid(request)
    return _page(request, "card_update_done.html", {"workspace": found[1]})


@never_cache
@require_http_methods(["GET", "POST"])
def card_unsubscribe_page(request: HttpRequest, token: str) -> HttpResponse:
    """GET: confirm; POST (CSRF): record the opt-out."""
    found = _claimed(token, unsubscribe_token_read)
    if found is None:
        return _invalid(request)
    claim, workspace = found
    done = request.method == "POST"
    if done:
        card_prompts_unsubscribe(claim=claim)
    return _page(request, "card_unsubscribe.html", {"workspace": workspace, "done": done})


@csrf_exempt
@never_cache
@require_POST
def card_unsubscribe_one_click(request: HttpRequest, token: str) -> HttpResponse:
    """RFC 8058 one-click: the mail client POSTs ``List-Unsubscribe=One-Click`` here.

    CSRF-exempt by design (the client has no page and no cookie); the signed token is the
    only credential, so a forged request without it changes nothing.
    """
    claim = unsubscribe_token_read(token)
    if claim is None:
        return _secure(HttpResponse(status=404))
    try:
        card_prompts_unsubscribe(claim=claim)
    except CardLinkRefused:
        return _secure(HttpResponse(status=404))
    return _secure(HttpResponse(status=204))
