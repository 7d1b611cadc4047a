"""Escalation at 3 consecutive failures: the suspension warning note, then the CSM outreach.

The warning is flagged on the failure row when it is recorded (``record``), and
this module's work is written as one outbox message in the same transaction
(``escalation_enqueue``): after commit, ``escalation_deliver`` posts the warning
as an internal note on the customer's latest ticket, then opens the CSM outreach —
a helpdesk ticket for the workspace's ``csm_group``, or an internal note on the
latest ticket when the helpdesk cannot open tickets. Each step at most once per
streak, retried by the outbox while the helpdesk is down.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.db.models import F
from django.utils import timezone, translation
from django.utils.translation import gettext, ngettext

from helpdesk_connectors.base import HelpdeskApiError
from helpdesk_connectors.models import Installation

from ...action_words import date_words
from ...models import (
    BillingAction,
    HelpdeskTicket,
    MirrorCustomer,
    OutboxMessage,
    PaymentFailure,
    Workspace,
)
from ...money import format_money
from ...selectors.failures import failure_reason_text
from ..notes import NOTE_MARKER_PREFIX, helpdesk_note_deliver
from ..outbox import outbox_enqueue, outbox_handler_register
from ..ticket_openers import ticket_openers
from .lookups import open_at, streak_scope

logger = logging.getLogger(__name__)


def escalation_enqueue(failure: PaymentFailure) -> None:
    """The warning note and CSM outreach, as an outbox message written with the warning flag."""
    outbox_enqueue(
        workspace_id=failure.workspace_id,
        kind=OutboxMessage.Kind.FAILURE_ESCALATION,
        target_id=str(failure.pk),
        dedupe_key=f"failure_escalation:{failure.pk}",
    )


def escalation_deliver(message: OutboxMessage) -> str:
    """Outbox handler: each step posts at most once (see ``payment_failure_escalate``)."""
    payment_failure_escalate(failure_id=int(message.target_id), message=message)
    return ""


def escalation_give_up(message: OutboxMessage, error: Exception) -> None:
    payment_failure_escalation_give_up(failure_id=int(message.target_id))


@dataclass(frozen=True)
class TicketTarget:
    installation: Installation
    ticket_id: str


def customer_latest_ticket(*, workspace: Workspace, customer_id: str) -> TicketTarget | None:
    """The customer's most recent helpdesk ticket Billing Desk knows of.

    A ticket an agent acted from (exactly this customer) first; else the latest
    synced ticket whose requester is the customer's billing email.
    """
    action = (
        BillingAction.objects.filter(
            workspace=workspace,
            customer_id=customer_id,
            installation__isnull=False,
            installation__is_active=True,
        )
        .exclude(ticket_id="")
        .select_related("installation")
        .order_by("-created_at")
        .first()
    )
    if action is not None and action.installation is not None:
        return TicketTarget(action.installation, action.ticket_id)
    email = (
        MirrorCustomer.objects.filter(workspace=workspace, stripe_id=customer_id)
        .values_list("email", flat=True)
        .first()
    )
    if email:
        ticket = (
            HelpdeskTicket.objects.filter(
                workspace=workspace, requester_email__iexact=email, installation__is_active=True
            )
            .select_related("installation")
            .order_by("-updated_at")
            .first()
        )
        if ticket is not None:
            return TicketTarget(ticket.installation, ticket.external_id)
    return None


def _streak(failure: PaymentFailure) -> list[PaymentFailure]:
    return list(
        PaymentFailure.objects.filter(
            workspace_id=failure.workspace_id, customer_id=failure.customer_id
        )
        .filter(streak_scope(failure))
        .filter(failed_at__lte=failure.failed_at)
        .filter(open_at(failure.failed_at))
        .order_by("failed_at", "id")
    )


def escalation_language() -> str:
    """The language of the warning note and the CSM outreach: the deployment's default.

    They are written for whoever picks up the ticket, not for the agent whose request
    happened to record the third failure (an eager outbox delivers in that request),
    and a retry by a worker must write the same text. So every builder renders under
    ``translation.override`` of this language, words, money and dates alike.
    """
    return settings.LANGUAGE_CODE


def _day(value: datetime | None) -> str:
    return date_words(value) if value else "—"


def _customer_line(failure: PaymentFailure) -> str:
    customer = MirrorCustomer.objects.filter(
        workspace_id=failure.workspace_id, stripe_id=failure.customer_id
    ).first()
    if customer is None:
        return gettext("Customer: %(customer)s") % {"customer": failure.customer_id}
    email = f", {customer.email}" if customer.email else ""
    return gettext("Customer: %(name)s (%(customer)s%(email)s)") % {
        "name": customer.name or failure.customer_id,
        "customer": failure.customer_id,
        "email": email,
    }


def _failure_lines(failure: PaymentFailure) -> list[str]:
    lines = [
        _customer_line(failure),
        gettext("Consecutive payment failures: %(count)d") % {"count": failure.consecutive_count},
    ]
    if failure.subscription_id:
        lines.append(gettext("Subscription: %(id)s") % {"id": failure.subscription_id})
    if failure.invoice_id:
        lines.append(gettext("Invoice: %(id)s") % {"id": failure.invoice_id})
    lines.append(
        gettext("Latest: %(amount)s on %(day)s — %(reason)s (attempt %(attempt)d)")
        % {
            "amount": format_money(failure.amount, failure.currency),
            "day": _day(failure.failed_at),
            "reason": failure_reason_text(failure),
            "attempt": failure.attempt_count,
        }
    )
    if failure.next_retry_at:
        lines.append(
            gettext("Next automatic retry: %(day)s") % {"day": _day(failure.next_retry_at)}
        )
    for item in _streak(failure):
        lines.append(
            "  · "
            + gettext("%(day)s: %(amount)s, %(reason)s")
            % {
                "day": _day(item.failed_at),
                "amount": format_money(item.amount, item.currency),
                "reason": failure_reason_text(item),
            }
        )
    return lines


def suspension_warning_body(*, failure: PaymentFailure) -> str:
    """The warning note's text, in ``escalation_language()``."""
    with translation.override(escalation_language()):
        return "\n".join(
            [
                gettext("Billing Desk · Account suspension warning"),
                *_failure_lines(failure),
                gettext(
                    "The account will be suspended unless the payment is recovered. "
                    "Send the customer a payment link or extend the grace period; "
                    "CSM outreach has been requested."
                ),
            ]
        )


