"""Every action kind's parameters in words: formatted money, days, percent, names, labels."""

from __future__ import annotations

import re

import pytest

from billing_app.action_words import (
    FACT_NAMES,
    action_facts,
    action_lines,
    date_words,
    lines_text,
    percent_words,
)
from billing_app.catalog import ActionKind

NAMES = {
    "price_starter": "Starter (monthly)",
    "price_business": "Business (monthly)",
    "sub_1": "Business plan",
}

# One realistic (params, amount, currency, result) per kind, as the service records it.
CASES: dict[ActionKind, dict] = {
    ActionKind.GENERATE_PAYMENT_LINK: {
        "params": {"invoice_id": "in_42"},
        "result": {
            "url": "https://pay.example/inv_42",
            "kind": "hosted_invoice",
            "object_id": "in_42",
            "expires_at": "2026-03-01T00:00:00+00:00",
        },
    },
    ActionKind.RESEND_INVOICE: {
        "params": {"invoice_id": "in_42"},
        "result": {
            "invoice_id": "in_42",
            "method": "email",
            "hosted_invoice_url": "https://invoice.example/in_42",
            "invoice_pdf": "https://invoice.example/in_42.pdf",
        },
    },
    ActionKind.APPLY_CREDIT: {
        "params": {"amount": 5000, "currency": "USD", "description": "Outage on May 3"},
        "amount": 5000,
        "currency": "USD",
        "result": {"ending_balance": {"amount": -5000, "currency": "USD"}},
    },
    ActionKind.ISSUE_REFUND: {
        "params": {
            "amount": 60000,
            "currency": "USD",
            "charge_id": "ch_9",
            "reason": "billing_error",
            "comment": "Charged for 12 seats, uses 10",
        },
        "amount": 60000,
        "currency": "USD",
        "result": {"status": "succeeded", "billing_desk_reason": "billing_error"},
    },
    ActionKind.EXTEND_TRIAL: {
        "params": {"subscription_id": "sub_1", "days": 7},
        "result": {"status": "trialing", "trial_end": "2026-02-14T00:00:00+00:00"},
    },
    ActionKind.PAUSE_SUBSCRIPTION: {
        "params": {
            "subscription_id": "sub_1",
            "behavior": "mark_uncollectible",
            "resumes_at": "2026-04-01T00:00:00+00:00",
        },
    },
    ActionKind.CHANGE_PLAN: {
        "params": {"subscription_id": "sub_1", "price_id": "price_business"},
        "result": {
            "direction": "upgrade",
            "new_price_id": "price_business",
            "effective_date": "2026-01-15T00:00:00+00:00",
            "invoice_id": "in_1Pr0",
            "previous_price_id": "price_starter",
            "preview": {
                "amount_due_now": {"amount": 45000, "currency": "USD"},
                "new_recurring_amount": {"amount": 150000, "currency": "USD"},
            },
            "mrr_delta": 100000,
            "mrr_currency": "USD",
        },
    },
    ActionKind.CANCEL_SUBSCRIPTION: {
        "params": {
            "subscription_id": "sub_1",
            "reason": "too_expensive",
            "comment": "",
            "customer_requested": True,
        },
        "result": {"cancel_at_period_end": True, "cancel_at": "2026-02-01T00:00:00+00:00"},
    },
    ActionKind.FORCE_CANCEL: {
        "params": {
            "subscription_id": "sub_1",
            "reason": "other",
            "comment": "Terms violation, per Legal",
            "customer_requested": False,
        },
    },
    ActionKind.UPDATE_PAYMENT_METHOD: {
        "params": {"return_url": ""},
        "result": {"url": "https://portal.example/s/abc", "kind": "billing_portal"},
    },
    ActionKind.ADJUST_SEATS: {
        "params": {"subscription_id": "sub_1", "quantity": 12},
        "result": {"previous_quantity": 10, "mrr_delta": -10000, "mrr_currency": "USD"},
    },
    ActionKind.APPLY_DISCOUNT: {
        "params": {
            "subscription_id": "sub_1",
            "percent_off": "12.5",
            "duration": "repeating",
            "duration_in_months": 3,
        },
    },
    ActionKind.REFUND_DUPLICATE_CHARGE: {
        "params": {"charge_ids": ["ch_1A", "ch_2B"]},
        "amount": 2999,
        "currency": "EUR",
        "result": {"charge_id": "ch_2B", "original_charge_id": "ch_1A", "status": "pending"},
    },
    ActionKind.EXTEND_GRACE_PERIOD: {
        "params": {"subscription_id": "sub_1", "days": 5, "invoice_id": "in_7"},
        "result": {"grace_until": "2026-01-20T00:00:00+00:00"},
    },
    ActionKind.SEND_TAX_INVOICE: {
        "params": {
            "invoice_id": "in_42",
            "tax_id": {"type": "eu_vat", "value": "DE123456789"},
            "address": {
                "line1": "Hauptstr. 1",
                "line2": "",
                "city": "Berlin",
                "state": "",
                "postal_code": "10115",
                "country": "DE",
            },
        },
        "result": {"method": "link", "hosted_invoice_url": "https://invoice.example/in_42"},
    },
    ActionKind.RESUME_SUBSCRIPTION: {
        "params": {"subscription_id": "sub_1"},
        "result": {
            "status": "active",
            "pause_collection": None,
            "paused": {"behavior": "keep_as_draft", "resumes_at": 1775001600},
        },
    },
    ActionKind.UNDO_CANCELLATION: {
        "params": {"subscription_id": "sub_1"},
        "result": {
            "status": "active",
            "cancel_at_period_end": False,
            "was_ending_at": "2026-02-01T00:00:00+00:00",
        },
    },
}

