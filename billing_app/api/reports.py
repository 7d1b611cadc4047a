"""``GET /api/v1/dashboard/`` and ``GET /api/v1/reports/monthly/`` (DESIGN.md sections 7, 11).

Authenticated with the panel's app session (Managers: ``approve_actions`` on
their workspace) or a Django session (staff and approvers, the web pages'
export links; ``?workspace=<slug>`` picks among their workspaces). A Django
session of an approver or staff member must have passed its second factor
(``second_factor_required``, 403, otherwise; issue 17). Who may see what is
decided in ``selectors.report_access``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.http import Http404
from django.urls import path
from django.utils.translation import gettext as _
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_serializer,
)
from rest_framework import exceptions, renderers, serializers
from rest_framework.authentication import SessionAuthentication
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from helpdesk_connectors.authentication import AppSessionAuthentication

from ..errors import ValidationFailed
from ..models import Workspace
from ..selectors.dashboard import dashboard_build, dashboard_default_month, report_default_month
from ..selectors.months import Month
from ..selectors.report import report_build, report_csv
from ..selectors.report_access import report_workspace_for_agent, report_workspace_for_user
from ..selectors.two_factor import session_second_factor_missing
from ..services.two_factor import SecondFactorRequired


class ReportCsvRenderer(renderers.BaseRenderer):
    """``?format=csv``: the report as ``section,metric,value,currency`` rows."""

    media_type = "text/csv"
    format = "csv"
    charset = "utf-8"

    def render(
        self,
        data: Any,
        accepted_media_type: str | None = None,
        renderer_context: Any = None,
    ) -> Any:
        return report_csv(data).encode("utf-8")


def _workspace(request: Request, slug: str | None) -> Workspace:
    context = request.auth
    if context is not None and hasattr(context, "workspace"):
        return report_workspace_for_agent(context=context, slug=slug)
    workspace, _many = report_workspace_for_user(user=request.user, slug=slug, require_choice=True)
    return workspace


class _ReportApiBase(APIView):
    authentication_classes = [AppSessionAuthentication, SessionAuthentication]

    def check_permissions(self, request: Request) -> None:
        # A Django-session caller (no app session token) who is an approver or staff
        # member must have passed the second factor in that session (issue 17).
        if request.auth is None and session_second_factor_missing(request._request):
            raise SecondFactorRequired(
                _(
                    "Reports need a verified second factor. Sign in at /accounts/login/ "
                    "with your authenticator code."
                )
            )
        super().check_permissions(request)

    class FilterSerializer(serializers.Serializer):
        month = serializers.CharField(required=False, max_length=20, help_text="YYYY-MM")
        workspace = serializers.SlugField(
            required=False, help_text="Django-session callers with several workspaces."
        )

    def _filters(
        self, request: Request, default: Callable[[Workspace], Month]
    ) -> tuple[Workspace, Month]:
        """The workspace and month asked for; without ``month``, ``default(workspace)``
        (derived from the workspace's billing clock, ``billing_app.clock``)."""
        filters = self.FilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        data = filters.validated_data
        month = Month.parse(data["month"]) if "month" in data else None
        workspace = _workspace(request, data.get("workspace"))
        return workspace, month or default(workspace)

    def perform_content_negotiation(self, request: Request, force: bool = False) -> Any:
        try:
            return super().perform_content_negotiation(request, force=force)
        except (exceptions.NotFound, Http404):
            raise ValidationFailed(
                _("format must be json or csv."),
                code="invalid_format",
                details={"format": ["json", "csv"]},
            ) from None

    def handle_exception(self, exc: Exception) -> Response:
        # Errors are always JSON, even when the caller asked for CSV.
        self.request.accepted_renderer = renderers.JSONRenderer()
        self.request.accepted_media_type = "application/json"
        return super().handle_exception(exc)


_PARAMETERS = [
    OpenApiParameter("month", str, description="YYYY-MM (UTC calendar month)"),
    OpenApiParameter("workspace", str, description="Workspace slug (Django-session callers)"),
]
_ERRORS = {
    400: OpenApiResponse(description="`invalid_month`, `invalid_format`, `workspace_required`"),
    401: OpenApiResponse(description="`not_authenticated`"),
    403: OpenApiResponse(
        description="`not_permitted`: not a Manager / approver of the workspace; "
        "`second_factor_required`: a Django session without its verified second factor"
    ),
    404: OpenApiResponse(description="`not_found`: a workspace the caller may not see"),
}


class DashboardApi(_ReportApiBase):
    """The billing support dashboard for one month (default: the billing clock's month)."""

    renderer_classes = [renderers.JSONRenderer]

    @extend_schema_serializer(component_name="Dashboard")
    class OutputSerializer(serializers.Serializer):
        workspace = serializers.DictField()
        month = serializers.CharField()
        month_label = serializers.CharField()
        period = serializers.DictField()
        generated_at = serializers.CharField()
        tickets = serializers.DictField()
        categories = serializers.ListField(child=serializers.DictField())
        actions = serializers.DictField()
        refunds = serializers.DictField()
        payment_failures = serializers.DictField()
        health = serializers.DictField()
        self_service = serializers.DictField(
            help_text="Card-update prompts, self-service refund requests and the help widget, "
            "for the month and the month before (docs/self-service.md section 4)."
        )
        recommendations = serializers.ListField(child=serializers.DictField())

    @extend_schema(parameters=_PARAMETERS, responses={200: OutputSerializer, **_ERRORS})
    def get(self, request: Request) -> Response:
        workspace, month = self._filters(request, default=dashboard_default_month)
        data = dashboard_build(workspace=workspace, month=month)
        return Response(self.OutputSerializer(data).data)


class MonthlyReportApi(_ReportApiBase):
    """The monthly report (default: the last complete month by the billing clock; on a
    simulated clock, its month) as JSON, or ``?format=csv`` as CSV."""

    renderer_classes = [renderers.JSONRenderer, ReportCsvRenderer]

    @extend_schema_serializer(component_name="MonthlyReport")
    class OutputSerializer(serializers.Serializer):
        workspace = serializers.DictField()
        month = serializers.CharField()
        month_label = serializers.CharField()
        period = serializers.DictField()
        generated_at = serializers.CharField()
        volume = serializers.DictField()
        financial = serializers.DictField()
        health = serializers.DictField()
        self_service = serializers.DictField(
            help_text="The dashboard's self-service section (docs/self-service.md section 4)."
        )
        recommendations = serializers.ListField(child=serializers.DictField())
        dashboard = serializers.DictField()

    @extend_schema(
        parameters=[
            *_PARAMETERS,
            OpenApiParameter("format", str, enum=["json", "csv"], description="Default json"),
        ],
        responses={200: OutputSerializer, **_ERRORS},
    )
    def get(self, request: Request) -> Response:
        workspace, month = self._filters(request, default=report_default_month)
        data = report_build(workspace=workspace, month=month)
        response = Response(self.OutputSerializer(data).data)
        if getattr(request.accepted_renderer, "format", "") == "csv":
            response["Content-Disposition"] = (
                f'attachment; filename="billing-report-{workspace.slug}-{month.key}.csv"'
            )
        return response


urlpatterns = [
    path("dashboard/", DashboardApi.as_view(), name="api-dashboard"),
    path("reports/monthly/", MonthlyReportApi.as_view(), name="api-report-monthly"),
]
