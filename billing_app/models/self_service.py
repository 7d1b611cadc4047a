"""What customers do themselves (issue 18, docs/self-service.md).

- ``CardPrompt``: one card-update prompt per (customer, card, window) — the unique key is
  the "once" of the daily scan across retries and restarts — and its outcome read from
  webhooks: prompted → card updated → the next renewal paid.
- ``CardPromptTemplate``: a workspace's own wording of the prompt email, beside the playbook.
- ``CustomerOptOut``: a customer who unsubscribed from prompts (RFC 8058 one-click too).
- ``SelfServiceLink``: one signed, expiring refund-request link; the token carries its id.
- ``SelfServiceRefundRequest``: a customer's request on one charge, and what became of it:
  executed within the workspace's self-service limit (through ``action_submit``), sent to
  agents (an approval request plus a helpdesk ticket), or refused by the agents' own rules.
- ``BillingWidget`` / ``BillingWidgetEvent``: the help widget's per-workspace secret and
  allowed origins, and what customers asked it (deflection on the dashboard).
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models

from helpdesk_connectors.fields import EncryptedTextField

from .audit import BillingAction
from .tenancy import Workspace


class CardPrompt(models.Model):
    class Reason(models.TextChoices):
        EXPIRING = "expiring", "Card expiring"
        FAILED = "failed", "Payment failed (card reason)"

    class Status(models.TextChoices):
        PENDING = "pending", "Queued"
        SENT = "sent", "Sent"
        FAILED = "failed", "Could not be sent"
        SUPPRESSED = "suppressed", "Not sent (unsubscribed or no email)"

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="card_prompts")
    customer_id = models.CharField(max_length=255)
    # The card the prompt is about (a payment method id): a new card gets its own prompt.
    payment_method_id = models.CharField(max_length=255)
    reason = models.CharField(max_length=16, choices=Reason.choices)
    # The subscription the card pays (its own card, or the customer's default when it has
    # none); blank when the prompt is about the customer's default card only. The outcome
    # counts a change of this scope's card and a renewal of this subscription.
    subscription_id = models.CharField(max_length=255, blank=True)
    # The window: ``exp-YYYY-MM`` (the card's expiry month) or ``fail-<invoice or charge>``.
    window = models.CharField(max_length=255)
    email = models.EmailField(max_length=254, blank=True)
    language = models.CharField(max_length=16, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    # Outcome, from webhooks: the default card replaced after the prompt …
    card_updated_at = models.DateTimeField(null=True, blank=True)
    new_payment_method_id = models.CharField(max_length=255, blank=True)
    # … and the next renewal invoice paid after that (a failure avoided; revenue kept).
    renewal_invoice_id = models.CharField(max_length=255, blank=True)
    renewal_paid_at = models.DateTimeField(null=True, blank=True)
    renewal_amount = models.BigIntegerField(null=True, blank=True)
    renewal_currency = models.CharField(max_length=3, blank=True)
    # The renewal in the workspace's base currency (admin rates); null without a rate.
    renewal_amount_base = models.BigIntegerField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["workspace", "customer_id", "payment_method_id", "window"],
                name="uniq_card_prompt_window",
            ),
        ]
        indexes = [
            models.Index(fields=["workspace", "sent_at"], name="card_prompt_sent_idx"),
            models.Index(fields=["workspace", "customer_id"], name="card_prompt_customer_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.reason} prompt for {self.customer_id} ({self.window})"


class CardPromptTemplate(models.Model):
    """A workspace's wording of the card-update email for one reason (else the product's)."""

    workspace = models.ForeignKey(
        Workspace, on_delete=models.CASCADE, related_name="card_prompt_templates"
    )
    reason = models.CharField(max_length=16, choices=CardPrompt.Reason.choices)
    subject = models.CharField(max_length=200)
    body = models.TextField()
    is_active = models.BooleanField(default=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["workspace", "reason"], name="uniq_card_prompt_template"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.workspace} · {self.reason}"


class CustomerOptOut(models.Model):
    """A customer who unsubscribed from card-update prompts; honoured by every later scan."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="opt_outs")
    customer_id = models.CharField(max_length=255)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["workspace", "customer_id"], name="uniq_opt_out"),
        ]

    def __str__(self) -> str:
        return f"{self.customer_id} unsubscribed"


