"""System checks of the connector package (``helpdesk_connectors.E00x``)."""

from __future__ import annotations

from django.conf import settings
from django.core.checks import Error, Tags, register
from django.utils.module_loading import import_string

from .base import HelpdeskConnector
from .framing import freshworks_frame_origins_valid  # noqa: F401  (registers helpdesk_connectors.E005)


@register(Tags.security)
def demo_connector_off_in_production(app_configs, **kwargs):
    """The demo connector mints sessions for any role: refuse it on a non-DEBUG server."""
    if getattr(settings, "DEMO_MODE", False) and not settings.DEBUG:
        return [
            Error(
                "The demo connector is enabled (BILLING_DESK_DEMO) while DEBUG is off: "
                "anyone could sign in with any role.",
                hint="Unset BILLING_DESK_DEMO in production, or run the demo with DJANGO_DEBUG=1.",
                id="helpdesk_connectors.E001",
            )
        ]
    return []


@register()
def connectors_configured(app_configs, **kwargs):
    """Every entry of ``HELPDESK_CONNECTORS`` imports and is a connector with that key."""
    errors = []
    for key, dotted_path in getattr(settings, "HELPDESK_CONNECTORS", {}).items():
        try:
            cls = import_string(dotted_path)
        except ImportError as exc:
            errors.append(
                Error(
                    f"HELPDESK_CONNECTORS[{key!r}] cannot be imported: {exc}",
                    id="helpdesk_connectors.E002",
                )
            )
            continue
        if (
            not (isinstance(cls, type) and issubclass(cls, HelpdeskConnector))
            or getattr(cls, "key", None) != key
        ):
            errors.append(
                Error(
                    f"HELPDESK_CONNECTORS[{key!r}] = {dotted_path} is not a HelpdeskConnector with key {key!r}.",
                    id="helpdesk_connectors.E003",
                )
            )
    if not getattr(settings, "HELPDESK_SIGN_IN", ""):
        errors.append(
            Error(
                "HELPDESK_SIGN_IN is not set: entry views cannot hand verified agents to billing.",
                id="helpdesk_connectors.E004",
            )
        )
    return errors
