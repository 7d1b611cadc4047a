"""A subscription's state is explicit in the 320 px sidebar: paused (badge, resume date,
Resume), ending (badge, end date, Keep subscription), cancelled (no action that cannot
apply); and a seat count below the seats in use is refused before Confirm, in words.

The demo seeds a cancelled customer (Stark Retail), a paused one (Pied Piper) and an
ending one (Soylent); the Resume and Keep flows put other demo customers in those states
with the sandbox's own pause and cancel, as an agent's action would leave them.
"""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

from billing_app.models import BillingAction
from billing_app.providers.sandbox import SandboxProvider

from .conftest import BRIEF_DAY

expect = pytest.importorskip(
    "playwright.sync_api", reason="playwright is not installed: pip install -e '.[dev]'"
).expect

pytestmark = pytest.mark.browser

NO_SIDEWAYS_SCROLL = (
    "() => document.scrollingElement.scrollWidth <= document.scrollingElement.clientWidth"
)
# What a cancelled subscription can no longer take.
IMPOSSIBLE_ON_CANCELLED = (
    "pause_subscription",
    "adjust_seats",
    "change_plan",
    "apply_discount",
    "extend_trial",
    "cancel_subscription",
    "force_cancel",
    "resume_subscription",
    "undo_cancellation",
)


def open_panel(page, *, role: str, scenario: str):
    page.goto(f"/demo/?role={role}&scenario={scenario}")
    panel = page.frame_locator("#panel-frame")
    expect(panel.get_by_test_id("section-account")).to_be_visible()
    return panel


def fits_320(page) -> bool:
    frame = page.frame(name="panel-frame")
    width = frame.evaluate("() => document.documentElement.clientWidth")
    return width <= 320 and frame.evaluate(NO_SIDEWAYS_SCROLL)


def script_errors(page) -> list[str]:
    return [e for e in page.console_errors if not e.startswith("Failed to load resource")]


def test_a_paused_subscription_shows_its_resume_date_and_is_resumed(page, sandbox):
    # given Vandelay's subscription paused for 30 days, invoices voided meanwhile
    SandboxProvider(sandbox.workspace).pause_subscription(
        subscription_id="sub_sbx_vandelay",
        behavior="void",
        resumes_at=BRIEF_DAY + timedelta(days=30),
        idempotency_key="pause-vandelay",
    )

    # when a Manager opens the ticket
    panel = open_panel(page, role="manager", scenario="refund-request")

    # then the state is explicit: badge, sentence with the date, the resume row, no renewal
    state = panel.get_by_test_id("subscription-state")
    expect(state).to_contain_text("Paused")
    expect(panel.get_by_test_id("subscription-state-detail")).to_have_text(
        "Payment collection is paused until February 14, 2026. Void invoices while paused."
    )
    expect(panel.get_by_test_id("resumes-at")).to_have_text("Feb 14, 2026")
    expect(panel.get_by_test_id("billing-cycle")).not_to_contain_text("renews")
    # and it offers Resume, not Pause
    expect(panel.get_by_test_id("action-pause_subscription")).to_have_count(0)
    expect(panel.get_by_test_id("action-resume_subscription")).to_be_visible()
    assert fits_320(page)

    # when the Manager resumes it from the state box and confirms
    state.get_by_test_id("state-resume_subscription").click()
    form = panel.get_by_test_id("action-form")
    expect(form.get_by_test_id("confirm-summary")).to_contain_text("Feb 14, 2026")
    form.get_by_test_id("form-confirm").click()

    # then it is done once, and the panel shows the subscription active again
    expect(form.get_by_test_id("action-result")).to_be_visible()
    action = BillingAction.objects.get(kind="resume_subscription")
    assert action.status == BillingAction.Status.SUCCEEDED
    form.get_by_test_id("form-done").click()
    expect(panel.get_by_test_id("subscription-state")).to_have_count(0)
    expect(panel.get_by_test_id("action-pause_subscription")).to_be_visible()
    assert script_errors(page) == []


