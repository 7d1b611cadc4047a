"""The local mirror of each workspace's billing objects (DESIGN.md section 4).

Rows are keyed by (workspace, the provider's object id). ``data`` keeps the object
as the provider returned it; the typed columns are what the panel, the workflows
and the dashboard query. References between objects are provider ids, not foreign
keys, because webhooks arrive in any order (an invoice may land before its
customer).

Ordering (issue 12): ``read_at`` is when the stored state was *read* from the
provider — the start of the request, taken before it was sent, so a read that
started earlier is older even when its answer arrives later; for a state taken
from a webhook payload it is the event's ``created``. ``services.mirror`` replaces
a row only with a state whose ``read_at`` is not older (under the row lock), so
the mirror never goes back in time. NULL means "not known": any ordered state
replaces it. ``source_updated`` is the same instant in whole seconds (kept for the
queries that compare it); ``synced_at`` is only when the row was last written.
"""

from __future__ import annotations

from django.db import models

from ..subscriptions import ENDED_STATUSES
from .tenancy import Workspace


class MirrorObject(models.Model):
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    stripe_id = models.CharField(max_length=255)
    livemode = models.BooleanField(default=False)
    created = models.DateTimeField(null=True, blank=True)
    data = models.JSONField(default=dict, blank=True)
    source_updated = models.BigIntegerField(default=0)
    # When the stored state was read from the provider (the request's start); NULL: unknown.
    read_at = models.DateTimeField(null=True, blank=True)
    synced_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True

    def __str__(self) -> str:
        return self.stripe_id


def _unique(name: str) -> models.UniqueConstraint:
    return models.UniqueConstraint(fields=["workspace", "stripe_id"], name=f"uniq_{name}_id")


