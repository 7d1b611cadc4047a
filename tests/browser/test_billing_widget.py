"""The billing help widget on the demo's sample product page, in Chromium (issue 18).

The page at ``/demo/widget/`` signs the demo customer as a product's backend would and
embeds the one script tag; the widget draws itself in a shadow root under the page's
strict CSP. ``docs/screenshots/widget-demo.png`` is taken here
(``BILLING_DESK_SCREENSHOTS=1`` rewrites it).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from billing_app.models import BillingWidget, BillingWidgetEvent
from helpdesk_connectors.models import DemoTicket

expect = pytest.importorskip(
    "playwright.sync_api", reason="playwright is not installed: pip install -e '.[dev]'"
).expect

pytestmark = [pytest.mark.browser]

SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "screenshots" / "widget-demo.png"


@pytest.fixture
def widget(sandbox, live_server):
    """The seeded demo widget, allowing the live server's origin (an admin would add it)."""
    widget = BillingWidget.objects.get(workspace=sandbox.workspace)
    widget.allowed_origins += f"\n{live_server.url}"
    widget.save()
    return widget


def screenshot_path(tmp_path: Path) -> Path:
    """``docs/screenshots/widget-demo.png`` when asked to rewrite the docs' screenshots
    (``BILLING_DESK_SCREENSHOTS=1``, as tests/browser/test_screenshots.py), else a scratch file."""
    if os.environ.get("BILLING_DESK_SCREENSHOTS"):
        SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        return SCREENSHOT
    return tmp_path / "widget-demo.png"


def settle(page, server_activity) -> None:
    quiet = 0
    for _ in range(200):
        quiet = quiet + 1 if server_activity() <= 0 else 0
        if quiet >= 3:
            break
        page.wait_for_timeout(25)


def test_the_widget_answers_from_the_customers_account_and_opens_a_ticket(
    page, widget, server_activity, tmp_path
):
    # given Acme Corp signed in on the sample product page
    page.goto("/demo/widget/")
    launcher = page.get_by_test_id("widget-launcher")
    expect(launcher).to_have_text("Billing help")

    # when the customer opens the widget and asks about the next invoice
    launcher.click()
    panel = page.get_by_test_id("widget-panel")
    expect(panel).to_be_visible()
    expect(launcher).to_have_attribute("aria-expanded", "true")
    panel.locator("[data-question=next_invoice]").click()

    # then the answer comes from Acme's account (the brief's renewal, $3,400.00 … whatever
    # the seed's figures, written as the panel writes them)
    answer = page.get_by_test_id("widget-answer")
    expect(answer).to_have_attribute("data-answer", "next_invoice")
    expect(answer).to_contain_text(
        re.compile(r"Your next invoice is due on .+ for \$[\d,]+\.\d\d\.")
    )

    # when they go back and ask for their invoices
    page.get_by_test_id("widget-back").click()
    panel.locator("[data-question=invoices]").click()
    expect(answer).to_have_attribute("data-answer", "invoices")
    pdf = answer.get_by_role("link", name="Download PDF").first
    expect(pdf).to_have_attribute("href", re.compile(r"^https?://"))
    expect(pdf).to_have_attribute("rel", "noopener noreferrer")
    expect(pdf).to_have_attribute("target", "_blank")
    settle(page, server_activity)
    page.screenshot(path=str(screenshot_path(tmp_path)))

    # and the update-card and refund answers hand out their secure links
    page.get_by_test_id("widget-back").click()
    panel.locator("[data-question=update_card]").click()
    expect(answer.get_by_role("link", name="Update card")).to_have_attribute(
        "href", re.compile(r"/billing/card/[^/]+/$")
    )
    page.get_by_test_id("widget-back").click()
    panel.locator("[data-question=refund]").click()
    expect(answer.get_by_role("link", name="Request a refund")).to_have_attribute(
        "href", re.compile(r"/billing/refund/[^/]+/$")
    )

    # when they contact support
    page.get_by_test_id("widget-back").click()
    panel.locator("[data-question=contact]").click()
    page.get_by_label("Your message").fill("Can I switch to annual billing?")
    page.get_by_role("button", name="Send").click()

    # then a ticket is opened on the demo helpdesk with Acme as requester
    expect(page.get_by_test_id("widget-contact-done")).to_contain_text("billing@acme.example")
    settle(page, server_activity)
    ticket = DemoTicket.objects.get(subject__contains="help widget")
    assert ticket.requester_email == "billing@acme.example"
    # and the visit counted: opened once, four questions answered, one contact
    kinds = list(BillingWidgetEvent.objects.values_list("kind", "question").order_by("pk"))
    assert kinds == [
        ("opened", ""),
        ("answered", "next_invoice"),
        ("answered", "invoices"),
        ("answered", "update_card"),
        ("answered", "refund"),
        ("contact", ""),
    ]
    # and the strict CSP was never in the way (no violation, no script error)
    assert page.console_errors == []  # type: ignore[attr-defined]


