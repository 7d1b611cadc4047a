"""The audit log, read-only: actions, approval requests, the audit chain and its exports;
and the mixin that appends role and matrix changes made in admin to the chain."""

from __future__ import annotations

import csv
import json
import re
import uuid
from typing import Any

from django.contrib import admin
from django.core.exceptions import FieldDoesNotExist, PermissionDenied
from django.db import transaction
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from django.urls import path

from ..audit_chain import chain_verify
from ..models import (
    ApprovalRequest,
    AuditEntry,
    AuditVerification,
    BillingAction,
    Workspace,
)
from ..money import format_money
from ..roles import user_has_workspace_perm
from ..services.audit import (
    PREVIOUS_WORKSPACE,
    AdminChange,
    audit_admin_change,
    audit_admin_changes,
)
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


# -- the audit chain (issue 17; docs/audit.md) ---------------------------------------------


def _has_workspace(obj: Any) -> bool:
    try:
        field = obj._meta.get_field("workspace")
    except FieldDoesNotExist:
        return False
    return bool(field.many_to_one)


class AuditedChangesMixin:
    """Role and matrix changes made in admin are appended to the workspace's audit chain,
    next to Django's own admin log (which anyone with database access can edit unseen):
    the change, add and delete views, list-editable rows, rows edited inline
    (``save_formset``) and admin actions, which run in one transaction here so that an
    action's changes and their entries commit together."""

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        """A changed row remembers the workspace it belonged to: moving it to another
        workspace (or to or from the product default) is appended to both chains."""
        if change and obj.pk is not None and _has_workspace(obj):
            stored = (
                type(obj)._default_manager.filter(pk=obj.pk).values_list("workspace_id", flat=True)
            )
            if stored:
                setattr(obj, PREVIOUS_WORKSPACE, stored[0])
        super().save_model(request, obj, form, change)  # type: ignore[misc]

    def log_addition(self, request: HttpRequest, obj: Any, message: Any) -> Any:
        logged = super().log_addition(request, obj, message)  # type: ignore[misc]
        audit_admin_change(obj=obj, change="added", message=message, user=request.user)
        return logged

    def log_change(self, request: HttpRequest, obj: Any, message: Any) -> Any:
        logged = super().log_change(request, obj, message)  # type: ignore[misc]
        audit_admin_change(obj=obj, change="changed", message=message, user=request.user)
        return logged

    def log_deletions(self, request: HttpRequest, queryset: Any) -> Any:
        logged = super().log_deletions(request, queryset)  # type: ignore[misc]
        # A workspace is deleted only while its chain is empty (its entries are PROTECTed):
        # an entry appended to that chain now would refuse the deletion it records.
        audit_admin_changes(
            changes=[
                AdminChange(obj, "deleted", str(obj))
                for obj in queryset
                if not isinstance(obj, Workspace)
            ],
            user=request.user,
        )
        return logged

    def save_formset(self, request: HttpRequest, form: Any, formset: Any, change: bool) -> None:
        """Rows edited inline (a workspace's matrix cells, routes, role rules…), each with
        its values; the parent's own entry only names them."""
        doomed = [(f.instance, f.instance.pk) for f in formset.deleted_forms if f.instance.pk]
        super().save_formset(request, form, formset, change)  # type: ignore[misc]
        changes = [AdminChange(obj, "added", "added inline") for obj in formset.new_objects]
        changes += [
            AdminChange(obj, "changed", [{"changed": {"fields": fields}}])
            for obj, fields in formset.changed_objects
        ]
        changes += [AdminChange(obj, "deleted", "deleted inline", pk) for obj, pk in doomed]
        audit_admin_changes(changes=changes, user=request.user)

    def response_action(
        self, request: HttpRequest, queryset: QuerySet[Any], *args: Any, **kwargs: Any
    ) -> HttpResponse | None:
        with transaction.atomic():
            return super().response_action(request, queryset, *args, **kwargs)  # type: ignore[misc]


EXPORT_COLUMNS = (
    "workspace",
    "seq",
    "created_at",
    "event",
    "subject_type",
    "subject_id",
    "content",
    "prev_hash",
    "hash",
)


