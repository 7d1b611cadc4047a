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
  origin is a setting: docs/threat-model.md says what allowing it means. Each entry
  must be exactly ``https://host[:port]`` (a trailing ``/`` is dropped): a wildcard
  (``https://*.cloudfront.net`` — anyone can own a CloudFront distribution), another
  scheme, a path, query, user name or anything else is refused, by the system check
  ``helpdesk_connectors.E005`` and with ``ImproperlyConfigured`` when the panel would
  send it, never passed on to ``frame-ancestors``.
* **Demo** — framed by the demo host page of this same server → ``'self'``.

Error pages of the entry views carry no data and no actions; they may be framed
by any host of the helpdesk (``https://*.zendesk.com``) so the agent sees the
reason inside the sidebar instead of a blank frame.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from django.conf import settings
from django.core.checks import Error, Tags, register
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpResponse

DEFAULT_FRESHWORKS_APP_FRAME_ORIGINS = ("https://d3h0owdjgzys62.cloudfront.net",)
SETTING = "FRESHWORKS_APP_FRAME_ORIGINS"
ENV_SETTING = "BILLING_DESK_FRESHWORKS_APP_FRAME_ORIGINS"
# https://host[:port], the host a domain name of two labels or more (no wildcard, no IP
# literal, no user name), the port 1-65535 without leading zeros; nothing after it.
_ORIGIN = re.compile(
    r"^https://(?P<host>(?:(?!-)[a-z0-9-]{1,63}(?<!-)\.)+(?!-)[a-z0-9-]{1,63}(?<!-))"
    r"(?::(?P<port>[1-9][0-9]{0,4}))?$"
)


def origin_problem(value: object) -> str | None:
    """Why ``value`` is not an origin the frame setting may name, or None when it is one."""
    if not isinstance(value, str):
        return f"{value!r} is not a text origin"
    text = value.strip().removesuffix("/").lower()
    if "*" in text:
        return f"{value!r} has a wildcard: name each origin that serves the app frames"
    if not text.startswith("https://"):
        return f"{value!r} is not an https origin"
    match = _ORIGIN.match(text)
    if match is None:
        return (
            f"{value!r} is not https://host[:port]: no path, query, fragment, user name, "
            "IP address or other character may follow or replace the host"
        )
    if match["host"].rsplit(".", 1)[-1].isdigit():
        return f"{value!r} names an IP address: give the host name that serves the app frames"
    if match["port"] and int(match["port"]) > 65535:
        return f"{value!r} has no valid port"
    if len(match["host"]) > 253:
        return f"{value!r} has a host name longer than 253 characters"
    return None


def _configured_origins() -> tuple[list[str], list[str]]:
    """(the setting's origins normalised, what is wrong with it)."""
    configured = getattr(settings, SETTING, None)
    if configured is None:
        return list(DEFAULT_FRESHWORKS_APP_FRAME_ORIGINS), []
    if isinstance(configured, str) or not isinstance(configured, Iterable):
        return [], [f"{SETTING} must be a list of origins, not {type(configured).__name__}"]
    origins, problems = [], []
    for value in configured:
        if value == "":
            continue
        problem = origin_problem(value)
        if problem:
            problems.append(problem)
        else:
            origins.append(value.strip().removesuffix("/").lower())
    return origins, problems


def freshworks_app_frame_origins() -> list[str]:
    """The origins that serve Freshworks app frames (settings, else the documented CDN).

    :class:`ImproperlyConfigured` when an entry is not exactly ``https://host[:port]``:
    a panel is never framed on a misread or widened setting.
    """
    origins, problems = _configured_origins()
    if problems:
        raise ImproperlyConfigured(f"{SETTING} ({ENV_SETTING}): {'; '.join(problems)}.")
    return origins


@register(Tags.security)
def freshworks_frame_origins_valid(app_configs, **kwargs):
    """``FRESHWORKS_APP_FRAME_ORIGINS`` names exact https origins only (no wildcard, no path)."""
    _, problems = _configured_origins()
    return [
        Error(
            f"{SETTING} ({ENV_SETTING}): {problem}.",
            hint=(
                "Give comma-separated origins such as https://d3h0owdjgzys62.cloudfront.net: "
                "https, a host name and an optional port, nothing else."
            ),
            id="helpdesk_connectors.E005",
        )
        for problem in problems
    ]


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
