"""Periodic reconciliation of actions left ``executing`` (see ``services.reconcile``)."""

from __future__ import annotations

from celery import shared_task


@shared_task(ignore_result=True)
def actions_reconcile_task() -> int:
    from ..services.reconcile import actions_stale_reconcile

    return actions_stale_reconcile()
