"""``GET /api/v1/me/`` — the agent, their workspace and role, and what that role may do."""

from __future__ import annotations

from django.urls import path
from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from ..selectors.agent import agent_capabilities
from .customers import request_agent
from .schema import error_responses


class MeApi(APIView):
    class OutputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "Me"

        agent = serializers.DictField()
        workspace = serializers.DictField()
        role = serializers.DictField()
        can_approve = serializers.BooleanField()
        actions = serializers.ListField(child=serializers.DictField())
        now = serializers.DateTimeField(
            help_text="The server's time when it answered. The panel records it as the moment "
            "it opened on the ticket and sends it back as `handling_started_at` with "
            "`POST actions/` (so the agent's own clock does not matter)."
        )

    @extend_schema(
        summary="The agent, workspace, role and the actions this role may take",
        responses={200: OutputSerializer, **error_responses(401)},
    )
    def get(self, request: Request) -> Response:
        data = agent_capabilities(context=request_agent(request))
        return Response(self.OutputSerializer({**data, "now": timezone.now()}).data)


urlpatterns = [path("me/", MeApi.as_view(), name="api-me")]
