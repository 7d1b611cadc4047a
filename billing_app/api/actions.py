"""API views: billing actions (submit, audit trail) and the plan-change preview.

``POST actions/`` answers ``201`` the first time a request is made and ``200``
(with the header ``Idempotent-Replayed: true``) with the same body when the same
``idempotency_key`` comes again from the same agent with the same request; another
request under a used key is ``409 idempotency_key_reused``, and a key another agent
used is ``409 idempotency_key_owned_by_another_agent`` (never a replay).

An action whose provider call was sent but not answered (timeout, reset, 5xx) is
``202`` with ``status: "outcome_unknown"``: Billing Desk is confirming it with
Stripe and settles it by reconciliation. While it is open, the same money action on
the same charge, subscription or balance under a new key is ``409
action_outcome_unknown`` (``details.action_id`` names the open action).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.urls import path
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_field,
    extend_schema_serializer,
    inline_serializer,
)
from rest_framework import serializers, status
from rest_framework.pagination import CursorPagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from ..catalog import ActionKind, Role
from ..errors import ValidationFailed
from ..models import ApprovalRequest, BillingAction
from ..money import Money
from ..selectors.actions import action_list
from ..services.actions import action_dry_run, action_submit, plan_change_preview, to_json
from .customers import billing_reader, request_agent
from .schema import MoneySerializer, error_responses

# The error docs of the action and approval endpoints (``api.approvals`` imports them).
ERROR_RESPONSES = error_responses(
    400,
    401,
    403,
    404,
    409,
    422,
    s403="``not_permitted`` (the attempt is recorded) or not an approver here.",
    s404="No such customer, charge, invoice, subscription or request in this workspace.",
)


@extend_schema_serializer(component_name="ActionDecision")
class DecisionSerializer(serializers.Serializer):
    outcome = serializers.ChoiceField(
        choices=BillingAction.Decision.choices,
        help_text="allow: executed now; approval: escalated; deny: not permitted.",
    )
    reason = serializers.CharField()
    approver_roles = serializers.ListField(child=serializers.CharField())


@extend_schema_serializer(component_name="ActionApprovalSummary")
class ApprovalSummarySerializer(serializers.Serializer):
    id = serializers.IntegerField()
    status = serializers.CharField()
    required_roles = serializers.ListField(child=serializers.CharField())
    reason = serializers.CharField()
    expires_at = serializers.DateTimeField()
    decided_by = serializers.CharField(allow_null=True)
    decided_role = serializers.CharField()
    decided_at = serializers.DateTimeField(allow_null=True)
    comment = serializers.CharField()


@extend_schema_serializer(component_name="ActionFailure")
class ActionErrorSerializer(serializers.Serializer):
    code = serializers.CharField()
    message = serializers.CharField()


def user_display_name(user: Any) -> str | None:
    if user is None:
        return None
    return user.get_full_name() or user.get_username()


def _approval(action: BillingAction) -> ApprovalRequest | None:
    try:
        return action.approval
    except ApprovalRequest.DoesNotExist:
        return None


@extend_schema_serializer(component_name="BillingAction")
class ActionSerializer(serializers.Serializer):
    """One billing action as the panel and the audit trail show it."""

    id = serializers.UUIDField()
    reference = serializers.CharField(
        help_text="The short reference notes and the panel quote (BD- and the id's start)."
    )
    kind = serializers.CharField()
    status = serializers.CharField()
    customer_id = serializers.CharField()
    ticket_id = serializers.CharField()
    params = serializers.JSONField()
    amount = serializers.SerializerMethodField()
    result = serializers.JSONField()
    customer_message = serializers.CharField()
    decision = serializers.SerializerMethodField()
    approval = serializers.SerializerMethodField()
    error = serializers.SerializerMethodField()
    actor = serializers.SerializerMethodField()
    actor_role = serializers.CharField()
    approved_by = serializers.SerializerMethodField()
    provider_object_id = serializers.CharField()
    created_at = serializers.DateTimeField()
    completed_at = serializers.DateTimeField(allow_null=True)
    handling_started_at = serializers.DateTimeField(
        allow_null=True, help_text="When the agent opened the panel on the ticket, if known."
    )
    duration_ms = serializers.IntegerField(allow_null=True)
    provider_ms = serializers.IntegerField(allow_null=True)

    @extend_schema_field(MoneySerializer(allow_null=True))
    def get_amount(self, action: BillingAction) -> dict[str, Any] | None:
        if action.amount is None or not action.currency:
            return None
        return Money(action.amount, action.currency).to_dict()

    @extend_schema_field(DecisionSerializer)
    def get_decision(self, action: BillingAction) -> dict[str, Any]:
        approval = _approval(action)
        return {
            "outcome": action.decision,
            "reason": action.reason_text,
            "approver_roles": list(approval.required_roles) if approval else [],
        }

    @extend_schema_field(ApprovalSummarySerializer(allow_null=True))
    def get_approval(self, action: BillingAction) -> dict[str, Any] | None:
        approval = _approval(action)
        if approval is None:
            return None
        return {
            "id": approval.pk,
            "status": approval.status,
            "required_roles": list(approval.required_roles),
            "reason": approval.reason_text,
            "expires_at": approval.expires_at.isoformat(),
            "decided_by": user_display_name(approval.decided_by),
            "decided_role": approval.decided_role,
            "decided_at": approval.decided_at.isoformat() if approval.decided_at else None,
            "comment": approval.comment,
        }

    @extend_schema_field(ActionErrorSerializer(allow_null=True))
    def get_error(self, action: BillingAction) -> dict[str, str] | None:
        if not action.error_code:
            return None
        return {"code": action.error_code, "message": action.error_text}

    @extend_schema_field(serializers.DictField())
    def get_actor(self, action: BillingAction) -> dict[str, Any]:
        return {
            "id": action.actor_id,
            "name": user_display_name(action.actor),
            "role": action.actor_role,
        }

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_approved_by(self, action: BillingAction) -> str | None:
        return user_display_name(action.approved_by)


@extend_schema_field(OpenApiTypes.DATETIME)
class HandlingStartField(serializers.Field):
    """An ISO 8601 time read leniently: a value it cannot read is ``None``, not a 400.

    It only measures the agent's handling time; a bad clock value must never refuse a refund.
    """

    def to_internal_value(self, data: Any) -> datetime | None:
        if not isinstance(data, str) or len(data) > 64:
            return None
        try:
            return parse_datetime(data.strip())
        except ValueError:
            return None

    def to_representation(self, value: Any) -> Any:
        return value.isoformat() if isinstance(value, datetime) else value


class ActionPagination(CursorPagination):
    page_size = 50
    max_page_size = 200
    page_size_query_param = "limit"
    ordering = ("-created_at", "-id")


class ActionsApi(APIView):
    """``POST``: submit a billing action (executed now, escalated, or refused with 403).
    ``GET``: the workspace's audit trail, every attempt, newest first, paged by cursor.
    """

    @extend_schema_serializer(component_name="ActionCreateInput")
    class InputSerializer(serializers.Serializer):
        kind = serializers.CharField(
            max_length=32, help_text=" | ".join(k.value for k in ActionKind)
        )
        customer_id = serializers.CharField(max_length=255)
        # Blank where the helpdesk location has no ticket yet (e.g. a new-ticket sidebar).
        ticket_id = serializers.CharField(
            max_length=64, allow_blank=True, required=False, default=""
        )
        params = serializers.DictField(required=False, default=dict)
        idempotency_key = serializers.CharField(max_length=255)
        handling_started_at = HandlingStartField(
            required=False,
            allow_null=True,
            default=None,
            help_text="When the agent opened the panel on this ticket (ISO 8601; the panel "
            "sends `now` from `GET me/`). Kept for handling time when it is in the past and "
            "at most 24 hours old; otherwise, or when unreadable, ignored — never an error.",
        )

    class FilterSerializer(serializers.Serializer):
        customer_id = serializers.CharField(required=False, default="", max_length=255)
        status = serializers.ChoiceField(
            choices=BillingAction.Status.choices, required=False, default=""
        )
        kind = serializers.ChoiceField(
            choices=[k.value for k in ActionKind], required=False, default=""
        )
        ticket_id = serializers.CharField(required=False, default="", max_length=64)

    OutputSerializer = ActionSerializer

    @extend_schema(
        operation_id="actions_create",
        request=InputSerializer,
        responses={
            201: OutputSerializer,
            200: OutputSerializer,
            202: OpenApiResponse(
                OutputSerializer,
                description="Sent to Stripe, not confirmed yet: `status` is `outcome_unknown`; "
                "reconciliation settles it. Do not resubmit it under a new key.",
            ),
            **ERROR_RESPONSES,
        },
        description=(
            "201 on the first submission; 200 with `Idempotent-Replayed: true` when the same "
            "idempotency_key is sent again with the same request (the first answer). "
            "403 `not_permitted` (the attempt is recorded) when the role may neither do nor "
            "request it; 409 `idempotency_key_reused` for another request under a used key, "
            "`idempotency_key_owned_by_another_agent` for a key another agent used, and "
            "`action_outcome_unknown` while an earlier action on the same charge, subscription "
            "or balance is being confirmed with Stripe; 202 `outcome_unknown` when Stripe did "
            "not confirm in time (do not retry under a new key)."
        ),
    )
    def post(self, request: Request) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        action = action_submit(context=request_agent(request), **data.validated_data)
        replayed = getattr(action, "replayed", False)
        http_status: int
        if action.status == BillingAction.Status.OUTCOME_UNKNOWN:
            http_status = status.HTTP_202_ACCEPTED
        else:
            http_status = status.HTTP_200_OK if replayed else status.HTTP_201_CREATED
        response = Response(self.OutputSerializer(action).data, status=http_status)
        if replayed:
            response["Idempotent-Replayed"] = "true"
        return response

    @extend_schema(
        operation_id="actions_list",
        parameters=[
            OpenApiParameter("customer_id", str),
            OpenApiParameter("status", str, enum=BillingAction.Status.values),
            OpenApiParameter("kind", str, enum=[k.value for k in ActionKind]),
            OpenApiParameter("ticket_id", str),
            OpenApiParameter("cursor", str),
            OpenApiParameter("limit", int),
        ],
        responses={
            200: inline_serializer(
                name="BillingActionPage",
                fields={
                    "next": serializers.URLField(allow_null=True),
                    "previous": serializers.URLField(allow_null=True),
                    "results": ActionSerializer(many=True),
                },
            ),
            **ERROR_RESPONSES,
        },
    )
    def get(self, request: Request) -> Response:
        context = billing_reader(request)
        filters = self.FilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        actions = action_list(workspace=context.workspace, **filters.validated_data)
        paginator = ActionPagination()
        page = paginator.paginate_queryset(actions, request, view=self)
        return paginator.get_paginated_response(self.OutputSerializer(page, many=True).data)


@extend_schema_serializer(component_name="ActionApprover")
class ApproverSerializer(serializers.Serializer):
    role = serializers.ChoiceField(choices=[r.value for r in Role])
    label = serializers.CharField(  # type: ignore[assignment]  # DRF's Field.label is a str
        help_text="The role as people read it, e.g. Manager."
    )


class ActionDryRunApi(APIView):
    """What ``POST actions/`` would do with this request now, without doing it.

    The same decision path as the execution (``services.actions.decision.action_decide``):
    parameters, preconditions (refund window, refundable amount counting refunds in
    flight, seats in use, subscription state...), the refund pattern, exchange rates (no
    rate: approval, fail safe) and the role's cell and permission. Nothing is written and
    the provider is not called.
    """

    @extend_schema_serializer(component_name="ActionDryRunInput")
    class InputSerializer(serializers.Serializer):
        kind = serializers.CharField(
            max_length=32, help_text=" | ".join(k.value for k in ActionKind)
        )
        customer_id = serializers.CharField(max_length=255)
        ticket_id = serializers.CharField(
            max_length=64, allow_blank=True, required=False, default=""
        )
        params = serializers.DictField(required=False, default=dict)
        idempotency_key = serializers.CharField(
            max_length=255, required=False, help_text="Accepted and ignored."
        )
        handling_started_at = HandlingStartField(
            required=False, allow_null=True, help_text="Accepted and ignored."
        )

    @extend_schema_serializer(component_name="ActionDryRun")
    class OutputSerializer(serializers.Serializer):
        outcome = serializers.ChoiceField(
            choices=["execute", "approval", "refused"],
            help_text="execute: `POST actions/` answers `succeeded` (unless the provider then "
            "fails); approval: `pending_approval`, to `approvers`; refused: the execution "
            "answers `status` with error `code`.",
        )
        code = serializers.CharField(
            help_text="Why, as a stable code. execute/approval: the policy's reason "
            "(`allowed`, `within_limit`, `approval_required`, `above_limit`, `refund_pattern`, "
            "`no_exchange_rate`, `not_customer_requested`, `size_missing`); refused: the "
            "execution's error code (`not_permitted`, `refund_window_passed`, "
            "`exceeds_refundable`, `below_seats_used`, `action_outcome_unknown`...)."
        )
        headline = serializers.CharField(
            help_text="For the agent: `Happens now`, `Goes to a Manager for approval`, "
            "`Not possible`."
        )
        reason = serializers.CharField(help_text="Why, in words.")
        message = serializers.CharField(
            help_text="One sentence for the agent: headline and reason."
        )
        approvers = ApproverSerializer(many=True, help_text="Who approves (approval only).")
        status = serializers.IntegerField(
            allow_null=True, help_text="refused: the HTTP status the execution answers."
        )
        details = serializers.JSONField(
            help_text="refused: the execution error's details (e.g. `refundable`, "
            "`seats_used`; `rule` for a matrix refusal)."
        )

    @extend_schema(
        operation_id="actions_dry_run",
        request=InputSerializer,
        responses={
            200: OutputSerializer,
            **error_responses(
                400,
                401,
                404,
                s400="The body itself is not valid (no `kind`, `params` not an object) or "
                "the kind is unknown; a request the execution would refuse is a 200 `refused`.",
                s404="`customer_not_found`: no such customer in this workspace.",
            ),
        },
        description=(
            "Takes the body of `POST actions/` (`idempotency_key` optional and ignored) and "
            "answers what that submission would do now: `execute`, `approval` (and by whom) or "
            "`refused` (and why) — the very decision the execution takes, computed by the same "
            "function, without writing anything or calling the billing provider. Parameters "
            "the execution rejects (400), an open outcome on the same object (409), unmet "
            "preconditions (422), objects not this customer's (404) and the matrix (403) are "
            "`refused` with the execution's `code` and `status`."
        ),
    )
    def post(self, request: Request) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        body = data.validated_data
        answer = action_dry_run(
            context=request_agent(request),
            kind=body["kind"],
            customer_id=body["customer_id"],
            params=body["params"],
        )
        return Response(
            self.OutputSerializer(
                {
                    "outcome": answer.outcome,
                    "code": answer.code,
                    "headline": answer.headline,
                    "reason": answer.reason,
                    "message": answer.message,
                    "approvers": [
                        {"role": role.value, "label": role.label} for role in answer.approver_roles
                    ],
                    "status": answer.status,
                    "details": answer.details,
                }
            ).data
        )


@extend_schema_serializer(component_name="ProrationLine")
class ProrationLineSerializer(serializers.Serializer):
    description = serializers.CharField()
    amount = MoneySerializer()
    period_start = serializers.DateTimeField(allow_null=True)
    period_end = serializers.DateTimeField(allow_null=True)
    proration = serializers.BooleanField()


class PlanChangePreviewApi(APIView):
    """What a plan change will cost: the change then invoices exactly these numbers.

    Pass ``proration_date`` back in the ``change_plan`` action's params to pin it.
    """

    @extend_schema_serializer(component_name="PlanChangePreviewInput")
    class InputSerializer(serializers.Serializer):
        subscription_id = serializers.CharField(max_length=255)
        price_id = serializers.CharField(max_length=255)

    @extend_schema_serializer(component_name="PlanChangePreview")
    class OutputSerializer(serializers.Serializer):
        subscription_id = serializers.CharField()
        current_price_id = serializers.CharField()
        new_price_id = serializers.CharField()
        direction = serializers.ChoiceField(choices=["upgrade", "downgrade"])
        lines = ProrationLineSerializer(many=True)
        amount_due_now = MoneySerializer()
        new_recurring_amount = MoneySerializer()
        effective_date = serializers.DateTimeField()
        proration_date = serializers.DateTimeField(allow_null=True)

    @extend_schema(request=InputSerializer, responses={200: OutputSerializer, **ERROR_RESPONSES})
    def post(self, request: Request, customer_id: str) -> Response:
        data = self.InputSerializer(data=request.data)
        if not data.is_valid():
            raise ValidationFailed(
                _("The request is not valid."), code="invalid", details=data.errors
            )
        preview = plan_change_preview(
            context=request_agent(request), customer_id=customer_id, **data.validated_data
        )
        return Response(self.OutputSerializer(to_json(preview)).data)


urlpatterns = [
    path("actions/", ActionsApi.as_view(), name="api-actions"),
    path("actions/dry-run/", ActionDryRunApi.as_view(), name="api-actions-dry-run"),
    path(
        "customers/<str:customer_id>/plan-change/preview/",
        PlanChangePreviewApi.as_view(),
        name="api-plan-change-preview",
    ),
]
