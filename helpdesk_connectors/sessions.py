"""App session tokens, minted after a verified helpdesk entry.

A token is a signed, timestamped claim set (HMAC-SHA256 with ``SECRET_KEY``,
salted) — verifiable without a database read. It binds the Django user, the
installation and that installation's ``version``, plus a ``grant`` owned by the
billing side (workspace, role and the versions that must still match). The
``APP_SESSION_RESOLVER`` named in settings re-checks the grant against the
database on every request, so a role change or a changed installation rejects
tokens already issued.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.core import signing

SALT = "billing-desk.app-session.v1"


class InvalidSession(Exception):
    pass


@dataclass(frozen=True)
class SessionClaims:
    user_id: int
    installation_id: int | None
    installation_version: int | None
    grant: dict[str, Any]


@dataclass(frozen=True)
class MintedSession:
    token: str
    expires_at: datetime


def ttl() -> int:
    return int(settings.APP_SESSION_TTL_SECONDS)


def mint(
    *,
    user_id: int,
    installation_id: int | None,
    installation_version: int | None,
    grant: dict[str, Any],
) -> MintedSession:
    payload = {"u": user_id, "i": installation_id, "iv": installation_version, "g": grant}
    token = signing.dumps(payload, salt=SALT, compress=True)
    return MintedSession(token=token, expires_at=datetime.now(tz=UTC) + timedelta(seconds=ttl()))


def verify(token: str) -> SessionClaims:
    """Check signature and age; raise ``InvalidSession`` with a reason."""
    if not token or len(token) > 4096:
        raise InvalidSession("malformed token")
    try:
        payload = signing.loads(token, salt=SALT, max_age=ttl())
    except signing.SignatureExpired as exc:
        raise InvalidSession("session expired") from exc
    except signing.BadSignature as exc:
        raise InvalidSession("bad signature") from exc
    if (
        not isinstance(payload, dict)
        or not isinstance(payload.get("u"), int)
        or not isinstance(payload.get("g"), dict)
    ):
        raise InvalidSession("malformed claims")
    return SessionClaims(
        user_id=payload["u"],
        installation_id=payload.get("i"),
        installation_version=payload.get("iv"),
        grant=payload["g"],
    )
