"""What every entry view shares: hand the verified identity to billing, answer errors, render the panel.

The connector package must not import ``billing_app`` (DESIGN.md section 1), so the
sign-in is the callable named by ``settings.HELPDESK_SIGN_IN``
(``billing_app.services.identity.agent_sign_in``): it receives the verified
``HelpdeskIdentity`` and returns ``(membership, MintedSession)``.

Language (issue 16): the panel page is rendered in the agent's language, the one the
session token carries (``MintedSession.language``, from the helpdesk profile); the rest
of that request runs in it too (``authentication.language_activate``). An entry refused
before any agent is known answers in the language ``LocaleMiddleware`` chose from the
browser's ``Accept-Language``.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template.loader import render_to_string
from django.utils.module_loading import import_string
from django.utils.translation import gettext

from . import framing
from .base import ConnectorError, EntryRejected, HelpdeskApiError, HelpdeskIdentity
from .models import Installation
from .sessions import MintedSession
from .wire import BodyRejected, error_body, json_loads_bounded

logger = logging.getLogger(__name__)

# A helpdesk account host (``acme.zendesk.com``) and a helpdesk numeric id.
HOST_RE = re.compile(
    r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)+$"
)
ID_RE = re.compile(r"^[0-9]{1,20}$")


def host_normalise(value: Any) -> str:
    """``acme.zendesk.com`` from ``acme.zendesk.com`` or ``https://acme.zendesk.com/``; else ``""``."""
    if not isinstance(value, str):
        return ""
    host = value.strip().lower().removeprefix("https://").rstrip("/")
    return host if HOST_RE.match(host) else ""


def entry_rejected(message: str, code: str) -> EntryRejected:
    return EntryRejected(message, code=code)


class EntryBodyRejected(EntryRejected):
    """The body cannot be read as JSON at all: 413 when too large, 400 when too deep or not
    UTF-8/JSON. Not a 401: nothing about the caller's credentials was judged yet."""

    def __init__(self, message: str, *, code: str, status: int):
        super().__init__(message, code=code)
        self.status = status


class EntryRefused(EntryRejected):
    """A refusal that says more than 401: ``status`` (429 while locked or rate-limited, 503 when
    a side effect such as an email could not happen) and ``details`` for the error envelope
    (``retry_after`` in seconds becomes the ``Retry-After`` header)."""

    def __init__(self, message: str, *, code: str, status: int = 401, details: Any = None):
        super().__init__(message, code=code)
        self.status = status
        self.details = details or {}


_FORM_TYPES = {"multipart/form-data", "application/x-www-form-urlencoded"}


def _too_large(max_bytes: int) -> str:
    return gettext("The request body is larger than %(max_bytes)s bytes.") % {
        "max_bytes": max_bytes
    }


def entry_json_body(request: HttpRequest, *, max_bytes: int) -> Any:
    """The request's JSON body, refused before it can hurt: the declared length is checked
    before a byte is read, the depth before ``json.loads`` recurses
    (``wire.json_loads_bounded``)."""
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        declared = max_bytes + 1
    if declared > max_bytes:
        raise EntryBodyRejected(_too_large(max_bytes), code="body_too_large", status=413)
    if request.content_type in _FORM_TYPES:  # not the app frame's JSON: a rejection (401)
        raise EntryRejected(gettext("The request body must be JSON."), code="bad_request")
    raw = request.body
    if not raw:  # no credentials either: a rejection like any other (401)
        raise EntryRejected(gettext("The request body is missing."), code="bad_request")
    if len(raw) > max_bytes:
        raise EntryBodyRejected(_too_large(max_bytes), code="body_too_large", status=413)
    try:
        return json_loads_bounded(raw)
    except BodyRejected as exc:
        raise EntryBodyRejected(exc.message, code=exc.code, status=exc.status) from None


PANEL_TEMPLATE = "panel/panel.html"
ERROR_TEMPLATE = "helpdesk_connectors/entry_error.html"


class SignInRefused(EntryRejected):
    """The billing side refused the verified identity (e.g. installation not linked)."""

    code = "sign_in_refused"


def sign_in(identity: HelpdeskIdentity, *, role_override: str | None = None) -> MintedSession:
    """Create/update the agent on the billing side and mint an app session.

    Domain errors of the billing side carry ``code`` and ``status``; they become
    ``SignInRefused`` (401) so that the entry view answers like any other rejection.
    The callable is atomic: when it fails, no user or membership is left behind.
    """
    callable_ = import_string(settings.HELPDESK_SIGN_IN)
    kwargs: dict[str, Any] = {"identity": identity}
    if role_override is not None:
        kwargs["role_override"] = role_override
    try:
        _membership, minted = callable_(**kwargs)
    except Exception as exc:
        code = getattr(exc, "code", None)
        if isinstance(code, str) and isinstance(getattr(exc, "status", None), int):
            raise SignInRefused(getattr(exc, "message", str(exc)), code=code) from exc
        raise
    return minted


