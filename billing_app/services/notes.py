"""Notes back to the ticket: every billing action, and every approval decision, as an internal note.

Posting happens in a Celery task after the action's transaction commits, with
retries and exponential backoff on retryable helpdesk errors (honouring
``Retry-After``). A note that cannot be posted never undoes, hides or changes
the billing action it describes: only ``note_status`` / ``note_attempts`` move.
"""

from __future__ import annotations

import logging

from django.db import transaction
from django.db.models import F

from helpdesk_connectors.base import HelpdeskApiError, NotRegistered
from helpdesk_connectors.registry import connector_for

from ..catalog import Role
from ..errors import BillingDeskError, PreconditionFailed
from ..models import ApprovalRequest, BillingAction
from ..money import format_money

logger = logging.getLogger(__name__)

NOTE_MAX_RETRIES = 6
NOTE_BACKOFF_BASE_SECONDS = 30
NOTE_BACKOFF_MAX_SECONDS = 3600


def _role_label(value: str) -> str:
    try:
        return Role(value).label
    except ValueError:
        return value or "unknown role"


def _who(user) -> str:  # type: ignore[no-untyped-def]
    if user is None:
        return "someone"
    name = user.get_full_name() if hasattr(user, "get_full_name") else ""
    return name or user.get_username()


def _kind_label(kind: str) -> str:
    return kind.replace("_", " ").capitalize()


def action_note_body(*, action: BillingAction) -> str:
    """The note text: who, role, what, amount, reason, status, provider id, approval state."""
    lines = [
        f"Billing Desk · {_kind_label(action.kind)} — {action.get_status_display()}",
        f"By: {_who(action.actor)} ({_role_label(action.actor_role)})",
        f"Customer: {action.customer_id}",
    ]
    if action.amount is not None and action.currency:
        lines.append(f"Amount: {format_money(action.amount, action.currency)}")
    reason = (action.params or {}).get("reason") or ""
    if reason:
        lines.append(f"Reason: {reason}")
    if action.decision_reason:
        lines.append(f"Policy: {action.decision_reason}")
    if action.provider_object_id:
        lines.append(
            f"{(action.provider or 'provider').capitalize()} id: {action.provider_object_id}"
        )
    approval = ApprovalRequest.objects.filter(action=action).select_related("decided_by").first()
    if approval is not None:
        lines.append(_approval_line(approval))
    elif action.approved_by_id:
        lines.append(f"Approved by: {_who(action.approved_by)}")
    if action.status == BillingAction.Status.FAILED and action.error_message:
        lines.append(f"Error: {action.error_message}")
    lines.append(f"Action id: {action.pk}")
    return "\n".join(lines)


def _approval_line(approval: ApprovalRequest) -> str:
    roles = ", ".join(_role_label(r) for r in approval.required_roles or [])
    if approval.status == ApprovalRequest.Status.PENDING:
        return f"Approval: pending ({roles or 'approver'}) — {approval.reason}"
    decided = f" by {_who(approval.decided_by)}" if approval.decided_by_id else ""
    comment = f" — “{approval.comment}”" if approval.comment else ""
    return f"Approval: {approval.get_status_display().lower()}{decided}{comment}"


def approval_note_body(*, approval: ApprovalRequest) -> str:
    action = approval.action
    lines = [
        f"Billing Desk · approval {approval.get_status_display().lower()}: {_kind_label(action.kind)}",
        f"Requested by: {_who(action.actor)} ({_role_label(action.actor_role)})",
        f"Customer: {action.customer_id}",
    ]
    if action.amount is not None and action.currency:
        lines.append(f"Amount: {format_money(action.amount, action.currency)}")
    lines.append(_approval_line(approval))
    if approval.decided_role:
        lines.append(f"Decided as: {_role_label(approval.decided_role)}")
    lines.append(f"Action id: {action.pk}")
    return "\n".join(lines)


def _can_note(action: BillingAction) -> bool:
    return bool(action.ticket_id) and action.installation_id is not None


def action_note_enqueue(*, action: BillingAction) -> None:
    """Mark the note pending and post it after the surrounding transaction commits."""
    from ..tasks.notes import action_note_post_task

    if not _can_note(action):
        return
    BillingAction.objects.filter(pk=action.pk).update(note_status=BillingAction.NoteStatus.PENDING)
    action.note_status = BillingAction.NoteStatus.PENDING
    action_id = str(action.pk)
    transaction.on_commit(lambda: action_note_post_task.delay(action_id))


