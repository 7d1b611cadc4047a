"""The agent panel in a real browser: the demo host page frames it beside a ticket,
exactly as a helpdesk does, on the sandbox seeded by ``seed_demo``."""

from __future__ import annotations

import re

import pytest

from billing_app.catalog import Role
from billing_app.models import ApprovalRequest, BillingAction, MirrorRefund
from billing_app.providers.sandbox.control import sandbox_control_set
from billing_app.services.actions import action_submit
from billing_app.vocabulary import ACTION_LABELS, REFUND_REASONS

from .support import demo_context

expect = pytest.importorskip(
    "playwright.sync_api", reason="playwright is not installed: pip install -e '.[dev]'"
).expect

pytestmark = pytest.mark.browser

ACME_EMAIL = "billing@acme.example"
# The brief's ✅ cells of the L1 column (a tax invoice is a resent invoice).
L1_ACTIONS = {
    "generate_payment_link",
    "resend_invoice",
    "send_tax_invoice",
    "extend_trial",
    "extend_grace_period",
}

STRICT_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; object-src 'none'; frame-ancestors 'self'"
)


def open_panel(page, *, role: str, scenario: str = "acme"):
    page.goto(f"/demo/?role={role}&scenario={scenario}")
    panel = page.frame_locator("#panel-frame")
    expect(panel.get_by_test_id("section-account")).to_be_visible()
    return panel


def test_l1_sees_acme_context_and_only_the_actions_the_brief_gives_l1(page, sandbox):
    # given an L1 agent on Acme Corp's ticket
    panel = open_panel(page, role="l1")

    # then the whole billing context of the brief is there
    expect(panel.get_by_test_id("customer-name")).to_have_text("Acme Corp")
    expect(panel.get_by_test_id("role")).to_have_text("L1 Agent")
    expect(panel.get_by_test_id("plan")).to_have_text("Enterprise Pro ($2,400/month)")
    expect(panel.get_by_test_id("billing-cycle")).to_have_text("Monthly (renews Jan 28, 2026)")
    expect(panel.get_by_test_id("payment-method")).to_have_text(
        "Visa ending 4242 (expires 03/2027)"
    )
    expect(panel.get_by_test_id("billing-email")).to_have_text(ACME_EMAIL)
    expect(panel.get_by_test_id("billing-address")).to_have_text(
        "123 Enterprise Way, San Francisco, CA"
    )
    expect(panel.get_by_test_id("last-payment")).to_have_text("$2,400.00 on 2026-01-01 Success")
    expect(panel.get_by_test_id("next-invoice")).to_have_text("$2,400.00 on 2026-01-28")
    expect(panel.get_by_test_id("outstanding-balance")).to_have_text("$0.00")
    expect(panel.get_by_test_id("failures-12m")).to_have_text("0")
    expect(panel.locator("[data-testid=payment-history] > li")).to_have_count(6)
    expect(panel.get_by_test_id("available-credit")).to_have_text("$0.00")
    expect(panel.get_by_test_id("seats")).to_contain_text("45 of 50 (90% utilization)")
    for addon in (
        "Advanced Analytics ($500.00/month)",
        "Priority Support ($300.00/month)",
        "API Extra Pack ($200.00/month)",
    ):
        expect(panel.get_by_test_id("addons")).to_contain_text(addon)
    expect(panel.get_by_test_id("start-date")).to_have_text("2024-03-15")
    expect(panel.get_by_test_id("contract-end")).to_have_text("2026-03-15 (annual)")
    expect(panel.get_by_test_id("auto-renew")).to_have_text("Enabled")
    expect(panel.get_by_test_id("total-revenue")).to_have_text("$136,800.00")
    expect(panel.get_by_test_id("months-active")).to_have_text("22")
    expect(panel.get_by_test_id("mrr")).to_have_text("$3,400.00")
    expect(panel.get_by_test_id("arr")).to_have_text("$40,800.00")
    expect(panel.get_by_test_id("churn-risk")).to_have_text("Low (on-time payments, high usage)")
    expect(panel.get_by_test_id("credits-applied")).to_have_text("$0.00")
    expect(panel.get_by_test_id("pending-credits")).to_have_text("None")
    rows = panel.locator("[data-testid=payment-history] > li")
    expect(rows.first).to_have_text(
        re.compile(r"^2026-01-01\$2,400\.00PaidVisa 4242Invoice INV-2026-01$")
    )
    expect(panel.get_by_test_id("data-age")).to_have_text(re.compile(r"^Updated "))

    # and only the brief's L1 actions are offered: no refund, credit, pause, plan change,
    # seats, discount or payment-method update, not even as a request for approval (❌)
    offered = set(
        panel.locator("[data-testid=direct-actions] button[data-kind]").evaluate_all(
            "(buttons) => buttons.map((b) => b.dataset.kind)"
        )
    )
    assert {"generate_payment_link", "resend_invoice"} <= offered
    assert offered <= L1_ACTIONS
    expect(panel.get_by_test_id("request-actions")).to_have_count(0)
    expect(panel.get_by_text(re.compile(r"^Request approval"))).to_have_count(0)
    expect(
        panel.get_by_role("button", name=re.compile(ACTION_LABELS["issue_refund"]))
    ).to_have_count(0)
    assert page.console_errors == []


