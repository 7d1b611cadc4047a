"""Agents and approvers of a workspace: roles are assigned and removed through
``roles.agent_role_assign`` / ``roles.agent_membership_remove``, never edited in place."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from ..catalog import Role
from ..models import (
    AgentMembership,
)
from ..roles import agent_membership_remove, agent_role_assign
from ..services.audit import AdminChange, audit_admin_changes
from .audit import AuditedChangesMixin
from .forms import MembershipAddForm, MembershipRoleForm


def _set_role_action(role: Role):
    def set_role(modeladmin, request: HttpRequest, queryset: QuerySet[AgentMembership]) -> None:
        # In the action's transaction (AuditedChangesMixin.response_action): each role set
        # is appended to its workspace's audit chain as it is made.
        changes = [
            AdminChange(
                agent_role_assign(
                    user=membership.user,
                    workspace=membership.workspace,
                    role=role,
                    source=f"admin: set by {request.user.get_username()}",
                ),
                "changed",
                f"Set role: {role.label}",
            )
            for membership in queryset.select_related("user", "workspace")
        ]
        audit_admin_changes(changes=changes, user=request.user)
        modeladmin.message_user(
            request,
            f"{queryset.count()} member(s) now hold the {role.label} role.",
            messages.SUCCESS,
        )

    set_role.__name__ = f"set_role_{role.value}"
    return admin.action(description=f"Set role: {role.label}", permissions=("change",))(set_role)


@admin.register(AgentMembership)
class AgentMembershipAdmin(AuditedChangesMixin, admin.ModelAdmin):
    """Agents and approvers of each workspace.

    Adding a membership with the VP or Legal role makes a Django user an approver of
    that workspace. The role is only ever set through ``roles.agent_role_assign``,
    which keeps exactly one role group per workspace and ends the user's app sessions
    when the role changes.
    """

    list_display = (
        "__str__",
        "user",
        "workspace",
        "role",
        "role_source",
        "role_version",
        "last_seen_at",
    )
    list_filter = ("workspace", "role")
    list_select_related = ("user", "workspace")
    search_fields = ("user__username", "display_name", "email", "helpdesk_user_id")
    autocomplete_fields = ("user", "workspace")
    actions = [_set_role_action(role) for role in Role]

    def get_form(  # type: ignore[override]
        self, request: HttpRequest, obj: AgentMembership | None = None, **kwargs: Any
    ) -> Any:
        kwargs["form"] = MembershipAddForm if obj is None else MembershipRoleForm
        return super().get_form(request, obj, **kwargs)

    def get_fields(self, request: HttpRequest, obj: AgentMembership | None = None):
        if obj is None:
            return ("user", "workspace", "role")
        return (
            "user",
            "workspace",
            "role",
            "role_source",
            "role_version",
            "installation",
            "helpdesk_user_id",
            "display_name",
            "email",
            "last_seen_at",
            "created_at",
        )

    def get_readonly_fields(self, request: HttpRequest, obj: AgentMembership | None = None):
        if obj is None:
            return ()
        return (
            "user",
            "workspace",
            "role_source",
            "role_version",
            "installation",
            "helpdesk_user_id",
            "display_name",
            "email",
            "last_seen_at",
            "created_at",
        )

    def save_model(self, request: HttpRequest, obj: AgentMembership, form, change: bool) -> None:
        membership = agent_role_assign(
            user=obj.user,
            workspace=obj.workspace,
            role=Role(form.cleaned_data["role"]),
            source=f"admin: set by {request.user.get_username()}",
        )
        for field in membership._meta.concrete_fields:
            setattr(obj, field.attname, getattr(membership, field.attname))
        obj._state.adding = False
        if membership.role in {Role.VP, Role.LEGAL} and not obj.user.has_usable_password():
            self.message_user(
                request,
                f"{obj.user} has no password yet: set one on the Users page so they can sign "
                "in to the approvals page.",
                messages.WARNING,
            )

    def delete_model(self, request: HttpRequest, obj: AgentMembership) -> None:
        agent_membership_remove(membership=obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[AgentMembership]) -> None:
        for membership in queryset.select_related("user", "workspace"):
            agent_membership_remove(membership=membership)