def approval_note_enqueue(*, approval: ApprovalRequest) -> None:
    """Post the decision (approved, denied, expired) on the requester's ticket after commit."""
    from ..tasks.notes import approval_note_post_task

    if not _can_note(approval.action):
        return
    approval_id = approval.pk
    transaction.on_commit(lambda: approval_note_post_task.delay(approval_id))


def note_retry_countdown(*, retries: int, retry_after: float | None) -> int:
    """Exponential backoff (30 s, 60 s, 120 s … ≤ 1 h), never sooner than ``Retry-After``."""
    backoff = min(NOTE_BACKOFF_BASE_SECONDS * (2**retries), NOTE_BACKOFF_MAX_SECONDS)
    return int(max(backoff, retry_after or 0))


def action_note_post(*, action_id: str) -> str:
    """Post the action's note once; count the attempt; mark it posted. Raises ``HelpdeskApiError``.

    Idempotent for the task's retries: an already posted note is not posted again.
    """
    action = (
        BillingAction.objects.select_related("installation", "actor", "approved_by")
        .filter(pk=action_id)
        .first()
    )
    if action is None or action.note_status == BillingAction.NoteStatus.POSTED:
        return ""
    if not _can_note(action) or action.installation is None:
        BillingAction.objects.filter(pk=action.pk).update(note_status=BillingAction.NoteStatus.NONE)
        return ""
    BillingAction.objects.filter(pk=action.pk).update(note_attempts=F("note_attempts") + 1)
    try:
        connector = connector_for(action.installation)
    except NotRegistered as exc:
        raise HelpdeskApiError(
            f"No connector {action.installation.connector!r}.", code="unsupported"
        ) from exc
    note_id = connector.post_internal_note(
        action.installation, action.ticket_id, action_note_body(action=action)
    )
    BillingAction.objects.filter(pk=action.pk).update(note_status=BillingAction.NoteStatus.POSTED)
    logger.info("action note posted action=%s note=%s", action.pk, note_id)
    return note_id


def action_note_mark_failed(*, action_id: str, error: HelpdeskApiError) -> None:
    """Give up on the note; the action itself is untouched."""
    BillingAction.objects.filter(pk=action_id).exclude(
        note_status=BillingAction.NoteStatus.POSTED
    ).update(note_status=BillingAction.NoteStatus.FAILED)
    logger.warning("action note failed action=%s code=%s", action_id, error.code)


def approval_note_post(*, approval_id: int) -> str:
    approval = (
        ApprovalRequest.objects.select_related(
            "action", "action__installation", "action__actor", "decided_by"
        )
        .filter(pk=approval_id)
        .first()
    )
    if approval is None or not _can_note(approval.action) or approval.action.installation is None:
        return ""
    installation = approval.action.installation
    try:
        connector = connector_for(installation)
    except NotRegistered as exc:
        raise HelpdeskApiError(
            f"No connector {installation.connector!r}.", code="unsupported"
        ) from exc
    return connector.post_internal_note(
        installation, approval.action.ticket_id, approval_note_body(approval=approval)
    )


def public_reply_post(*, action: BillingAction, body: str) -> str:
    """Post the playbook's customer message as a public reply on the action's ticket, now.

    Synchronous, so the agent sees whether it went out; errors are domain errors
    with a code (``helpdesk_unavailable`` 503 when trying again may help).
    """
    body = (body or "").strip()
    if not body:
        raise PreconditionFailed("There is no message to post.", code="empty_message")
    if not _can_note(action) or action.installation is None:
        raise PreconditionFailed(
            "This action has no helpdesk ticket to reply on.", code="no_ticket"
        )
    try:
        return connector_for(action.installation).post_public_reply(
            action.installation, action.ticket_id, body
        )
    except HelpdeskApiError as exc:
        raise BillingDeskError(
            f"The reply could not be posted: {exc.message}",
            code="helpdesk_unavailable" if exc.retryable else "helpdesk_error",
            status=503 if exc.retryable else 502,
            details={"helpdesk_code": exc.code},
        ) from exc
    except NotRegistered as exc:
        raise PreconditionFailed("This helpdesk cannot post replies.", code="unsupported") from exc
