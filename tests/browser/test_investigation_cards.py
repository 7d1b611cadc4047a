"""The investigation card on each playbook demo ticket, in the demo host's 320 px panel frame.

For each ticket the card the ticket's signals point to is chosen, it shows the evidence
the playbook names, its proposed action opens the action form prefilled, its filled
customer message goes into the demo host's reply box with one click, and nothing in it
reaches past the 320 px frame. The agent can switch cards with the keyboard.
"""

from __future__ import annotations

import re

import pytest
from django.template.loader import render_to_string

from billing_app.catalog import Role

from .support import demo_sign_in

expect = pytest.importorskip(
    "playwright.sync_api", reason="playwright is not installed: pip install -e '.[dev]'"
).expect

pytestmark = pytest.mark.browser

PANEL_WIDTH = 320

# Every element of the card inside the frame's width (the document does not scroll sideways).
CARD_OVERFLOW_JS = """
() => {
  const width = document.documentElement.clientWidth;
  const found = [];
  const scroller = document.scrollingElement;
  if (scroller.scrollWidth > scroller.clientWidth) found.push(`document ${scroller.scrollWidth} px`);
  for (const el of document.querySelectorAll("[data-testid=investigation], [data-testid=investigation] *")) {
    const box = el.getBoundingClientRect();
    if (box.width <= 1 && box.height <= 1) continue;
    if (box.right > width + 0.5 || box.left < -0.5) {
      found.push(`${el.tagName.toLowerCase()}${el.dataset.testid ? `[${el.dataset.testid}]` : ""} `
        + `"${(el.textContent || "").trim().slice(0, 30)}" ${Math.round(box.left)}..${Math.round(box.right)}`);
    }
  }
  return {width, found};
}
"""


def open_card(page, scenario: str, role: str = "manager"):
    page.goto(f"/demo/?role={role}&scenario={scenario}")
    panel = page.frame_locator("#panel-frame")
    expect(panel.get_by_test_id("section-account")).to_be_visible()
    expect(panel.get_by_test_id("investigation-evidence")).to_be_visible()
    return panel


def assert_fits(page):
    result = page.frame(name="panel-frame").evaluate(CARD_OVERFLOW_JS)
    assert result["width"] == PANEL_WIDTH
    assert result["found"] == []


def insert_reply(page, panel, text_contains: str):
    message = panel.get_by_test_id("investigation-message")
    expect(message).to_contain_text(text_contains)
    text = message.input_value()
    panel.get_by_test_id("investigation-insert").click()
    expect(page.get_by_test_id("reply-editor")).to_have_value(text)
    expect(panel.get_by_test_id("investigation-insert")).to_have_text("Inserted")


def test_charged_twice_card_for_globex(page, sandbox):
    panel = open_card(page, "duplicate-charge")
    card = panel.get_by_test_id("investigation")

    expect(card).to_have_attribute("data-scenario", "charged_twice")
    expect(panel.get_by_test_id("investigation-reason")).to_have_text(
        "The ticket's tag “duplicate_charge”."
    )
    expect(panel.get_by_test_id("investigation-time")).to_have_text("2–3 min")
    expect(panel.locator("[data-testid=duplicate-charges] li")).to_have_count(2)
    expect(panel.get_by_test_id("duplicate-refundable")).to_have_text("$299.00 (the later charge)")
    expect(panel.get_by_test_id("root-cause")).to_have_text("Payment gateway retry")
    expect(panel.get_by_test_id("root-cause-evidence")).to_contain_text("paid no invoice")
    assert_fits(page)

    insert_reply(page, panel, "We found a duplicate charge of $299.00.")

    # the proposed action is the refund-duplicate form, on the pair, at its confirm step
    card.get_by_test_id("investigation-action").click()
    form = panel.get_by_test_id("action-form")
    expect(form).to_have_attribute("data-step", "confirm")
    expect(panel.get_by_test_id("confirm-summary")).to_contain_text(
        "ch_sbx_globex_05 and ch_sbx_globex_duplicate"
    )
    expect(panel.get_by_test_id("confirm-summary")).to_contain_text("$299.00")


def test_payment_failed_card_for_northwind(page, sandbox):
    panel = open_card(page, "failed-payment")

    expect(panel.get_by_test_id("investigation")).to_have_attribute(
        "data-scenario", "payment_failed"
    )
    expect(panel.get_by_test_id("failure-reason")).to_have_text(re.compile("expired", re.I))
    expect(panel.get_by_test_id("failure-attempts")).to_have_text(re.compile(r"^\d+$"))
    expect(panel.get_by_test_id("failure-next-retry")).not_to_be_empty()
    assert_fits(page)

    insert_reply(page, panel, "Your payment of $149.00 failed due to an expired card.")

    panel.get_by_test_id("investigation").get_by_test_id("investigation-action").click()
    expect(panel.get_by_test_id("action-form")).to_be_visible()
    expect(panel.locator("#bd-f-invoice_id")).to_have_value("in_sbx_northwind_07")


