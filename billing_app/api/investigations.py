"""API views for investigating billing problems and answering the customer (DESIGN.md section 6).

* ``GET customers/{id}/invoices/{invoice_id}/breakdown/`` — overcharge investigation.
* ``GET customers/{id}/duplicates/`` — duplicate-charge pairs, the later one to refund.
* ``GET customers/{id}/failures/`` — recorded payment failures, recovery and escalation.
* ``GET customers/{id}/playbook/{scenario}/`` — the filled customer message.
* ``GET customers/{id}/tax/`` — tax ids, billing address, what a tax invoice lacks.
* ``GET customers/{id}/refund-eligibility/`` — recent payments: refundable or why not, the
  days left in the refund window, and the refund pattern.
* ``GET customers/{id}/plan-change/`` — the current plan against the options, what each
  includes, and the latest change with its onboarding follow-up.

Same rules as the other customer endpoints (``api.customers``): ``view_billing``
on the caller's workspace, and a customer outside it — or a caller without the
permission — is 404 ``customer_not_found``. Everything is read from the local
mirror and Billing Desk's own records; the changes themselves are actions
(``POST actions/``: ``refund_duplicate_charge``, ``generate_payment_link``,
``extend_grace_period``, ``apply_credit``, ``send_tax_invoice``).
"""

from __future__ import annotations

from django.urls import re_path
from django.utils.translation import gettext as _
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    PolymorphicProxySerializer,
    extend_schema,
)
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from ..clock import billing_now
from ..errors import NotFound, PreconditionFailed
from ..models import MirrorCustomer, Workspace
from ..selectors.breakdown import invoice_breakdown
from ..selectors.duplicates import customer_duplicates
from ..selectors.failures import customer_failures
from ..selectors.investigation import plan_change_options, refund_eligibility
from ..selectors.playbook import playbook_message
from ..selectors.tax import customer_tax_details
from ..services.actions.refunds import refund_history, refundable
from .customers import CUSTOMER_ID, billing_reader, customer_errors
from .schema import ErrorSerializer, MoneySerializer

INVOICE_ID = r"(?P<invoice_id>[A-Za-z0-9_\-]{1,255})"
SCENARIO = r"(?P<scenario>[a-z_]{1,40})"


def _customer_of(workspace: Workspace, customer_id: str) -> None:
    """404 unless the customer is mirrored in the caller's workspace (never another tenant's)."""
    if not MirrorCustomer.objects.filter(workspace=workspace, stripe_id=customer_id).exists():
        raise NotFound(_("No such billing customer."), code="customer_not_found")


# --- breakdown --------------------------------------------------------------------------------


class BreakdownInvoiceSerializer(serializers.Serializer):
    class Meta:
        ref_name = "BreakdownInvoice"

    id = serializers.CharField()
    number = serializers.CharField(allow_blank=True)
    status = serializers.CharField()
    billing_reason = serializers.CharField(allow_blank=True)
    created = serializers.CharField(allow_null=True)
    period = serializers.CharField(help_text="The service period, e.g. January 2026.")
    subscription_id = serializers.CharField(allow_null=True)
    subtotal = MoneySerializer()
    discount = MoneySerializer()
    tax = MoneySerializer()
    total = MoneySerializer()
    credit_applied = MoneySerializer(help_text="Customer balance used (starting_balance).")
    amount_due = MoneySerializer()
    amount_paid = MoneySerializer()
    amount_remaining = MoneySerializer()
    charged = MoneySerializer(help_text="What the customer paid (or owes) for this invoice.")
    hosted_invoice_url = serializers.CharField(allow_null=True)
    invoice_pdf = serializers.CharField(allow_null=True)


class BreakdownLineSerializer(serializers.Serializer):
    class Meta:
        ref_name = "BreakdownLine"

    id = serializers.CharField()
    kind = serializers.ChoiceField(choices=["plan", "seats", "addon", "proration", "one_time"])
    description = serializers.CharField(allow_blank=True)
    product = serializers.CharField(allow_null=True)
    quantity = serializers.IntegerField(allow_null=True)
    amount = MoneySerializer()
    proration = serializers.BooleanField()
    period_start = serializers.CharField(allow_null=True)
    period_end = serializers.CharField(allow_null=True)
    discount = MoneySerializer()
    tax = MoneySerializer()