def csm_outreach_subject(*, failure: PaymentFailure) -> str:
    """The CSM ticket's subject, in ``escalation_language()``."""
    customer = MirrorCustomer.objects.filter(
        workspace_id=failure.workspace_id, stripe_id=failure.customer_id
    ).first()
    name = (customer.name if customer else "") or failure.customer_id
    with translation.override(escalation_language()):
        return ngettext(
            "CSM outreach: %(name)s — %(count)d consecutive payment failure",
            "CSM outreach: %(name)s — %(count)d consecutive payment failures",
            failure.consecutive_count,
        ) % {"name": name, "count": failure.consecutive_count}


def csm_outreach_body(*, failure: PaymentFailure) -> str:
    """The CSM ticket's body (also the note when no ticket can be opened), in
    ``escalation_language()``."""
    with translation.override(escalation_language()):
        return "\n".join(
            [
                gettext("Billing Desk · CSM outreach requested"),
                *_failure_lines(failure),
                gettext(
                    "An account suspension warning was issued. Please contact the customer to "
                    "recover the payment before the account is suspended."
                ),
            ]
        )


def csm_group_line(group: str) -> str:
    """The line the CSM note adds to the body: which group is asked, in ``escalation_language()``."""
    with translation.override(escalation_language()):
        if group:
            return gettext("CSM group: %(group)s") % {"group": group}
        return gettext("CSM group: (no CSM group configured)")


