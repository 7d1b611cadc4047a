"""Producing, storing and emailing the monthly billing support report.

Idempotent per workspace and month: the report row is created once (unique
constraint, ``get_or_create``), and the email is claimed with a conditional
UPDATE (``emailed_at IS NULL``) before it is sent, so two workers running the
same task send it once. If sending fails the claim is released, and the Celery
task's retry sends it later.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from django.conf import settings
from django.core.mail import EmailMessage
from django.db import transaction
from django.utils import timezone

from ..models import MonthlyReport, Workspace
from ..selectors.months import Month
from ..selectors.report import report_build, report_csv, report_text

logger = logging.getLogger(__name__)


@transaction.atomic
def monthly_report_generate(
    *, workspace: Workspace, month: Month, regenerate: bool = False
) -> MonthlyReport:
    """The stored report of ``month`` (computed now if there is none, or if ``regenerate``)."""
    report, created = MonthlyReport.objects.get_or_create(
        workspace=workspace,
        month=month.first_day,
        defaults={"body": report_build(workspace=workspace, month=month)},
    )
    if not created and regenerate:
        report.body = report_build(workspace=workspace, month=month)
        report.generated_at = timezone.now()
        report.save(update_fields=["body", "generated_at"])
    return report


def monthly_report_email(*, report: MonthlyReport, recipients: Sequence[str]) -> bool:
    """Email the stored report once; returns False when it was already sent (or nobody to send to)."""
    if not recipients:
        logger.info("monthly report %s: no recipients configured, stored only", report.pk)
        return False
    claimed = MonthlyReport.objects.filter(pk=report.pk, emailed_at__isnull=True).update(
        emailed_at=timezone.now(), emailed_to=list(recipients)
    )
    if not claimed:
        return False
    body = report.body
    message = EmailMessage(
        subject=f"Billing support monthly report — {body['workspace']['name']} — {body['month_label']}",
        body=report_text(body),
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=list(recipients),
    )
    message.attach(
        f"billing-report-{body['workspace']['slug']}-{body['month']}.csv",
        report_csv(body),
        "text/csv",
    )
    try:
        message.send(fail_silently=False)
    except Exception:
        MonthlyReport.objects.filter(pk=report.pk).update(emailed_at=None, emailed_to=[])
        raise
    report.refresh_from_db(fields=["emailed_at", "emailed_to"])
    return True


def monthly_report_deliver(*, workspace: Workspace, month: Month) -> MonthlyReport:
    """Generate (once) and email (once) the report of ``month`` to the configured recipients."""
    report = monthly_report_generate(workspace=workspace, month=month)
    monthly_report_email(report=report, recipients=settings.MONTHLY_REPORT_RECIPIENTS)
    return report
