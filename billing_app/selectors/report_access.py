"""Who may see a workspace's dashboard and monthly report.

The figures cover every agent's work and the workspace's revenue, so they are
for those who run the support team, not for every agent:

* In the helpdesk panel (app session): agents holding ``approve_actions`` on
  their session's workspace — the Managers (VP and Legal approvers hold it too,
  but they do not use the panel). L1, L2 and Billing Specialists get 403.
* On the staff web pages and with a Django session on the API: superusers see
  every active workspace; other users see the workspaces where they hold
  ``approve_actions`` (approvers) and, if they are staff, also those where they
  hold ``view_billing``. A workspace outside that set is answered 404, as if it
  did not exist (STYLE.md 7).
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import QuerySet
from guardian.shortcuts import get_objects_for_user

from ..catalog import APPROVE_ACTIONS
from ..errors import NotFound, NotPermitted, ValidationFailed
from ..models import Workspace


def report_workspaces(*, user: AbstractBaseUser | AnonymousUser) -> QuerySet[Workspace]:
    """The active workspaces whose figures ``user`` may see (signed-in staff and approvers)."""
    if not getattr(user, "is_authenticated", False) or not user.is_active:
        return Workspace.objects.none()
    active = Workspace.objects.filter(is_active=True)
    if getattr(user, "is_superuser", False):
        return active.order_by("name")
    ids = set(
        get_objects_for_user(
            user, [f"billing_app.{APPROVE_ACTIONS}"], klass=active, accept_global_perms=False
        ).values_list("pk", flat=True)
    )
    if getattr(user, "is_staff", False):
        ids |= set(
            get_objects_for_user(
                user, ["billing_app.view_billing"], klass=active, accept_global_perms=False
            ).values_list("pk", flat=True)
        )
    return active.filter(pk__in=ids).order_by("name")


def report_workspace_for_user(
    *, user: AbstractBaseUser | AnonymousUser, slug: str | None, require_choice: bool = False
) -> tuple[Workspace, list[Workspace]]:
    """The workspace asked for (or the first one allowed) and every allowed one, for a switcher."""
    allowed = list(report_workspaces(user=user))
    if not allowed:
        raise NotPermitted(
            "You may not see any workspace's billing dashboard.", code="not_permitted"
        )
    if slug:
        chosen = next((w for w in allowed if w.slug == slug), None)
        if chosen is None:
            raise NotFound("No such workspace.", code="not_found")
        return chosen, allowed
    if require_choice and len(allowed) > 1:
        raise ValidationFailed(
            "Name the workspace: ?workspace=<slug>.",
            code="workspace_required",
            details={"workspace": [w.slug for w in allowed]},
        )
    return allowed[0], allowed


def report_workspace_for_agent(*, context: Any, slug: str | None) -> Workspace:
    """The app session's workspace, if the agent holds ``approve_actions`` there."""
    workspace = context.workspace
    if slug and slug != workspace.slug:
        raise NotFound("No such workspace.", code="not_found")
    if not context.user.has_perm(f"billing_app.{APPROVE_ACTIONS}", workspace):
        raise NotPermitted(
            "The billing dashboard is for Managers (agents who approve billing actions).",
            code="not_permitted",
        )
    return workspace
