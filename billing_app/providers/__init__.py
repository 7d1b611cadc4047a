"""Billing providers: ``get_provider(workspace)`` returns the one the workspace is set up for."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .base import BillingProvider

if TYPE_CHECKING:
    from ..models import Workspace


def get_provider(workspace: Workspace) -> BillingProvider:
    """The workspace's provider, wrapped so every call is recorded as a ``ProviderCall``."""
    from .instrumented import InstrumentedProvider

    provider: BillingProvider
    if workspace.provider == "stripe":
        from .stripe.provider import StripeProvider

        provider = StripeProvider(workspace)
    else:
        from .sandbox.provider import SandboxProvider

        provider = SandboxProvider(workspace)
    return InstrumentedProvider(provider)  # type: ignore[return-value]


__all__ = ["BillingProvider", "get_provider"]
