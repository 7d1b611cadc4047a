"""Admin for the dashboard's records: category rules (editable), tickets, calls, reports."""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from ..models import (
    HelpdeskTicket,
    MonthlyReport,
    OutboxMessage,
    ProviderCall,
    TicketCategoryRule,
    TicketSyncState,
    Workspace,
)


class _ReadOnly(admin.ModelAdmin):
    """Records written by Billing Desk itself: visible, never edited by hand."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(TicketCategoryRule)
class TicketCategoryRuleAdmin(admin.ModelAdmin):
    list_display = ("workspace", "category", "match_type", "value", "priority", "is_active")
    list_editable = ("priority", "is_active")
    list_filter = ("workspace", "category", "match_type", "is_active")
    search_fields = ("value",)
    ordering = ("workspace", "priority", "id")
    actions = ["recategorize"]

    @admin.action(
        description="Re-apply the rules to the selected rules' workspaces' tickets",
        permissions=("change",),
    )
    def recategorize(self, request: HttpRequest, queryset: QuerySet[TicketCategoryRule]) -> None:
        from ..services.tickets import tickets_recategorize

        for workspace in Workspace.objects.filter(ticket_category_rules__in=queryset).distinct():
            changed = tickets_recategorize(workspace=workspace)
            self.message_user(
                request, f"{workspace}: {changed} tickets recategorised.", messages.SUCCESS
            )


@admin.register(HelpdeskTicket)
class HelpdeskTicketAdmin(_ReadOnly):
    list_display = (
        "external_id",
        "workspace",
        "subject",
        "category",
        "status",
        "created_at",
        "resolution_seconds",
        "escalated",
        "csat_score",
    )
    list_filter = ("workspace", "category", "is_billing", "escalated", "status")
    search_fields = ("external_id", "subject", "requester_email")
    date_hierarchy = "created_at"
    list_select_related = ("workspace",)


@admin.register(TicketSyncState)
class TicketSyncStateAdmin(_ReadOnly):
    list_display = ("installation", "since", "last_run_at", "tickets_synced", "last_error")


@admin.register(ProviderCall)
class ProviderCallAdmin(_ReadOnly):
    list_display = ("created_at", "workspace", "provider", "operation", "outcome", "duration_ms")
    list_filter = ("workspace", "provider", "operation", "outcome")
    date_hierarchy = "created_at"
    list_select_related = ("workspace",)


@admin.register(MonthlyReport)
class MonthlyReportAdmin(_ReadOnly):
    list_display = ("workspace", "month", "generated_at", "emailed_at")
    list_filter = ("workspace",)


@admin.register(OutboxMessage)
class OutboxMessageAdmin(_ReadOnly):
    """Side effects waiting or given up (services/outbox.py); "retry now" re-arms failed ones."""

    list_display = (
        "created_at",
        "workspace",
        "kind",
        "target_id",
        "status",
        "attempts",
        "next_attempt_at",
        "last_error",
    )
    list_filter = ("status", "kind", "workspace")
    search_fields = ("target_id", "dedupe_key")
    date_hierarchy = "created_at"
    list_select_related = ("workspace",)
    actions = ["retry_now"]

    def has_retry_permission(self, request: HttpRequest) -> bool:
        # the model's change permission, though its form is read-only for everyone: staff
        # who may only view the outbox are not offered the action
        return request.user.has_perm("billing_app.change_outboxmessage")

    @admin.action(
        description="Retry now (failed or pending rows; the re-drive delivers them)",
        permissions=("retry",),
    )
    def retry_now(self, request: HttpRequest, queryset: QuerySet[OutboxMessage]) -> None:
        from django.utils import timezone

        changed = queryset.filter(
            status__in=[OutboxMessage.Status.FAILED, OutboxMessage.Status.PENDING]
        ).update(status=OutboxMessage.Status.PENDING, attempts=0, next_attempt_at=timezone.now())
        self.message_user(request, f"{changed} side effects re-armed.", messages.SUCCESS)
