"""Stripe plan changes: the proration preview, an upgrade invoiced at once, and a downgrade
scheduled for the period end on a subscription schedule.

Which item changes and whether the change is allowed come from the rulebook
(``billing_app.subscriptions``), the same rules the actions, the panel and the sandbox use.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ...errors import PreconditionFailed
from ...money import Money
from ...subscriptions import (
    item_view_from_stripe,
    plan_change_check,
    plan_change_direction,
    plan_item_required,
    price_view_from_stripe,
)
from ..base import PlanChangePreview, PlanChangeResult
from . import readers as r
from .core import PLAN_CHANGE_EXPAND, StripeCore
from .keys import action_meta, key_required, step_key

Obj = dict[str, Any]


class StripePlanChanges(StripeCore):
    def _plan_change_inputs(
        self, subscription_id: str, new_price_id: str
    ) -> tuple[Obj, Obj, Obj, str]:
        """The subscription, the item the change replaces, the new price and the direction,
        by the rulebook (``billing_app.subscriptions``): the item selling the new price's
        product, else the largest non-add-on item — never an add-on, told apart by its
        product's ``addon`` metadata (the products come expanded)."""
        api = self.api
        fetched = self._concurrently(
            {
                "subscription": lambda: api.subscription_retrieve(
                    subscription_id, expand=PLAN_CHANGE_EXPAND
                ),
                "price": lambda: api.price_retrieve(new_price_id),
            }
        )
        subscription, price = fetched["subscription"], fetched["price"]
        new = price_view_from_stripe(price)
        item = plan_item_required(
            r.subscription_items(subscription), item_view_from_stripe, new_product=new.product_id
        )
        current = item_view_from_stripe(item)
        plan_change_check(status=subscription.get("status"), current=current.price, new=new)
        direction = plan_change_direction(current=current.price, new=new, quantity=current.quantity)
        return subscription, item, price, direction

    def preview_plan_change(
        self, *, subscription_id: str, new_price_id: str, at: datetime | None = None
    ) -> PlanChangePreview:
        """Upgrades are previewed with ``invoices.create_preview`` (the proration Stripe will
        invoice now); a downgrade changes nothing before the period ends, so it has no
        proration to preview."""
        subscription, item, price, direction = self._plan_change_inputs(
            subscription_id, new_price_id
        )
        currency = str(price.get("currency") or "").upper()
        new_recurring = r.recurring_amount_after(subscription, item["id"], price)
        period_end = r.ts(r.subscription_period_end(subscription))
        if direction == "downgrade":
            return PlanChangePreview(
                subscription_id=subscription_id,
                current_price_id=r.ref(item.get("price")),
                new_price_id=new_price_id,
                direction="downgrade",
                lines=[],
                amount_due_now=Money(0, currency),
                new_recurring_amount=new_recurring,
                effective_date=period_end or self.now(),
                proration_date=None,
            )
        proration_date = (at or self.now()).replace(microsecond=0)
        preview = self.api.invoice_create_preview(
            {
                "subscription": subscription_id,
                "subscription_details": {
                    "items": [{"id": item["id"], "price": new_price_id}],
                    "proration_date": r.unix(proration_date),
                    "proration_behavior": "always_invoice",
                },
            }
        )
        lines = r.proration_lines(preview)
        return PlanChangePreview(
            subscription_id=subscription_id,
            current_price_id=r.ref(item.get("price")),
            new_price_id=new_price_id,
            direction="upgrade",
            lines=lines,
            amount_due_now=Money(sum(line.amount.amount for line in lines), currency),
            new_recurring_amount=new_recurring,
            effective_date=proration_date,
            proration_date=proration_date,
        )

    def change_plan(
        self,
        *,
        subscription_id: str,
        new_price_id: str,
        proration_date: datetime | None,
        idempotency_key: str,
    ) -> PlanChangeResult:
        key = key_required(idempotency_key)
        subscription, item, price, direction = self._plan_change_inputs(
            subscription_id, new_price_id
        )
        if direction == "upgrade":
            params: dict[str, Any] = {
                "items": [{"id": item["id"], "price": new_price_id}],
                "proration_behavior": "always_invoice",
                "expand": ["latest_invoice"],
                **action_meta(key),
            }
            if proration_date is not None:
                params["proration_date"] = r.unix(proration_date)
            updated = self.api.subscription_update(subscription_id, params, key=key)
            invoice = updated.get("latest_invoice")
            invoice = invoice if isinstance(invoice, dict) else None
            return PlanChangeResult(
                subscription_id=subscription_id,
                direction="upgrade",
                new_price_id=new_price_id,
                effective_date=proration_date or self.now(),
                invoice_id=r.ref(invoice),
            ).with_changes(
                self._changed(
                    {**updated, "latest_invoice": r.ref(invoice)} if invoice else updated, invoice
                )
            )
        return self._schedule_downgrade(subscription, item, price, key=key)

    def _schedule_downgrade(
        self, subscription: Obj, item: Obj, price: Obj, *, key: str
    ) -> PlanChangeResult:
        """Two phases on a subscription schedule: the current items until the period ends,
        then the new price; the schedule releases the subscription after that phase."""
        subscription_id = subscription["id"]
        period_end = r.subscription_period_end(subscription)
        if not period_end:
            raise PreconditionFailed("The subscription has no current period.", code="no_period")
        schedule_id = r.ref(subscription.get("schedule"))
        if schedule_id:
            schedule = self.api.subscription_schedule_retrieve(schedule_id)
        else:
            schedule = self.api.subscription_schedule_create(
                {"from_subscription": subscription_id}, key=step_key(key, "schedule")
            )
        start = r.schedule_phase_start(schedule) or r.subscription_period_start(subscription)
        current_items = [
            {"price": r.ref(i.get("price")), "quantity": int(i.get("quantity") or 1)}
            for i in r.subscription_items(subscription)
        ]
        next_items = [
            {
                "price": price["id"] if i.get("id") == item["id"] else r.ref(i.get("price")),
                "quantity": int(i.get("quantity") or 1),
            }
            for i in r.subscription_items(subscription)
        ]
        interval, count = r.price_recurring(price)
        schedule = self.api.subscription_schedule_update(
            schedule["id"],
            {
                "end_behavior": "release",
                "proration_behavior": "none",
                **action_meta(key),
                "phases": [
                    {"items": current_items, "start_date": start, "end_date": period_end},
                    {
                        "items": next_items,
                        "duration": {"interval": interval, "interval_count": count},
                    },
                ],
            },
            key=step_key(key, "phases"),
        )
        changes = self._changed(self._reread_quietly("subscription", subscription_id))
        return PlanChangeResult(
            subscription_id=subscription_id,
            direction="downgrade",
            new_price_id=price["id"],
            effective_date=r.ts(period_end) or self.now(),
            schedule_id=schedule["id"],
        ).with_changes(changes)
