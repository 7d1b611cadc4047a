"""Billing providers: ``get_provider(workspace)`` returns the one the workspace is set up for.

Providers are loaded by key from ``settings.BILLING_PROVIDERS`` (key → dotted path), like
the helpdesk connectors. An unknown key is an error, never a silent fall-back: before
issue 12 any value other than ``"stripe"`` went to the sandbox, so a misconfigured
workspace "refunded" without moving money and told the customer it had. The sandbox is
a simulation: it is served only where ``settings.BILLING_DESK_SANDBOX_ENABLED`` (the demo,
the tests) says so, and ``billing_app.checks`` refuses a deployment that has it otherwise.

A provider is a ``BillingProvider`` (``base``) that passes the provider contract suite
(``tests/billing_app/providers/contract``): adding one is a class here, its dotted path
in ``BILLING_PROVIDERS``, and one harness builder in that suite.
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING

from django.conf import settings
from django.utils.module_loading import import_string

from ..errors import ProviderError
from .base import BillingProvider

if TYPE_CHECKING:
    from ..models import Workspace

SANDBOX = "sandbox"


class ProviderNotConfigured(ProviderError):
    """The workspace names a provider this deployment does not serve; nothing was sent."""

    code = "provider_not_configured"
    status = 503


def sandbox_enabled() -> bool:
    return bool(getattr(settings, "BILLING_DESK_SANDBOX_ENABLED", False))


def registered_providers() -> dict[str, str]:
    """Key → dotted path of every provider this deployment serves (the sandbox only if enabled)."""
    registry = dict(getattr(settings, "BILLING_PROVIDERS", {}))
    if not sandbox_enabled():
        registry.pop(SANDBOX, None)
    return registry


@cache
def _load(key: str, dotted_path: str) -> type[BillingProvider]:
    cls = import_string(dotted_path)
    if not (isinstance(cls, type) and issubclass(cls, BillingProvider)) or cls.key != key:
        raise ProviderNotConfigured(
            f"{dotted_path} is not a BillingProvider with key {key!r}.",
            code="provider_not_configured",
        )
    return cls


def provider_class(key: str) -> type[BillingProvider]:
    """The provider class for ``key``; ``ProviderNotConfigured`` if it is unknown or disabled."""
    if key == SANDBOX and not sandbox_enabled():
        raise ProviderNotConfigured(
            "This workspace uses the sandbox (simulated billing), which is disabled in this "
            "deployment: no money would move. Switch the workspace to Stripe in the admin; "
            "nothing was sent.",
            details={"provider": key},
        )
    try:
        dotted_path = registered_providers()[key]
    except KeyError:
        raise ProviderNotConfigured(
            f"Unknown billing provider {key!r} for this workspace: configure one of "
            f"{', '.join(sorted(registered_providers())) or 'none'} in the admin; nothing was sent.",
            details={"provider": key},
        ) from None
    return _load(key, dotted_path)


def get_provider(workspace: Workspace) -> BillingProvider:
    """The workspace's provider, wrapped so every call is recorded as a ``ProviderCall``."""
    from .instrumented import InstrumentedProvider

    provider = provider_class(workspace.provider)(workspace)
    return InstrumentedProvider(provider)  # type: ignore[return-value]


__all__ = [
    "BillingProvider",
    "ProviderNotConfigured",
    "get_provider",
    "provider_class",
    "registered_providers",
    "sandbox_enabled",
]
