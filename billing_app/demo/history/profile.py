"""The shapes the demo history is drawn from: the brief's dashboard, as weights and means."""

from __future__ import annotations

from ...models import TicketCategory

MARKER = "demo-history"

# category: (weight, average resolution minutes, auto-resolve probability, action kinds)
# A plan-change request ends in a plan change twice as often as in a seat change or a
# retention discount.
CATEGORY_PROFILE: dict[str, tuple[int, float, float, tuple[str, ...]]] = {
    TicketCategory.PAYMENT_FAILED: (234, 3.1, 0.67, ("generate_payment_link",)),
    TicketCategory.INVOICE_DISCREPANCY: (156, 5.4, 0.45, ("resend_invoice", "apply_credit")),
    TicketCategory.PLAN_CHANGE_REQUEST: (
        123,
        2.8,
        0.89,
        ("change_plan", "change_plan", "adjust_seats", "apply_discount"),
    ),
    TicketCategory.REFUND_REQUEST: (89, 6.2, 0.23, ("issue_refund",)),
    TicketCategory.OVERCHARGE_DISPUTE: (67, 7.1, 0.34, ("apply_credit",)),
    TicketCategory.DUPLICATE_CHARGE: (45, 2.3, 0.91, ("refund_duplicate_charge",)),
    TicketCategory.PAYMENT_METHOD_UPDATE: (38, 1.9, 0.95, ("update_payment_method",)),
    TicketCategory.TAX_QUESTION: (34, 8.5, 0.12, ("send_tax_invoice",)),
    TicketCategory.OTHER_BILLING: (104, 4.8, 0.56, ("resend_invoice", "extend_trial")),
}
SUBJECTS: dict[str, str] = {
    TicketCategory.PAYMENT_FAILED: "My payment failed",
    TicketCategory.INVOICE_DISCREPANCY: "Question about my invoice",
    TicketCategory.PLAN_CHANGE_REQUEST: "I want to change my plan",
    TicketCategory.REFUND_REQUEST: "I want a refund",
    TicketCategory.OVERCHARGE_DISPUTE: "I was overcharged",
    TicketCategory.DUPLICATE_CHARGE: "I was charged twice",
    TicketCategory.PAYMENT_METHOD_UPDATE: "Update my card",
    TicketCategory.TAX_QUESTION: "I need a tax invoice",
    TicketCategory.OTHER_BILLING: "Billing question",
}
OTHER_SUBJECTS = (
    "Cannot log in",
    "Feature request",
    "Export is slow",
    "Bug in reports",
    "SSO setup",
)
REFUND_REASONS = (
    ("service_outage", 18),
    ("billing_error", 12),
    ("dissatisfaction", 8),
    ("duplicate", 5),
    ("other", 2),
)
# operation: (share of calls, mean ms)
OPERATIONS = (
    ("fetch_customer_bundle", 60, 340),
    ("create_payment_link", 12, 280),
    ("resend_invoice", 8, 420),
    ("refund", 6, 1200),
    ("apply_credit", 4, 380),
    ("change_plan", 4, 900),
    ("preview_plan_change", 4, 650),
    ("payment_method_update_link", 2, 310),
)
DECLINES = (
    ("expired_card", 38),
    ("insufficient_funds", 29),
    ("generic_decline", 19),
    ("incorrect_number", 10),
    ("processing_error", 4),
)
# Mean execution time (ms) of an action kind; others take 900 ms.
ACTION_MS = {
    "issue_refund": 2100,
    "refund_duplicate_charge": 1900,
    "change_plan": 1800,
    "adjust_seats": 1200,
}
# History customers (``cus_hist_000`` … ``cus_hist_096``) the actions are spread over.
HISTORY_CUSTOMERS = 97
# Seat changes and retention discounts the history draws from.
SEAT_STEPS = (-5, -3, -2, 2, 3, 5, 10)
DISCOUNT_PERCENTS = (10, 15, 20, 25)
# The agent's handling time per action (minutes, mean): from opening the panel on the
# ticket to the action done — the brief's "Avg Time" column; others take 1.5 minutes.
HANDLING_MINUTES = {
    "generate_payment_link": 0.8,
    "resend_invoice": 0.5,
    "apply_credit": 1.2,
    "issue_refund": 2.1,
    "refund_duplicate_charge": 1.6,
    "change_plan": 1.7,
    "extend_trial": 0.7,
    "update_payment_method": 1.3,
    "extend_grace_period": 0.9,
    "adjust_seats": 1.4,
    "apply_discount": 1.9,
    "send_tax_invoice": 2.4,
}
# Share of actions taken without the panel's open time (the API, an older panel): left
# out of the average handling time, as the dashboard says.
UNTIMED_SHARE = 0.04
# Share of recovered payment failures recovered after an agent's action (payment link,
# card-update link, grace period), and of unrecovered ones an agent acted on anyway.
AGENT_RECOVERED_SHARE = 0.55
AGENT_TRIED_UNRECOVERED_SHARE = 0.35
RECOVERY_KINDS = (
    ("generate_payment_link", 60),
    ("update_payment_method", 30),
    ("extend_grace_period", 10),
)
