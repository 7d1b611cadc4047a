"""Billing Desk's vocabulary, defined once: decline codes, failure categories, refund
reasons, cancellation feedback, pause behaviours, discount durations, tax-id types and
action labels.

The server uses these tables for the panel's texts, the notes, the customer messages,
the dashboard and the monthly report; the panel receives :func:`vocabulary_payload`
and holds no copy. Pure data and pure functions: no Django imports.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .catalog import ROLE_LABELS, ActionKind
from .tax_rules import TAX_ID_TYPES

# --- payment failures --------------------------------------------------------------------

# The dashboard's failure-reason categories (the brief's "Payment failure reasons"),
# in the order the dashboard lists them.
FAILURE_CATEGORIES: Mapping[str, str] = {
    "card_expired": "Card expired",
    "insufficient_funds": "Insufficient funds",
    "card_declined": "Card declined (bank)",
    "card_not_recognized": "Card not recognized",
    "other": "Other",
}
OTHER_CATEGORY = "other"

# What a customer is told a category of decline was ("… failed because of {words}").
_CATEGORY_CUSTOMER_WORDS: Mapping[str, str] = {
    "card_expired": "an expired card",
    "insufficient_funds": "insufficient funds",
    "card_declined": "a decline by your bank",
    "card_not_recognized": "a card number that was not recognized",
    "other": "a decline by your bank",
}


@dataclass(frozen=True, slots=True)
class DeclineCode:
    """One of Stripe's decline (or failure) codes, in Billing Desk's words."""

    code: str
    category: str  # a key of FAILURE_CATEGORIES
    agent_text: str  # plain words for an agent: "Card expired", "Gateway error"
    customer_text: str  # for a customer message: "an expired card"

    def as_dict(self) -> dict[str, str]:
        return {
            "category": self.category,
            "agent_text": self.agent_text,
            "customer_text": self.customer_text,
        }


def _codes(
    category: str, codes: tuple[str, ...], overrides: Mapping[str, tuple[str, str]] | None = None
) -> dict[str, DeclineCode]:
    """Codes of one category; ``overrides`` gives (agent, customer) words that differ."""
    out = {}
    for code in codes:
        agent, customer = (overrides or {}).get(
            code, (FAILURE_CATEGORIES[category], _CATEGORY_CUSTOMER_WORDS[category])
        )
        out[code] = DeclineCode(code, category, agent, customer)
    return out


# Stripe decline / failure codes. Codes not listed fall into "other" with their own words.
DECLINE_CODES: Mapping[str, DeclineCode] = {
    **_codes("card_expired", ("expired_card",)),
    **_codes("insufficient_funds", ("insufficient_funds",)),
    **_codes(
        "card_declined",
        (
            "card_declined",
            "generic_decline",
            "do_not_honor",
            "call_issuer",
            "transaction_not_allowed",
            "pickup_card",
            "lost_card",
            "stolen_card",
            "restricted_card",
            "fraudulent",
            "card_velocity_exceeded",
            "withdrawal_count_limit_exceeded",
            "not_permitted",
            "revocation_of_authorization",
        ),
        {
            "card_velocity_exceeded": (
                "Card declined (bank): limit exceeded",
                "a decline by your bank",
            ),
            "lost_card": ("Card reported lost", "a card reported lost"),
            "stolen_card": ("Card reported stolen", "a card reported stolen"),
            "fraudulent": ("Card declined (bank): suspected fraud", "a decline by your bank"),
        },
    ),
    **_codes(
        "card_not_recognized",
        (
            "incorrect_number",
            "invalid_number",
            "card_not_supported",
            "invalid_account",
            "incorrect_cvc",
            "invalid_cvc",
            "invalid_expiry_month",
            "invalid_expiry_year",
            "incorrect_zip",
            "currency_not_supported",
        ),
        {
            "incorrect_cvc": ("Card not recognized", "an incorrect security code"),
            "invalid_cvc": ("Card not recognized", "an incorrect security code"),
        },
    ),
    **_codes(
        "other",
        (
            "processing_error",
            "issuer_not_available",
            "reenter_transaction",
            "try_again_later",
            "authentication_required",
            "approve_with_id",
        ),
        {
            "processing_error": ("Gateway error", "a processing error at the card network"),
            "issuer_not_available": ("Gateway error", "a processing error at the card network"),
            "reenter_transaction": ("Gateway error", "a processing error at the card network"),
            "try_again_later": ("Gateway error", "a processing error at the card network"),
            "authentication_required": (
                "Authentication required by the bank",
                "a missing authentication by your bank",
            ),
            "approve_with_id": (
                "Authentication required by the bank",
                "a missing authentication by your bank",
            ),
        },
    ),
}
# Codes that point at the payment network rather than the card (retrying may succeed).
GATEWAY_CODES: frozenset[str] = frozenset(
    code for code, d in DECLINE_CODES.items() if d.agent_text == "Gateway error"
)


def decline(*, decline_code: str = "", failure_code: str = "", message: str = "") -> DeclineCode:
    """A decline in Billing Desk's words.

    The issuer's decline code is more precise than Stripe's failure code
    (``card_declined`` + ``insufficient_funds``), so it is looked at first; an unknown
    code falls back to Stripe's message, then to the code itself.
    """
    for code in (decline_code, failure_code):
        if code and code in DECLINE_CODES:
            return DECLINE_CODES[code]
    code = decline_code or failure_code
    if message:
        text = message.strip().rstrip(".")
        return DeclineCode(code, OTHER_CATEGORY, text, text[:1].lower() + text[1:])
    agent = f"Payment failed ({code.replace('_', ' ')})" if code else "Payment failed"
    return DeclineCode(code, OTHER_CATEGORY, agent, _CATEGORY_CUSTOMER_WORDS[OTHER_CATEGORY])


def decline_category(decline_code: str = "", failure_code: str = "") -> str:
    return decline(decline_code=decline_code, failure_code=failure_code).category


# --- refunds, cancellations, pauses, discounts -----------------------------------------------


@dataclass(frozen=True, slots=True)
class RefundReason:
    key: str
    label: str
    stripe_reason: str  # Stripe's refund ``reason`` enum


# Our refund reasons (kept for analytics), in the order the panel offers them.
REFUND_REASONS: Mapping[str, RefundReason] = {
    r.key: r
    for r in (
        RefundReason("requested_by_customer", "Requested by customer", "requested_by_customer"),
        RefundReason("service_outage", "Service outage credit", "requested_by_customer"),
        RefundReason("billing_error", "Billing error", "requested_by_customer"),
        RefundReason("dissatisfaction", "Customer dissatisfaction", "requested_by_customer"),
        RefundReason("duplicate", "Duplicate charge", "duplicate"),
        RefundReason("fraudulent", "Fraudulent", "fraudulent"),
        RefundReason("other", "Other", "requested_by_customer"),
    )
}
# Stripe's refund ``reason`` enum.
STRIPE_REFUND_REASONS: frozenset[str] = frozenset(
    {"duplicate", "fraudulent", "requested_by_customer"}
)

# Stripe's ``cancellation_details.feedback`` enum, with the panel's labels.
CANCELLATION_FEEDBACK: Mapping[str, str] = {
    "too_expensive": "Too expensive",
    "missing_features": "Missing features",
    "switched_service": "Switched to another service",
    "unused": "Not using it",
    "customer_service": "Customer service",
    "low_quality": "Quality",
    "too_complex": "Too complex",
    "other": "Other",
}
# Stripe's ``pause_collection.behavior`` enum.
PAUSE_BEHAVIORS: Mapping[str, str] = {
    "void": "Void invoices while paused",
    "keep_as_draft": "Keep invoices as drafts",
    "mark_uncollectible": "Mark invoices uncollectible",
}
# Stripe's coupon ``duration`` enum.
DISCOUNT_DURATIONS: Mapping[str, str] = {
    "once": "Next invoice only",
    "repeating": "For some months",
    "forever": "Forever",
}
# The tax-id types the panel's form offers (Stripe's ``tax_id.type`` values); their
# names and formats live once, in ``tax_rules.TAX_ID_TYPES``.
PANEL_TAX_ID_TYPES: tuple[str, ...] = ("eu_vat", "gb_vat", "us_ein", "au_abn", "ca_bn", "in_gst")

# --- actions -------------------------------------------------------------------------------

ACTION_LABELS: Mapping[str, str] = {
    ActionKind.GENERATE_PAYMENT_LINK: "Generate payment link",
    ActionKind.RESEND_INVOICE: "Resend invoice",
    ActionKind.APPLY_CREDIT: "Apply credit",
    ActionKind.ISSUE_REFUND: "Issue refund",
    ActionKind.EXTEND_TRIAL: "Extend trial",
    ActionKind.PAUSE_SUBSCRIPTION: "Pause subscription",
    ActionKind.CHANGE_PLAN: "Change plan",
    ActionKind.CANCEL_SUBSCRIPTION: "Cancel subscription",
    ActionKind.FORCE_CANCEL: "Force cancellation",
    ActionKind.UPDATE_PAYMENT_METHOD: "Update payment method",
    ActionKind.ADJUST_SEATS: "Adjust seat count",
    ActionKind.APPLY_DISCOUNT: "Apply discount",
    ActionKind.REFUND_DUPLICATE_CHARGE: "Refund duplicate charge",
    ActionKind.EXTEND_GRACE_PERIOD: "Extend grace period",
    ActionKind.SEND_TAX_INVOICE: "Send tax invoice",
    ActionKind.RESUME_SUBSCRIPTION: "Resume subscription",
    ActionKind.UNDO_CANCELLATION: "Keep subscription",
}


def action_label(kind: str) -> str:
    return ACTION_LABELS.get(kind, kind.replace("_", " ").capitalize())


def _pairs(table: Mapping[str, Any]) -> list[list[str]]:
    return [[str(key), str(value)] for key, value in table.items()]


def vocabulary_payload() -> dict[str, Any]:
    """Everything the panel labels with, as JSON: ordered ``[key, label]`` pairs."""
    return {
        "refund_reasons": [[r.key, r.label] for r in REFUND_REASONS.values()],
        "cancellation_feedback": _pairs(CANCELLATION_FEEDBACK),
        "pause_behaviors": _pairs(PAUSE_BEHAVIORS),
        "discount_durations": _pairs(DISCOUNT_DURATIONS),
        "tax_id_types": [[key, TAX_ID_TYPES[key].label] for key in PANEL_TAX_ID_TYPES],
        "failure_categories": _pairs(FAILURE_CATEGORIES),
        "decline_codes": {code: d.as_dict() for code, d in DECLINE_CODES.items()},
        "action_labels": _pairs(ACTION_LABELS),
        "role_labels": [[role.value, label] for role, label in ROLE_LABELS.items()],
    }


__all__ = [
    "ACTION_LABELS",
    "CANCELLATION_FEEDBACK",
    "DECLINE_CODES",
    "DISCOUNT_DURATIONS",
    "FAILURE_CATEGORIES",
    "GATEWAY_CODES",
    "OTHER_CATEGORY",
    "PANEL_TAX_ID_TYPES",
    "PAUSE_BEHAVIORS",
    "REFUND_REASONS",
    "STRIPE_REFUND_REASONS",
    "DeclineCode",
    "RefundReason",
    "action_label",
    "decline",
    "decline_category",
    "vocabulary_payload",
]
