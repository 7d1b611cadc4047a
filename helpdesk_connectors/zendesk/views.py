"""``POST /zendesk/sidebar/``: the signed-URL entry that renders the panel inside Zendesk."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.views.decorators.clickjacking import xframe_options_exempt
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from .. import entry
from ..base import ConnectorError
from ..registry import get_connector

# Error pages carry no data or actions; any Zendesk agent page may show them.
ERROR_FRAME_ORIGINS = ["https://*.zendesk.com"]


@require_POST
@csrf_exempt  # a cross-site POST from Zendesk, authenticated by the signed JWT instead
@xframe_options_exempt  # framed by the installation's Zendesk only: see framing.py
def sidebar(request: HttpRequest) -> HttpResponse:
    connector = get_connector("zendesk")
    try:
        identity = connector.verify_entry(request)
        minted = entry.sign_in(identity)
    except ConnectorError as exc:
        return entry.html_error(
            request,
            exc,
            connector=connector.key,
            scheme=connector.entry_auth_scheme,
            frame_origins=ERROR_FRAME_ORIGINS,
        )
    installation = identity.installation
    return entry.panel_response(
        request,
        minted=minted,
        connector=connector.key,
        helpdesk_origin=installation.base_url,
        frame_origins=connector.frame_ancestors(installation),
        ticket_id=identity.ticket_id,
    )
