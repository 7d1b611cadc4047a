"""The panel's customer matching, states, alerts and host integration, in a real browser."""

from __future__ import annotations

import re

import pytest
from django.template.loader import render_to_string

from billing_app.catalog import Role
from billing_app.models import BillingAction, CustomerLink, MirrorRefund

from .support import demo_sign_in, panel_settle

expect = pytest.importorskip(
    "playwright.sync_api", reason="playwright is not installed: pip install -e '.[dev]'"
).expect

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
    # (the server's dry run says what will happen: the yen amount measured against the
    # role's limit in the workspace's currency, or sent for approval without a rate)
    expect(form.get_by_test_id("dry-run")).to_contain_text(re.compile(r"Happens now|for approval"))
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
    rows = panel.locator("[data-testid=payment-history] > li")
    expect(rows).to_have_count(6)

    # when the agent loads more
    panel.get_by_test_id("history-more").click()

    # then older payments follow, oldest last
    expect(rows).not_to_have_count(6)
    expect(rows.last).to_contain_text("INV-2024-03")
    # and keyboard focus stays in the history (on "Load more", or the list once all is in)
    focused = panel.locator(":focus")
    expect(focused).to_have_count(1)
    assert focused.evaluate(
        "(el) => el.dataset.testid === 'history-more' || el.dataset.testid === 'payment-history'"
    )


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


# WCAG 2.1 contrast of every visible text in the panel against its effective background.
CONTRAST_FAILURES_JS = """() => {
  const parse = (c) => (c.match(/[\\d.]+/g) || []).map(Number);
  const lum = ([r, g, b]) => {
    const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
    return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
  };
  const background = (el) => {
    for (let node = el; node; node = node.parentElement) {
      const c = parse(getComputedStyle(node).backgroundColor);
      if (c.length === 3 || (c.length === 4 && c[3] > 0)) return c.slice(0, 3);
    }
    return [255, 255, 255];
  };
  const failures = [];
  for (const el of document.querySelectorAll('#panel *')) {
    const own = [...el.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim());
    if (!own || el.closest('.bd-visually-hidden, [hidden], [aria-hidden=true]') || el.closest(':disabled')) continue;
    const style = getComputedStyle(el);
    if (style.visibility === 'hidden' || el.getClientRects().length === 0) continue;
    const fg = lum(parse(style.color)), bg = lum(background(el));
    const ratio = (Math.max(fg, bg) + 0.05) / (Math.min(fg, bg) + 0.05);
    const size = parseFloat(style.fontSize), bold = Number(style.fontWeight) >= 700;
    const need = size >= 24 || (size >= 18.66 && bold) ? 3 : 4.5;
    if (ratio < need) failures.push(`${el.tagName}.${el.className} "${el.textContent.trim().slice(0, 30)}" ${ratio.toFixed(2)}`);
  }
  return failures;
}"""


@pytest.mark.parametrize(
    ("role", "scenario"),
    [("specialist", "failed-payment"), ("l1", "acme"), ("manager", "refund-pattern")],
)
def test_panel_text_meets_wcag_aa_contrast(page, sandbox, role, scenario):
    # given the panel with alerts, badges, actions (the Specialist's request for a force
    # cancellation among them), refunds in the payment history, and every section
    panel = panel_for(page, role=role, scenario=scenario)
    expect(panel.get_by_test_id("section-ltv")).to_be_visible()
    requests = panel.get_by_text("Request approval (")
    if role == "specialist":
        requests.click()
        expect(panel.get_by_test_id("request-force_cancel")).to_be_visible()

    # then every visible text reaches AA contrast against its background
    frame = page.frame(name="panel-frame")
    assert frame.evaluate(CONTRAST_FAILURES_JS) == []


def test_every_control_is_a_real_control_reachable_by_keyboard(page, sandbox, server_activity):
    # given the panel on Acme's ticket, settled (the investigation card and the agent's
    # requests arrive after the first screen and add controls)
    panel = panel_for(page, role="manager", scenario="acme")
    expect(panel.get_by_test_id("section-ltv")).to_be_visible()
    panel_settle(page, server_activity)
    frame = page.frame(name="panel-frame")

    # then nothing clickable is a bare div or span, and no bare element is put in the tab
    # order (tabindex=-1 only makes a list or a message a target for programmatic focus)
    bad = frame.evaluate(
        """() => [...document.querySelectorAll('#panel [onclick], #panel [role=button], #panel [tabindex]:not([tabindex="-1"])')]
            .filter((el) => !['BUTTON', 'A', 'INPUT', 'SELECT', 'TEXTAREA', 'SUMMARY', 'H2'].includes(el.tagName)
                            && el.getAttribute('role') !== 'tab')
            .map((el) => el.outerHTML.slice(0, 60))"""
    )
    assert bad == []

    # and tabbing from the top reaches the Refresh button, the tabs and the first action
    # (the demo host page's own controls come first: its top bar, the role and customer
    # switchers and the link to the widget demo)
    frame.locator("body").focus()
    reached = []
    for _ in range(12):
        page.keyboard.press("Tab")
        reached.append(frame.evaluate("document.activeElement.textContent.trim()"))
    assert "Refresh" in reached
    assert "Billing" in reached
    assert "Generate payment link" in reached


