"""The approvals queue page (``/approvals/``) for Managers, VP and Legal approvers.

Each request reads as the approver weighs it: the customer's name, plan and MRR, the
amount formatted, the parameters in words (``selectors.action_details``), the reason,
the ticket in its helpdesk, who may decide it by role label; below the queue, what was
decided in the workspace (or by this approver), a page at a time.

Signed-in Django users (``LOGIN_URL``); approvers and staff with a verified second
factor (``two_factor.verified_approver_required``, issue 17: without one, every page and
every decision sends them to the second-factor step). What each may see and decide comes
from their membership role in each workspace, exactly as in the API: a request of a
workspace where they hold no approver role does not exist for them (404).
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.models import User
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from ..catalog import APPROVER_ROLES, Role
from ..errors import BillingDeskError
from ..models import AgentMembership, ApprovalRequest, BillingAction
from ..money import Money
from ..policy import Allow, can_approve
from ..selectors.action_details import action_details, role_words, user_name
from ..selectors.approvals import approvals_decided, customer_summaries
from ..services.approvals import APPROVE, DENY, approval_decide, approval_list_for, approver_role
from .two_factor import verified_approver_required


class SignedInRequest(HttpRequest):
    """A request behind ``login_required``: its user is a real account."""

    user: User


def _size(action: BillingAction, lines: list[dict[str, str]]) -> str:
    """What is asked at a glance: the amount, else the first line in words (days, percent…)."""
    if action.amount is not None and action.currency:
        return str(Money(action.amount, action.currency))
    for line in lines:
        if line["label"] not in ("Subscription",):
            return f"{line['label']}: {line['text']}"
    return ""


def _row(
    approval: ApprovalRequest,
    customers: dict[str, dict[str, Any]],
    *,
    user: User | None = None,
    role: Role | None = None,
) -> dict[str, Any]:
    action: BillingAction = approval.action
    details = action_details(action)
    customer = customers.get(action.customer_id) or {"name": action.customer_id}
    may_decide = (
        user is not None
        and role is not None
        and approval.status == ApprovalRequest.Status.PENDING
        and isinstance(
            can_approve(
                approver_id=user.pk,
                approver_role=role,
                requester_id=action.actor_id,
                required_roles=approval.required_roles,
            ),
            Allow,
        )
    )
    return {
        "approval": approval,
        "action": action,
        "kind_label": details["kind_label"],
        "details": details,
        "size": _size(action, details["lines"]),
        "customer": customer,
        "requester": user_name(action.actor),
        "requester_role": role_words([action.actor_role]),
        "required_roles": role_words(approval.required_roles),
        "decider": user_name(approval.decided_by),
        "decider_role": role_words([approval.decided_role]) if approval.decided_role else "",
        "ticket_url": details["ticket_url"],
        "may_decide": may_decide,
        "is_own": user is not None and action.actor_id == user.pk,
    }


def _page_number(request: HttpRequest) -> int:
    try:
        return max(1, min(10_000, int(request.GET.get("page", "1"))))
    except ValueError:
        return 1


@verified_approver_required
@require_http_methods(["GET"])
def approvals_list(request: SignedInRequest) -> HttpResponse:
    """Every workspace where the user holds an approver role, with what they may decide there."""
    memberships = (
        AgentMembership.objects.filter(
            user=request.user, role__in=[r.value for r in APPROVER_ROLES]
        )
        .select_related("workspace")
        .order_by("workspace__name")
    )
    mine = request.GET.get("decided") == "mine"
    page = _page_number(request)
    sections = []
    for membership in memberships:
        workspace = membership.workspace
        if not workspace.is_active or approver_role(user=request.user, workspace=workspace) is None:
            continue
        role = Role(membership.role)
        approvals = approval_list_for(user=request.user, workspace=workspace)
        history = approvals_decided(
            workspace=workspace, decided_by=request.user if mine else None, page=page
        )
        customers = customer_summaries(
            workspace, {a.action.customer_id for a in [*approvals, *history.items]}
        )
        sections.append(
            {
                "workspace": workspace,
                "role": role.label,
                "rows": [_row(a, customers, user=request.user, role=role) for a in approvals],
                "history": [_row(a, customers, user=request.user) for a in history.items],
                "history_page": history.page,
                "history_next": history.page + 1 if history.has_next else None,
                "history_previous": history.page - 1 if history.page > 1 else None,
            }
        )
    return render(
        request, "approvals/list.html", {"sections": sections, "mine": mine, "page": page}
    )


def _approval_for(request: SignedInRequest, approval_id: int) -> ApprovalRequest:
    approval = (
        ApprovalRequest.objects.select_related(
            "workspace", "action", "action__actor", "action__installation", "decided_by"
        )
        .filter(pk=approval_id)
        .first()
    )
    if approval is None or approver_role(user=request.user, workspace=approval.workspace) is None:
        raise Http404("No such approval request.")
    return approval


@verified_approver_required
@require_http_methods(["GET", "POST"])
def approval_detail(request: SignedInRequest, approval_id: int) -> HttpResponse:
    """The request with its details; POST decides it (approve or deny, with a comment)."""
    approval = _approval_for(request, approval_id)
    status = 200
    if request.method == "POST":
        decision = request.POST.get("decision", "")
        comment = request.POST.get("comment", "")
        try:
            decided = approval_decide(
                approval_id=approval.pk,
                user=request.user,
                workspace=approval.workspace,
                decision=decision if decision in (APPROVE, DENY) else "",
                comment=comment,
            )
        except BillingDeskError as exc:
            messages.error(request, exc.message)
            status = exc.status
            approval = _approval_for(request, approval_id)
        else:
            action = decided.action
            action.refresh_from_db()
            if decision == APPROVE:
                outcome = f"Approved. The action {action.get_status_display().lower()}."
                if action.status == BillingAction.Status.FAILED:
                    outcome += f" Provider error: {action.error_text}"
                elif action.status == BillingAction.Status.OUTCOME_UNKNOWN:
                    outcome = (
                        "Approved. Stripe did not confirm it in time, so it may already be "
                        "done; Billing Desk is confirming with Stripe. Do not retry it."
                    )
            else:
                outcome = "Denied. The requester's ticket gets a note with your comment."
            messages.success(request, outcome)
            return redirect("approvals-list")
    role = approver_role(user=request.user, workspace=approval.workspace)
    customers = customer_summaries(approval.workspace, [approval.action.customer_id])
    return render(
        request,
        "approvals/detail.html",
        {
            **_row(approval, customers, user=request.user, role=role),
            "workspace": approval.workspace,
        },
        status=status,
    )