# What each kind's lines must say, in words.
EXPECTED: dict[ActionKind, dict[str, str]] = {
    ActionKind.GENERATE_PAYMENT_LINK: {
        "Invoice": "in_42",
        "Payment link": "https://pay.example/inv_42",
        "Link expires": "March 1, 2026",
    },
    ActionKind.RESEND_INVOICE: {
        "Sent": "Emailed to the customer",
        "Invoice link": "https://invoice.example/in_42",
        "PDF": "https://invoice.example/in_42.pdf",
    },
    ActionKind.APPLY_CREDIT: {
        "Credit": "$50.00",
        "Description": "Outage on May 3",
        "Balance after": "$50.00 in credit",
    },
    ActionKind.ISSUE_REFUND: {
        "Refund": "$600.00",
        "Charge": "ch_9",
        "Reason": "Billing error",
        "Comment": "Charged for 12 seats, uses 10",
        "Refund status": "Refunded",
    },
    ActionKind.EXTEND_TRIAL: {
        "Subscription": "Business plan",
        "Trial extended by": "7 days",
        "Trial ends": "February 14, 2026",
    },
    ActionKind.PAUSE_SUBSCRIPTION: {
        "While paused": "Mark invoices uncollectible",
        "Resumes": "April 1, 2026",
    },
    ActionKind.CHANGE_PLAN: {
        "From": "Starter (monthly)",
        "To": "Business (monthly)",
        "Change": "Upgrade, from now",
        "Effective": "January 15, 2026",
        "Charged now": "$450.00",
        "New recurring amount": "$1,500.00",
        "MRR change": "+$1,000.00 a month",
        "Proration invoice": "in_1Pr0",
    },
    ActionKind.CANCEL_SUBSCRIPTION: {
        "When": "At the end of the billing period (February 1, 2026)",
        "Reason": "Too expensive",
        "Customer asked": "Yes",
    },
    ActionKind.FORCE_CANCEL: {
        "When": "Now, immediately",
        "Reason": "Other",
        "Comment": "Terms violation, per Legal",
        "Customer asked": "No",
    },
    ActionKind.UPDATE_PAYMENT_METHOD: {"Portal link": "https://portal.example/s/abc"},
    ActionKind.ADJUST_SEATS: {"Seats": "10 → 12", "MRR change": "-$100.00 a month"},
    ActionKind.APPLY_DISCOUNT: {"Discount": "12.5% off", "Duration": "For 3 months"},
    ActionKind.REFUND_DUPLICATE_CHARGE: {
        "Refund": "€29.99",
        "Refunded charge": "ch_2B",
        "Kept charge": "ch_1A",
        "Reason": "Duplicate charge",
        "Refund status": "Pending at the bank",
    },
    ActionKind.EXTEND_GRACE_PERIOD: {
        "Grace period extended by": "5 days",
        "Grace until": "January 20, 2026",
        "Failed invoice": "in_7",
    },
    ActionKind.SEND_TAX_INVOICE: {
        "Invoice": "in_42",
        "Tax id": "EU VAT number DE123456789",
        "Address": "Hauptstr. 1, 10115 Berlin, DE",
        "Sent": "As a link to share in a reply",
        "Invoice link": "https://invoice.example/in_42",
    },
    ActionKind.RESUME_SUBSCRIPTION: {
        "Collection": "Resumed now: invoices are collected again",
        "While it was paused": "Keep invoices as drafts",
        "Was to resume": "April 1, 2026",
        "Status": "Active",
    },
    ActionKind.UNDO_CANCELLATION: {
        "Cancellation": "Withdrawn: the subscription renews as before",
        "Was to end": "February 1, 2026",
        "Status": "Active",
    },
}

