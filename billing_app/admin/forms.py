"""The admin's forms: workspace settings and secrets, matrix cells, approval routes,
currency rates, role mapping rules and memberships, each validated before saving."""

from __future__ import annotations

from decimal import Decimal

from django import forms

from helpdesk_connectors.admin import SecretFieldsMixin

from ..catalog import APPROVER_ROLES, POLICY_MEASURE, Measure, PolicyAction, Role
from ..models import (
    ActionPolicy,
    AgentMembership,
    ApprovalRoute,
    CurrencyRate,
    RoleMappingRule,
    Workspace,
)
from ..money import format_money, is_known_currency
from ..providers import sandbox_enabled
from ..services.workspaces import workspace_settings_problems


def cell_limit_text(cell: ActionPolicy) -> str:
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


def role_labels(values: list[str]) -> str:
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
