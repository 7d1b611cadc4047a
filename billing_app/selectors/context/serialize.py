"""The customer context's JSON shape (``docs/api.md``) as DRF output serializers.

What ``selectors.context.customer_context`` returns and ``api.customers`` serves (and
documents in the OpenAPI schema): the customer, the account, the payment status and
history, the credits, the subscriptions, lifetime value, churn risk, alerts,
approvals and recent actions.

They live below the services (not in ``api``) because the context is serialized when
it is *built*, and since issue 15 that happens at write time too: the snapshot
service (``services.snapshots``) stores ``ContextSerializer``'s output and the API
serves it as stored. ``MoneySerializer`` lives here for the same reason; ``api.schema``
re-exports it for every other endpoint.
"""

from __future__ import annotations

from rest_framework import serializers


class MoneySerializer(serializers.Serializer):
    """Money on the wire (``billing_app.money.money_json``)."""

    class Meta:
        ref_name = "Money"

    amount = serializers.IntegerField(help_text="Integer minor units (cents; yen for JPY).")
    currency = serializers.CharField(help_text="ISO 4217, upper case.")
    exponent = serializers.IntegerField(
        help_text="Digits after the decimal point for this currency (2 for USD, 0 for JPY)."
    )
    display = serializers.CharField(help_text="Formatted for people, e.g. $2,400.00.")


class AddressSerializer(serializers.Serializer):
    class Meta:
        ref_name = "CustomerAddress"

    line1 = serializers.CharField(allow_blank=True)
    line2 = serializers.CharField(allow_blank=True)
    city = serializers.CharField(allow_blank=True)
    state = serializers.CharField(allow_blank=True)
    postal_code = serializers.CharField(allow_blank=True)
    country = serializers.CharField(allow_blank=True)


class TaxIdSerializer(serializers.Serializer):
    id = serializers.CharField(allow_null=True)
    type = serializers.CharField(allow_null=True)
    value = serializers.CharField(allow_null=True)


class CustomerSerializer(serializers.Serializer):
    id = serializers.CharField()
    name = serializers.CharField(allow_blank=True)
    email = serializers.CharField(allow_blank=True)
    address = AddressSerializer()
    address_display = serializers.CharField(allow_blank=True)
    currency = serializers.CharField()
    currency_exponent = serializers.IntegerField(
        help_text="Digits after the decimal point in the customer's currency (JPY 0, USD 2)."
    )
    tax_exempt = serializers.CharField(help_text="none, exempt or reverse.")
    tax_ids = TaxIdSerializer(many=True)
    deleted = serializers.BooleanField()
    delinquent = serializers.BooleanField()
    created = serializers.DateField(allow_null=True)
    monitoring_until = serializers.DateField(
        allow_null=True, help_text="30-day payment monitoring after a duplicate charge."
    )


class PlanSerializer(serializers.Serializer):
    class Meta:
        ref_name = "CustomerPlan"

    name = serializers.CharField()
    price = MoneySerializer()
    interval = serializers.CharField()
    display = serializers.CharField()


class PaymentMethodSerializer(serializers.Serializer):
    id = serializers.CharField(allow_null=True)
    type = serializers.CharField()
    brand = serializers.CharField(allow_null=True)
    last4 = serializers.CharField(allow_null=True)
    exp_month = serializers.IntegerField(allow_null=True)
    exp_year = serializers.IntegerField(allow_null=True)
    display = serializers.CharField()
    expires = serializers.CharField(allow_null=True)
    expired = serializers.BooleanField()


class AccountSerializer(serializers.Serializer):
    plan = PlanSerializer(allow_null=True)
    billing_cycle = serializers.CharField(allow_null=True)
    renews_at = serializers.DateField(allow_null=True)
    ends_at = serializers.DateField(allow_null=True)
    payment_method = PaymentMethodSerializer(allow_null=True)
    billing_email = serializers.CharField(allow_blank=True)
    billing_address = serializers.CharField(allow_blank=True)


class LastPaymentSerializer(serializers.Serializer):
    amount = MoneySerializer()
    date = serializers.DateField()
    status = serializers.CharField()
    succeeded = serializers.BooleanField()
    charge_id = serializers.CharField()
    method = serializers.CharField(allow_blank=True)
    failure_code = serializers.CharField(allow_blank=True)
    failure_message = serializers.CharField(allow_blank=True)


class NextInvoiceSerializer(serializers.Serializer):
    amount = MoneySerializer()
    date = serializers.DateField()
    subscription_ids = serializers.ListField(child=serializers.CharField())


class PaymentStatusSerializer(serializers.Serializer):
    last_payment = LastPaymentSerializer(allow_null=True)
    next_invoice = NextInvoiceSerializer(allow_null=True)
    outstanding_balance = MoneySerializer()
    failures_12m = serializers.IntegerField()


