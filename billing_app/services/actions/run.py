"""One execution's provider calls: the provider, the keys, bounded retries, time spent.

``get_provider`` is looked up here and only here (tests wrap it to spy on calls).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any, TypeVar

from ...errors import BillingDeskError, ProviderOutcomeUnknown, ProviderUnavailable
from ...models import BillingAction, Workspace
from ...providers import get_provider
from ...providers.base import BillingProvider
from ..mirror import mirror_provider_changes
from .keys import provider_deadline_seconds, provider_idempotency_key, provider_retries
from .preconditions import Prepared

log = logging.getLogger(__name__)
T = TypeVar("T")


def action_provider(workspace: Workspace) -> BillingProvider:
    """The workspace's billing provider (``BillingDeskError`` when it is not configured)."""
    return get_provider(workspace)


class Run:
    """One execution: the provider, the keys, and the time spent in provider calls.

    ``recorded`` holds what the executor learned before its write (the MRR change of a
    plan or seat change): kept on the action even when the write's outcome is unknown,
    so reconciliation records it with whatever the provider is found to have done.
    """

    def __init__(self, action: BillingAction, prepared: Prepared | None, provider: BillingProvider):
        self.action = action
        self.prepared: Prepared = prepared  # type: ignore[assignment]  # None only when reconciled
        self.provider = provider
        self.provider_ms = 0
        self.calls = 0
        self.recorded: dict[str, Any] = {}

    def call(self, fn: Callable[..., T], *, step: str = "", **kwargs: Any) -> T:
        """Call the provider; after ``ProviderUnavailable`` retry, bounded, with the same key.

        Once an attempt may have reached the provider (``ProviderOutcomeUnknown``),
        no later failure can prove that nothing happened — a refused connection, or
        the provider's own check finding the state our lost write already changed —
        so the call ends unknown unless a later attempt returns the result.
        """
        key = provider_idempotency_key(self.action, step)
        attempts = 1 + max(0, provider_retries())
        unknown: ProviderOutcomeUnknown | None = None
        # A bounded wall time for the retries: an agent is waiting, and an action left
        # running for minutes invites a second submission under a new key.
        deadline = time.monotonic() + provider_deadline_seconds()
        for attempt in range(1, attempts + 1):
            began = time.monotonic()
            try:
                self.calls += 1
                result = fn(idempotency_key=key, **kwargs)
                # Providers return what they changed; the mirror is written here (never raises).
                mirror_provider_changes(workspace=self.action.workspace, result=result)
                return result
            except ProviderUnavailable as exc:
                if isinstance(exc, ProviderOutcomeUnknown):
                    unknown = exc
                if attempt == attempts or time.monotonic() >= deadline:
                    if unknown is not None and unknown is not exc:
                        raise unknown from exc
                    raise
                log.info("provider unavailable for %s (attempt %s); retrying", key, attempt)
            except BillingDeskError as exc:
                if unknown is not None:
                    raise unknown from exc
                raise
            finally:
                self.provider_ms += int((time.monotonic() - began) * 1000)
        raise AssertionError("unreachable")
