"""Single-use signed entry tokens: a hash of each accepted token, kept until its ``exp``.

Issue 12: a Zendesk signed-URL token was accepted twice, and one with a 10-year ``exp``
was accepted. A token is a bearer credential for as long as it lives, so Billing Desk
(1) refuses tokens whose lifetime (``exp - iat``) exceeds what Zendesk issues plus the
leeway — a long-lived token was not minted by Zendesk for one page load — and (2) lets
each token open the panel once: its digest goes into ``ConsumedEntryToken`` under a
unique constraint, in the database rather than the cache, so a cache outage or two
concurrent requests cannot let a replay through.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from ..entry import entry_rejected
from ..models import ConsumedEntryToken

# Zendesk does not publish the lifetime of signed-URL tokens; five minutes is a
# conservative maximum (the app exchanges it for an app session at once). Settable.
DEFAULT_MAX_LIFETIME_SECONDS = 300


def max_lifetime_seconds() -> int:
    return int(
        getattr(settings, "ZENDESK_TOKEN_MAX_LIFETIME_SECONDS", DEFAULT_MAX_LIFETIME_SECONDS)
    )


def lifetime_check(claims: dict[str, Any], *, leeway: int) -> None:
    """Refuse a token that lives longer than Zendesk's signed URLs (plus ``leeway``)."""
    exp, iat = claims.get("exp"), claims.get("iat")
    if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in (exp, iat)):
        raise entry_rejected("The token's exp and iat must be numbers.", "malformed_token")
    assert isinstance(exp, int | float) and isinstance(iat, int | float)  # checked just above
    if exp - iat > max_lifetime_seconds() + leeway:
        raise entry_rejected(
            "The token lives longer than a Zendesk signed URL does; reload the ticket.",
            "token_lifetime_too_long",
        )


def token_digest(claims: dict[str, Any]) -> str:
    """sha256 of the token's identity: ``iss`` + ``jti`` when present, else all its claims.

    Verified claims rather than the raw string: two encodings of one signed token (base64
    padding, trailing bits) must count as the same token.
    """
    if claims.get("jti"):
        identity = json.dumps(["jti", str(claims.get("iss")), str(claims["jti"])])
    else:
        identity = json.dumps(["claims", claims], sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(identity.encode()).hexdigest()


def token_consume(*, connector: str, claims: dict[str, Any], leeway: int) -> None:
    """Record the token as used; ``entry_rejected(token_replayed)`` if it already was."""
    now = timezone.now()
    expires_at = datetime.fromtimestamp(int(claims["exp"]), tz=UTC) + timedelta(seconds=leeway)
    # Expired rows can never match a token that still verifies: prune them as we go.
    ConsumedEntryToken.objects.filter(expires_at__lt=now).delete()
    try:
        with transaction.atomic():
            ConsumedEntryToken.objects.create(
                connector=connector, digest=token_digest(claims), expires_at=expires_at
            )
    except IntegrityError:
        raise entry_rejected(
            "This signed link was already used; reload the ticket to open Billing Desk.",
            "token_replayed",
        ) from None


def consumed_tokens_prune() -> int:
    """Delete the records of tokens that have expired (for a periodic task); returns how many."""
    deleted, _ = ConsumedEntryToken.objects.filter(expires_at__lt=timezone.now()).delete()
    return deleted
