"""From a valid card link to the provider's hosted card-update page.

The same provider call as the agents' "update payment method" action
(``BillingProvider.payment_method_update_link``: a Stripe Billing Portal session with
``flow_data.type=payment_method_update``, or the sandbox's page), minted fresh each time
the customer asks, so no provider session sits in an email. No card data passes through
Billing Desk: the customer types the card into the provider's page.

Not an action: no ``BillingAction`` row, no approval and no agent statistics — the
customer acts on their own account through a link Billing Desk signed for them, and the
outcome is read back from the provider's webhooks (``outcomes``). Every mint is logged
with ids only and limited per customer (``MINTS_PER_HOUR``).
"""

from __future__ import annotations

import logging
import uuid

from django.urls import reverse

from ...cache import cache_window_hit
from ...errors import BillingDeskError, ProviderError
from ...models import MirrorCustomer, Workspace
from ...providers import get_provider
from .links import CardLinkClaim, card_update_done_token

logger = logging.getLogger(__name__)

# Hosted sessions a customer may open per hour: far above a person's retries, far below
# what would let a leaked link be used to flood the provider.
MINTS_PER_HOUR = 10


class CardLinkRefused(BillingDeskError):
    """The link is signed but names nothing we serve (inactive workspace, unknown customer)."""

    code = "card_link_invalid"
    status = 404


class CardLinkThrottled(BillingDeskError):
    code = "card_link_rate_limited"
    status = 429


def card_link_workspace(*, claim: CardLinkClaim) -> Workspace:
    """The workspace and a live customer behind a verified claim, else ``CardLinkRefused``."""
    workspace = Workspace.objects.filter(pk=claim.workspace_id, is_active=True).first()
    if workspace is None or not (
        MirrorCustomer.objects.filter(
            workspace=workspace, stripe_id=claim.customer_id, deleted=False
        ).exists()
    ):
        raise CardLinkRefused("This link is not valid.")
    return workspace


def _throttle(workspace: Workspace, customer_id: str) -> None:
    """A fixed one-hour window in the cache (best effort: without Redis it allows)."""
    count = cache_window_hit(f"card_link_mints:{workspace.pk}:{customer_id}", seconds=3600)
    if count is not None and count > MINTS_PER_HOUR:
        logger.warning(
            "card link refused: rate limit workspace=%s customer=%s", workspace.pk, customer_id
        )
        raise CardLinkThrottled("Too many attempts. Try again in an hour.")


def card_update_session_create(*, claim: CardLinkClaim, return_url: str) -> str:
    """A fresh hosted card-update URL at the provider for the claim's customer.

    Raises ``CardLinkRefused``, ``CardLinkThrottled`` or the provider's error (the page
    says "try again later"; a session the provider may have made and never returned is
    harmless: it expires unused).
    """
    workspace = card_link_workspace(claim=claim)
    _throttle(workspace, claim.customer_id)
    # A new key per mint: each click is a new session (Stripe's expire after minutes).
    key = f"cardlink:{workspace.pk}:{uuid.uuid4().hex}"
    try:
        link = get_provider(workspace).payment_method_update_link(
            customer_id=claim.customer_id, return_url=return_url, idempotency_key=key
        )
    except ProviderError as exc:
        logger.warning(
            "card link: provider refused workspace=%s customer=%s (%s)",
            workspace.pk,
            claim.customer_id,
            exc.code,
        )
        raise
    logger.info(
        "card link: update session %s for workspace=%s customer=%s prompt=%s",
        link.object_id,
        workspace.pk,
        claim.customer_id,
        claim.prompt_id or "-",
    )
    return link.url


def card_update_return_path(*, claim: CardLinkClaim) -> str:
    """Where the provider's page sends the customer back: our "thank you" page, under its
    own token (the done salt, one day): it cannot open the update page, so the update
    link's 30 days are not renewed through it."""
    token = card_update_done_token(claim=claim)
    return reverse("card-update-done", kwargs={"token": token})