def test_a_refund_above_the_specialists_limit_is_sent_to_a_manager(page, sandbox):
    # given a Billing Specialist (refunds up to $1,000) on Acme Corp's $2,400 payment
    panel = open_panel(page, role="specialist")
    button = panel.get_by_test_id("action-issue_refund")
    expect(button).to_contain_text("up to $1,000.00")
    button.click()
    form = panel.get_by_test_id("action-form")
    expect(form.get_by_label("Amount to refund (USD)")).to_have_value("2400.00")

    # when they refund $1,200 of it
    form.get_by_label("Amount to refund (USD)").fill("1200")
    form.get_by_test_id("form-review").click()
    expect(form.get_by_test_id("dry-run")).to_contain_text("Goes to a Manager for approval")
    form.get_by_role("button", name="Send for approval").click()

    # then it becomes a request for a Manager's approval, and no money moved
    expect(form.get_by_test_id("action-result")).to_have_attribute(
        "data-status", "pending_approval"
    )
    action = BillingAction.objects.get(kind="issue_refund")
    assert action.status == BillingAction.Status.PENDING_APPROVAL
    assert action.amount == 120_000
    approval = ApprovalRequest.objects.get(action=action, status="pending")
    assert approval.required_roles == ["manager"]
    assert (
        not MirrorRefund.objects.filter(workspace=sandbox.workspace)
        .exclude(stripe_id__in=sandbox.refund_ids)
        .exists()
    )
    assert page.console_errors == []


def test_l2_applies_a_50_dollar_credit_and_sees_it_in_the_context(page, sandbox):
    # given an L2 agent on Acme Corp with no credit on the account
    panel = open_panel(page, role="l2")
    expect(panel.get_by_test_id("available-credit")).to_have_text("$0.00")

    # when they apply a $50 credit (their limit shows on the button)
    button = panel.get_by_test_id("action-apply_credit")
    expect(button).to_contain_text("below $100.00")
    button.click()
    form = panel.get_by_test_id("action-form")
    form.get_by_label("Credit amount (USD)").fill("50")
    form.get_by_label("Reason (shown on the customer's balance)").fill("Service outage on Jan 3")
    form.get_by_test_id("form-review").click()
    expect(form.get_by_test_id("confirm-summary")).to_contain_text("$50.00")
    expect(form.get_by_test_id("confirm-summary")).to_contain_text("Acme Corp")
    expect(form.get_by_test_id("dry-run")).to_contain_text("Happens now")
    form.get_by_role("button", name="Confirm").click()

    # then it is done, with a message for the customer, and the context shows the credit
    expect(form.get_by_test_id("action-result")).to_have_attribute("data-status", "succeeded")
    expect(form).to_contain_text("Credit now available$50.00")
    form.get_by_test_id("form-done").click()
    expect(panel.get_by_test_id("available-credit")).to_have_text("$50.00")
    expect(panel.get_by_test_id("recent-actions")).to_contain_text("Apply credit")
    action = BillingAction.objects.get(kind="apply_credit")
    assert (action.status, action.amount, action.currency) == ("succeeded", 5_000, "USD")

    # and the ticket got an internal note about it (shown by the demo helpdesk)
    page.reload()
    expect(page.get_by_test_id("ticket-note")).to_contain_text("$50.00")