class DifferenceSerializer(serializers.Serializer):
    class Meta:
        ref_name = "BreakdownDifference"

    kind = serializers.CharField(
        help_text="seats, plan_change, price_change, addon_added, addon_removed, item_added, "
        "item_removed, proration, one_time, discount, tax, credit_applied, balance_added, other."
    )
    amount = MoneySerializer(help_text="Its effect on the invoice, against the usual one.")
    explanation = serializers.CharField()
    # seats and prorations
    from_quantity = serializers.IntegerField(required=False, allow_null=True)
    to_quantity = serializers.IntegerField(required=False, allow_null=True)
    # prorations: the change, what it charged and credited, for how many days
    product = serializers.CharField(required=False, allow_blank=True)
    changed_at = serializers.CharField(required=False, allow_null=True)
    period_end = serializers.CharField(required=False, allow_null=True)
    days = serializers.IntegerField(required=False, allow_null=True)
    charged = MoneySerializer(required=False)
    credited = MoneySerializer(required=False)
    line_ids = serializers.ListField(child=serializers.CharField(), required=False)
    summary = serializers.CharField(required=False)


class NextInvoiceEstimateSerializer(serializers.Serializer):
    class Meta:
        ref_name = "NextInvoiceEstimate"

    date = serializers.DateField(allow_null=True)
    subtotal = MoneySerializer()
    discount = MoneySerializer()
    tax = MoneySerializer()
    total = MoneySerializer()
    amount = MoneySerializer()
    subscription_id = serializers.CharField()


class SuggestedActionSerializer(serializers.Serializer):
    class Meta:
        ref_name = "SuggestedAction"

    kind = serializers.CharField()
    label = serializers.CharField()  # type: ignore[assignment]
    params = serializers.JSONField()


class InvoiceBreakdownApi(APIView):
    class OutputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "InvoiceBreakdown"

        class UsualSerializer(serializers.Serializer):
            class Meta:
                ref_name = "BreakdownUsual"

            amount = MoneySerializer()
            invoice_id = serializers.CharField()
            invoice_number = serializers.CharField(allow_blank=True)
            date = serializers.CharField(allow_null=True)

        class MessageSerializer(serializers.Serializer):
            class Meta:
                ref_name = "BreakdownMessage"

            amount = MoneySerializer()
            breakdown = serializers.CharField(allow_blank=True)
            explanation = serializers.CharField()
            next_amount = MoneySerializer(allow_null=True)

        customer_id = serializers.CharField()
        invoice = BreakdownInvoiceSerializer()
        lines = BreakdownLineSerializer(many=True)
        components = serializers.DictField(child=MoneySerializer())
        usual = UsualSerializer(allow_null=True, help_text="The previous regular invoice.")
        difference = MoneySerializer(allow_null=True)
        differences = DifferenceSerializer(many=True)
        explanation = serializers.CharField()
        next_invoice = NextInvoiceEstimateSerializer(allow_null=True)

        class ErrorCheckSerializer(serializers.Serializer):
            class Meta:
                ref_name = "BreakdownErrorCheck"

            genuine_error = serializers.BooleanField(
                help_text="Part of the invoice is explained by nothing: credit it."
            )
            amount = MoneySerializer(allow_null=True, help_text="The unexplained amount.")
            display = serializers.CharField()

        message = MessageSerializer(help_text="Fields of the playbook's overcharge message.")
        error_check = ErrorCheckSerializer()
        actions = SuggestedActionSerializer(
            many=True, help_text="A genuine error's credit comes with its amount and reason."
        )

    @extend_schema(
        summary="An invoice taken apart, each difference from the usual amount explained",
        responses={200: OutputSerializer, **customer_errors(401, 404)},
    )
    def get(self, request: Request, customer_id: str, invoice_id: str) -> Response:
        context = billing_reader(request, customer_id)
        _customer_of(context.workspace, customer_id)
        data = invoice_breakdown(
            workspace=context.workspace, customer_id=customer_id, invoice_id=invoice_id
        )
        return Response(self.OutputSerializer(data).data)


# --- duplicates -------------------------------------------------------------------------------


class DuplicateChargeSerializer(serializers.Serializer):
    class Meta:
        ref_name = "DuplicateCharge"

    id = serializers.CharField()
    amount = MoneySerializer()
    created = serializers.CharField(allow_null=True)
    method = serializers.CharField(allow_blank=True)
    description = serializers.CharField(allow_blank=True)
    payment_intent_id = serializers.CharField(allow_null=True)
    invoice_id = serializers.CharField(allow_null=True)
    invoice_number = serializers.CharField(allow_null=True, allow_blank=True)
    refunded = MoneySerializer()


