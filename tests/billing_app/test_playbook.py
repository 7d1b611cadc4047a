"""The brief's six customer-communication templates, filled from real data."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from billing_app import playbook
from billing_app.catalog import Role
from billing_app.models import ApprovalRequest, BillingAction
from billing_app.money import Money
from billing_app.playbook import Scenario, TemplateError, render
from billing_app.selectors.action_messages import customer_message_for

from .actions_support import account_seed


def test_charged_twice_uses_the_brief_wording():
    # given the duplicate amount
    data = {"amount": Money(4900, "USD")}

    # when the message is rendered
    text = render(Scenario.CHARGED_TWICE, data)

    # then it is the brief's text with the amount filled in
    assert text == (
        "We found a duplicate charge of $49.00. We've issued an immediate refund. "
        "It will appear on your statement within 5-7 business days."
    )


def test_payment_failed_with_and_without_grace_days():
    data = {
        "amount": Money(240000, "USD"),
        "reason": "an expired card",
        "link": "https://invoice.stripe.com/i/x",
    }
    assert render(Scenario.PAYMENT_FAILED, {**data, "days": 7}) == (
        "Your payment of $2,400.00 failed due to an expired card. Please update your payment "
        "method using this link: https://invoice.stripe.com/i/x. Your account will remain active "
        "for 7 days while you update."
    )
    # without a grace period the optional sentence is left out, not shown with a blank
    assert render(Scenario.PAYMENT_FAILED, data).endswith("https://invoice.stripe.com/i/x.")


def test_plan_change_refund_overcharge_and_tax_invoice():
    assert render(
        Scenario.PLAN_CHANGE,
        {
            "old_plan": "Enterprise Pro",
            "new_plan": "Enterprise Ultimate",
            "interval": "monthly",
            "amount": Money(460000, "USD"),
            "date": datetime(2026, 1, 28, tzinfo=UTC),
            "features": ["SSO", "Audit log"],
        },
    ) == (
        "Your plan has been updated from Enterprise Pro to Enterprise Ultimate. Your new monthly "
        "charge is $4,600.00 (effective January 28, 2026). Here's what's included: SSO, Audit log"
    )
    assert render(Scenario.REFUND_APPROVED, {"amount": Money(5000, "EUR"), "context": ""}) == (
        "We've processed your refund of €50.00. The credit will appear within 5-7 business days."
    )
    assert render(
        Scenario.REFUND_DENIED,
        {"reason": "it is older than 180 days", "alternative": "a credit on your next invoice"},
    ) == (
        "Based on our refund policy, this charge isn't eligible for refund because it is older "
        "than 180 days. However, I can offer a credit on your next invoice."
    )
    assert render(
        Scenario.OVERCHARGE,
        {
            "amount": Money(264000, "USD"),
            "breakdown": "Enterprise Pro $2,400.00; 5 extra seats (prorated) $240.00",
            "explanation": "seats were added mid-cycle",
            "next_amount": Money(264000, "USD"),
        },
    ) == (
        "I reviewed your invoice. The $2,640.00 charge includes: Enterprise Pro $2,400.00; 5 extra "
        "seats (prorated) $240.00. This is because seats were added mid-cycle. Your next invoice "
        "will be $2,640.00."
    )
    assert render(Scenario.TAX_INVOICE, {"period": "January 2026", "link": "https://x/pdf"}) == (
        "I've generated your tax invoice for January 2026. You can download it here: "
        "https://x/pdf. If you need it in a specific format, let me know."
    )


def test_zero_decimal_currency_is_formatted_without_decimals():
    assert "¥5,000" in render(Scenario.CHARGED_TWICE, {"amount": Money(5000, "JPY")})


def test_missing_required_data_is_an_error_not_a_blank():
    with pytest.raises(TemplateError, match="reason"):
        render(Scenario.PAYMENT_FAILED, {"amount": Money(100, "USD"), "link": "https://x"})


def override_loader(*, workspace, scenario):
    return {
        Scenario.CHARGED_TWICE: "Sorry! {amount} was charged twice; it is on its way back.",
        Scenario.TAX_INVOICE: "Invoice {period}: {link} {amount.__class__}",
    }.get(scenario)


def test_workspace_override_plugs_in_and_a_bad_one_falls_back(settings, workspace):
    # given a loader returning workspace wording (one of them trying attribute access)
    settings.BILLING_DESK_PLAYBOOK_LOADER = "tests.billing_app.test_playbook.override_loader"

    # then the override is used where it can be filled
    assert render(Scenario.CHARGED_TWICE, {"amount": Money(4900, "USD")}, workspace=workspace) == (
        "Sorry! $49.00 was charged twice; it is on its way back."
    )
    # and a template reaching for attributes is refused: the brief's wording is used
    text = render(
        Scenario.TAX_INVOICE, {"period": "May 2026", "link": "https://x"}, workspace=workspace
    )
    assert text.startswith("I've generated your tax invoice for May 2026.")
    # and without a workspace no override is looked up
    assert render(Scenario.CHARGED_TWICE, {"amount": Money(4900, "USD")}).startswith("We found")


def test_template_fields_are_bare_names_only():
    with pytest.raises(TemplateError):
        playbook.fill("{amount!r}", {"amount": "x"})
    with pytest.raises(TemplateError):
        playbook.fill("{a[0]}", {"a": "x"})


# --- from an action's outcome to its message ------------------------------------------------


@pytest.fixture
def acme(workspace):
    return account_seed(workspace)


def _action(workspace, sign_in, **fields):
    membership, _ = sign_in(workspace, Role.MANAGER)
    defaults = {
        "workspace": workspace,
        "actor": membership.user,
        "actor_role": "manager",
        "customer_id": "cus_acme",
        "ticket_id": "1001",
        "decision": "allow",
        "idempotency_key": f"k-{fields['kind']}-{fields.get('status')}",
        "request_fingerprint": "x",
        "params": {},
        "result": {},
    }
    return BillingAction.objects.create(**{**defaults, **fields})


def test_message_for_duplicate_refund_and_refund(workspace, acme, sign_in):
    dup = _action(
        workspace,
        sign_in,
        kind="refund_duplicate_charge",
        status="succeeded",
        result={"amount": {"amount": 4900, "currency": "USD"}, "charge_id": "ch_acme_dup2"},
    )
    assert customer_message_for(action=dup).startswith("We found a duplicate charge of $49.00.")
    refund = _action(
        workspace,
        sign_in,
        kind="issue_refund",
        status="succeeded",
        params={"comment": "We're sorry about the outage on May 3."},
        result={"amount": {"amount": 12000, "currency": "USD"}},
    )
    assert customer_message_for(action=refund) == (
        "We've processed your refund of $120.00. The credit will appear within 5-7 business days. "
        "We're sorry about the outage on May 3."
    )


def test_message_for_denied_refund_gives_the_approvers_reason(workspace, acme, sign_in):
    action = _action(workspace, sign_in, kind="issue_refund", status="denied", amount=12000)
    ApprovalRequest.objects.create(
        action=action,
        workspace=workspace,
        required_roles=["manager"],
        reason="above limit",
        status="denied",
        comment="the service was used for the whole month",
        expires_at=acme.now,
    )
    action.refresh_from_db()
    assert customer_message_for(action=action) == (
        "Based on our refund policy, this charge isn't eligible for refund because the service "
        "was used for the whole month."
    )


def test_message_for_payment_link_names_the_failure_reason(workspace, acme, sign_in):
    action = _action(
        workspace,
        sign_in,
        kind="generate_payment_link",
        status="succeeded",
        params={"invoice_id": "in_acme_open"},
        result={"url": "https://invoice.stripe.com/i/acct_test/in_acme_open"},
    )
    assert customer_message_for(action=action) == (
        "Your payment of $3,400.00 failed due to an expired card. Please update your payment "
        "method using this link: https://invoice.stripe.com/i/acct_test/in_acme_open."
    )


def test_message_for_tax_invoice_uses_the_service_period_and_pdf(workspace, acme, sign_in):
    action = _action(
        workspace,
        sign_in,
        kind="send_tax_invoice",
        status="succeeded",
        params={"invoice_id": "in_acme_paid"},
        result={"invoice_pdf": "https://pay.stripe.com/invoice/acct_test/in_acme_paid/pdf"},
    )
    message = customer_message_for(action=action)
    assert "https://pay.stripe.com/invoice/acct_test/in_acme_paid/pdf" in message
    start = acme.now.replace(microsecond=0) - __import__("datetime").timedelta(days=40)
    assert f"{start:%B} {start.day}, {start.year}" in message


def test_message_for_plan_change_names_both_plans(workspace, acme, sign_in):
    action = _action(
        workspace,
        sign_in,
        kind="change_plan",
        status="succeeded",
        result={
            "previous_price_id": "price_pro_seat",
            "new_price_id": "price_ultimate_seat",
            "effective_date": "2026-12-01T00:00:00+00:00",
            "preview": {"new_recurring_amount": {"amount": 460000, "currency": "USD"}},
        },
    )
    assert customer_message_for(action=action) == (
        "Your plan has been updated from Enterprise Pro to Enterprise Ultimate. Your new monthly "
        "charge is $4,600.00 (effective December 1, 2026). Here's what's included: SSO, Audit log, "
        "Sandbox orgs"
    )


def test_no_message_for_kinds_without_a_scenario(workspace, acme, sign_in):
    action = _action(workspace, sign_in, kind="adjust_seats", status="succeeded")
    assert customer_message_for(action=action) == ""


@pytest.mark.parametrize(
    "comment", ["see {policy}", "a lone { brace", "a lone } brace", "{customer_email}", "[[x]] {"]
)
def test_a_value_is_never_read_as_template_text(comment):
    # given an approver's comment (inside an optional segment) with braces in it
    text = "Refund denied[[ because {reason}]]. Contact {email}."

    # when the message is filled
    filled = playbook.fill(text, {"reason": comment, "email": "billing@acme.example"})

    # then the comment comes out as written, and nothing else is substituted into it
    assert filled == f"Refund denied because {comment}. Contact billing@acme.example."


def test_a_stray_brace_in_a_template_is_a_template_error():
    with pytest.raises(TemplateError, match="unbalanced braces"):
        playbook.fill("Hello } there {name}", {"name": "Ada"})
