"""The widget's words, its answers and the links it hands out, counted as events.

Each visit (a random id the script keeps for one page view) counts ``opened`` once and
each question once (``answered``); the counts of the last hour are also the per-customer
limit. A refund link the widget handed out is handed out again while it has more than a
day left, so asking twice does not mint two links.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from django.utils import timezone
from django.utils.translation import gettext, gettext_noop

from ...clock import billing_now
from ...errors import BillingDeskError
from ...models import BillingWidgetEvent, SelfServiceLink
from ...selectors.context.subscription_state import date_words
from ...selectors.widget import (
    ACCOUNT_QUESTIONS,
    WidgetAnswer,
    WidgetLink,
    account_answer,
    widget_event_exists,
    widget_events_count,
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
# Opened + answered events per customer and hour (counted from the rows).
EVENTS_PER_HOUR = 200
# A refund link the widget handed out is handed out again while it has this long left.
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


def widget_throttle(
    caller: WidgetCaller,
    *,
    now: datetime,
    kinds: tuple[str, ...],
    limits: tuple[tuple[timedelta, int], ...],
    message: str,
) -> None:
    """``WidgetThrottled`` when the customer has ``limit`` events of ``kinds`` in a ``window``
    (counted from the rows); ``retry_after`` is that window."""
    for window, limit in limits:
        count = widget_events_count(
            workspace=caller.workspace,
            customer_id=caller.customer_id,
            since=now - window,
            kinds=kinds,
        )
        if count >= limit:
            logger.warning(
                "billing widget throttled workspace=%s customer=%s kinds=%s",
                caller.workspace.pk,
                caller.customer_id,
                ",".join(kinds),
            )
            raise WidgetThrottled(message, details={"retry_after": int(window.total_seconds())})


def _throttle_events(caller: WidgetCaller, now: datetime) -> None:
    widget_throttle(
        caller,
        now=now,
        kinds=(BillingWidgetEvent.Kind.OPENED, BillingWidgetEvent.Kind.ANSWERED),
        limits=((timedelta(hours=1), EVENTS_PER_HOUR),),
        message=gettext("Too many requests. Please try again in an hour."),
    )


def _event_once(
    caller: WidgetCaller, *, visit: str, kind: str, question: str = ""
) -> BillingWidgetEvent | None:
    """Record the event unless this visit already has it (a visit counts a question once)."""
    if widget_event_exists(
        workspace=caller.workspace,
        customer_id=caller.customer_id,
        visit=visit,
        kind=kind,
        question=question,
    ):
        return None
    return BillingWidgetEvent.objects.create(
        workspace=caller.workspace,
        customer_id=caller.customer_id,
        visit=visit,
        kind=kind,
        question=question,
    )


def widget_open(*, caller: WidgetCaller, visit: str, now: datetime | None = None) -> None:
    """The customer opened the widget: one ``opened`` event per visit."""
    now = now or timezone.now()
    _throttle_events(caller, now)
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
    """A live refund link the widget handed out to this customer, else a new one."""
    live = (
        SelfServiceLink.objects.filter(
            workspace=caller.workspace,
            customer_id=caller.customer_id,
            source=SOURCE,
            revoked_at__isnull=True,
            expires_at__gt=now + REFUND_LINK_REUSE_LEFT,
        )
        .order_by("-expires_at")
        .first()
    )
    if live is not None:
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
    _throttle_events(caller, now)
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
