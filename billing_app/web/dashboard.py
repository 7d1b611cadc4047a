"""Staff pages: ``/dashboard/`` and ``/reports/monthly/YYYY-MM/`` (Django login; approvers
and staff with a verified second factor, ``web.two_factor.verified_approver_required``).

Who may see which workspace is ``selectors.report_access``; the figures come
from ``selectors.dashboard`` / ``selectors.report``; the charts are SVG drawn
here on the server (``billing_app.charts``).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET

from ..charts import Bar, Series, bar_chart, line_chart
from ..errors import NotFound, NotPermitted, ValidationFailed
from ..models import MonthlyReport, Workspace
from ..selectors.dashboard import dashboard_build, dashboard_default_month, report_default_month
from ..selectors.dashboard.shared import number_text, pct_text
from ..selectors.months import Month
from ..selectors.report import report_build
from ..selectors.report_access import report_workspace_for_user
from .two_factor import verified_approver_required


def _workspace(request: HttpRequest) -> tuple[Workspace, list[Workspace]]:
    try:
        return report_workspace_for_user(
            user=request.user, slug=request.GET.get("workspace") or None
        )
    except NotFound:
        raise Http404("No such workspace.") from None
    except NotPermitted:
        raise PermissionDenied from None


def _pct(value: float | None) -> str:
    return _("n/a") if value is None else pct_text(value, 1)


def dashboard_charts(figures: dict[str, Any]) -> dict[str, Any]:
    """The SVG charts of the dashboard page, from its figures."""
    categories = [c for c in figures["categories"] if c["tickets"]]
    actions = figures["actions"]["rows"]
    trend = figures["payment_failures"]["trend"]
    refunds = figures["refunds"]["by_reason"]
    currency = figures["workspace"]["base_currency"]
    charts: dict[str, Any] = {
        "categories": bar_chart(
            [Bar(c["label"], c["tickets"], _pct(c["share_pct"])) for c in categories],
            title=_("Billing tickets by category"),
        ),
        "actions": bar_chart(
            [
                Bar(
                    a["label"],
                    a["count"],
                    _("%(rate)s success, %(status)s")
                    % {"rate": _pct(a["success_rate_pct"]), "status": a["success_status_label"]},
                )
                for a in actions
            ],
            title=_("Agent billing actions"),
        ),
        "failure_trend": line_chart(
            [
                Series(_("Payment failures"), [t["failures"] for t in trend]),
                Series(_("Recovered"), [t["recovered"] for t in trend]),
            ],
            [t["label"] for t in trend],
            title=_("Payment failures and recoveries by month"),
        ),
        "refund_reasons": bar_chart(
            [
                Bar(r["label"], r["amount"]["amount"], f"({r['count']})", r["amount"]["display"])
                for r in refunds
            ],
            title=_("Refund amount by reason (%(currency)s)") % {"currency": currency},
        ),
        "response_times": bar_chart(
            [
                Bar(
                    r["label"],
                    r["avg_ms"] or 0,
                    _("(target <%(ms)s ms)") % {"ms": number_text(r["target_ms"], grouped=True)},
                    _("n/a")
                    if r["avg_ms"] is None
                    else _("%(ms)s ms") % {"ms": number_text(r["avg_ms"], 0, grouped=True)},
                    target=r["target_ms"],
                )
                for r in figures["health"]["response_times"]
            ],
            title=_("Average response time against target (dashed tick)"),
        ),
    }
    return charts


def self_service_parts(figures: dict[str, Any]) -> list[dict[str, Any]]:
    """The self-service section's three tables, captioned in the reader's language."""
    section = figures["self_service"]
    captions = (
        ("card_prompts", _("Card-update prompts")),
        ("refund_requests", _("Self-service refund requests")),
        ("widget", _("Billing help widget")),
    )
    return [{"key": key, "caption": caption, "figures": section[key]} for key, caption in captions]


def _links(workspace: Workspace, month: Month) -> dict[str, str]:
    query = {"workspace": workspace.slug, "month": month.key}
    return {
        "dashboard": f"{reverse('dashboard')}?{urlencode(query)}",
        "report": f"{reverse('report-monthly', args=[month.key])}?{urlencode({'workspace': workspace.slug})}",
        "dashboard_json": f"{reverse('api-dashboard')}?{urlencode(query)}",
        "report_json": f"{reverse('api-report-monthly')}?{urlencode(query)}",
        "report_csv": f"{reverse('api-report-monthly')}?{urlencode(query | {'format': 'csv'})}",
    }


def _nav(workspace: Workspace, month: Month, route: str) -> dict[str, Any]:
    def url(m: Month) -> str:
        if route == "dashboard":
            return (
                f"{reverse('dashboard')}?{urlencode({'workspace': workspace.slug, 'month': m.key})}"
            )
        return (
            f"{reverse('report-monthly', args=[m.key])}?{urlencode({'workspace': workspace.slug})}"
        )

    return {
        "previous": {"label": month.shift(-1).label, "url": url(month.shift(-1))},
        "next": {"label": month.shift(1).label, "url": url(month.shift(1))},
    }


@require_GET
@verified_approver_required
def dashboard_page(request: HttpRequest) -> HttpResponse:
    workspace, allowed = _workspace(request)
    raw_month = request.GET.get("month")
    try:
        month = Month.parse(raw_month) if raw_month else dashboard_default_month(workspace)
    except ValidationFailed as exc:
        return render(request, "dashboard/bad_request.html", {"message": exc.message}, status=400)
    figures = dashboard_build(workspace=workspace, month=month)
    return render(
        request,
        "dashboard/dashboard.html",
        {
            "figures": figures,
            "charts": dashboard_charts(figures),
            "self_service": figures["self_service"],
            "self_service_parts": self_service_parts(figures),
            "workspace": workspace,
            "workspaces": allowed,
            "month": month,
            "links": _links(workspace, month),
            "nav": _nav(workspace, month, "dashboard"),
            "switcher_action": reverse("dashboard"),
        },
    )


@require_GET
@verified_approver_required
def monthly_report_redirect(request: HttpRequest) -> HttpResponse:
    """``/reports/monthly/?month=YYYY-MM`` (the month switcher's form) → the month's page."""
    workspace, _ = _workspace(request)
    raw_month = request.GET.get("month")
    try:
        month = Month.parse(raw_month) if raw_month else report_default_month(workspace)
    except ValidationFailed as exc:
        return render(request, "dashboard/bad_request.html", {"message": exc.message}, status=400)
    return redirect(_links(workspace, month)["report"])


@require_GET
@verified_approver_required
def monthly_report_page(request: HttpRequest, month: str) -> HttpResponse:
    workspace, allowed = _workspace(request)
    try:
        period = Month.parse(month)
    except ValidationFailed:
        raise Http404("No such month.") from None
    report = report_build(workspace=workspace, month=period)
    stored = MonthlyReport.objects.filter(workspace=workspace, month=period.first_day).first()
    return render(
        request,
        "dashboard/report.html",
        {
            "report": report,
            "figures": report["dashboard"],
            "charts": dashboard_charts(report["dashboard"]),
            "self_service": report["self_service"],
            "self_service_parts": self_service_parts(report),
            "stored": stored,
            "workspace": workspace,
            "workspaces": allowed,
            "month": period,
            "links": _links(workspace, period),
            "nav": _nav(workspace, period, "report"),
            "switcher_action": reverse("report-monthly-pick"),
        },
    )
