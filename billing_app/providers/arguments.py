"""What the provider interface accepts: the argument checks every provider applies first.

Pure functions, one per kind of argument, each raising ``ValidationFailed`` with the
code the contract suite expects of every provider (``tests/billing_app/providers/
contract``), before anything is read from or sent to the billing system. So a rule
such as "a repeating discount needs its months" lives once, not once per provider.
Checks of the objects a provider holds (is the charge refundable) are in ``rules``;
``cancellation_details`` is the one wording of a cancellation both providers store.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from ..errors import ValidationFailed
from ..money import Money
from ..tax_rules import billing_address_validate
from .base import (
    CANCELLATION_FEEDBACK,
    DISCOUNT_DURATIONS,
    PAUSE_BEHAVIORS,
    STRIPE_REFUND_REASONS,
    TaxIdInput,
)

# Stripe's limit on an idempotency key.
MAX_IDEMPOTENCY_KEY = 200


def idempotency_key_check(key: str) -> str:
    if not key or len(key) > MAX_IDEMPOTENCY_KEY:
        raise ValidationFailed(
            f"Every write needs an idempotency key (at most {MAX_IDEMPOTENCY_KEY} characters).",
            code="idempotency_key_required",
        )
    return key


def customer_id_check(customer_id: str) -> str:
    if not customer_id:
        raise ValidationFailed("A customer id is required.", code="customer_required")
    return customer_id


def email_check(email: str) -> str:
    """The address as given (trimmed); ``invalid_email`` without an ``@``."""
    given = (email or "").strip()
    if "@" not in given:
        raise ValidationFailed("A valid email address is required.", code="invalid_email")
    return given


def page_limit_check(limit: int) -> int:
    if not 1 <= limit <= 100:
        raise ValidationFailed("limit must be between 1 and 100.", code="invalid_limit")
    return limit


def amount_positive_check(amount: Money, *, what: str) -> Money:
    """``invalid_amount`` unless ``amount`` is above zero (``what``: "credit", "refund")."""
    if amount.amount <= 0:
        raise ValidationFailed(f"A {what} must be a positive amount.", code="invalid_amount")
    return amount


def refund_reason_check(reason: str) -> str:
    """One of Stripe's refund reasons (Billing Desk's finer reasons travel in metadata)."""
    if reason not in STRIPE_REFUND_REASONS:
        raise ValidationFailed(
            f"A refund reason is one of {', '.join(sorted(STRIPE_REFUND_REASONS))}.",
            code="invalid_refund_reason",
        )
    return reason


def pause_check(*, behavior: str, resumes_at: datetime | None, now: datetime) -> None:
    if behavior not in PAUSE_BEHAVIORS:
        raise ValidationFailed(
            f"Pause behavior is one of {', '.join(sorted(PAUSE_BEHAVIORS))}.",
            code="invalid_pause_behavior",
        )
    if resumes_at is not None and resumes_at <= now:
        raise ValidationFailed("The resume date must be in the future.", code="invalid_resume_date")


def quantity_check(quantity: object) -> int:
    if not isinstance(quantity, int) or isinstance(quantity, bool) or quantity < 1:
        raise ValidationFailed(
            "Seats must be a whole number of at least 1.", code="invalid_quantity"
        )
    return quantity


def discount_check(*, percent_off: float, duration: str, duration_in_months: int | None) -> float:
    """The percentage, rounded to hundredths; ``invalid_percent`` / ``invalid_duration``."""
    if not 0 < float(percent_off) <= 100:
        raise ValidationFailed(
            "percent_off must be above 0 and at most 100.", code="invalid_percent"
        )
    if duration not in DISCOUNT_DURATIONS:
        raise ValidationFailed("duration is once, repeating or forever.", code="invalid_duration")
    if duration == "repeating" and not (duration_in_months and duration_in_months >= 1):
        raise ValidationFailed(
            "A repeating discount needs duration_in_months.", code="invalid_duration"
        )
    if duration != "repeating" and duration_in_months:
        raise ValidationFailed(
            "duration_in_months only applies to a repeating discount.", code="invalid_duration"
        )
    return round(float(percent_off), 2)


def cancellation_details(*, reason: str, comment: str) -> dict[str, str]:
    """Stripe's ``cancellation_details`` for a reason and the agent's comment: ``feedback``
    takes Stripe's enumeration (else "other"); any other reason is kept in front of the
    comment ("reason: comment"); ``comment`` (at most 500 characters) only when there is one."""
    feedback = reason if reason in CANCELLATION_FEEDBACK else "other"
    note = comment.strip()
    if reason and reason not in CANCELLATION_FEEDBACK:
        note = f"{reason}: {note}" if note else reason
    details = {"feedback": feedback}
    if note:
        details["comment"] = note[:500]
    return details


def return_url_check(url: str) -> str:
    if not url.startswith(("https://", "http://")):
        raise ValidationFailed("return_url must be an http(s) URL.", code="invalid_return_url")
    return url


def future_check(until: datetime, *, now: datetime) -> datetime:
    if until <= now:
        raise ValidationFailed("The grace period must end in the future.", code="invalid_until")
    return until


def tax_details_check(
    *, tax_id: TaxIdInput | None, address: Mapping[str, str] | None
) -> dict[str, str] | None:
    """Something to update, a tax id with a type and a value, and a billing address by the
    shared rules (``tax_rules``: known fields, a two-letter country, its postal code form);
    returns the address cleaned (trimmed, country in capitals). Whether the tax id itself
    is valid is decided by the tax rules (the sandbox) or by Stripe."""
    if tax_id is None and not address:
        raise ValidationFailed("Give a tax id, an address or both.", code="nothing_to_update")
    if tax_id is not None and not (tax_id.type and tax_id.value.strip()):
        raise ValidationFailed("A tax id needs a type and a value.", code="invalid_tax_id")
    return billing_address_validate(address) if address else None


__all__ = [
    "MAX_IDEMPOTENCY_KEY",
    "amount_positive_check",
    "cancellation_details",
    "customer_id_check",
    "discount_check",
    "email_check",
    "future_check",
    "idempotency_key_check",
    "page_limit_check",
    "pause_check",
    "quantity_check",
    "refund_reason_check",
    "return_url_check",
    "tax_details_check",
]
