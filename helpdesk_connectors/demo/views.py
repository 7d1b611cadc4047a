"""Demo entry: ``POST /demo/session/`` and ``POST /demo/panel/`` (404 unless demo mode)."""

from __future__ import annotations

from django.http import Http404, HttpRequest, HttpResponse, HttpResponseNotAllowed, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.clickjacking import xframe_options_exempt
from django.views.decorators.csrf import csrf_exempt

from .. import entry
from ..base import ConnectorError, EntryRejected
from ..registry import get_connector
from .connector import demo_enabled


def _demo_post_only(request: HttpRequest) -> HttpResponse | None:
    """404 (not 405) outside demo mode, so production does not even reveal the route."""
    if not demo_enabled():
        raise Http404("The demo is not enabled.")
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    return None


@csrf_exempt  # JSON from the demo host page; there is no cookie session to ride on
@never_cache
def session(request: HttpRequest) -> HttpResponse:
    """``{"role", "workspace"}`` → ``{"token", "expires_at"}`` for that demo agent."""
    if refused := _demo_post_only(request):
        return refused
    connector = get_connector("demo")
    try:
        identity = connector.verify_entry(request)
        minted = entry.sign_in(identity, role_override=identity.extra["role"])
    except ConnectorError as exc:
        return entry.json_error(exc, connector=connector.key, scheme=connector.entry_auth_scheme)
    return JsonResponse({"token": minted.token, "expires_at": minted.expires_at.isoformat()})


@csrf_exempt  # a form POST from the demo host page carrying the app session token
@xframe_options_exempt  # framed by this server's demo host page only ('self')
def panel(request: HttpRequest) -> HttpResponse:
    """The panel page for a demo session (form fields ``token``, ``ticket_id``, ``requester_email``)."""
    if refused := _demo_post_only(request):
        return refused
    connector = get_connector("demo")
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
            frame_origins=["'self'"],
        )
    email = request.POST.get("requester_email", "")
    return entry.panel_response(
        request,
        minted=minted,
        connector=connector.key,
        helpdesk_origin="",
        frame_origins=connector.frame_ancestors(installation),
        ticket_id=request.POST.get("ticket_id", "")[:32],
        extra={"requester_email": email if "@" in email and len(email) <= 320 else ""},
    )