class DuplicatePairSerializer(serializers.Serializer):
    class Meta:
        ref_name = "DuplicatePair"

    charge_ids = serializers.ListField(child=serializers.CharField(), help_text="[earlier, later]")
    original_charge_id = serializers.CharField()
    duplicate_charge_id = serializers.CharField(help_text="The later charge: the one to refund.")
    amount = MoneySerializer()
    refundable = MoneySerializer()
    minutes_apart = serializers.IntegerField()

    class RootCauseSerializer(serializers.Serializer):
        class Meta:
            ref_name = "DuplicateRootCause"

        kind = serializers.ChoiceField(
            choices=["gateway_retry", "issuer_duplicate", "separate_charges"]
        )
        label = serializers.CharField()  # type: ignore[assignment]
        evidence = serializers.ListField(child=serializers.CharField())
        advice = serializers.CharField()

    charges = DuplicateChargeSerializer(many=True)
    root_cause = serializers.CharField()
    root_cause_detail = RootCauseSerializer(
        help_text="The likely cause, from the charges' payment attempts, invoices and cards."
    )
    action = SuggestedActionSerializer()


class CustomerDuplicatesApi(APIView):
    class OutputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "CustomerDuplicates"

        customer_id = serializers.CharField()
        window_hours = serializers.IntegerField()
        pairs = DuplicatePairSerializer(many=True)

    @extend_schema(
        summary="Duplicate-charge candidates: same amount, both succeeded, within the window",
        responses={200: OutputSerializer, **customer_errors(401, 404)},
    )
    def get(self, request: Request, customer_id: str) -> Response:
        context = billing_reader(request, customer_id)
        _customer_of(context.workspace, customer_id)
        data = customer_duplicates(
            workspace=context.workspace,
            customer_id=customer_id,
            now=billing_now(context.workspace),
        )
        return Response(self.OutputSerializer(data).data)


# --- failures ---------------------------------------------------------------------------------


class FailureSerializer(serializers.Serializer):
    class Meta:
        ref_name = "PaymentFailure"

    class OutreachSerializer(serializers.Serializer):
        class Meta:
            ref_name = "FailureCsmOutreach"

        status = serializers.CharField()
        at = serializers.CharField(allow_null=True)
        ref = serializers.CharField(allow_null=True)

    id = serializers.IntegerField()
    customer_id = serializers.CharField()
    subscription_id = serializers.CharField(allow_null=True)
    invoice_id = serializers.CharField(allow_null=True)
    payment_intent_id = serializers.CharField(allow_null=True)
    charge_id = serializers.CharField(allow_null=True)
    amount = MoneySerializer()
    decline_code = serializers.CharField(allow_blank=True)
    failure_code = serializers.CharField(allow_blank=True)
    failure_message = serializers.CharField(allow_blank=True)
    reason = serializers.CharField(help_text="In plain words, e.g. Card expired.")
    reason_category = serializers.CharField(help_text="The dashboard's category.")
    attempt_count = serializers.IntegerField()
    next_retry_at = serializers.CharField(allow_null=True)
    failed_at = serializers.CharField()
    status = serializers.ChoiceField(choices=["open", "recovered"])
    recovered_at = serializers.CharField(allow_null=True)
    recovered_by = serializers.CharField(allow_null=True, help_text="payment or agent_action.")
    recovered_via = serializers.CharField(allow_null=True)
    recovery_action_id = serializers.CharField(allow_null=True)
    time_to_recover_seconds = serializers.IntegerField(allow_null=True)
    consecutive_count = serializers.IntegerField()
    suspension_warning_sent_at = serializers.CharField(allow_null=True)
    suspension_note = serializers.CharField()
    csm_outreach = OutreachSerializer()
    source = serializers.CharField()  # type: ignore[assignment]


class CustomerFailuresApi(APIView):
    class OutputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "CustomerFailures"

        class SummarySerializer(serializers.Serializer):
            class Meta:
                ref_name = "FailuresSummary"

            total = serializers.IntegerField()
            open = serializers.IntegerField()
            recovered = serializers.IntegerField()
            recovered_after_agent_action = serializers.IntegerField()
            recovery_rate_pct = serializers.IntegerField(allow_null=True)
            avg_time_to_recover_seconds = serializers.IntegerField(allow_null=True)
            consecutive_failures = serializers.IntegerField()
            suspension_warning = serializers.BooleanField()
            latest_open_failure_id = serializers.IntegerField(allow_null=True)

        customer_id = serializers.CharField()
        summary = SummarySerializer()
        items = FailureSerializer(many=True)

    @extend_schema(
        summary="A customer's payment failures: reason, attempts, recovery, escalation",
        responses={200: OutputSerializer, **customer_errors(401, 404)},
    )
    def get(self, request: Request, customer_id: str) -> Response:
        context = billing_reader(request, customer_id)
        data = customer_failures(workspace=context.workspace, customer_id=customer_id)
        return Response(self.OutputSerializer(data).data)


