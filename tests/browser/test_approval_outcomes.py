"""Approvals close the loop, in the demo's 320 px sidebar: a request made in one agent's
panel is decided by a Manager in another session, and the requester's panel shows the
outcome and the customer message for it when they reopen or refresh the ticket. The
Billing / Approvals tabs work from the keyboard."""

from __future__ import annotations

import re

import pytest

from billing_app.catalog import Role
from billing_app.models import ApprovalRequest, BillingAction
from billing_app.services.actions import action_submit

from .support import demo_context

expect = pytest.importorskip(
    "playwright.sync_api", reason="playwright is not installed: pip install -e '.[dev]'"
).expect

pytestmark = pytest.mark.browser

NO_SIDEWAYS_SCROLL = (
    "() => document.scrollingElement.scrollWidth <= document.scrollingElement.clientWidth"
)


def own_errors(page) -> list[str]:
    """Script errors in the page, and failed answers of the endpoints this loop uses (a failed
    load elsewhere, such as another card's endpoint, is that card's test's to catch)."""
    scripts = [e for e in page.console_errors if not e.startswith("Failed to load resource")]
    return scripts + getattr(page, "loop_failures", [])


def watch(page) -> None:
    page.loop_failures = []
    mine = re.compile(r"/api/v1/(approvals|actions)/")
    page.on(
        "response",
        lambda r: (
            r.status >= 400
            and mine.search(r.url)
            and page.loop_failures.append(f"{r.status} {r.url}")
        ),
    )


def open_panel(page, *, role: str):
    if not hasattr(page, "loop_failures"):
        watch(page)
    page.goto(f"/demo/?role={role}&scenario=acme")
    panel = page.frame_locator("#panel-frame")
    expect(panel.get_by_test_id("section-account")).to_be_visible()
    return panel


def frame(page):
    return page.frame(name="panel-frame")


def other_session(browser, live_server):
    """A second browser session (another agent at another desk)."""
    context = browser.new_context(viewport={"width": 1280, "height": 900}, base_url=live_server.url)
    context.set_default_timeout(15_000)
    return context, context.new_page()


def specialist_refund(sandbox, amount: int, key: str) -> BillingAction:
    """A Billing Specialist's refund above their $1,000 limit: it goes to a Manager."""
    action = action_submit(
        context=demo_context(sandbox.workspace, Role.SPECIALIST),
        kind="issue_refund",
        customer_id=sandbox.acme_id,
        ticket_id="1001",
        params={
            "charge_id": sandbox.acme_last_charge_id,
            "amount": amount,
            "currency": "USD",
            "reason": "requested_by_customer",
        },
        idempotency_key=key,
    )
    assert action.status == BillingAction.Status.PENDING_APPROVAL
    assert action.approval.required_roles == ["manager"]
    return action


def manager_decides(browser, live_server, *, verb: str, comment: str) -> None:
    context, page = other_session(browser, live_server)
    try:
        panel = open_panel(page, role="manager")
        panel.get_by_role("tab", name="Approvals (1)").click()
        card = panel.get_by_test_id("approval")
        # the Manager weighs it by the customer's name, plan and MRR and the request in words
        expect(card.get_by_test_id("approval-customer")).to_contain_text("Acme Corp")
        expect(card.get_by_test_id("approval-customer")).to_contain_text("MRR $3,400.00")
        expect(card.get_by_test_id("asked")).to_contain_text("Refund$1,200.00")
        expect(card).to_contain_text("Awaits approval by Manager")
        expect(card).to_contain_text("Demo Billing Specialist (Billing Specialist)")
        card.get_by_label("Comment").fill(comment)
        card.get_by_role("button", name="Approve" if verb == "approve" else "Deny").click()
        expect(panel.get_by_test_id("approvals-empty")).to_be_visible()
        # and the decision is in the Manager's decided history
        expect(panel.get_by_test_id("decided")).to_contain_text(
            "Issue refund · $1,200.00 · Acme Corp"
        )
    finally:
        page.goto("about:blank")
        context.close()


def test_a_specialist_sees_the_managers_approval_and_the_approved_message(
    page, sandbox, browser, live_server
):
    # given a Billing Specialist asks for a $1,200 refund in their panel (above their limit)
    panel = open_panel(page, role="specialist")
    panel.get_by_test_id("action-issue_refund").click()
    form = panel.get_by_test_id("action-form")
    form.get_by_label("Amount to refund (USD)").fill("1200")
    form.get_by_test_id("form-review").click()
    form.get_by_test_id("form-confirm").click()

    # then the result says, in words, who it went to
    result = form.get_by_test_id("action-result")
    expect(result).to_have_attribute("data-status", "pending_approval")
    expect(result).to_contain_text("Sent for approval to Manager")
    form.get_by_test_id("form-done").click()
    request = panel.get_by_test_id("request")
    expect(request).to_have_attribute("data-state", "pending")
    expect(request.get_by_test_id("request-outcome")).to_have_text(
        "Waiting for approval by Manager."
    )
    action = BillingAction.objects.get(kind="issue_refund", status="pending_approval")

    # when a Manager approves it in another session
    manager_decides(browser, live_server, verb="approve", comment="Goodwill, long customer")

    # then the Specialist's panel, refreshed, shows the outcome and the approved message
    panel.get_by_test_id("refresh").click()
    expect(request).to_have_attribute("data-state", "approved")
    expect(request.get_by_test_id("request-outcome")).to_have_text(
        "Approved by Demo Manager (Manager) and done."
    )
    expect(request.get_by_test_id("request-message")).to_have_value(
        re.compile(r"^We've processed your refund of \$1,200\.00\. ")
    )
    # with what was done, in words
    expect(request.get_by_test_id("request-done")).to_contain_text("Refund$1,200.00")
    expect(request.get_by_test_id("request-done")).to_contain_text("Refund statusRefunded")
    action.refresh_from_db()
    assert action.status == BillingAction.Status.SUCCEEDED

    # and the recent action opens into its details: words, trail, provider reference, note
    row = panel.locator(f"[data-testid=recent-actions] li[data-action-id='{action.pk}']")
    toggle = row.get_by_test_id("recent-action")
    toggle.click()
    expect(toggle).to_have_attribute("aria-expanded", "true")
    details = row.get_by_test_id("action-details")
    expect(details).to_contain_text("Refund$1,200.00")
    expect(details).to_contain_text("Requested byDemo Billing Specialist (Billing Specialist)")
    expect(details).to_contain_text("Decided byDemo Manager (Manager)")
    expect(details).to_contain_text("CommentGoodwill, long customer")
    expect(details).to_contain_text(f"Provider reference{action.provider_object_id}")
    expect(details).to_contain_text("Ticket note")
    assert frame(page).evaluate(NO_SIDEWAYS_SCROLL)
    assert own_errors(page) == []


