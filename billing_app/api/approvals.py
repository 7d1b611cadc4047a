"""API views: the approvals queue for Managers in the panel (VP / Legal use ``/approvals/``),
the decided history, and the requester's own requests with their outcomes.

Each request carries its action's details in words (``selectors.action_details``),
the customer as an approver weighs it (name, plan, MRR) and whether the caller may
decide it (``policy.can_approve``: their role, never their own request).
"""

from __future__ import annotations

from typing import Any

from django.urls import path
from django.utils.translation import gettext as _
from drf_spectacular.utils import (
    OpenApiParameter,
    extend_schema,
    extend_schema_field,
    extend_schema_serializer,
    inline_serializer,
)
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from ..agent_context import AgentContext
from ..errors import NotPermitted
from ..models import ApprovalRequest
from ..policy import Allow, can_approve
from ..selectors.action_details import action_details, role_words
from ..selectors.approvals import approval_requests_of, approvals_decided, customer_summaries
from ..selectors.two_factor import session_second_factor_missing
from ..services.approvals import APPROVE, DENY, approval_decide, approval_list_for
from ..services.two_factor import SecondFactorRequired
from .action_details import ActionDetailSerializer, DetailsSerializer
from .actions import ERROR_RESPONSES, ActionSerializer, user_display_name
from .customers import billing_reader, request_agent
from .schema import MoneySerializer, error_responses

# The decide endpoints' errors: ERROR_RESPONSES, with the second factor in the 403.
DECIDE_ERRORS = {
    **ERROR_RESPONSES,
    **error_responses(
        403,
        s403=(
            "``not_permitted``: not an approver of this request here; "
            "``second_factor_required``: a Django password session (no app session token) "
            "of an approver or staff member that has not passed its second factor."
        ),
    ),
}


class ApprovalCustomerSerializer(serializers.Serializer):
    class Meta:
        ref_name = "ApprovalCustomer"

    id = serializers.CharField()
    name = serializers.CharField()
    email = serializers.CharField(allow_blank=True)
    plan = serializers.CharField(
        allow_blank=True, help_text="Plan and price, e.g. Pro ($2,400/month)."
    )
    mrr = MoneySerializer(allow_null=True)


@extend_schema_serializer(component_name="ApprovalRequest")
class ApprovalSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    status = serializers.CharField()
    required_roles = serializers.ListField(child=serializers.CharField())
    reason = serializers.CharField(source="reason_text")  # in the reader's language
    expires_at = serializers.DateTimeField()
    created_at = serializers.DateTimeField()
    decided_by = serializers.SerializerMethodField()
    decided_role = serializers.CharField()
    decided_at = serializers.DateTimeField(allow_null=True)
    comment = serializers.CharField()
    action = ActionSerializer()
    required_role_labels = serializers.SerializerMethodField()
    customer = serializers.SerializerMethodField()
    details = serializers.SerializerMethodField()
    can_decide = serializers.SerializerMethodField()

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_decided_by(self, approval: ApprovalRequest) -> str | None:
        return user_display_name(approval.decided_by)

    @extend_schema_field(serializers.CharField(help_text="e.g. VP Approver"))
    def get_required_role_labels(self, approval: ApprovalRequest) -> str:
        return role_words(approval.required_roles)

    @extend_schema_field(ApprovalCustomerSerializer(allow_null=True))
    def get_customer(self, approval: ApprovalRequest) -> dict[str, Any] | None:
        customers = self.context.get("customers") or {}
        return customers.get(approval.action.customer_id)

    @extend_schema_field(DetailsSerializer)
    def get_details(self, approval: ApprovalRequest) -> dict[str, Any]:
        return action_details(approval.action)

    @extend_schema_field(serializers.BooleanField())
    def get_can_decide(self, approval: ApprovalRequest) -> bool:
        agent: AgentContext | None = self.context.get("agent")
        if agent is None or approval.status != ApprovalRequest.Status.PENDING:
            return False
        verdict = can_approve(
            approver_id=agent.user.pk,
            approver_role=agent.role,
            requester_id=approval.action.actor_id,
            required_roles=approval.required_roles,
        )
        return isinstance(verdict, Allow)


def approval_context(agent: AgentContext, approvals: list[ApprovalRequest]) -> dict[str, Any]:
    """The serializer context: the caller, and the customers of these requests read once."""
    customers = customer_summaries(agent.workspace, {a.action.customer_id for a in approvals})
    return {"agent": agent, "customers": customers}


class ApprovalListApi(APIView):
    """What the calling agent may decide in this workspace (never their own requests)."""

    class FilterSerializer(serializers.Serializer):
        status = serializers.ChoiceField(
            choices=ApprovalRequest.Status.choices,
            required=False,
            default=ApprovalRequest.Status.PENDING,
        )

    OutputSerializer = ApprovalSerializer

    @extend_schema(
        parameters=[OpenApiParameter("status", str, enum=ApprovalRequest.Status.values)],
        responses={
            200: inline_serializer(
                name="ApprovalRequestList", fields={"results": ApprovalSerializer(many=True)}
            )
        },
    )
    def get(self, request: Request) -> Response:
        filters = self.FilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        context = request_agent(request)
        approvals = approval_list_for(
            user=context.user, workspace=context.workspace, status=filters.validated_data["status"]
        )
        serializer = self.OutputSerializer(
            approvals, many=True, context=approval_context(context, approvals)
        )
        return Response({"results": serializer.data})


