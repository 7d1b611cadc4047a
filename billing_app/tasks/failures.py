"""Former payment-failure tasks, kept so messages queued before the outbox are not lost.

The suspension warning / CSM outreach and the fetch of an invoice's failed charge
are outbox messages now (``services.outbox``: written in the transaction that
recorded the failure or processed the event, delivered by ``tasks.outbox``). These
tasks only deliver the matching outbox rows that are due, as the re-drive would.
"""

from __future__ import annotations

from celery import shared_task

from ..models import OutboxMessage
from ..services.outbox import outbox_message_deliver


def _deliver_open(**lookup: str) -> None:
    for message_id in OutboxMessage.objects.filter(
        status__in=[OutboxMessage.Status.PENDING, OutboxMessage.Status.SENDING], **lookup
    ).values_list("pk", flat=True):
        outbox_message_deliver(message_id=message_id)


@shared_task(acks_late=True, ignore_result=True)
def payment_failure_escalate_task(failure_id: int) -> None:
    _deliver_open(kind=OutboxMessage.Kind.FAILURE_ESCALATION, target_id=str(failure_id))


@shared_task(acks_late=True, ignore_result=True)
def payment_failure_invoice_resolve_task(
    workspace_id: int, invoice_id: str, attempt_count: int, created: int, event_id: str
) -> None:
    _deliver_open(
        dedupe_key=f"invoice_resolve:{workspace_id}:{invoice_id}:{event_id}",
    )
