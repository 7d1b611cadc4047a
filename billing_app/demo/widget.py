"""``GET /demo/widget/``: a sample product page with the billing help widget (issue 18).

The widget is seeded by ``widget_seed.demo_widget_seed`` (``demo_seed`` calls it). The page plays the customer's own product, "Acme Analytics", with a customer signed in:
its server — this view — signs the customer's id with the widget's secret exactly as a
product's backend would (``widget_identity_sign``) and renders the one script tag. The
widget then talks to ``/widget/api/v1/<slug>/`` like from any other product, Origin
check included. Demo mode only (404 otherwise); a strict CSP with no inline script.
"""

from __future__ import annotations

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import translation
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from helpdesk_connectors.demo.connector import demo_enabled
from helpdesk_connectors.wire import error_body

from ..locales import language_normalise, language_or_default
from ..models import BillingWidget, MirrorCustomer
from ..services.widget import widget_identity_sign
from .page import demo_workspace

# The demo customers the page can be signed in as (the brief's Acme Corp first).
DEMO_WIDGET_CUSTOMERS = ("cus_sbx_acme", "cus_sbx_northwind", "cus_sbx_vandelay")

# The sample product page loads only its own origin's files — here Billing Desk's too, as
# the demo serves both; a real product adds Billing Desk's origin to script-src,
# style-src and connect-src (docs/self-service.md).
DEMO_WIDGET_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; base-uri 'none'; object-src 'none'; "
    "frame-ancestors 'none'"
)


@require_GET
@never_cache
def demo_widget_page(request: HttpRequest) -> HttpResponse:
    if not demo_enabled():
        raise Http404("The demo is not enabled.")
    workspace = demo_workspace()
    widget = (
        BillingWidget.objects.filter(workspace=workspace, enabled=True).first()
        if workspace is not None
        else None
    )
    wanted = request.GET.get("customer", DEMO_WIDGET_CUSTOMERS[0])
    customer_id = wanted if wanted in DEMO_WIDGET_CUSTOMERS else DEMO_WIDGET_CUSTOMERS[0]
    customers = (
        {
            c.stripe_id: c
            for c in MirrorCustomer.objects.filter(
                workspace=workspace, stripe_id__in=DEMO_WIDGET_CUSTOMERS
            )
        }
        if workspace is not None
        else {}
    )
    customer = customers.get(customer_id)
    chosen = language_normalise(request.GET.get("lang", ""))
    lang = chosen or language_or_default(translation.get_language())
    signature = ""
    if widget is not None and widget.identity_secret and customer is not None:
        # What the product's backend does for its signed-in customer, on every page.
        signature = widget_identity_sign(secret=widget.identity_secret, customer_id=customer_id)
    context = {
        "lang": lang,
        "languages": list(settings.LANGUAGES),
        "workspace": workspace,
        "customer": customer,
        "customer_id": customer_id,
        "customers": [customers[c] for c in DEMO_WIDGET_CUSTOMERS if c in customers],
        "signature": signature,
    }
    with translation.override(lang):
        response = render(request, "widget/demo.html", context, status=200 if signature else 503)
    response["Content-Language"] = lang
    if not signature:
        # A browser keeps this page; any other client gets the same advice as the envelope.
        response.error_envelope = error_body(  # type: ignore[attr-defined]
            "demo_not_seeded",
            "The demo has no sandbox data or billing widget yet: run `python manage.py seed_demo`.",
        )
    response["Content-Security-Policy"] = DEMO_WIDGET_CSP
    return response
