"""The panel's customer matching, states, alerts and host integration, in a real browser."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from billing_app.models import BillingAction, CustomerLink, MirrorRefund

pytestmark = pytest.mark.browser


def panel_for(page, *, role: str, scenario: str):
    page.goto(f"/demo/?role={role}&scenario={scenario}")
    return page.frame_locator("#panel-frame")


def test_several_matches_the_agent_picks_one_and_pins_it(page, sandbox):
    # given a requester whose email two billing customers share
    panel = panel_for(page, role="l1", scenario="several-matches")
    picker = panel.get_by_test_id("customer-picker")
    expect(picker.get_by_role("radio")).to_have_count(2)

    # when the agent picks Stark Retail and keeps "remember" ticked
    picker.get_by_label("Stark Retail").check()
    picker.get_by_role("button", name="Show billing").click()

    # then its context shows, and the requester is pinned to it
    expect(panel.get_by_test_id("customer-name")).to_have_text("Stark Retail")
    link = CustomerLink.objects.get(workspace=sandbox.workspace, key_value="billing@stark.example")
    assert link.customer_id == sandbox.customers["several-matches-canceled"].id

    # and the next time the ticket opens, the pinned customer comes straight up
    page.reload()
    expect(panel.get_by_test_id("customer-name")).to_have_text("Stark Retail")
    expect(panel.get_by_test_id("customer-picker")).to_have_count(0)


def test_no_match_shows_an_empty_state_with_a_search_by_email(page, sandbox):
    # given a requester with no billing account
    panel = panel_for(page, role="l1", scenario="no-account")
    empty = panel.get_by_test_id("empty-state")
    expect(empty).to_contain_text("No billing customer matches jordan.lee@example.org.")

    # when the agent searches for the billing email they were given
    empty.get_by_label("Search by billing email").fill("finance@globex.example")
    empty.get_by_role("button", name="Search").click()

    # then that customer's context shows
    expect(panel.get_by_test_id("customer-name")).to_have_text("Globex")


def test_a_yen_credit_is_typed_and_sent_without_decimals(page, sandbox):
    # given an L2 agent on a JPY customer
    panel = panel_for(page, role="l2", scenario="jpy")
    panel.get_by_test_id("action-apply_credit").click()
    form = panel.get_by_test_id("action-form")
    amount = form.get_by_label("Credit amount (JPY)")

    # when they type decimals, the form refuses them before anything is sent
    amount.fill("500.5")
    form.get_by_label("Reason (shown on the customer's balance)").fill("Onboarding delay")
    form.get_by_test_id("form-review").click()
    expect(form).to_contain_text("JPY has no decimals: enter a whole amount.")
    expect(amount).to_be_focused()

    # and a whole amount goes out as yen, the smallest unit
    amount.fill("5000")
    form.get_by_test_id("form-review").click()
    expect(form.get_by_test_id("confirm-summary")).to_contain_text("¥5,000")
    expect(form.get_by_test_id("policy-note")).to_contain_text("converted to USD")
    form.get_by_test_id("form-confirm").click()
    expect(form.get_by_test_id("action-result")).to_be_visible()
    action = BillingAction.objects.get(kind="apply_credit")
    assert (action.amount, action.currency) == (5_000, "JPY")


def test_duplicate_charge_alert_refunds_the_duplicate_and_the_reply_lands_in_the_ticket(
    page, sandbox
):
    # given a Manager on the "charged twice" ticket
    panel = panel_for(page, role="manager", scenario="duplicate-charge")
    alert = panel.get_by_test_id("alert-duplicate_charge")
    expect(alert).to_contain_text("two charges of $299.00")

    # when they use the alert's one-click "Refund duplicate" and confirm
    alert.get_by_role("button", name="Refund duplicate").click()
    form = panel.get_by_test_id("action-form")
    expect(form.get_by_test_id("confirm-summary")).to_contain_text("Duplicate charge")
    form.get_by_test_id("form-confirm").click()

    # then the later charge is refunded in full and the customer message is ready
    expect(form.get_by_test_id("action-result")).to_have_attribute("data-status", "succeeded")
    message = form.get_by_test_id("customer-message")
    expect(message).to_contain_text("$299.00")
    action = BillingAction.objects.get(kind="refund_duplicate_charge")
    assert MirrorRefund.objects.filter(
        workspace=sandbox.workspace, stripe_id=action.provider_object_id, amount=29_900
    ).exists()

    # and "Post as public reply" puts it in the helpdesk's reply editor
    form.get_by_role("button", name="Post as public reply").click()
    expect(page.get_by_test_id("reply-editor")).to_have_value(message.input_value())


def test_failed_payment_alert_sends_a_payment_link(page, sandbox):
    # given an L1 agent on the "payment failed" ticket
    panel = panel_for(page, role="l1", scenario="failed-payment")
    alert = panel.get_by_test_id("alert-payment_failed")
    expect(alert).to_contain_text("failed (card expired)")

    # when they use the alert's payment link button and confirm
    alert.get_by_role("button", name="Send payment link").click()
    form = panel.get_by_test_id("action-form")
    form.get_by_test_id("form-confirm").click()

    # then a hosted payment page link comes back, with the message for the customer
    expect(form.get_by_test_id("action-result")).to_have_attribute("data-status", "succeeded")
    expect(form.get_by_test_id("result-link")).to_have_attribute("href", re.compile(r"^https://"))
    expect(form.get_by_test_id("customer-message")).to_contain_text("$149.00")


def test_load_more_pages_the_payment_history(page, sandbox):
    # given Acme's six months of payments
    panel = panel_for(page, role="l1", scenario="acme")
    rows = panel.locator("[data-testid=payment-history] tbody tr")
    expect(rows).to_have_count(6)

    # when the agent loads more
    panel.get_by_test_id("history-more").click()

    # then older payments follow, oldest last
    expect(rows).not_to_have_count(6)
    expect(rows.last).to_contain_text("INV-2024-03")


def test_an_expired_session_is_renewed_by_the_host_without_losing_the_panel(page, sandbox):
    # given the first API call answers 401 (the app session expired)
    expired = {"sent": False}

    def expire_once(route):
        if not expired["sent"]:
            expired["sent"] = True
            route.fulfill(
                status=401,
                content_type="application/json",
                body='{"error": {"code": "not_authenticated", "message": "Invalid app session: session expired.", "details": {}}}',
            )
        else:
            route.continue_()

    page.route("**/api/v1/me/", expire_once)

    # when the panel opens
    panel = panel_for(page, role="l2", scenario="acme")

    # then it asks the host for a new session and carries on
    expect(panel.get_by_test_id("customer-name")).to_have_text("Acme Corp")
    assert expired["sent"]
    expect(panel.get_by_test_id("session-expired")).to_have_count(0)
