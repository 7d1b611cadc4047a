"""The permission matrix as data, editable in admin (DESIGN.md section 3)."""

from __future__ import annotations

from django.db import models

from ..catalog import PolicyAction
from .tenancy import AGENT_ROLE_CHOICES, Workspace

POLICY_ACTION_CHOICES = [
    (action.value, action.value.replace("_", " ").capitalize()) for action in PolicyAction
]


class ActionPolicy(models.Model):
    """What one role may do with one action in one workspace.

    ``workspace`` null marks the product default, seeded by a data migration and
    copied into each new workspace.
    """

    class Effect(models.TextChoices):
        ALLOW = "allow", "Executes directly (up to the limit)"
        REQUEST = "request", "May request approval"
        DENY = "deny", "Not permitted"

    class AboveLimit(models.TextChoices):
        REQUEST = "request", "May request approval"
        DENY = "deny", "Not permitted"

    workspace = models.ForeignKey(
        Workspace, null=True, blank=True, on_delete=models.CASCADE, related_name="action_policies"
    )
    action = models.CharField(max_length=32, choices=POLICY_ACTION_CHOICES)
    role = models.CharField(max_length=16, choices=AGENT_ROLE_CHOICES)
    effect = models.CharField(max_length=16, choices=Effect.choices)
    # For ALLOW: the largest value executed directly (minor units of the base
    # currency, percent or days, per the action's measure); null = no limit.
    limit = models.BigIntegerField(null=True, blank=True)
    # Whether a value equal to ``limit`` is still within it.
    limit_inclusive = models.BooleanField(default=True)
    above_limit = models.CharField(
        max_length=16, choices=AboveLimit.choices, default=AboveLimit.REQUEST
    )
    # Cancellation by a Billing Specialist executes directly only when the customer asked.
    customer_requested_only = models.BooleanField(default=False)

    class Meta:
        ordering = ["workspace", "action", "role"]
        verbose_name = "permission matrix cell"
        constraints = [
            models.UniqueConstraint(
                fields=["workspace", "action", "role"], name="uniq_policy_cell"
            ),
            models.UniqueConstraint(
                fields=["action", "role"],
                condition=models.Q(workspace__isnull=True),
                name="uniq_default_policy_cell",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.action} · {self.role} · {self.effect}"


class ApprovalRoute(models.Model):
    """Who approves a request for an action, by the size of what is asked.

    The route with the highest ``threshold`` that the value passes applies
    (``threshold_inclusive`` says whether equal passes). ``approver_roles`` is a
    list of role values.
    """

    workspace = models.ForeignKey(
        Workspace, null=True, blank=True, on_delete=models.CASCADE, related_name="approval_routes"
    )
    action = models.CharField(max_length=32, choices=POLICY_ACTION_CHOICES)
    threshold = models.BigIntegerField(default=0)
    threshold_inclusive = models.BooleanField(default=True)
    approver_roles = models.JSONField(default=list)

    class Meta:
        ordering = ["workspace", "action", "threshold"]
        constraints = [
            models.UniqueConstraint(fields=["workspace", "action", "threshold"], name="uniq_route"),
            models.UniqueConstraint(
                fields=["action", "threshold"],
                condition=models.Q(workspace__isnull=True),
                name="uniq_default_route",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.action} ≥ {self.threshold} → {', '.join(self.approver_roles)}"
