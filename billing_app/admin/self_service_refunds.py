"""Admin for self-service refund requests (issue 18): the links sent and what customers asked.

Both are written by the service only (``services.self_service_refunds``): read-only here.
A link can be revoked (an admin action, audited) — its page then shows the same generic
"not valid" page as a forged one. The workspace's ``self_service_refund_limit`` and
``self_service_link_days`` are on the workspace's own page.
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from ..models import SelfServiceLink, SelfServiceRefundRequest
from ..services.refund_links import refund_link_revoke
from .audit import ReadOnlyAdmin


@admin.register(SelfServiceLink)
class SelfServiceLinkAdmin(ReadOnlyAdmin):
    list_display = (
        "created_at",
        "workspace",
        "customer_id",
        "source",
        "created_by",
        "ticket_id",
        "expires_at",
        "revoked_at",
    )
    list_filter = ("workspace", "source")
    search_fields = ("customer_id", "ticket_id")
    date_hierarchy = "created_at"
    list_select_related = ("workspace", "created_by")
    actions = ("revoke",)

    def has_revoke_permission(self, request: HttpRequest) -> bool:
        # the model's change permission, though its form is read-only for everyone: staff
        # who may only view the links are not offered the action
        return request.user.has_perm("billing_app.change_selfservicelink")

    @admin.action(
        description="Revoke the selected links (their pages stop working at once)",
        permissions=("revoke",),
    )
    def revoke(self, request: HttpRequest, queryset: QuerySet[SelfServiceLink]) -> None:
        count = 0
        for link in queryset.filter(revoked_at__isnull=True):
            refund_link_revoke(link=link, revoked_by=request.user)  # type: ignore[arg-type]
            count += 1
        self.message_user(request, f"{count} link(s) revoked.", messages.SUCCESS)


@admin.register(SelfServiceRefundRequest)
class SelfServiceRefundRequestAdmin(ReadOnlyAdmin):
    list_display = (
        "created_at",
        "workspace",
        "customer_id",
        "charge_id",
        "amount",
        "currency",
        "reason",
        "status",
        "refusal_code",
        "ticket_ref",
        "decided_at",
    )
    list_filter = ("workspace", "status", "reason")
    search_fields = ("customer_id", "charge_id", "ticket_ref")
    date_hierarchy = "created_at"
    list_select_related = ("workspace",)
    raw_id_fields = ("action", "link")
