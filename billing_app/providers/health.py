"""Whether a workspace's billing provider answers, as last observed (a short-lived cache entry).

Lives with the providers, not the services: the sandbox's down switch records it
(``providers.sandbox.control``) as much as the refresh and customer services do after
a call, and a provider must not import services. The panel reads it through
``provider_health_status`` to show mirrored data under a "provider unavailable" banner.
"""

from __future__ import annotations

from django.core.cache import cache
from django.utils import timezone

# How long an observed outage is remembered when nothing clears it.
PROVIDER_DOWN_SECONDS = 300


def _health_key(workspace_id: int) -> str:
    return f"billing-desk:provider-health:{workspace_id}"


def provider_health_record(*, workspace_id: int, available: bool) -> None:
    """Remember whether the workspace's provider answered; read by ``provider_health_status``."""
    if available:
        cache.delete(_health_key(workspace_id))
    else:
        cache.set(_health_key(workspace_id), timezone.now().isoformat(), PROVIDER_DOWN_SECONDS)


def provider_health_status(*, workspace_id: int) -> str:
    """``"unavailable"`` while a recent call found the provider down, else ``"ok"``."""
    return "unavailable" if cache.get(_health_key(workspace_id)) else "ok"


__all__ = ["PROVIDER_DOWN_SECONDS", "provider_health_record", "provider_health_status"]
