"""Previews of what a change will invoice, after the same checks the change runs.

A plan change: the provider's proration preview. A seat change or a discount: the next
invoice with the change, from the mirror (see the section below).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal
from typing import Any

from dateutil.relativedelta import relativedelta
from django.utils.translation import gettext as _

from ...catalog import ActionKind
from ...clock import billing_now
from ...errors import NotFound
from ...invoice_rules import (
    DiscountView,
    PendingItem,
    RenewalItem,
    ScheduledPrice,
    discount_total,
    discount_view_from_mirror,
    exclusive_tax_rate,
    next_invoice_amounts,
)
from ...models import (
    MirrorDiscount,
    MirrorPrice,
    MirrorProduct,
    MirrorSubscription,
    MirrorSubscriptionItem,
)
from ...money import Money
from ...proration import proration_line
from ...providers.base import ProrationLine
from ...roles import user_has_workspace_perm
from ...selectors.breakdown.next_invoice import subscription_renewal
from ...subscriptions import period_amount, price_view_from_mirror
from ..identity import AgentContext
from .params import action_params_validate
from .preconditions import (
    Prepared,
    action_customer,
    action_prepare,
    mirror_item_views,
    subscription_items,
)
from .run import action_provider


def plan_change_preview(
    *, context: AgentContext, customer_id: str, subscription_id: str, price_id: str
) -> Any:
    """The provider's proration preview for a plan change, after the same checks the change runs."""
    workspace = context.workspace
    if not user_has_workspace_perm(context.user, "view_billing", workspace):
        raise NotFound(_("No such billing customer in this workspace."), code="customer_not_found")
    params = action_params_validate(
        kind=ActionKind.CHANGE_PLAN,
        params={"subscription_id": subscription_id, "price_id": price_id},
    )
    customer = action_customer(workspace, customer_id)
    action_prepare(
        kind=ActionKind.CHANGE_PLAN, workspace=workspace, customer=customer, params=params
    )
    return action_provider(workspace).preview_plan_change(
        subscription_id=params["subscription_id"], new_price_id=params["price_id"]
    )


# --- seat changes and discounts: the same next-invoice preview as a plan change ---------------
#
# Neither has a provider preview: a seat change's prorations (Stripe's create_prorations,
# which the sandbox simulates) go to the next invoice as pending items, and a discount
# changes what the next invoices bill. Both are computed from the mirror with the one
# next-invoice rule (``billing_app.invoice_rules``) and Stripe's proration arithmetic
# (``billing_app.proration``), after the same checks the action runs, so every
# refusal the server can predict is answered here, before Confirm.


@dataclass(frozen=True)
class NextInvoice:
    date: datetime
    subtotal: Money
    discount: Money
    tax: Money
    amount: Money


@dataclass(frozen=True)
class ChangePreview:
    """What a seat change or a discount does to the subscription's invoices."""

    subscription_id: str
    kind: str
    lines: list[ProrationLine]  # prorations the next invoice will carry
    amount_due_now: Money  # nothing is invoiced at once for either
    current_recurring_amount: Money
    new_recurring_amount: Money  # per billing period, after the change
    next_invoice: NextInvoice | None  # the next renewal with the change; None: it will not renew
    effective_date: datetime


def _reader(context: AgentContext, customer_id: str) -> None:
    if not user_has_workspace_perm(context.user, "view_billing", context.workspace):
        raise NotFound(_("No such billing customer in this workspace."), code="customer_not_found")


def _prepared(
    context: AgentContext, customer_id: str, kind: ActionKind, params: dict[str, Any]
) -> tuple[Prepared, dict[str, Any]]:
    workspace = context.workspace
    checked = action_params_validate(kind=kind, params=params)
    customer = action_customer(workspace, customer_id)
    prepared = action_prepare(kind=kind, workspace=workspace, customer=customer, params=checked)
    return prepared, checked


def _renewal(
    sub: MirrorSubscription,
    items: list[RenewalItem],
    *,
    currency: str,
    discounts: list[DiscountView],
    scheduled: ScheduledPrice | None,
    pending: list[PendingItem],
) -> NextInvoice | None:
    when = subscription_renewal(sub, items)
    if when is None:
        return None
    starts = [i.current_period_start for i in _rows(sub) if i.current_period_start]
    estimate = next_invoice_amounts(
        items=items,
        renews_at=when,
        period_start=min(starts) if starts else sub.current_period_start,
        currency=currency,
        trialing=sub.status == "trialing",
        discounts=discounts,
        scheduled=scheduled,
        pending=pending,
        tax_rate=exclusive_tax_rate((sub.data or {}).get("default_tax_rates") or []),
    )
    return NextInvoice(
        date=when,
        subtotal=Money(estimate.subtotal, currency),
        discount=Money(estimate.discount, currency),
        tax=Money(estimate.tax, currency),
        amount=Money(estimate.total, currency),
    )


def _rows(sub: MirrorSubscription) -> list[MirrorSubscriptionItem]:
    return subscription_items(sub.workspace, sub.stripe_id)


def _discounts(sub: MirrorSubscription) -> list[DiscountView]:
    rows = MirrorDiscount.objects.filter(
        workspace=sub.workspace, subscription_id=sub.stripe_id, active=True
    ).order_by("start", "stripe_id")
    return [discount_view_from_mirror(d) for d in rows]


