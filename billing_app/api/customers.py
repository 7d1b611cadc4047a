"""API views: finding the ticket's billing customer, pinning it, its context and payment history.

Every view needs the ``view_billing`` permission on the caller's workspace
(``request.auth`` is the ``AgentContext``). Customer-scoped views answer 404
``customer_not_found`` both for a customer outside the caller's workspace and
for a caller who may not read billing, so neither learns whether a customer
exists; the lookup answers 403 ``not_permitted`` to a caller without the
permission (it names no customer).
"""

from __future__ import annotations

from django.urls import re_path
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from ..agent_context import AgentContext
from ..errors import NotFound, NotPermitted
from ..selectors.context import customer_context
from ..selectors.payments import customer_payments
from ..services.context_cache import customer_context_cached
from ..services.customers import customer_link_pin, customer_lookup
from ..services.refresh import customer_mirror_ensure
from .schema import ErrorSerializer, MoneySerializer, error_responses  # noqa: F401 (api.actions)

CUSTOMER_ID = r"(?P<customer_id>[A-Za-z0-9_\-]{1,255})"


def _agent(request: Request) -> AgentContext:
    context = request.auth
    if not isinstance(context, AgentContext):  # pragma: no cover - authentication guarantees it
        raise NotPermitted("An agent session is required.")
    return context


def _reader(request: Request, customer_id: str | None = None) -> AgentContext:
    """The caller, if they may read billing in their workspace; else 404 (customer views) or 403."""
    context = _agent(request)
    if not context.may("view_billing"):
        if customer_id is not None:
            raise NotFound("No such billing customer.", code="customer_not_found")
        raise NotPermitted("Your role may not view billing in this workspace.")
    return context


# --- shared output serializers (Money and the error envelope are api.schema's) ---


def _errors(*statuses: int) -> dict[int, OpenApiResponse]:
    """The customer views' error docs: the one envelope (``api.schema``), their 403 and 404."""
    return error_responses(
        *statuses,
        s403="``not_permitted``: the role may not view billing here.",
        s404="``customer_not_found``: no such customer in this workspace.",
    )


class PlanSummarySerializer(serializers.Serializer):
    class Meta:
        ref_name = "CustomerPlanSummary"

    name = serializers.CharField()
    status = serializers.CharField()
    display = serializers.CharField()
    subscription_id = serializers.CharField()


class MatchSerializer(serializers.Serializer):
    id = serializers.CharField()
    name = serializers.CharField(allow_blank=True)
    email = serializers.CharField(allow_blank=True)
    currency = serializers.CharField(allow_blank=True)
    created = serializers.DateField(allow_null=True)
    plan = PlanSummarySerializer(allow_null=True)
    delinquent = serializers.BooleanField()
    deleted = serializers.BooleanField()
    pinned = serializers.BooleanField()
    matched_by = serializers.ListField(
        child=serializers.CharField(),
        help_text="email, organization, pinned_email, pinned_organization.",
    )


# --- lookup ---


class CustomerLookupApi(APIView):
    class InputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "CustomerLookupQuery"

        email = serializers.CharField(required=False, allow_blank=True, max_length=254)
        organization_id = serializers.CharField(required=False, allow_blank=True, max_length=255)
        ticket_id = serializers.CharField(required=False, allow_blank=True, max_length=64)

    class OutputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "CustomerLookup"

        matches = MatchSerializer(many=True)
        pinned_customer_id = serializers.CharField(allow_null=True)
        provider_status = serializers.ChoiceField(choices=["ok", "unavailable"])
        source = serializers.ChoiceField(  # type: ignore[assignment]
            choices=["mirror", "provider"],
            help_text="provider: nothing mirrored matched; these came from the billing provider.",
        )
        ticket_id = serializers.CharField(allow_blank=True)

    @extend_schema(
        summary="Billing customers matching a ticket's requester",
        parameters=[
            OpenApiParameter("email", str, description="Requester email (case-insensitive)."),
            OpenApiParameter("organization_id", str, description="Helpdesk organization id."),
            OpenApiParameter("ticket_id", str, description="The ticket, echoed back."),
        ],
        responses={200: OutputSerializer, **_errors(400, 401, 403)},
    )
    def get(self, request: Request) -> Response:
        context = _reader(request)
        params = self.InputSerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        data = customer_lookup(
            workspace=context.workspace,
            email=params.validated_data.get("email", ""),
            organization_id=params.validated_data.get("organization_id", ""),
        )
        data["ticket_id"] = params.validated_data.get("ticket_id", "")
        return Response(self.OutputSerializer(data).data)


