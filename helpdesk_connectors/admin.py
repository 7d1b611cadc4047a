"""Django admin for helpdesk installations.

Encrypted secrets are write-only here: a password input that never renders the
stored value, a status line ("Set, ends …abcd" / "Not set"), blank to keep what is
stored and a checkbox to clear it. ``SecretFieldsMixin`` is reused by the billing
admin for the workspace's Stripe secrets.
"""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from .models import Installation

# Changing any of these must end the installation's app sessions.
SESSION_FIELDS = frozenset(
    {
        "connector",
        "domain",
        "installation_id",
        "app_id",
        "public_key",
        "shared_secret",
        "clear_shared_secret",
        "is_active",
    }
)


def secret_status(value: str) -> str:
    """What the admin may see of a secret: whether it is set, and at most its last 4 characters."""
    if not value:
        return "Not set"
    if len(value) >= 16:
        return f"Set, ends …{value[-4:]}"
    return "Set"


class SecretFieldsMixin:
    """Form mixin turning the model's encrypted fields into write-only inputs.

    ``secret_fields`` names them; a declared ``clear_<name>`` BooleanField (optional)
    removes the stored value. Never put the stored value into ``initial``: the
    password widget does not render it, but ``initial`` would still travel in
    ``form.changed_data`` comparisons and templates.
    """

    secret_fields: tuple[str, ...] = ()

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for name in self.secret_fields:
            field = self.fields.get(name)
            if field is None:
                continue
            stored = getattr(self.instance, name, "") if self.instance.pk else ""
            self.initial[name] = ""
            field.widget = forms.PasswordInput(
                render_value=False, attrs={"autocomplete": "new-password", "size": 60}
            )
            field.required = False
            field.help_text = (
                f"{secret_status(stored)}. Leave blank to keep the stored value."
                if stored
                else "Not set."
            )

    def clean(self):
        cleaned = super().clean()
        for name in self.secret_fields:
            if name not in self.fields:
                continue
            stored = getattr(self.instance, name, "") if self.instance.pk else ""
            if cleaned.get(f"clear_{name}"):
                cleaned[name] = ""
            elif not (cleaned.get(name) or "").strip():
                cleaned[name] = stored
            else:
                cleaned[name] = cleaned[name].strip()
        return cleaned


class InstallationAdminForm(SecretFieldsMixin, forms.ModelForm):
    secret_fields = ("shared_secret", "api_token", "oauth_token")
    clear_shared_secret = forms.BooleanField(required=False, label="Clear the shared secret")
    clear_api_token = forms.BooleanField(required=False, label="Clear the API token")
    clear_oauth_token = forms.BooleanField(required=False, label="Clear the OAuth token")

    class Meta:
        model = Installation
        fields = [
            "connector",
            "domain",
            "installation_id",
            "app_id",
            "is_active",
            "public_key",
            "shared_secret",
            "api_email",
            "api_token",
            "oauth_token",
        ]

    def clean_domain(self) -> str:
        domain = self.cleaned_data["domain"].strip().lower()
        for scheme in ("https://", "http://"):
            domain = domain.removeprefix(scheme)
        return domain.rstrip("/")


@admin.register(Installation)
class InstallationAdmin(admin.ModelAdmin):
    form = InstallationAdminForm
    list_display = (
        "domain",
        "connector",
        "installation_id",
        "app_id",
        "is_active",
        "credentials",
        "version",
        "updated_at",
    )
    list_filter = ("connector", "is_active")
    search_fields = ("domain", "installation_id", "app_id")
    readonly_fields = ("version", "public_key_fetched_at", "created_at", "updated_at")
    fieldsets = (
        (None, {"fields": ("connector", "domain", "installation_id", "app_id", "is_active")}),
        (
            "Verifying the app frame",
            {
                "description": "Zendesk: the app's public key (fetched with the app id when "
                "blank). Freshdesk: the secret the request template sends.",
                "fields": (
                    "public_key",
                    "public_key_fetched_at",
                    "shared_secret",
                    "clear_shared_secret",
                ),
            },
        ),
        (
            "Helpdesk API (reading agents' roles, posting notes)",
            {
                "fields": (
                    "api_email",
                    "api_token",
                    "clear_api_token",
                    "oauth_token",
                    "clear_oauth_token",
                )
            },
        ),
        ("App sessions", {"fields": ("version", "created_at", "updated_at")}),
    )
    actions = ("end_app_sessions",)

    @admin.display(description="Secrets")
    def credentials(self, obj: Installation) -> str:
        return (
            f"shared secret: {secret_status(obj.shared_secret).lower()}; "
            f"API token: {secret_status(obj.api_token).lower()}; "
            f"OAuth: {secret_status(obj.oauth_token).lower()}"
        )

    def save_model(self, request: HttpRequest, obj: Installation, form, change: bool) -> None:
        if not change:
            obj.save()
            return
        # ``version`` is bumped with F() elsewhere; never write back the value read here.
        obj.save(
            update_fields=[
                f.name
                for f in obj._meta.concrete_fields
                if f.name not in {"id", "version", "created_at"}
            ]
        )
        if SESSION_FIELDS & set(form.changed_data):
            obj.bump_version()

    @admin.action(description="End the app sessions of the selected installations")
    def end_app_sessions(self, request: HttpRequest, queryset: QuerySet[Installation]) -> None:
        for installation in queryset:
            installation.bump_version()
        self.message_user(
            request,
            f"Ended the app sessions of {queryset.count()} installation(s); agents sign in again "
            "on their next panel load.",
            messages.SUCCESS,
        )
