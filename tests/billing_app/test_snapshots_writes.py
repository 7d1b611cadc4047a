"""Writes that change a context without touching the customer's mirror still mark its
snapshot stale (issue 15 review): a failure recovered by a payment event whose mirror write
was superseded, and a workspace saved from an instance loaded before a generation raise."""

from __future__ import annotations

import json

import pytest
from django.utils import timezone

from billing_app.clock import billing_now
from billing_app.models import MirrorInvoice, PaymentFailure, Workspace
from billing_app.services.context_cache import customer_context_invalidate
from billing_app.services.payment_failures import payment_failures_recover
from billing_app.services.snapshots import snapshot_mark_stale, snapshot_read, snapshot_rebuild

from .context_support import seed_brief_day

CUSTOMER = "cus_sbx_northwind"


@pytest.fixture
def seeded(db, settings, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        return seed_brief_day(settings)


def _workspace() -> Workspace:
    failure = PaymentFailure.objects.filter(customer_id=CUSTOMER).first()
    assert failure is not None
    return Workspace.objects.get(pk=failure.workspace_id)


def _alert_types(body: str) -> list[str]:
    return sorted(a["type"] for a in json.loads(body)["alerts"])


def _alerts(body: str) -> str:
    return json.dumps(json.loads(body)["alerts"], sort_keys=True)


def test_a_recovery_without_a_mirror_write_marks_the_snapshot_stale(
    seeded, django_capture_on_commit_callbacks
):
    workspace = _workspace()
    now = billing_now(workspace)
    # A refresh mirrored the failed invoice as paid; its own write rebuilt the snapshot.
    with django_capture_on_commit_callbacks(execute=True):
        MirrorInvoice.objects.filter(workspace=workspace, stripe_id="in_sbx_northwind_07").update(
            status="paid", paid_at=now
        )
        customer_context_invalidate(workspace_id=workspace.pk, customer_id=CUSTOMER)
    snapshot_rebuild(workspace_id=workspace.pk, customer_id=CUSTOMER)
    before = snapshot_read(workspace=workspace, customer_id=CUSTOMER)
    assert before.current(now=now, real_now=timezone.now())
    assert "payment_failed" in _alert_types(before.body)

    # Then the paid event, older than the mirror (it writes nothing): its hook recovers.
    invoice = MirrorInvoice.objects.get(workspace=workspace, stripe_id="in_sbx_northwind_07")
    with django_capture_on_commit_callbacks(execute=False):
        recovered = payment_failures_recover(workspace=workspace, invoice=invoice)
    assert recovered

    after = snapshot_read(workspace=workspace, customer_id=CUSTOMER)
    assert after.wanted_version > after.built_version
    assert not after.current(now=now, real_now=timezone.now())
    snapshot_rebuild(workspace_id=workspace.pk, customer_id=CUSTOMER)
    fresh = snapshot_read(workspace=workspace, customer_id=CUSTOMER)
    assert _alerts(fresh.body) != _alerts(before.body)  # the failure's alert moved on


def test_a_full_save_never_writes_an_old_generation_back(seeded):
    workspace_id = _workspace().pk
    loaded = Workspace.objects.get(pk=workspace_id)  # e.g. an admin form's instance
    snapshot_mark_stale(workspace_id=workspace_id)  # a catalog change meanwhile
    snapshot_rebuild(workspace_id=workspace_id, customer_id=CUSTOMER)  # under the new generation
    loaded.refund_pattern_days = 7  # the settings change, saved from the old instance
    loaded.save()

    workspace = Workspace.objects.get(pk=workspace_id)
    assert workspace.refund_pattern_days == 7
    after = snapshot_read(workspace=workspace, customer_id=CUSTOMER)
    assert workspace.context_generation > after.workspace_generation
    assert not after.current(now=billing_now(workspace), real_now=timezone.now())


def test_a_full_save_never_writes_an_old_role_mapping_version_back(seeded):
    workspace_id = _workspace().pk
    loaded = Workspace.objects.get(pk=workspace_id)
    Workspace.objects.filter(pk=workspace_id).update(
        role_mapping_version=loaded.role_mapping_version + 1
    )
    loaded.name = "Renamed"
    loaded.save()
    stored = Workspace.objects.get(pk=workspace_id)
    assert stored.name == "Renamed"
    assert stored.role_mapping_version == loaded.role_mapping_version + 1