def test_manager_approves_a_refund_a_specialist_requested_above_their_limit(page, sandbox):
    # given a $1,500 refund a Billing Specialist (up to $1,000) requested on Acme's last payment
    workspace = sandbox.workspace
    specialist = demo_context(workspace, Role.SPECIALIST)
    charge_id = sandbox.acme_last_charge_id
    requested = action_submit(
        context=specialist,
        kind="issue_refund",
        customer_id=sandbox.acme_id,
        ticket_id="1001",
        params={
            "charge_id": charge_id,
            "amount": 150_000,
            "currency": "USD",
            "reason": "service_outage",
        },
        idempotency_key="specialist-request-1",
    )
    assert requested.status == BillingAction.Status.PENDING_APPROVAL

    # when the Manager opens the Approvals tab and approves it with a comment
    panel = open_panel(page, role="manager")
    tab = panel.get_by_role("tab", name="Approvals (1)")
    tab.click()
    card = panel.get_by_test_id("approval")
    expect(card).to_contain_text("$1,500.00")
    expect(card).to_contain_text("Demo Billing Specialist")
    card.get_by_label("Comment").fill("Outage credit confirmed")
    card.get_by_role("button", name="Approve").click()

    # then the refund executes, with the Manager recorded as approver
    expect(panel.get_by_test_id("approval-result")).to_have_attribute("data-status", "succeeded")
    expect(panel.get_by_test_id("approvals-empty")).to_be_visible()
    requested.refresh_from_db()
    assert requested.status == BillingAction.Status.SUCCEEDED
    assert requested.approved_by.username.endswith("demo-manager")
    assert requested.approval.status == ApprovalRequest.Status.APPROVED
    assert requested.approval.comment == "Outage credit confirmed"
    assert MirrorRefund.objects.filter(
        workspace=workspace, charge_id=charge_id, amount=150_000
    ).exists()


def test_an_l1_agent_has_no_approvals_tab(page, sandbox):
    panel = open_panel(page, role="l1")
    expect(panel.get_by_role("tab")).to_have_count(0)


def test_plan_change_shows_its_preview_before_it_can_be_confirmed(page, sandbox):
    # given an L2 agent (who may change plans) on Acme Corp
    panel = open_panel(page, role="l2")
    panel.get_by_test_id("action-change_plan").click()
    form = panel.get_by_test_id("action-form")

    # when they pick another plan, no confirm button exists until the preview is shown
    select = form.get_by_label("New plan")
    expect(select.locator("option", has_text="Enterprise Pro")).to_have_count(0)  # the current one
    select.select_option(label="Enterprise Plus ($3,200/month) · $64 × 50 seats")
    expect(form.get_by_test_id("form-confirm")).to_have_count(0)
    form.get_by_role("button", name="Preview").click()

    # then the proration lines, amount due now, new recurring amount and date come first
    preview = form.get_by_test_id("plan-preview")
    expect(preview.locator("tbody tr")).to_have_count(2)
    expect(preview).to_contain_text("Unused time on 50 × Enterprise Pro")
    expect(form.get_by_test_id("preview-due-now")).to_have_text("$322.58")
    expect(form.get_by_test_id("preview-recurring")).to_have_text("$3,200.00")
    expect(form.get_by_test_id("preview-effective")).to_have_text("Jan 15, 2026")
    expect(form.get_by_test_id("form-confirm")).to_be_visible()
    assert not BillingAction.objects.filter(kind="change_plan").exists()

    # and confirming makes the change the preview described
    form.get_by_test_id("form-confirm").click()
    expect(form.get_by_test_id("action-result")).to_have_attribute("data-status", "succeeded")
    change = BillingAction.objects.get(kind="change_plan")
    assert change.status == "succeeded"
    assert change.params["price_id"] == "price_sbx_enterprise_plus__monthly"
    assert change.result["preview"]["amount_due_now"]["amount"] == 32_258


