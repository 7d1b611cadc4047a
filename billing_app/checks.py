"""System checks naming every missing production setting (``billing.E00x``)."""

from __future__ import annotations

from django.conf import settings
from django.core.checks import Error, Tags, Warning, register
from django.core.exceptions import ImproperlyConfigured


@register(Tags.security)
def encryption_keys_valid(app_configs, **kwargs):
    """A malformed key breaks every read of a secret, so it is an error in every mode."""
    from cryptography.fernet import Fernet

    errors = []
    for position, key in enumerate(settings.FIELD_ENCRYPTION_KEYS, start=1):
        try:
            Fernet(key.encode())
        except (ValueError, TypeError):
            errors.append(
                Error(
                    f"BILLING_DESK_ENCRYPTION_KEYS: key #{position} is not a valid Fernet key.",
                    hint="Keys are 32 url-safe base64-encoded bytes, comma-separated, newest "
                    "first; `python manage.py generate_encryption_key` prints one.",
                    id="billing.E007",
                )
            )
    return errors


@register(Tags.security)
def production_settings(app_configs, **kwargs):
    """Production (DEBUG off, not under test) refuses to run without its settings.

    Each missing setting gets its own error naming the environment variable, so a
    deployment fails on ``manage.py check`` (and on every management command) with a
    list of what to set rather than on the first request that needs it.
    """
    errors = []
    if settings.DEBUG or getattr(settings, "TESTING", False):
        return errors
    try:
        secret_key = settings.SECRET_KEY
    except ImproperlyConfigured:  # Django refuses to hand out an empty SECRET_KEY
        secret_key = ""
    if not secret_key:
        errors.append(
            Error(
                "DJANGO_SECRET_KEY is not set.", hint="Set a long random value.", id="billing.E001"
            )
        )
    if not settings.FIELD_ENCRYPTION_KEYS:
        errors.append(
            Error(
                "BILLING_DESK_ENCRYPTION_KEYS is not set: secrets in the database cannot be encrypted.",
                hint="Run `python manage.py generate_encryption_key` and set the variable.",
                id="billing.E002",
            )
        )
    if not settings.ALLOWED_HOSTS:
        errors.append(Error("DJANGO_ALLOWED_HOSTS is not set.", id="billing.E003"))
    if settings.DATABASES["default"]["ENGINE"].endswith("sqlite3"):
        errors.append(
            Error(
                "DATABASE_URL is not set: production runs on PostgreSQL.",
                hint="postgres://user@host/db",
                id="billing.E004",
            )
        )
    if not settings.REDIS_URL:
        errors.append(
            Error(
                "REDIS_URL is not set: production needs Redis for Celery and the cache.",
                id="billing.E005",
            )
        )
    if settings.DEMO_MODE:
        errors.append(
            Error(
                "BILLING_DESK_DEMO is on with DEBUG off: the demo connector mints sessions for any role.",
                hint="Unset BILLING_DESK_DEMO in production.",
                id="billing.E006",
            )
        )
    if settings.PUBLIC_BASE_URL.startswith("http://"):
        errors.append(
            Warning(
                "BILLING_DESK_PUBLIC_URL is not https: helpdesks require TLS for app frames.",
                id="billing.W001",
            )
        )
    return errors


@register(Tags.security)
def production_providers(app_configs, **kwargs):
    """Production (DEBUG off, not under test) never serves the sandbox (issue 12).

    The sandbox simulates billing: a workspace on it "refunds" without moving money and
    still tells the customer it did. ``billing.E010``: the sandbox is enabled or registered;
    ``billing.E011``: a workspace names a provider this deployment does not serve (the
    sandbox, or an unknown key). The second reads the database, so it is skipped while
    the tables do not exist yet (first ``migrate``); ``get_provider`` refuses at run time too.
    """
    from django.db import DatabaseError

    from .providers import SANDBOX, registered_providers, sandbox_enabled

    if settings.DEBUG or getattr(settings, "TESTING", False):
        return []
    if sandbox_enabled() or SANDBOX in getattr(settings, "BILLING_PROVIDERS", {}):
        return [
            Error(
                "The sandbox billing provider (simulated billing, no money moves) is enabled "
                "with DEBUG off.",
                hint="Unset BILLING_DESK_SANDBOX_ENABLED (and BILLING_DESK_DEMO) in production; "
                "only the demo and the tests use the sandbox.",
                id="billing.E010",
            )
        ]
    from .models import Workspace

    try:
        unserved = list(
            Workspace.objects.exclude(provider__in=list(registered_providers()))
            .order_by("slug")
            .values_list("slug", "provider")[:20]
        )
    except DatabaseError:  # no tables yet: nothing can be misconfigured
        return []
    if not unserved:
        return []
    named = ", ".join(f"{slug} ({provider or 'no provider'})" for slug, provider in unserved)
    return [
        Error(
            f"Workspaces on a provider this deployment does not serve: {named}.",
            hint="Switch them to stripe (with a secret key) in the admin, or deactivate and "
            "delete them; sandbox workspaces never move money.",
            id="billing.E011",
        )
    ]