def audit_export_rows(workspace: Workspace) -> list[dict[str, Any]]:
    """The workspace's chain as exported: one dict per entry, in order (docs/audit.md)."""
    return [
        {
            "workspace": workspace.slug,
            "seq": e.seq,
            "created_at": e.created_at.isoformat(),
            "event": e.event,
            "subject_type": e.subject_type,
            "subject_id": e.subject_id,
            "content": e.content,
            "prev_hash": e.prev_hash,
            "hash": e.hash,
        }
        for e in AuditEntry.objects.filter(workspace=workspace).order_by("seq")
    ]


def audit_workspaces(user: Any) -> QuerySet[Workspace]:
    """The workspaces whose chains ``user`` may read and export in admin: every one for a
    superuser; for other staff with view permission on audit entries, those where they
    hold ``view_billing`` (a guardian permission on the workspace, ``roles``)."""
    if not getattr(user, "is_active", False) or not getattr(user, "is_staff", False):
        return Workspace.objects.none()
    if user.is_superuser:
        return Workspace.objects.all()
    if not user.has_perm("billing_app.view_auditentry"):
        return Workspace.objects.none()
    ids = [
        w.pk for w in Workspace.objects.all() if user_has_workspace_perm(user, "view_billing", w)
    ]
    return Workspace.objects.filter(pk__in=ids)


@admin.register(AuditEntry)
class AuditEntryAdmin(ReadOnlyAdmin):
    list_display = ("seq", "workspace", "created_at", "event", "subject_type", "subject_id")
    list_filter = (("workspace", admin.RelatedOnlyFieldListFilter), "event", "subject_type")
    list_select_related = ("workspace",)
    search_fields = ("subject_id",)
    ordering = ("workspace", "-seq")
    change_list_template = "admin/billing_app/auditentry/change_list.html"

    def get_urls(self):
        return [
            path(
                "export/<slug:slug>.<str:fmt>",
                self.admin_site.admin_view(self.export_view),
                name="billing_app_auditentry_export",
            ),
            *super().get_urls(),
        ]

    def get_queryset(self, request: HttpRequest) -> QuerySet[AuditEntry]:
        return super().get_queryset(request).filter(workspace__in=audit_workspaces(request.user))

    def changelist_view(self, request: HttpRequest, extra_context=None):
        workspaces = audit_workspaces(request.user).order_by("slug")
        extra_context = {**(extra_context or {}), "workspaces": workspaces}
        return super().changelist_view(request, extra_context)

    def export_view(self, request: HttpRequest, slug: str, fmt: str) -> HttpResponse:
        """The workspace's whole chain, with its hashes, as CSV or JSON: verifiable offline
        with ``billing_app.audit_chain.chain_verify`` (docs/audit.md). For superusers, and
        staff with view permission on audit entries and ``view_billing`` in the workspace."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        workspace = audit_workspaces(request.user).filter(slug=slug).first()
        if workspace is None or fmt not in ("csv", "json"):
            raise Http404
        rows = audit_export_rows(workspace)
        name = f"audit-{workspace.slug}"
        if fmt == "json":
            # The head exported is the last exported row's (not the head row read after
            # them: an append committed in between would be a head beyond the entries).
            last = rows[-1] if rows else None
            body = {
                "workspace": workspace.slug,
                "head": {"seq": last["seq"], "hash": last["hash"]} if last else None,
                "verifies": chain_verify(rows) is None,
                "entries": rows,
            }
            response = HttpResponse(
                json.dumps(body, ensure_ascii=False, indent=1),
                content_type="application/json; charset=utf-8",
            )
            response["Content-Disposition"] = f'attachment; filename="{name}.json"'
            return response
        response = HttpResponse(content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="{name}.csv"'
        writer = csv.DictWriter(response, fieldnames=EXPORT_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
        return response


@admin.register(AuditVerification)
class AuditVerificationAdmin(ReadOnlyAdmin):
    list_display = ("verified_at", "workspace", "ok", "entries", "head_seq", "first_bad")
    list_filter = ("workspace", "ok")
    list_select_related = ("workspace",)