class SelfServiceLink(models.Model):
    """One refund-request link sent to a customer; its signed token names this row."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    workspace = models.ForeignKey(
        Workspace, on_delete=models.CASCADE, related_name="self_service_links"
    )
    customer_id = models.CharField(max_length=255)
    # Who sent it (an agent from the panel; null for a macro or the command line) and where.
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    ticket_id = models.CharField(max_length=64, blank=True)
    installation = models.ForeignKey(
        "helpdesk_connectors.Installation",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    source = models.CharField(max_length=16, default="panel")
    expires_at = models.DateTimeField()
    revoked_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [
            models.Index(fields=["workspace", "customer_id"], name="ss_link_customer_idx"),
        ]

    def __str__(self) -> str:
        return f"refund link for {self.customer_id} until {self.expires_at:%Y-%m-%d}"


class SelfServiceRefundRequest(models.Model):
    class Status(models.TextChoices):
        RECEIVED = "received", "Received"
        REFUNDED = "refunded", "Refunded"
        PROCESSING = "processing", "Being confirmed with the billing system"
        WITH_AGENTS = "with_agents", "Sent to an agent"
        APPROVED = "approved", "Approved and refunded"
        DENIED = "denied", "Declined by an agent"
        REFUSED = "refused", "Not eligible"
        FAILED = "failed", "Failed"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    workspace = models.ForeignKey(
        Workspace, on_delete=models.CASCADE, related_name="self_service_refunds"
    )
    link = models.ForeignKey(SelfServiceLink, on_delete=models.PROTECT, related_name="requests")
    customer_id = models.CharField(max_length=255)
    charge_id = models.CharField(max_length=255)
    amount = models.BigIntegerField()
    currency = models.CharField(max_length=3)
    amount_base = models.BigIntegerField(null=True, blank=True)
    reason = models.CharField(max_length=32)
    comment = models.TextField(blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.RECEIVED)
    # Why it was refused: the agents' error code (refund_window_passed, ...), not words.
    refusal_code = models.CharField(max_length=64, blank=True)
    action = models.OneToOneField(
        BillingAction,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="self_service_request",
    )
    ticket_ref = models.CharField(max_length=255, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    decided_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            # One request per charge per link: a double submit finds the first.
            models.UniqueConstraint(fields=["link", "charge_id"], name="uniq_ss_request_charge"),
        ]
        indexes = [
            models.Index(fields=["workspace", "created_at"], name="ss_request_created_idx"),
            models.Index(fields=["workspace", "customer_id"], name="ss_request_customer_idx"),
        ]

    def __str__(self) -> str:
        return f"self-service refund of {self.charge_id} ({self.status})"


class BillingWidget(models.Model):
    """The billing help widget of one workspace: its identity secret and allowed origins."""

    workspace = models.OneToOneField(
        Workspace, on_delete=models.CASCADE, related_name="billing_widget"
    )
    enabled = models.BooleanField(default=False)
    # The HMAC key the customer's product signs identities with (encrypted at rest).
    identity_secret = EncryptedTextField(blank=True)
    # Exact origins (scheme://host[:port]) allowed to embed the widget, one per line.
    allowed_origins = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"billing widget of {self.workspace}"


class BillingWidgetEvent(models.Model):
    class Kind(models.TextChoices):
        OPENED = "opened", "Opened"
        ANSWERED = "answered", "Question answered"
        CONTACT = "contact", "Contacted support"

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="widget_events")
    customer_id = models.CharField(max_length=255)
    # The widget's visit (a random id the script keeps for one page view).
    visit = models.CharField(max_length=64)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    question = models.CharField(max_length=32, blank=True)
    ticket_ref = models.CharField(max_length=255, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            # Each kind (and question) counts once per visit, also under concurrent requests.
            models.UniqueConstraint(
                fields=["workspace", "customer_id", "visit", "kind", "question"],
                name="uniq_widget_event_per_visit",
            ),
        ]
        indexes = [
            models.Index(fields=["workspace", "created_at"], name="widget_event_created_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.question} ({self.customer_id})"
