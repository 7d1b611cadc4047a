"""A subscription's state in words, and which subscription actions its state allows: one rule.

The panel's context (``subscription.subscription_block``: the state, its badge and
dates, and ``applicable_kinds``) and the actions' preconditions
(``services.actions.preconditions``) both ask :func:`state_refusal`, so what the
panel offers and what the server accepts cannot drift apart, and the panel keeps
no copy of the rule.

* **canceled** — ended (Stripe's ``canceled`` or ``incomplete_expired``): nothing
  can be changed on it.
* **paused** — payment collection paused (``pause_collection``): it can be resumed,
  not paused again.
* **ending** — set to cancel (``cancel_at_period_end``, or a ``cancel_at`` date): it
  can be kept ("keep subscription" undoes a period-end cancellation), not cancelled
  again at the period end.
* otherwise Stripe's status: **trialing**, **past_due**, **unpaid**, **active**, …

Pure: plain values in, sentences for people out (no ids, no codes in the words).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from ...catalog import ActionKind
from ...subscriptions import ENDED_STATUSES, LIVE_STATUSES

# The subscription kinds this rule decides, in the order the panel offers them.
SUBSCRIPTION_ACTION_KINDS: tuple[ActionKind, ...] = (
    ActionKind.RESUME_SUBSCRIPTION,
    ActionKind.UNDO_CANCELLATION,
    ActionKind.EXTEND_TRIAL,
    ActionKind.CHANGE_PLAN,
    ActionKind.ADJUST_SEATS,
    ActionKind.APPLY_DISCOUNT,
    ActionKind.PAUSE_SUBSCRIPTION,
    ActionKind.CANCEL_SUBSCRIPTION,
    ActionKind.FORCE_CANCEL,
    ActionKind.EXTEND_GRACE_PERIOD,
)
# What may still be paused: a subscription that bills (Stripe pauses collection of these).
PAUSABLE_STATUSES = frozenset({"active", "trialing", "past_due"})

STATE_LABELS: dict[str, str] = {
    "canceled": "Cancelled",
    "paused": "Paused",
    "ending": "Ending",
    "trialing": "Trial",
    "past_due": "Past due",
    "unpaid": "Unpaid",
    "active": "Active",
    "incomplete": "Incomplete",
    "incomplete_expired": "Expired before the first payment",
}


@dataclass(frozen=True, slots=True)
class SubscriptionFacts:
    """What the rule needs to know about one subscription."""

    status: str
    paused: bool = False  # payment collection paused (``pause_collection`` set)
    resumes_at: date | datetime | None = None
    cancel_at_period_end: bool = False
    cancel_at: date | datetime | None = None  # when an ending subscription ends
    ended_at: date | datetime | None = None
    trial_end: date | datetime | None = None


def date_words(value: date | datetime | None) -> str:
    """``2026-03-01`` → ``March 1, 2026`` (the notes' and messages' way of writing a day)."""
    if value is None:
        return ""
    return f"{value:%B} {value.day}, {value.year}"


def subscription_state(facts: SubscriptionFacts) -> str:
    """``canceled``, ``paused``, ``ending``, else Stripe's status (the module docstring)."""
    if facts.status in ENDED_STATUSES:
        return "canceled"
    if facts.paused:
        return "paused"
    if facts.cancel_at_period_end or facts.cancel_at is not None:
        return "ending"
    return facts.status or "active"


def state_label(state: str) -> str:
    return STATE_LABELS.get(state) or state.replace("_", " ").capitalize()


def _status_words(facts: SubscriptionFacts) -> str:
    return state_label(facts.status).lower()


def _ended(facts: SubscriptionFacts) -> str:
    on = f" on {date_words(facts.ended_at)}" if facts.ended_at else ""
    return f"This subscription was cancelled{on}"


def state_refusal(kind: ActionKind, facts: SubscriptionFacts) -> tuple[str, str] | None:
    """Why the subscription's state refuses ``kind`` — ``(code, sentence)`` — or ``None``.

    The codes are the actions' error codes (``already_canceled``, ``already_paused``,
    ``not_paused``, ``not_canceling``, ``cancel_already_scheduled``, ``not_trialing``,
    ``subscription_not_active``); the sentence is what the agent reads.
    """
    ended = facts.status in ENDED_STATUSES
    if kind in (ActionKind.CANCEL_SUBSCRIPTION, ActionKind.FORCE_CANCEL):
        if ended:
            return "already_canceled", f"{_ended(facts)}; there is nothing left to cancel."
        if kind == ActionKind.CANCEL_SUBSCRIPTION and facts.cancel_at_period_end:
            when = f" on {date_words(facts.cancel_at)}" if facts.cancel_at else ""
            return (
                "cancel_already_scheduled",
                f"This subscription is already set to end{when}. "
                "To keep it instead, use “Keep subscription”.",
            )
        return None
    if ended:
        if kind == ActionKind.UNDO_CANCELLATION:
            return "already_canceled", f"{_ended(facts)}; it can no longer be kept."
        if kind == ActionKind.RESUME_SUBSCRIPTION:
            return "subscription_not_active", f"{_ended(facts)}; there is nothing to resume."
        return "subscription_not_active", f"{_ended(facts)}; it can no longer be changed."
    if kind == ActionKind.RESUME_SUBSCRIPTION:
        if not facts.paused:
            return (
                "not_paused",
                "Payment collection on this subscription is not paused; there is nothing to resume.",
            )
        return None
    if kind == ActionKind.UNDO_CANCELLATION:
        if not facts.cancel_at_period_end:
            if facts.cancel_at is not None:
                return (
                    "not_canceling",
                    f"This subscription ends on {date_words(facts.cancel_at)} by a fixed end "
                    "date, not a cancellation at the period end; change the end date in Stripe.",
                )
            return "not_canceling", "This subscription is not set to end; there is nothing to keep."
        return None
    if kind == ActionKind.PAUSE_SUBSCRIPTION:
        if facts.paused:
            until = f" until {date_words(facts.resumes_at)}" if facts.resumes_at else ""
            return (
                "already_paused",
                f"Payment collection on this subscription is already paused{until}.",
            )
        if facts.status not in PAUSABLE_STATUSES:
            return (
                "subscription_not_active",
                f"This subscription is {_status_words(facts)}; only an active, trialing or "
                "past-due subscription can be paused.",
            )
        return None
    if kind == ActionKind.EXTEND_TRIAL:
        if facts.status != "trialing":
            return (
                "not_trialing",
                f"This subscription is {_status_words(facts)}, not in a trial; only a trial "
                "can be extended.",
            )
        return None
    if kind in (
        ActionKind.CHANGE_PLAN,
        ActionKind.ADJUST_SEATS,
        ActionKind.APPLY_DISCOUNT,
        ActionKind.EXTEND_GRACE_PERIOD,
    ):
        if facts.status not in LIVE_STATUSES:
            return (
                "subscription_not_active",
                f"This subscription is {_status_words(facts)}; only a live subscription can "
                "be changed.",
            )
        return None
    return None


def applicable_kinds(facts: SubscriptionFacts) -> list[str]:
    """The subscription kinds its state allows, in the panel's order (the role decides
    which of them the agent may take; the panel shows the intersection)."""
    return [k.value for k in SUBSCRIPTION_ACTION_KINDS if state_refusal(k, facts) is None]
