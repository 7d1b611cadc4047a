"""What a subscription's next renewal will invoice, from the mirrored rows.

The figures come from the one rule, ``billing_app.invoice_rules`` (Stripe's upcoming
invoice, shared with the panel's context): the items due at the renewal (an item on
another cycle is billed at its own period end), a change scheduled for the renewal
priced at its new price, the running discounts (percentages and amounts off; a
``once`` coupon only until an invoice consumes it), then tax. The tax rate is the
subscription's exclusive tax rates when its mirrored JSON names them, else the rate
the caller observed (the investigated invoice's effective rate: automatic tax, or
rates set on the invoices). Before any credit balance. The mirror keeps no pending
invoice items, so none are counted.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from ...invoice_rules import (
    RenewalItem,
    ScheduledPrice,
    discount_view_from_mirror,
    exclusive_tax_rate,
    next_invoice_amounts,
    renewal_at,
    renews,
)
from ...models import (
    MirrorDiscount,
    MirrorPrice,
    MirrorSubscription,
    MirrorSubscriptionItem,
    Workspace,
)
from ...money import money_json
from ...subscriptions import item_view_from_mirror, price_view_from_mirror

Obj = dict[str, Any]


def _scheduled(workspace: Workspace, sub: MirrorSubscription) -> ScheduledPrice | None:
    """A price change scheduled for the renewal (the item and its new price), if any."""
    meta = sub.metadata or {}
    pending_item, pending_price = meta.get("pending_item_id"), meta.get("pending_price_id")
    if not pending_item or not pending_price:
        return None
    target = MirrorPrice.objects.filter(workspace=workspace, stripe_id=pending_price).first()
    return ScheduledPrice(str(pending_item), price_view_from_mirror(target)) if target else None


def _tax_rate(sub: MirrorSubscription, observed: Decimal | None) -> Decimal | None:
    data = sub.data or {}
    own = exclusive_tax_rate(data.get("default_tax_rates") or [])
    return own if own is not None else observed


def subscription_renewal(sub: MirrorSubscription, items: Sequence[RenewalItem]) -> datetime | None:
    """When the subscription's next renewal invoices, or ``None`` when none will.

    None: no renewal date (ended), or the renewal does not invoice (ending at or before
    it, or paused with its invoices voided) — ``invoice_rules.renews``.
    """
    when = renewal_at(
        status=sub.status,
        trial_end=sub.trial_end,
        item_period_ends=[i.period_end for i in items],
        period_end=sub.current_period_end,
    )
    if when is None or not renews(
        status=sub.status,
        cancel_at_period_end=sub.cancel_at_period_end,
        cancel_at=sub.cancel_at,
        renewal=when,
        pause_behavior=(sub.pause_collection or {}).get("behavior"),
    ):
        return None
    return when


def next_invoice_estimate(
    *, workspace: Workspace, subscription_id: str, tax_rate: Decimal | None = None
) -> Obj | None:
    """What the subscription's next renewal will invoice (before any credit balance).

    ``tax_rate`` is the observed rate, used when the subscription names no tax rates.
    """
    sub = MirrorSubscription.objects.filter(workspace=workspace, stripe_id=subscription_id).first()
    if sub is None:
        return None
    rows = list(
        MirrorSubscriptionItem.objects.filter(workspace=workspace, subscription_id=sub.stripe_id)
    )
    if not rows:
        return None
    items = [RenewalItem(item_view_from_mirror(r), r.current_period_end) for r in rows]
    when = subscription_renewal(sub, items)
    if when is None:
        return None
    currency = (sub.currency or rows[0].currency or workspace.base_currency).upper()
    discounts = MirrorDiscount.objects.filter(
        workspace=workspace, subscription_id=sub.stripe_id, active=True
    ).order_by("start", "stripe_id")
    period_starts = [r.current_period_start for r in rows if r.current_period_start]
    estimate = next_invoice_amounts(
        items=items,
        renews_at=when,
        period_start=min(period_starts) if period_starts else sub.current_period_start,
        currency=currency,
        trialing=sub.status == "trialing",
        discounts=[discount_view_from_mirror(d) for d in discounts],
        scheduled=_scheduled(workspace, sub),
        tax_rate=_tax_rate(sub, tax_rate),
    )
    return {
        "date": when.date().isoformat(),
        "subtotal": money_json(estimate.subtotal, currency),
        "discount": money_json(estimate.discount, currency),
        "tax": money_json(estimate.tax, currency),
        "total": money_json(estimate.total, currency),
        "amount": money_json(estimate.total, currency),
        "subscription_id": sub.stripe_id,
    }