def _scheduled(sub: MirrorSubscription) -> ScheduledPrice | None:
    meta = sub.metadata or {}
    item_id, price_id = meta.get("pending_item_id"), meta.get("pending_price_id")
    if not item_id or not price_id:
        return None
    target = MirrorPrice.objects.filter(workspace=sub.workspace, stripe_id=price_id).first()
    return ScheduledPrice(str(item_id), price_view_from_mirror(target)) if target else None


def _recurring(items: list[RenewalItem]) -> int:
    return sum(period_amount(i.view) for i in items)


def _currency(sub: MirrorSubscription, rows: list[MirrorSubscriptionItem]) -> str:
    return (sub.currency or (rows[0].currency if rows else "") or "USD").upper()


def seat_change_preview(
    *,
    context: AgentContext,
    customer_id: str,
    subscription_id: str,
    quantity: Any,
    item_id: str | None = None,
) -> ChangePreview:
    """The next invoice after a seat change: the prorations it will carry (unused time at
    the old count credited, the remaining time at the new count charged, by seconds of
    the current period), the new recurring amount and the renewal's date and total."""
    _reader(context, customer_id)
    params: dict[str, Any] = {"subscription_id": subscription_id, "quantity": quantity}
    if item_id:
        params["item_id"] = item_id
    prepared, checked = _prepared(context, customer_id, ActionKind.ADJUST_SEATS, params)
    sub, changed = prepared.subscription, prepared.item
    assert sub is not None and changed is not None
    new_qty = int(checked["quantity"])
    rows = _rows(sub)
    view = mirror_item_views(context.workspace, rows)
    currency = _currency(sub, rows)
    before = [RenewalItem(view(r), r.current_period_end) for r in rows]
    after = [
        RenewalItem(replace(i.view, quantity=new_qty), i.period_end)
        if r.stripe_id == changed.stripe_id
        else i
        for r, i in zip(rows, before, strict=True)
    ]
    now = billing_now(context.workspace)
    lines: list[ProrationLine] = []
    start, end = changed.current_period_start, changed.current_period_end
    if sub.status != "trialing" and start is not None and end is not None and start <= now < end:
        product = MirrorProduct.objects.filter(
            workspace=context.workspace, stripe_id=changed.product_id
        ).first()
        name = (product.name if product else "") or "seats"
        unit = changed.unit_amount or 0
        for side, count in (("unused", changed.quantity), ("remaining", new_qty)):
            text, amount = proration_line(
                side,  # type: ignore[arg-type]
                name=name,
                quantity=count,
                amount=unit * count,
                period_start=start,
                period_end=end,
                at=now,
            )
            lines.append(
                ProrationLine(
                    description=text,
                    amount=Money(amount, currency),
                    period_start=now,
                    period_end=end,
                    proration=True,
                )
            )
    return ChangePreview(
        subscription_id=sub.stripe_id,
        kind=ActionKind.ADJUST_SEATS.value,
        lines=lines,
        amount_due_now=Money(0, currency),
        current_recurring_amount=Money(_recurring(before), currency),
        new_recurring_amount=Money(_recurring(after), currency),
        next_invoice=_renewal(
            sub,
            after,
            currency=currency,
            discounts=_discounts(sub),
            scheduled=_scheduled(sub),
            pending=[PendingItem(amount=line.amount.amount) for line in lines],
        ),
        effective_date=now,
    )


def discount_preview(
    *,
    context: AgentContext,
    customer_id: str,
    subscription_id: str,
    percent_off: Any,
    duration: Any,
    duration_in_months: Any = None,
) -> ChangePreview:
    """The next invoice with the discount: the recurring amount it leaves (a ``once``
    discount leaves the recurring amount as it is and takes its share of the next
    invoice only) and the renewal's date and total."""
    _reader(context, customer_id)
    params: dict[str, Any] = {
        "subscription_id": subscription_id,
        "percent_off": percent_off,
        "duration": duration,
    }
    if duration_in_months not in (None, ""):
        params["duration_in_months"] = duration_in_months
    prepared, checked = _prepared(context, customer_id, ActionKind.APPLY_DISCOUNT, params)
    sub = prepared.subscription
    assert sub is not None
    rows = _rows(sub)
    view = mirror_item_views(context.workspace, rows)
    currency = _currency(sub, rows)
    items = [RenewalItem(view(r), r.current_period_end) for r in rows]
    now = billing_now(context.workspace)
    months = checked.get("duration_in_months")
    new = DiscountView(
        duration=checked["duration"],
        percent_off=Decimal(checked["percent_off"]),
        start=now,
        end=now + relativedelta(months=int(months)) if months else None,
    )
    recurring = _recurring(items)
    lasting = checked["duration"] != "once"
    return ChangePreview(
        subscription_id=sub.stripe_id,
        kind=ActionKind.APPLY_DISCOUNT.value,
        lines=[],
        amount_due_now=Money(0, currency),
        current_recurring_amount=Money(recurring, currency),
        new_recurring_amount=Money(
            recurring - (discount_total([new], recurring, currency) if lasting else 0), currency
        ),
        next_invoice=_renewal(
            sub,
            items,
            currency=currency,
            discounts=[*_discounts(sub), new],
            scheduled=_scheduled(sub),
            pending=[],
        ),
        effective_date=now,
    )
