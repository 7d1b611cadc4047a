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
"""

from __future__ import annotations

import hmac
from typing import Any

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS
from django.utils.module_loading import import_string
from rest_framework import authentication, exceptions

from . import session_cache, sessions
from .fields import EncryptedTextField
from .models import Installation

KEYWORD = "Bearer"
REALM = "billing-desk"


def _resolver():
    return import_string(settings.APP_SESSION_RESOLVER)


def authenticate_token(token: str) -> tuple[Any, Any]:
    """Return ``(user, app_session)`` or raise ``AuthenticationFailed``.

    Checks, in order: signature and age; the installation still exists, is
    active, has the same ``version`` and the same credential fingerprint; then
    the billing side's grant (role, role version, role-mapping version).
    """
    try:
        claims = sessions.verify(token)
    except sessions.InvalidSession as exc:
        raise exceptions.AuthenticationFailed(f"Invalid app session: {exc}.") from None
    installation = installation_check(claims)
    result = _resolver()(claims=claims, installation=installation)
    if result is None:
        raise exceptions.AuthenticationFailed("Your role or access changed; open the app again.")
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
        raise exceptions.AuthenticationFailed("The installation changed; open the app again.")
    state = _installation_state(installation)
    session_cache.store(key, found.versions, state)
    if not _installation_matches(state, claims):
        raise exceptions.AuthenticationFailed("The installation changed; open the app again.")
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
                "Invalid Authorization header: expected 'Bearer <token>'."
            )
        try:
            token = header[1].decode("ascii")
        except UnicodeDecodeError:
            raise exceptions.AuthenticationFailed("Invalid token encoding.") from None
        return authenticate_token(token)

    def authenticate_header(self, request) -> str:
        return f'{KEYWORD} realm="{REALM}"'