# A raw enumeration value or Python value: snake_case words, booleans, None.
RAW_VALUE = re.compile(r"\b[a-z]+(?:_[a-z]+)+\b|\bTrue\b|\bFalse\b|\bNone\b")


def _raw_strings(value) -> set[str]:
    if isinstance(value, dict):
        return set().union(*(_raw_strings(v) for v in value.values()), set())
    if isinstance(value, list):
        return set().union(*(_raw_strings(v) for v in value), set())
    return {value} if isinstance(value, str) and value.isalpha() else set()


def _lines(kind: ActionKind, **overrides) -> list[tuple[str, str]]:
    case = CASES[kind] | overrides
    return action_lines(
        kind,
        case["params"],
        amount=case.get("amount"),
        currency=case.get("currency", ""),
        result=case.get("result"),
        names=NAMES,
    )


def test_every_kind_has_a_case():
    assert set(CASES) == set(ActionKind) == set(EXPECTED)


@pytest.mark.parametrize("kind", list(ActionKind))
def test_each_kind_says_its_parameters_in_words(kind):
    # given the parameters and result the service records for this kind
    # when they are said in words
    lines = _lines(kind)
    # then every expected line is there, with its words
    said = dict(lines)
    for label, text in EXPECTED[kind].items():
        assert said.get(label) == text, (label, lines)
    # and no line is empty, no raw enum or Python value shows
    assert all(label and text for label, text in lines)
    for _label, text in lines:
        if not text.startswith("https://"):
            assert not RAW_VALUE.search(text), text
    case = CASES[kind]
    raw = _raw_strings(case["params"]) | _raw_strings(case.get("result") or {})
    assert not raw & {text for _label, text in lines}, lines


@pytest.mark.parametrize("kind", list(ActionKind))
def test_unknown_keys_are_ignored(kind):
    case = CASES[kind]
    params = dict(case["params"]) | {"surprise": "raw_value", "customer_id": "cus_SECRET"}
    result = dict(case.get("result") or {}) | {"weird": "x_y"}
    lines = _lines(kind, params=params, result=result)
    assert lines == _lines(kind)
    assert "cus_SECRET" not in lines_text(lines)


@pytest.mark.parametrize("kind", list(ActionKind))
def test_empty_params_never_fail(kind):
    lines = action_lines(kind, {})
    assert all(label and text for label, text in lines)


