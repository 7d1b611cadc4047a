"""The customer's self-service refund page in Chromium (issue 18), on the demo sandbox.

An agent's link opens the page: Acme's recent payments, each with what a request would do
(the agents' dry run); the customer picks one, gives a reason and a comment, and the page
shows the request's status in the playbook's words — under the page's strict CSP, with no
script at all. ``docs/screenshots/refund-request.png`` is taken here
(``BILLING_DESK_SCREENSHOTS=1`` rewrites it, as the other screenshot tests do).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from billing_app.demo.customers.acme import ACME
from billing_app.models import BillingAction, SelfServiceLink, SelfServiceRefundRequest
from billing_app.services.refund_links import refund_link_create

expect = pytest.importorskip(
    "playwright.sync_api", reason="playwright is not installed: pip install -e '.[dev]'"
).expect

pytestmark = [pytest.mark.browser]

SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "screenshots" / "refund-request.png"


def screenshot_path(tmp_path: Path) -> Path:
    if os.environ.get("BILLING_DESK_SCREENSHOTS"):
        SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        return SCREENSHOT
    return tmp_path / "refund-request.png"


@pytest.fixture
def refund_page(sandbox):
    workspace = sandbox.workspace
    workspace.self_service_refund_limit = 50_000  # $500: small payments are refunded at once
    workspace.save(update_fields=["self_service_refund_limit"])
    link, url = refund_link_create(workspace=workspace, customer_id=ACME, source="panel")
    return link, urlsplit(url).path


def test_a_customer_requests_a_refund_and_sees_its_status(page, refund_page, tmp_path):
    link, path = refund_page
    failed: list[str] = []
    page.on(
        "response",
        lambda r: r.status >= 400 and not r.url.endswith("/favicon.ico") and failed.append(r.url),
    )
    page.goto(path)
    expect(page.get_by_role("heading", name="Request a refund")).to_be_visible()
    forms = page.locator("form.refund-form")
    assert forms.count() >= 1, "Acme has a refundable payment"

    # the first payment the page offers: pick a reason, write a comment, send
    first = page.locator("li.payment-eligible").first
    charge_id = first.get_attribute("data-testid").removeprefix("payment-")
    first.get_by_test_id(f"open-{charge_id}").click()
    first.get_by_label("Reason").select_option("wrong_amount")
    first.get_by_label("Comment (optional)").fill("We were billed for 50 seats, we use 45.")
    first.get_by_role("button", name="Send the request").click()

    # the page comes back with the request's status on that payment
    status = page.get_by_test_id(f"status-{charge_id}")
    expect(status).to_be_visible()
    request = SelfServiceRefundRequest.objects.get(link=link, charge_id=charge_id)
    assert request.action is not None
    expected = {
        SelfServiceRefundRequest.Status.REFUNDED: "Refunded",
        SelfServiceRefundRequest.Status.WITH_AGENTS: "With an agent",
    }[request.status]
    expect(status).to_have_text(expected)
    expect(page.get_by_test_id(f"message-{charge_id}")).not_to_be_empty()
    if request.status == SelfServiceRefundRequest.Status.REFUNDED:
        assert request.action.status == BillingAction.Status.SUCCEEDED

    # no script, no CSP violation, nothing in the console
    assert page.evaluate("document.scripts.length") == 0
    assert failed == []  # the stylesheet loads (the browser's own favicon request aside)
    errors = [
        e
        for e in page.console_errors  # type: ignore[attr-defined]
        if not e.startswith("Failed to load resource")  # the favicon
    ]
    assert errors == []  # no CSP violation, nothing else
    page.screenshot(path=str(screenshot_path(tmp_path)), full_page=True)


def test_a_forged_link_shows_the_generic_page(page, refund_page):
    link, path = refund_page
    response = page.goto(path[:-3] + "xx/")
    assert response is not None and response.status == 404
    expect(page.get_by_test_id("refund-link-invalid")).to_be_visible()
    expect(page.locator("body")).not_to_contain_text("Acme")


def test_an_l1_agent_is_not_offered_the_link(page, sandbox):
    # given an L1 agent (their role may not refund) on Acme's ticket in the demo
    page.goto("/demo/?role=l1&scenario=acme")
    panel = page.frame_locator("#panel-frame")
    expect(panel.get_by_test_id("section-account")).to_be_visible()
    expect(panel.locator("#bd-actions-title")).to_be_visible()

    # then the Actions section has no "Send refund request link"
    expect(panel.get_by_test_id("refund-link")).to_have_count(0)


def test_an_agent_sends_the_link_from_the_panel_and_it_opens_the_page(page, sandbox):
    # given a Manager (their role may refund) on Acme's ticket in the demo
    page.goto("/demo/?role=manager&scenario=acme")
    panel = page.frame_locator("#panel-frame")
    expect(panel.get_by_test_id("section-account")).to_be_visible()

    # when they make a refund request link under the actions
    panel.get_by_test_id("refund-link-create").click()

    # then the panel shows the link (audited with the agent and the ticket), and it opens
    # the customer's page
    url_box = panel.get_by_test_id("refund-link-url")
    expect(url_box).to_have_value(re.compile(r"/billing/refund/[^/]+/$"))
    link = SelfServiceLink.objects.get()
    assert link.customer_id == ACME and link.created_by is not None and link.ticket_id
    page.goto(urlsplit(url_box.input_value()).path)
    expect(page.get_by_role("heading", name="Request a refund")).to_be_visible()
    assert page.console_errors == [] or all(  # type: ignore[attr-defined]
        e.startswith("Failed to load resource")
        for e in page.console_errors  # type: ignore[attr-defined]
    )
