"""Finishing actions left ``executing``: the worker died, or lost the database, mid-action.

An action is ``executing`` only while one caller runs its provider call and records
the result. If that caller disappears — the process was killed, or the database
refused the audit write after the provider had acted — the row stays
``executing``: nothing was recorded as done, and nothing may be done twice.

``actions_stale_reconcile`` (a periodic task) takes over every action that has
been ``executing`` longer than ``BILLING_DESK_ACTION_STALE_SECONDS`` — with the
same conditional claim ``actions.action_await`` uses, so one taker wins — and
executes it again. The provider call carries the same provider idempotency key
(derived from the action id), so a provider that already acted returns its first
result (Stripe replays the key; a refund whose answer was lost is also found by
the action id in its metadata) and the action is recorded ``succeeded``; one that
never acted acts now, once.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone

from ..models import BillingAction

logger = logging.getLogger(__name__)


def actions_stale_reconcile(*, now: datetime | None = None, limit: int = 100) -> int:
    """Take over and finish stale ``executing`` actions; returns how many were taken over."""
    from .actions import action_execute

    now = now or timezone.now()
    stale = now - timedelta(
        seconds=int(getattr(settings, "BILLING_DESK_ACTION_STALE_SECONDS", 300))
    )
    candidates = list(
        BillingAction.objects.filter(
            status=BillingAction.Status.EXECUTING, started_at__lt=stale
        ).values_list("pk", "started_at")[:limit]
    )
    taken = 0
    for action_id, started_at in candidates:
        claimed = BillingAction.objects.filter(
            pk=action_id, status=BillingAction.Status.EXECUTING, started_at=started_at
        ).update(started_at=timezone.now())
        if not claimed:  # another taker (or the original caller) got there first
            continue
        taken += 1
        logger.warning("reconciling stale executing action %s", action_id)
        try:
            action_execute(action_id=action_id)
        except Exception:  # one bad action must not stop the others; it stays executing
            logger.exception("reconciling action %s failed", action_id)
    return taken