def test_overcharge_card_for_initech(page, sandbox):
    panel = open_card(page, "overcharge")

    expect(panel.get_by_test_id("investigation")).to_have_attribute("data-scenario", "overcharge")
    expect(panel.get_by_test_id("investigation-reason")).to_have_text(
        "The ticket's tag “overcharge”."
    )
    expect(panel.locator("[data-testid=breakdown-lines] tbody tr")).not_to_have_count(0)
    expect(panel.get_by_test_id("overcharge-explanation")).to_contain_text(
        "seats were increased from 20 to 35"
    )
    expect(panel.get_by_test_id("overcharge-next")).to_contain_text("$1,050.00")
    # explained in full: no credit is proposed
    expect(panel.get_by_test_id("overcharge-error-check")).to_contain_text(
        "no billing error to credit"
    )
    expect(panel.get_by_test_id("investigation-actions")).to_have_count(0)
    assert_fits(page)

    insert_reply(page, panel, "I reviewed your invoice.")


def test_tax_invoice_card_for_hooli(page, sandbox):
    panel = open_card(page, "tax-invoice")

    expect(panel.get_by_test_id("investigation")).to_have_attribute("data-scenario", "tax_invoice")
    expect(panel.get_by_test_id("tax-jurisdiction")).to_have_text(
        "Germany · VAT Germany 19% · Taxed"
    )
    expect(panel.get_by_test_id("tax-id")).to_have_text("None on file")
    expect(panel.get_by_test_id("tax-missing")).to_have_text(
        "Missing: street address, postal code and tax ID (such as a VAT number)."
    )
    assert_fits(page)

    # Hooli prefers German (Stripe preferred_locales ["de-DE"]): its message is German
    insert_reply(page, panel, "Ich habe Ihre Rechnung mit Steuerausweis für")

    # the tax form opens on the invoice with the known address
    message = panel.get_by_test_id("investigation-message").input_value()
    assert "https://sandbox.billing-desk.invalid/" in message  # the sandbox's PDF link
    panel.get_by_test_id("investigation").get_by_test_id("investigation-action").click()
    expect(panel.get_by_test_id("action-form")).to_be_visible()
    expect(panel.locator("#bd-f-city")).to_have_value("Berlin")
    expect(panel.locator("#bd-f-country")).to_have_value("DE")
    expect(panel.locator("#bd-f-invoice_id")).to_have_value(re.compile("^in_sbx_hooli_"))


def test_refund_card_for_vandelay(page, sandbox):
    panel = open_card(page, "refund-request")

    expect(panel.get_by_test_id("investigation")).to_have_attribute("data-scenario", "refund")
    expect(panel.get_by_test_id("refund-summary")).to_have_text(
        "Eligible: $1,490.00 can be refunded on the payment of Jan 12, 2026 "
        "(177 of 180 days left in the refund window)."
    )
    expect(panel.get_by_test_id("refund-pattern")).to_have_text(
        "0 refunds in the last 90 days (a refund pattern starts at 3)."
    )
    expect(panel.locator("[data-testid=refund-charge]").first).to_contain_text(
        "Refundable $1,490.00 · 177 of 180 days left"
    )
    # no message until the refund is done (the action's result carries it)
    expect(panel.get_by_test_id("investigation-message-help")).to_contain_text(
        "filled once the refund is done"
    )
    assert_fits(page)

    action = panel.get_by_test_id("investigation").get_by_test_id("investigation-action")
    expect(action).to_contain_text("Refund $1,490.00")
    action.click()
    expect(panel.get_by_test_id("action-form")).to_be_visible()
    expect(panel.locator("#bd-f-charge_id")).to_have_value("ch_sbx_vandelay_annual")
    expect(panel.locator("#bd-f-amount")).to_have_value("1490.00")


def test_plan_change_card_for_acme_with_preview_and_what_is_included(page, sandbox):
    panel = open_card(page, "acme")

    expect(panel.get_by_test_id("investigation")).to_have_attribute("data-scenario", "plan_change")
    expect(panel.get_by_test_id("investigation-reason")).to_have_text("The ticket's tag “renewal”.")
    expect(panel.get_by_test_id("plan-current")).to_contain_text("Enterprise Pro")
    expect(panel.get_by_test_id("plan-current-included")).to_have_text(
        "SSO, Audit log, 99.9% uptime SLA"
    )
    plus = panel.locator("[data-testid=plan-option][data-price=price_sbx_enterprise_plus__monthly]")
    expect(plus).to_contain_text("Upgrade")
    expect(plus.get_by_test_id("plan-included")).to_have_text(
        "Includes: Everything in Enterprise Pro, Dedicated success manager, Sandbox workspace"
    )
    plus.get_by_test_id("plan-preview-button").click()
    expect(plus.get_by_test_id("plan-preview")).to_contain_text("Due now")
    expect(plus.get_by_test_id("plan-preview-button")).to_be_focused()  # the redraw keeps it
    assert_fits(page)

    plus.get_by_test_id("investigation-action").click()
    expect(panel.get_by_test_id("action-form")).to_be_visible()
    expect(panel.locator("#bd-f-price_id")).to_have_value("price_sbx_enterprise_plus__monthly")


