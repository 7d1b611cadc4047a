"""Context snapshots built ahead of the panel's read (``services.snapshots``). Ids in, one call out.

``snapshot_rebuild_task`` is the doorbell a write rings after it commits; it skips a
snapshot that is current already, so a burst of writes about one customer costs one
build per change at most, usually fewer. ``snapshots_redrive_task`` (beat, every
minute) rebuilds what a lost doorbell left pending and what time moved. Both are safe
to run twice or concurrently: a build stores only over an older one.
"""

from __future__ import annotations

from celery import shared_task

from ..services.snapshots import snapshot_rebuild, snapshots_redrive


@shared_task(name="billing_app.snapshot_rebuild", ignore_result=True)
def snapshot_rebuild_task(workspace_id: int, customer_id: str) -> bool:
    return snapshot_rebuild(workspace_id=workspace_id, customer_id=customer_id)


@shared_task(ignore_result=True)
def snapshots_redrive_task() -> int:
    return snapshots_redrive()
