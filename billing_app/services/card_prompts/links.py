"""The customer's signed links: the card-update page and the prompts' unsubscribe.

Both are ``django.core.signing`` tokens (HMAC-SHA256 with ``SECRET_KEY``, compared in
constant time by Django's signer), each under its own salt so that one purpose's token is
never accepted by the other, and each timestamped and checked against its maximum age.
A token names the workspace by id and the billing customer by its provider id — no email,
name or card detail; it is signed, not encrypted, so it holds nothing the customer who
received it should not see. A forged, altered, expired or foreign token is one and the
same ``None`` to the caller: the pages answer it with one generic page and no data.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.core import signing
from django.urls import reverse

from ...models import Workspace

UPDATE_SALT = "billing_app.card_prompts.update"
UNSUBSCRIBE_SALT = "billing_app.card_prompts.unsubscribe"
# The provider's "return" link to our thank-you page: a token of its own, which the update
# page refuses — a return URL is no way to renew an update link.
DONE_SALT = "billing_app.card_prompts.done"
# How long the "update your card" link works after it is made: long enough for a prompt
# sent a month before the card expires, short enough that an old email is not a standing key.
UPDATE_LINK_MAX_AGE = timedelta(days=30)
# The thank-you page: the customer comes back from the provider's page within minutes.
DONE_LINK_MAX_AGE = timedelta(days=1)
# Unsubscribing keeps working for a year (RFC 8058 asks that it works without friction).
UNSUBSCRIBE_LINK_MAX_AGE = timedelta(days=365)


@dataclass(frozen=True)
class CardLinkClaim:
    """What a valid token says: whose card, in which workspace, from which prompt (0: none)."""

    workspace_id: int
    customer_id: str
    prompt_id: int = 0


def _dumps(claim: CardLinkClaim, salt: str) -> str:
    payload = {"w": claim.workspace_id, "c": claim.customer_id}
    if claim.prompt_id:
        payload["p"] = claim.prompt_id
    return signing.dumps(payload, salt=salt, compress=True)


def _loads(token: str, salt: str, max_age: timedelta) -> CardLinkClaim | None:
    if not token or len(token) > 1024:
        return None
    try:
        payload = signing.loads(token, salt=salt, max_age=max_age)
        claim = CardLinkClaim(
            workspace_id=int(payload["w"]),
            customer_id=str(payload["c"]),
            prompt_id=int(payload.get("p") or 0),
        )
    except (signing.BadSignature, KeyError, TypeError, ValueError, AttributeError):
        # SignatureExpired is a BadSignature: expired and forged look the same.
        return None
    if not claim.customer_id:
        return None
    return claim


def card_update_token(*, workspace_id: int, customer_id: str, prompt_id: int = 0) -> str:
    return _dumps(CardLinkClaim(workspace_id, customer_id, prompt_id), UPDATE_SALT)


def card_update_token_read(token: str) -> CardLinkClaim | None:
    """The claim of a valid, unexpired update token; ``None`` for anything else."""
    return _loads(token, UPDATE_SALT, UPDATE_LINK_MAX_AGE)


def card_update_done_token(*, claim: CardLinkClaim) -> str:
    """The return URL's token: shows the thank-you page, opens nothing."""
    return _dumps(claim, DONE_SALT)


def card_update_done_token_read(token: str) -> CardLinkClaim | None:
    return _loads(token, DONE_SALT, DONE_LINK_MAX_AGE)


def unsubscribe_token(*, workspace_id: int, customer_id: str) -> str:
    return _dumps(CardLinkClaim(workspace_id, customer_id), UNSUBSCRIBE_SALT)


def unsubscribe_token_read(token: str) -> CardLinkClaim | None:
    return _loads(token, UNSUBSCRIBE_SALT, UNSUBSCRIBE_LINK_MAX_AGE)


def _absolute(path: str) -> str:
    return f"{settings.PUBLIC_BASE_URL}{path}"


def card_update_url(*, workspace: Workspace, customer_id: str, prompt_id: int = 0) -> str:
    """The absolute, signed URL of the card-update page for ``customer_id`` (valid 30 days).

    The page behind it mints a fresh hosted payment-method update session at the billing
    provider when it is opened (the agents' "update payment method" path) and redirects
    there; the URL itself holds no provider session, so it can be shown or mailed ahead.
    Used by the prompt emails and the billing help widget.
    """
    token = card_update_token(
        workspace_id=workspace.pk, customer_id=customer_id, prompt_id=prompt_id
    )
    return _absolute(reverse("card-update", kwargs={"token": token}))


def card_unsubscribe_url(*, workspace: Workspace, customer_id: str) -> str:
    """The absolute, signed unsubscribe URL (the email's link and its List-Unsubscribe)."""
    token = unsubscribe_token(workspace_id=workspace.pk, customer_id=customer_id)
    return _absolute(reverse("card-unsubscribe", kwargs={"token": token}))