def _marker(failure: PaymentFailure, step: str) -> str:
    """The note's marker line: one per failure and step, so each step is found on its own."""
    return f"{NOTE_MARKER_PREFIX} payment-failure-{failure.pk}-{step}"


_NOTE_OPEN = (PaymentFailure.NoteStatus.PENDING, PaymentFailure.NoteStatus.FAILED)
_OUTREACH_OPEN = (PaymentFailure.OutreachStatus.PENDING, PaymentFailure.OutreachStatus.FAILED)


def _suspension_note(failure_id: int, message: OutboxMessage) -> HelpdeskApiError | None:
    """Step 1: the warning as an internal note on the latest ticket (once)."""
    failure = PaymentFailure.objects.select_related("workspace").get(pk=failure_id)
    if failure.suspension_note_status not in _NOTE_OPEN:
        return None
    target = customer_latest_ticket(workspace=failure.workspace, customer_id=failure.customer_id)
    still_open = PaymentFailure.objects.filter(pk=failure_id, suspension_note_status__in=_NOTE_OPEN)
    if target is None:
        still_open.update(
            suspension_note_status=PaymentFailure.NoteStatus.NO_TICKET, updated_at=timezone.now()
        )
        return None
    try:
        ref = helpdesk_note_deliver(
            message=message,
            installation=target.installation,
            ticket_id=target.ticket_id,
            body=suspension_warning_body(failure=failure),
            marker=_marker(failure, "warning"),
        )
    except HelpdeskApiError as exc:
        still_open.update(
            suspension_note_status=PaymentFailure.NoteStatus.FAILED, updated_at=timezone.now()
        )
        return exc
    still_open.update(
        suspension_note_status=PaymentFailure.NoteStatus.POSTED,
        suspension_note_ref=f"{target.ticket_id}:{ref}" if ref else target.ticket_id,
        updated_at=timezone.now(),
    )
    return None


def csm_ticket_key(failure: PaymentFailure, *, subject: str, body: str) -> str:
    """The CSM ticket's idempotency key: the same on every retry of the same ticket.

    It names the failure and a digest of what is sent: the body is rebuilt on each try
    and may change (a later failure moves ``next_retry_at``), and Zendesk refuses a key
    reused with another body — so a changed ticket is sent under a new key instead."""
    digest = hashlib.sha256(f"{subject}\n{body}".encode()).hexdigest()[:16]
    return f"csm-outreach-{failure.pk}-{digest}"


def _csm_ticket(
    failure: PaymentFailure, target: TicketTarget | None, group: str
) -> tuple[str, str, HelpdeskApiError | None]:
    """A ticket for the CSM group on the first installation that can open one: (status, ref, error)."""
    preferred_id = target.installation.pk if target else None
    subject, body = csm_outreach_subject(failure=failure), csm_outreach_body(failure=failure)
    for installation, connector in ticket_openers(failure.workspace, preferred_id=preferred_id):
        try:
            ref = connector.create_ticket(
                installation,
                subject=subject,
                body=body,
                group=group,
                # Zendesk answers a retry after a lost answer with the first ticket;
                # Freshdesk tags the ticket with it.
                idempotency_key=csm_ticket_key(failure, subject=subject, body=body),
            )
        except HelpdeskApiError as exc:
            if exc.retryable:
                return "", "", exc
            logger.warning("CSM ticket could not be created on %s: %s", installation.pk, exc.code)
            continue
        return PaymentFailure.OutreachStatus.TICKET, f"{installation.connector}:{ref}", None
    return "", "", None


