"""DRF authentication for app session tokens (``Authorization: Bearer <token>``).

Follows DRF's contract: ``None`` when no bearer credential is present, raise
``AuthenticationFailed`` when one is present but bad, and ``authenticate_header``
so failures answer 401 with ``WWW-Authenticate``, not 403.

The installation half of the check reads a versioned cache entry (``session_cache``)
holding what the database check reads — ``is_active``, ``version`` and the credential
fingerprint — plus the row's other non-secret fields, so a warm request costs no query
here. Secrets are never cached: the rebuilt ``Installation`` defers its encrypted fields
(``shared_secret``, ``api_token``, ``oauth_token``), which load from the database if
something reads them. A miss, a mismatch or a cache error is checked against the
database exactly as before.

Language (issue 16): a request authenticated by a token runs in the agent's language,
the token's signed ``l`` claim (``sessions``) — ``translation.activate`` and
``request.LANGUAGE_CODE``, whatever ``Accept-Language`` or the language cookie say
(``LocaleMiddleware`` chose from those before DRF authenticates; its ``process_response``
then names the agent's language in ``Content-Language``). A token without one is in
``settings.LANGUAGE_CODE``. ``LocaleMiddleware`` activates a language at the start of
every request but never deactivates one at the end, so the language is put back when
the request finishes (``request_finished``): nothing of one agent's request leaks into
whatever the thread runs next.
"""

from __future__ import annotations

import hmac
from typing import Any

from asgiref.local import Local
from django.conf import settings
from django.core.signals import request_finished
from django.db import DEFAULT_DB_ALIAS
from django.utils import translation
from django.utils.module_loading import import_string
from django.utils.translation import gettext
from rest_framework import authentication, exceptions

from . import session_cache, sessions
from .fields import EncryptedTextField
from .models import Installation

KEYWORD = "Bearer"
REALM = "billing-desk"


def _resolver():
    return import_string(settings.APP_SESSION_RESOLVER)


_UNSET = object()
_restore = Local()


def language_activate(request: Any, language: str) -> str:
    """Run the rest of this request in ``language`` (a ``settings.LANGUAGES`` code; anything
    else: ``settings.LANGUAGE_CODE``); put back when the request finishes. Returns the code.

    ``request``: Django's ``HttpRequest`` or DRF's ``Request`` (both see ``LANGUAGE_CODE``).
    """
    code = sessions.language_supported(language) or settings.LANGUAGE_CODE
    if getattr(_restore, "previous", _UNSET) is _UNSET:
        _restore.previous = translation.get_language()
    translation.activate(code)
    request.LANGUAGE_CODE = code
    inner = getattr(request, "_request", None)  # DRF's Request wraps Django's
    if inner is not None:
        inner.LANGUAGE_CODE = code
    return code


def _language_restore(**_: Any) -> None:
    previous = getattr(_restore, "previous", _UNSET)
    if previous is _UNSET:
        return
    del _restore.previous
    if isinstance(previous, str):
        translation.activate(previous)
    else:
        translation.deactivate()


request_finished.connect(_language_restore, dispatch_uid="app-session-language-restore")


def authenticate_token(token: str) -> tuple[Any, Any]:
    """Return ``(user, app_session)`` or raise ``AuthenticationFailed``.

    Checks, in order: signature and age; the installation still exists, is
    active, has the same ``version`` and the same credential fingerprint; then
    the billing side's grant (role, role version, role-mapping version).
    """
    return authenticate_claims(verify_token(token))


def verify_token(token: str) -> sessions.SessionClaims:
    """The token's claims (signature and age checked), or ``AuthenticationFailed``."""
    try:
        return sessions.verify(token)
    except sessions.InvalidSession as exc:
        raise exceptions.AuthenticationFailed(
            # The reason is the token check's own (``sessions.InvalidSession``), untranslated.
            gettext("Invalid app session: %(reason)s.") % {"reason": exc}
        ) from None


def authenticate_claims(claims: sessions.SessionClaims) -> tuple[Any, Any]:
    """``authenticate_token`` for claims already verified."""
    installation = installation_check(claims)
    result = _resolver()(claims=claims, installation=installation)
    if result is None:
        raise exceptions.AuthenticationFailed(
            gettext("Your role or access changed; open the app again.")
        )
    return result


def installation_check(claims: sessions.SessionClaims) -> Installation | None:
    """The token's installation, if it still exists, is active and matches version and fingerprint.

    From the cache entry when it is current and says yes; otherwise from the
    database, which decides (and refreshes the entry).
    """
    if claims.installation_id is None:
        return None
    key = session_cache.entry_key("installation", claims.installation_id)
    found = session_cache.lookup(key, [session_cache.installation_scope(claims.installation_id)])
    state = found.entry
    if isinstance(state, dict) and _installation_matches(state, claims):
        return _installation_from_state(state)
    installation = Installation.objects.filter(pk=claims.installation_id, is_active=True).first()
    if installation is None:
        raise exceptions.AuthenticationFailed(
            gettext("The installation changed; open the app again.")
        )
    state = _installation_state(installation)
    session_cache.store(key, found.versions, state)
    if not _installation_matches(state, claims):
        raise exceptions.AuthenticationFailed(
            gettext("The installation changed; open the app again.")
        )
    return installation


def _installation_matches(state: dict[str, Any], claims: sessions.SessionClaims) -> bool:
    return (
        state.get("is_active") is True
        and state.get("version") == claims.installation_version
        and isinstance(state.get("fingerprint"), str)
        and hmac.compare_digest(state["fingerprint"], claims.installation_fingerprint)
    )


def _cached_attnames() -> list[str]:
    """Every column of the installation but its secrets, in model order."""
    return [
        field.attname
        for field in Installation._meta.concrete_fields
        if not isinstance(field, EncryptedTextField)
    ]


def _installation_state(installation: Installation) -> dict[str, Any]:
    return {
        "is_active": installation.is_active,
        "version": installation.version,
        "fingerprint": sessions.installation_fingerprint(installation),
        "row": {name: getattr(installation, name) for name in _cached_attnames()},
    }


def _installation_from_state(state: dict[str, Any]) -> Installation:
    """The row as the database would give it, its secret fields deferred (loaded on access).

    A column the entry lacks (one added since it was stored) is deferred too.
    """
    row = state["row"]
    names = [name for name in _cached_attnames() if name in row]
    return Installation.from_db(DEFAULT_DB_ALIAS, names, [row[name] for name in names])


class AppSessionAuthentication(authentication.BaseAuthentication):
    def authenticate(self, request):
        header = authentication.get_authorization_header(request).split()
        if not header or header[0].lower() != KEYWORD.lower().encode():
            return None
        if len(header) != 2:
            raise exceptions.AuthenticationFailed(
                gettext("Invalid Authorization header: expected 'Bearer <token>'.")
            )
        try:
            token = header[1].decode("ascii")
        except UnicodeDecodeError:
            raise exceptions.AuthenticationFailed(gettext("Invalid token encoding.")) from None
        claims = verify_token(token)
        # Signed, so the agent's: the grant check's refusals are in it too.
        language_activate(request, claims.language)
        return authenticate_claims(claims)

    def authenticate_header(self, request) -> str:
        return f'{KEYWORD} realm="{REALM}"'
