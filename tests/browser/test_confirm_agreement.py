"""The confirm step says what will happen, and what happens is what it said (issue 14).

The dry run is the decision execution takes; these follow the issue's two cases in the
browser at the sidebar's 320 px: a Manager's refund for a customer with a refund pattern,
which the old confirm step promised would happen at once.
"""

from __future__ import annotations

import pytest

from billing_app.models import ApprovalRequest, BillingAction

expect = pytest.importorskip(
    "playwright.sync_api", reason="playwright is not installed: pip install -e '.[dev]'"
).expect

pytestmark = pytest.mark.browser


def test_a_managers_refund_with_a_refund_pattern_says_manager_review_and_goes_there(page, sandbox):
    # given a Manager (refunds without limit) on Wayne Services: 3 refunds in 90 days
    page.set_viewport_size({"width": 900, "height": 900})
    page.goto("/demo/?role=manager&scenario=refund-pattern")
    panel = page.frame_locator("#panel-frame")
    expect(panel.get_by_test_id("section-account")).to_be_visible()

    # when they open a refund and review it
    panel.get_by_test_id("action-issue_refund").click()
    form = panel.get_by_test_id("action-form")
    form.get_by_test_id("form-review").click()

    # then the confirm step says it goes to a Manager because of the refund pattern,
    # in words, and offers "Send for approval" rather than a Confirm that promises money
    dry_run = form.get_by_test_id("dry-run")
    expect(dry_run).to_contain_text("Goes to a Manager for approval")
    expect(dry_run).to_contain_text("Refund pattern: 3 refunds in the last 90 days")
    expect(dry_run).not_to_contain_text("Happens now")
    form.get_by_role("button", name="Send for approval").click()

    # and that is what happens: a Manager review request, no refund
    expect(form.get_by_test_id("action-result")).to_have_attribute(
        "data-status", "pending_approval"
    )
    expect(form.get_by_test_id("action-result")).to_contain_text("Sent for approval to Manager")
    action = BillingAction.objects.get(kind="issue_refund")
    assert action.status == BillingAction.Status.PENDING_APPROVAL
    assert ApprovalRequest.objects.get(action=action).required_roles == ["manager"]
    assert page.console_errors == []
