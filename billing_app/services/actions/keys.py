"""What makes one action run exactly once: its request fingerprint, the provider
idempotency key derived from its id, and the claim every taker of an open action makes."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.utils import timezone

from ...models import BillingAction


def setting_int(name: str, default: int) -> int:
    return int(getattr(settings, name, default))


def provider_retries() -> int:
    """Extra attempts after a ``ProviderUnavailable``, each with the same idempotency key."""
    return setting_int("BILLING_DESK_ACTION_PROVIDER_RETRIES", 2)


def provider_deadline_seconds() -> int:
    """Wall time after which ``Run.call`` stops retrying (one call in progress finishes)."""
    return setting_int("BILLING_DESK_ACTION_PROVIDER_DEADLINE_SECONDS", 20)


def stale_executing_before(now: datetime | None = None) -> datetime:
    """An ``executing`` action started before this is taken to have lost its worker."""
    return (now or timezone.now()) - timedelta(
        seconds=setting_int("BILLING_DESK_ACTION_STALE_SECONDS", 300)
    )


def action_claim(*, action_id: Any, status: str, started_at: datetime | None) -> bool:
    """Claim an open action for one taker: a conditional touch of ``started_at``.

    Every taker (a waiting duplicate, the stale takeover, the unknown-outcome resolver)
    claims the same way, so of any number racing for one action exactly one wins.
    """
    return bool(
        BillingAction.objects.filter(pk=action_id, status=status, started_at=started_at).update(
            started_at=timezone.now()
        )
    )


def provider_idempotency_key(action: BillingAction, step: str = "") -> str:
    """Deterministic per action (and per step, for kinds that make two writes)."""
    key = f"billing-desk-{action.id}-{action.kind}"
    return f"{key}-{step}" if step else key


def request_fingerprint(*, kind: str, customer_id: str, params: Mapping[str, Any]) -> str:
    """sha256 of kind + customer + canonical params: equal requests, equal fingerprints."""
    canonical = json.dumps(
        {"kind": kind, "customer_id": customer_id, "params": params},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=True,
        default=str,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()