# --- playbook ---------------------------------------------------------------------------------


class PlaybookMessageApi(APIView):
    class InputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "PlaybookQuery"

        variant = serializers.ChoiceField(
            choices=["approved", "denied"], required=False, help_text="For scenario refund."
        )
        invoice_id = serializers.RegexField(r"^[A-Za-z0-9_\-]{1,255}$", required=False)
        charge_id = serializers.RegexField(r"^[A-Za-z0-9_\-]{1,255}$", required=False)
        reason = serializers.CharField(
            required=False, max_length=300, help_text="refund_denied: why, in the customer's words."
        )
        alternative = serializers.CharField(
            required=False, max_length=300, help_text="refund_denied: what can be offered instead."
        )
        if_ready = serializers.BooleanField(
            required=False,
            default=False,
            help_text="true: when the data the message needs is not there yet, answer 200 with "
            "ready=false and what is missing instead of 422 (the panel's investigation card "
            "asks before the action that fills the message).",
        )

    class NotReadySerializer(serializers.Serializer):
        class Meta:
            ref_name = "PlaybookMessageNotReady"

        class MissingSerializer(serializers.Serializer):
            class Meta:
                ref_name = "PlaybookMessageMissing"

            code = serializers.CharField()
            message = serializers.CharField()

        customer_id = serializers.CharField()
        scenario = serializers.CharField()
        ready = serializers.BooleanField()
        missing = MissingSerializer()

    class OutputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "PlaybookMessage"

        customer_id = serializers.CharField()
        scenario = serializers.CharField()
        variant = serializers.CharField(allow_blank=True)
        title = serializers.CharField()
        message = serializers.CharField(help_text="Ready to paste or post as a public reply.")
        source = serializers.ChoiceField(  # type: ignore[assignment]
            choices=["workspace", "default"],
            help_text="workspace: the admin's wording; default: the brief's.",
        )
        ready = serializers.BooleanField(default=True, help_text="Always true here.")
        template = serializers.CharField()
        data = serializers.DictField(child=serializers.CharField())  # type: ignore[assignment]
        related = serializers.JSONField()

    @extend_schema(
        summary="The playbook's customer message for a scenario, filled from this customer's data",
        description="Scenarios: charged_twice, payment_failed, plan_change, refund_approved, "
        "refund_denied (or refund with variant), overcharge, tax_invoice. A scenario without "
        "the data it needs is 422 with a code naming what is missing.",
        parameters=[
            OpenApiParameter("variant", str, description="refund: approved (default) or denied."),
            OpenApiParameter(
                "invoice_id", str, description="payment_failed, overcharge, tax_invoice."
            ),
            OpenApiParameter("charge_id", str, description="charged_twice, refund_denied."),
            OpenApiParameter("reason", str, description="refund_denied: the reason to give."),
            OpenApiParameter("alternative", str, description="refund_denied: what to offer."),
            OpenApiParameter(
                "if_ready", bool, description="true: 200 with ready=false instead of 422."
            ),
        ],
        responses={
            200: PolymorphicProxySerializer(
                component_name="PlaybookMessageAnswer",
                serializers=[OutputSerializer, NotReadySerializer],
                resource_type_field_name=None,
            ),
            **customer_errors(400, 401, 404),
            422: OpenApiResponse(
                ErrorSerializer, description="The customer's data lacks what the message needs."
            ),
        },
    )
    def get(self, request: Request, customer_id: str, scenario: str) -> Response:
        context = billing_reader(request, customer_id)
        query = self.InputSerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        params = dict(query.validated_data)
        variant = params.pop("variant", "")
        if_ready = params.pop("if_ready", False)
        try:
            data = playbook_message(
                workspace=context.workspace,
                customer_id=customer_id,
                scenario=scenario,
                variant=variant,
                params=params,
            )
        except PreconditionFailed as exc:
            if not if_ready:
                raise
            pending = {
                "customer_id": customer_id,
                "scenario": scenario,
                "ready": False,
                "missing": {"code": exc.code, "message": exc.message},
            }
            return Response(self.NotReadySerializer(pending).data)
        return Response(self.OutputSerializer({**data, "ready": True}).data)


