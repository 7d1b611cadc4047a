"""Payment failures as Billing Desk records them, and per-workspace playbook wording.

``PaymentFailure`` is one failed payment attempt (DESIGN.md section 6, "Payment
failure"): written by ``services.payment_failures`` from Stripe's webhooks, from
the sandbox's simulated payments and from a backfill of the mirror. One row per
failed attempt — the failed charge when it is known, else the invoice's attempt
number — so a webhook delivered twice, or the same failure reported by
``charge.failed``, ``payment_intent.payment_failed`` and ``invoice.payment_failed``,
is counted once. Recovery, the consecutive-failure streak, the suspension warning
and the CSM outreach are kept on the row, so the panel and the dashboard read
them without recomputing history.

``PlaybookTemplate`` is a workspace's own wording for one of the brief's six
customer-communication scenarios (``billing_app.playbook``); a scenario without
an active row uses the brief's text.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from .audit import BillingAction
from .tenancy import Workspace


class PaymentFailure(models.Model):
    class ReasonCategory(models.TextChoices):
        """The dashboard's failure-reason categories (``billing_app.vocabulary.FAILURE_CATEGORIES``)."""

        CARD_EXPIRED = "card_expired", "Card expired"
        INSUFFICIENT_FUNDS = "insufficient_funds", "Insufficient funds"
        CARD_DECLINED = "card_declined", "Card declined (bank)"
        CARD_NOT_RECOGNIZED = "card_not_recognized", "Card not recognized"
        OTHER = "other", "Other"

    class RecoveredBy(models.TextChoices):
        PAYMENT = "payment", "Payment (automatic retry or the customer)"
        AGENT_ACTION = "agent_action", "Payment after an agent's action"

    class Source(models.TextChoices):
        WEBHOOK = "webhook", "Stripe webhook"
        SANDBOX = "sandbox", "Sandbox simulation"
        BACKFILL = "backfill", "Backfill from the mirror"

    class NoteStatus(models.TextChoices):
        NONE = "none", "Not needed"
        PENDING = "pending", "Pending"
        POSTED = "posted", "Posted"
        NO_TICKET = "no_ticket", "No ticket to post on"
        FAILED = "failed", "Failed"

    class OutreachStatus(models.TextChoices):
        NONE = "none", "Not needed"
        PENDING = "pending", "Pending"
        TICKET = "ticket", "Ticket opened for the CSM group"
        NOTE = "note", "Internal note on the customer's latest ticket"
        NO_CHANNEL = "no_channel", "No helpdesk channel to reach the CSM group"
        FAILED = "failed", "Failed"

    workspace = models.ForeignKey(
        Workspace, on_delete=models.CASCADE, related_name="payment_failures"
    )
    customer_id = models.CharField(max_length=255)
    subscription_id = models.CharField(max_length=255, blank=True)
    invoice_id = models.CharField(max_length=255, blank=True)
    payment_intent_id = models.CharField(max_length=255, blank=True)
    charge_id = models.CharField(max_length=255, blank=True)
    # What makes an attempt unique: the failed charge's id, else "<invoice id>#<attempt number>".
    attempt_key = models.CharField(max_length=255)
    amount = models.BigIntegerField()
    currency = models.CharField(max_length=3)
    decline_code = models.CharField(max_length=64, blank=True)
    failure_code = models.CharField(max_length=64, blank=True)
    failure_message = models.TextField(blank=True)
    reason_category = models.CharField(
        max_length=32, choices=ReasonCategory.choices, default=ReasonCategory.OTHER
    )
    # The reason in plain words, e.g. "Card expired", "Gateway error".
    reason = models.CharField(max_length=200)
    attempt_count = models.PositiveIntegerField(default=1)
    next_retry_at = models.DateTimeField(null=True, blank=True)
    failed_at = models.DateTimeField()
    recovered_at = models.DateTimeField(null=True, blank=True)
    recovered_by = models.CharField(max_length=16, blank=True, choices=RecoveredBy.choices)
    # The payment that recovered it: a succeeded charge or a paid invoice.
    recovered_via = models.CharField(max_length=255, blank=True)
    recovery_action = models.ForeignKey(
        BillingAction,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="recovered_failures",
    )
    time_to_recover = models.DurationField(null=True, blank=True)
    # Failures in a row on this subscription (or customer) when this one was recorded.
    consecutive_count = models.PositiveIntegerField(default=1)
    # The attempt_key of the streak's first failure: one suspension warning per streak.
    streak_key = models.CharField(max_length=255, blank=True)
    suspension_warning_sent_at = models.DateTimeField(null=True, blank=True)
    suspension_note_status = models.CharField(
        max_length=16, choices=NoteStatus.choices, default=NoteStatus.NONE
    )
    suspension_note_ref = models.CharField(max_length=255, blank=True)
    csm_outreach_status = models.CharField(
        max_length=16, choices=OutreachStatus.choices, default=OutreachStatus.NONE
    )
    csm_outreach_at = models.DateTimeField(null=True, blank=True)
    # The helpdesk ticket opened for the CSM group, or the ticket the note went on.
    csm_outreach_ref = models.CharField(max_length=255, blank=True)
    csm_outreach_error = models.TextField(blank=True)
    escalation_attempts = models.PositiveIntegerField(default=0)
    source = models.CharField(max_length=16, choices=Source.choices, default=Source.WEBHOOK)
    event_id = models.CharField(max_length=255, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-failed_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["workspace", "attempt_key"], name="uniq_payment_failure_attempt"
            ),
            models.UniqueConstraint(
                fields=["workspace", "streak_key"],
                condition=Q(suspension_warning_sent_at__isnull=False),
                name="uniq_failure_streak_warning",
            ),
        ]
        indexes = [
            # Covering (PostgreSQL): the dashboard's failure figures, reasons, trend and
            # failed subscriptions read the month's failures from the index alone.
            models.Index(
                fields=["workspace", "failed_at"],
                include=[
                    "recovered_at",
                    "recovered_by",
                    "reason_category",
                    "customer_id",
                    "subscription_id",
                    "created_at",
                ],
                name="failure_month_cover_idx",
            ),
            models.Index(
                fields=["workspace", "customer_id", "-failed_at"], name="failure_customer_idx"
            ),
            models.Index(
                fields=["workspace", "reason_category", "failed_at"], name="failure_reason_idx"
            ),
            models.Index(fields=["workspace", "recovered_at"], name="failure_recovered_idx"),
            models.Index(fields=["workspace", "invoice_id"], name="failure_invoice_idx"),
            models.Index(fields=["workspace", "payment_intent_id"], name="failure_pi_idx"),
            models.Index(fields=["workspace", "charge_id"], name="failure_charge_idx"),
        ]

    def __str__(self) -> str:
        state = "recovered" if self.recovered_at else "open"
        return f"{self.reason} on {self.invoice_id or self.charge_id} ({state})"

    @property
    def is_open(self) -> bool:
        return self.recovered_at is None


