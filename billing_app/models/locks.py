"""Rows that exist only to be locked: the per-customer decision lock."""

from __future__ import annotations

from django.db import models

from .tenancy import Workspace


class CustomerLock(models.Model):
    """One row per (workspace, customer): held while a decision that reads history is taken.

    The refund pattern and the refundable remainder count the customer's earlier
    actions; two submissions deciding at once would each count without the other.
    ``services.locks.customer_decision_lock`` locks this row for the short
    transaction that decides and INSERTs the action, so decisions for one customer
    are taken one at a time. The row carries no data the product reads.
    """

    workspace = models.ForeignKey(
        Workspace, on_delete=models.CASCADE, related_name="customer_locks"
    )
    customer_id = models.CharField(max_length=255)
    # Written by every taker: the UPDATE is the lock (see services.locks).
    last_decision_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["workspace", "customer_id"], name="uniq_customer_lock"),
        ]

    def __str__(self) -> str:
        return f"decision lock for {self.customer_id}"
