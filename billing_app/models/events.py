"""Stripe webhook events, stored raw and processed once."""

from __future__ import annotations

from django.db import models
from django.db.models import Q

from .tenancy import Workspace


class StripeEvent(models.Model):
    class Status(models.TextChoices):
        RECEIVED = "received", "Received"
        PROCESSED = "processed", "Processed"
        IGNORED = "ignored", "Ignored (type not handled)"
        FAILED = "failed", "Failed"

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="stripe_events")
    event_id = models.CharField(max_length=255)
    type = models.CharField(max_length=128)
    api_version = models.CharField(max_length=64, blank=True)
    livemode = models.BooleanField(default=False)
    created = models.DateTimeField()
    payload = models.JSONField()
    # The customer the event's object belongs to (its ``customer``, or its id for a
    # customer object), taken at intake: the panel's "superseded" check is an index probe.
    customer_id = models.CharField(max_length=255, blank=True, default="")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.RECEIVED)
    attempts = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)
    received_at = models.DateTimeField(auto_now_add=True)
    processed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["workspace", "event_id"], name="uniq_stripe_event"),
        ]
        indexes = [
            models.Index(fields=["workspace", "status"], name="stripe_event_status_idx"),
            # Covering (PostgreSQL): the dashboard counts the month's events by status
            # from the index alone.
            models.Index(
                fields=["workspace", "received_at"],
                include=["status"],
                name="stripe_event_recv_status_idx",
            ),
            models.Index(
                fields=["workspace", "customer_id", "created"],
                condition=Q(status__in=["received", "failed"]),
                name="stripe_event_pending_cust_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.event_id} {self.type}"
