"""System checks naming every missing production setting (``billing.E00x``)."""

from __future__ import annotations

from django.conf import settings
from django.core.checks import Error, Tags, Warning, register
from django.core.exceptions import ImproperlyConfigured


@register(Tags.security)
def encryption_keys_valid(app_configs, **kwargs):  # type: ignore[no-untyped-def]
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
def production_settings(app_configs, **kwargs):  # type: ignore[no-untyped-def]
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