class MirrorCustomer(MirrorObject):
    email = models.CharField(max_length=255, blank=True)  # stored lower-case
    name = models.CharField(max_length=255, blank=True)
    description = models.TextField(blank=True)
    phone = models.CharField(max_length=64, blank=True)
    address = models.JSONField(default=dict, blank=True)
    currency = models.CharField(max_length=3, blank=True)
    # Stripe's customer balance: negative is credit the customer holds.
    balance = models.BigIntegerField(default=0)
    delinquent = models.BooleanField(default=False)
    deleted = models.BooleanField(default=False)
    tax_exempt = models.CharField(max_length=16, default="none")
    tax_ids = models.JSONField(default=list, blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    default_payment_method_id = models.CharField(max_length=255, blank=True)
    # When the newest whole-bundle read stored started (a read time, not a write time).
    bundle_synced_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [_unique("customer")]
        indexes = [models.Index(fields=["workspace", "email"], name="mirror_customer_email_idx")]


class MirrorProduct(MirrorObject):
    name = models.CharField(max_length=255, blank=True)
    active = models.BooleanField(default=True)
    metadata = models.JSONField(default=dict, blank=True)

    class Meta:
        constraints = [_unique("product")]


class MirrorPrice(MirrorObject):
    product_id = models.CharField(max_length=255, blank=True)
    nickname = models.CharField(max_length=255, blank=True)
    lookup_key = models.CharField(max_length=255, blank=True)
    active = models.BooleanField(default=True)
    currency = models.CharField(max_length=3)
    unit_amount = models.BigIntegerField(null=True, blank=True)
    type = models.CharField(max_length=16, default="recurring")
    recurring_interval = models.CharField(max_length=8, blank=True)
    recurring_interval_count = models.PositiveIntegerField(default=1)
    metadata = models.JSONField(default=dict, blank=True)

    class Meta:
        constraints = [_unique("price")]


class MirrorSubscription(MirrorObject):
    customer_id = models.CharField(max_length=255, db_index=True)
    status = models.CharField(max_length=32)
    collection_method = models.CharField(max_length=32, default="charge_automatically")
    currency = models.CharField(max_length=3, blank=True)
    start_date = models.DateTimeField(null=True, blank=True)
    current_period_start = models.DateTimeField(null=True, blank=True)
    current_period_end = models.DateTimeField(null=True, blank=True)
    cancel_at_period_end = models.BooleanField(default=False)
    cancel_at = models.DateTimeField(null=True, blank=True)
    canceled_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    trial_start = models.DateTimeField(null=True, blank=True)
    trial_end = models.DateTimeField(null=True, blank=True)
    pause_collection = models.JSONField(null=True, blank=True)
    default_payment_method_id = models.CharField(max_length=255, blank=True)
    latest_invoice_id = models.CharField(max_length=255, blank=True)
    schedule_id = models.CharField(max_length=255, blank=True)
    cancellation_details = models.JSONField(default=dict, blank=True)
    metadata = models.JSONField(default=dict, blank=True)

    class Meta:
        constraints = [_unique("subscription")]
        indexes = [
            models.Index(
                fields=["workspace", "customer_id", "status"], name="mirror_sub_customer_idx"
            ),
            # The ended subscriptions, covering (PostgreSQL): the dashboard's churn after a
            # payment failure reads them from this small index, not the whole mirror.
            models.Index(
                fields=["workspace", "stripe_id"],
                include=["customer_id", "ended_at", "canceled_at"],
                condition=models.Q(status__in=sorted(ENDED_STATUSES)),
                name="mirror_sub_ended_idx",
            ),
        ]


class MirrorSubscriptionItem(MirrorObject):
    subscription_id = models.CharField(max_length=255, db_index=True)
    price_id = models.CharField(max_length=255, blank=True)
    product_id = models.CharField(max_length=255, blank=True)
    quantity = models.PositiveIntegerField(default=1)
    unit_amount = models.BigIntegerField(null=True, blank=True)
    currency = models.CharField(max_length=3, blank=True)
    recurring_interval = models.CharField(max_length=8, blank=True)
    recurring_interval_count = models.PositiveIntegerField(default=1)
    current_period_start = models.DateTimeField(null=True, blank=True)
    current_period_end = models.DateTimeField(null=True, blank=True)
    metadata = models.JSONField(default=dict, blank=True)

    class Meta:
        constraints = [_unique("subscription_item")]
        indexes = [
            models.Index(fields=["workspace", "subscription_id"], name="mirror_item_sub_idx")
        ]


class MirrorInvoice(MirrorObject):
    customer_id = models.CharField(max_length=255)
    subscription_id = models.CharField(max_length=255, blank=True)
    number = models.CharField(max_length=64, blank=True)
    status = models.CharField(max_length=16, blank=True)
    collection_method = models.CharField(max_length=32, default="charge_automatically")
    billing_reason = models.CharField(max_length=64, blank=True)
    currency = models.CharField(max_length=3)
    subtotal = models.BigIntegerField(default=0)
    total = models.BigIntegerField(default=0)
    tax = models.BigIntegerField(default=0)
    total_discount = models.BigIntegerField(default=0)
    amount_due = models.BigIntegerField(default=0)
    amount_paid = models.BigIntegerField(default=0)
    amount_remaining = models.BigIntegerField(default=0)
    starting_balance = models.BigIntegerField(default=0)
    ending_balance = models.BigIntegerField(null=True, blank=True)
    hosted_invoice_url = models.URLField(max_length=1000, blank=True)
    invoice_pdf = models.URLField(max_length=1000, blank=True)
    period_start = models.DateTimeField(null=True, blank=True)
    period_end = models.DateTimeField(null=True, blank=True)
    due_date = models.DateTimeField(null=True, blank=True)
    paid_at = models.DateTimeField(null=True, blank=True)
    attempt_count = models.PositiveIntegerField(default=0)
    next_payment_attempt = models.DateTimeField(null=True, blank=True)
    payment_intent_id = models.CharField(max_length=255, blank=True)
    charge_id = models.CharField(max_length=255, blank=True)

    class Meta:
        constraints = [_unique("invoice")]
        indexes = [
            models.Index(
                fields=["workspace", "customer_id", "-created"], name="mirror_invoice_customer_idx"
            ),
            models.Index(fields=["workspace", "status"], name="mirror_invoice_status_idx"),
            models.Index(fields=["workspace", "payment_intent_id"], name="mirror_invoice_pi_idx"),
        ]


class MirrorInvoiceLine(MirrorObject):
    invoice_id = models.CharField(max_length=255, db_index=True)
    description = models.TextField(blank=True)
    amount = models.BigIntegerField(default=0)
    currency = models.CharField(max_length=3)
    quantity = models.PositiveIntegerField(null=True, blank=True)
    price_id = models.CharField(max_length=255, blank=True)
    product_id = models.CharField(max_length=255, blank=True)
    subscription_item_id = models.CharField(max_length=255, blank=True)
    proration = models.BooleanField(default=False)
    period_start = models.DateTimeField(null=True, blank=True)
    period_end = models.DateTimeField(null=True, blank=True)
    discount_amount = models.BigIntegerField(default=0)
    tax_amount = models.BigIntegerField(default=0)

    class Meta:
        constraints = [_unique("invoice_line")]
        indexes = [models.Index(fields=["workspace", "invoice_id"], name="mirror_line_invoice_idx")]


class MirrorCharge(MirrorObject):
    customer_id = models.CharField(max_length=255, blank=True)
    payment_intent_id = models.CharField(max_length=255, blank=True)
    invoice_id = models.CharField(max_length=255, blank=True)
    amount = models.BigIntegerField()
    amount_captured = models.BigIntegerField(default=0)
    amount_refunded = models.BigIntegerField(default=0)
    currency = models.CharField(max_length=3)
    status = models.CharField(max_length=16)
    paid = models.BooleanField(default=False)
    refunded = models.BooleanField(default=False)
    disputed = models.BooleanField(default=False)
    failure_code = models.CharField(max_length=64, blank=True)
    failure_message = models.TextField(blank=True)
    decline_code = models.CharField(max_length=64, blank=True)
    outcome = models.JSONField(default=dict, blank=True)
    payment_method_id = models.CharField(max_length=255, blank=True)
    card_brand = models.CharField(max_length=32, blank=True)
    card_last4 = models.CharField(max_length=4, blank=True)
    description = models.TextField(blank=True)

    class Meta:
        constraints = [_unique("charge")]
        indexes = [
            models.Index(
                fields=["workspace", "customer_id", "-created"], name="mirror_charge_customer_idx"
            ),
            models.Index(fields=["workspace", "payment_intent_id"], name="mirror_charge_pi_idx"),
            models.Index(
                fields=["workspace", "status", "created"], name="mirror_charge_status_idx"
            ),
        ]


class MirrorRefund(MirrorObject):
    charge_id = models.CharField(max_length=255, blank=True, db_index=True)
    payment_intent_id = models.CharField(max_length=255, blank=True)
    customer_id = models.CharField(max_length=255, blank=True)
    amount = models.BigIntegerField()
    currency = models.CharField(max_length=3)
    status = models.CharField(max_length=32)
    reason = models.CharField(max_length=64, blank=True)
    metadata = models.JSONField(default=dict, blank=True)

    class Meta:
        constraints = [_unique("refund")]
        indexes = [
            models.Index(
                fields=["workspace", "customer_id", "-created"], name="mirror_refund_customer_idx"
            )
        ]


class MirrorPaymentMethod(MirrorObject):
    customer_id = models.CharField(max_length=255, blank=True, db_index=True)
    type = models.CharField(max_length=32)
    card_brand = models.CharField(max_length=32, blank=True)
    card_last4 = models.CharField(max_length=4, blank=True)
    card_exp_month = models.PositiveSmallIntegerField(null=True, blank=True)
    card_exp_year = models.PositiveSmallIntegerField(null=True, blank=True)
    billing_details = models.JSONField(default=dict, blank=True)

    class Meta:
        constraints = [_unique("payment_method")]


class MirrorBalanceTransaction(MirrorObject):
    customer_id = models.CharField(max_length=255, db_index=True)
    amount = models.BigIntegerField()
    currency = models.CharField(max_length=3)
    type = models.CharField(max_length=32)
    description = models.TextField(blank=True)
    invoice_id = models.CharField(max_length=255, blank=True)
    ending_balance = models.BigIntegerField(default=0)
    metadata = models.JSONField(default=dict, blank=True)

    class Meta:
        constraints = [_unique("balance_txn")]


class MirrorDiscount(MirrorObject):
    customer_id = models.CharField(max_length=255, blank=True, db_index=True)
    subscription_id = models.CharField(max_length=255, blank=True)
    coupon_id = models.CharField(max_length=255, blank=True)
    coupon_name = models.CharField(max_length=255, blank=True)
    percent_off = models.DecimalField(max_digits=6, decimal_places=2, null=True, blank=True)
    amount_off = models.BigIntegerField(null=True, blank=True)
    currency = models.CharField(max_length=3, blank=True)
    duration = models.CharField(max_length=16, blank=True)
    duration_in_months = models.PositiveIntegerField(null=True, blank=True)
    start = models.DateTimeField(null=True, blank=True)
    end = models.DateTimeField(null=True, blank=True)
    active = models.BooleanField(default=True)

    class Meta:
        constraints = [_unique("discount")]


class CustomerLink(models.Model):
    """An agent's pin: this requester email or helpdesk organization is this customer."""

    class KeyType(models.TextChoices):
        EMAIL = "email", "Requester email"
        ORGANIZATION = "organization", "Helpdesk organization"

    workspace = models.ForeignKey(
        Workspace, on_delete=models.CASCADE, related_name="customer_links"
    )
    key_type = models.CharField(max_length=16, choices=KeyType.choices)
    key_value = models.CharField(max_length=255)  # emails stored lower-case
    customer_id = models.CharField(max_length=255)
    pinned_by = models.ForeignKey(
        "auth.User", null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["workspace", "key_type", "key_value"], name="uniq_customer_link"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.key_type}:{self.key_value} → {self.customer_id}"


class SyncState(models.Model):
    """Resumable backfill progress for one resource of one workspace."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="sync_states")
    resource = models.CharField(max_length=64)
    cursor = models.CharField(max_length=255, blank=True)
    completed = models.BooleanField(default=False)
    objects_synced = models.PositiveIntegerField(default=0)
    started_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["workspace", "resource"], name="uniq_sync_state")
        ]

    def __str__(self) -> str:
        return f"{self.workspace_id}:{self.resource} ({'done' if self.completed else self.cursor or 'start'})"
