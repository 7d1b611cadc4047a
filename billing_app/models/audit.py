"""Billing actions (the audit trail) and approval requests."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models

from helpdesk_connectors.models import Installation

from ..catalog import ActionKind
from ..vocabulary import action_label
from ..words import action_error, action_reason, approval_reason
from .tenancy import ROLE_CHOICES, Workspace

KIND_CHOICES = [(kind.value, action_label(kind)) for kind in ActionKind]


class BillingAction(models.Model):
    """Every attempt an agent makes — executed, escalated, refused or failed."""

    class Status(models.TextChoices):
        PENDING_APPROVAL = "pending_approval", "Pending approval"
        EXECUTING = "executing", "Executing"
        # Sent to the provider, no answer (timeout, reset, 5xx): held open until
        # reconciliation learns what the provider did; never resubmitted under a new key.
        OUTCOME_UNKNOWN = "outcome_unknown", "Confirming with Stripe"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"
        NOT_PERMITTED = "not_permitted", "Not permitted"
        DENIED = "denied", "Approval denied"
        EXPIRED = "expired", "Approval expired"

    class Decision(models.TextChoices):
        ALLOW = "allow", "Allowed"
        APPROVAL = "approval", "Needs approval"
        DENY = "deny", "Denied"

    class NoteStatus(models.TextChoices):
        NONE = "none", "Not needed"
        PENDING = "pending", "Pending"
        POSTED = "posted", "Posted"
        FAILED = "failed", "Failed"

    class Channel(models.TextChoices):
        AGENT = "agent", "Agent"
        SELF_SERVICE = "self_service", "Customer self-service"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    workspace = models.ForeignKey(Workspace, on_delete=models.PROTECT, related_name="actions")
    # PROTECT: installation_id is an audited field (the audit chain's snapshot), so an
    # installation that has acted is deactivated (is_active), never deleted.
    installation = models.ForeignKey(
        Installation, null=True, blank=True, on_delete=models.PROTECT, related_name="actions"
    )
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="billing_actions"
    )
    actor_role = models.CharField(max_length=16, choices=ROLE_CHOICES)
    # Who asked: an agent, or a customer through a self-service refund request (issue 18;
    # its actor is the workspace's self-service user). The dashboard's agent figures count
    # only agents' actions; the Self-service section counts the rest.
    channel = models.CharField(
        max_length=16, choices=Channel.choices, default=Channel.AGENT, editable=False
    )
    ticket_id = models.CharField(max_length=64, blank=True)
    customer_id = models.CharField(max_length=255)
    kind = models.CharField(max_length=32, choices=KIND_CHOICES)
    params = models.JSONField(default=dict)
    amount = models.BigIntegerField(null=True, blank=True)
    currency = models.CharField(max_length=3, blank=True)
    # ``amount`` converted to the workspace's base currency (null when no rate).
    amount_base = models.BigIntegerField(null=True, blank=True)
    status = models.CharField(max_length=20, choices=Status.choices)
    decision = models.CharField(max_length=16, choices=Decision.choices)
    decision_reason = models.TextField(blank=True)
    idempotency_key = models.CharField(max_length=255)
    # Hash of kind + customer + params; the same key with another payload is refused.
    request_fingerprint = models.CharField(max_length=64)
    provider = models.CharField(max_length=16, blank=True)
    provider_object_id = models.CharField(max_length=255, blank=True)
    result = models.JSONField(default=dict, blank=True)
    error_code = models.CharField(max_length=64, blank=True)
    error_message = models.TextField(blank=True)
    customer_message = models.TextField(blank=True)
    # ``decision_reason`` and ``error_message`` as words (billing_app.words): readers show
    # them in their own language; the text columns keep English for audit and exports.
    # {"decision": [parts], "error": [parts]}; empty on rows written before.
    words = models.JSONField(default=dict, blank=True)
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    note_status = models.CharField(
        max_length=16, choices=NoteStatus.choices, default=NoteStatus.NONE
    )
    note_attempts = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    started_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    # When the agent started handling this ticket in the panel (the panel's open,
    # as the server served it); handling time = completed_at − handling_started_at.
    handling_started_at = models.DateTimeField(null=True, blank=True)
    # Time spent in the billing provider, and the whole request, in milliseconds.
    provider_ms = models.PositiveIntegerField(null=True, blank=True)
    duration_ms = models.PositiveIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["workspace", "idempotency_key"], name="uniq_action_idempotency"
            ),
        ]
        indexes = [
            models.Index(
                fields=["workspace", "customer_id", "-created_at"], name="action_customer_idx"
            ),
            models.Index(fields=["workspace", "status"], name="action_status_idx"),
            models.Index(fields=["workspace", "kind", "created_at"], name="action_kind_month_idx"),
            models.Index(fields=["workspace", "ticket_id"], name="action_ticket_idx"),
            # The dashboard's "an agent acted on this failure": one probe per failure
            # (selectors.dashboard.failures; the kinds are its RECOVERY_ACTION_KINDS).
            models.Index(
                fields=["workspace", "customer_id", "completed_at"],
                name="action_recovery_idx",
                condition=models.Q(
                    status="succeeded",
                    kind__in=[
                        "generate_payment_link",
                        "update_payment_method",
                        "extend_grace_period",
                        "resend_invoice",
                    ],
                ),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} for {self.customer_id} ({self.status})"

    @property
    def reason_text(self) -> str:
        """``decision_reason`` in the active language (from ``words``), else as stored."""
        return action_reason(self)

    @property
    def error_text(self) -> str:
        """``error_message`` in the active language (from ``words``), else as stored."""
        return action_error(self)

    @property
    def reference(self) -> str:
        """``BD-3F2A91C0``: what a teammate quotes (the start of the id, searchable in admin)."""
        return f"BD-{self.pk.hex[:8].upper()}"


class ApprovalRequest(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        APPROVED = "approved", "Approved"
        DENIED = "denied", "Denied"
        EXPIRED = "expired", "Expired"

    action = models.OneToOneField(BillingAction, on_delete=models.CASCADE, related_name="approval")
    workspace = models.ForeignKey(Workspace, on_delete=models.PROTECT, related_name="approvals")
    required_roles = models.JSONField(default=list)
    reason = models.TextField()
    # ``reason`` as words (billing_app.words), read in the reader's language; empty: old row.
    reason_words = models.JSONField(default=list, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    decided_role = models.CharField(max_length=16, blank=True)
    decided_at = models.DateTimeField(null=True, blank=True)
    comment = models.TextField(blank=True)
    expires_at = models.DateTimeField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["workspace", "status", "expires_at"], name="approval_queue_idx"),
        ]

    def __str__(self) -> str:
        return f"Approval for {self.action_id} ({self.status})"

    @property
    def reason_text(self) -> str:
        """``reason`` in the active language (from ``reason_words``), else as stored."""
        return approval_reason(self)
