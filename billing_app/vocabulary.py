"""Billing Desk's vocabulary, defined once: decline codes, failure categories, refund
reasons, cancellation feedback, pause behaviours, discount durations, tax-id types and
action labels.

The server uses these tables for the panel's texts, the notes, the customer messages,
the dashboard and the monthly report; the panel receives :func:`vocabulary_payload`
and holds no copy. Pure data and pure functions; the one Django import is its
translation machinery: the tables hold the English words (marked for the catalog with
``gettext_noop``) and give them in the active language when read (:class:`Labels`), so
the codes (the keys) never change and no lazy object reaches JSON or a comparison.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from django.utils.translation import gettext, gettext_noop

from .catalog import ROLE_LABELS, ActionKind
from .money import money_language
from .tax_rules import TAX_ID_TYPES


class Labels(Mapping[str, str]):
    """Codes → labels; a label is read in the active language (English is the source)."""

    __slots__ = ("_source",)

    def __init__(self, source: Mapping[str, str]):
        self._source = dict(source)

    def __getitem__(self, key: str) -> str:
        return gettext(self._source[key])

    def __iter__(self) -> Iterator[str]:
        return iter(self._source)

    def __len__(self) -> int:
        return len(self._source)

    def english(self, key: str) -> str:
        """The label in English (what is stored, and compared)."""
        return self._source[key]


def in_sentence(text: str) -> str:
    """A label inside a sentence: English lower-cases its first letter; German keeps it
    (its nouns are capitalised)."""
    if money_language() is None:
        return text[:1].lower() + text[1:]
    return text


# --- payment failures --------------------------------------------------------------------

# The dashboard's failure-reason categories (the brief's "Payment failure reasons"),
# in the order the dashboard lists them.
FAILURE_CATEGORIES: Labels = Labels(
    {
        "card_expired": gettext_noop("Card expired"),
        "insufficient_funds": gettext_noop("Insufficient funds"),
        "card_declined": gettext_noop("Card declined (bank)"),
        "card_not_recognized": gettext_noop("Card not recognized"),
        "other": gettext_noop("Other"),
    }
)
OTHER_CATEGORY = "other"

# What a customer is told a category of decline was ("… failed because of {words}").
_CATEGORY_CUSTOMER_WORDS: Labels = Labels(
    {
        "card_expired": gettext_noop("an expired card"),
        "insufficient_funds": gettext_noop("insufficient funds"),
        "card_declined": gettext_noop("a decline by your bank"),
        "card_not_recognized": gettext_noop("a card number that was not recognized"),
        "other": gettext_noop("a decline by your bank"),
    }
)


@dataclass(frozen=True, slots=True)
class DeclineCode:
    """One of Stripe's decline (or failure) codes, in Billing Desk's words.

    ``agent_words`` and ``customer_words`` are the English words (what a record stores);
    ``agent_text`` and ``customer_text`` give them in the active language. A decline
    known only by its code (``detail``: the code in words) reads "Payment failed (…)".
    """

    code: str
    category: str  # a key of FAILURE_CATEGORIES
    agent_words: str  # plain words for an agent: "Card expired", "Gateway error"
    customer_words: str  # for a customer message: "an expired card"
    detail: str = ""  # an unknown code in words ("Payment failed (detail)")

    @property
    def agent_text(self) -> str:
        if self.detail:
            return gettext("Payment failed (%(code)s)") % {"code": self.detail}
        return gettext(self.agent_words)

    @property
    def customer_text(self) -> str:
        return gettext(self.customer_words)

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
            code,
            (FAILURE_CATEGORIES.english(category), _CATEGORY_CUSTOMER_WORDS.english(category)),
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
                gettext_noop("Card declined (bank): limit exceeded"),
                gettext_noop("a decline by your bank"),
            ),
            "lost_card": (gettext_noop("Card reported lost"), gettext_noop("a card reported lost")),
            "stolen_card": (
                gettext_noop("Card reported stolen"),
                gettext_noop("a card reported stolen"),
            ),
            "fraudulent": (
                gettext_noop("Card declined (bank): suspected fraud"),
                gettext_noop("a decline by your bank"),
            ),
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
            "incorrect_cvc": (
                gettext_noop("Card not recognized"),
                gettext_noop("an incorrect security code"),
            ),
            "invalid_cvc": (
                gettext_noop("Card not recognized"),
                gettext_noop("an incorrect security code"),
            ),
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
            "processing_error": (
                gettext_noop("Gateway error"),
                gettext_noop("a processing error at the card network"),
            ),
            "issuer_not_available": (
                gettext_noop("Gateway error"),
                gettext_noop("a processing error at the card network"),
            ),
            "reenter_transaction": (
                gettext_noop("Gateway error"),
                gettext_noop("a processing error at the card network"),
            ),
            "try_again_later": (
                gettext_noop("Gateway error"),
                gettext_noop("a processing error at the card network"),
            ),
            "authentication_required": (
                gettext_noop("Authentication required by the bank"),
                gettext_noop("a missing authentication by your bank"),
            ),
            "approve_with_id": (
                gettext_noop("Authentication required by the bank"),
                gettext_noop("a missing authentication by your bank"),
            ),
        },
    ),
}
# Codes that point at the payment network rather than the card (retrying may succeed).
GATEWAY_CODES: frozenset[str] = frozenset(
    code for code, d in DECLINE_CODES.items() if d.agent_words == "Gateway error"
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
    if message:  # Stripe's words, as Stripe wrote them
        text = message.strip().rstrip(".")
        return DeclineCode(code, OTHER_CATEGORY, text, text[:1].lower() + text[1:])
    other = _CATEGORY_CUSTOMER_WORDS.english(OTHER_CATEGORY)
    if code:
        detail = code.replace("_", " ")
        return DeclineCode(code, OTHER_CATEGORY, f"Payment failed ({detail})", other, detail)
    return DeclineCode(code, OTHER_CATEGORY, gettext_noop("Payment failed"), other)


def decline_category(decline_code: str = "", failure_code: str = "") -> str:
    return decline(decline_code=decline_code, failure_code=failure_code).category


# --- refunds, cancellations, pauses, discounts -----------------------------------------------


@dataclass(frozen=True, slots=True)
class RefundReason:
    key: str
    english: str  # the label in English (the catalog's source)
    stripe_reason: str  # Stripe's refund ``reason`` enum

    @property
    def label(self) -> str:
        """The label in the active language."""
        return gettext(self.english)


# Our refund reasons (kept for analytics), in the order the panel offers them.
REFUND_REASONS: Mapping[str, RefundReason] = {
    r.key: r
    for r in (
        RefundReason(
            "requested_by_customer", gettext_noop("Requested by customer"), "requested_by_customer"
        ),
        RefundReason(
            "service_outage", gettext_noop("Service outage credit"), "requested_by_customer"
        ),
        RefundReason("billing_error", gettext_noop("Billing error"), "requested_by_customer"),
        RefundReason(
            "dissatisfaction", gettext_noop("Customer dissatisfaction"), "requested_by_customer"
        ),
        RefundReason("duplicate", gettext_noop("Duplicate charge"), "duplicate"),
        RefundReason("fraudulent", gettext_noop("Fraudulent"), "fraudulent"),
        RefundReason("other", gettext_noop("Other"), "requested_by_customer"),
    )
}
# Stripe's refund ``reason`` enum.
STRIPE_REFUND_REASONS: frozenset[str] = frozenset(
    {"duplicate", "fraudulent", "requested_by_customer"}
)

# Stripe's ``cancellation_details.feedback`` enum, with the panel's labels.
CANCELLATION_FEEDBACK: Mapping[str, str] = Labels(
    {
        "too_expensive": gettext_noop("Too expensive"),
        "missing_features": gettext_noop("Missing features"),
        "switched_service": gettext_noop("Switched to another service"),
        "unused": gettext_noop("Not using it"),
        "customer_service": gettext_noop("Customer service"),
        "low_quality": gettext_noop("Quality"),
        "too_complex": gettext_noop("Too complex"),
        "other": gettext_noop("Other"),
    }
)
# Stripe's ``pause_collection.behavior`` enum.
PAUSE_BEHAVIORS: Mapping[str, str] = Labels(
    {
        "void": gettext_noop("Void invoices while paused"),
        "keep_as_draft": gettext_noop("Keep invoices as drafts"),
        "mark_uncollectible": gettext_noop("Mark invoices uncollectible"),
    }
)
# Stripe's coupon ``duration`` enum.
DISCOUNT_DURATIONS: Mapping[str, str] = Labels(
    {
        "once": gettext_noop("Next invoice only"),
        "repeating": gettext_noop("For some months"),
        "forever": gettext_noop("Forever"),
    }
)
# The tax-id types the panel's form offers (Stripe's ``tax_id.type`` values); their
# names and formats live once, in ``tax_rules.TAX_ID_TYPES``.
PANEL_TAX_ID_TYPES: tuple[str, ...] = ("eu_vat", "gb_vat", "us_ein", "au_abn", "ca_bn", "in_gst")

# --- actions -------------------------------------------------------------------------------

ACTION_LABELS: Mapping[str, str] = Labels(
    {
        ActionKind.GENERATE_PAYMENT_LINK: gettext_noop("Generate payment link"),
        ActionKind.RESEND_INVOICE: gettext_noop("Resend invoice"),
        ActionKind.APPLY_CREDIT: gettext_noop("Apply credit"),
        ActionKind.ISSUE_REFUND: gettext_noop("Issue refund"),
        ActionKind.EXTEND_TRIAL: gettext_noop("Extend trial"),
        ActionKind.PAUSE_SUBSCRIPTION: gettext_noop("Pause subscription"),
        ActionKind.CHANGE_PLAN: gettext_noop("Change plan"),
        ActionKind.CANCEL_SUBSCRIPTION: gettext_noop("Cancel subscription"),
        ActionKind.FORCE_CANCEL: gettext_noop("Force cancellation"),
        ActionKind.UPDATE_PAYMENT_METHOD: gettext_noop("Update payment method"),
        ActionKind.ADJUST_SEATS: gettext_noop("Adjust seat count"),
        ActionKind.APPLY_DISCOUNT: gettext_noop("Apply discount"),
        ActionKind.REFUND_DUPLICATE_CHARGE: gettext_noop("Refund duplicate charge"),
        ActionKind.EXTEND_GRACE_PERIOD: gettext_noop("Extend grace period"),
        ActionKind.SEND_TAX_INVOICE: gettext_noop("Send tax invoice"),
        ActionKind.RESUME_SUBSCRIPTION: gettext_noop("Resume subscription"),
        ActionKind.UNDO_CANCELLATION: gettext_noop("Keep subscription"),
    }
)


# ``catalog.ROLE_LABELS`` holds the roles' names in English; marked here for the catalog,
# they are read in the active language where they are shown (``role_label``).
ROLE_LABEL_WORDS: tuple[str, ...] = (
    gettext_noop("L1 Agent"),
    gettext_noop("L2 Agent"),
    gettext_noop("Manager"),
    gettext_noop("Billing Specialist"),
    gettext_noop("VP Approver"),
    gettext_noop("Legal Approver"),
)


def role_label(role: str) -> str:
    """A role's name in the active language (``catalog.ROLE_LABELS``)."""
    for known, label in ROLE_LABELS.items():
        if known.value == role:
            return gettext(label)
    return role


def action_label(kind: str) -> str:
    label = ACTION_LABELS.get(kind)
    return label if label is not None else kind.replace("_", " ").capitalize()


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
        "role_labels": [[role.value, role_label(role.value)] for role in ROLE_LABELS],
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
    "ROLE_LABEL_WORDS",
    "STRIPE_REFUND_REASONS",
    "DeclineCode",
    "Labels",
    "RefundReason",
    "action_label",
    "decline",
    "decline_category",
    "in_sentence",
    "role_label",
    "vocabulary_payload",
]
