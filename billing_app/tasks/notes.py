"""Celery tasks posting notes back to the ticket. Ids in, one service call out.

Retry only what is retryable (timeouts, 429, 5xx), with exponential backoff that
honours ``Retry-After``; after the last attempt the note is marked failed — the
billing action it describes stays exactly as it is.
"""

from __future__ import annotations

import logging

from celery import shared_task

from helpdesk_connectors.base import HelpdeskApiError

from ..services.notes import (
    NOTE_MAX_RETRIES,
    action_note_mark_failed,
    action_note_post,
    approval_note_post,
    note_retry_countdown,
)

logger = logging.getLogger(__name__)


@shared_task(bind=True, max_retries=NOTE_MAX_RETRIES, acks_late=True, ignore_result=True)
def action_note_post_task(self, action_id: str) -> None:  # type: ignore[no-untyped-def]
    try:
        action_note_post(action_id=action_id)
    except HelpdeskApiError as exc:
        if exc.retryable and self.request.retries < self.max_retries:
            raise self.retry(
                exc=exc,
                countdown=note_retry_countdown(
                    retries=self.request.retries, retry_after=exc.retry_after
                ),
            ) from exc
        action_note_mark_failed(action_id=action_id, error=exc)


@shared_task(bind=True, max_retries=NOTE_MAX_RETRIES, acks_late=True, ignore_result=True)
def approval_note_post_task(self, approval_id: int) -> None:  # type: ignore[no-untyped-def]
    try:
        approval_note_post(approval_id=approval_id)
    except HelpdeskApiError as exc:
        if exc.retryable and self.request.retries < self.max_retries:
            raise self.retry(
                exc=exc,
                countdown=note_retry_countdown(
                    retries=self.request.retries, retry_after=exc.retry_after
                ),
            ) from exc
        logger.warning("approval note failed approval=%s code=%s", approval_id, exc.code)
