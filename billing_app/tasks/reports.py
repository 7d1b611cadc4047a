"""Ticket sync (every 15 minutes) and the monthly report (the 1st, 06:00 UTC).

Ids in, one service call out; each task is idempotent (tickets are upserted and
one sync per installation runs at a time; a report is stored and emailed once
per workspace and month), so Celery may retry or run them twice safely.
"""

from __future__ import annotations

import logging
from typing import Any

from celery import shared_task

from helpdesk_connectors.base import HelpdeskApiError
from helpdesk_connectors.models import Installation

from ..models import Workspace
from ..selectors.months import Month
from ..services.reports import monthly_report_deliver
from ..services.tickets import installations_for_ticket_sync, tickets_sync_installation

logger = logging.getLogger(__name__)


@shared_task(name="billing_app.tasks.reports.tickets_sync_all_task", ignore_result=True)
def tickets_sync_all_task() -> int:
    """Fan out one sync task per active installation; returns how many were queued."""
    installations = installations_for_ticket_sync()
    for installation in installations:
        tickets_sync_installation_task.delay(installation.pk)
    return len(installations)


@shared_task(
    bind=True,
    name="billing_app.tasks.reports.tickets_sync_installation_task",
    ignore_result=True,
    max_retries=5,
)
def tickets_sync_installation_task(self: Any, installation_id: int) -> int:
    installation = Installation.objects.filter(pk=installation_id, is_active=True).first()
    if installation is None:
        return 0
    try:
        return tickets_sync_installation(installation=installation).tickets
    except HelpdeskApiError as exc:
        if exc.retryable:
            # Capped below the broker's visibility_timeout (settings): a longer countdown would
            # be handed to a second worker while it waits.
            raise self.retry(exc=exc, countdown=min(exc.retry_after or 60, 600)) from exc
        logger.warning("ticket sync of installation %s failed: %s", installation_id, exc.code)
        return 0


@shared_task(name="billing_app.tasks.reports.monthly_reports_task", ignore_result=True)
def monthly_reports_task(month: str | None = None) -> int:
    """For every active workspace, the report of ``month`` (default: the month that just ended)."""
    period = Month.parse(month) if month else Month.current().shift(-1)
    ids = list(Workspace.objects.filter(is_active=True).values_list("pk", flat=True))
    for workspace_id in ids:
        monthly_report_task.delay(workspace_id, period.key)
    return len(ids)


@shared_task(
    bind=True,
    name="billing_app.tasks.reports.monthly_report_task",
    ignore_result=True,
    max_retries=5,
    default_retry_delay=300,
)
def monthly_report_task(self: Any, workspace_id: int, month: str) -> int | None:
    workspace = Workspace.objects.filter(pk=workspace_id, is_active=True).first()
    if workspace is None:
        return None
    try:
        return monthly_report_deliver(workspace=workspace, month=Month.parse(month)).pk
    except OSError as exc:  # SMTP unreachable: the report is stored; the email is retried
        raise self.retry(exc=exc) from exc
