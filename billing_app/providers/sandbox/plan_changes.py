"""Plan changes: the prorated preview, an upgrade now or a downgrade at the period end.

The plan item, the checks and the direction come from the rulebook
(``billing_app.subscriptions``), with its one set of error codes. As Stripe does:

* an upgrade swaps the item's price at once and invoices the proration immediately
  (``proration_behavior=always_invoice``: the unused time on the old price credited,
  the remaining time on the new one charged, by seconds over the current period,
  with the subscription's pending invoice items swept into the same invoice). An
  upgrade to another billing interval resets the billing cycle: the unused time is
  credited and the new price's whole first period charged from now;
* a downgrade is scheduled for the period end (a subscription schedule, recorded as
  ``schedule`` plus ``metadata.pending_price_id`` / ``pending_change_at``) and applied
  when the sandbox clock passes it (``advance``);
* during a trial an upgrade changes the price at once, with nothing to prorate; a
  downgrade waits for the trial's end like any period end.
"""

from __future__ import annotations

from datetime import datetime
from functools import partial

from ...models import MirrorCustomer
from ...proration import period_end_after, proration_line
from ...subscriptions import (
    item_view_from_stripe,
    plan_change_check,
    plan_change_direction,
    plan_item_required,
    price_view_from_stripe,
)
from ..base import PlanChangePreview, PlanChangeResult, ProrationLine
from ..rules import ts as _ts
from . import objects
from .invoicing import SandboxInvoicing
from .items import subscription_items
from .state import Obj, _money


def _interval(price: Obj) -> tuple[str, int]:
    recurring = price.get("recurring") or {}
    return str(recurring.get("interval") or ""), int(recurring.get("interval_count") or 1)