# --- tax --------------------------------------------------------------------------------------


class CustomerTaxApi(APIView):
    class OutputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "CustomerTaxDetails"

        class TaxIdSerializer(serializers.Serializer):
            class Meta:
                ref_name = "TaxDetailsTaxId"

            id = serializers.CharField(allow_null=True)
            type = serializers.CharField(allow_null=True)
            value = serializers.CharField(allow_null=True)
            label = serializers.CharField(allow_null=True)  # type: ignore[assignment]

        class InvoiceSerializer(serializers.Serializer):
            class Meta:
                ref_name = "TaxDetailsInvoice"

            id = serializers.CharField()
            number = serializers.CharField(allow_blank=True)
            status = serializers.CharField()
            period = serializers.CharField()
            total = MoneySerializer()
            tax = MoneySerializer()
            hosted_invoice_url = serializers.CharField(allow_null=True)
            invoice_pdf = serializers.CharField(allow_null=True)

        class TypeSerializer(serializers.Serializer):
            class Meta:
                ref_name = "TaxIdType"

            type = serializers.CharField()
            label = serializers.CharField()  # type: ignore[assignment]
            example = serializers.CharField()

        customer_id = serializers.CharField()
        name = serializers.CharField(allow_blank=True)
        email = serializers.CharField(allow_blank=True)
        tax_exempt = serializers.CharField(help_text="none, exempt or reverse.")
        tax_ids = TaxIdSerializer(many=True)
        address = serializers.DictField(child=serializers.CharField(allow_blank=True))
        address_display = serializers.CharField(allow_blank=True)

        class JurisdictionSerializer(serializers.Serializer):
            class Meta:
                ref_name = "TaxDetailsJurisdiction"

            country = serializers.CharField(
                allow_blank=True, help_text="ISO country of the billing address (else the rate)."
            )
            state = serializers.CharField(allow_blank=True)
            tax_rates = serializers.ListField(
                child=serializers.DictField(),
                help_text="name, percentage, country, state, inclusive, display (e.g. VAT 19%).",
            )
            treatment = serializers.CharField(help_text="Taxed, Tax exempt or Reverse charge.")

        missing = serializers.ListField(
            child=serializers.CharField(),
            help_text="What a tax invoice still lacks: line1, city, postal_code, country, tax_id.",
        )
        missing_labels = serializers.ListField(child=serializers.CharField())
        missing_display = serializers.CharField(
            allow_blank=True, help_text="e.g. Missing: street address, postal code and tax ID."
        )
        jurisdiction = JurisdictionSerializer()
        invoices = InvoiceSerializer(many=True)
        supported_tax_id_types = TypeSerializer(many=True)

    @extend_schema(
        summary="Tax ids and billing address for a tax invoice (correct them via send_tax_invoice)",
        responses={200: OutputSerializer, **customer_errors(401, 404)},
    )
    def get(self, request: Request, customer_id: str) -> Response:
        context = billing_reader(request, customer_id)
        data = customer_tax_details(workspace=context.workspace, customer_id=customer_id)
        return Response(self.OutputSerializer(data).data)


# --- refund eligibility -----------------------------------------------------------------------


class RefundEligibilityApi(APIView):
    class OutputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "RefundEligibility"

        class ChargeSerializer(serializers.Serializer):
            class Meta:
                ref_name = "RefundEligibilityCharge"

            charge_id = serializers.CharField()
            date = serializers.CharField()
            date_display = serializers.CharField()
            amount = MoneySerializer()
            refunded = MoneySerializer()
            refundable = MoneySerializer()
            invoice_number = serializers.CharField(allow_blank=True)
            method = serializers.CharField(allow_blank=True)
            description = serializers.CharField(allow_blank=True)
            eligible = serializers.BooleanField()
            days_left = serializers.IntegerField()
            window_display = serializers.CharField(allow_blank=True)
            reason = serializers.CharField(allow_blank=True, help_text="Why not, in words.")

        class PatternSerializer(serializers.Serializer):
            class Meta:
                ref_name = "RefundPattern"

            refunds = serializers.IntegerField()
            threshold = serializers.IntegerField()
            days = serializers.IntegerField()
            reached = serializers.BooleanField()
            display = serializers.CharField()

        customer_id = serializers.CharField()
        window_days = serializers.IntegerField()
        charges = ChargeSerializer(many=True)
        pattern = PatternSerializer()
        eligible = serializers.BooleanField()
        summary = serializers.CharField()
        action = SuggestedActionSerializer(allow_null=True)
        denied_charge_id = serializers.CharField(
            allow_null=True, help_text="No payment is eligible: the one to explain the policy for."
        )

    @extend_schema(
        summary="Refund eligibility: each recent payment's refundable amount and refund window, "
        "and the refund pattern",
        responses={200: OutputSerializer, **customer_errors(401, 404)},
    )
    def get(self, request: Request, customer_id: str) -> Response:
        context = billing_reader(request, customer_id)
        workspace = context.workspace
        data = refund_eligibility(
            workspace=workspace,
            customer_id=customer_id,
            now=billing_now(workspace),
            refundable_of=lambda charge: refundable(workspace, charge),
            refunds_in_window=refund_history(
                workspace=workspace, customer_id=customer_id
            ).refunds_in_pattern_window,
        )
        return Response(self.OutputSerializer(data).data)


