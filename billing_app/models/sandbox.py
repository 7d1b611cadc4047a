"""State of the sandbox billing simulation that is not itself a billing object.

The sandbox's billing objects live in the mirror (``models.mirror``): the
simulation writes Stripe-shaped objects there and reads them back. What the
mirror cannot hold is kept here: the answers already given per idempotency key
(so a retried write returns the first result and acts once), and a per-workspace
control row — the "provider down" switch and a frozen clock, like a Stripe test
clock, so the demo and the tests can replay a given day.
"""

from __future__ import annotations

from django.db import models

from .tenancy import Workspace


class SandboxControl(models.Model):
    """One row per sandbox workspace; its row lock also serialises the simulation's writes."""

    workspace = models.OneToOneField(
        Workspace, on_delete=models.CASCADE, related_name="sandbox_control"
    )
    # When set, every sandbox call raises ProviderUnavailable (the panel shows mirrored data).
    down = models.BooleanField(default=False)
    down_reason = models.CharField(max_length=200, blank=True)
    # Frozen simulation time; empty = real time.
    clock = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"sandbox of {self.workspace_id} ({'down' if self.down else 'up'})"


class SandboxIdempotency(models.Model):
    """The first result of a sandbox write, kept under its idempotency key."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=255)
    operation = models.CharField(max_length=64)
    # Hash of the request's parameters: the same key with other parameters is refused.
    request_hash = models.CharField(max_length=64)
    result = models.JSONField(default=dict)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["workspace", "key"], name="uniq_sandbox_idempotency")
        ]

    def __str__(self) -> str:
        return f"{self.operation} {self.key}"
