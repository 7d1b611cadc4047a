"""The approvals queue page (``/approvals/``) for Managers, VP and Legal approvers.

Signed-in Django users (``LOGIN_URL``); what each may see and decide comes from
their membership role in each workspace, exactly as in the API: a request of a
workspace where they hold no approver role does not exist for them (404).
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import User
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from ..catalog import APPROVER_ROLES, Role
from ..errors import BillingDeskError
from ..models import AgentMembership, ApprovalRequest, BillingAction
from ..money import Money
from ..services.approvals import APPROVE, DENY, approval_decide, approval_list_for, approver_role


class SignedInRequest(HttpRequest):
    """A request behind ``login_required``: its user is a real account."""

    user: User


def _size(action: BillingAction) -> str:
    """What is asked, as an approver weighs it: an amount, a percentage or a number of days."""
    if action.amount is not None and action.currency:
        return str(Money(action.amount, action.currency))
    params = action.params or {}
    if params.get("percent_off"):
        return f"{params['percent_off']}% off"
    if params.get("days"):
        return f"{params['days']} days"
    return ""


def _param_rows(action: BillingAction) -> list[tuple[str, str]]:
    rows = []
    for key, value in sorted((action.params or {}).items()):
        if value in (None, "", {}, []):
            continue
        if isinstance(value, dict):
            value = ", ".join(f"{k.replace('_', ' ')}: {v}" for k, v in value.items() if v)
        elif isinstance(value, list):
            value = ", ".join(str(v) for v in value)
        elif isinstance(value, bool):
            value = "yes" if value else "no"
        rows.append((key.replace("_", " ").capitalize(), str(value)))
    return rows


def _row(approval: ApprovalRequest) -> dict[str, Any]:
    action: BillingAction = approval.action
    return {
        "approval": approval,
        "action": action,
        "kind_label": action.get_kind_display(),
        "size": _size(action),
        "requester": action.actor.get_full_name() or action.actor.get_username(),
        "requester_role": Role(action.actor_role).label,
        "required_roles": ", ".join(Role(r).label for r in approval.required_roles),
    }


@login_required
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
    sections = []
    for membership in memberships:
        workspace = membership.workspace
        if not workspace.is_active or approver_role(user=request.user, workspace=workspace) is None:
            continue
        approvals = approval_list_for(user=request.user, workspace=workspace)
        sections.append(
            {
                "workspace": workspace,
                "role": Role(membership.role).label,
                "rows": [_row(a) for a in approvals],
            }
        )
    return render(request, "approvals/list.html", {"sections": sections})


def _approval_for(request: SignedInRequest, approval_id: int) -> ApprovalRequest:
    approval = (
        ApprovalRequest.objects.select_related("workspace", "action", "action__actor", "decided_by")
        .filter(pk=approval_id)
        .first()
    )
    if approval is None or approver_role(user=request.user, workspace=approval.workspace) is None:
        raise Http404("No such approval request.")
    return approval


@login_required
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
                    outcome += f" Provider error: {action.error_message}"
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
    return render(
        request,
        "approvals/detail.html",
        {
            **_row(approval),
            "workspace": approval.workspace,
            "is_own": approval.action.actor_id == request.user.pk,
            "may_decide": (
                approval.status == ApprovalRequest.Status.PENDING
                and approval.action.actor_id != request.user.pk
                and role is not None
                and role.value in approval.required_roles
            ),
            "params": _param_rows(approval.action),
        },
        status=status,
    )
