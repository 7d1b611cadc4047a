"""The billing help widget (docs/self-service.md, section 3).

One script tag on the customer's own product page asks ``/widget/api/v1/<slug>/…`` for
answers about the signed-in customer's billing. Who the customer is comes from the
product's backend, never from the browser: the tag carries the customer id and an
HMAC-SHA256 of it under the workspace's widget secret (the identity verification helpdesk
chat widgets use). Each request is checked tenant-first (``widget_caller_resolve``):

1. the workspace's enabled widget, by slug;
2. the request's ``Origin`` is exactly one of the widget's allowed origins (a browser
   cannot fake it; the web view answers CORS for that origin only);
3. the signature: 64 hex digits compared in constant time with our own HMAC of the
   customer id (``hmac.compare_digest``);
4. the customer exists, undeleted, in the workspace's mirror.

Any failure is refused before anything is read or written, and the widget shows nothing.
The signature is a bearer credential of that customer for as long as the secret lives:
it belongs only in pages rendered for that customer; rotating the secret (admin) voids
every signature at once.

What a caller may then do: read the answers (``selectors.widget``), get a card-update link
(``card_update_url``, the prompts' page) and a refund-request link (``refund_link_create``,
source ``widget``; a live one is handed out again rather than minting more), and contact
support — a helpdesk ticket with the customer as requester and the billing context
attached (``customer_ticket_enqueue``, through the outbox). Each is counted as a
``BillingWidgetEvent`` (opened / answered(question) / contact: deflection on the
dashboard), once per visit; the counts are also the rate limits.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone, translation
from django.utils.translation import gettext, gettext_noop

from ..clock import billing_now
from ..errors import BillingDeskError, ValidationFailed
from ..models import BillingWidget, BillingWidgetEvent, MirrorCustomer, SelfServiceLink, Workspace
from ..selectors.context.subscription_state import date_words
from ..selectors.widget import (
    ACCOUNT_QUESTIONS,
    WidgetAnswer,
    WidgetLink,
    account_answer,
    origin_normalise,
    widget_customer,
    widget_event_exists,
    widget_events_count,
    widget_for_slug,
    widget_origins,
)
from .card_prompts import card_update_url
from .customer_tickets import (
    customer_ticket_enqueue,
    customer_ticket_source_register,
    refund_link_create,
)
from .locks import customer_decision_lock
from .self_service_refunds.links import refund_link_url

logger = logging.getLogger(__name__)

SOURCE = "widget"
SECRET_BYTES = 32
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
# Limits per customer, counted from the rows (the Freshdesk enrollment's way).
EVENTS_PER_HOUR = 200  # opened + answered
CONTACTS_PER_HOUR = 3
CONTACTS_PER_DAY = 10
# A refund link the widget handed out is handed out again while it has this long left.
REFUND_LINK_REUSE_LEFT = timedelta(days=1)
MESSAGE_MAX = 4000

_CUSTOMER_RE = re.compile(r"^[A-Za-z0-9_-]{1,255}$")
_SIGNATURE_RE = re.compile(r"^[0-9a-fA-F]{64}$")
_VISIT_RE = re.compile(r"^[A-Za-z0-9_-]{8,64}$")


class WidgetRefused(BillingDeskError):
    """The widget's request is refused; ``cors`` says whether the origin may read why."""

    code = "widget_refused"
    status = 403

    def __init__(self, message: str, *, code: str, status: int = 403, cors: bool = True):
        super().__init__(message, code=code, status=status)
        self.cors = cors


class WidgetThrottled(BillingDeskError):
    code = "widget_rate_limited"
    status = 429


@dataclass(frozen=True)
class WidgetCaller:
    """A verified widget request: whose account, from which allowed origin."""

    widget: BillingWidget
    workspace: Workspace
    customer: MirrorCustomer
    origin: str

    @property
    def customer_id(self) -> str:
        return self.customer.stripe_id


# --- the identity --------------------------------------------------------------------------------


def widget_identity_sign(*, secret: str, customer_id: str) -> str:
    """``hex(HMAC-SHA256(secret, customer_id))`` — what the product's backend computes."""
    return hmac.new(secret.encode(), customer_id.encode(), hashlib.sha256).hexdigest()


def widget_identity_valid(*, secret: str, customer_id: str, signature: str) -> bool:
    """Whether ``signature`` signs ``customer_id`` under ``secret`` (constant-time compare)."""
    if not secret or not isinstance(signature, str) or not _SIGNATURE_RE.match(signature):
        return False
    expected = widget_identity_sign(secret=secret, customer_id=customer_id)
    return hmac.compare_digest(expected, signature.lower())


@transaction.atomic
def widget_secret_rotate(*, widget: BillingWidget) -> str:
    """A new identity secret for ``widget`` (stored encrypted), returned once to show it.

    Every signature made with the old secret stops working at once; the product's backend
    must sign with the new one.
    """
    secret = secrets.token_hex(SECRET_BYTES)
    widget.identity_secret = secret
    widget.save(update_fields=["identity_secret", "updated_at"])
    logger.info("billing widget secret rotated workspace=%s", widget.workspace_id)
    return secret