def test_pending_approval_knows_the_parameters_before_any_result():
    # a discount waiting for approval: no result yet
    lines = dict(
        action_lines(
            "apply_discount",
            {"subscription_id": "sub_1", "percent_off": "20", "duration": "forever"},
            names=NAMES,
        )
    )
    assert lines == {
        "Subscription": "Business plan",
        "Discount": "20% off",
        "Duration": "Forever",
    }
    # a plan change: the caller gives the current price as the "from"
    plan = dict(
        action_lines(
            "change_plan",
            {"subscription_id": "sub_x", "price_id": "price_business"},
            result={"previous_price_id": "price_starter"},
            names=NAMES,
        )
    )
    assert (plan["From"], plan["To"]) == ("Starter (monthly)", "Business (monthly)")
    assert "Subscription" not in plan  # an unnamed subscription id is not shown


def test_amount_comes_from_params_without_the_actions_own():
    assert action_lines("apply_credit", {"amount": 100000, "currency": "JPY"}) == [
        ("Credit", "¥100,000")
    ]


def test_pause_without_resume_date_and_once_discount():
    pause = dict(action_lines("pause_subscription", {"behavior": "void"}))
    assert pause == {
        "While paused": "Void invoices while paused",
        "Resumes": "No date set (resume by hand)",
    }
    once = dict(action_lines("apply_discount", {"percent_off": 15, "duration": "once"}))
    assert once == {"Discount": "15% off", "Duration": "Next invoice only"}


def test_downgrade_charges_nothing_now():
    lines = dict(
        action_lines(
            "change_plan",
            {"price_id": "price_starter"},
            result={
                "direction": "downgrade",
                "effective_date": "2026-02-01T00:00:00+00:00",
                "previous_price_id": "price_business",
                "preview": {"amount_due_now": {"amount": 0, "currency": "USD"}},
            },
            names=NAMES,
        )
    )
    assert lines["Change"] == "Downgrade, at the next renewal"
    assert "Charged now" not in lines


def test_unknown_kind_and_unknown_enum_values_read_as_words():
    assert action_lines("something_new", {}, amount=500, currency="USD") == [("Amount", "$5.00")]
    refund = dict(action_lines("issue_refund", {"reason": "brand_new_reason"}))
    assert refund["Reason"] == "Brand new reason"


def test_facts_for_the_note_placeholders():
    facts = action_facts(
        "change_plan",
        CASES[ActionKind.CHANGE_PLAN]["params"],
        result=CASES[ActionKind.CHANGE_PLAN]["result"],
        names=NAMES,
    )
    assert set(facts) == set(FACT_NAMES)
    assert facts["from"] == "Starter (monthly)"
    assert facts["to"] == "Business (monthly)"
    assert facts["amount_charged"] == "$450.00"
    seats = action_facts("adjust_seats", {"quantity": 12}, result={"previous_quantity": 10})
    assert (seats["from"], seats["to"]) == ("10", "12")
    pause = action_facts("pause_subscription", {"behavior": "void"})
    assert pause["resumes"] == ""  # an optional [[ … ]] segment drops out
    discount = action_facts("apply_discount", {"percent_off": "15.00", "duration": "forever"})
    assert (discount["percent"], discount["duration"]) == ("15%", "Forever")
    refund = action_facts("issue_refund", {"reason": "billing_error"}, amount=100, currency="GBP")
    assert (refund["reason"], refund["amount"]) == ("Billing error", "£1.00")
    link = action_facts("generate_payment_link", {}, result={"url": "https://p.example/x"})
    assert link["link"] == "https://p.example/x"
    assert action_facts("extend_trial", {"days": 1})["days"] == "1 day"


def test_words_for_dates_and_percents():
    assert date_words(1767225600) == "January 1, 2026"
    assert date_words("2026-01-01T10:00:00Z") == "January 1, 2026"
    assert date_words("not a date") == ""
    assert percent_words("10.50") == "10.5%"
    assert percent_words("100") == "100%"
    assert percent_words("nan") == ""