class ApprovalDecidedApi(APIView):
    """What was decided in this workspace, latest first, a page at a time (``mine``: the
    caller's own decisions). For approvers only."""

    class FilterSerializer(serializers.Serializer):
        page = serializers.IntegerField(required=False, default=1, min_value=1, max_value=10_000)
        mine = serializers.BooleanField(required=False, default=False)

    OutputSerializer = ApprovalSerializer

    @extend_schema(
        parameters=[OpenApiParameter("page", int), OpenApiParameter("mine", bool)],
        responses={
            200: inline_serializer(
                name="ApprovalDecidedPage",
                fields={
                    "results": ApprovalSerializer(many=True),
                    "page": serializers.IntegerField(),
                    "has_next": serializers.BooleanField(),
                },
            ),
            **ERROR_RESPONSES,
        },
    )
    def get(self, request: Request) -> Response:
        filters = self.FilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        context = request_agent(request)
        if not context.may("approve_actions"):
            raise NotPermitted(
                _("Only approvers see the decided requests."), code="not_an_approver"
            )
        page = approvals_decided(
            workspace=context.workspace,
            decided_by=context.user if filters.validated_data["mine"] else None,
            page=filters.validated_data["page"],
        )
        serializer = self.OutputSerializer(
            page.items, many=True, context=approval_context(context, page.items)
        )
        return Response({"results": serializer.data, "page": page.page, "has_next": page.has_next})


class ApprovalRequestedApi(APIView):
    """The caller's own approval requests for one customer, newest first, each with its
    outcome in words and the customer message for the approved or denied request."""

    class FilterSerializer(serializers.Serializer):
        customer_id = serializers.CharField(max_length=255)

    OutputSerializer = ActionDetailSerializer

    @extend_schema(
        parameters=[OpenApiParameter("customer_id", str, required=True)],
        responses={
            200: inline_serializer(
                name="ApprovalRequestedList",
                fields={"results": ActionDetailSerializer(many=True)},
            ),
            **ERROR_RESPONSES,
        },
    )
    def get(self, request: Request) -> Response:
        filters = self.FilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        customer_id = filters.validated_data["customer_id"]
        context = billing_reader(request, customer_id)
        actions = approval_requests_of(
            workspace=context.workspace, user=context.user, customer_id=customer_id
        )
        return Response({"results": self.OutputSerializer(actions, many=True).data})


def session_second_factor_check(request: Request) -> None:
    """Refuse a decision from a Django password session that has not passed its second factor.

    The API authenticates app session tokens only (the helpdesk panel: a Zendesk-signed
    entry or a Freshdesk device-proven agent, ``docs/two-factor.md``). A call carrying no
    token but the cookie of an approver's or staff member's unverified sign-in is told
    why, as ``second_factor_required`` (403), rather than a bare 401; nothing is decided.
    """
    if request.auth is not None:
        return
    if session_second_factor_missing(request._request):
        raise SecondFactorRequired(
            _(
                "Approval decisions need a verified second factor. Sign in at "
                "/accounts/login/ with your authenticator code, then decide on /approvals/."
            )
        )


class _DecideApi(APIView):
    decision = ""

    def check_permissions(self, request: Request) -> None:
        session_second_factor_check(request)
        super().check_permissions(request)

    @extend_schema_serializer(component_name="ApprovalDecisionInput")
    class InputSerializer(serializers.Serializer):
        comment = serializers.CharField(
            max_length=2000, required=False, default="", allow_blank=True
        )

    OutputSerializer = ApprovalSerializer

    def _decide(self, request: Request, approval_id: int) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        context = request_agent(request)
        approval = approval_decide(
            approval_id=approval_id,
            user=context.user,
            workspace=context.workspace,
            role=context.role,
            decision=self.decision,
            comment=data.validated_data["comment"],
        )
        approval = ApprovalRequest.objects.select_related(
            "action", "action__actor", "action__approved_by", "action__installation", "decided_by"
        ).get(pk=approval.pk)
        return Response(
            self.OutputSerializer(approval, context=approval_context(context, [approval])).data
        )


class ApprovalApproveApi(_DecideApi):
    """Approve: the action executes at once, with the approver recorded as ``approved_by``."""

    decision = APPROVE

    @extend_schema(
        request=_DecideApi.InputSerializer,
        responses={200: _DecideApi.OutputSerializer, **DECIDE_ERRORS},
    )
    def post(self, request: Request, approval_id: int) -> Response:
        return self._decide(request, approval_id)


class ApprovalDenyApi(_DecideApi):
    """Deny with a comment (required: it is posted on the requester's ticket)."""

    decision = DENY

    @extend_schema(
        request=_DecideApi.InputSerializer,
        responses={200: _DecideApi.OutputSerializer, **DECIDE_ERRORS},
    )
    def post(self, request: Request, approval_id: int) -> Response:
        return self._decide(request, approval_id)


urlpatterns = [
    path("approvals/", ApprovalListApi.as_view(), name="api-approvals"),
    path("approvals/decided/", ApprovalDecidedApi.as_view(), name="api-approvals-decided"),
    path("approvals/requested/", ApprovalRequestedApi.as_view(), name="api-approvals-requested"),
    path(
        "approvals/<int:approval_id>/approve/",
        ApprovalApproveApi.as_view(),
        name="api-approval-approve",
    ),
    path("approvals/<int:approval_id>/deny/", ApprovalDenyApi.as_view(), name="api-approval-deny"),
]
