"""Celery task processing a stored Stripe event. Ids in, one service call out.

The stored ``StripeEvent`` is the truth and this task only its doorbell (it drains the
events waiting behind it in batches, ``services.webhooks.stripe_events_drain``): one attempt,
no Celery retry. An event that fails (Stripe unavailable while its object was
re-read, or anything else) is left ``failed`` by the service and re-driven by
``outbox_redrive_task`` every minute after a backoff (``stripe_event_retry_delay``),
up to ``REQUEUE_MAX_ATTEMPTS`` — one scheduler that survives a broker restart, and no
countdown message outliving the broker's ``visibility_timeout``.
"""

from __future__ import annotations

import logging

from celery import shared_task

from ..errors import ProviderUnavailable
from ..services.webhooks import stripe_events_drain, stripe_events_requeue

logger = logging.getLogger(__name__)


# Named as Celery named it before (module + function): services enqueue it by this name.
@shared_task(
    name="billing_app.tasks.webhooks.stripe_event_process_task", acks_late=True, ignore_result=True
)
def stripe_event_process_task(event_pk: int) -> None:
    """Process the event and the ones of its workspace waiting behind it, in batches
    (``stripe_events_drain``): a burst is drained a batch per commit, and the doorbells of
    events already drained cost one ``SELECT``. Failures are recorded on their events."""
    try:
        stripe_events_drain(event_pk=event_pk)
    except ProviderUnavailable:  # recorded on the event; the re-drive tries again
        logger.info("stripe event %s: Stripe unavailable, re-driven later", event_pk)


@shared_task(ignore_result=True)
def stripe_events_requeue_task() -> int:
    """Kept for schedules that still name it; ``outbox_redrive_task`` runs the same every minute."""
    return stripe_events_requeue()
