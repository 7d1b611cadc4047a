"""Periodic reconciliation of actions whose outcome is not known yet (see ``services.reconcile``):
``outcome_unknown`` actions are asked about every run, stale ``executing`` ones taken over."""

from __future__ import annotations

from celery import shared_task

from ..services.reconcile import actions_reconcile


@shared_task(ignore_result=True)
def actions_reconcile_task() -> dict[str, int]:
    return actions_reconcile()
