"""Celery task of the self-service refund requests: the re-drive (beat). One service call.

Safe to run twice or concurrently: a request's idempotency key makes its action once, and
recording it on the request is a conditional update (``services.self_service_refunds``).
"""

from __future__ import annotations

from celery import shared_task

from ..services.self_service_refunds.requests import refund_requests_redrive


@shared_task(acks_late=True, ignore_result=True)
def refund_requests_redrive_task() -> int:
    """Beat, every few minutes: requests left received without an action; how many moved."""
    return refund_requests_redrive()
