"""Admin for the workspace's wording — playbook messages and internal notes (editable) — and
payment failures (read-only).

A ``PlaybookTemplate`` replaces the brief's wording of one scenario for one
workspace. The form shows the brief's text and the placeholders the scenario
offers, and refuses a text the renderer could not fill from that scenario's
data (unknown placeholders, attribute access, unbalanced ``[[ … ]]``) — so a
saved template never silently falls back. Deleting (or deactivating) a row
brings the brief's wording back.

A ``NoteTemplate`` replaces the product's wording of the internal note for one
event (action, approval requested / approved / denied), for one action kind or
every kind. The form lists the event's placeholders and the product's wording,
refuses a placeholder the event does not offer (``note_template_validate``), and
the saved template is shown rendered from a sample action.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.http import HttpRequest
from django.utils.html import format_html, format_html_join

from ..errors import ValidationFailed
from ..models import NoteTemplate, PaymentFailure, PlaybookTemplate
from ..playbook import TEMPLATES, Scenario
from ..selectors.playbook_templates import SCENARIO_ROWS
from ..services.note_templates import (
    DEFAULT_BODIES,
    EVENT_PLACEHOLDERS,
    PLACEHOLDERS,
    note_preview,
    note_template_validate,
)
from ..services.playbook_templates import (
    placeholders_for,
    playbook_scenario_for,
    playbook_template_validate,
)


class PlaybookTemplateForm(forms.ModelForm):
    class Meta:
        model = PlaybookTemplate
        fields = ("workspace", "scenario", "variant", "body", "is_active")
        widgets = {"body": forms.Textarea(attrs={"rows": 6, "cols": 100})}

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        scenario, variant = data.get("scenario"), data.get("variant") or ""
        if not scenario:
            return data
        try:
            chosen = playbook_scenario_for(scenario=scenario, variant=variant)
        except ValidationFailed as exc:
            raise forms.ValidationError({"variant": exc.message}, code=exc.code) from exc
        if "body" in data:
            try:
                data["body"] = playbook_template_validate(scenario=chosen, body=data["body"])
            except ValidationFailed as exc:
                raise forms.ValidationError({"body": exc.message}, code=exc.code) from exc
        return data


@admin.register(PlaybookTemplate)
class PlaybookTemplateAdmin(admin.ModelAdmin):
    form = PlaybookTemplateForm
    list_display = ("workspace", "scenario", "variant", "is_active", "updated_by", "updated_at")
    list_filter = ("workspace", "scenario", "is_active")
    search_fields = ("body",)
    readonly_fields = ("default_wording", "updated_by", "updated_at")
    list_select_related = ("workspace", "updated_by")

    @admin.display(description="The brief's wording and placeholders")
    def default_wording(self, obj: PlaybookTemplate | None) -> str:
        rows = []
        for (scenario, variant), chosen in _rows():
            if obj is not None and obj.pk and (obj.scenario, obj.variant) != (scenario, variant):
                continue
            names = ", ".join("{" + n + "}" for n in placeholders_for(chosen))
            rows.append((TEMPLATES[chosen].title, TEMPLATES[chosen].text, names))
        return format_html(
            "<dl>{}</dl>",
            format_html_join(
                "", "<dt><strong>{}</strong></dt><dd>{}<br><em>Placeholders: {}</em></dd>", rows
            ),
        )

    def save_model(
        self, request: HttpRequest, obj: PlaybookTemplate, form: Any, change: bool
    ) -> None:
        obj.updated_by = request.user  # type: ignore[assignment]  # admin users are signed in
        super().save_model(request, obj, form, change)


def _rows() -> list[tuple[tuple[str, str], Scenario]]:
    return [(row, scenario) for scenario, row in SCENARIO_ROWS.items()]


class NoteTemplateForm(forms.ModelForm):
    class Meta:
        model = NoteTemplate
        fields = ("workspace", "kind", "event", "body", "is_active")
        widgets = {"body": forms.Textarea(attrs={"rows": 12, "cols": 100})}

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        event = data.get("event")
        if event and "body" in data:
            try:
                data["body"] = note_template_validate(event=event, body=data["body"])
            except ValidationFailed as exc:
                raise forms.ValidationError({"body": exc.message}, code=exc.code) from exc
        return data


@admin.register(NoteTemplate)
class NoteTemplateAdmin(admin.ModelAdmin):
    form = NoteTemplateForm
    list_display = ("workspace", "event", "kind_label", "is_active", "updated_by", "updated_at")
    list_filter = ("workspace", "event", "kind", "is_active")
    search_fields = ("body",)
    readonly_fields = ("preview", "placeholders", "default_wording", "updated_by", "updated_at")
    list_select_related = ("workspace", "updated_by")

    @admin.display(description="Action", ordering="kind")
    def kind_label(self, obj: NoteTemplate) -> str:
        return obj.get_kind_display() if obj.kind else "Every action"

    @admin.display(description="Preview (a sample action)")
    def preview(self, obj: NoteTemplate | None) -> str:
        if obj is None or not obj.pk:
            return "Save to see the note rendered from a sample action."
        try:
            text, warning = note_preview(kind=obj.kind, event=obj.event, body=obj.body)
        except ValidationFailed as exc:
            return exc.message
        if warning:
            return format_html("<pre>{}</pre><p><strong>{}</strong></p>", text, warning)
        return format_html("<pre>{}</pre>", text)

    @admin.display(description="Placeholders")
    def placeholders(self, obj: NoteTemplate | None) -> str:
        event = obj.event if obj is not None and obj.pk else NoteTemplate.Event.ACTION
        names = EVENT_PLACEHOLDERS.get(event, tuple(PLACEHOLDERS))
        rows = [("{" + name + "}", PLACEHOLDERS[name]) for name in names]
        return format_html(
            "<p>Text inside [[ … ]] is left out when a placeholder in it has no value.</p>"
            "<dl>{}</dl>",
            format_html_join("", "<dt><code>{}</code></dt><dd>{}</dd>", rows),
        )

    @admin.display(description="The product's wording")
    def default_wording(self, obj: NoteTemplate | None) -> str:
        events = [
            (value, label)
            for value, label in NoteTemplate.Event.choices
            if obj is None or not obj.pk or obj.event == value
        ]
        rows = [(label, DEFAULT_BODIES[value]) for value, label in events]
        return format_html(
            "<dl>{}</dl>",
            format_html_join("", "<dt><strong>{}</strong></dt><dd><pre>{}</pre></dd>", rows),
        )

    def save_model(self, request: HttpRequest, obj: NoteTemplate, form: Any, change: bool) -> None:
        obj.updated_by = request.user  # type: ignore[assignment]  # admin users are signed in
        super().save_model(request, obj, form, change)
        _text, warning = note_preview(kind=obj.kind, event=obj.event, body=obj.body)
        if warning:
            messages.warning(request, warning)


@admin.register(PaymentFailure)
class PaymentFailureAdmin(admin.ModelAdmin):
    """Written by the payment-failure workflow only: visible, never edited by hand."""

    list_display = (
        "failed_at",
        "workspace",
        "customer_id",
        "invoice_id",
        "reason",
        "attempt_count",
        "consecutive_count",
        "recovered_at",
        "recovered_by",
        "suspension_warning_sent_at",
        "csm_outreach_status",
    )
    list_filter = (
        "workspace",
        "reason_category",
        "recovered_by",
        "csm_outreach_status",
        "source",
    )
    search_fields = ("customer_id", "invoice_id", "charge_id", "payment_intent_id")
    date_hierarchy = "failed_at"
    list_select_related = ("workspace",)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
