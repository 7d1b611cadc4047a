"""Admin for the billing help widget (issue 18, docs/self-service.md section 3).

A workspace's ``BillingWidget``: whether it answers, and the exact origins allowed to call
it (validated and normalised as browsers send ``Origin``). The identity secret is never
typed in nor shown again: the action "Generate a new identity secret" makes one, stores
it encrypted and shows it once, on a page of its own that no cache keeps (not in a
message, which would travel in a cookie). Changes, the rotation included, go to the
workspace's audit chain (without the secret). Events are read-only.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils.cache import add_never_cache_headers

from helpdesk_connectors.admin import secret_status

from ..errors import ValidationFailed
from ..models import BillingWidget, BillingWidgetEvent
from ..services.audit import audit_admin_change
from ..services.widget import widget_origins_validate, widget_secret_rotate
from .audit import AuditedChangesMixin, ReadOnlyAdmin


class BillingWidgetForm(forms.ModelForm):
    class Meta:
        model = BillingWidget
        fields = ("workspace", "enabled", "allowed_origins")
        widgets = {"allowed_origins": forms.Textarea(attrs={"rows": 4, "cols": 60})}
        help_texts = {
            "allowed_origins": (
                "The product's origins that may show the widget, one per line, exactly as "
                "the browser sends them: https://app.example.com (no path, no wildcard)."
            ),
        }

    def clean_allowed_origins(self) -> str:
        try:
            return widget_origins_validate(text=self.cleaned_data.get("allowed_origins", ""))
        except ValidationFailed as exc:
            raise forms.ValidationError(exc.message, code=exc.code) from exc


@admin.register(BillingWidget)
class BillingWidgetAdmin(AuditedChangesMixin, admin.ModelAdmin):
    form = BillingWidgetForm
    list_display = ("workspace", "enabled", "origins", "secret", "updated_at")
    list_filter = ("enabled",)
    list_select_related = ("workspace",)
    readonly_fields = ("secret", "created_at", "updated_at")
    actions = ("generate_secret",)

    @admin.display(description="Identity secret")
    def secret(self, obj: BillingWidget) -> str:
        status = secret_status(obj.identity_secret)
        if not obj.identity_secret:
            return f"{status} — use the action “Generate a new identity secret”"
        return status

    @admin.display(description="Allowed origins")
    def origins(self, obj: BillingWidget) -> str:
        return ", ".join(line for line in obj.allowed_origins.splitlines() if line.strip())

    @admin.action(
        description="Generate a new identity secret (shown once)", permissions=("change",)
    )
    def generate_secret(
        self, request: HttpRequest, queryset: QuerySet[BillingWidget]
    ) -> HttpResponse:
        generated = []
        for widget in queryset.select_related("workspace"):
            secret = widget_secret_rotate(widget=widget)
            audit_admin_change(
                obj=widget, change="changed", message="identity secret rotated", user=request.user
            )
            self.log_change_plain(request, widget)
            generated.append((widget, secret))
        context: dict[str, Any] = {
            **self.admin_site.each_context(request),
            "title": "New billing widget identity secrets",
            "generated": generated,
            "opts": self.model._meta,
        }
        response = TemplateResponse(request, "widget/admin_secret.html", context)
        add_never_cache_headers(response)
        return response

    def log_change_plain(self, request: HttpRequest, obj: BillingWidget) -> None:
        """Django's admin log line for the rotation (the mixin's audit entry is made above)."""
        admin.ModelAdmin.log_change(self, request, obj, "identity secret rotated")


@admin.register(BillingWidgetEvent)
class BillingWidgetEventAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "workspace", "customer_id", "kind", "question", "ticket_ref")
    list_filter = ("workspace", "kind", "question")
    search_fields = ("customer_id", "visit", "ticket_ref")
    date_hierarchy = "created_at"
    list_select_related = ("workspace",)
