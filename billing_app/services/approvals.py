"""Approval requests: escalated actions wait here for a Manager, VP or Legal decision.

One decision per request, whatever the concurrency: the decision is a
conditional UPDATE (``status = pending`` → decided) on a row also locked with
``select_for_update`` where the database supports it, and the action's own
``pending_approval → executing`` transition guards the provider call. The
approver who loses the race gets ``Conflict`` ``already_decided``. An approved
action then runs through ``services.actions`` — the same preconditions, the same
provider idempotency key — after the decision is committed, so no lock is held
while the provider is called.

Imports point one way: this module imports ``services.actions`` (to execute an
approved action); submission writes the ``ApprovalRequest`` itself
(``actions.submit.approval_request_create``) and never imports
this module.
"""

from __future__ import annotations

import logging
from typing import Any

from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from ..catalog import APPROVE_ACTIONS, APPROVER_ROLES, Role
from ..errors import Conflict, NotFound, NotPermitted, ValidationFailed
from ..models import AgentMembership, ApprovalRequest, BillingAction, Workspace
from ..policy import Deny, can_approve
from ..roles import user_has_workspace_perm
from ..selectors.action_messages import customer_message_for
from . import notes
from .actions import action_execute
from .audit import action_event, approval_event, audit_append
from .context_cache import customer_context_invalidate
from .rollups import rollups_action_changed
from .self_service_refunds.status import self_service_refund_sync

log = logging.getLogger(__name__)

APPROVE, DENY = "approve", "deny"

__all__ = [
    "APPROVE",
    "DENY",
    "approval_decide",
    "approval_get_for",
    "approval_list_for",
    "approvals_expire",
    "approver_role",
]


def approver_role(*, user: User, workspace: Workspace) -> Role | None:
    """The user's role in the workspace if it is an approver role and they may approve there."""
    membership = AgentMembership.objects.filter(workspace=workspace, user=user).first()
    if membership is None or Role(membership.role) not in APPROVER_ROLES:
        return None
    if not user_has_workspace_perm(user, APPROVE_ACTIONS, workspace):
        return None
    return Role(membership.role)


def approval_list_for(
    *, user: User, workspace: Workspace, status: str = ApprovalRequest.Status.PENDING
) -> list[ApprovalRequest]:
    """What this user may decide in this workspace: their role is required, the request is not theirs.

    Pending requests past their expiry are left out (the periodic task marks them
    expired). For another ``status`` the same requests are listed once decided.
    """
    role = approver_role(user=user, workspace=workspace)
    if role is None:
        return []
    requests = (
        ApprovalRequest.objects.filter(workspace=workspace, status=status)
        .exclude(action__actor=user)
        .select_related("action", "action__actor", "decided_by")
        .order_by("expires_at" if status == ApprovalRequest.Status.PENDING else "-decided_at")
    )
    if status == ApprovalRequest.Status.PENDING:
        requests = requests.filter(expires_at__gt=timezone.now())
    # JSON containment is not portable to SQLite; the queue is short, so filter here.
    return [a for a in requests if role.value in (a.required_roles or [])]


def approval_get_for(*, approval_id: Any, user: User, workspace: Workspace) -> ApprovalRequest:
    approval = (
        ApprovalRequest.objects.select_related("action", "action__actor", "decided_by")
        .filter(pk=approval_id, workspace=workspace)
        .first()
    )
    if approval is None or approver_role(user=user, workspace=workspace) is None:
        raise NotFound(_("No such approval request in this workspace."), code="approval_not_found")
    return approval


def _expire(approval_id: int, now: Any) -> bool:
    """Mark one overdue pending request expired (and its action); False if it was decided meanwhile."""
    updated = ApprovalRequest.objects.filter(
        pk=approval_id, status=ApprovalRequest.Status.PENDING, expires_at__lte=now
    ).update(status=ApprovalRequest.Status.EXPIRED, decided_at=now)
    if not updated:
        return False
    action_id = ApprovalRequest.objects.filter(pk=approval_id).values_list("action_id", flat=True)[
        0
    ]
    BillingAction.objects.filter(pk=action_id, status=BillingAction.Status.PENDING_APPROVAL).update(
        status=BillingAction.Status.EXPIRED, completed_at=now
    )
    self_service_refund_sync(action_id=action_id, now=now)  # a customer's request: declined
    _context_invalidate(action_id)
    rollups_action_changed(action_id=action_id)
    # The audit chain's head last, after the roll-ups (docs/audit.md).
    _audit(approval_id, "approval.expired", "action.expired", actor_id=None)
    return True


def _audit(
    approval_id: Any, approval_event_name: str, action_event_name: str, *, actor_id: Any
) -> None:
    """Append the decided request and its action, as they now are, to the audit chain."""
    approval = ApprovalRequest.objects.select_related("action").get(pk=approval_id)
    audit_append(
        workspace_id=approval.workspace_id,
        events=[
            approval_event(approval_event_name, approval, actor_id=actor_id),
            action_event(action_event_name, approval.action, actor_id=actor_id),
        ],
    )


def _context_invalidate(action_id: Any) -> None:
    """The customer's panel context shows this action's approval: mark it stale (snapshot and cache)."""
    for workspace_id, customer_id in BillingAction.objects.filter(pk=action_id).values_list(
        "workspace_id", "customer_id"
    ):
        customer_context_invalidate(workspace_id=workspace_id, customer_id=customer_id)