class PlaybookTemplate(models.Model):
    """A workspace's own wording for one playbook scenario (and variant), editable in admin.

    The text uses the same ``{placeholder}`` names and optional ``[[ … ]]``
    segments as the brief's template it replaces (``billing_app.playbook``);
    ``services.playbook_templates`` validates it on save and loads it when a
    message is rendered.
    """

    class Scenario(models.TextChoices):
        CHARGED_TWICE = "charged_twice", '1. "I was charged twice"'
        PAYMENT_FAILED = "payment_failed", '2. "My payment failed"'
        PLAN_CHANGE = "plan_change", '3. "I want to change my plan"'
        REFUND = "refund", '4. "I want a refund"'
        OVERCHARGE = "overcharge", '5. "I was overcharged"'
        TAX_INVOICE = "tax_invoice", '6. "I need a tax invoice"'

    class Variant(models.TextChoices):
        DEFAULT = "", "—"
        APPROVED = "approved", "Approved"
        DENIED = "denied", "Denied"

    workspace = models.ForeignKey(
        Workspace, on_delete=models.CASCADE, related_name="playbook_templates"
    )
    scenario = models.CharField(max_length=32, choices=Scenario.choices)
    variant = models.CharField(max_length=16, choices=Variant.choices, blank=True, default="")
    body = models.TextField(
        help_text="The customer message. Use the scenario's {placeholders}; text inside "
        "[[ … ]] is left out when a placeholder in it has no value."
    )
    is_active = models.BooleanField(default=True)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["workspace", "scenario", "variant"]
        constraints = [
            models.UniqueConstraint(
                fields=["workspace", "scenario", "variant"], name="uniq_playbook_template"
            ),
        ]

    def __str__(self) -> str:
        variant = f" ({self.get_variant_display().lower()})" if self.variant else ""
        return f"{self.get_scenario_display()}{variant} · {self.workspace}"
