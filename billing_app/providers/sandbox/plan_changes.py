"""Plan changes: the plan item, the prorated preview, an upgrade now or a downgrade at the period end."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from ...errors import PreconditionFailed
from ...models import MirrorCustomer
from ..base import PlanChangePreview, PlanChangeResult, ProrationLine
from . import objects
from .invoicing import SandboxInvoicing
from .proration import prorate, proration_date_label
from .state import Obj, _money, _ts


def _monthly(unit_amount: int, quantity: int, price: Obj) -> Decimal:
    recurring = price.get("recurring") or {}
    count = int(recurring.get("interval_count") or 1)
    per = {"day": Decimal(365) / 12, "week": Decimal(52) / 12, "month": 1, "year": Decimal(1) / 12}
    factor = Decimal(per.get(recurring.get("interval") or "month", 1))
    return Decimal(unit_amount * quantity) * factor / count


def _is_addon(item: Obj) -> bool:
    product = (item.get("price") or {}).get("product")
    return isinstance(product, dict) and (product.get("metadata") or {}).get("addon") == "true"


def plan_item(subscription: Obj) -> Obj | None:
    """The subscription's plan item: its largest item that is not an add-on."""
    items = (subscription.get("items") or {}).get("data") or []
    candidates = [i for i in items if not _is_addon(i)] or items
    if not candidates:
        return None
    return max(
        candidates,
        key=lambda i: _monthly(
            int(i["price"].get("unit_amount") or 0), int(i["quantity"] or 0), i["price"]
        ),
    )


class SandboxPlanChanges(SandboxInvoicing):
    def _plan_change(
        self, sub: Obj, new_price_id: str, at: datetime
    ) -> tuple[PlanChangePreview, Obj, Obj]:
        item = plan_item(sub)
        if item is None:
            raise PreconditionFailed("The subscription has no plan item.", code="no_plan_item")
        new_price = self._price(new_price_id)
        old_price = item["price"]
        if new_price_id == old_price.get("id"):
            raise PreconditionFailed(
                "The subscription is already on this price.", code="same_price"
            )
        if not new_price.get("active", True) or not new_price.get("recurring"):
            raise PreconditionFailed(
                "The target price is not an active recurring price.", code="price_not_available"
            )
        if str(new_price.get("currency")).lower() != str(old_price.get("currency")).lower():
            raise PreconditionFailed(
                "The target price is in another currency.", code="currency_mismatch"
            )
        old_rec, new_rec = old_price.get("recurring") or {}, new_price.get("recurring") or {}
        if (old_rec.get("interval"), old_rec.get("interval_count")) != (
            new_rec.get("interval"),
            new_rec.get("interval_count"),
        ):
            raise PreconditionFailed(
                "Changing the billing interval is not supported here; choose a price with the "
                "same interval.",
                code="interval_change_unsupported",
            )
        currency = str(old_price["currency"]).upper()
        qty = int(item.get("quantity") or 1)
        old_amount = int(old_price.get("unit_amount") or 0) * qty
        new_amount = int(new_price.get("unit_amount") or 0) * qty
        direction = "upgrade" if new_amount >= old_amount else "downgrade"
        start = _ts(item.get("current_period_start")) or at
        end = _ts(item.get("current_period_end")) or at
        at = min(max(at, start), end)
        others = sum(
            int(i["price"].get("unit_amount") or 0) * int(i.get("quantity") or 0)
            for i in (sub.get("items") or {}).get("data") or []
            if i["id"] != item["id"]
        )
        lines: list[ProrationLine] = []
        due_now = 0
        if sub.get("status") == "trialing":
            effective = at
        elif direction == "downgrade":
            effective = end
        else:
            effective = at
            label = proration_date_label(at)
            old_name = objects.price_product_name(old_price)
            new_name = objects.price_product_name(new_price)
            qty_label = f"{qty} × " if qty != 1 else ""
            credit = -prorate(old_amount, period_start=start, period_end=end, at=at)
            debit = prorate(new_amount, period_start=start, period_end=end, at=at)
            lines = [
                ProrationLine(
                    description=f"Unused time on {qty_label}{old_name} after {label}",
                    amount=_money(credit, currency),
                    period_start=at,
                    period_end=end,
                    proration=True,
                ),
                ProrationLine(
                    description=f"Remaining time on {qty_label}{new_name} after {label}",
                    amount=_money(debit, currency),
                    period_start=at,
                    period_end=end,
                    proration=True,
                ),
            ]
            customer_row = MirrorCustomer.objects.filter(
                workspace=self.workspace, stripe_id=sub["customer"]
            ).first()
            balance = customer_row.balance if customer_row is not None else 0
            due_now = max(0, credit + debit + balance)
        preview = PlanChangePreview(
            subscription_id=sub["id"],
            current_price_id=old_price["id"],
            new_price_id=new_price_id,
            direction=direction,  # type: ignore[arg-type]
            lines=lines,
            amount_due_now=_money(due_now, currency),
            new_recurring_amount=_money(others + new_amount, currency),
            effective_date=effective,
            proration_date=at,
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
            if preview.direction == "downgrade" and sub.get("status") != "trialing":
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
            invoice_id = ""
            if preview.lines:
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
                            "proration": True,
                            "period_start": line.period_start,
                            "period_end": line.period_end,
                        }
                        for n, line in enumerate(preview.lines)
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