# Mail backends that deliver nowhere a customer can read (card-update prompts, issue 18).
_LOCAL_EMAIL_BACKENDS = ("console", "dummy", "locmem", "filebased")


@register()
def card_prompts_email(app_configs, **kwargs):
    """``billing.W021``: a workspace sends card-update prompts (DEBUG off, not under test)
    while Django's email backend delivers nowhere, or from a ``localhost`` address."""
    from django.db import DatabaseError

    if settings.DEBUG or getattr(settings, "TESTING", False):
        return []
    from .models import Workspace

    try:
        enabled = Workspace.objects.filter(is_active=True, card_prompts_enabled=True).exists()
    except DatabaseError:  # no tables yet
        return []
    backend = settings.EMAIL_BACKEND.rsplit(".", 2)[-2] if "." in settings.EMAIL_BACKEND else ""
    local_from = settings.DEFAULT_FROM_EMAIL.rstrip(">").endswith("@localhost")
    if not enabled or (backend not in _LOCAL_EMAIL_BACKENDS and not local_from):
        return []
    return [
        Warning(
            "Card-update prompts are enabled, but emails go to the "
            f"{backend or settings.EMAIL_BACKEND} backend or from {settings.DEFAULT_FROM_EMAIL}: "
            "customers will not receive them.",
            hint="Set DJANGO_EMAIL_BACKEND (SMTP or a provider's backend) and "
            "DJANGO_DEFAULT_FROM_EMAIL, or turn the workspace's card prompts off.",
            id="billing.W021",
        )
    ]


@register()
def billing_widget_ready(app_configs, **kwargs):
    """``billing.W031``: an enabled billing help widget that cannot answer anyone (no identity
    secret, or no allowed origin), so the product's pages would show nothing, or whose
    "contact support" no helpdesk can take (no active installation whose connector opens
    tickets: the widget refuses contacts with ``no_helpdesk``) (issue 18)."""
    from django.db import DatabaseError

    from .models import BillingWidget
    from .selectors.widget import widget_origins
    from .services.widget.contact import widget_helpdesk_ready

    try:
        widgets = list(
            BillingWidget.objects.filter(enabled=True, workspace__is_active=True)
            .select_related("workspace")
            .order_by("workspace__slug")  # the warnings in a stable order
        )
    except DatabaseError:  # no tables yet
        return []
    problems = []
    for widget in widgets:
        missing = [
            what
            for what, present in (
                ("an identity secret", bool(widget.identity_secret)),
                ("an allowed origin", bool(widget_origins(widget))),
            )
            if not present
        ]
        if missing:
            problems.append(
                Warning(
                    f"The billing widget of workspace {widget.workspace.slug!r} is enabled "
                    f"without {' and '.join(missing)}: it answers nobody.",
                    hint="In Django admin → Billing widgets, add the product's origins and use "
                    "the action “Generate a new identity secret”.",
                    id="billing.W031",
                )
            )
        elif not widget_helpdesk_ready(workspace=widget.workspace):
            problems.append(
                Warning(
                    f"The billing widget of workspace {widget.workspace.slug!r} is enabled but "
                    "no active helpdesk installation of the workspace can open tickets: its "
                    "“Contact support” is refused (no_helpdesk).",
                    hint="Link an active Zendesk or Freshdesk installation (with API "
                    "credentials) to the workspace in Django admin → Workspaces.",
                    id="billing.W031",
                )
            )
    return problems
