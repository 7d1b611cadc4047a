"""Workspaces (tenants), their installations, currency rates, role mapping and memberships."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models

from helpdesk_connectors.fields import EncryptedTextField
from helpdesk_connectors.models import Installation

from ..catalog import AGENT_ROLES, WORKSPACE_PERMISSIONS, Role

currency_validator = RegexValidator(r"^[A-Z]{3}$", "Use an upper-case ISO 4217 code such as USD.")
slug_validator = RegexValidator(
    r"^[a-z0-9][a-z0-9-]{1,48}[a-z0-9]$", "Lower-case letters, digits and dashes."
)

ROLE_CHOICES = [(role.value, role.label) for role in Role]
AGENT_ROLE_CHOICES = [(role.value, role.label) for role in AGENT_ROLES]


class Workspace(models.Model):
    """One company using Billing Desk: its billing system, policy and role groups."""

    class Provider(models.TextChoices):
        STRIPE = "stripe", "Stripe"
        SANDBOX = "sandbox", "Sandbox (simulated billing)"

    slug = models.SlugField(max_length=50, unique=True, validators=[slug_validator])
    name = models.CharField(max_length=200)
    base_currency = models.CharField(max_length=3, default="USD", validators=[currency_validator])
    # No default (issue 12): a workspace added without choosing one used to fall to the
    # sandbox and "refund" without moving money. The admin and create_workspace must choose.
    provider = models.CharField(max_length=16, choices=Provider.choices)
    stripe_secret_key = EncryptedTextField(blank=True)
    stripe_webhook_secret = EncryptedTextField(blank=True)
    stripe_account_id = models.CharField(max_length=64, blank=True)
    default_role = models.CharField(
        max_length=16, choices=AGENT_ROLE_CHOICES, default=Role.L1.value
    )
    refund_window_days = models.PositiveIntegerField(default=180)
    refund_pattern_count = models.PositiveIntegerField(default=3, validators=[MinValueValidator(1)])
    refund_pattern_days = models.PositiveIntegerField(default=90, validators=[MinValueValidator(1)])
    approval_ttl_hours = models.PositiveIntegerField(default=72, validators=[MinValueValidator(1)])
    duplicate_window_hours = models.PositiveIntegerField(
        default=24, validators=[MinValueValidator(1)]
    )
    payment_monitoring_days = models.PositiveIntegerField(default=30)
    # How long a Freshdesk agent's device credential lasts after enrollment (issue 17).
    device_credential_days = models.PositiveIntegerField(
        default=90, validators=[MinValueValidator(1), MaxValueValidator(365)]
    )
    # Self-service (issue 18, docs/self-service.md). Card-update prompts are opt-in per
    # workspace; a card expiring within ``card_prompt_window_days`` gets one prompt.
    card_prompts_enabled = models.BooleanField(default=False)
    card_prompt_window_days = models.PositiveIntegerField(
        default=30, validators=[MinValueValidator(1), MaxValueValidator(120)]
    )
    # A customer's own refund request executes without an agent up to this amount (minor
    # units of the base currency, inclusive); 0 (the default) sends every request to agents.
    self_service_refund_limit = models.PositiveBigIntegerField(default=0)
    # How long a self-service refund link stays valid after it is sent.
    self_service_link_days = models.PositiveIntegerField(
        default=7, validators=[MinValueValidator(1), MaxValueValidator(30)]
    )
    # Helpdesk group that receives CSM outreach after repeated payment failures.
    csm_group = models.CharField(max_length=200, blank=True)
    # Bumped when role mapping rules change, invalidating app session tokens.
    role_mapping_version = models.PositiveIntegerField(default=1)
    # Raised by changes that move every customer's context (settings, catalog, people's
    # names): a snapshot built under another generation is rebuilt (models.snapshots).
    context_generation = models.PositiveIntegerField(default=1)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        permissions = list(WORKSPACE_PERMISSIONS)

    def __str__(self) -> str:
        return self.name

    # Counters only ever raised with F() + 1 behind any loaded instance's back (role
    # mapping changes, context snapshots). A full save() of an instance loaded earlier —
    # an admin form, a shell — must not write its old value back: that would make tokens
    # minted before a mapping change valid again, or snapshots built under an older
    # generation current again.
    COUNTERS = ("role_mapping_version", "context_generation")

    def save(self, *args: Any, **kwargs: Any) -> None:
        if (
            not self._state.adding
            and self.pk is not None
            and kwargs.get("update_fields") is None
            and not kwargs.get("force_insert")
        ):
            kwargs["update_fields"] = [
                f.name
                for f in self._meta.concrete_fields
                if not f.primary_key and f.name not in self.COUNTERS
            ]
        super().save(*args, **kwargs)


class WorkspaceInstallation(models.Model):
    """Links a helpdesk installation to the one workspace it belongs to."""

    workspace = models.ForeignKey(
        Workspace, on_delete=models.CASCADE, related_name="installation_links"
    )
    installation = models.OneToOneField(
        Installation, on_delete=models.CASCADE, related_name="workspace_link"
    )

    def __str__(self) -> str:
        return f"{self.workspace} ← {self.installation}"


class CurrencyRate(models.Model):
    """Admin-set rate: one unit of ``currency`` is ``rate`` units of the base currency."""

    workspace = models.ForeignKey(
        Workspace, on_delete=models.CASCADE, related_name="currency_rates"
    )
    currency = models.CharField(max_length=3, validators=[currency_validator])
    rate = models.DecimalField(max_digits=18, decimal_places=8, validators=[MinValueValidator(0)])
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["workspace", "currency"], name="uniq_rate_currency"),
        ]

    def __str__(self) -> str:
        return f"1 {self.currency} = {self.rate} {self.workspace.base_currency}"


class RoleMappingRule(models.Model):
    """Helpdesk role / custom role / group / agent → Billing Desk role.

    Resolution order: an agent override wins, then custom role, then group, then
    helpdesk role; within a kind the lowest ``priority`` wins; with no match the
    workspace's default role applies.
    """

    class MatchType(models.TextChoices):
        AGENT = "agent", "Agent (override)"
        CUSTOM_ROLE = "custom_role", "Custom role"
        GROUP = "group", "Group"
        HELPDESK_ROLE = "helpdesk_role", "Helpdesk role"

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="role_rules")
    connector = models.CharField(
        max_length=32,
        blank=True,
        choices=Installation.Connector.choices,
        help_text="Blank: any helpdesk.",
    )
    match_type = models.CharField(max_length=16, choices=MatchType.choices)
    value = models.CharField(
        max_length=255,
        help_text="Role name, custom role id, group id or name, or agent id (as the helpdesk gives it).",
    )
    role = models.CharField(max_length=16, choices=AGENT_ROLE_CHOICES)
    priority = models.IntegerField(default=100)

    class Meta:
        ordering = ["workspace", "priority", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["workspace", "connector", "match_type", "value"], name="uniq_role_rule"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_match_type_display()} {self.value!r} → {self.get_role_display()}"


class AgentMembership(models.Model):
    """A helpdesk agent (a Django user) seen in a workspace, with the role resolved for them."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    installation = models.ForeignKey(
        Installation, null=True, blank=True, on_delete=models.SET_NULL, related_name="memberships"
    )
    helpdesk_user_id = models.CharField(max_length=64, blank=True)
    display_name = models.CharField(max_length=200, blank=True)
    email = models.EmailField(blank=True)
    role = models.CharField(max_length=16, choices=ROLE_CHOICES)
    # Why this role: the rule or default that produced it, for admins and the audit.
    role_source = models.CharField(max_length=200, blank=True)
    # Bumped whenever ``role`` changes, invalidating app session tokens.
    role_version = models.PositiveIntegerField(default=1)
    last_seen_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["workspace", "user"], name="uniq_membership"),
        ]

    def __str__(self) -> str:
        return f"{self.display_name or self.user} · {self.workspace} · {self.get_role_display()}"
