"""DRF authentication for app session tokens (``Authorization: Bearer <token>``).

Follows DRF's contract: ``None`` when no bearer credential is present, raise
``AuthenticationFailed`` when one is present but bad, and ``authenticate_header``
so failures answer 401 with ``WWW-Authenticate``, not 403.
"""

from __future__ import annotations

import hmac
from typing import Any

from django.conf import settings
from django.utils.module_loading import import_string
from rest_framework import authentication, exceptions

from . import sessions
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
    if claims.installation_id is not None:
        installation = Installation.objects.filter(
            pk=claims.installation_id, is_active=True
        ).first()
        if (
            installation is None
            or installation.version != claims.installation_version
            or not hmac.compare_digest(
                sessions.installation_fingerprint(installation),
                claims.installation_fingerprint,
            )
        ):
            raise exceptions.AuthenticationFailed("The installation changed; open the app again.")
    else:
        installation = None
    result = _resolver()(claims=claims, installation=installation)
    if result is None:
        raise exceptions.AuthenticationFailed("Your role or access changed; open the app again.")
    return result


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
