"""Former note tasks, kept so messages queued before the outbox existed are not lost.

Notes are outbox messages now (``services.outbox``, ``tasks.outbox``): these tasks
only deliver the outbox rows of their action or approval that are due, exactly as
the re-drive would, and never post by themselves.
"""

from __future__ import annotations

from celery import shared_task

from ..models import OutboxMessage
from ..services.outbox import outbox_message_deliver


def _deliver_open(kind: str, target_id: str) -> None:
    for message_id in OutboxMessage.objects.filter(
        kind=kind,
        target_id=target_id,
        status__in=[OutboxMessage.Status.PENDING, OutboxMessage.Status.SENDING],
    ).values_list("pk", flat=True):
        outbox_message_deliver(message_id=message_id)


@shared_task(acks_late=True, ignore_result=True)
def action_note_post_task(action_id: str) -> None:
    _deliver_open(OutboxMessage.Kind.ACTION_NOTE, str(action_id))


@shared_task(acks_late=True, ignore_result=True)
def approval_note_post_task(approval_id: int) -> None:
    _deliver_open(OutboxMessage.Kind.APPROVAL_NOTE, str(approval_id))
