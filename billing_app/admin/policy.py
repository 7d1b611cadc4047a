"""The permission matrix: its cells (``ActionPolicy``) and approval routes."""

from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest

from ..models import (
    ActionPolicy,
    ApprovalRoute,
)
from .forms import ActionPolicyForm, ApprovalRouteForm, cell_limit_text, role_labels


@admin.register(ActionPolicy)
class ActionPolicyAdmin(admin.ModelAdmin):
    """The matrix, one row per (workspace, action, role). Blank workspace: product default."""

    form = ActionPolicyForm
    list_display = (
        "cell",
        "workspace",
        "action",
        "role",
        "effect",
        "limit",
        "limit_inclusive",
        "above_limit",
        "customer_requested_only",
        "limit_shown",
    )
    list_display_links = ("cell",)
    list_editable = ("effect", "limit", "limit_inclusive", "above_limit", "customer_requested_only")
    list_filter = ("workspace", "action", "role", "effect")
    list_select_related = ("workspace",)
    ordering = ("workspace__name", "action", "role")
    list_per_page = 112

    def get_changelist_form(self, request: HttpRequest, **kwargs):
        return super().get_changelist_form(request, form=ActionPolicyForm, **kwargs)

    @admin.display(description="Cell")
    def cell(self, obj: ActionPolicy) -> str:
        where = obj.workspace.slug if obj.workspace is not None else "default"
        return f"{where} · {obj.get_action_display()} · {obj.get_role_display()}"

    @admin.display(description="Limit")
    def limit_shown(self, obj: ActionPolicy) -> str:
        return cell_limit_text(obj)


@admin.register(ApprovalRoute)
class ApprovalRouteAdmin(admin.ModelAdmin):
    form = ApprovalRouteForm
    list_display = ("route", "workspace", "action", "threshold", "threshold_inclusive", "approvers")
    list_filter = ("workspace", "action")
    list_select_related = ("workspace",)
    ordering = ("workspace__name", "action", "threshold")

    @admin.display(description="Route")
    def route(self, obj: ApprovalRoute) -> str:
        where = obj.workspace.slug if obj.workspace is not None else "default"
        return f"{where} · {obj.get_action_display()} · from {obj.threshold}"

    @admin.display(description="Approvers")
    def approvers(self, obj: ApprovalRoute) -> str:
        return role_labels(obj.approver_roles)


# -- agents and approvers ---------------------------------------------------------------
