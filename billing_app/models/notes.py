"""A workspace's own wording for the internal notes Billing Desk posts, editable in admin."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from .audit import KIND_CHOICES
from .tenancy import Workspace


class NoteTemplate(models.Model):
    """The text of one internal note: for one action kind (or every kind) and one event.

    ``services.note_templates`` validates the ``{placeholder}`` names on save and
    renders the note; without an active template the product's wording is used.
    """

    class Event(models.TextChoices):
        ACTION = "action", "Action done, failed or held"
        APPROVAL_REQUESTED = "approval_requested", "Approval requested"
        APPROVAL_APPROVED = "approval_approved", "Approval granted"
        APPROVAL_DENIED = "approval_denied", "Approval denied"

    workspace = models.ForeignKey(
        Workspace, on_delete=models.CASCADE, related_name="note_templates"
    )
    # Blank: every kind without a template of its own.
    kind = models.CharField(max_length=32, choices=KIND_CHOICES, blank=True, default="")
    event = models.CharField(max_length=24, choices=Event.choices, default=Event.ACTION)
    body = models.TextField(
        help_text="The note. Use the event's {placeholders}; text inside [[ … ]] is left "
        "out when a placeholder in it has no value."
    )
    is_active = models.BooleanField(default=True)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["workspace", "event", "kind"]
        constraints = [
            models.UniqueConstraint(
                fields=["workspace", "kind", "event"], name="uniq_note_template"
            ),
        ]

    def __str__(self) -> str:
        kind = self.get_kind_display() if self.kind else "Every action"
        return f"{kind} · {self.get_event_display()} · {self.workspace}"
