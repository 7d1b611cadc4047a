"""What every part of ``StripeProvider`` shares: the workspace's client, the expansions,
and how a write reports what it changed.

A write never stores anything: it returns its result with ``changes`` — the Stripe
objects it created or changed, stamped with when the request that returned them was
sent (``stripe_call_started``) — and the calling service writes them into the mirror
(``services.mirror.mirror_provider_changes``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ...errors import BillingDeskError, PreconditionFailed, ProviderError
from ...subscriptions import is_live
from ..base import BalanceChange, BillingProvider, ProviderChanges
from . import concurrency
from .client import StripeApi, stripe_call_started, stripe_client_get

if TYPE_CHECKING:
    from ...models import Workspace

logger = logging.getLogger(__name__)

Obj = dict[str, Any]

# What the panel needs expanded on each object (max four levels deep, Stripe's limit).
# Subscription items always carry their full Price; it is not expandable.
CUSTOMER_EXPAND = ["tax_ids", "discount.source.coupon"]
SUBSCRIPTION_EXPAND = ["discounts.source.coupon"]
INVOICE_EXPAND = ["payments"]
CHARGE_EXPAND = ["refunds"]
# A plan change tells the plan item from add-ons by the product's ``addon`` metadata.
PLAN_CHANGE_EXPAND = ["items.data.price.product"]


class StripeCore(BillingProvider):
    """Stripe for one workspace: its own secret key, our pinned API version and transport."""

    key = "stripe"

    def __init__(self, workspace: Workspace, api: StripeApi | None = None):
        super().__init__(workspace)
        if api is None:
            secret = workspace.stripe_secret_key
            if not secret:
                raise ProviderError(
                    "This workspace has no Stripe secret key.",
                    code="provider_not_configured",
                    status=503,
                )
            api = StripeApi(stripe_client_get(workspace_id=workspace.pk, api_key=secret))
        self.api = api

    @staticmethod
    def _concurrently(calls: dict[str, Callable[[], Any]]) -> dict[str, Any]:
        return concurrency.run_concurrently(calls)

    @staticmethod
    def _changed(*objects: Obj | None, balances: tuple[BalanceChange, ...] = ()) -> ProviderChanges:
        """The objects a write changed, stamped with the latest request's send time: a
        write's answer is ordered against re-reads by it."""
        return ProviderChanges(
            objects=tuple(obj for obj in objects if obj),
            read_at=stripe_call_started(),
            balances=balances,
        )

    def _reread_quietly(self, resource: str, object_id: str) -> Obj | None:
        """The object's state after a write, for the mirror; a failed read is not an error."""
        try:
            return self.retrieve_object(resource, object_id)
        except BillingDeskError:
            logger.warning("re-read of %s %s after a write failed", resource, object_id)
            return None

    def _live_subscription(self, subscription_id: str, *, expand: list[str] | None = None) -> Obj:
        subscription = self.api.subscription_retrieve(subscription_id, expand=expand)
        if not is_live(subscription.get("status")):
            raise PreconditionFailed(
                "This subscription has ended.",
                code="subscription_not_active",
                details={"status": subscription.get("status")},
            )
        return subscription