class SandboxPlanChanges(SandboxInvoicing):
    def _plan_change(
        self, sub: Obj, new_price_id: str, at: datetime
    ) -> tuple[PlanChangePreview, Obj, Obj]:
        new_price = self._price(new_price_id)
        new_view = price_view_from_stripe(new_price)
        item = plan_item_required(
            subscription_items(sub),
            partial(item_view_from_stripe, addon_products=self._addon_products(sub)),
            new_product=new_view.product_id,
        )
        old_price = item["price"]
        current = price_view_from_stripe(old_price)
        plan_change_check(status=sub.get("status"), current=current, new=new_view)
        currency = current.currency
        qty = int(item.get("quantity") or 1)
        old_amount = int(old_price.get("unit_amount") or 0) * qty
        new_amount = int(new_price.get("unit_amount") or 0) * qty
        direction = plan_change_direction(current=current, new=new_view, quantity=qty)
        start = _ts(item.get("current_period_start")) or at
        end = _ts(item.get("current_period_end")) or at
        at = min(max(at, start), end)
        others = sum(
            int(i["price"].get("unit_amount") or 0) * int(i.get("quantity") or 0)
            for i in subscription_items(sub)
            if i["id"] != item["id"]
        )
        lines: list[ProrationLine] = []
        due_now = 0
        if direction == "downgrade":
            effective = end  # scheduled for the period end (a trial's end), as on Stripe
        elif sub.get("status") == "trialing":
            effective = at
        else:
            effective = at
            window = {"period_start": start, "period_end": end, "at": at}
            unused, credit = proration_line(
                "unused",
                name=objects.price_product_name(old_price),
                quantity=qty,
                amount=old_amount,
                **window,
            )
            lines = [
                ProrationLine(
                    description=str(p["description"]),
                    amount=_money(int(p["amount"]), currency),
                    period_start=_ts((p.get("period") or {}).get("start")),
                    period_end=_ts((p.get("period") or {}).get("end")),
                    proration=True,
                )
                for p in self._pending_items(str(sub["id"]))
            ]
            lines.append(
                ProrationLine(
                    description=unused,
                    amount=_money(credit, currency),
                    period_start=at,
                    period_end=end,
                    proration=True,
                )
            )
            if _interval(old_price) == _interval(new_price):
                remaining, debit = proration_line(
                    "remaining",
                    name=objects.price_product_name(new_price),
                    quantity=qty,
                    amount=new_amount,
                    **window,
                )
                lines.append(
                    ProrationLine(
                        description=remaining,
                        amount=_money(debit, currency),
                        period_start=at,
                        period_end=end,
                        proration=True,
                    )
                )
            else:  # a new billing cycle starts now: the new price's whole first period
                lines.append(
                    ProrationLine(
                        description=objects.recurring_line_description(new_price, qty),
                        amount=_money(new_amount, currency),
                        period_start=at,
                        period_end=period_end_after(at, new_price),
                        proration=False,
                    )
                )
            customer_row = MirrorCustomer.objects.filter(
                workspace=self.workspace, stripe_id=sub["customer"]
            ).first()
            balance = customer_row.balance if customer_row is not None else 0
            due_now = max(0, sum(line.amount.amount for line in lines) + balance)
        preview = PlanChangePreview(
            subscription_id=sub["id"],
            current_price_id=old_price["id"],
            new_price_id=new_price_id,
            direction=direction,  # type: ignore[arg-type]
            lines=lines,
            amount_due_now=_money(due_now, currency),
            new_recurring_amount=_money(others + new_amount, currency),
            effective_date=effective,
            proration_date=None if direction == "downgrade" else at,  # nothing to prorate
        )
        return preview, item, new_price

    def preview_plan_change(
        self, *, subscription_id: str, new_price_id: str, at: datetime | None = None
    ) -> PlanChangePreview:
        now = self._read()
        sub = self._live_subscription(subscription_id)
        preview, _, _ = self._plan_change(sub, new_price_id, at or now)
        return preview

    def change_plan(
        self,
        *,
        subscription_id: str,
        new_price_id: str,
        proration_date: datetime | None,
        idempotency_key: str,
    ) -> PlanChangeResult:
        def act(now: datetime) -> PlanChangeResult:
            sub = self._live_subscription(subscription_id)
            preview, item, new_price = self._plan_change(sub, new_price_id, proration_date or now)
            meta = dict(sub.get("metadata") or {})
            for key in ("pending_price_id", "pending_change_at", "pending_item_id"):
                meta.pop(key, None)
            if preview.direction == "downgrade":
                schedule_id = self._id("sub_sched", idempotency_key)
                meta.update(
                    pending_price_id=new_price_id,
                    pending_change_at=str(objects.unix(preview.effective_date)),
                    pending_item_id=item["id"],
                )
                sub["metadata"] = meta
                sub["schedule"] = schedule_id
                self._put(sub)
                return PlanChangeResult(
                    subscription_id=subscription_id,
                    direction="downgrade",
                    new_price_id=new_price_id,
                    effective_date=preview.effective_date,
                    schedule_id=schedule_id,
                )
            sub["metadata"] = meta
            sub["schedule"] = None
            old_price = item["price"]
            item["price"] = new_price
            if _interval(old_price) != _interval(new_price) and sub.get("status") != "trialing":
                at = preview.effective_date
                item["current_period_start"] = objects.unix(at)
                item["current_period_end"] = objects.unix(period_end_after(at, new_price))
                sub["billing_cycle_anchor"] = objects.unix(at)
            invoice_id = ""
            # The change's own two lines come last; the pending items before them are
            # swept into the invoice by _bill_now.
            own = preview.lines[-2:]
            if own:
                customer = self._customer(str(sub["customer"]))
                invoice = self._bill_now(
                    now=now,
                    key=idempotency_key,
                    customer=customer,
                    subscription=sub,
                    billing_reason="subscription_update",
                    lines=[
                        {
                            "description": line.description,
                            "amount": line.amount.amount,
                            "price": new_price if n else old_price,
                            "quantity": item.get("quantity"),
                            "item_id": item["id"],
                            "proration": line.proration,
                            "period_start": line.period_start,
                            "period_end": line.period_end,
                        }
                        for n, line in enumerate(own)
                    ],
                )
                invoice_id = invoice["id"]
            self._put(sub)
            return PlanChangeResult(
                subscription_id=subscription_id,
                direction=preview.direction,
                new_price_id=new_price_id,
                effective_date=preview.effective_date,
                invoice_id=invoice_id,
            )

        return self._write(
            "change_plan",
            idempotency_key,
            {
                "subscription_id": subscription_id,
                "new_price_id": new_price_id,
                "proration_date": proration_date,
            },
            act,
        )
