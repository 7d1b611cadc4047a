"""Staff and demo web pages."""

urlpatterns: list = []

# Approvals queue for Managers, VP and Legal approvers (Django login).
from django.urls import path  # noqa: E402

from . import approvals as _approvals  # noqa: E402

urlpatterns += [
    path("approvals/", _approvals.approvals_list, name="approvals-list"),
    path("approvals/<int:approval_id>/", _approvals.approval_detail, name="approvals-detail"),
]

# The demo host page (demo mode only; 404 otherwise). /demo/session/ and /demo/panel/
# are the demo connector's entry routes (helpdesk_connectors/demo/urls.py).
from ..demo import page as _demo  # noqa: E402

urlpatterns += [
    path("demo/", _demo.demo_host, name="demo-host"),
]

# Billing support dashboard and monthly report (staff and approvers, Django login).
from . import dashboard as _dashboard  # noqa: E402

urlpatterns += [
    path("dashboard/", _dashboard.dashboard_page, name="dashboard"),
    path("reports/monthly/", _dashboard.monthly_report_redirect, name="report-monthly-pick"),
    path("reports/monthly/<str:month>/", _dashboard.monthly_report_page, name="report-monthly"),
]

# The panel's JavaScript catalog, one cacheable URL per language (web/i18n.py; issue 16).
from . import i18n as _i18n  # noqa: E402

urlpatterns += [
    path("jsi18n/<str:lang>/", _i18n.js_catalog, name="js-catalog"),
]