def test_escape_closes_the_widget_and_gives_the_focus_back(page, widget):
    page.goto("/demo/widget/")
    launcher = page.get_by_test_id("widget-launcher")
    launcher.click()
    expect(page.get_by_test_id("widget-panel")).to_be_visible()

    page.keyboard.press("Escape")

    expect(page.get_by_test_id("widget-panel")).to_be_hidden()
    expect(launcher).to_be_focused()


def test_a_wrong_signature_shows_nothing(page, widget, server_activity):
    # given the product page renders a signature that is not the secret's
    def tamper(route):
        response = route.fetch()
        body = re.sub(
            r'data-signature="[0-9a-f]{64}"', 'data-signature="' + "0" * 64 + '"', response.text()
        )
        route.fulfill(response=response, body=body)

    page.route("**/demo/widget/", tamper)

    # when the page loads
    page.goto("/demo/widget/")
    settle(page, server_activity)

    # then the widget drew nothing and recorded nothing
    expect(page.locator("[data-billing-help]")).to_have_count(0)
    assert BillingWidgetEvent.objects.count() == 0


def test_an_origin_the_workspace_does_not_allow_shows_nothing(page, widget, server_activity):
    # given the workspace allows only the product's production origin
    widget.allowed_origins = "https://app.acme-analytics.example"
    widget.save()

    page.goto("/demo/widget/")
    settle(page, server_activity)

    expect(page.locator("[data-billing-help]")).to_have_count(0)
    assert BillingWidgetEvent.objects.count() == 0


def test_a_visit_lasts_the_tabs_session_and_a_contact_begins_a_new_one(
    page, widget, server_activity
):
    # given the customer asks a question, then moves on to another page of the product
    page.goto("/demo/widget/")
    page.get_by_test_id("widget-launcher").click()
    panel = page.get_by_test_id("widget-panel")
    panel.locator("[data-question=next_invoice]").click()
    expect(page.get_by_test_id("widget-answer")).to_have_attribute("data-answer", "next_invoice")
    page.reload()

    # when they open the widget there and contact support
    page.get_by_test_id("widget-launcher").click()
    panel.locator("[data-question=contact]").click()
    page.get_by_label("Your message").fill("The answer did not help.")
    page.get_by_role("button", name="Send").click()
    expect(page.get_by_test_id("widget-contact-done")).to_be_visible()
    settle(page, server_activity)

    # then it is one visit that was answered and contacted support (not a deflection)
    visits = set(BillingWidgetEvent.objects.values_list("visit", flat=True))
    assert len(visits) == 1
    # and after the contact the tab begins a new visit (a second message is a ticket too)
    page.reload()
    page.get_by_test_id("widget-launcher").click()
    expect(panel).to_be_visible()
    settle(page, server_activity)
    assert len(set(BillingWidgetEvent.objects.values_list("visit", flat=True))) == 2
    assert page.console_errors == []  # type: ignore[attr-defined]
