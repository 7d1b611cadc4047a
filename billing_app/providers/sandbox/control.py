"""The sandbox's control row: its "provider down" switch and its clock.

Tests and the demo flip ``down`` to see how Billing Desk behaves when the billing
provider does not answer (the panel keeps showing mirrored data with a banner,
actions fail cleanly). ``clock`` freezes the simulation's time, like a Stripe test
clock, so ``seed_demo --as-of 2026-01-15`` replays the brief's own day.
"""

from __future__ import annotations

from datetime import datetime

from django.db import IntegrityError, transaction
from django.utils import timezone

from ...models import SandboxControl, Workspace
from ..health import provider_health_record

_UNSET = object()


def sandbox_control_get(*, workspace: Workspace) -> SandboxControl:
    control = SandboxControl.objects.filter(workspace=workspace).first()
    if control is not None:
        return control
    try:
        with transaction.atomic():
            return SandboxControl.objects.create(workspace=workspace)
    except IntegrityError:  # created concurrently
        return SandboxControl.objects.get(workspace=workspace)


def sandbox_now(*, workspace: Workspace) -> datetime:
    """The simulation's current time: the frozen clock, else the real time."""
    clock = (
        SandboxControl.objects.filter(workspace=workspace).values_list("clock", flat=True).first()
    )
    return clock or timezone.now()


@transaction.atomic
def sandbox_control_set(
    *,
    workspace: Workspace,
    down: bool | None = None,
    reason: str = "",
    clock: datetime | object | None = _UNSET,
) -> SandboxControl:
    """Switch the sandbox down/up and/or set (or clear, with ``None``) its clock.

    Switching also records the provider's health for the panel's banner, the same
    way a failing Stripe call does.
    """
    sandbox_control_get(workspace=workspace)
    control = SandboxControl.objects.select_for_update().get(workspace=workspace)
    if down is not None:
        control.down = down
        control.down_reason = reason[:200] if down else ""
    if clock is not _UNSET:
        control.clock = clock  # type: ignore[assignment]
    control.save()
    if down is not None:
        provider_health_record(workspace_id=workspace.pk, available=not down)
    return control
