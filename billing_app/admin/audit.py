"""The audit log, read-only: actions and approval requests."""

from __future__ import annotations

import re
import uuid

from django.contrib import admin
from django.http import HttpRequest

from ..models import (
    ApprovalRequest,
    BillingAction,
)
from ..money import format_money
from .forms import role_labels

# -- the audit log (read-only) -----------------------------------------------------------


class ReadOnlyAdmin(admin.ModelAdmin):
    """The audit trail is written by the services only; admins may look, never touch."""

    def has_add_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


_REFERENCE = re.compile(r"(?i)BD-([0-9a-f]{8})")


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
    search_help_text = "Customer, ticket, idempotency key, provider id, or a note's BD- reference."
    date_hierarchy = "created_at"

    def get_search_results(self, request, queryset, search_term):
        """A note's ``BD-3F2A91C0`` finds its action: the reference is the id's first 8 hex digits."""
        found, may_have_duplicates = super().get_search_results(request, queryset, search_term)
        match = _REFERENCE.fullmatch(search_term.strip())
        if match:
            prefix = match.group(1).lower()
            lo, hi = uuid.UUID(prefix + "0" * 24), uuid.UUID(prefix + "f" * 24)
            found |= queryset.filter(id__gte=lo, id__lte=hi)
        return found, may_have_duplicates

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
        return role_labels(obj.required_roles)


# Dashboard records (issue 8): category rules, tickets, provider calls, monthly reports;
# payment failures and per-workspace playbook templates (issue 7).
