"""Celery tasks, one module per area. Tasks are interfaces: ids in, one service call out.

Each area's module is imported here so that Celery's autodiscovery of
``billing_app.tasks`` registers every task.
"""

from . import (  # noqa: F401
    approvals,
    audit,
    card_prompts,
    failures,
    notes,
    outbox,
    reconcile,
    refresh,
    reports,
    self_service_refunds,
    snapshots,
    webhooks,
)
