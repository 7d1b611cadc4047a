from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from . import health
from .admin.two_factor import admin_site_require_second_factor
from .web import two_factor

# Staff need a verified second factor in Django admin too (issue 17; admin/two_factor.py).
admin_site_require_second_factor()

urlpatterns = [
    path("admin/", admin.site.urls),
    # Approvers (VP, Legal, Managers) need not be staff: a plain login for the web pages,
    # then a second factor for approvers and staff (web/two_factor.py; issue 17).
    path("accounts/login/", two_factor.SignInView.as_view(), name="login"),
    path("accounts/two-factor/", two_factor.two_factor_step, name="two-factor"),
    path(
        "accounts/two-factor/recovery-codes/",
        two_factor.recovery_codes,
        name="two-factor-recovery",
    ),
    path(
        "accounts/two-factor/authenticator/",
        two_factor.replace_authenticator,
        name="two-factor-authenticator",
    ),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("api/v1/", include("billing_app.api.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("webhooks/", include("billing_app.webhook_urls")),
    path("zendesk/", include("helpdesk_connectors.zendesk.urls")),
    path("freshdesk/", include("helpdesk_connectors.freshdesk.urls")),
    path("demo/", include("helpdesk_connectors.demo.urls")),
    path("", include("billing_app.web.urls")),
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
]

# The error envelope on the JSON surfaces (/api/, the helpdesk entries, /demo/, /webhooks/),
# Django's pages elsewhere; billing_app.middleware does the same in DEBUG and for other statuses.
handler404 = "billing_app.middleware.page_not_found"
handler500 = "billing_app.middleware.server_error"