def session_from_token(token: str, *, connector: str) -> tuple[Installation, MintedSession]:
    """Re-verify an app session token handed to a panel page (Freshdesk, demo).

    The same checks as every API call (``authenticate_token``), plus: the session
    belongs to an installation of ``connector``.
    """
    from rest_framework.exceptions import AuthenticationFailed

    from .authentication import authenticate_claims, verify_token

    if not token:
        raise EntryRejected(gettext("No app session token was sent."), code="missing_token")
    try:
        claims = verify_token(token)
        _user, app_session = authenticate_claims(claims)
    except AuthenticationFailed as exc:
        raise EntryRejected(str(exc.detail), code="invalid_session") from None
    installation = getattr(app_session, "installation", None)
    if not isinstance(installation, Installation) or installation.connector != connector:
        raise EntryRejected(
            gettext("This session is not from this helpdesk."), code="invalid_session"
        )
    expires_at = claims.expires_at
    if expires_at is None:
        raise EntryRejected(gettext("The session has no timestamp."), code="invalid_session")
    return installation, MintedSession(token=token, expires_at=expires_at, language=claims.language)


def error_status(exc: ConnectorError) -> int:
    """401 for every rejection; 503 when the helpdesk itself is unavailable (try again);
    400/413 for a body that could not be read."""
    if isinstance(exc, HelpdeskApiError):
        return 503 if exc.retryable else 401
    if isinstance(exc, EntryBodyRejected | EntryRefused):
        return exc.status
    return 401


def _log_rejection(connector: str, exc: ConnectorError) -> None:
    logger.info("helpdesk entry rejected connector=%s code=%s", connector, exc.code)


def _with_auth_headers(
    response: HttpResponse, exc: ConnectorError, status: int, scheme: str
) -> HttpResponse:
    if status == 401:
        response["WWW-Authenticate"] = f'{scheme} realm="billing-desk", error="{exc.code}"'
    if isinstance(exc, HelpdeskApiError) and exc.retry_after:
        response["Retry-After"] = str(int(exc.retry_after))
    if isinstance(exc, EntryRefused) and isinstance(exc.details.get("retry_after"), int):
        response["Retry-After"] = str(exc.details["retry_after"])
    response["Cache-Control"] = "no-store"
    return response


def json_error(exc: ConnectorError, *, connector: str, scheme: str) -> JsonResponse:
    _log_rejection(connector, exc)
    status = error_status(exc)
    details = exc.details if isinstance(exc, EntryRefused) else None
    response = JsonResponse(error_body(exc.code, exc.message, details), status=status)
    return _with_auth_headers(response, exc, status, scheme)  # type: ignore[return-value]


def html_error(
    request: HttpRequest,
    exc: ConnectorError,
    *,
    connector: str,
    scheme: str,
    frame_origins: list[str],
) -> HttpResponse:
    """A small page the agent sees inside the sidebar, with the reason and its code."""
    _log_rejection(connector, exc)
    status = error_status(exc)
    body = render_to_string(
        ERROR_TEMPLATE, {"code": exc.code, "message": exc.message, "status": status}, request
    )
    response = HttpResponse(body, status=status)
    # The error middleware answers the envelope instead to a client that did not ask for HTML.
    response.error_envelope = error_body(exc.code, exc.message)  # type: ignore[attr-defined]
    framing.allow_framing(response, frame_origins)
    return _with_auth_headers(response, exc, status, scheme)


def panel_response(
    request: HttpRequest,
    *,
    minted: MintedSession,
    connector: str,
    helpdesk_origin: str,
    frame_origins: list[str],
    ticket_id: str = "",
    extra: dict[str, Any] | None = None,
) -> HttpResponse:
    """Render ``panel/panel.html`` with the app session, in the session's language (the rest
    of the request too); only ``frame_origins`` may frame it."""
    from .authentication import language_activate

    language_activate(request, minted.language)
    context = {
        "app_token": minted.token,
        "app_token_expires_at": minted.expires_at.isoformat(),
        "connector": connector,
        "helpdesk_origin": helpdesk_origin,
        "ticket_id": ticket_id,
        **(extra or {}),
    }
    body = render_to_string(PANEL_TEMPLATE, context, request)
    response = HttpResponse(body)
    # The token is in the page: never cache it anywhere.
    response["Cache-Control"] = "no-store"
    response["Referrer-Policy"] = "no-referrer"
    return framing.allow_framing(response, frame_origins)