# A stand-in for Zendesk's ZAF SDK (served in place of the CDN script: no network): the
# ticket's data as ``client.get`` gives it, and a record of what the panel asks of Zendesk.
FAKE_ZAF_SDK = """
window.__zaf = { invoked: [], set: [] };
window.ZAFClient = { init() { return {
  get: () => Promise.resolve({
    "ticket.requester.email": "finance@globex.example", "ticket.requester.name": "Marco Rossi",
    "ticket.id": 1003, "ticket.organization": { id: 77, name: "Globex" } }),
  invoke: (name, arg) => { window.__zaf.invoked.push([name, arg]); return Promise.resolve({}); },
  set: (name, value) => { window.__zaf.set.push([name, value]); return Promise.resolve({}); },
  on: () => {},
}; } };
"""


def test_inside_zendesk_the_panel_reads_the_ticket_resizes_and_fills_the_reply(page, sandbox):
    # given the panel page as the Zendesk entry renders it, with the ZAF SDK present
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
    assert "zaf_sdk.min.js" in html
    page.route(
        "https://static.zdassets.com/**",
        lambda route: route.fulfill(content_type="text/javascript", body=FAKE_ZAF_SDK),
    )
    page.route(
        "**/zendesk-sidebar-under-test/",
        lambda route: route.fulfill(content_type="text/html", body=html),
    )

    # when Zendesk loads it in the sidebar
    page.goto("/zendesk-sidebar-under-test/")

    # then the requester's billing account is found from the ticket the SDK describes
    expect(page.get_by_test_id("customer-name")).to_have_text("Globex")
    # (the frame follows the panel's height: once the context and the investigation card
    # have arrived, the last resize is the whole panel)
    page.wait_for_function(
        """() => { const r = window.__zaf.invoked.filter(([name]) => name === 'resize').pop();
                   const panel = Math.ceil(document.getElementById('panel').getBoundingClientRect().height) + 2;
                   return r && parseInt(r[1].height) > 1000 && Math.abs(parseInt(r[1].height) - panel) <= 2; }"""
    )
    resize = page.evaluate("window.__zaf.invoked.filter(([name]) => name === 'resize').pop()[1]")
    assert resize["width"] == "100%"

    # and a customer message goes into Zendesk's editor as a public reply
    page.get_by_test_id("alert-duplicate_charge").get_by_role(
        "button", name="Refund duplicate"
    ).click()
    page.get_by_test_id("form-confirm").click()
    message = page.get_by_test_id("customer-message")
    expect(message).to_contain_text("$299.00")
    page.get_by_role("button", name="Post as public reply").click()
    page.wait_for_function("window.__zaf.invoked.some(([name]) => name === 'comment.appendText')")
    assert page.evaluate("window.__zaf.set") == [["comment.type", "publicReply"]]
    appended = page.evaluate(
        "window.__zaf.invoked.find(([name]) => name === 'comment.appendText')[1]"
    )
    assert appended == message.input_value()
    action = BillingAction.objects.get(kind="refund_duplicate_charge")
    assert action.ticket_id == "1003"


def test_a_refund_stripe_did_not_confirm_shows_confirming_and_cannot_be_sent_again(
    page, sandbox, monkeypatch
):
    # given the billing system refunds and then never answers (the answer is lost)
    from billing_app.errors import ProviderOutcomeUnknown
    from billing_app.providers.sandbox.provider import SandboxProvider

    real_refund = SandboxProvider.refund

    def refund_then_silence(self, **kwargs):
        real_refund(self, **kwargs)
        raise ProviderOutcomeUnknown("Stripe did not answer after the request was sent.")

    monkeypatch.setattr(SandboxProvider, "refund", refund_then_silence)
    panel = panel_for(page, role="manager", scenario="acme")
    expect(panel.get_by_test_id("section-account")).to_be_visible()
    refunds_before = MirrorRefund.objects.filter(workspace=sandbox.workspace).count()

    # when a Manager refunds $120 of Acme's last payment
    panel.get_by_role("button", name="Issue refund", exact=True).click()
    form = panel.get_by_test_id("action-form")
    form.get_by_label("Amount to refund (USD)").fill("120")
    form.get_by_test_id("form-review").click()
    form.get_by_role("button", name="Confirm").click()

    # then the panel says it is confirming with Stripe, not that it failed or was done
    result = form.get_by_test_id("action-result")
    expect(result).to_have_attribute("data-status", "outcome_unknown")
    expect(result).to_contain_text("Confirming with Stripe")
    action = BillingAction.objects.get(kind="issue_refund")
    assert action.status == "outcome_unknown"

    # and a fresh attempt on the same charge is refused instead of refunding again
    form.get_by_test_id("form-done").click()
    panel.get_by_role("button", name="Issue refund", exact=True).click()
    form = panel.get_by_test_id("action-form")
    form.get_by_label("Amount to refund (USD)").fill("120")
    form.get_by_test_id("form-review").click()
    # (the server's dry run says so before Confirm, and Confirm stays off)
    expect(form.get_by_test_id("dry-run")).to_contain_text("still being confirmed with Stripe")
    expect(form.get_by_role("button", name="Confirm")).to_be_disabled()
    assert BillingAction.objects.filter(kind="issue_refund").count() == 1
    assert MirrorRefund.objects.filter(workspace=sandbox.workspace).count() == refunds_before + 1