class FailureSerializer(serializers.Serializer):
    code = serializers.CharField(allow_blank=True)
    decline_code = serializers.CharField(allow_blank=True)
    message = serializers.CharField(allow_blank=True)


class PaymentRowSerializer(serializers.Serializer):
    id = serializers.CharField()
    type = serializers.ChoiceField(choices=["invoice", "charge"])
    date = serializers.DateField()
    datetime = serializers.DateTimeField()
    amount = MoneySerializer()
    status = serializers.CharField(
        help_text="paid, open, failed, refunded, partially_refunded, disputed, uncollectible."
    )
    status_label = serializers.CharField()
    method = serializers.CharField(allow_blank=True)
    invoice_id = serializers.CharField(allow_null=True)
    invoice_number = serializers.CharField(allow_blank=True)
    charge_id = serializers.CharField(allow_null=True)
    refunded = MoneySerializer()
    refundable = MoneySerializer()
    disputed = serializers.BooleanField()
    hosted_invoice_url = serializers.CharField(allow_null=True)
    invoice_pdf = serializers.CharField(allow_null=True)
    description = serializers.CharField(allow_blank=True, allow_null=True)
    attempt_count = serializers.IntegerField()
    failure = FailureSerializer(allow_null=True)


class PaymentPageSerializer(serializers.Serializer):
    items = PaymentRowSerializer(many=True)
    next_cursor = serializers.CharField(allow_null=True)


class PendingCreditSerializer(serializers.Serializer):
    id = serializers.CharField()
    amount = MoneySerializer(help_text="What is left of this credit.")
    granted = MoneySerializer()
    description = serializers.CharField(allow_blank=True, allow_null=True)
    date = serializers.DateField(allow_null=True)


class CreditsSerializer(serializers.Serializer):
    available = MoneySerializer()
    applied_this_cycle = MoneySerializer()
    on_balance = PendingCreditSerializer(
        many=True, help_text="The granted credits the available credit is made of."
    )
    pending = PendingCreditSerializer(
        many=True,
        help_text="Credits asked for and not on the balance yet (awaiting approval or the "
        "billing system's answer); never one already counted in available.",
    )


class SeatsSerializer(serializers.Serializer):
    used = serializers.IntegerField(allow_null=True)
    total = serializers.IntegerField()
    utilization_pct = serializers.IntegerField(allow_null=True)
    item_id = serializers.CharField()


class AddonSerializer(serializers.Serializer):
    item_id = serializers.CharField()
    name = serializers.CharField()
    price = MoneySerializer(help_text="Per month (yearly prices ÷ 12).")
    interval = serializers.CharField()
    display = serializers.CharField()
    billed_price = MoneySerializer(help_text="What each billing period charges.")
    billed_interval = serializers.CharField()
    quantity = serializers.IntegerField()
    price_id = serializers.CharField()


class SubscriptionPlanSerializer(PlanSerializer):
    class Meta:
        ref_name = "CustomerSubscriptionPlan"

    unit_amount = MoneySerializer()
    quantity = serializers.IntegerField()
    price_id = serializers.CharField()
    item_id = serializers.CharField()


class PauseSerializer(serializers.Serializer):
    behavior = serializers.CharField()
    resumes_at = serializers.DateField(allow_null=True)


class DiscountSerializer(serializers.Serializer):
    class Meta:
        ref_name = "CustomerDiscount"

    id = serializers.CharField()
    coupon_id = serializers.CharField(allow_null=True)
    name = serializers.CharField(allow_null=True, allow_blank=True)
    percent_off = serializers.FloatField(allow_null=True)
    duration = serializers.CharField(allow_null=True)
    duration_in_months = serializers.IntegerField(allow_null=True)
    end = serializers.DateField(allow_null=True)


class PendingChangeSerializer(serializers.Serializer):
    price_id = serializers.CharField()
    name = serializers.CharField(allow_blank=True)
    effective_date = serializers.DateField(allow_null=True)
    schedule_id = serializers.CharField(allow_null=True)


