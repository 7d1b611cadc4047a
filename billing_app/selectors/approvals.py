"""Approval requests as lists: an agent's own requests for a customer (the requester's
outcomes in the panel), what was decided in a workspace (the approvers' history), and
the customers an approver weighs requests against (name, plan, MRR).

What an approver may decide now is ``services.approvals.approval_list_for`` (it needs
the approver's role); these are plain reads of one workspace.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import User
from django.db.models import QuerySet

from ..models import ApprovalRequest, BillingAction, MirrorCustomer, Workspace
from .context import customer_context

Obj = dict[str, Any]

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


def customer_summaries(workspace: Workspace, customer_ids: Iterable[str]) -> dict[str, Obj]:
    """Customer id → ``{"name", "email", "plan", "mrr"}`` as the panel's context shows them.

    Read through ``selectors.context`` (the same plan and MRR rules as the panel), once
    per customer; a customer the mirror does not hold reads as its id.
    """
    summaries: dict[str, Obj] = {}
    ids = sorted(set(customer_ids))
    customers = {
        c.stripe_id: c
        for c in MirrorCustomer.objects.filter(workspace=workspace, stripe_id__in=ids)
    }
    for cid in ids:
        customer = customers.get(cid)
        if customer is None:
            summaries[cid] = {"id": cid, "name": cid, "email": "", "plan": "", "mrr": None}
            continue
        context = customer_context(workspace=workspace, customer=customer)
        plan = (context.get("account") or {}).get("plan") or {}
        mrr = (context.get("lifetime_value") or {}).get("mrr")
        summaries[cid] = {
            "id": cid,
            "name": customer.name or customer.email or cid,
            "email": customer.email,
            "plan": plan.get("display") or plan.get("name") or "",
            "mrr": mrr,
        }
    return summaries


__all__ = [
    "HISTORY_PAGE",
    "DecidedPage",
    "approval_requests_of",
    "approvals_decided",
    "customer_summaries",
]
