"""Freshdesk entry.

* ``POST /freshdesk/session/`` — JSON, called through the FDK request proxy, which adds
  ``Authorization: BillingDeskSecret <shared secret>``; answers ``{"token", "expires_at",
  "expires_in"}``. The app frame keeps that session for the agent across tickets (the
  proxy allows 50 calls a minute per app and account), so ``expires_in`` (seconds) lets it
  count the lifetime on its own clock.
* ``POST /freshdesk/enroll/start/`` and ``POST /freshdesk/enroll/verify/`` — a browser's
  enrollment (issue 17, ``devices``), through the same proxy and shared secret: the first
  emails the agent a code (the body may carry ``device_label``, logged) and answers ``{"enrollment", "email", "expires_in"}`` (the
  address masked); the second takes ``{"enrollment", "code", "device_label"}`` and answers
  ``{"device_credential", "expires_at"}``, which the app frame keeps for this agent and
  sends with every ``/freshdesk/session/`` call.
* ``POST /freshdesk/panel/`` — the panel page: the app frame submits a form (target:
  its panel iframe) carrying that token, so the token never appears in a URL.
"""

from __future__ import annotations

from typing import cast

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.clickjacking import xframe_options_exempt
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from .. import entry, framing
from ..base import ConnectorError, EntryRejected
from ..registry import get_connector
from . import devices
from .connector import FreshdeskConnector


def error_frame_origins() -> list[str]:
    """Error pages carry no data or actions; any Freshdesk agent page (through the app frame)
    may show them."""
    return ["https://*.freshdesk.com", *framing.freshworks_app_frame_origins()]


@require_POST
@csrf_exempt  # server-to-server from Freshworks' request proxy; authenticated by the shared secret
@never_cache
def session(request: HttpRequest) -> HttpResponse:
    connector = get_connector("freshdesk")
    try:
        identity = connector.verify_entry(request)
        minted = entry.sign_in(identity)
    except ConnectorError as exc:
        return entry.json_error(exc, connector=connector.key, scheme=connector.entry_auth_scheme)
    return JsonResponse(
        {
            "token": minted.token,
            "expires_at": minted.expires_at.isoformat(),
            "expires_in": max(0, int((minted.expires_at - timezone.now()).total_seconds())),
        }
    )


@require_POST
@csrf_exempt  # server-to-server from Freshworks' request proxy; authenticated by the shared secret
@never_cache
def enroll_start(request: HttpRequest) -> HttpResponse:
    connector = cast(FreshdeskConnector, get_connector("freshdesk"))
    try:
        body, installation, agent_id = connector.verify_caller(request)
        started = devices.enrollment_start(
            installation,
            agent_id,
            # what the frame says the browser is, for the log (a label, never trusted)
            device_label=label if isinstance(label := body.get("device_label"), str) else "",
        )
    except ConnectorError as exc:
        return entry.json_error(exc, connector=connector.key, scheme=connector.entry_auth_scheme)
    return JsonResponse(
        {
            "enrollment": started.attempt,
            "email": started.email_masked,
            "expires_in": started.expires_in,
        }
    )


@require_POST
@csrf_exempt  # server-to-server from Freshworks' request proxy; authenticated by the shared secret
@never_cache
def enroll_verify(request: HttpRequest) -> HttpResponse:
    connector = cast(FreshdeskConnector, get_connector("freshdesk"))
    try:
        body, installation, agent_id = connector.verify_caller(request)
        attempt, code = body.get("enrollment"), body.get("code")
        issued = devices.enrollment_verify(
            installation,
            agent_id,
            attempt if isinstance(attempt, str) else "",
            code if isinstance(code, str) else "",
            # what the frame says the browser is (the proxy's own User-Agent says nothing):
            # a label for the admin's list, never trusted for anything
            device_label=label if isinstance(label := body.get("device_label"), str) else "",
        )
    except ConnectorError as exc:
        return entry.json_error(exc, connector=connector.key, scheme=connector.entry_auth_scheme)
    return JsonResponse(
        {
            "device_credential": issued.secret,
            "expires_at": devices.expires_at(issued.credential).isoformat(),
        }
    )


@require_POST
@csrf_exempt  # a cross-site form POST from the FDK app frame; authenticated by the app session token
@xframe_options_exempt  # framed by the installation's Freshdesk and the Freshworks app frame only
def panel(request: HttpRequest) -> HttpResponse:
    connector = get_connector("freshdesk")
    try:
        installation, minted = entry.session_from_token(
            request.POST.get("token", ""), connector=connector.key
        )
    except EntryRejected as exc:
        return entry.html_error(
            request,
            exc,
            connector=connector.key,
            scheme=connector.entry_auth_scheme,
            frame_origins=error_frame_origins(),
        )
    ticket_id = request.POST.get("ticket_id", "")
    email = request.POST.get("requester_email", "")
    return entry.panel_response(
        request,
        minted=minted,
        connector=connector.key,
        helpdesk_origin=installation.base_url,
        frame_origins=connector.frame_ancestors(installation),
        ticket_id=ticket_id if ticket_id.isdigit() and len(ticket_id) <= 20 else "",
        extra={"requester_email": email if "@" in email and len(email) <= 320 else ""},
    )
