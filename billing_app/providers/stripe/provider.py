"""``StripeProvider``: the ``BillingProvider`` of a workspace connected to Stripe.

Assembled from one part per seam, each in its own module:

- ``core``: the key ``"stripe"``, the workspace's client, the expansions, what a write
  reports it changed;
- ``reads``: the customer bundle, email search, backfill pages, single re-reads;
- ``payments``: payment links, invoice resends, credits, refunds, the card-update page;
- ``subscriptions``: trial, pause/resume, cancel/undo, seats, discounts, grace periods;
- ``plan_changes``: proration previews, upgrades now, downgrades at the period end;
- ``customers``: tax ids and billing address;
- ``reconciliation``: finding the write of an action whose answer was lost;
- ``keys``: idempotency keys and action tags; ``concurrency``: parallel reads;
- ``client``: one function per remote call, over ``transport`` (sending, retries,
  refused / never sent / outcome unknown); ``readers``: pure reads of Stripe objects;
- the argument checks every provider shares: ``providers.arguments``.

Where the mirror is written: nowhere here. Every write returns its result with
``changes`` (the Stripe objects it created or changed, stamped with when the request
that returned them was sent), and the calling service stores them
(``services.mirror.mirror_provider_changes``) so the panel shows the result at once;
the webhook that follows re-reads the same object and changes nothing. **Reads**
(``fetch_customer_bundle``, ``find_customers_by_email``, ``list_objects``,
``retrieve_object``) only return objects; their callers decide what to store.

Idempotency: every write sends the caller's key (derived from the ``BillingAction``
id) as Stripe's ``Idempotency-Key``; an action of several writes derives one key per
step (``keys.step_key``), so a retry of the whole action replays each step.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ...errors import BillingDeskError
from .concurrency import run_concurrently
from .core import StripeCore
from .customers import StripeCustomers
from .payments import StripePayments
from .plan_changes import StripePlanChanges
from .reads import StripeReads
from .reconciliation import StripeReconciliation
from .subscriptions import StripeSubscriptions

# How independent reads run (``concurrency``); a benchmark may swap in a sequential
# runner here to measure what concurrency saves (the bundle is one wave of reads).
_run_concurrently = run_concurrently


class StripeProvider(
    StripeReads,
    StripePayments,
    StripeSubscriptions,
    StripePlanChanges,
    StripeCustomers,
    StripeReconciliation,
    StripeCore,
):
    """Stripe for one workspace: its own secret key, our pinned API version and transport."""

    @staticmethod
    def _concurrently(calls: dict[str, Callable[[], Any]]) -> dict[str, Any]:
        return _run_concurrently(calls)

    def ping(self) -> bool:
        try:
            self.api.balance_retrieve()
        except BillingDeskError:
            return False
        return True


__all__ = ["StripeProvider"]
