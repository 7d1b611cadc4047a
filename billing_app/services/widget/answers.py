"""The widget's words, its answers and the links it hands out, counted as events.

Each visit (a random id the script keeps for the tab's session) counts ``opened`` once and
each question once (``answered``): one row each, inserted with ``ignore_conflicts`` on the
unique ``uniq_widget_event_per_visit``, so simultaneous identical requests all answer and
count once. The per-customer limit counts requests, not rows (a visit re-used by a script
would otherwise never be limited): a counter per customer and hour in the cache
(``cache_window_hit``; without Redis it allows). A refund link the widget handed out is
handed out again while it has more than ``min(a day, half its lifetime)`` left, so asking
again does not mint another link — the widget mints at most one per customer in that
time, leaving the customer's hourly link quota (``refund_link_create``) to the agents.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from django.utils import timezone
from django.utils.translation import gettext, gettext_noop

from ...cache import cache_window_hit
from ...clock import billing_now
from ...errors import BillingDeskError
from ...models import BillingWidgetEvent, SelfServiceLink
from ...selectors.context.subscription_state import date_words
from ...selectors.widget import (
    ACCOUNT_QUESTIONS,
    WidgetAnswer,
    WidgetLink,
    account_answer,
)
from ..card_prompts import card_update_url
from ..locks import customer_decision_lock
from ..refund_links import refund_link_create, refund_link_url
from .identity import WidgetCaller

logger = logging.getLogger(__name__)

SOURCE = "widget"
# The questions in the order the widget lists them: three answered from the account, two
# that hand out a secure link. "Contact support" is its own request.
QUESTIONS = (*ACCOUNT_QUESTIONS, "update_card", "refund")
QUESTION_LABELS = {
    "next_invoice": gettext_noop("When is my next invoice?"),
    "last_payment": gettext_noop("Did my last payment go through?"),
    "invoices": gettext_noop("Download my invoices"),
    "update_card": gettext_noop("Update my card"),
    "refund": gettext_noop("Request a refund"),
}
# Open and answer requests per customer and hour (counted in the cache, every request).
EVENTS_PER_HOUR = 200
EVENTS_WINDOW_SECONDS = 3600
# A refund link the widget handed out is handed out again while it has this long left, or
# half its lifetime when that is shorter (one-day links: twelve hours).
REFUND_LINK_REUSE_LEFT = timedelta(days=1)


class WidgetThrottled(BillingDeskError):
    code = "widget_rate_limited"
    status = 429


def widget_texts(*, caller: WidgetCaller) -> dict[str, Any]:
    """The widget's words in the active language, and the questions it offers."""
    return {
        "launcher": gettext("Billing help"),
        "title": gettext("Billing help"),
        "intro": gettext("Answers about your billing, from your own account."),
        "close": gettext("Close"),
        "back": gettext("Back"),
        "loading": gettext("Loading…"),
        "error": gettext("Something went wrong. Please try again later."),
        "contact": gettext("Contact support"),
        "contact_intro": gettext(
            "Tell us what you need. We reply by email to %(email)s and see your billing details."
        )
        % {"email": caller.customer.email or gettext("your billing email")},
        "message_label": gettext("Your message"),
        "send": gettext("Send"),
        "questions": [{"key": key, "label": gettext(QUESTION_LABELS[key])} for key in QUESTIONS],
    }


# --- events and limits -----------------------------------------------------------------------


def widget_throttled(caller: WidgetCaller, *, what: str, message: str, retry_after: int) -> None:
    """Log the refusal (ids only) and raise ``WidgetThrottled`` (``retry_after`` seconds)."""
    logger.warning(
        "billing widget throttled workspace=%s customer=%s what=%s",
        caller.workspace.pk,
        caller.customer_id,
        what,
    )
    raise WidgetThrottled(message, details={"retry_after": retry_after})


def _throttle_events(caller: WidgetCaller) -> None:
    """``WidgetThrottled`` past ``EVENTS_PER_HOUR`` open/answer requests of the customer in
    the hour (every request counts, whatever its visit id; fails open without the cache)."""
    hits = cache_window_hit(
        f"widget_events:{caller.workspace.pk}:{caller.customer_id}",
        seconds=EVENTS_WINDOW_SECONDS,
    )
    if hits is not None and hits > EVENTS_PER_HOUR:
        widget_throttled(
            caller,
            what="events",
            message=gettext("Too many requests. Please try again in an hour."),
            retry_after=EVENTS_WINDOW_SECONDS,
        )


