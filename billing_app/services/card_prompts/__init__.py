"""Card-update prompts (issue 18, docs/self-service.md section 1).

The package, one module per step of a prompt's life:

* ``scan`` — the daily scan (beat): the candidates (``selectors.card_prompts``: a card
  expiring within the workspace's window, a recent payment failure for a card reason)
  become one ``CardPrompt`` per (customer, card, window), each written with its
  ``card_prompt`` outbox message in one transaction.
* ``send`` — the outbox handler: the email through Django's backend, RFC 8058
  unsubscribe headers, once (at least once after an unknown send).
* ``texts`` — the product's wording, the workspace's ``CardPromptTemplate`` (validated
  like the playbook's), the filling.
* ``links`` — the signed, expiring customer links: the card-update page
  (``card_update_url``, also used by the billing help widget), its thank-you page (a
  token of its own) and the unsubscribe.
* ``portal`` — from a valid link to a fresh hosted card-update session at the provider
  (the agents' ``payment_method_update_link``), rate-limited.
* ``optout`` — the customer's unsubscribe.
* ``outcomes`` — webhook hooks: card updated after the prompt, then the next renewal paid.
"""

from __future__ import annotations

from . import outcomes, send  # noqa: F401  (register the webhook hooks and the outbox kind)
from .links import (
    CardLinkClaim,
    card_unsubscribe_url,
    card_update_done_token_read,
    card_update_token_read,
    card_update_url,
    unsubscribe_token_read,
)
from .outcomes import card_prompt_renewal_record, card_prompts_card_changed
from .scan import ScanResult, card_prompts_scan, card_prompts_scan_all
from .send import card_prompt_send
from .texts import PLACEHOLDERS, card_prompt_template_validate

__all__ = [
    "PLACEHOLDERS",
    "CardLinkClaim",
    "ScanResult",
    "card_prompt_renewal_record",
    "card_prompt_send",
    "card_prompt_template_validate",
    "card_prompts_card_changed",
    "card_prompts_scan",
    "card_prompts_scan_all",
    "card_unsubscribe_url",
    "card_update_done_token_read",
    "card_update_token_read",
    "card_update_url",
    "unsubscribe_token_read",
]
