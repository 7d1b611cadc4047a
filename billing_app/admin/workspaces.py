"""Workspaces with their installations, currency rates, role mapping rules and matrix
cells inline; currency rates and role mapping rules on their own."""

from __future__ import annotations

from contextlib import contextmanager

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from helpdesk_connectors.admin import secret_status

from ..models import (
    ActionPolicy,
    ApprovalRoute,
    CurrencyRate,
    RoleMappingRule,
    Workspace,
    WorkspaceInstallation,
)
from ..roles import workspace_mapping_changed
from ..services.audit import AdminChange, audit_admin_changes
from ..services.workspaces import workspace_provision
from .audit import AuditedChangesMixin
from .forms import (
    ActionPolicyForm,
    ApprovalRouteForm,
    CurrencyRateForm,
    RoleMappingRuleForm,
    WorkspaceAdminForm,
    cell_limit_text,
)


class WorkspaceInstallationInline(admin.TabularInline):
    model = WorkspaceInstallation
    extra = 0
    autocomplete_fields = ("installation",)
    verbose_name = "helpdesk installation"


class CurrencyRateInline(admin.TabularInline):
    model = CurrencyRate
    form = CurrencyRateForm
    extra = 0
    fields = ("currency", "rate", "updated_at")
    readonly_fields = ("updated_at",)


class RoleMappingRuleInline(admin.TabularInline):
    model = RoleMappingRule
    form = RoleMappingRuleForm
    extra = 0
    fields = ("match_type", "value", "connector", "role", "priority")


class ActionPolicyInline(admin.TabularInline):
    model = ActionPolicy
    form = ActionPolicyForm
    extra = 0
    fields = (
        "action",
        "role",
        "effect",
        "limit",
        "limit_inclusive",
        "above_limit",
        "customer_requested_only",
        "limit_shown",
    )
    readonly_fields = ("limit_shown",)
    ordering = ("action", "role")
    verbose_name_plural = (
        "permission matrix (limits in minor units of the base currency, %, or days)"
    )

    @admin.display(description="Limit")
    def limit_shown(self, obj: ActionPolicy) -> str:
        return cell_limit_text(obj) if obj.pk else ""


class ApprovalRouteInline(admin.TabularInline):
    model = ApprovalRoute
    form = ApprovalRouteForm
    extra = 0
    fields = ("action", "threshold", "threshold_inclusive", "approver_roles")


# -- workspaces ------------------------------------------------------------------


@contextmanager
def _copied_into_chain(request: HttpRequest, workspaces, message: str):
    """Matrix cells and approval routes that provisioning copies into ``workspaces`` join
    each workspace's audit chain, with their values (docs/audit.md)."""
    ids = [w.pk for w in workspaces]
    models = (ActionPolicy, ApprovalRoute)
    before = {
        m: set(m.objects.filter(workspace__in=ids).values_list("pk", flat=True)) for m in models
    }
    yield
    audit_admin_changes(
        changes=[
            AdminChange(row, "added", message)
            for m in models
            for row in m.objects.filter(workspace__in=ids).exclude(pk__in=before[m]).order_by("pk")
        ],
        user=request.user,
    )


