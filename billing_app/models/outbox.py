"""The transactional outbox: one row per side effect, written with the change it reports.

Why one generic table rather than status fields on each model: the four side
effects it carries (an action's note, an approval decision's note, a payment
failure's escalation, the fetch of an invoice's failed charge) need the same
machinery — a claim that two workers cannot both win, a lease after which a
killed worker's claim lapses, a backoff schedule, an attempt count and the last
error — and one table gives one re-drive query, one claim statement, one
index and one alert figure. The models the effects are about keep their own,
user-facing status (``BillingAction.note_status``,
``PaymentFailure.suspension_note_status`` …): the outbox row says *whether the
work still has to be done*, the domain row says *what happened*.

Stripe webhook events are not copied here: a ``StripeEvent`` row is already
written before the delivery is acknowledged and carries its own status, so the
re-drive reads it directly (``services.outbox.outbox_redrive``).
"""

from __future__ import annotations

import uuid

from django.db import models
from django.utils import timezone

from .tenancy import Workspace


class OutboxMessage(models.Model):
    class Kind(models.TextChoices):
        ACTION_NOTE = "action_note", "Action note"
        APPROVAL_NOTE = "approval_note", "Approval decision note"
        FAILURE_ESCALATION = "failure_escalation", "Payment failure escalation"
        INVOICE_RESOLVE = "invoice_resolve", "Invoice failed-charge fetch"
        CARD_PROMPT = "card_prompt", "Card-update prompt email"
        CUSTOMER_TICKET = "customer_ticket", "Helpdesk ticket for a customer's request"

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        SENDING = "sending", "Claimed by a worker"
        DONE = "done", "Done"
        FAILED = "failed", "Failed (gave up)"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="outbox")
    kind = models.CharField(max_length=32, choices=Kind.choices)
    # The row the effect is about (a BillingAction uuid, an ApprovalRequest or PaymentFailure pk).
    target_id = models.CharField(max_length=64)
    # One effect, one row: enqueueing the same effect twice finds the first row.
    dedupe_key = models.CharField(max_length=255, unique=True)
    # What the effect needs that the target row does not keep (e.g. the note text as of the event).
    payload = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    # A claim lapses at this time: a worker killed mid-delivery never holds a row for good.
    lease_until = models.DateTimeField(null=True, blank=True)
    # The last attempt may have reached the helpdesk (timeout, reset, 5xx, or the worker died
    # after sending): the next attempt reads the ticket before posting again.
    outcome_unknown = models.BooleanField(default=False)
    last_error = models.TextField(blank=True)
    # What the effect produced (e.g. the helpdesk's comment id).
    result_ref = models.CharField(max_length=255, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    done_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["next_attempt_at"]
        indexes = [
            models.Index(fields=["status", "next_attempt_at"], name="outbox_due_idx"),
            models.Index(fields=["kind", "target_id"], name="outbox_target_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.target_id} ({self.status})"
