"""API views: finding the ticket's billing customer, pinning it, its context and payment history.

Every view needs the ``view_billing`` permission on the caller's workspace
(``request.auth`` is the ``AgentContext``). Customer-scoped views answer 404
``customer_not_found`` both for a customer outside the caller's workspace and
for a caller who may not read billing, so neither learns whether a customer
exists; the lookup answers 403 ``not_permitted`` to a caller without the
permission (it names no customer).
"""

from __future__ import annotations

from django.http import HttpResponse
from django.urls import re_path
from django.utils.translation import gettext as _
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from ..agent_context import AgentContext
from ..errors import NotFound, NotPermitted, ValidationFailed
from ..selectors.context.serialize import ContextSerializer, PaymentPageSerializer
from ..selectors.payments import customer_payments
from ..services.actions.outcomes import to_json
from ..services.actions.preview import discount_preview, seat_change_preview
from ..services.context_read import customer_context_answer
from ..services.customers import customer_link_pin, customer_lookup
from .schema import MoneySerializer, error_responses

CUSTOMER_ID = r"(?P<customer_id>[A-Za-z0-9_\-]{1,255})"


def request_agent(request: Request) -> AgentContext:
    """The signed-in agent (``request.auth``): every API view's caller, typed."""
    context = request.auth
    if not isinstance(context, AgentContext):  # pragma: no cover - authentication guarantees it
        raise NotPermitted(_("An agent session is required."))
    return context


def billing_reader(request: Request, customer_id: str | None = None) -> AgentContext:
    """The caller, if they may read billing in their workspace; else 404 (customer views) or 403."""
    context = request_agent(request)
    if not context.may("view_billing"):
        if customer_id is not None:
            raise NotFound(_("No such billing customer."), code="customer_not_found")
        raise NotPermitted(_("Your role may not view billing in this workspace."))
    return context


# --- shared output serializers (Money and the error envelope are api.schema's) ---


def customer_errors(*statuses: int) -> dict[int, OpenApiResponse]:
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
        responses={200: OutputSerializer, **customer_errors(400, 401, 403)},
    )
    def get(self, request: Request) -> Response:
        context = billing_reader(request)
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
        responses={200: OutputSerializer, **customer_errors(400, 401, 404)},
    )
    def post(self, request: Request, customer_id: str) -> Response:
        context = billing_reader(request, customer_id)
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


class CustomerContextApi(APIView):
    # The whole context's serializer lives below the services (the snapshot builder stores its
    # output); here it documents the answer in the OpenAPI schema.
    OutputSerializer = ContextSerializer

    @extend_schema(
        summary="Everything the panel shows about one billing customer",
        description="Served from the customer's context snapshot, computed when the mirror "
        "changed (rebuilt first when a write, a settings change or time has moved it since). "
        "Stale data is answered at once with a background refresh queued; a customer not "
        "mirrored yet is fetched first.",
        responses={200: ContextSerializer, **customer_errors(401, 404, 503)},
    )
    def get(self, request: Request, customer_id: str) -> HttpResponse:
        context = billing_reader(request, customer_id)
        # The snapshot's stored JSON text with the request's own fields spliced in front,
        # answered as bytes (what the JSON renderer would write; never decoded here);
        # services/context_read.py says how it is read, cached and rebuilt.
        return HttpResponse(
            customer_context_answer(workspace=context.workspace, customer_id=customer_id),
            content_type="application/json",
        )


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
        responses={200: OutputSerializer, **customer_errors(400, 401, 404)},
    )
    def get(self, request: Request, customer_id: str) -> Response:
        context = billing_reader(request, customer_id)
        params = self.InputSerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        data = customer_payments(
            workspace=context.workspace,
            customer_id=customer_id,
            cursor=params.validated_data.get("cursor") or None,
        )
        return Response(self.OutputSerializer(data).data)


# --- next-invoice previews of a seat change and a discount ---