def test_a_denied_request_shows_the_comment_and_the_denied_message(
    page, sandbox, browser, live_server
):
    # given the Specialist's $1,200 refund waits for a Manager, and their panel is open
    action = specialist_refund(sandbox, 120_000, "outcomes-denied-1")
    panel = open_panel(page, role="specialist")
    expect(panel.get_by_test_id("request")).to_have_attribute("data-state", "pending")

    # when a Manager denies it with a reason written as a sentence
    manager_decides(browser, live_server, verb="deny", comment="Outside the 30-day refund window.")

    # then the reopened panel shows who denied it, why, and the denied message reads well
    panel = open_panel(page, role="specialist")
    request = panel.get_by_test_id("request")
    expect(request).to_have_attribute("data-state", "denied")
    expect(request.get_by_test_id("request-outcome")).to_have_text(
        "Denied by Demo Manager (Manager): Outside the 30-day refund window."
    )
    expect(request.get_by_test_id("request-message")).to_have_value(
        "Based on our refund policy, this charge isn't eligible for refund because outside "
        "the 30-day refund window."
    )
    action.refresh_from_db()
    assert action.status == BillingAction.Status.DENIED
    assert action.approval.status == ApprovalRequest.Status.DENIED
    assert frame(page).evaluate(NO_SIDEWAYS_SCROLL)
    assert own_errors(page) == []


def test_the_tabs_follow_the_arrow_keys_and_keep_the_focus(page, sandbox):
    # given a Manager's panel with a request waiting for them
    specialist_refund(sandbox, 120_000, "outcomes-tabs-1")
    panel = open_panel(page, role="manager")
    billing = panel.get_by_role("tab", name="Billing")
    approvals = panel.get_by_role("tab", name=re.compile(r"^Approvals"))
    expect(approvals).to_have_text("Approvals (1)")
    # and "Open approvals" is offered on the alert of a request this Manager may decide
    expect(panel.get_by_test_id("open-approvals")).to_be_visible()
    billing.focus()

    # when they press the right arrow, the Approvals tab is focused and selected
    page.keyboard.press("ArrowRight")
    expect(approvals).to_be_focused()
    expect(approvals).to_have_attribute("aria-selected", "true")
    expect(approvals).to_have_attribute("tabindex", "0")
    expect(billing).to_have_attribute("tabindex", "-1")
    expect(panel.get_by_test_id("approval")).to_be_visible()
    # and the focus stays on the tab once the queue has loaded (never on <body>)
    expect(panel.get_by_test_id("decided")).to_have_count(0)
    expect(approvals).to_be_focused()

    # Home, End and the left arrow (wrapping) move focus and selection too
    page.keyboard.press("Home")
    expect(billing).to_be_focused()
    expect(billing).to_have_attribute("aria-selected", "true")
    page.keyboard.press("End")
    expect(approvals).to_be_focused()
    page.keyboard.press("ArrowRight")
    expect(billing).to_be_focused()
    page.keyboard.press("ArrowLeft")
    expect(approvals).to_be_focused()
    expect(panel.locator("#bd-view-approvals")).to_be_visible()
    expect(panel.locator("#bd-view-billing")).to_be_hidden()
    assert frame(page).evaluate("() => document.activeElement.getAttribute('role')") == "tab"
    assert own_errors(page) == []


def test_open_approvals_is_not_offered_on_a_request_the_manager_cannot_decide(page, sandbox):
    # given a Specialist's $600 credit, which only a VP may approve
    action_submit(
        context=demo_context(sandbox.workspace, Role.SPECIALIST),
        kind="apply_credit",
        customer_id=sandbox.acme_id,
        ticket_id="1001",
        params={"amount": 60_000, "currency": "USD", "description": "Outage"},
        idempotency_key="outcomes-vp-credit",
    )

    # when a Manager opens the ticket
    panel = open_panel(page, role="manager")

    # then the alert names the approver by role label, and offers no "Open approvals"
    alert = panel.get_by_test_id("alert-pending_approval")
    expect(alert).to_contain_text("Apply credit of $600.00 awaits approval by VP Approver.")
    expect(panel.get_by_role("tab", name="Approvals")).to_have_count(1)
    expect(alert.get_by_test_id("open-approvals")).to_be_hidden()
