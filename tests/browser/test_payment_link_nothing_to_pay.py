"""A payment link for a customer who owes nothing: the form says so before Review (issue 14)."""

from __future__ import annotations

import pytest

from billing_app.models import BillingAction

expect = pytest.importorskip(
    "playwright.sync_api", reason="playwright is not installed: pip install -e '.[dev]'"
).expect

pytestmark = pytest.mark.browser


def open_panel(page, *, role: str, scenario: str):
    page.goto(f"/demo/?role={role}&scenario={scenario}")
    panel = page.frame_locator("#panel-frame")
    expect(panel.get_by_test_id("section-account")).to_be_visible()
    return panel


def test_acme_owes_nothing_so_the_link_form_says_there_is_nothing_to_pay(page, sandbox):
    # given an L1 agent on Acme Corp (every invoice paid, $0.00 outstanding)
    panel = open_panel(page, role="l1", scenario="acme")

    # when they open the payment-link form and try to review it
    panel.get_by_test_id("action-generate_payment_link").click()
    form = panel.get_by_test_id("action-form")
    expect(form).to_contain_text("There is nothing to pay: Acme Corp has no open invoice")
    expect(form).to_contain_text("use Update payment method")
    form.get_by_test_id("form-review").click()

    # then the form stays on its error, no confirm step, and nothing is made
    expect(form.get_by_text("There is nothing to pay").first).to_be_visible()
    expect(panel.get_by_test_id("dry-run")).to_have_count(0)
    assert not BillingAction.objects.filter(kind="generate_payment_link").exists()


def test_a_customer_with_an_open_invoice_is_offered_it(page, sandbox):
    panel = open_panel(page, role="l1", scenario="failed-payment")

    panel.get_by_test_id("action-generate_payment_link").click()
    form = panel.get_by_test_id("action-form")

    expect(form).not_to_contain_text("There is nothing to pay")
    expect(form.get_by_label("Invoice")).to_contain_text("The open balance")
