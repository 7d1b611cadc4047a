"""The permission matrix: its cells (``ActionPolicy``) and approval routes.

The product default is the brief's matrix: a ❌ cell is "Not permitted" and the panel
does not offer it. Setting "May request approval" on a cell the brief marks ❌ is the
per-cell option to *escalate* it — the role then sees "Request approval" and an approver
decides. It is off by default; the list shows which cells are ❌ in the brief and which
of those a workspace escalates.
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.http import HttpRequest

from ..catalog import ActionKind
from ..models import (
    ActionPolicy,
    ApprovalRoute,
)
from ..policy_defaults import DEFAULT_CELLS, DENY, REQUEST
from .audit import AuditedChangesMixin
from .forms import ActionPolicyForm, ApprovalRouteForm, cell_limit_text, role_labels

# The cells the brief marks ❌ (not permitted, not offered), from the product default.
BRIEF_NOT_PERMITTED: frozenset[tuple[str, str]] = frozenset(
    (action, role)
    for action, cells in DEFAULT_CELLS.items()
    for role, cell in cells.items()
    if cell.effect == DENY
)

EFFECT_LABELS = {
    ActionPolicy.Effect.ALLOW: "Executes directly (up to the limit)",
    ActionPolicy.Effect.REQUEST: "May request approval (on a ❌ cell: escalation on)",
    ActionPolicy.Effect.DENY: "Not permitted (not offered in the panel)",
}
EFFECT_HELP = (
    "Not permitted: the panel does not offer the action to this role (the brief's ❌ cells). "
    "May request approval: the role may submit it and the approval route decides — the "
    'brief\'s "after VP / Legal approval" cells, and, set on a cell the brief marks ❌, the '
    "option to escalate that cell instead of refusing it (off by default)."
)
ABOVE_LIMIT_HELP = (
    "What happens above the limit: May request approval sends it to the approval route "
    "(e.g. a Specialist's refund above $1,000 → Manager); Not permitted refuses it (the "
    "brief's ❌ above a limit, e.g. a Manager's credit above $500 or discount above 15%)."
)


class MatrixCellForm(ActionPolicyForm):
    """The cell form with the effect said as the brief says it (the model's choices stay)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        effect = self.fields.get("effect")
        if effect is not None:
            effect.choices = [
                (value, EFFECT_LABELS.get(value, label)) for value, label in effect.choices
            ]
            effect.help_text = EFFECT_HELP
        above = self.fields.get("above_limit")
        if above is not None:
            above.help_text = ABOVE_LIMIT_HELP


@admin.register(ActionPolicy)
class ActionPolicyAdmin(AuditedChangesMixin, admin.ModelAdmin):
    """The matrix, one row per (workspace, action, role). Blank workspace: product default."""

    form = MatrixCellForm
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
        "in_the_brief",
    )
    list_display_links = ("cell",)
    list_editable = ("effect", "limit", "limit_inclusive", "above_limit", "customer_requested_only")
    list_filter = ("workspace", "action", "role", "effect")
    list_select_related = ("workspace",)
    ordering = ("workspace__name", "action", "role")
    list_per_page = 112

    def get_changelist_form(self, request: HttpRequest, **kwargs):
        return super().get_changelist_form(request, form=MatrixCellForm, **kwargs)

    def save_model(self, request: HttpRequest, obj: ActionPolicy, form, change: bool) -> None:
        super().save_model(request, obj, form, change)
        if (
            change
            and obj.action == ActionKind.APPLY_CREDIT
            and obj.workspace is not None
            and "limit" in form.changed_data
        ):
            # The dashboard bands credits by the limits in force when each was written
            # (services.rollups); history keeps its bands until the roll-ups are rebuilt.
            messages.warning(
                request,
                "Credit limits changed: the dashboard's credit bands use the new limits for "
                "new credits only. To re-band earlier credits, run "
                f"`manage.py rollups_rebuild --workspace {obj.workspace.slug}` "
                "while agents are quiet.",
            )

    @admin.display(description="Cell")
    def cell(self, obj: ActionPolicy) -> str:
        where = obj.workspace.slug if obj.workspace is not None else "default"
        return f"{where} · {obj.get_action_display()} · {obj.get_role_display()}"

    @admin.display(description="Limit")
    def limit_shown(self, obj: ActionPolicy) -> str:
        return cell_limit_text(obj)

    @admin.display(description="In the brief")
    def in_the_brief(self, obj: ActionPolicy) -> str:
        """❌ cells of the brief, and whether this row escalates one (the per-cell option)."""
        if (obj.action, obj.role) not in BRIEF_NOT_PERMITTED:
            return "—"
        if obj.effect == REQUEST:
            return "❌ in the brief — escalation on (may request approval)"
        if obj.effect == DENY:
            return "❌ not permitted"
        return "❌ in the brief — executes directly here"


@admin.register(ApprovalRoute)
class ApprovalRouteAdmin(AuditedChangesMixin, admin.ModelAdmin):
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
