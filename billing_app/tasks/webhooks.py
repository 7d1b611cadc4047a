"""Celery task processing a stored Stripe event. Ids in, one service call out.

Only ``ProviderUnavailable`` (Stripe timed out, rate-limited or failed with 5xx
while the event's object was re-read) is retried, with exponential backoff; any
other failure leaves the event ``failed`` with its error for an operator, and a
redelivery from Stripe enqueues it again.
"""

from __future__ import annotations

from celery import shared_task

from ..errors import ProviderUnavailable
from ..services.webhooks import stripe_event_process, stripe_events_requeue

STRIPE_EVENT_MAX_RETRIES = 5


def stripe_event_retry_countdown(*, retries: int) -> int:
    return min(30 * 2**retries, 1800)


@shared_task(bind=True, max_retries=STRIPE_EVENT_MAX_RETRIES, acks_late=True, ignore_result=True)
def stripe_event_process_task(self, event_pk: int) -> None:  # type: ignore[no-untyped-def]
    try:
        stripe_event_process(event_pk=event_pk)
    except ProviderUnavailable as exc:
        if self.request.retries < self.max_retries:
            raise self.retry(
                exc=exc, countdown=stripe_event_retry_countdown(retries=self.request.retries)
            ) from exc
        raise


@shared_task(ignore_result=True)
def stripe_events_requeue_task() -> int:
    """Periodic (Celery beat, e.g. every 10 minutes): events whose processing was lost."""
    return stripe_events_requeue()