class CustomerLinkApi(APIView):
    class InputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "CustomerLinkBody"

        email = serializers.CharField(required=False, allow_blank=True, max_length=254)
        organization_id = serializers.CharField(required=False, allow_blank=True, max_length=255)

    class OutputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "CustomerLink"

        customer_id = serializers.CharField()
        key_type = serializers.ChoiceField(choices=["email", "organization"])
        key_value = serializers.CharField()
        pinned_by = serializers.CharField(allow_null=True)
        updated_at = serializers.DateTimeField()

    @extend_schema(
        summary="Pin a requester email or a helpdesk organization to this customer",
        request=InputSerializer,
        responses={200: OutputSerializer, **_errors(400, 401, 404)},
    )
    def post(self, request: Request, customer_id: str) -> Response:
        context = _reader(request, customer_id)
        body = self.InputSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        link = customer_link_pin(
            workspace=context.workspace,
            customer_id=customer_id,
            user=context.user,
            email=body.validated_data.get("email", ""),
            organization_id=body.validated_data.get("organization_id", ""),
        )
        data = {
            "customer_id": link.customer_id,
            "key_type": link.key_type,
            "key_value": link.key_value,
            "pinned_by": context.membership.display_name or context.user.get_username(),
            "updated_at": link.updated_at,
        }
        return Response(self.OutputSerializer(data).data, status=status.HTTP_200_OK)


# --- context ---


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
    pending = PendingCreditSerializer(many=True)


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


class CustomerContextApi(APIView):
    class OutputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "CustomerContext"

        customer = CustomerSerializer()
        as_of = serializers.DateTimeField(
            allow_null=True, help_text="When the mirrored data was last synced."
        )
        stale = serializers.BooleanField(help_text="Older than MIRROR_STALE_AFTER_SECONDS.")
        refreshing = serializers.BooleanField(help_text="A background refresh is under way.")
        provider_status = serializers.ChoiceField(choices=["ok", "unavailable"])
        now = serializers.DateTimeField(help_text="The time the figures are computed for.")
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

    @extend_schema(
        summary="Everything the panel shows about one billing customer",
        description="Served from the local mirror. Stale data is answered at once with a "
        "background refresh queued; a customer not mirrored yet is fetched first.",
        responses={200: OutputSerializer, **_errors(401, 404, 503)},
    )
    def get(self, request: Request, customer_id: str) -> Response:
        context = _reader(request, customer_id)
        state = customer_mirror_ensure(workspace=context.workspace, customer_id=customer_id)

        def build() -> dict:
            data = customer_context(
                workspace=context.workspace,
                customer=state.customer,
                stale=state.stale,
                refreshing=state.refreshing,
                provider_status=state.provider_status,
            )
            return self.OutputSerializer(data).data

        if state.provider_status != "ok":  # the outage banner is per request: not cached
            return Response(build())
        # Cached per customer, invalidated by mirror and action writes (services/context_cache.py);
        # the freshness flags are the request's own.
        data = customer_context_cached(
            workspace_id=context.workspace.pk, customer_id=state.customer.stripe_id, build=build
        )
        return Response({**data, "stale": state.stale, "refreshing": state.refreshing})


class CustomerPaymentsApi(APIView):
    class InputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "CustomerPaymentsQuery"

        cursor = serializers.CharField(required=False, allow_blank=True, max_length=2000)

    class OutputSerializer(PaymentPageSerializer):
        class Meta:
            ref_name = "CustomerPayments"

        customer_id = serializers.CharField()

    @extend_schema(
        summary="A customer's payment history, newest first",
        parameters=[
            OpenApiParameter(
                "cursor", str, description="next_cursor of the previous page; omit for the first."
            )
        ],
        responses={200: OutputSerializer, **_errors(400, 401, 404)},
    )
    def get(self, request: Request, customer_id: str) -> Response:
        context = _reader(request, customer_id)
        params = self.InputSerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        data = customer_payments(
            workspace=context.workspace,
            customer_id=customer_id,
            cursor=params.validated_data.get("cursor") or None,
        )
        return Response(self.OutputSerializer(data).data)


urlpatterns = [
    re_path(r"^customers/lookup/$", CustomerLookupApi.as_view(), name="api-customer-lookup"),
    re_path(
        rf"^customers/{CUSTOMER_ID}/link/$", CustomerLinkApi.as_view(), name="api-customer-link"
    ),
    re_path(
        rf"^customers/{CUSTOMER_ID}/context/$",
        CustomerContextApi.as_view(),
        name="api-customer-context",
    ),
    re_path(
        rf"^customers/{CUSTOMER_ID}/payments/$",
        CustomerPaymentsApi.as_view(),
        name="api-customer-payments",
    ),
]
