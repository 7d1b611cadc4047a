"""The argument checks every provider applies before it reads or sends anything."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from billing_app.errors import ValidationFailed
from billing_app.money import Money
from billing_app.providers import arguments as a
from billing_app.providers.base import TaxIdInput

NOW = datetime(2026, 3, 1, 12, tzinfo=UTC)


@pytest.mark.parametrize(
    ("check", "code"),
    [
        (lambda: a.idempotency_key_check(""), "idempotency_key_required"),
        (lambda: a.idempotency_key_check("k" * 201), "idempotency_key_required"),
        (lambda: a.customer_id_check(""), "customer_required"),
        (lambda: a.email_check(" no-at-sign "), "invalid_email"),
        (lambda: a.page_limit_check(0), "invalid_limit"),
        (lambda: a.page_limit_check(101), "invalid_limit"),
        (lambda: a.amount_positive_check(Money(0, "USD"), what="credit"), "invalid_amount"),
        (lambda: a.refund_reason_check("service_outage"), "invalid_refund_reason"),
        (
            lambda: a.pause_check(behavior="later", resumes_at=None, now=NOW),
            "invalid_pause_behavior",
        ),
        (lambda: a.pause_check(behavior="void", resumes_at=NOW, now=NOW), "invalid_resume_date"),
        (lambda: a.quantity_check(0), "invalid_quantity"),
        (lambda: a.quantity_check(True), "invalid_quantity"),
        (lambda: a.quantity_check(2.5), "invalid_quantity"),
        (
            lambda: a.discount_check(percent_off=0, duration="once", duration_in_months=None),
            "invalid_percent",
        ),
        (
            lambda: a.discount_check(percent_off=101, duration="once", duration_in_months=None),
            "invalid_percent",
        ),
        (
            lambda: a.discount_check(percent_off=10, duration="weekly", duration_in_months=None),
            "invalid_duration",
        ),
        (
            lambda: a.discount_check(percent_off=10, duration="repeating", duration_in_months=None),
            "invalid_duration",
        ),
        (
            lambda: a.discount_check(percent_off=10, duration="forever", duration_in_months=2),
            "invalid_duration",
        ),
        (lambda: a.return_url_check("javascript:alert(1)"), "invalid_return_url"),
        (lambda: a.future_check(NOW, now=NOW), "invalid_until"),
        (lambda: a.tax_details_check(tax_id=None, address=None), "nothing_to_update"),
        (
            lambda: a.tax_details_check(tax_id=TaxIdInput("eu_vat", " "), address=None),
            "invalid_tax_id",
        ),
        (lambda: a.tax_details_check(tax_id=None, address={"planet": "Mars"}), "invalid_address"),
    ],
)
def test_a_bad_argument_is_refused_with_its_code(check, code):
    with pytest.raises(ValidationFailed) as refused:
        check()
    assert (refused.value.code, refused.value.status) == (code, 400)


def test_good_arguments_pass_as_they_are_or_cleaned():
    assert a.email_check("  Ann@Example.com ") == "Ann@Example.com"
    assert a.quantity_check(3) == 3
    assert a.discount_check(percent_off=12.345, duration="repeating", duration_in_months=3) == 12.35
    assert a.future_check(NOW + timedelta(days=1), now=NOW) == NOW + timedelta(days=1)
    a.pause_check(behavior="keep_as_draft", resumes_at=None, now=NOW)
    assert a.tax_details_check(
        tax_id=None, address={"city": " Berlin ", "country": "de", "postal_code": "10117"}
    ) == {"city": "Berlin", "country": "DE", "postal_code": "10117"}