def test_a_double_click_makes_one_action(page, sandbox):
    # given an L2 agent confirming a $20 credit
    panel = open_panel(page, role="l2")
    panel.get_by_test_id("action-apply_credit").click()
    form = panel.get_by_test_id("action-form")
    form.get_by_label("Credit amount (USD)").fill("20")
    form.get_by_label("Reason (shown on the customer's balance)").fill("Goodwill")
    form.get_by_test_id("form-review").click()

    # when the confirm button is double-clicked
    form.get_by_test_id("form-confirm").dblclick()

    # then exactly one action exists
    expect(form.get_by_test_id("action-result")).to_have_attribute("data-status", "succeeded")
    assert BillingAction.objects.filter(kind="apply_credit").count() == 1


def test_a_resubmission_after_a_lost_answer_reuses_the_idempotency_key(page, sandbox):
    # given the first answer to "confirm" is lost on the way back (the server acted)
    lost = {"count": 0}

    def lose_first_answer(route):
        if route.request.method == "POST" and lost["count"] == 0:
            lost["count"] += 1
            route.fetch()
            route.abort("connectionreset")
        else:
            route.continue_()

    page.route("**/api/v1/actions/", lose_first_answer)
    sent = []
    page.on(
        "request",
        lambda r: (
            r.method == "POST"
            and r.url.endswith("/api/v1/actions/")
            and sent.append(r.post_data_json)
        ),
    )
    panel = open_panel(page, role="l2")
    panel.get_by_test_id("action-apply_credit").click()
    form = panel.get_by_test_id("action-form")
    form.get_by_label("Credit amount (USD)").fill("30")
    form.get_by_label("Reason (shown on the customer's balance)").fill("Goodwill")
    form.get_by_test_id("form-review").click()
    form.get_by_test_id("form-confirm").click()
    expect(form.get_by_test_id("form-error")).to_contain_text("could not be reached")

    # when the agent submits again
    form.get_by_test_id("form-confirm").click()

    # then the server answers with the first action: one credit, not two
    expect(form.get_by_test_id("action-result")).to_have_attribute("data-status", "succeeded")
    assert BillingAction.objects.filter(kind="apply_credit").count() == 1
    assert len(sent) == 2
    assert sent[0]["idempotency_key"] == sent[1]["idempotency_key"]


def test_provider_down_shows_mirrored_data_with_a_banner(page, sandbox):
    # given the billing provider does not answer
    sandbox_control_set(workspace=sandbox.workspace, down=True, reason="test outage")

    # when an agent opens Acme's ticket
    panel = open_panel(page, role="l2")

    # then the mirrored context is shown under a clear banner
    expect(panel.get_by_test_id("provider-down-banner")).to_contain_text(
        "Billing provider unavailable"
    )
    expect(panel.get_by_test_id("plan")).to_have_text("Enterprise Pro ($2,400/month)")


def test_escape_closes_an_action_form_and_returns_focus(page, sandbox):
    panel = open_panel(page, role="l2")
    button = panel.get_by_test_id("action-apply_credit")
    button.focus()
    page.keyboard.press("Enter")
    form = panel.get_by_test_id("action-form")
    expect(form.get_by_label("Credit amount (USD)")).to_be_focused()
    page.keyboard.press("Escape")
    expect(form).to_have_count(0)
    expect(panel.get_by_test_id("action-apply_credit")).to_be_focused()
    assert not BillingAction.objects.exists()


def test_the_panel_runs_under_a_strict_script_src_self_policy(page, sandbox):
    # given the panel page served with a CSP that allows only this origin's scripts and styles
    def strict(route):
        response = route.fetch()
        headers = {**response.headers, "content-security-policy": STRICT_CSP}
        route.fulfill(response=response, headers=headers)

    page.route("**/demo/panel/", strict)

    # when the panel loads and renders the context
    panel = open_panel(page, role="l1")
    expect(panel.get_by_test_id("seats")).to_contain_text("45 of 50")

    # then nothing was blocked
    assert not [e for e in page.console_errors if "Content Security Policy" in e]


def test_the_forms_offer_the_servers_words(page, sandbox):
    # given a Manager opening the refund form on Acme Corp
    panel = open_panel(page, role="manager")
    panel.get_by_test_id("action-issue_refund").click()
    form = panel.get_by_test_id("action-form")

    # then the reasons offered are the server's refund reasons, in its order
    options = form.get_by_label("Reason").locator("option")
    expect(options).to_have_text([r.label for r in REFUND_REASONS.values()])
    assert page.console_errors == []
