"""Celery tasks of the outbox. Ids in, one service call out.

``outbox_deliver_task`` is the doorbell rung after the change commits; it makes one
attempt and never retries through Celery: the row's ``next_attempt_at`` schedules the
next one and ``outbox_redrive_task`` (beat, every minute) makes it, so a retry survives
a broker restart and no countdown message outlives the broker's ``visibility_timeout``.
Both are safe to run twice or concurrently: a row is claimed before it is delivered.
"""

from __future__ import annotations

from celery import shared_task

from ..services.outbox import LEASE, outbox_message_deliver, outbox_redrive

# Stop a stuck delivery well inside its lease, so its row is never delivered by two workers.
DELIVER_SOFT_LIMIT = int(LEASE.total_seconds() * 0.8)


@shared_task(
    acks_late=True,
    ignore_result=True,
    soft_time_limit=DELIVER_SOFT_LIMIT,
    time_limit=int(LEASE.total_seconds()),
)
def outbox_deliver_task(message_id: str) -> str:
    return outbox_message_deliver(message_id=message_id, first=True)


@shared_task(
    acks_late=True,
    ignore_result=True,
    soft_time_limit=DELIVER_SOFT_LIMIT,
    time_limit=int(LEASE.total_seconds()),
)
def outbox_redrive_task() -> int:
    """Beat, every minute: everything pending and due, and the Stripe events left behind."""
    result = outbox_redrive()
    return result.delivered