# --- plan change ------------------------------------------------------------------------------


class PlanChangeOptionsApi(APIView):
    class OutputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "PlanChangeOptions"

        class FollowUpSerializer(serializers.Serializer):
            class Meta:
                ref_name = "OnboardingFollowUp"

            message = serializers.CharField(help_text="For the customer, after the upgrade.")
            note = serializers.CharField(help_text="For the team: the onboarding call to book.")

        class PlanSerializer(serializers.Serializer):
            class Meta:
                ref_name = "PlanChangePlan"

            id = serializers.CharField()
            name = serializers.CharField()
            amount = MoneySerializer()
            unit_amount = MoneySerializer()
            quantity = serializers.IntegerField()
            interval = serializers.CharField()
            interval_count = serializers.IntegerField()
            display = serializers.CharField()
            current = serializers.BooleanField()
            description = serializers.CharField(allow_blank=True)
            features = serializers.ListField(child=serializers.CharField())
            direction = serializers.CharField(allow_null=True, required=False)
            difference = serializers.CharField(allow_null=True, required=False)
            effect = serializers.CharField(required=False)
            follow_up = serializers.DictField(allow_null=True, required=False)

        class ChangeSerializer(serializers.Serializer):
            class Meta:
                ref_name = "PlanChangeLatest"

            action_id = serializers.CharField()
            from_plan = serializers.CharField()
            to_plan = serializers.CharField()
            direction = serializers.CharField()
            effective_date = serializers.CharField(allow_null=True)
            changed_at = serializers.CharField(allow_null=True)
            follow_up = serializers.DictField(allow_null=True)

        customer_id = serializers.CharField()
        subscription_id = serializers.CharField(allow_null=True)
        quantity = serializers.IntegerField()
        current = PlanSerializer(allow_null=True)
        options = PlanSerializer(many=True)
        latest_change = ChangeSerializer(allow_null=True)

    @extend_schema(
        summary="Plan change: current plan vs the options, what each includes, the latest change",
        responses={200: OutputSerializer, **customer_errors(401, 404)},
    )
    def get(self, request: Request, customer_id: str) -> Response:
        context = billing_reader(request, customer_id)
        data = plan_change_options(workspace=context.workspace, customer_id=customer_id)
        return Response(self.OutputSerializer(data).data)


urlpatterns = [
    re_path(
        rf"^customers/{CUSTOMER_ID}/invoices/{INVOICE_ID}/breakdown/$",
        InvoiceBreakdownApi.as_view(),
        name="api-invoice-breakdown",
    ),
    re_path(
        rf"^customers/{CUSTOMER_ID}/duplicates/$",
        CustomerDuplicatesApi.as_view(),
        name="api-customer-duplicates",
    ),
    re_path(
        rf"^customers/{CUSTOMER_ID}/failures/$",
        CustomerFailuresApi.as_view(),
        name="api-customer-failures",
    ),
    re_path(
        rf"^customers/{CUSTOMER_ID}/playbook/{SCENARIO}/$",
        PlaybookMessageApi.as_view(),
        name="api-customer-playbook",
    ),
    re_path(rf"^customers/{CUSTOMER_ID}/tax/$", CustomerTaxApi.as_view(), name="api-customer-tax"),
    re_path(
        rf"^customers/{CUSTOMER_ID}/refund-eligibility/$",
        RefundEligibilityApi.as_view(),
        name="api-customer-refund-eligibility",
    ),
    re_path(
        rf"^customers/{CUSTOMER_ID}/plan-change/$",
        PlanChangeOptionsApi.as_view(),
        name="api-customer-plan-change",
    ),
]
