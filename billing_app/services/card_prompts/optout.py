"""A customer's unsubscribe from card-update prompts: recorded once, honoured by every send."""

from __future__ import annotations

import logging

from ...models import CustomerOptOut
from .links import CardLinkClaim
from .portal import card_link_workspace

logger = logging.getLogger(__name__)


def card_prompts_unsubscribe(*, claim: CardLinkClaim) -> None:
    """Record the opt-out (idempotent: a second click, or the mail client's one-click POST
    after the page's, finds the first row). Raises ``CardLinkRefused`` for a claim naming
    no live customer."""
    workspace = card_link_workspace(claim=claim)
    CustomerOptOut.objects.bulk_create(
        [CustomerOptOut(workspace=workspace, customer_id=claim.customer_id)],
        ignore_conflicts=True,
    )
    logger.info(
        "card prompts: customer %s of workspace %s unsubscribed", claim.customer_id, workspace.pk
    )


def customer_opted_out(*, workspace_id: int, customer_id: str) -> bool:
    return CustomerOptOut.objects.filter(
        workspace_id=workspace_id, customer_id=customer_id
    ).exists()
