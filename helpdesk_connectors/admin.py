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

from .freshdesk import devices
from .models import DeviceCredential, DeviceEnrollment, Installation

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
    actions = ("end_app_sessions", "revoke_device_credentials")

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

    def has_revoke_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("helpdesk_connectors.change_devicecredential")

    @admin.action(
        description="End the app sessions of the selected installations",
        permissions=("change",),
    )
    def end_app_sessions(self, request: HttpRequest, queryset: QuerySet[Installation]) -> None:
        for installation in queryset:
            installation.bump_version()
        self.message_user(
            request,
            f"Ended the app sessions of {queryset.count()} installation(s); agents sign in again "
            "on their next panel load.",
            messages.SUCCESS,
        )

    @admin.action(
        description="Revoke every Freshdesk device credential of the selected installations",
        permissions=("revoke",),
    )
    def revoke_device_credentials(
        self, request: HttpRequest, queryset: QuerySet[Installation]
    ) -> None:
        revoked = devices.credentials_revoke(
            DeviceCredential.objects.filter(installation__in=queryset)
        )
        for installation in queryset:  # sessions minted with those credentials end too
            installation.bump_version()
        self.message_user(
            request,
            f"Revoked {revoked} device credential(s) and ended the app sessions; every agent "
            "confirms their browser again with an emailed code.",
            messages.SUCCESS,
        )


@admin.register(DeviceCredential)
class DeviceCredentialAdmin(admin.ModelAdmin):
    """Freshdesk agents' enrolled browsers (issue 17). Nothing here reveals a credential: only
    its SHA-256 is stored, and it is not shown."""

    list_display = (
        "agent_id",
        "installation",
        "email_masked",
        "device_label",
        "created_at",
        "last_used_at",
        "expires",
        "state",
    )
    list_filter = ("installation", ("revoked_at", admin.EmptyFieldListFilter))
    search_fields = ("agent_id", "installation__domain", "email_masked")
    readonly_fields = (
        "installation",
        "agent_id",
        "email_masked",
        "device_label",
        "created_at",
        "last_used_at",
        "expires",
        "revoked_at",
    )
    exclude = ("digest", "email_digest", "expires_at")  # "expires" shows the effective end
    actions = ("revoke", "revoke_all_of_agent", "revoke_all_of_installation")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # issued by enrollment only

    def has_revoke_permission(self, request: HttpRequest) -> bool:
        # staff who may only view device credentials see no revoke action
        return request.user.has_perm("helpdesk_connectors.change_devicecredential")

    @admin.display(description="Expires")
    def expires(self, obj: DeviceCredential):
        return devices.expires_at(obj)

    @admin.display(description="State")
    def state(self, obj: DeviceCredential) -> str:
        from django.utils import timezone

        if obj.revoked_at:
            return "revoked"
        return "expired" if devices.expires_at(obj) <= timezone.now() else "in force"

    def _done(self, request: HttpRequest, revoked: int) -> None:
        self.message_user(
            request,
            f"Revoked {revoked} device credential(s). Those browsers need an emailed code again; "
            "a session already open ends within its 15 minutes.",
            messages.SUCCESS,
        )

    @admin.action(description="Revoke the selected device credentials", permissions=("revoke",))
    def revoke(self, request: HttpRequest, queryset: QuerySet[DeviceCredential]) -> None:
        self._done(request, devices.credentials_revoke(queryset))

    @admin.action(
        description="Revoke all device credentials of the selected agents",
        permissions=("revoke",),
    )
    def revoke_all_of_agent(
        self, request: HttpRequest, queryset: QuerySet[DeviceCredential]
    ) -> None:
        revoked = 0
        for installation_id, agent_id in set(queryset.values_list("installation_id", "agent_id")):
            revoked += devices.credentials_revoke(
                DeviceCredential.objects.filter(installation_id=installation_id, agent_id=agent_id)
            )
        self._done(request, revoked)

    @admin.action(
        description="Revoke all device credentials of the selected agents' installations",
        permissions=("revoke",),
    )
    def revoke_all_of_installation(
        self, request: HttpRequest, queryset: QuerySet[DeviceCredential]
    ) -> None:
        installations = set(queryset.values_list("installation_id", flat=True))
        self._done(
            request,
            devices.credentials_revoke(
                DeviceCredential.objects.filter(installation_id__in=installations)
            ),
        )


@admin.register(DeviceEnrollment)
class DeviceEnrollmentAdmin(admin.ModelAdmin):
    """Codes sent to Freshdesk agents: who asked, when, tries, locks (the codes are not shown)."""

    list_display = (
        "agent_id",
        "installation",
        "email_masked",
        "created_at",
        "expires_at",
        "attempts",
        "locked_until",
        "used_at",
        "send_failed_at",
        "released_at",
    )
    list_filter = ("installation",)
    search_fields = ("agent_id", "installation__domain")
    exclude = ("attempt_digest", "code_digest", "email_digest")
    actions = ("unlock",)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False  # the rows are a record; the form stays read-only

    def has_unlock_permission(self, request: HttpRequest) -> bool:
        # the model's change permission, though the form itself is read-only for everyone:
        # staff who may only view enrollments see no unlock action
        return request.user.has_perm("helpdesk_connectors.change_deviceenrollment")

    @admin.action(
        description="Lift the lock and reset the hourly code limit of the selected enrollments' "
        "agents",
        permissions=("unlock",),
    )
    def unlock(self, request: HttpRequest, queryset: QuerySet[DeviceEnrollment]) -> None:
        agents = set(queryset.values_list("installation_id", "agent_id"))
        for installation_id, agent_id in agents:
            devices.agent_release(installation_id, agent_id)
        self.message_user(
            request,
            f"Lifted the lock and reset the hourly code limit of {len(agents)} agent(s); their "
            "pending codes no longer work, so they ask for a new one.",
            messages.SUCCESS,
        )
