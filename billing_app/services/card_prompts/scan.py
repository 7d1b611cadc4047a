"""The daily scan: one prompt per (customer, card, window), written with its outbox message.

Exactly once across retries and restarts, by construction:

1. ``CardPrompt``'s unique key (workspace, customer, card, window) is the "once": a scan
   that runs twice, or two scans at the same time (beat and a manual run), find the row
   the first made and add nothing. The candidates' existing keys are read in one query
   (per 500 cards), so a daily rescan that finds nothing new costs a few queries whatever
   the number of customers; only the missing rows are written (``get_or_create`` under
   the constraint, for the scan running concurrently).
2. The row and its ``card_prompt`` outbox message (``dedupe_key card_prompt:<id>``) are
   written in one transaction: a prompt exists exactly when its email is owed.
3. Sending is the outbox's (``send``): claimed by one worker at a time, retried with
   backoff while the mail server is down, never sent again once the prompt is ``sent``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from django.db import transaction

from ...clock import billing_now
from ...models import CardPrompt, OutboxMessage, Workspace
from ...selectors.card_prompts import (
    PromptCandidate,
    card_prompt_candidates,
    card_prompts_existing,
)
from ..outbox import outbox_enqueue

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ScanResult:
    workspace_id: int
    candidates: int
    created: int


@transaction.atomic
def _prompt_create(workspace: Workspace, candidate: PromptCandidate) -> bool:
    prompt, created = CardPrompt.objects.get_or_create(
        workspace=workspace,
        customer_id=candidate.customer_id,
        payment_method_id=candidate.payment_method_id,
        window=candidate.window,
        defaults={"reason": candidate.reason, "subscription_id": candidate.subscription_id},
    )
    if created:
        outbox_enqueue(
            workspace_id=workspace.pk,
            kind=OutboxMessage.Kind.CARD_PROMPT,
            target_id=str(prompt.pk),
            dedupe_key=f"card_prompt:{prompt.pk}",
        )
    return created


def card_prompts_scan(*, workspace: Workspace, now: datetime | None = None) -> ScanResult:
    """Create the prompts due in one workspace (none unless it opted in)."""
    if not (workspace.card_prompts_enabled and workspace.is_active):
        return ScanResult(workspace.pk, 0, 0)
    now = now or billing_now(workspace)
    candidates = card_prompt_candidates(workspace=workspace, now=now)
    existing, recent = card_prompts_existing(workspace=workspace, candidates=candidates, now=now)
    missing = [
        c
        for c in candidates
        if (c.customer_id, c.payment_method_id, c.window) not in existing
        # an "expiring" email waits while the same card had another prompt in the last 7 days
        and not (c.reason == "expiring" and (c.customer_id, c.payment_method_id) in recent)
    ]
    created = sum(_prompt_create(workspace, c) for c in missing)
    logger.info(
        "card prompts scan workspace=%s: %s due, %s new", workspace.pk, len(candidates), created
    )
    return ScanResult(workspace.pk, len(candidates), created)


def card_prompts_scan_all(*, now: datetime | None = None) -> list[ScanResult]:
    """The beat's daily run: every active workspace that opted in."""
    results = []
    for workspace in Workspace.objects.filter(is_active=True, card_prompts_enabled=True):
        try:
            results.append(card_prompts_scan(workspace=workspace, now=now))
        except Exception:  # one workspace's bad data must not stop the others' prompts
            logger.exception("card prompts scan failed for workspace %s", workspace.pk)
    return results
