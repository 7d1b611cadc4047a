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

from babel.dates import format_date
from django.utils.translation import gettext, gettext_noop, to_locale

from ...catalog import ActionKind
from ...money import money_language
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

# In English (the catalog's source); ``state_label`` reads them in the active language.
STATE_LABELS: dict[str, str] = {
    "canceled": gettext_noop("Cancelled"),
    "paused": gettext_noop("Paused"),
    "ending": gettext_noop("Ending"),
    "trialing": gettext_noop("Trial"),
    "past_due": gettext_noop("Past due"),
    "unpaid": gettext_noop("Unpaid"),
    "active": gettext_noop("Active"),
    "incomplete": gettext_noop("Incomplete"),
    "incomplete_expired": gettext_noop("Expired before the first payment"),
}
# A state in running text ("This subscription is past due; …").
STATE_WORDS: dict[str, str] = {
    "canceled": gettext_noop("cancelled"),
    "paused": gettext_noop("paused"),
    "ending": gettext_noop("ending"),
    "trialing": gettext_noop("trial"),
    "past_due": gettext_noop("past due"),
    "unpaid": gettext_noop("unpaid"),
    "active": gettext_noop("active"),
    "incomplete": gettext_noop("incomplete"),
    "incomplete_expired": gettext_noop("expired before the first payment"),
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
    """``2026-03-01`` → ``March 1, 2026`` (the notes' and messages' way of writing a day);
    in another active language, CLDR's long date (German ``1. März 2026``)."""
    if value is None:
        return ""
    language = money_language()
    if language is None:
        return f"{value:%B} {value.day}, {value.year}"
    the_day = value.date() if isinstance(value, datetime) else value
    return str(format_date(the_day, format="long", locale=to_locale(language)))


def short_date_words(value: date | datetime | None) -> str:
    """``Mar 1, 2026`` (English); in another active language CLDR's medium date
    (German ``01.03.2026``)."""
    if value is None:
        return ""
    language = money_language()
    if language is None:
        return f"{value:%b} {value.day}, {value.year}"
    the_day = value.date() if isinstance(value, datetime) else value
    return str(format_date(the_day, format="medium", locale=to_locale(language)))


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
    label = STATE_LABELS.get(state)
    return gettext(label) if label else state.replace("_", " ").capitalize()


def _status_words(facts: SubscriptionFacts) -> str:
    words = STATE_WORDS.get(facts.status)
    return gettext(words) if words else facts.status.replace("_", " ").lower()


def _ended(facts: SubscriptionFacts) -> str:
    if facts.ended_at:
        return gettext("This subscription was cancelled on %(date)s") % {
            "date": date_words(facts.ended_at)
        }
    return gettext("This subscription was cancelled")


def state_refusal(kind: ActionKind, facts: SubscriptionFacts) -> tuple[str, str] | None:
    """Why the subscription's state refuses ``kind`` — ``(code, sentence)`` — or ``None``.

    The codes are the actions' error codes (``already_canceled``, ``already_paused``,
    ``not_paused``, ``not_canceling``, ``cancel_already_scheduled``, ``not_trialing``,
    ``subscription_not_active``); the sentence is what the agent reads.
    """
    ended = facts.status in ENDED_STATUSES
    if kind in (ActionKind.CANCEL_SUBSCRIPTION, ActionKind.FORCE_CANCEL):
        if ended:
            return "already_canceled", gettext("%(ended)s; there is nothing left to cancel.") % {
                "ended": _ended(facts)
            }
        if kind == ActionKind.CANCEL_SUBSCRIPTION and facts.cancel_at_period_end:
            if facts.cancel_at:
                said = gettext(
                    "This subscription is already set to end on %(date)s. "
                    "To keep it instead, use “%(keep)s”."
                ) % {"date": date_words(facts.cancel_at), "keep": gettext("Keep subscription")}
            else:
                said = gettext(
                    "This subscription is already set to end. To keep it instead, use “%(keep)s”."
                ) % {"keep": gettext("Keep subscription")}
            return "cancel_already_scheduled", said
        return None
    if ended:
        if kind == ActionKind.UNDO_CANCELLATION:
            return "already_canceled", gettext("%(ended)s; it can no longer be kept.") % {
                "ended": _ended(facts)
            }
        if kind == ActionKind.RESUME_SUBSCRIPTION:
            return "subscription_not_active", gettext("%(ended)s; there is nothing to resume.") % {
                "ended": _ended(facts)
            }
        return "subscription_not_active", gettext("%(ended)s; it can no longer be changed.") % {
            "ended": _ended(facts)
        }
    if kind == ActionKind.RESUME_SUBSCRIPTION:
        if not facts.paused:
            return (
                "not_paused",
                gettext(
                    "Payment collection on this subscription is not paused; "
                    "there is nothing to resume."
                ),
            )
        return None
    if kind == ActionKind.UNDO_CANCELLATION:
        if not facts.cancel_at_period_end:
            if facts.cancel_at is not None:
                return (
                    "not_canceling",
                    gettext(
                        "This subscription ends on %(date)s by a fixed end date, not a "
                        "cancellation at the period end; change the end date in Stripe."
                    )
                    % {"date": date_words(facts.cancel_at)},
                )
            return "not_canceling", gettext(
                "This subscription is not set to end; there is nothing to keep."
            )
        return None
    if kind == ActionKind.PAUSE_SUBSCRIPTION:
        if facts.paused:
            if facts.resumes_at:
                said = gettext(
                    "Payment collection on this subscription is already paused until %(date)s."
                ) % {"date": date_words(facts.resumes_at)}
            else:
                said = gettext("Payment collection on this subscription is already paused.")
            return "already_paused", said
        if facts.status not in PAUSABLE_STATUSES:
            return (
                "subscription_not_active",
                gettext(
                    "This subscription is %(state)s; only an active, trialing or past-due "
                    "subscription can be paused."
                )
                % {"state": _status_words(facts)},
            )
        return None
    if kind == ActionKind.EXTEND_TRIAL:
        if facts.status != "trialing":
            return (
                "not_trialing",
                gettext(
                    "This subscription is %(state)s, not in a trial; only a trial can be extended."
                )
                % {"state": _status_words(facts)},
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
                gettext("This subscription is %(state)s; only a live subscription can be changed.")
                % {"state": _status_words(facts)},
            )
        return None
    return None


def applicable_kinds(facts: SubscriptionFacts) -> list[str]:
    """The subscription kinds its state allows, in the panel's order (the role decides
    which of them the agent may take; the panel shows the intersection)."""
    return [k.value for k in SUBSCRIPTION_ACTION_KINDS if state_refusal(k, facts) is None]
