"""The audit chain's daily verification (issue 17): a beat entry, a fan-out task per active
workspace, the result recorded for the dashboard, a broken chain logged at error level."""

from __future__ import annotations

import logging

from celery.schedules import crontab
from django.conf import settings

from billing_app.models import AuditEntry, AuditVerification, Workspace
from billing_app.services.audit import Event, audit_append
from billing_app.tasks.audit import audit_verify_all_task, audit_verify_task


def _append(workspace, n: int) -> None:
    audit_append(
        workspace_id=workspace.pk,
        events=[Event("test.append", "test", str(k), {"k": k}) for k in range(n)],
    )


def test_the_beat_schedule_verifies_daily():
    entry = settings.CELERY_BEAT_SCHEDULE["audit-verify"]
    assert entry["task"] == audit_verify_all_task.name
    assert isinstance(entry["schedule"], crontab)
    assert entry["schedule"].hour == {3} and entry["schedule"].minute == {30}


def test_the_daily_run_verifies_every_workspace_inactive_too_and_logs_a_broken_one(
    make_workspace, caplog
):
    # given two active workspaces (one tampered with) and an inactive one
    acme, globex, dormant = (make_workspace(s) for s in ("acme", "globex", "dormant"))
    for workspace in (acme, globex, dormant):
        _append(workspace, 3)
    Workspace.objects.filter(pk=dormant.pk).update(is_active=False)
    AuditEntry.objects.filter(workspace=globex, seq=2).update(hash="0" * 64)

    # when the beat task runs (eager in tests: each workspace's task runs in turn)
    with caplog.at_level(logging.ERROR, logger="billing_app.services.audit_verify"):
        queued = audit_verify_all_task.apply().get()

    # then all three are verified and recorded (an inactive workspace's history still counts)
    assert queued == 3
    recorded = {v.workspace.slug: v for v in AuditVerification.objects.select_related("workspace")}
    assert set(recorded) == {"acme", "globex", "dormant"}
    assert recorded["dormant"].ok
    assert recorded["acme"].ok and recorded["acme"].head_seq == 3
    assert not recorded["globex"].ok and recorded["globex"].first_bad == "entry 2"
    # and the broken chain is logged at error level, naming the workspace and the row
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1
    assert "globex" in errors[0].getMessage() and "entry 2" in errors[0].getMessage()


def test_a_run_for_a_workspace_deleted_since_the_fan_out_does_nothing(db):
    assert audit_verify_task.apply(args=[987654]).get() is True
    assert not AuditVerification.objects.exists()


def test_running_twice_is_harmless(workspace):
    _append(workspace, 2)
    assert audit_verify_task.apply(args=[workspace.pk]).get() is True
    assert audit_verify_task.apply(args=[workspace.pk]).get() is True
    assert AuditVerification.objects.filter(workspace=workspace, ok=True).count() == 2
