"""Celery tasks of the payment-failure workflow. Ids in, one service call out.

* ``payment_failure_escalate_task`` — the suspension warning note and the CSM
  outreach after the third consecutive failure. Retries only what is retryable
  (helpdesk timeouts, 429, 5xx), with the notes' backoff; after the last try the
  pending steps are marked failed and the failure record stands.
* ``payment_failure_invoice_resolve_task`` — for an ``invoice.payment_failed``
  whose failed charge is not mirrored: fetch it from the provider, then record.
  Retries ``ProviderUnavailable`` only.
"""

from __future__ import annotations

from celery import shared_task

from helpdesk_connectors.base import HelpdeskApiError

from ..errors import ProviderUnavailable
from ..services.notes import NOTE_MAX_RETRIES, note_retry_countdown

RESOLVE_MAX_RETRIES = 5


@shared_task(bind=True, max_retries=NOTE_MAX_RETRIES, acks_late=True, ignore_result=True)
def payment_failure_escalate_task(self, failure_id: int) -> None:  # type: ignore[no-untyped-def]
    from ..services.payment_failures import (
        payment_failure_escalate,
        payment_failure_escalation_give_up,
    )

    try:
        payment_failure_escalate(failure_id=failure_id)
    except HelpdeskApiError as exc:
        if exc.retryable and self.request.retries < self.max_retries:
            raise self.retry(
                exc=exc,
                countdown=note_retry_countdown(
                    retries=self.request.retries, retry_after=exc.retry_after
                ),
            ) from exc
        payment_failure_escalation_give_up(failure_id=failure_id)


@shared_task(bind=True, max_retries=RESOLVE_MAX_RETRIES, acks_late=True, ignore_result=True)
def payment_failure_invoice_resolve_task(  # type: ignore[no-untyped-def]
    self, workspace_id: int, invoice_id: str, attempt_count: int, created: int, event_id: str
) -> None:
    from ..services.payment_failures import payment_failure_invoice_resolve

    try:
        payment_failure_invoice_resolve(
            workspace_id=workspace_id,
            invoice_id=invoice_id,
            attempt_count=attempt_count,
            created=created,
            event_id=event_id,
        )
    except ProviderUnavailable as exc:
        if self.request.retries < self.max_retries:
            raise self.retry(exc=exc, countdown=min(30 * 2**self.request.retries, 1800)) from exc
        raise