def widget_origins_validate(*, text: str) -> str:
    """The allowed origins, one per line, as browsers send them; ``ValidationFailed`` names
    the first line that is not an origin (a path, a wildcard, ``null``, another scheme)."""
    origins: list[str] = []
    for line in (text or "").splitlines():
        if not line.strip():
            continue
        origin = origin_normalise(line)
        if not origin:
            raise ValidationFailed(
                gettext(
                    "%(line)s is not an origin: write scheme://host[:port] "
                    "(https://app.example.com), one per line, without a path or wildcard."
                )
                % {"line": line.strip()[:100]},
                code="invalid_origin",
            )
        origins.append(origin)
    return "\n".join(dict.fromkeys(origins))


def _refused(code: str, *, cors: bool, status: int = 403) -> WidgetRefused:
    # One message for every refusal: the caller learns nothing about which check failed.
    return WidgetRefused(
        gettext("This billing help request is not allowed."), code=code, status=status, cors=cors
    )


def widget_caller_resolve(
    *, slug: str, origin: str, customer_id: Any, signature: Any
) -> WidgetCaller:
    """Verify a widget request tenant-first (see the module docstring); ``WidgetRefused``.

    The workspace and the origin are checked before anything else: until then the refusal
    carries no CORS headers (``cors=False``), so a foreign page cannot even read it.
    """
    widget = widget_for_slug(slug=slug)
    if widget is None or not origin or origin not in widget_origins(widget):
        logger.warning("billing widget refused: origin workspace=%s", slug[:50])
        raise _refused("origin_not_allowed", cors=False)
    if not isinstance(customer_id, str) or not _CUSTOMER_RE.match(customer_id):
        raise _refused("identity_invalid", cors=True, status=401)
    if not widget_identity_valid(
        secret=widget.identity_secret, customer_id=customer_id, signature=signature
    ):
        logger.warning(
            "billing widget refused: signature workspace=%s customer=%s", slug, customer_id
        )
        raise _refused("identity_invalid", cors=True, status=401)
    customer = widget_customer(workspace=widget.workspace, customer_id=customer_id)
    if customer is None:
        raise _refused("customer_unknown", cors=True, status=404)
    return WidgetCaller(widget=widget, workspace=widget.workspace, customer=customer, origin=origin)


def widget_visit_check(visit: Any) -> str:
    if not isinstance(visit, str) or not _VISIT_RE.match(visit):
        raise BillingDeskError(gettext("The widget's visit id is invalid."), code="invalid_visit")
    return visit


# --- texts ---------------------------------------------------------------------------------------


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


def _throttle_events(caller: WidgetCaller, now: datetime) -> None:
    count = widget_events_count(
        workspace=caller.workspace,
        customer_id=caller.customer_id,
        since=now - timedelta(hours=1),
        kinds=(BillingWidgetEvent.Kind.OPENED, BillingWidgetEvent.Kind.ANSWERED),
    )
    if count >= EVENTS_PER_HOUR:
        logger.warning(
            "billing widget throttled workspace=%s customer=%s",
            caller.workspace.pk,
            caller.customer_id,
        )
        raise WidgetThrottled(
            gettext("Too many requests. Please try again in an hour."),
            details={"retry_after": 3600},
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


# --- contact support -----------------------------------------------------------------------------


def _ticket_body(caller: WidgetCaller, message: str) -> str:
    """The customer's message and their billing context, in the product's language."""
    customer = caller.customer
    parts = [
        gettext("The customer wrote through the billing help widget:"),
        message,
        "",
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


def _throttle_contacts(caller: WidgetCaller, now: datetime) -> None:
    for window, limit in (
        (timedelta(hours=1), CONTACTS_PER_HOUR),
        (timedelta(days=1), CONTACTS_PER_DAY),
    ):
        count = widget_events_count(
            workspace=caller.workspace,
            customer_id=caller.customer_id,
            since=now - window,
            kinds=(BillingWidgetEvent.Kind.CONTACT,),
        )
        if count >= limit:
            logger.warning(
                "billing widget contact throttled workspace=%s customer=%s",
                caller.workspace.pk,
                caller.customer_id,
            )
            raise WidgetThrottled(
                gettext(
                    "You have contacted us several times already; we will reply by email. "
                    "Please try again later."
                ),
                details={"retry_after": int(window.total_seconds())},
            )


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
            body = _ticket_body(caller, text)
        customer_ticket_enqueue(
            workspace=caller.workspace,
            customer_id=caller.customer_id,
            subject=subject,
            body=body,
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


customer_ticket_source_register(source=SOURCE, on_created=widget_contact_ticket_created)


__all__ = [
    "QUESTIONS",
    "WidgetCaller",
    "WidgetRefused",
    "WidgetThrottled",
    "widget_answer",
    "widget_caller_resolve",
    "widget_contact",
    "widget_identity_sign",
    "widget_identity_valid",
    "widget_open",
    "widget_origins_validate",
    "widget_secret_rotate",
    "widget_texts",
    "widget_visit_check",
]
