"""API view: one action opened into its details (``GET actions/{id}/``).

The action as the audit trail shows it (``api.actions.ActionSerializer``) plus
``details``: what was asked or done in words, where it stands, the approval trail,
the note and the customer message (``selectors.action_details``).
"""

from __future__ import annotations

from typing import Any

from django.urls import path
from django.utils.translation import gettext as _
from drf_spectacular.utils import extend_schema, extend_schema_field, extend_schema_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from ..errors import NotFound
from ..models import BillingAction
from ..selectors.action_details import action_details
from ..selectors.actions import action_list
from .actions import ERROR_RESPONSES, ActionSerializer
from .customers import billing_reader


class LineSerializer(serializers.Serializer):
    class Meta:
        ref_name = "ActionLine"

    label = serializers.CharField()  # type: ignore[assignment]  # DRF's Field.label is a str
    text = serializers.CharField()


@extend_schema_serializer(component_name="ActionOutcome")
class OutcomeSerializer(serializers.Serializer):
    state = serializers.ChoiceField(
        choices=[
            "pending",
            "approved",
            "denied",
            "expired",
            "done",
            "failed",
            "confirming",
            "running",
            "not_permitted",
        ]
    )
    title = serializers.CharField(help_text="Where the action stands, in words.")


@extend_schema_serializer(component_name="ApprovalTrail")
class TrailSerializer(serializers.Serializer):
    requested_by = serializers.CharField()
    requested_role = serializers.CharField(help_text="Role label, e.g. Billing Specialist.")
    requested_at = serializers.DateTimeField()
    reason = serializers.CharField(help_text="Why it needed approval.")
    approver_roles = serializers.CharField(help_text="Who may decide, e.g. VP Approver.")
    expires_at = serializers.DateTimeField()
    status = serializers.CharField()
    status_label = serializers.CharField()
    decided_by = serializers.CharField(allow_null=True)
    decided_role = serializers.CharField()
    decided_at = serializers.DateTimeField(allow_null=True)
    comment = serializers.CharField(allow_blank=True)


class NoteSerializer(serializers.Serializer):
    class Meta:
        ref_name = "ActionNoteStatus"

    status = serializers.CharField()
    label = serializers.CharField()  # type: ignore[assignment]  # DRF's Field.label is a str


@extend_schema_serializer(component_name="ActionDetails")
class DetailsSerializer(serializers.Serializer):
    kind_label = serializers.CharField()
    status_label = serializers.CharField()
    outcome = OutcomeSerializer()
    lines = LineSerializer(many=True, help_text="What was asked (and done), in words.")
    trail = TrailSerializer(allow_null=True)
    provider_object_id = serializers.CharField(allow_blank=True)
    note = NoteSerializer()
    customer_message = serializers.CharField(allow_blank=True)
    message_title = serializers.CharField(allow_blank=True)
    ticket_url = serializers.CharField(allow_blank=True)


@extend_schema_serializer(component_name="BillingActionDetail")
class ActionDetailSerializer(ActionSerializer):
    details = serializers.SerializerMethodField()

    @extend_schema_field(DetailsSerializer)
    def get_details(self, action: BillingAction) -> dict[str, Any]:
        return action_details(action)


class ActionDetailApi(APIView):
    """One action of this workspace, with its details in words (the panel opens recent
    actions into it, and polls it after a 409 ``action_in_progress``)."""

    OutputSerializer = ActionDetailSerializer

    @extend_schema(responses={200: OutputSerializer, 404: ERROR_RESPONSES[404]})
    def get(self, request: Request, action_id: str) -> Response:
        action = (
            action_list(workspace=billing_reader(request).workspace)
            .select_related("installation", "approval__decided_by")
            .filter(pk=action_id)
            .first()
        )
        if action is None:
            raise NotFound(_("No such action in this workspace."), code="action_not_found")
        return Response(self.OutputSerializer(action).data)


urlpatterns = [
    path("actions/<uuid:action_id>/", ActionDetailApi.as_view(), name="api-action-detail"),
]
