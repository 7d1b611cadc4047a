"""Records behind the billing support dashboard and the monthly report (DESIGN.md section 7).

Tickets come from the helpdesks (``services.tickets``), categorised by
``TicketCategoryRule``s; provider calls are written by ``InstrumentedProvider``
around every billing-provider call; the monthly report is stored once per
workspace and month. The selectors aggregate these with the database only, so
each table carries the (workspace, time) indexes that month aggregation needs.
"""

from __future__ import annotations

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone

from helpdesk_connectors.models import Installation

from .tenancy import Workspace


class TicketCategory(models.TextChoices):
    """The brief's billing issue categories, in the dashboard's order."""

    PAYMENT_FAILED = "payment_failed", "Payment failed"
    INVOICE_DISCREPANCY = "invoice_discrepancy", "Invoice discrepancy"
    PLAN_CHANGE_REQUEST = "plan_change_request", "Plan change request"
    REFUND_REQUEST = "refund_request", "Refund request"
    OVERCHARGE_DISPUTE = "overcharge_dispute", "Overcharge dispute"
    DUPLICATE_CHARGE = "duplicate_charge", "Duplicate charge"
    PAYMENT_METHOD_UPDATE = "payment_method_update", "Payment method update"
    TAX_QUESTION = "tax_question", "Tax question"
    OTHER_BILLING = "other_billing", "Other billing"


class HelpdeskTicket(models.Model):
    """A helpdesk ticket as last synced; ``category`` blank means not a billing ticket."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="tickets")
    installation = models.ForeignKey(
        Installation, on_delete=models.CASCADE, related_name="synced_tickets"
    )
    external_id = models.CharField(max_length=64)
    subject = models.CharField(max_length=500, blank=True)
    status = models.CharField(max_length=32, blank=True)
    tags = models.JSONField(default=list, blank=True)
    category = models.CharField(max_length=32, blank=True, choices=TicketCategory.choices)
    is_billing = models.BooleanField(default=False)
    # The helpdesk's own timestamps (not ours).
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()
    solved_at = models.DateTimeField(null=True, blank=True)
    # Seconds from creation to resolution, from the helpdesk's metrics where it gives them.
    resolution_seconds = models.PositiveIntegerField(null=True, blank=True)
    # The helpdesk's own escalation mark; approval requests on the ticket count too (selectors).
    escalated = models.BooleanField(default=False)
    reopens = models.PositiveIntegerField(default=0)
    csat_score = models.PositiveSmallIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(1), MaxValueValidator(5)],
        help_text="Customer satisfaction 1–5; empty when not rated.",
    )
    requester_email = models.CharField(max_length=255, blank=True)
    raw = models.JSONField(default=dict, blank=True)
    synced_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["installation", "external_id"], name="uniq_ticket_external_id"
            ),
        ]
        indexes = [
            models.Index(fields=["workspace", "created_at"], name="ticket_month_idx"),
            models.Index(
                fields=["workspace", "category", "created_at"], name="ticket_category_month_idx"
            ),
        ]

    def __str__(self) -> str:
        return f"#{self.external_id} {self.subject[:60]}"


class TicketCategoryRule(models.Model):
    """Tag or subject keyword → billing category, editable in admin.

    The lowest ``priority`` among matching active rules decides; a ticket no rule
    matches is not a billing ticket. Defaults are seeded per workspace by
    ``services.tickets.ticket_category_rules_seed``.
    """

    class MatchType(models.TextChoices):
        TAG = "tag", "Helpdesk tag (exact, case-insensitive)"
        SUBJECT_KEYWORD = "subject_keyword", "Subject keyword (whole words, case-insensitive)"

    workspace = models.ForeignKey(
        Workspace, on_delete=models.CASCADE, related_name="ticket_category_rules"
    )
    category = models.CharField(max_length=32, choices=TicketCategory.choices)
    match_type = models.CharField(max_length=16, choices=MatchType.choices)
    value = models.CharField(max_length=200)
    priority = models.IntegerField(default=100)
    is_active = models.BooleanField(default=True)

    class Meta:
        ordering = ["workspace", "priority", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["workspace", "match_type", "value"], name="uniq_ticket_category_rule"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_match_type_display()} {self.value!r} → {self.get_category_display()}"


class TicketSyncState(models.Model):
    """Where the ticket export of one installation stands, and who is running it."""

    installation = models.OneToOneField(
        Installation, on_delete=models.CASCADE, related_name="ticket_sync_state"
    )
    # The connector's opaque cursor (Zendesk's export cursor, a Freshdesk page).
    cursor = models.CharField(max_length=1000, blank=True)
    # The newest ``updated_at`` seen: where an export without a cursor resumes.
    since = models.DateTimeField(null=True, blank=True)
    last_run_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    tickets_synced = models.PositiveBigIntegerField(default=0)
    # A lease instead of a row lock held across network calls: one sync at a time.
    lease_until = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"ticket sync of {self.installation_id} (since {self.since})"


class ProviderCall(models.Model):
    """One call to a billing provider: what, how long, and how it ended."""

    class Outcome(models.TextChoices):
        OK = "ok", "OK"
        ERROR = "error", "Error (provider refused)"
        UNAVAILABLE = "unavailable", "Unavailable (network, timeout, 429, 5xx)"

    workspace = models.ForeignKey(
        Workspace, on_delete=models.CASCADE, related_name="provider_calls"
    )
    provider = models.CharField(max_length=16)
    operation = models.CharField(max_length=64)
    duration_ms = models.PositiveIntegerField()
    outcome = models.CharField(max_length=16, choices=Outcome.choices)
    error_code = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [
            models.Index(fields=["workspace", "created_at"], name="provider_call_month_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.provider}.{self.operation} {self.outcome} {self.duration_ms} ms"


class MonthlyReport(models.Model):
    """The monthly billing support report as generated, and to whom it was sent."""

    workspace = models.ForeignKey(
        Workspace, on_delete=models.CASCADE, related_name="monthly_reports"
    )
    month = models.DateField(help_text="The first day of the month reported.")
    generated_at = models.DateTimeField(default=timezone.now)
    body = models.JSONField(default=dict)
    emailed_to = models.JSONField(default=list, blank=True)
    emailed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-month"]
        constraints = [
            models.UniqueConstraint(fields=["workspace", "month"], name="uniq_monthly_report"),
        ]

    def __str__(self) -> str:
        return f"{self.workspace} · {self.month:%Y-%m}"