def test_the_agent_switches_cards_with_the_keyboard(page, sandbox):
    panel = open_card(page, "duplicate-charge")
    select = panel.get_by_test_id("investigation-scenario")

    select.focus()
    page.keyboard.press("ArrowDown")  # Charged twice → Payment failed

    card = panel.get_by_test_id("investigation")
    expect(card).to_have_attribute("data-scenario", "payment_failed")
    expect(panel.get_by_test_id("investigation-reason")).to_have_text("Chosen by you.")
    expect(select).to_be_focused()
    expect(panel.get_by_test_id("no-failure")).to_be_visible()
    select.select_option("tax_invoice")
    expect(card).to_have_attribute("data-scenario", "tax_invoice")
    expect(panel.get_by_test_id("tax-jurisdiction")).to_contain_text("United States")


# A stand-in for Zendesk's ZAF SDK (no network): the ticket as ``client.get`` gives it —
# its subject and tags included — and a record of what the panel asks of Zendesk.
FAKE_ZAF_SDK = """
window.__zaf = { invoked: [], set: [], asked: [] };
window.ZAFClient = { init() { return {
  get: (paths) => { window.__zaf.asked.push(paths); return Promise.resolve({
    "ticket.requester.email": "finance@globex.example", "ticket.requester.name": "Marco Rossi",
    "ticket.id": 1003, "ticket.organization": { id: 77, name: "Globex" },
    "ticket.subject": "Please send an invoice", "ticket.tags": ["billing", "vat"] }); },
  invoke: (name, arg) => { window.__zaf.invoked.push([name, arg]); return Promise.resolve({}); },
  set: (name, value) => { window.__zaf.set.push([name, value]); return Promise.resolve({}); },
  on: () => {},
}; } };
"""


def test_in_zendesk_the_tags_choose_the_card_and_the_message_becomes_a_public_reply(page, sandbox):
    # given the panel as the Zendesk entry renders it, on a ticket tagged "vat"
    _context, minted = demo_sign_in(sandbox.workspace, Role.MANAGER)
    html = render_to_string(
        "panel/panel.html",
        {
            "app_token": minted.token,
            "app_token_expires_at": minted.expires_at.isoformat(),
            "connector": "zendesk",
            "helpdesk_origin": "https://acme.zendesk.com",
            "ticket_id": "",
        },
    )
    page.route(
        "https://static.zdassets.com/**",
        lambda route: route.fulfill(content_type="text/javascript", body=FAKE_ZAF_SDK),
    )
    page.route(
        "**/zendesk-sidebar-under-test/",
        lambda route: route.fulfill(content_type="text/html", body=html),
    )
    page.goto("/zendesk-sidebar-under-test/")

    # then the panel asked Zendesk for the subject and tags, and the tax-invoice card is chosen
    expect(page.get_by_test_id("investigation")).to_have_attribute("data-scenario", "tax_invoice")
    expect(page.get_by_test_id("investigation-reason")).to_have_text("The ticket's tag “vat”.")
    asked = page.evaluate("window.__zaf.asked[0]")
    assert "ticket.subject" in asked and "ticket.tags" in asked

    # and its message goes into Zendesk's editor as a public reply
    message = page.get_by_test_id("investigation-message")
    expect(message).to_contain_text("I've generated your tax invoice for")
    page.get_by_test_id("investigation-insert").click()
    page.wait_for_function("window.__zaf.invoked.some(([name]) => name === 'comment.appendText')")
    assert page.evaluate("window.__zaf.set") == [["comment.type", "publicReply"]]
    appended = page.evaluate(
        "window.__zaf.invoked.find(([name]) => name === 'comment.appendText')[1]"
    )
    assert appended == message.input_value()


@pytest.mark.parametrize("scenario", ["trialing", "refund-pattern", "jpy"])
def test_the_other_demo_tickets_get_a_card_without_errors(page, sandbox, scenario):
    panel = open_card(page, scenario, role="l1")

    expect(panel.get_by_test_id("investigation-error")).to_have_count(0)
    assert_fits(page)
    assert page.console_errors == []  # type: ignore[attr-defined]


def test_a_customer_with_a_refund_pattern_sees_it_on_the_refund_card(page, sandbox):
    panel = open_card(page, "refund-pattern")

    expect(panel.get_by_test_id("investigation")).to_have_attribute("data-scenario", "refund")
    expect(panel.get_by_test_id("refund-pattern")).to_contain_text(
        "a refund pattern (from 3): any refund goes to Manager review."
    )
