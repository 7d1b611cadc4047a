"""Card-update prompts (issue 18, docs/self-service.md section 1).

The package, one module per step:

* ``links`` — the signed, expiring customer links: the card-update page
  (``card_update_url``, also used by the billing help widget) and the unsubscribe.
"""

from __future__ import annotations

from .links import (
    CardLinkClaim,
    card_unsubscribe_url,
    card_update_token_read,
    card_update_url,
    unsubscribe_token_read,
)

__all__ = [
    "CardLinkClaim",
    "card_unsubscribe_url",
    "card_update_token_read",
    "card_update_url",
    "unsubscribe_token_read",
]