@admin.register(Workspace)
class WorkspaceAdmin(AuditedChangesMixin, admin.ModelAdmin):
    form = WorkspaceAdminForm
    list_display = (
        "name",
        "slug",
        "provider",
        "base_currency",
        "stripe_key",
        "default_role",
        "is_active",
    )
    list_filter = ("provider", "is_active")
    search_fields = ("slug", "name")
    actions = ("provision",)
    fieldsets = (
        (None, {"fields": ("name", "slug", "is_active")}),
        (
            "Billing",
            {
                "fields": (
                    "provider",
                    "base_currency",
                    "stripe_secret_key",
                    "clear_stripe_secret_key",
                    "stripe_webhook_secret",
                    "clear_stripe_webhook_secret",
                    "stripe_account_id",
                )
            },
        ),
        ("Roles", {"fields": ("default_role", "role_mapping_version")}),
        (
            "Policy settings",
            {
                "fields": (
                    "refund_window_days",
                    "refund_pattern_count",
                    "refund_pattern_days",
                    "approval_ttl_hours",
                    "duplicate_window_hours",
                    "payment_monitoring_days",
                    "csm_group",
                )
            },
        ),
    )

    def get_readonly_fields(self, request: HttpRequest, obj: Workspace | None = None):
        # The slug names the role groups and webhook URL; limits are minor units of the
        # base currency — neither may change under a running workspace.
        if obj is None:
            return ("role_mapping_version",)
        return ("slug", "base_currency", "role_mapping_version")

    def get_inlines(self, request: HttpRequest, obj: Workspace | None):
        if obj is None:  # the matrix is copied in when the workspace is created
            return [WorkspaceInstallationInline, CurrencyRateInline, RoleMappingRuleInline]
        return [
            WorkspaceInstallationInline,
            CurrencyRateInline,
            RoleMappingRuleInline,
            ActionPolicyInline,
            ApprovalRouteInline,
        ]

    @admin.display(description="Stripe secret key")
    def stripe_key(self, obj: Workspace) -> str:
        return secret_status(obj.stripe_secret_key)

    def save_model(self, request: HttpRequest, obj: Workspace, form, change: bool) -> None:
        if not change:
            obj.save()
            with _copied_into_chain(request, [obj], "copied from the product default"):
                workspace_provision(workspace=obj)
            return
        # ``role_mapping_version`` is bumped with F(); never write back the value read here.
        obj.save(
            update_fields=[
                f.name
                for f in obj._meta.concrete_fields
                if f.name not in {"id", "role_mapping_version", "created_at"}
            ]
        )
        if "default_role" in form.changed_data:
            workspace_mapping_changed(workspace=obj)

    def save_formset(self, request: HttpRequest, form, formset, change: bool) -> None:
        super().save_formset(request, form, formset, change)
        if formset.model is RoleMappingRule and (
            formset.new_objects or formset.changed_objects or formset.deleted_objects
        ):
            workspace_mapping_changed(workspace=form.instance)

    @admin.action(
        description="Provision role groups and copy missing matrix cells", permissions=("change",)
    )
    def provision(self, request: HttpRequest, queryset: QuerySet[Workspace]) -> None:
        with _copied_into_chain(request, queryset, "copied from the product default (provision)"):
            for workspace in queryset:
                workspace_provision(workspace=workspace)
        self.message_user(
            request,
            f"Provisioned {queryset.count()} workspace(s): role groups hold exactly their "
            "permissions; missing matrix cells and routes were copied from the defaults.",
            messages.SUCCESS,
        )


@admin.register(CurrencyRate)
class CurrencyRateAdmin(AuditedChangesMixin, admin.ModelAdmin):
    """Rates convert amounts into the base currency the matrix's limits are written in."""

    form = CurrencyRateForm
    list_display = ("__str__", "workspace", "currency", "rate", "updated_at")
    list_editable = ("rate",)
    list_filter = ("workspace",)
    list_select_related = ("workspace",)
    search_fields = ("currency",)

    def get_changelist_form(self, request: HttpRequest, **kwargs):
        return super().get_changelist_form(request, form=CurrencyRateForm, **kwargs)


# -- role mapping ------------------------------------------------------------------


@admin.register(RoleMappingRule)
class RoleMappingRuleAdmin(AuditedChangesMixin, admin.ModelAdmin):
    """Every save or delete ends the workspace's app sessions: roles are re-resolved."""

    form = RoleMappingRuleForm
    list_display = ("__str__", "workspace", "connector", "match_type", "value", "role", "priority")
    list_editable = ("role", "priority")
    list_filter = ("workspace", "match_type", "role", "connector")
    list_select_related = ("workspace",)
    search_fields = ("value",)

    def get_changelist_form(self, request: HttpRequest, **kwargs):
        return super().get_changelist_form(request, form=RoleMappingRuleForm, **kwargs)

    def save_model(self, request: HttpRequest, obj: RoleMappingRule, form, change: bool) -> None:
        previous = (
            RoleMappingRule.objects.filter(pk=obj.pk).values_list("workspace_id", flat=True).first()
            if change
            else None
        )
        super().save_model(request, obj, form, change)
        workspace_mapping_changed(workspace=obj.workspace)
        if previous and previous != obj.workspace_id:
            workspace_mapping_changed(workspace=Workspace.objects.get(pk=previous))

    def delete_model(self, request: HttpRequest, obj: RoleMappingRule) -> None:
        workspace = obj.workspace
        super().delete_model(request, obj)
        workspace_mapping_changed(workspace=workspace)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[RoleMappingRule]) -> None:
        workspaces = list(Workspace.objects.filter(role_rules__in=queryset).distinct())
        super().delete_queryset(request, queryset)
        for workspace in workspaces:
            workspace_mapping_changed(workspace=workspace)


# -- the permission matrix -----------------------------------------------------------
