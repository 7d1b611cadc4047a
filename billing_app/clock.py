"""The one clock for billing arithmetic: the workspace's billing system's ``now()``.

Refund windows, renewals, trial ends and grace periods are measured against the time
of the billing system that holds the money. For Stripe that is real time; the sandbox
(a simulation for the demo and the tests) may run on a frozen or advanced clock, and
everything that reasons about its objects must see the same time it does.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from django.utils import timezone

if TYPE_CHECKING:
    from .models import Workspace


def billing_now(workspace: Workspace) -> datetime:
    """Now, as the workspace's billing provider sees it (real time if it has none)."""
    from .providers import ProviderNotConfigured, provider_class

    try:
        cls = provider_class(workspace.provider)
    except ProviderNotConfigured:
        return timezone.now()
    return cls.clock_now(workspace)


__all__ = ["billing_now"]
