"""Billing providers: ``get_provider(workspace)`` returns the one the workspace is set up for."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .base import BillingProvider

if TYPE_CHECKING:
    from ..models import Workspace


def get_provider(workspace: Workspace) -> BillingProvider:
    if workspace.provider == "stripe":
        from .stripe.provider import StripeProvider

        return StripeProvider(workspace)
    from .sandbox.provider import SandboxProvider

    return SandboxProvider(workspace)


__all__ = ["BillingProvider", "get_provider"]
