"""The customer's card pages in Chromium (issue 18): both forms post and work.

Regression for the review of the card-update prompts: with ``Referrer-Policy: no-referrer``
Chromium sends ``Origin: null`` on the page's own form POST and Django's CSRF check
refused both buttons (403). The pages now send ``same-origin``: our POST keeps its Origin,
and the billing provider's page still gets no referrer (the token is in the URL). The
sandbox's hosted page is on a host that does not exist (``sandbox.billing-desk.invalid``),
so the test answers for it.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest

from billing_app.models import CustomerOptOut
from billing_app.services.card_prompts import card_unsubscribe_url, card_update_url

expect = pytest.importorskip(
    "playwright.sync_api", reason="playwright is not installed: pip install -e '.[dev]'"
).expect

pytestmark = [pytest.mark.browser]

NORTHWIND = "cus_sbx_northwind"
SANDBOX_PAGES = "https://sandbox.billing-desk.invalid/**"


def _post_origins(page) -> list[str | None]:
    origins: list[str | None] = []
    page.on(
        "request",
        lambda r: r.method == "POST" and origins.append(r.headers.get("origin")),
    )
    return origins


def test_the_update_button_leads_to_the_providers_page(page, sandbox, live_server):
    provider_requests: list[dict[str, str]] = []

    def provider_page(route):
        provider_requests.append(route.request.headers)
        route.fulfill(status=200, content_type="text/html", body="<h1>Sandbox card page</h1>")

    page.route(SANDBOX_PAGES, provider_page)
    origins = _post_origins(page)
    path = urlsplit(card_update_url(workspace=sandbox.workspace, customer_id=NORTHWIND)).path
    page.goto(path)
    with page.expect_response(lambda r: r.request.method == "POST") as posted:
        page.get_by_test_id("card-update-continue").click()

    assert posted.value.status == 303, "the form's POST passes the CSRF check"
    assert origins == [live_server.url]  # not "null"
    expect(page.get_by_role("heading", name="Sandbox card page")).to_be_visible()
    assert page.url.startswith("https://sandbox.billing-desk.invalid/p/bps_sbx_")
    assert "referer" not in provider_requests[0]  # the token stays with us


def test_the_unsubscribe_button_unsubscribes(page, sandbox, live_server):
    origins = _post_origins(page)
    path = urlsplit(card_unsubscribe_url(workspace=sandbox.workspace, customer_id=NORTHWIND)).path
    page.goto(path)
    with page.expect_response(lambda r: r.request.method == "POST") as posted:
        page.get_by_test_id("card-unsubscribe-confirm").click()

    assert posted.value.status == 200
    assert origins == [live_server.url]
    expect(page.get_by_test_id("card-unsubscribed")).to_be_visible()
    assert CustomerOptOut.objects.filter(
        workspace=sandbox.workspace, customer_id=NORTHWIND
    ).exists()
