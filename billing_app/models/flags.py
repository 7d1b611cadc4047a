"""Flags Billing Desk keeps on a customer locally (not in the billing provider)."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from .audit import BillingAction
from .tenancy import Workspace


class CustomerFlag(models.Model):
    """A time-boxed mark on a customer, e.g. 30-day payment monitoring after a duplicate charge.

    One row per (workspace, customer, kind): setting a flag again extends it.
    """

    class Kind(models.TextChoices):
        PAYMENT_MONITORING = "payment_monitoring", "Payment monitoring"

    workspace = models.ForeignKey(
        Workspace, on_delete=models.CASCADE, related_name="customer_flags"
    )
    customer_id = models.CharField(max_length=255)
    kind = models.CharField(max_length=32, choices=Kind.choices)
    reason = models.TextField(blank=True)
    active_until = models.DateTimeField()
    action = models.ForeignKey(
        BillingAction, null=True, blank=True, on_delete=models.SET_NULL, related_name="flags"
    )
    set_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["workspace", "customer_id", "kind"], name="uniq_customer_flag"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} on {self.customer_id} until {self.active_until:%Y-%m-%d}"