def test_an_ending_subscription_shows_its_end_date_and_can_be_kept(page, sandbox):
    # given Globex set to cancel at the end of its period
    SandboxProvider(sandbox.workspace).cancel_subscription(
        subscription_id="sub_sbx_globex",
        at_period_end=True,
        reason="too_expensive",
        comment="",
        idempotency_key="cancel-globex",
    )

    # when a Manager opens the ticket
    panel = open_panel(page, role="manager", scenario="duplicate-charge")

    # then it says when it ends, shows no renewal, and offers Keep, not Cancel
    state = panel.get_by_test_id("subscription-state")
    expect(state).to_contain_text("Ending")
    expect(panel.get_by_test_id("subscription-state-detail")).to_contain_text(
        "Set to cancel: it ends on "
    )
    ends = panel.get_by_test_id("ends-at")
    expect(ends).to_have_text(re.compile(r"^[A-Z][a-z]{2} \d{1,2}, 20\d\d$"))  # a date in words
    end_date = ends.inner_text()
    expect(panel.get_by_test_id("billing-cycle")).to_contain_text(f"(ends {end_date})")
    expect(panel.get_by_test_id("billing-cycle")).not_to_contain_text("renews")
    expect(panel.get_by_test_id("action-cancel_subscription")).to_have_count(0)
    keep = state.get_by_test_id("state-undo_cancellation")
    expect(keep).to_have_text("Keep subscription")
    assert fits_320(page)

    # when the Manager keeps it
    keep.click()
    form = panel.get_by_test_id("action-form")
    expect(form.get_by_test_id("confirm-summary")).to_contain_text(end_date)
    form.get_by_test_id("form-confirm").click()

    # then it renews again
    expect(form.get_by_test_id("action-result")).to_be_visible()
    assert BillingAction.objects.get(kind="undo_cancellation").status == "succeeded"
    form.get_by_test_id("form-done").click()
    expect(panel.get_by_test_id("subscription-state")).to_have_count(0)
    expect(panel.get_by_test_id("billing-cycle")).to_contain_text("renews")
    assert script_errors(page) == []


def test_a_cancelled_subscription_offers_no_action_that_cannot_apply(page, sandbox):
    # given the demo's cancelled customer, Stark Retail, opened by a Billing Specialist
    page.goto("/demo/?role=specialist&scenario=several-matches")
    panel = page.frame_locator("#panel-frame")
    picker = panel.get_by_test_id("customer-picker")
    picker.get_by_label("Stark Retail").check()
    picker.get_by_role("button", name="Show billing").click()
    expect(panel.get_by_test_id("customer-name")).to_have_text("Stark Retail")

    # then the state says cancelled with its dates
    state = panel.get_by_test_id("subscription-state")
    expect(state).to_contain_text("Cancelled")
    expect(panel.get_by_test_id("subscription-state-detail")).to_contain_text(
        "It no longer bills and cannot be changed."
    )
    expect(panel.get_by_test_id("ended-at")).to_be_visible()
    expect(panel.get_by_test_id("billing-cycle")).not_to_contain_text("renews")
    # and no subscription action is offered, directly or as a request
    for kind in IMPOSSIBLE_ON_CANCELLED:
        expect(panel.get_by_test_id(f"action-{kind}")).to_have_count(0)
        expect(panel.get_by_test_id(f"request-{kind}")).to_have_count(0)
    # while what still applies to the customer is (a payment link)
    expect(panel.get_by_test_id("action-generate_payment_link")).to_be_visible()
    assert fits_320(page)
    assert script_errors(page) == []


