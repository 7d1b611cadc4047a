"""Contact support from the widget: a helpdesk ticket with the customer as requester.

Under the customer's lock the limits are counted and the ``contact`` event and the
ticket's outbox message (``customer_ticket_enqueue``) written in one transaction: one
ticket per visit however often the message is sent, and concurrent sends never pass a
limit together. The ticket's description is the customer's own message (what they read
back); their billing context (the widget's own answers) is the agents' private note. Its
reference comes back through ``widget_contact_ticket_created`` once the outbox has opened
it (a ticket no helpdesk opened leaves the event without one: the outbox logs and counts
the failure; the event has no field to say more).

Refused before anything is written: a message that is empty, too long or not storable
text (NUL, unpaired surrogates: ``message_invalid``), a customer without an email, and a
workspace none of whose active helpdesk installations can open tickets (``no_helpdesk``,
503: "we opened a ticket" would be untrue; ``billing.W031`` warns of it).
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.utils import timezone, translation
from django.utils.translation import gettext

from ...clock import billing_now
from ...errors import BillingDeskError
from ...models import BillingWidgetEvent, Workspace
from ...selectors.widget import ACCOUNT_QUESTIONS, account_answer, widget_events_counts
from ..customer_tickets import customer_ticket_enqueue
from ..locks import customer_decision_lock
from ..ticket_openers import ticket_openers
from .answers import SOURCE, widget_throttled
from .identity import WidgetCaller

logger = logging.getLogger(__name__)

CONTACTS_PER_HOUR = 3
CONTACTS_PER_DAY = 10
MESSAGE_MAX = 4000


def _billing_context(caller: WidgetCaller) -> str:
    """The agents' private note: the customer's billing context (the widget's answers)."""
    customer = caller.customer
    parts = [
        gettext("The customer wrote through the billing help widget."),
        gettext("Billing context (Billing Desk, from the billing mirror):"),
        gettext("Customer: %(name)s <%(email)s> (%(id)s)")
        % {"name": customer.name or "-", "email": customer.email or "-", "id": customer.stripe_id},
    ]
    now = billing_now(caller.workspace)
    for question in ACCOUNT_QUESTIONS:
        answer = account_answer(
            question=question, workspace=caller.workspace, customer=customer, now=now
        )
        parts.append("")
        parts.append(f"{answer.title}:")
        parts.extend(f"- {line}" for line in answer.lines)
        for item in answer.items[:5]:
            urls = " ".join(link.url for link in item.links)
            parts.append(f"- {item.label} ({item.detail}) {urls}".rstrip())
    return "\n".join(parts)


def widget_helpdesk_ready(*, workspace: Workspace) -> bool:
    """Whether one of the workspace's installations can open tickets (``ticket_openers``,
    the list the delivery itself tries) — where "contact support" is delivered."""
    return bool(ticket_openers(workspace))


def _throttle_contacts(caller: WidgetCaller, now: datetime) -> None:
    """Contacts are counted from their rows (one per visit; a repeat returns the first)."""
    limits = ((timedelta(hours=1), CONTACTS_PER_HOUR), (timedelta(days=1), CONTACTS_PER_DAY))
    counts = widget_events_counts(
        workspace=caller.workspace,
        customer_id=caller.customer_id,
        now=now,
        windows=tuple(window for window, _ in limits),
        kinds=(BillingWidgetEvent.Kind.CONTACT,),
    )
    for (window, limit), count in zip(limits, counts, strict=True):
        if count >= limit:
            widget_throttled(
                caller,
                what="contact",
                message=gettext(
                    "You have contacted us several times already; we will reply by email. "
                    "Please try again later."
                ),
                retry_after=int(window.total_seconds()),
            )


def _storable(text: str) -> bool:
    """Text PostgreSQL stores: no NUL, no unpaired surrogate (not encodable as UTF-8)."""
    if "\x00" in text:
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def widget_contact(
    *, caller: WidgetCaller, visit: str, message: Any, now: datetime | None = None
) -> BillingWidgetEvent:
    """Open a helpdesk ticket for the customer with their billing context (once per visit).

    Under the customer's lock: the limits are counted and the ``contact`` event and the
    ticket's outbox message written in one transaction, so concurrent sends neither pass a
    limit together nor make two tickets for one visit (the second finds the first).
    """
    if not isinstance(message, str) or not message.strip():
        raise BillingDeskError(gettext("Please write a message."), code="message_required")
    text = message.strip()
    if not _storable(text):
        raise BillingDeskError(
            gettext("The message contains characters we cannot accept. Please retype it."),
            code="message_invalid",
        )
    if len(text) > MESSAGE_MAX:
        raise BillingDeskError(
            gettext("The message is too long (at most %(max)s characters).") % {"max": MESSAGE_MAX},
            code="message_too_long",
        )
    if not caller.customer.email:
        raise BillingDeskError(
            gettext("We have no email address to reply to. Please contact us another way."),
            code="no_customer_email",
            status=422,
        )
    if not widget_helpdesk_ready(workspace=caller.workspace):
        logger.warning(
            "billing widget contact refused: no helpdesk can open tickets workspace=%s",
            caller.workspace.pk,
        )
        raise BillingDeskError(
            gettext(
                "We cannot open a support request here right now. "
                "Please contact us by email or try again later."
            ),
            code="no_helpdesk",
            status=503,
        )
    now = now or timezone.now()
    with customer_decision_lock(workspace=caller.workspace, customer_id=caller.customer_id):
        earlier = BillingWidgetEvent.objects.filter(
            workspace=caller.workspace,
            customer_id=caller.customer_id,
            visit=visit,
            kind=BillingWidgetEvent.Kind.CONTACT,
        ).first()
        if earlier is not None:
            return earlier
        _throttle_contacts(caller, now)
        event = BillingWidgetEvent.objects.create(
            workspace=caller.workspace,
            customer_id=caller.customer_id,
            visit=visit,
            kind=BillingWidgetEvent.Kind.CONTACT,
        )
        with translation.override(settings.LANGUAGE_CODE):
            subject = gettext("Billing question from %(name)s (help widget)") % {
                "name": caller.customer.name or caller.customer.email
            }
            context = _billing_context(caller)
        customer_ticket_enqueue(
            workspace=caller.workspace,
            customer_id=caller.customer_id,
            subject=subject,
            body=text,
            internal_note=context,
            requester_email=caller.customer.email,
            requester_name=caller.customer.name,
            source=SOURCE,
            source_id=str(event.pk),
        )
    logger.info(
        "billing widget contact workspace=%s customer=%s event=%s",
        caller.workspace.pk,
        caller.customer_id,
        event.pk,
    )
    return event


def widget_contact_ticket_created(source_id: str, ref: str) -> None:
    """The outbox opened the contact's ticket: keep its reference on the event."""
    if ref and source_id.isdigit():
        BillingWidgetEvent.objects.filter(
            pk=int(source_id), kind=BillingWidgetEvent.Kind.CONTACT
        ).update(ticket_ref=ref[:255])
