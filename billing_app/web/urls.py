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

# Card-update prompts (issue 18, docs/self-service.md section 1): the customer's signed
# links — update the card, come back from the provider, unsubscribe (page and RFC 8058).
from . import card_prompts as _card_prompts  # noqa: E402

urlpatterns += [
    path(
        "billing/card/unsubscribe/<str:token>/one-click/",
        _card_prompts.card_unsubscribe_one_click,
        name="card-unsubscribe-one-click",
    ),
    path(
        "billing/card/unsubscribe/<str:token>/",
        _card_prompts.card_unsubscribe_page,
        name="card-unsubscribe",
    ),
    path("billing/card/<str:token>/done/", _card_prompts.card_update_done, name="card-update-done"),
    path("billing/card/<str:token>/", _card_prompts.card_update_page, name="card-update"),
]

# Self-service refund requests (issue 18, docs/self-service.md section 2): the customer's
# page behind a signed, expiring link.
from . import refund_request as _refund_request  # noqa: E402

urlpatterns += [
    path("billing/refund/<str:token>/", _refund_request.refund_request_page, name="refund-request"),
]

# The billing help widget's API, called across origins by static/widget/billing-help.js
# (issue 18, docs/self-service.md section 3), and its demo product page (demo mode only).
from ..demo import widget as _demo_widget  # noqa: E402
from . import widget as _widget  # noqa: E402

urlpatterns += [
    path("widget/api/v1/<slug:slug>/start/", _widget.widget_start_view, name="widget-start"),
    path("widget/api/v1/<slug:slug>/open/", _widget.widget_open_view, name="widget-open"),
    path(
        "widget/api/v1/<slug:slug>/answers/<slug:question>/",
        _widget.widget_answer_view,
        name="widget-answer",
    ),
    path("widget/api/v1/<slug:slug>/contact/", _widget.widget_contact_view, name="widget-contact"),
    path("demo/widget/", _demo_widget.demo_widget_page, name="demo-widget"),
]
