"""Django admin: workspaces, role mapping, the permission matrix, approvers and the audit log.

Rules kept here:
- role changes go through ``roles.agent_role_assign`` (and removals through
  ``roles.agent_membership_remove``), never by editing ``AgentMembership.role``;
- saving or deleting a role mapping rule (or the workspace's default role) calls
  ``roles.workspace_mapping_changed``, which ends the workspace's app sessions;
- encrypted secrets are write-only (``SecretFieldsMixin``);
- the audit log (``BillingAction``, ``ApprovalRequest``) is read-only.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from helpdesk_connectors.admin import SecretFieldsMixin, secret_status

from .catalog import APPROVER_ROLES, POLICY_MEASURE, Measure, PolicyAction, Role
from .models import (
    ActionPolicy,
    AgentMembership,
    ApprovalRequest,
    ApprovalRoute,
    BillingAction,
    CurrencyRate,
    RoleMappingRule,
    Workspace,
    WorkspaceInstallation,
)
from .money import format_money, is_known_currency
from .providers import sandbox_enabled
from .roles import agent_membership_remove, agent_role_assign, workspace_mapping_changed
from .services.workspaces import workspace_provision, workspace_settings_problems

admin.site.site_header = "Billing Desk administration"
admin.site.site_title = "Billing Desk admin"
admin.site.index_title = "Workspaces, roles, limits and the audit log"


def _limit_shown(cell: ActionPolicy) -> str:
    if cell.limit is None:
        return "no limit" if cell.effect == ActionPolicy.Effect.ALLOW else "—"
    measure = POLICY_MEASURE.get(PolicyAction(cell.action), Measure.NONE)
    if measure == Measure.AMOUNT:
        currency = cell.workspace.base_currency if cell.workspace is not None else "USD"
        shown = format_money(cell.limit, currency)
    elif measure == Measure.PERCENT:
        shown = f"{cell.limit}%"
    else:
        shown = f"{cell.limit} days"
    return f"{'up to' if cell.limit_inclusive else 'below'} {shown}"


def _role_labels(values: list[str]) -> str:
    labels = {role.value: role.label for role in Role}
    return ", ".join(labels.get(value, value) for value in values)


# -- forms ----------------------------------------------------------------------


class WorkspaceAdminForm(SecretFieldsMixin, forms.ModelForm):
    secret_fields = ("stripe_secret_key", "stripe_webhook_secret")
    clear_stripe_secret_key = forms.BooleanField(
        required=False, label="Clear the Stripe secret key"
    )
    clear_stripe_webhook_secret = forms.BooleanField(
        required=False, label="Clear the webhook signing secret"
    )

    class Meta:
        model = Workspace
        fields = [
            "name",
            "slug",
            "is_active",
            "provider",
            "base_currency",
            "stripe_secret_key",
            "stripe_webhook_secret",
            "stripe_account_id",
            "default_role",
            "refund_window_days",
            "refund_pattern_count",
            "refund_pattern_days",
            "approval_ttl_hours",
            "duplicate_window_hours",
            "payment_monitoring_days",
            "csm_group",
        ]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # No pre-selected provider (issue 12): the admin chooses which system moves the money.
        # The sandbox is offered only where it is enabled (demo, tests), or kept visible on a
        # workspace already on it so the form can say why it must change.
        field = self.fields.get("provider")
        if field is not None:
            current = self.instance.provider if self.instance.pk else ""
            field.choices = [
                (value, label)
                for value, label in field.choices
                if value != Workspace.Provider.SANDBOX or sandbox_enabled() or current == value
            ]
            field.help_text = (
                "Stripe moves real money. Sandbox is simulated billing for the demo and tests "
                "only: nothing moves, and production refuses it."
            )

    def clean_base_currency(self) -> str:
        return self.cleaned_data["base_currency"].strip().upper()

    def clean(self):
        cleaned = super().clean()
        currency = cleaned.get("base_currency") or self.instance.base_currency
        for problem in workspace_settings_problems(
            base_currency=currency,
            provider=cleaned.get("provider") or self.instance.provider,
            stripe_secret_key=cleaned.get("stripe_secret_key") or "",
            stripe_webhook_secret=cleaned.get("stripe_webhook_secret") or "",
        ):
            field = problem.field if problem.field in self.fields else None
            self.add_error(field, problem.message)
        return cleaned


class ActionPolicyForm(forms.ModelForm):
    class Meta:
        model = ActionPolicy
        fields = [
            "workspace",
            "action",
            "role",
            "effect",
            "limit",
            "limit_inclusive",
            "above_limit",
            "customer_requested_only",
        ]

    def clean(self):
        cleaned = super().clean()
        action = cleaned.get("action") or self.instance.action
        effect = cleaned.get("effect") or self.instance.effect
        limit = cleaned.get("limit")
        if limit is None or not action:
            return cleaned
        if limit < 0:
            self.add_error("limit", "A limit cannot be negative.")
        elif POLICY_MEASURE.get(PolicyAction(action), Measure.NONE) == Measure.NONE:
            self.add_error("limit", "This action has no amount, percentage or days to limit.")
        elif effect != ActionPolicy.Effect.ALLOW:
            self.add_error(
                "limit", "A limit applies only to cells that execute directly; clear it."
            )
        return cleaned


class ApprovalRouteForm(forms.ModelForm):
    approver_roles = forms.MultipleChoiceField(
        choices=[(role.value, role.label) for role in APPROVER_ROLES],
        widget=forms.CheckboxSelectMultiple,
        help_text="Any one of these roles may approve (never the requester).",
    )

    class Meta:
        model = ApprovalRoute
        fields = ["workspace", "action", "threshold", "threshold_inclusive", "approver_roles"]

    def clean_threshold(self) -> int:
        threshold = self.cleaned_data["threshold"]
        if threshold < 0:
            raise forms.ValidationError("A threshold cannot be negative.")
        return threshold


class CurrencyRateForm(forms.ModelForm):
    class Meta:
        model = CurrencyRate
        fields = ["workspace", "currency", "rate"]
        help_texts = {"rate": "How many units of the workspace's base currency one unit buys."}

    def clean_currency(self) -> str:
        currency = self.cleaned_data["currency"].strip().upper()
        if not is_known_currency(currency):
            raise forms.ValidationError(f"Unknown currency {currency!r}: use an ISO 4217 code.")
        return currency

    def clean_rate(self) -> Decimal:
        rate = self.cleaned_data["rate"]
        if rate is not None and rate <= 0:
            raise forms.ValidationError("A rate must be above zero.")
        return rate

    def clean(self):
        cleaned = super().clean()
        workspace = cleaned.get("workspace") or getattr(self.instance, "workspace", None)
        if workspace is not None and cleaned.get("currency") == workspace.base_currency:
            self.add_error("currency", "This is the workspace's base currency: it needs no rate.")
        return cleaned


class RoleMappingRuleForm(forms.ModelForm):
    class Meta:
        model = RoleMappingRule
        fields = ["workspace", "connector", "match_type", "value", "role", "priority"]

    def clean_value(self) -> str:
        value = self.cleaned_data["value"].strip()
        if not value:
            raise forms.ValidationError("Give the role name, id, group or agent id to match.")
        return value


class MembershipAddForm(forms.ModelForm):
    role = forms.ChoiceField(
        choices=[(role.value, role.label) for role in Role],
        help_text="VP and Legal approvers decide approval requests on the /approvals/ page "
        "(with their Django login); they are not helpdesk agents.",
    )

    class Meta:
        model = AgentMembership
        fields = ["user", "workspace", "role"]


class MembershipRoleForm(forms.ModelForm):
    role = forms.ChoiceField(choices=[(role.value, role.label) for role in Role])

    class Meta:
        model = AgentMembership
        fields = ["role"]


# -- inlines ---------------------------------------------------------------------


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
        return _limit_shown(obj) if obj.pk else ""


class ApprovalRouteInline(admin.TabularInline):
    model = ApprovalRoute
    form = ApprovalRouteForm
    extra = 0
    fields = ("action", "threshold", "threshold_inclusive", "approver_roles")


# -- workspaces ------------------------------------------------------------------


@admin.register(Workspace)
class WorkspaceAdmin(admin.ModelAdmin):
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

    @admin.action(description="Provision role groups and copy missing matrix cells")
    def provision(self, request: HttpRequest, queryset: QuerySet[Workspace]) -> None:
        for workspace in queryset:
            workspace_provision(workspace=workspace)
        self.message_user(
            request,
            f"Provisioned {queryset.count()} workspace(s): role groups hold exactly their "
            "permissions; missing matrix cells and routes were copied from the defaults.",
            messages.SUCCESS,
        )


@admin.register(CurrencyRate)
class CurrencyRateAdmin(admin.ModelAdmin):
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
class RoleMappingRuleAdmin(admin.ModelAdmin):
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
        return _limit_shown(obj)


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
        return _role_labels(obj.approver_roles)


# -- agents and approvers ---------------------------------------------------------------


def _set_role_action(role: Role):
    def set_role(modeladmin, request: HttpRequest, queryset: QuerySet[AgentMembership]) -> None:
        for membership in queryset.select_related("user", "workspace"):
            agent_role_assign(
                user=membership.user,
                workspace=membership.workspace,
                role=role,
                source=f"admin: set by {request.user.get_username()}",
            )
        modeladmin.message_user(
            request,
            f"{queryset.count()} member(s) now hold the {role.label} role.",
            messages.SUCCESS,
        )

    set_role.__name__ = f"set_role_{role.value}"
    return admin.action(description=f"Set role: {role.label}")(set_role)


@admin.register(AgentMembership)
class AgentMembershipAdmin(admin.ModelAdmin):
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


# -- the audit log (read-only) -----------------------------------------------------------


class ReadOnlyAdmin(admin.ModelAdmin):
    """The audit trail is written by the services only; admins may look, never touch."""

    def has_add_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


@admin.register(BillingAction)
class BillingActionAdmin(ReadOnlyAdmin):
    list_display = (
        "created_at",
        "workspace",
        "kind",
        "customer_id",
        "ticket_id",
        "actor",
        "actor_role",
        "amount_shown",
        "decision",
        "status",
    )
    list_filter = ("workspace", "status", "decision", "kind", "actor_role")
    list_select_related = ("workspace", "actor")
    search_fields = ("customer_id", "ticket_id", "idempotency_key", "provider_object_id")
    date_hierarchy = "created_at"

    @admin.display(description="Amount")
    def amount_shown(self, obj: BillingAction) -> str:
        if obj.amount is None or not obj.currency:
            return "—"
        return format_money(obj.amount, obj.currency)


@admin.register(ApprovalRequest)
class ApprovalRequestAdmin(ReadOnlyAdmin):
    list_display = (
        "created_at",
        "workspace",
        "action",
        "required",
        "status",
        "decided_by",
        "decided_at",
        "expires_at",
    )
    list_filter = ("workspace", "status")
    list_select_related = ("workspace", "action", "decided_by")
    search_fields = ("action__customer_id", "action__ticket_id", "reason", "comment")
    date_hierarchy = "created_at"

    @admin.display(description="Approvers")
    def required(self, obj: ApprovalRequest) -> str:
        return _role_labels(obj.required_roles)


# Dashboard records (issue 8): category rules, tickets, provider calls, monthly reports;
# payment failures and per-workspace playbook templates (issue 7).
from . import admin_metrics, admin_playbook  # noqa: E402,F401
