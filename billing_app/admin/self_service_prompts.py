"""Admin for card-update prompts (issue 18): the email's wording, the prompts sent, opt-outs.

``CardPromptTemplate`` sits beside the playbook's templates: the form shows the product's
wording and the reason's placeholders, and refuses a text the email could not be filled
from (the playbook's validator, plus the ``{link}`` every prompt needs). ``CardPrompt`` is
written by the scan, the outbox and the webhooks only: read-only here. A ``CustomerOptOut``
may be added for a customer who asked by another channel; deleting it resubscribes them.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.http import HttpRequest
from django.utils.html import format_html, format_html_join

from ..errors import ValidationFailed
from ..models import CardPrompt, CardPromptTemplate, CustomerOptOut
from ..services.card_prompts import PLACEHOLDERS, card_prompt_template_validate
from ..services.card_prompts.texts import DEFAULT_BODIES, DEFAULT_SUBJECTS
from .audit import ReadOnlyAdmin


class CardPromptTemplateForm(forms.ModelForm):
    class Meta:
        model = CardPromptTemplate
        fields = ("workspace", "reason", "subject", "body", "is_active")
        widgets = {"body": forms.Textarea(attrs={"rows": 14, "cols": 100})}

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        reason = data.get("reason")
        if reason and "subject" in data and "body" in data:
            try:
                data["subject"], data["body"] = card_prompt_template_validate(
                    reason=reason, subject=data["subject"], body=data["body"]
                )
            except ValidationFailed as exc:
                raise forms.ValidationError({"body": exc.message}, code=exc.code) from exc
        return data


@admin.register(CardPromptTemplate)
class CardPromptTemplateAdmin(admin.ModelAdmin):
    form = CardPromptTemplateForm
    list_display = ("workspace", "reason", "subject", "is_active", "updated_at")
    list_filter = ("workspace", "reason", "is_active")
    search_fields = ("subject", "body")
    readonly_fields = ("default_wording", "updated_at")
    list_select_related = ("workspace",)

    @admin.display(description="The product's wording and placeholders")
    def default_wording(self, obj: CardPromptTemplate | None) -> str:
        rows = [
            (
                label,
                DEFAULT_SUBJECTS[value],
                DEFAULT_BODIES[value],
                ", ".join("{" + name + "}" for name in PLACEHOLDERS[value]),
            )
            for value, label in CardPrompt.Reason.choices
            if obj is None or not obj.pk or obj.reason == value
        ]
        return format_html(
            "<p>Text inside [[ … ]] is left out when a placeholder in it has no value. "
            "The unsubscribe footer is added to every email.</p><dl>{}</dl>",
            format_html_join(
                "",
                "<dt><strong>{}</strong></dt><dd><p>{}</p><pre>{}</pre>"
                "<em>Placeholders: {}</em></dd>",
                rows,
            ),
        )


@admin.register(CardPrompt)
class CardPromptAdmin(ReadOnlyAdmin):
    """Written by the scan, the outbox and the webhooks: visible, never edited by hand."""

    list_display = (
        "created_at",
        "workspace",
        "customer_id",
        "reason",
        "window",
        "status",
        "sent_at",
        "card_updated_at",
        "renewal_paid_at",
    )
    list_filter = ("workspace", "reason", "status")
    search_fields = ("customer_id", "payment_method_id", "window")
    date_hierarchy = "created_at"
    list_select_related = ("workspace",)


@admin.register(CustomerOptOut)
class CustomerOptOutAdmin(admin.ModelAdmin):
    list_display = ("workspace", "customer_id", "created_at")
    list_filter = ("workspace",)
    search_fields = ("customer_id",)
    list_select_related = ("workspace",)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
