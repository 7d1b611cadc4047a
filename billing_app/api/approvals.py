"""API views: the approvals queue for Managers in the panel (VP / Legal use ``/approvals/``)."""

from __future__ import annotations

from django.urls import path
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

from ..models import ApprovalRequest
from ..services.approvals import APPROVE, DENY, approval_decide, approval_list_for
from .actions import ERROR_RESPONSES, ActionSerializer, user_display_name
from .customers import request_agent


@extend_schema_serializer(component_name="ApprovalRequest")
class ApprovalSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    status = serializers.CharField()
    required_roles = serializers.ListField(child=serializers.CharField())
    reason = serializers.CharField()
    expires_at = serializers.DateTimeField()
    created_at = serializers.DateTimeField()
    decided_by = serializers.SerializerMethodField()
    decided_role = serializers.CharField()
    decided_at = serializers.DateTimeField(allow_null=True)
    comment = serializers.CharField()
    action = ActionSerializer()

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_decided_by(self, approval: ApprovalRequest) -> str | None:
        return user_display_name(approval.decided_by)


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
        return Response({"results": self.OutputSerializer(approvals, many=True).data})


class _DecideApi(APIView):
    decision = ""

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
            "action", "action__actor", "action__approved_by", "decided_by"
        ).get(pk=approval.pk)
        return Response(self.OutputSerializer(approval).data)


class ApprovalApproveApi(_DecideApi):
    """Approve: the action executes at once, with the approver recorded as ``approved_by``."""

    decision = APPROVE

    @extend_schema(
        request=_DecideApi.InputSerializer,
        responses={200: _DecideApi.OutputSerializer, **ERROR_RESPONSES},
    )
    def post(self, request: Request, approval_id: int) -> Response:
        return self._decide(request, approval_id)


class ApprovalDenyApi(_DecideApi):
    """Deny with a comment (required: it is posted on the requester's ticket)."""

    decision = DENY

    @extend_schema(
        request=_DecideApi.InputSerializer,
        responses={200: _DecideApi.OutputSerializer, **ERROR_RESPONSES},
    )
    def post(self, request: Request, approval_id: int) -> Response:
        return self._decide(request, approval_id)


urlpatterns = [
    path("approvals/", ApprovalListApi.as_view(), name="api-approvals"),
    path(
        "approvals/<int:approval_id>/approve/",
        ApprovalApproveApi.as_view(),
        name="api-approval-approve",
    ),
    path("approvals/<int:approval_id>/deny/", ApprovalDenyApi.as_view(), name="api-approval-deny"),
]
