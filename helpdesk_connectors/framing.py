"""Who may frame the panel: CSP ``frame-ancestors`` per installation.

Every page of Billing Desk keeps Django's ``X-Frame-Options: DENY``
(``XFrameOptionsMiddleware``) except the panel entry views, which are decorated
with ``@xframe_options_exempt`` and send ``Content-Security-Policy:
frame-ancestors …`` naming only the origins of the installation's helpdesk.

Which origins a browser checks (``frame-ancestors`` applies to *every* ancestor
of the framed document, not only its parent):

* **Zendesk** — a ZAF v2 location with a remote ``url`` is an iframe placed
  directly in the agent workspace at ``https://{subdomain}.zendesk.com``; the
  only ancestor is that origin (agents always use the ``zendesk.com`` host, host
  mapping only applies to the help center). Zendesk-hosted app assets
  (``*.apps.zdusercontent.com``) are not involved because our location URL is
  remote. → ``https://acme.zendesk.com``.
* **Freshdesk** — FDK front-end apps are themselves iframes inside
  ``https://{account}.freshdesk.com``; our panel is an iframe inside that app
  frame, so both are ancestors. → ``https://acme.freshdesk.com`` plus
  ``FRESHWORKS_APP_FRAME_ORIGINS`` (env ``BILLING_DESK_FRESHWORKS_APP_FRAME_ORIGINS``,
  comma-separated). The default, ``https://d3h0owdjgzys62.cloudfront.net``, is the
  CDN domain Freshworks' developer guide "Solve CORS errors › Yes, but why is the
  CORS required in the first place?" names as the one Freshworks apps are loaded
  with (https://developers.freshworks.com/docs/guides/solve-cors-errors/how-to-avoid-need-for-cors/).
  The guide names no platform version and no reference page repeats it, so the
  origin is a setting: docs/threat-model.md says what allowing it means.
* **Demo** — framed by the demo host page of this same server → ``'self'``.

Error pages of the entry views carry no data and no actions; they may be framed
by any host of the helpdesk (``https://*.zendesk.com``) so the agent sees the
reason inside the sidebar instead of a blank frame.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.conf import settings
from django.http import HttpResponse

DEFAULT_FRESHWORKS_APP_FRAME_ORIGINS = ("https://d3h0owdjgzys62.cloudfront.net",)


def freshworks_app_frame_origins() -> list[str]:
    """The origins that serve Freshworks app frames (settings, else the documented CDN)."""
    configured = getattr(settings, "FRESHWORKS_APP_FRAME_ORIGINS", None)
    if configured is None:
        return list(DEFAULT_FRESHWORKS_APP_FRAME_ORIGINS)
    return [origin.rstrip("/") for origin in configured if origin]


def _valid_source(source: str) -> bool:
    if source in {"'self'", "'none'"}:
        return True
    if not source.startswith("https://") and not (settings.DEBUG and source.startswith("http://")):
        return False
    host = source.split("://", 1)[1]
    # No paths, spaces, quotes or separators that could smuggle another directive in.
    return bool(host) and not any(ch in host for ch in " ;,'\"/\\\r\n\t")


def frame_ancestors_value(origins: Iterable[str]) -> str:
    """``frame-ancestors a b``; invalid sources are dropped, none left → ``'none'``."""
    sources = list(dict.fromkeys(o for o in origins if _valid_source(o)))
    return "frame-ancestors " + (" ".join(sources) if sources else "'none'")


# The panel's own content policy: its scripts and styles come from this origin only
# (plus the Zendesk app SDK), it talks to this origin only, and nothing is inlined.
PANEL_CONTENT_POLICY = (
    "default-src 'self'; script-src 'self' https://static.zdassets.com; style-src 'self'; "
    "img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'"
)


def allow_framing(response: HttpResponse, origins: Iterable[str]) -> HttpResponse:
    """Let exactly ``origins`` frame ``response`` (use on panel responses only).

    Sets the CSP header and marks the response exempt from ``X-Frame-Options``
    (the view should also carry ``@xframe_options_exempt``; both are idempotent).
    Browsers that understand CSP ignore ``X-Frame-Options`` when
    ``frame-ancestors`` is present, so the CSP is the real control.
    """
    response["Content-Security-Policy"] = (
        f"{PANEL_CONTENT_POLICY}; {frame_ancestors_value(origins)}"
    )
    response.xframe_options_exempt = True
    return response
