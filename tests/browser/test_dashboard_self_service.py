"""The dashboard and the monthly report pages with their Self-service section, in a browser
(issue 18): a verified staff member reads February 2026 against January — the three tables,
the agent-time comparison and the widget's questions — with no script error and nothing
wider than the page. The figures themselves are proven in
``tests/billing_app/test_dashboard_self_service.py``; the rows are the same."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.test import Client

from tests.billing_app.test_dashboard_self_service import build_two_months
from tests.billing_app.two_factor_support import verified_login

expect = pytest.importorskip(
    "playwright.sync_api", reason="playwright is not installed: pip install -e '.[dev]'"
).expect

pytestmark = pytest.mark.browser


@pytest.fixture
def signed_in(page, live_server, sandbox):
    """The page signed in as a superuser whose session passed its second factor."""
    build_two_months(sandbox.workspace)
    client = Client()
    verified_login(client, User.objects.create_user(username="boss", is_superuser=True))
    page.context.add_cookies(
        [{"name": "sessionid", "value": client.cookies["sessionid"].value, "url": live_server.url}]
    )
    return sandbox.workspace


@pytest.fixture
def failed_responses(page) -> list[str]:
    """Every response of 400 or more but the favicon the browser asks for by itself."""
    failed: list[str] = []
    page.on(
        "response",
        lambda r: r.status >= 400 and not r.url.endswith("/favicon.ico") and failed.append(r.url),
    )
    return failed


def script_errors(page) -> list[str]:
    """Console errors and uncaught exceptions; a failed load is in ``failed_responses``."""
    errors = page.console_errors  # type: ignore[attr-defined]
    return [e for e in errors if not e.startswith("Failed to load resource")]


def wider_than_the_page(page) -> list[str]:
    return page.evaluate(
        """() => [...document.querySelectorAll('.db-section')]
            .filter((s) => s.scrollWidth > s.clientWidth + 1)
            .map((s) => s.querySelector('h2')?.textContent || s.id)"""
    )


@pytest.mark.parametrize("width", [1280, 800])
def test_dashboard_shows_the_self_service_section(page, signed_in, failed_responses, width):
    page.set_viewport_size({"width": width, "height": 900})
    page.goto(f"/dashboard/?month=2026-02&workspace={signed_in.slug}")

    section = page.locator("#s-self-service")
    expect(section.get_by_role("heading", name="Self-service")).to_be_visible()
    expect(section).to_contain_text("February 2026 compared with January 2026.")
    prompts = section.locator('table[data-part="card_prompts"]')
    expect(prompts.locator("caption")).to_have_text("Card-update prompts")
    expect(prompts.locator('tr[data-figure="sent"] td')).to_have_text(["5", "2", "+3 (+150.0%)"])
    expect(prompts.locator('tr[data-figure="revenue_kept"] td')).to_have_text(
        ["$170.00", "$30.00", "+$140.00"]
    )
    refunds = section.locator('table[data-part="refund_requests"]')
    expect(refunds.locator('tr[data-figure="executed"] td').first).to_have_text("2")
    expect(section.locator("#s-self-service-agent-time")).to_contain_text(
        "96.0 min per self-service request"
    )
    expect(section.locator("#s-self-service-agent-time")).to_contain_text(
        "4.0 min per agent-initiated refund"
    )
    widget = section.locator('table[data-part="widget"]')
    expect(widget.locator('tr[data-figure="deflection_rate_pct"] td')).to_have_text(
        ["75.0%", "50.0%", "+25.0 pp"]
    )
    expect(section.locator('tr[data-question="next_invoice"] th')).to_have_text("Next invoice")
    assert wider_than_the_page(page) == []
    assert (script_errors(page), failed_responses) == ([], [])


def test_monthly_report_shows_the_self_service_section(page, signed_in, failed_responses):
    page.goto(f"/reports/monthly/2026-02/?workspace={signed_in.slug}")

    section = page.locator("#r-self-service")
    expect(section.get_by_role("heading", name="Self-service")).to_be_visible()
    expect(section.locator('table[data-part="refund_requests"] caption')).to_have_text(
        "Self-service refund requests"
    )
    expect(
        section.locator('table[data-part="refund_requests"] tr[data-figure="requests"] td')
    ).to_have_text(["8", "2", "+6 (+300.0%)"])
    assert wider_than_the_page(page) == []
    assert (script_errors(page), failed_responses) == ([], [])
