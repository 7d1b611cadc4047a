"""The whole dashboard for one month, computed in one analytics transaction."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from ...clock import billing_now
from ...models import Workspace
from ..months import Month
from .actions import action_metrics
from .failures import payment_failure_metrics
from .features import self_service_features
from .health import health_metrics
from .recommendations import recommendations_derive
from .refunds import refund_metrics
from .self_service import self_service_metrics
from .shared import MonthRollups, currency_rates
from .tickets import category_metrics, ticket_groups, ticket_metrics

# A billing clock further than this from real time is a simulated one (the sandbox frozen
# by ``seed_demo --as-of``): its month is the one the workspace's data is about.
SIMULATED_CLOCK_AFTER = timedelta(days=1)


def dashboard_default_month(workspace: Workspace) -> Month:
    """The month the dashboard opens on: the billing clock's (``billing_app.clock``), so a
    demo seeded ``--as-of 2026-01-15`` opens on January 2026, not on the wall clock's month."""
    return Month.of(billing_now(workspace))


def report_default_month(workspace: Workspace) -> Month:
    """The month the monthly report opens on: the last complete month by the billing clock;
    on a simulated billing clock (the demo's ``--as-of``), that clock's month, like the
    dashboard — the month the demo's records end in."""
    now = billing_now(workspace)
    if abs(now - timezone.now()) > SIMULATED_CLOCK_AFTER:
        return Month.of(now)
    return Month.of(now).shift(-1)


class _Session(threading.local):
    active = False


_session = _Session()


@contextmanager
def analytics_session() -> Iterator[None]:
    """One transaction for the month's queries, with two PostgreSQL planner settings.

    Measured with ``bench/dashboard.py`` at 1M tickets: the per-ticket subqueries give
    these aggregates high cost estimates, so PostgreSQL JIT-compiled them (~0.8 s per
    query, longer than running them), and it read the month's tickets through the
    category index in category order (random heap reads, 0.4 s) instead of a bitmap
    scan and a sort (0.27 s). ``set_config(..., true)`` keeps both to this transaction.
    """
    if _session.active:  # the report runs the dashboard inside its own session
        yield
        return
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT set_config('jit', 'off', true),"
                    " set_config('enable_incremental_sort', 'off', true)"
                )
        _session.active = True
        try:
            yield
        finally:
            _session.active = False


def dashboard_build(*, workspace: Workspace, month: Month) -> dict[str, Any]:
    """Every figure of the brief's BILLING SUPPORT DASHBOARD for ``month``."""
    with analytics_session():
        return _dashboard_build(workspace=workspace, month=month)


def _dashboard_build(*, workspace: Workspace, month: Month) -> dict[str, Any]:
    rates = currency_rates(workspace)
    rollups = MonthRollups.read(workspace, month)
    groups = ticket_groups(rollups=rollups)
    tickets = ticket_metrics(groups=groups)
    figures: dict[str, Any] = {
        "workspace": {
            "slug": workspace.slug,
            "name": workspace.name,
            "base_currency": workspace.base_currency,
            # the self-service features' state, for the recommendations
            "features": self_service_features(workspace=workspace, month=month),
        },
        "month": month.key,
        "month_label": month.label,
        "period": {"start": month.start.isoformat(), "end": month.end.isoformat()},
        "generated_at": timezone.now().isoformat(),
        "tickets": tickets,
        "categories": category_metrics(groups=groups, billing_total=tickets["billing"]),
        "actions": action_metrics(workspace=workspace, rollups=rollups),
        "refunds": refund_metrics(workspace=workspace, rollups=rollups),
        "payment_failures": payment_failure_metrics(workspace=workspace, month=month, rates=rates),
        "health": health_metrics(workspace=workspace, month=month, rollups=rollups),
    }
    figures["self_service"] = self_service_metrics(
        workspace=workspace, month=month, actions=figures["actions"]
    )
    figures["recommendations"] = recommendations_derive(figures)
    return figures
