"""Approval requests as lists: an agent's own requests for a customer (the requester's
outcomes in the panel) and what was decided in a workspace (the approvers' history).

What an approver may decide now is ``services.approvals.approval_list_for`` (it needs
the approver's role); these are plain reads of one workspace.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib.auth.models import User
from django.db.models import QuerySet

from ..models import ApprovalRequest, BillingAction, Workspace

REQUESTS_SHOWN = 20
HISTORY_PAGE = 20


def approval_requests_of(
    *, workspace: Workspace, user: User, customer_id: str, limit: int = REQUESTS_SHOWN
) -> list[BillingAction]:
    """The actions ``user`` sent for approval on this customer, newest first (any outcome)."""
    return list(
        BillingAction.objects.filter(
            workspace=workspace, actor=user, customer_id=customer_id, approval__isnull=False
        )
        .select_related("actor", "approved_by", "approval", "approval__decided_by", "installation")
        .order_by("-created_at", "-id")[:limit]
    )


@dataclass(frozen=True)
class DecidedPage:
    items: list[ApprovalRequest]
    page: int
    has_next: bool


def approvals_decided(
    *, workspace: Workspace, decided_by: User | None = None, page: int = 1
) -> DecidedPage:
    """Decided or expired requests of the workspace, latest decision first, one page at a time.

    With ``decided_by``, only that approver's decisions.
    """
    page = max(1, page)
    decided: QuerySet[ApprovalRequest] = (
        ApprovalRequest.objects.filter(workspace=workspace, decided_at__isnull=False)
        .exclude(status=ApprovalRequest.Status.PENDING)
        .select_related("action", "action__actor", "action__installation", "decided_by")
        .order_by("-decided_at", "-id")
    )
    if decided_by is not None:
        decided = decided.filter(decided_by=decided_by)
    start = (page - 1) * HISTORY_PAGE
    rows = list(decided[start : start + HISTORY_PAGE + 1])
    return DecidedPage(items=rows[:HISTORY_PAGE], page=page, has_next=len(rows) > HISTORY_PAGE)


__all__ = ["HISTORY_PAGE", "DecidedPage", "approval_requests_of", "approvals_decided"]
