"""A self-service refund request follows the action it became.

The request's ``status`` is what the customer's page and the dashboard read. It is set
when the request is submitted, and moved on here whenever its action moves: an approver
approves (the refund then executes) or denies it, the approval expires, or an outcome the
provider had not confirmed is settled (``self_service_refund_sync`` is called by
``services.approvals`` and by the page when it shows a request still ``processing``).

Only models and a selector are imported: ``services.approvals`` and
``services.reconcile`` call in without a cycle.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.utils import timezone

from ...models import BillingAction, SelfServiceRefundRequest
from ...selectors.self_service_refunds import OPEN_STATUSES

Status = SelfServiceRefundRequest.Status
ActionStatus = BillingAction.Status

# The statuses a request may still leave (the others are final).
OPEN = OPEN_STATUSES
FINAL = (Status.REFUNDED, Status.APPROVED, Status.DENIED, Status.REFUSED, Status.FAILED)


def request_status_for(action: BillingAction) -> tuple[str, str]:
    """(request status, refusal code) for the action's current state."""
    status = action.status
    if status == ActionStatus.SUCCEEDED:
        return (Status.APPROVED if action.approved_by_id else Status.REFUNDED), ""
    if status == ActionStatus.PENDING_APPROVAL:
        return Status.WITH_AGENTS, ""
    if status == ActionStatus.DENIED:
        return Status.DENIED, ""
    if status == ActionStatus.EXPIRED:
        return Status.DENIED, "approval_expired"
    if status == ActionStatus.NOT_PERMITTED:
        return Status.REFUSED, "not_permitted"
    if status == ActionStatus.FAILED:
        return Status.FAILED, action.error_code or ""
    return Status.PROCESSING, ""  # executing, outcome unknown


def self_service_refund_sync(*, action_id: Any, now: datetime | None = None) -> int:
    """Move the request of action ``action_id`` (if any) to the action's state; rows moved.

    A conditional UPDATE from an open status: a final status is never rewritten, and two
    callers at once write the same answer.
    """
    action = (
        BillingAction.objects.filter(pk=action_id, self_service_request__isnull=False)
        .only("pk", "status", "approved_by_id", "error_code", "amount_base")
        .first()
    )
    if action is None:
        return 0
    status, code = request_status_for(action)
    fields: dict[str, Any] = {"status": status, "refusal_code": code}
    if status in FINAL:
        fields["decided_at"] = now or timezone.now()
    if action.amount_base is not None:
        fields["amount_base"] = action.amount_base
    return (
        SelfServiceRefundRequest.objects.filter(action_id=action_id, status__in=OPEN)
        .exclude(status=status)
        .update(**fields)
    )