class SubscriptionSerializer(serializers.Serializer):
    id = serializers.CharField()
    status = serializers.CharField()
    status_label = serializers.CharField()
    state = serializers.CharField(
        help_text="canceled, paused (collection paused), ending (set to cancel), else the status."
    )
    state_label = serializers.CharField(help_text="The state as the badge reads it.")
    state_detail = serializers.CharField(
        allow_blank=True, help_text="The state in one sentence, dates in words."
    )
    renews_at = serializers.DateField(
        allow_null=True, help_text="None when paused, ending or cancelled."
    )
    ends_at = serializers.DateField(allow_null=True, help_text="When an ending subscription ends.")
    applicable_kinds = serializers.ListField(
        child=serializers.CharField(),
        help_text="The subscription action kinds its state allows (the role decides the rest).",
    )
    start_date = serializers.DateField(allow_null=True)
    contract_end = serializers.DateField(allow_null=True)
    contract_term = serializers.CharField(allow_null=True)
    auto_renew = serializers.BooleanField()
    plan = SubscriptionPlanSerializer(allow_null=True)
    billing_cycle = serializers.CharField(allow_blank=True)
    seats = SeatsSerializer(allow_null=True)
    addons = AddonSerializer(many=True)
    trial_end = serializers.DateField(allow_null=True)
    pause_collection = PauseSerializer(allow_null=True)
    cancel_at_period_end = serializers.BooleanField()
    cancel_at = serializers.DateField(allow_null=True)
    canceled_at = serializers.DateField(allow_null=True)
    ended_at = serializers.DateField(allow_null=True)
    current_period_start = serializers.DateField(allow_null=True)
    current_period_end = serializers.DateField(allow_null=True)
    price_id = serializers.CharField(allow_null=True)
    collection_method = serializers.CharField()
    discount = DiscountSerializer(allow_null=True)
    pending_change = PendingChangeSerializer(allow_null=True)
    grace_period_until = serializers.DateField(allow_null=True)
    currency = serializers.CharField()


class LifetimeValueSerializer(serializers.Serializer):
    total_revenue = MoneySerializer()
    months_active = serializers.IntegerField()
    mrr = MoneySerializer()
    arr = MoneySerializer()


class ChurnRiskSerializer(serializers.Serializer):
    level = serializers.ChoiceField(choices=["low", "medium", "high"])
    label = serializers.CharField()  # type: ignore[assignment]
    score = serializers.IntegerField()
    reasons = serializers.ListField(child=serializers.CharField())


class AlertSerializer(serializers.Serializer):
    type = serializers.ChoiceField(
        choices=[
            "payment_failed",
            "duplicate_charge",
            "pending_approval",
            "payment_monitoring",
            "provider_down",
            "suspension_warning",
        ]
    )
    severity = serializers.ChoiceField(choices=["info", "warning", "danger"])
    message = serializers.CharField()
    data = serializers.JSONField()  # type: ignore[assignment]


class PendingApprovalSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    action_id = serializers.CharField()
    kind = serializers.CharField()
    amount = MoneySerializer(allow_null=True)
    requested_by = serializers.CharField()
    required_roles = serializers.ListField(child=serializers.CharField())
    reason = serializers.CharField(allow_blank=True)
    expires_at = serializers.DateTimeField()
    created_at = serializers.DateTimeField()


class RecentActionSerializer(serializers.Serializer):
    id = serializers.CharField()
    kind = serializers.CharField()
    status = serializers.CharField()
    amount = MoneySerializer(allow_null=True)
    actor = serializers.CharField()
    created_at = serializers.DateTimeField()
    ticket_id = serializers.CharField(allow_blank=True)
    provider_object_id = serializers.CharField(allow_blank=True)


class ContextSerializer(serializers.Serializer):
    """The whole context (``GET /customers/<id>/context/``)."""

    class Meta:
        ref_name = "CustomerContext"

    customer = CustomerSerializer()
    as_of = serializers.DateTimeField(
        allow_null=True, help_text="When the mirrored data was last synced."
    )
    stale = serializers.BooleanField(
        help_text="Older than MIRROR_STALE_AFTER_SECONDS, or a webhook event about the "
        "customer is stored but not applied yet."
    )
    refreshing = serializers.BooleanField(help_text="A background refresh is under way.")
    provider_status = serializers.ChoiceField(choices=["ok", "unavailable"])
    now = serializers.DateTimeField(
        help_text="The billing clock at this request; the figures hold for it."
    )
    account = AccountSerializer()
    payment_status = PaymentStatusSerializer()
    payment_history = PaymentPageSerializer(
        help_text="The last six months; older pages from payments/?cursor=."
    )
    credits = CreditsSerializer()
    subscription = SubscriptionSerializer(allow_null=True, help_text="The primary one.")
    subscriptions = SubscriptionSerializer(many=True)
    lifetime_value = LifetimeValueSerializer()
    churn_risk = ChurnRiskSerializer()
    alerts = AlertSerializer(many=True)
    pending_approvals = PendingApprovalSerializer(many=True)
    recent_actions = RecentActionSerializer(many=True)


# Answered per request, never stored in a snapshot (``services.snapshots``).
PER_REQUEST_FIELDS = ("stale", "refreshing", "provider_status", "now")
