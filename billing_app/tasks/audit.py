"""The audit chain's daily verification (scheduled by ``CELERY_BEAT_SCHEDULE``, docs/audit.md).

Ids in, one service call out. Verifying only reads the chain and records the result, so
a run repeated or overlapping another is harmless; the dashboard shows the latest.
"""

from __future__ import annotations

from celery import shared_task

from ..models import Workspace
from ..services.audit_verify import audit_verify, audit_verify_workspaces


@shared_task(name="billing_app.tasks.audit.audit_verify_all_task", ignore_result=True)
def audit_verify_all_task() -> int:
    """Fan out one verification per workspace (inactive too); returns how many were queued."""
    workspace_ids = audit_verify_workspaces()
    for workspace_id in workspace_ids:
        audit_verify_task.delay(workspace_id)
    return len(workspace_ids)


@shared_task(name="billing_app.tasks.audit.audit_verify_task", ignore_result=True)
def audit_verify_task(workspace_id: int) -> bool:
    """Verify one workspace's chain; a broken chain is logged at error level by the service."""
    workspace = Workspace.objects.filter(pk=workspace_id).first()
    if workspace is None:  # deleted since the fan-out
        return True
    return audit_verify(workspace=workspace).ok