def test_seats_below_those_in_use_are_refused_before_confirm_in_words(page, sandbox):
    # given an L2 agent on Acme (45 of 50 seats in use)
    panel = open_panel(page, role="l2", scenario="acme")
    panel.get_by_test_id("action-adjust_seats").click()
    form = panel.get_by_test_id("action-form")
    seats = form.get_by_label("Seats")
    expect(form).to_contain_text("45 seats are in use.")

    # when they ask for 40 seats
    seats.fill("40")
    form.get_by_test_id("form-review").click()

    # then the form refuses it in words, before any preview or confirm, and sends nothing
    expect(form).to_contain_text("45 seats are in use; the count cannot go below 45.")
    expect(form.get_by_test_id("form-confirm")).to_have_count(0)
    expect(seats).to_be_focused()
    assert not BillingAction.objects.exists()
    assert "below_seats_used" not in form.inner_text()

    # and a count the server can take is previewed like a plan change: the next invoice
    seats.fill("55")
    form.get_by_test_id("form-review").click()
    preview = form.get_by_test_id("change-preview")
    expect(preview).to_contain_text("Remaining time on 55 ×")
    expect(preview.get_by_test_id("preview-next-invoice")).to_contain_text(" on ")
    expect(preview.get_by_test_id("preview-recurring")).to_be_visible()
    expect(form.get_by_test_id("form-confirm")).to_be_visible()
    assert fits_320(page)
    assert not BillingAction.objects.exists()
    assert script_errors(page) == []


def test_a_second_discount_is_refused_at_preview_in_words(page, sandbox):
    # given Acme holding a discount already (a Manager gave 10 % off forever)
    from billing_app.catalog import Role
    from billing_app.services.actions import action_submit

    from .support import demo_context

    done = action_submit(
        context=demo_context(sandbox.workspace, Role.MANAGER),
        kind="apply_discount",
        customer_id=sandbox.acme_id,
        ticket_id="1001",
        params={"subscription_id": "sub_sbx_acme_plan", "percent_off": "10", "duration": "forever"},
        idempotency_key="discount-1",
    )
    assert done.status == "succeeded", done.error_message

    # when a Manager previews another discount in the panel
    panel = open_panel(page, role="manager", scenario="acme")
    panel.get_by_test_id("action-apply_discount").click()
    form = panel.get_by_test_id("action-form")
    form.get_by_test_id("form-review").click()

    # then the server's refusal shows in words before any Confirm, with no code in it
    error = form.get_by_test_id("preview-error")
    expect(error).to_have_text(
        "This subscription already has a discount (10% off forever); a second one is not "
        "added. Change or remove that one in Stripe first."
    )
    expect(form.get_by_test_id("form-confirm")).to_have_count(0)
    assert BillingAction.objects.filter(kind="apply_discount").count() == 1
    assert fits_320(page)


@pytest.mark.parametrize(
    ("scenario", "label", "detail", "offered", "not_offered"),
    [
        (
            "paused",
            "Paused",
            "Payment collection is paused until February 5, 2026. Void invoices while paused.",
            "resume_subscription",
            "pause_subscription",
        ),
        (
            "ending",
            "Ending",
            "Set to cancel: it ends on January 27, 2026 and does not renew.",
            "undo_cancellation",
            "cancel_subscription",
        ),
    ],
)
def test_the_demo_tickets_show_a_paused_and_an_ending_subscription(
    page, sandbox, scenario, label, detail, offered, not_offered
):
    # given the demo's paused (Pied Piper) and ending (Soylent) customers, opened by a Manager
    panel = open_panel(page, role="manager", scenario=scenario)

    # then the state, its dates in words and the one action that undoes it are shown
    state = panel.get_by_test_id("subscription-state")
    expect(state).to_contain_text(label)
    expect(panel.get_by_test_id("subscription-state-detail")).to_contain_text(detail)
    expect(state.get_by_test_id(f"state-{offered}")).to_be_visible()
    expect(panel.get_by_test_id(f"action-{not_offered}")).to_have_count(0)
    expect(panel.get_by_test_id("billing-cycle")).not_to_contain_text("renews")
    assert fits_320(page)
    assert script_errors(page) == []