def _csm_outreach(failure_id: int, message: OutboxMessage) -> HelpdeskApiError | None:
    """Step 2: a ticket for the CSM group, else a note on the latest ticket (once)."""
    failure = PaymentFailure.objects.select_related("workspace").get(pk=failure_id)
    if failure.csm_outreach_status not in _OUTREACH_OPEN:
        return None
    target = customer_latest_ticket(workspace=failure.workspace, customer_id=failure.customer_id)
    group = failure.workspace.csm_group.strip()
    status, ref, error = _csm_ticket(failure, target, group) if group else ("", "", None)
    if not status and error is None:
        if target is not None:
            try:
                note = helpdesk_note_deliver(
                    message=message,
                    installation=target.installation,
                    ticket_id=target.ticket_id,
                    body=csm_outreach_body(failure=failure) + "\n" + csm_group_line(group),
                    marker=_marker(failure, "csm"),
                )
                status = PaymentFailure.OutreachStatus.NOTE
                ref = f"{target.ticket_id}:{note}" if note else target.ticket_id
            except HelpdeskApiError as exc:
                error = exc
        else:
            status = PaymentFailure.OutreachStatus.NO_CHANNEL
    still_open = PaymentFailure.objects.filter(
        pk=failure_id, csm_outreach_status__in=_OUTREACH_OPEN
    )
    if error is not None:
        still_open.update(
            csm_outreach_status=PaymentFailure.OutreachStatus.FAILED,
            csm_outreach_error=f"{error.code}: {error.message}"[:2000],
            updated_at=timezone.now(),
        )
    else:
        still_open.update(
            csm_outreach_status=status,
            csm_outreach_ref=ref[:255],
            csm_outreach_at=timezone.now(),
            csm_outreach_error="",
            updated_at=timezone.now(),
        )
    return error


def payment_failure_escalate(*, failure_id: int, message: OutboxMessage) -> PaymentFailure:
    """Post the suspension warning note and open the CSM outreach, each at most once.

    Runs as the outbox message ``message`` (``escalation_deliver``): the outbox's
    claim keeps every other worker off it, so no row lock is held across the
    helpdesk calls. Each step records what it did as soon as the helpdesk has
    answered, and only while the step is still open, so a retry never repeats a
    step that went out — a CSM outage cannot repost the note. The notes go
    through ``notes.helpdesk_note_deliver``, the one path of every internal note:
    a retry whose earlier post may have landed finds it on the ticket by its
    marker instead of posting twice. Raises the first retryable
    ``HelpdeskApiError`` (after recording it) for the outbox to retry; a refusal
    is recorded and not retried.
    """
    PaymentFailure.objects.filter(pk=failure_id).update(
        escalation_attempts=F("escalation_attempts") + 1
    )
    # Whatever is written here — the texts, a helpdesk error kept on the row — is in the
    # default language, also when an eager outbox runs this inside an agent's request.
    with translation.override(escalation_language()):
        errors = [
            e
            for e in (_suspension_note(failure_id, message), _csm_outreach(failure_id, message))
            if e
        ]
    _context_changed(failure_id)
    retryable = next((e for e in errors if e.retryable), None)
    if retryable is not None:
        raise retryable
    return PaymentFailure.objects.get(pk=failure_id)


def _context_changed(failure_id: int) -> None:
    """The context's suspension warning says where the note and the outreach stand (issue 15:
    its snapshot is marked stale; ``.update()`` sends no signal)."""
    from ..context_cache import customer_context_invalidate

    for workspace_id, customer_id in PaymentFailure.objects.filter(pk=failure_id).values_list(
        "workspace_id", "customer_id"
    ):
        customer_context_invalidate(workspace_id=workspace_id, customer_id=customer_id)


def payment_failure_escalation_give_up(*, failure_id: int) -> None:
    """After the last retry: what is still pending is marked failed (the failure itself stands)."""
    PaymentFailure.objects.filter(
        pk=failure_id, suspension_note_status=PaymentFailure.NoteStatus.PENDING
    ).update(suspension_note_status=PaymentFailure.NoteStatus.FAILED)
    PaymentFailure.objects.filter(
        pk=failure_id, csm_outreach_status=PaymentFailure.OutreachStatus.PENDING
    ).update(csm_outreach_status=PaymentFailure.OutreachStatus.FAILED)
    _context_changed(failure_id)


outbox_handler_register(
    kind=OutboxMessage.Kind.FAILURE_ESCALATION,
    deliver=escalation_deliver,
    give_up=escalation_give_up,
)
