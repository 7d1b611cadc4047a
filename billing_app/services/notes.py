"""Notes back to the ticket: every billing action, every approval request and decision, and the
payment-failure escalation, as an internal note.

What a note says comes from ``services.note_templates``: the workspace's own wording
(``NoteTemplate``, edited in admin) or the product's, in words — who, what, the
customer by name, the parameters, amounts, links, reason labels and the approval
trail; no customer ids, enumeration values or action ids.

A note is an outbox message (``services.outbox``) written in the transaction that
changed the action, with the note's text as of that moment; the broker only rings
the doorbell, and the minute re-drive posts whatever the doorbell missed, with
exponential backoff on retryable helpdesk errors (honouring ``Retry-After``). A
note that cannot be posted never undoes, hides or changes the billing action it
describes: only ``note_status`` / ``note_attempts`` move.

Exactly once on the ticket, from at-least-once delivery: every note ends with a
marker line carrying its outbox id (``Billing Desk ref: …``). Before posting, an
attempt that follows one whose outcome is unknown — a timeout, reset or 5xx after
the request was sent, or a worker that died holding the row — reads the ticket's
newest comments (``find_recent_note``) and, when the marker is there, records the
note as posted instead of posting it again.

In the requesting agent's language: the action records its requester's language when it
is submitted (``BillingAction.words["locale"]``), and every note about it — its outcome,
its approval request, a decision, an expiry, whoever or whatever records it (an approver,
a Celery worker) — carries that language as ``locale`` in the outbox payload; its text is
written under ``translation.override`` of it, whenever and however often delivery runs.
An action recorded before that has no language: the language active when the note is
recorded is used (the agent's, from their session). A payload without one (written before notes had a
language) is written in ``settings.LANGUAGE_CODE``.

One path: ``helpdesk_note_deliver`` is the only function that posts an internal
note, called by the outbox handlers of action notes, approval notes and the
payment-failure escalation (``services.payment_failures.escalation``).
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import translation
from django.utils.translation import gettext as _

from helpdesk_connectors.base import HelpdeskApiError, HelpdeskConnector, NotRegistered
from helpdesk_connectors.models import Installation
from helpdesk_connectors.registry import connector_for

from ..errors import BillingDeskError, PreconditionFailed
from ..models import ApprovalRequest, BillingAction, OutboxMessage
from .note_templates import note_text
from .outbox import MAX_ATTEMPTS, outbox_enqueue, outbox_enqueue_new, outbox_handler_register

logger = logging.getLogger(__name__)

NOTE_MAX_RETRIES = MAX_ATTEMPTS - 1
NOTE_MARKER_PREFIX = "Billing Desk ref:"
# Errors after which the note may be on the ticket although no answer said so.
_MAYBE_SENT_CODES = frozenset({"helpdesk_timeout", "helpdesk_unreachable"})


def note_locale(action: BillingAction | None = None) -> str:
    """The language a note about ``action`` is written in: its requester's, recorded when it
    was submitted (so a note a worker or an approver records — reconciliation, expiry, a
    decision — is still in the language of the ticket's agent); else the active one."""
    recorded = (action.words or {}).get("locale") if action is not None else None
    if isinstance(recorded, str) and recorded:
        return recorded
    return translation.get_language() or settings.LANGUAGE_CODE


def _payload_locale(message: OutboxMessage) -> str:
    """The language recorded with the note; an older payload without one: the default."""
    locale = (message.payload or {}).get("locale")
    return locale if isinstance(locale, str) and locale else settings.LANGUAGE_CODE


def action_note_body(*, action: BillingAction) -> str:
    """The note about the action's outcome, in words (``services.note_templates``): who,
    role, what, the customer by name, the parameters, where it stands, the approval trail."""
    return note_text(action=action)


def approval_note_body(*, approval: ApprovalRequest) -> str:
    """The note about an approval request: asked for (pending), approved, denied or expired."""
    return note_text(action=approval.action, approval=approval)


def _can_note(action: BillingAction) -> bool:
    return bool(action.ticket_id) and action.installation_id is not None


def action_note_enqueue(*, action: BillingAction) -> None:
    """Record the action's note (its text as of now) in the caller's transaction.

    Call it in the transaction that records the action's outcome: the note then
    exists exactly when the outcome does. One note per action and status (the
    dedupe key), so calling it twice for the same outcome posts once. Never raises
    because the broker is down: the doorbell is rung after commit and its failure
    only logged; the outbox re-drive posts the note.
    """
    if not _can_note(action):
        return
    locale = note_locale(action)
    with translation.override(locale):
        body = action_note_body(action=action)
    with transaction.atomic():
        _message, created = outbox_enqueue(
            workspace_id=action.workspace_id,
            kind=OutboxMessage.Kind.ACTION_NOTE,
            target_id=str(action.pk),
            dedupe_key=f"action_note:{action.pk}:{action.status}",
            payload={"body": body, "locale": locale},
        )
        if created:
            BillingAction.objects.filter(pk=action.pk).update(
                note_status=BillingAction.NoteStatus.PENDING
            )
            action.note_status = BillingAction.NoteStatus.PENDING


def action_note_record(*, action: BillingAction) -> bool:
    """The note about the action's new outcome, as one INSERT in the transaction that records
    it (``services.actions.outcomes``); True when the ticket gets a note.

    That transaction's conditional status UPDATE makes ``<action>:<status>`` new, and it
    sets ``note_status`` itself when this returns True. The outcome is final, so the text
    is written when the note is delivered (``action_note_deliver``, from the action as
    recorded): recording the outcome reads no template, customer or object names.
    """
    if not _can_note(action):
        return False
    outbox_enqueue_new(
        workspace_id=action.workspace_id,
        kind=OutboxMessage.Kind.ACTION_NOTE,
        target_id=str(action.pk),
        dedupe_key=f"action_note:{action.pk}:{action.status}",
        payload={"locale": note_locale(action)},
    )
    return True


def approval_note_enqueue(*, approval: ApprovalRequest) -> None:
    """Record the request's note for the requester's ticket: asked for (``pending``),
    approved, denied or expired.

    Call it in the transaction that writes that state (the request's creation, the
    decision, the expiry): one note per request and state (the dedupe key), so a
    retried caller posts it once.
    """
    if not _can_note(approval.action):
        return
    locale = note_locale(approval.action)
    with translation.override(locale):
        body = approval_note_body(approval=approval)
    outbox_enqueue(
        workspace_id=approval.action.workspace_id,
        kind=OutboxMessage.Kind.APPROVAL_NOTE,
        target_id=str(approval.pk),
        dedupe_key=f"approval_note:{approval.pk}:{approval.status}",
        payload={"body": body, "locale": locale},
    )


def approval_request_note_enqueue(*, approval: ApprovalRequest) -> None:
    """The requester's ticket hears that approval was asked for, in the transaction that
    creates the request (``actions.submit.approval_request_create``).

    In a savepoint: a note that cannot be recorded is logged and never undoes the
    request. A replayed submission creates no second request, so no second note.
    """
    if not _can_note(approval.action):
        return
    try:
        with transaction.atomic():
            approval_note_enqueue(approval=approval)
    except Exception:
        logger.exception("could not enqueue the note for approval request %s", approval.pk)


def note_marker(message: OutboxMessage) -> str:
    """The line that identifies this note on the ticket, whatever the helpdesk does to the text."""
    return f"{NOTE_MARKER_PREFIX} {message.pk}"


def note_maybe_sent(exc: HelpdeskApiError) -> bool:
    """After this error the note may exist although no answer said so."""
    return exc.code in _MAYBE_SENT_CODES or (exc.http_status or 0) >= 500


def _connector(installation: Installation) -> HelpdeskConnector:
    try:
        return connector_for(installation)
    except NotRegistered as exc:
        raise HelpdeskApiError(
            f"No connector {installation.connector!r}.", code="unsupported"
        ) from exc


def note_already_posted(*, installation: Installation, ticket_id: str, marker: str) -> str | None:
    """The id of the note carrying ``marker`` on the ticket, if an earlier attempt posted it.

    A helpdesk that cannot be read raises (retry later rather than risk a second
    note); a connector without the capability answers None (post: at least once).
    """
    try:
        found = _connector(installation).find_recent_note(installation, ticket_id, marker=marker)
    except HelpdeskApiError as exc:
        if exc.code != "unsupported":
            raise
        return None
    if found is not None:
        logger.info("note %s was already on ticket %s as %s", marker, ticket_id, found)
    return found


def _note_post(*, installation: Installation, ticket_id: str, body: str, marker: str) -> str:
    return (
        _connector(installation).post_internal_note(installation, ticket_id, f"{body}\n{marker}")
        or ""
    )


def helpdesk_note_deliver(
    *,
    message: OutboxMessage,
    installation: Installation,
    ticket_id: str,
    body: str,
    marker: str = "",
) -> str:
    """Post ``body`` + a marker line as an internal note, unless an earlier attempt did.

    The one way Billing Desk posts an internal note: every note is delivered by an
    outbox message (``message``) whose handler calls this. ``marker`` defaults to
    the message's own (``note_marker``); a message that posts several notes (the
    payment-failure escalation) gives each its own ``Billing Desk ref:`` line.

    ``outcome_unknown`` is set before the request leaves: a worker killed
    mid-request leaves it set, so the next attempt looks first. Whether to look
    is decided by the message as this attempt loaded it, so the notes of one
    attempt never look for each other. A refusal that proves nothing was created
    (429, 4xx) clears it — for a message of one note; with several, one note's
    refusal proves nothing about the others, and the flag stays until the
    message is done.
    """
    single = not marker
    marker = marker or note_marker(message)
    if message.outcome_unknown:
        found = note_already_posted(installation=installation, ticket_id=ticket_id, marker=marker)
        if found is not None:
            return found
    OutboxMessage.objects.filter(pk=message.pk).update(outcome_unknown=True)
    try:
        return _note_post(installation=installation, ticket_id=ticket_id, body=body, marker=marker)
    except HelpdeskApiError as exc:
        if single and not note_maybe_sent(exc):
            OutboxMessage.objects.filter(pk=message.pk).update(outcome_unknown=False)
        raise


def action_note_deliver(message: OutboxMessage) -> str:
    """Outbox handler: post the action's note; count the attempt; mark the action's note posted."""
    action = (
        BillingAction.objects.select_related("installation", "actor", "approved_by")
        .filter(pk=message.target_id)
        .first()
    )
    if action is None:
        return ""
    if not _can_note(action) or action.installation is None:
        BillingAction.objects.filter(pk=action.pk).update(note_status=BillingAction.NoteStatus.NONE)
        return ""
    BillingAction.objects.filter(pk=action.pk).update(note_attempts=F("note_attempts") + 1)
    body = (message.payload or {}).get("body")
    if not body:
        with translation.override(_payload_locale(message)):
            body = action_note_body(action=action)
    note_id = helpdesk_note_deliver(
        message=message, installation=action.installation, ticket_id=action.ticket_id, body=body
    )
    BillingAction.objects.filter(pk=action.pk).update(note_status=BillingAction.NoteStatus.POSTED)
    logger.info("action note posted action=%s note=%s", action.pk, note_id)
    return note_id


def action_note_give_up(message: OutboxMessage, error: Exception) -> None:
    """The outbox gave up on the note; the action itself is untouched."""
    BillingAction.objects.filter(pk=message.target_id).exclude(
        note_status=BillingAction.NoteStatus.POSTED
    ).update(note_status=BillingAction.NoteStatus.FAILED)
    logger.warning(
        "action note failed action=%s code=%s", message.target_id, getattr(error, "code", "")
    )


def approval_note_deliver(message: OutboxMessage) -> str:
    """Outbox handler: post the approval decision's note on the requester's ticket."""
    approval = (
        ApprovalRequest.objects.select_related(
            "action", "action__installation", "action__actor", "decided_by"
        )
        .filter(pk=message.target_id)
        .first()
    )
    if approval is None or not _can_note(approval.action) or approval.action.installation is None:
        return ""
    body = (message.payload or {}).get("body")
    if not body:
        with translation.override(_payload_locale(message)):
            body = approval_note_body(approval=approval)
    return helpdesk_note_deliver(
        message=message,
        installation=approval.action.installation,
        ticket_id=approval.action.ticket_id,
        body=body,
    )


def approval_note_give_up(message: OutboxMessage, error: Exception) -> None:
    logger.warning(
        "approval note failed approval=%s code=%s",
        message.target_id,
        getattr(error, "code", ""),
    )


outbox_handler_register(
    kind=OutboxMessage.Kind.ACTION_NOTE, deliver=action_note_deliver, give_up=action_note_give_up
)
outbox_handler_register(
    kind=OutboxMessage.Kind.APPROVAL_NOTE,
    deliver=approval_note_deliver,
    give_up=approval_note_give_up,
)


def public_reply_post(*, action: BillingAction, body: str) -> str:
    """Post the playbook's customer message as a public reply on the action's ticket, now.

    Synchronous, so the agent sees whether it went out; errors are domain errors
    with a code (``helpdesk_unavailable`` 503 when trying again may help).
    """
    body = (body or "").strip()
    if not body:
        raise PreconditionFailed(_("There is no message to post."), code="empty_message")
    if not _can_note(action) or action.installation is None:
        raise PreconditionFailed(
            _("This action has no helpdesk ticket to reply on."), code="no_ticket"
        )
    try:
        return connector_for(action.installation).post_public_reply(
            action.installation, action.ticket_id, body
        )
    except HelpdeskApiError as exc:
        raise BillingDeskError(
            _("The reply could not be posted: %(error)s") % {"error": exc.message},
            code="helpdesk_unavailable" if exc.retryable else "helpdesk_error",
            status=503 if exc.retryable else 502,
            details={"helpdesk_code": exc.code},
        ) from exc
    except NotRegistered as exc:
        raise PreconditionFailed(
            _("This helpdesk cannot post replies."), code="unsupported"
        ) from exc
