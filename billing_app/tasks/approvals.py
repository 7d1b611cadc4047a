"""Periodic expiry of approval requests (scheduled every 5 minutes by ``CELERY_BEAT_SCHEDULE``)."""

from __future__ import annotations

from celery import shared_task

from ..services.approvals import approvals_expire


@shared_task(name="billing_app.tasks.approvals.approvals_expire_task", ignore_result=True)
def approvals_expire_task() -> int:
    """Idempotent: an approval already decided or expired is left alone, so overlaps are safe."""
    return approvals_expire()