def approval_decide(
    *,
    approval_id: Any,
    user: User,
    workspace: Workspace,
    decision: str,
    comment: str = "",
    role: Role | None = None,
) -> ApprovalRequest:
    """Approve or deny one request; an approval then executes the action with ``approved_by``.

    ``role`` is the approver's role where the caller knows it (the panel's app
    session); otherwise it is read from their membership. Raises ``NotFound`` for
    a request of another workspace, ``NotPermitted`` for the requester themself
    or a role the request does not name, ``Conflict`` ``already_decided`` when
    someone decided first, ``Conflict`` ``approval_expired`` when it expired.
    """
    if decision not in (APPROVE, DENY):
        raise ValidationFailed(_("decision must be approve or deny."), code="invalid_decision")
    comment = (comment or "").strip()
    if decision == DENY and not comment:
        raise ValidationFailed(
            _("Say why the request is denied: the comment is posted on the ticket."),
            code="comment_required",
        )
    role = role or approver_role(user=user, workspace=workspace)
    if (
        role is None
        or role not in APPROVER_ROLES
        or not user_has_workspace_perm(user, APPROVE_ACTIONS, workspace)
    ):
        raise NotPermitted(
            _("You do not hold an approver role in this workspace."), code="not_an_approver"
        )
    now = timezone.now()
    expired = False
    with transaction.atomic():
        approval = (
            ApprovalRequest.objects.select_for_update()
            .select_related("action")
            .filter(pk=approval_id, workspace=workspace)
            .first()
        )
        if approval is None:
            raise NotFound(
                _("No such approval request in this workspace."), code="approval_not_found"
            )
        if approval.status != ApprovalRequest.Status.PENDING:
            raise _already_decided(approval)
        verdict = can_approve(
            approver_id=user.pk,
            approver_role=role,
            requester_id=approval.action.actor_id,
            required_roles=approval.required_roles,
        )
        if isinstance(verdict, Deny):
            code = "self_approval" if user.pk == approval.action.actor_id else "wrong_approver_role"
            raise NotPermitted(
                _("Not permitted: %(reason)s.") % {"reason": verdict.reason}, code=code
            )
        if approval.expires_at <= now:
            expired = _expire(approval.pk, now)
        else:
            status = (
                ApprovalRequest.Status.APPROVED
                if decision == APPROVE
                else ApprovalRequest.Status.DENIED
            )
            # The conditional UPDATE is the guard on every database (SQLite has no row locks).
            won = ApprovalRequest.objects.filter(
                pk=approval.pk, status=ApprovalRequest.Status.PENDING
            ).update(
                status=status,
                decided_by=user,
                decided_role=role.value,
                decided_at=now,
                comment=comment,
            )
            if not won:
                approval.refresh_from_db()
                raise _already_decided(approval)
            _action_transition(approval.action_id, decision=decision, user=user, now=now)
            self_service_refund_sync(action_id=approval.action_id, now=now)
            _context_invalidate(approval.action_id)
            rollups_action_changed(action_id=approval.action_id)
            # The audit chain's head last, after the roll-ups (docs/audit.md).
            _audit(
                approval.pk,
                f"approval.{status}",
                "action.approved" if decision == APPROVE else "action.denied",
                actor_id=user.pk,
            )
        # The note's outbox row commits with the decision (a crash after commit loses nothing).
        approval.refresh_from_db()
        _approval_note(approval)
    if expired:
        raise Conflict(
            _("This approval request expired before it was decided."),
            code="approval_expired",
            details={"expired_at": approval.expires_at.isoformat()},
        )
    if decision == APPROVE:
        action_execute(action_id=approval.action_id)
        self_service_refund_sync(action_id=approval.action_id)  # refunded, failed or unknown
        approval.refresh_from_db()
    return approval


def _already_decided(approval: ApprovalRequest) -> Conflict:
    return Conflict(
        _("This request was already %(status)s.") % {"status": approval.status},
        code="already_decided",
        details={"status": approval.status},
    )


def _action_transition(action_id: Any, *, decision: str, user: User, now: Any) -> None:
    """pending_approval → executing (approved) or denied; exactly one caller can make it."""
    pending = BillingAction.objects.filter(
        pk=action_id, status=BillingAction.Status.PENDING_APPROVAL
    )
    if decision == APPROVE:
        moved = pending.update(
            status=BillingAction.Status.EXECUTING, approved_by=user, started_at=now
        )
    else:
        moved = pending.update(status=BillingAction.Status.DENIED, completed_at=now)
        if moved:
            action = BillingAction.objects.select_related("workspace", "approval").get(pk=action_id)
            message = customer_message_for(action=action)
            if message:
                BillingAction.objects.filter(pk=action_id).update(customer_message=message)
    if not moved:
        raise Conflict(_("The action is no longer waiting for approval."), code="already_decided")


def _approval_note(approval: ApprovalRequest) -> None:
    """Tell the requester's ticket about the decision (enqueued; never undoes the decision)."""
    if not approval.action.ticket_id:
        return
    try:
        with transaction.atomic():  # a savepoint: a failed enqueue never breaks the decision
            notes.approval_note_enqueue(approval=approval)
    except Exception:
        log.exception("could not enqueue the note for approval %s", approval.pk)


def approvals_expire(*, now: Any = None) -> int:
    """Mark overdue pending approvals ``expired`` (and their actions); returns how many."""
    now = now or timezone.now()
    overdue = list(
        ApprovalRequest.objects.filter(
            status=ApprovalRequest.Status.PENDING, expires_at__lte=now
        ).values_list("pk", flat=True)
    )
    count = 0
    for approval_id in overdue:
        with transaction.atomic():
            done = _expire(approval_id, now)
            if done:  # the note's outbox row commits with the expiry
                approval = ApprovalRequest.objects.select_related("action").get(pk=approval_id)
                _approval_note(approval)
        if done:
            count += 1
    if count:
        log.info("expired %s approval requests", count)
    return count