class PreviewLineSerializer(serializers.Serializer):
    class Meta:
        ref_name = "ChangePreviewLine"

    description = serializers.CharField()
    amount = MoneySerializer()
    period_start = serializers.DateTimeField(allow_null=True)
    period_end = serializers.DateTimeField(allow_null=True)
    proration = serializers.BooleanField()


class NextInvoicePreviewSerializer(serializers.Serializer):
    class Meta:
        ref_name = "ChangePreviewNextInvoice"

    date = serializers.DateTimeField()
    subtotal = MoneySerializer()
    discount = MoneySerializer()
    tax = MoneySerializer()
    amount = MoneySerializer()


class ChangePreviewSerializer(serializers.Serializer):
    class Meta:
        ref_name = "ChangePreview"

    subscription_id = serializers.CharField()
    kind = serializers.ChoiceField(choices=["adjust_seats", "apply_discount"])
    lines = PreviewLineSerializer(many=True, help_text="Prorations the next invoice carries.")
    amount_due_now = MoneySerializer()
    current_recurring_amount = MoneySerializer()
    new_recurring_amount = MoneySerializer()
    next_invoice = NextInvoicePreviewSerializer(
        allow_null=True, help_text="The next renewal with the change; null: it will not renew."
    )
    effective_date = serializers.DateTimeField()


def _body(serializer: type[serializers.Serializer], request: Request) -> dict:
    data = serializer(data=request.data)
    if not data.is_valid():
        raise ValidationFailed(_("The request is not valid."), code="invalid", details=data.errors)
    return dict(data.validated_data)


class SeatChangePreviewApi(APIView):
    """What a seat change will invoice, after the same checks the change runs: every
    refusal it can predict (below the seats in use, the same count, a cancelled
    subscription) is answered here, in words, before Confirm."""

    class InputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "SeatChangePreviewInput"

        subscription_id = serializers.CharField(max_length=255)
        quantity = serializers.JSONField(
            help_text="The new seat count (validated as the action's)."
        )
        item_id = serializers.CharField(max_length=255, required=False, allow_blank=True)

    @extend_schema(
        summary="Preview a seat change: prorations, new recurring amount, next invoice",
        request=InputSerializer,
        responses={200: ChangePreviewSerializer, **customer_errors(400, 401, 404, 422)},
    )
    def post(self, request: Request, customer_id: str) -> Response:
        body = _body(self.InputSerializer, request)
        preview = seat_change_preview(
            context=billing_reader(request, customer_id),
            customer_id=customer_id,
            subscription_id=body["subscription_id"],
            quantity=body["quantity"],
            item_id=body.get("item_id") or None,
        )
        return Response(ChangePreviewSerializer(to_json(preview)).data)


class DiscountPreviewApi(APIView):
    """What a discount will do to the next invoices, after the same checks the discount
    runs (a subscription that already has one is refused here, in words)."""

    class InputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "DiscountPreviewInput"

        subscription_id = serializers.CharField(max_length=255)
        percent_off = serializers.JSONField()
        duration = serializers.CharField(max_length=32)
        duration_in_months = serializers.JSONField(required=False, allow_null=True)

    @extend_schema(
        summary="Preview a discount: new recurring amount and next invoice",
        request=InputSerializer,
        responses={200: ChangePreviewSerializer, **customer_errors(400, 401, 404, 422)},
    )
    def post(self, request: Request, customer_id: str) -> Response:
        body = _body(self.InputSerializer, request)
        preview = discount_preview(
            context=billing_reader(request, customer_id),
            customer_id=customer_id,
            subscription_id=body["subscription_id"],
            percent_off=body["percent_off"],
            duration=body["duration"],
            duration_in_months=body.get("duration_in_months"),
        )
        return Response(ChangePreviewSerializer(to_json(preview)).data)


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
    re_path(
        rf"^customers/{CUSTOMER_ID}/seats/preview/$",
        SeatChangePreviewApi.as_view(),
        name="api-seat-change-preview",
    ),
    re_path(
        rf"^customers/{CUSTOMER_ID}/discount/preview/$",
        DiscountPreviewApi.as_view(),
        name="api-discount-preview",
    ),
]