def _event_once(caller: WidgetCaller, *, visit: str, kind: str, question: str = "") -> None:
    """Record the event unless this visit already has it (a visit counts a question once).

    One insert that the unique ``uniq_widget_event_per_visit`` turns into nothing when the
    row exists — also when a simultaneous identical request inserted it a moment ago
    (``ON CONFLICT DO NOTHING``: no IntegrityError, no savepoint), as ``outbox_enqueue``.
    """
    BillingWidgetEvent.objects.bulk_create(
        [
            BillingWidgetEvent(
                workspace=caller.workspace,
                customer_id=caller.customer_id,
                visit=visit,
                kind=kind,
                question=question,
            )
        ],
        ignore_conflicts=True,
    )


def widget_open(*, caller: WidgetCaller, visit: str) -> None:
    """The customer opened the widget: one ``opened`` event per visit."""
    _throttle_events(caller)
    _event_once(caller, visit=visit, kind=BillingWidgetEvent.Kind.OPENED)


# --- answers -------------------------------------------------------------------------------------


def _card_answer(caller: WidgetCaller) -> WidgetAnswer:
    url = card_update_url(workspace=caller.workspace, customer_id=caller.customer_id)
    return WidgetAnswer(
        "update_card",
        gettext("Update your card"),
        lines=[
            gettext(
                "Update your card on our payment provider's secure page. "
                "Your card number is never shared with us."
            )
        ],
        links=[WidgetLink(gettext("Update card"), url, "card")],
    )


def _refund_link(caller: WidgetCaller, now: datetime) -> tuple[str, datetime]:
    """A live refund link the widget handed out to this customer, else a new one.

    Handed out again while it has more than ``min(REFUND_LINK_REUSE_LEFT, half its
    lifetime)`` left: with one-day links a link serves twelve hours, not one question.
    """
    live = (
        SelfServiceLink.objects.filter(
            workspace=caller.workspace,
            customer_id=caller.customer_id,
            source=SOURCE,
            revoked_at__isnull=True,
            expires_at__gt=now,
        )
        .order_by("-expires_at")
        .first()
    )
    if live is not None:
        reuse_left = min(REFUND_LINK_REUSE_LEFT, (live.expires_at - live.created_at) / 2)
        if live.expires_at - now > reuse_left:
            return refund_link_url(live), live.expires_at
    link, url = refund_link_create(
        workspace=caller.workspace, customer_id=caller.customer_id, source=SOURCE, now=now
    )
    return url, link.expires_at


def _refund_answer(caller: WidgetCaller, now: datetime) -> WidgetAnswer:
    with customer_decision_lock(workspace=caller.workspace, customer_id=caller.customer_id):
        url, expires_at = _refund_link(caller, now)
    return WidgetAnswer(
        "refund",
        gettext("Request a refund"),
        lines=[
            gettext(
                "Choose the payment and tell us why on this secure page. "
                "The link works until %(date)s."
            )
            % {"date": date_words(expires_at)}
        ],
        links=[WidgetLink(gettext("Request a refund"), url, "refund")],
        data={"expires_at": expires_at.isoformat()},
    )


def widget_answer(
    *, caller: WidgetCaller, visit: str, question: str, now: datetime | None = None
) -> WidgetAnswer:
    """Answer ``question`` for the caller in the active language; counted once per visit."""
    if question not in QUESTIONS:
        raise BillingDeskError(
            gettext("The widget does not know this question."), code="unknown_question"
        )
    now = now or timezone.now()
    _throttle_events(caller)
    if question == "update_card":
        answer = _card_answer(caller)
    elif question == "refund":
        answer = _refund_answer(caller, now)
    else:
        answer = account_answer(
            question=question,
            workspace=caller.workspace,
            customer=caller.customer,
            now=billing_now(caller.workspace),
        )
    _event_once(caller, visit=visit, kind=BillingWidgetEvent.Kind.ANSWERED, question=question)
    return answer
