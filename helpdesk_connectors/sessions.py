"""App session tokens, minted after a verified helpdesk entry.

A token is a signed, timestamped claim set (HMAC-SHA256 with ``SECRET_KEY``,
salted) — verifiable without a database read. It binds the Django user, the
installation, that installation's ``version`` and a fingerprint of its
verification material and API credentials, plus a ``grant`` owned by the billing
side (workspace, role and the versions that must still match). On every request
``authentication.authenticate_token`` re-reads the installation and the
``APP_SESSION_RESOLVER`` named in settings re-checks the grant against the
database, so a role change, a changed role mapping, a bumped installation
version or credentials changed by any code path reject tokens already issued.

Tokens live ``APP_SESSION_TTL_SECONDS`` (default 900 s): the panel asks the
helpdesk for a fresh entry when one expires.

The token also carries the agent's language (``l``: a ``settings.LANGUAGES`` code, from
the helpdesk profile read at sign-in; issue 16). It is a signed claim like the others —
the client cannot change it, and no request reads the database or a cache for it — so
``authentication`` activates it for every API request and ``entry`` renders the panel
page in it. A new language in the helpdesk profile reaches the agent with the next
sign-in (the next token), at the latest when the current one expires.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.core import signing

if TYPE_CHECKING:
    from .models import Installation

SALT = "billing-desk.app-session.v1"
MAX_TOKEN_LENGTH = 4096


class InvalidSession(Exception):
    pass


@dataclass(frozen=True)
class SessionClaims:
    user_id: int
    installation_id: int | None
    installation_version: int | None
    grant: dict[str, Any]
    installation_fingerprint: str = ""
    issued_at: datetime | None = None
    # The agent's language (a ``settings.LANGUAGES`` code), "" for the default.
    language: str = ""

    @property
    def expires_at(self) -> datetime | None:
        return self.issued_at + timedelta(seconds=ttl()) if self.issued_at else None


@dataclass(frozen=True)
class MintedSession:
    token: str
    expires_at: datetime
    language: str = ""


def ttl() -> int:
    return int(settings.APP_SESSION_TTL_SECONDS)


def language_supported(code: object) -> str:
    """``code`` when it is one of ``settings.LANGUAGES`` (exactly, as minted), else ""."""
    if not isinstance(code, str) or not code:
        return ""
    return code if code in {c for c, _name in settings.LANGUAGES} else ""


def installation_fingerprint(installation: Installation) -> str:
    """A keyed digest of everything that, when changed, must end the installation's sessions.

    Keyed with ``SECRET_KEY`` so the token (readable by its holder) reveals nothing
    about the secrets it covers.
    """
    material = "\x1f".join(
        [
            installation.connector,
            installation.domain,
            installation.installation_id,
            installation.app_id,
            installation.public_key,
            installation.shared_secret or "",
            installation.api_email,
            installation.api_token or "",
            installation.oauth_token or "",
            "1" if installation.is_active else "0",
        ]
    )
    key = hashlib.sha256(f"{SALT}:fingerprint:{settings.SECRET_KEY}".encode()).digest()
    return hmac.new(key, material.encode(), hashlib.sha256).hexdigest()[:32]


def _current_fingerprint(installation_id: int | None) -> str:
    if installation_id is None:
        return ""
    from .models import Installation

    installation = Installation.objects.filter(pk=installation_id).first()
    return installation_fingerprint(installation) if installation else ""


def mint(
    *,
    user_id: int,
    installation_id: int | None,
    installation_version: int | None,
    grant: dict[str, Any],
    language: str = "",
) -> MintedSession:
    """Sign a new token. Reads the installation row to bind its credential fingerprint.

    ``language``: the agent's language, a ``settings.LANGUAGES`` code (anything else is
    not signed: the session is in the default language)."""
    language = language_supported(language)
    payload: dict[str, Any] = {
        "u": user_id,
        "i": installation_id,
        "iv": installation_version,
        "if": _current_fingerprint(installation_id),
        "g": grant,
    }
    if language:
        payload["l"] = language
    token = signing.dumps(payload, salt=SALT, compress=True)
    return MintedSession(
        token=token,
        expires_at=datetime.now(tz=UTC) + timedelta(seconds=ttl()),
        language=language,
    )


def verify(token: str) -> SessionClaims:
    """Check signature and age; raise ``InvalidSession`` with a reason."""
    if not token or len(token) > MAX_TOKEN_LENGTH:
        raise InvalidSession("malformed token")
    try:
        payload = signing.loads(token, salt=SALT, max_age=ttl())
    except signing.SignatureExpired as exc:
        raise InvalidSession("session expired") from exc
    except signing.BadSignature as exc:
        raise InvalidSession("bad signature") from exc
    except (
        ValueError,
        TypeError,
        UnicodeDecodeError,
    ) as exc:  # corrupt but signed? never, but be total
        raise InvalidSession("malformed token") from exc
    if (
        not isinstance(payload, dict)
        or not isinstance(payload.get("u"), int)
        or not isinstance(payload.get("g"), dict)
        or not isinstance(payload.get("i"), int | None)
        or not isinstance(payload.get("iv"), int | None)
        or not isinstance(payload.get("if", ""), str)
        or not isinstance(payload.get("l", ""), str)
    ):
        raise InvalidSession("malformed claims")
    return SessionClaims(
        user_id=payload["u"],
        installation_id=payload.get("i"),
        installation_version=payload.get("iv"),
        grant=payload["g"],
        installation_fingerprint=payload.get("if", ""),
        issued_at=_issued_at(token),
        # A language no longer configured reads as the default one.
        language=language_supported(payload.get("l", "")),
    )


def _issued_at(token: str) -> datetime | None:
    """The signer's timestamp (``payload:timestamp:signature``), already verified by ``loads``."""
    try:
        return datetime.fromtimestamp(signing.b62_decode(token.rsplit(":", 2)[1]), tz=UTC)
    except (IndexError, ValueError, OverflowError):
        return None
