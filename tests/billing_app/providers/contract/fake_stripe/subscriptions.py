"""Subscriptions and schedules: updates with Stripe's proration behaviours, cancellation."""

from __future__ import annotations

import copy
from decimal import ROUND_HALF_EVEN, Decimal

from .core import FakeCore
from .wire import Obj, StripeRefusal, listing, to_int, truthy


class FakeSubscriptions(FakeCore):
    # --- subscriptions ------------------------------------------------------------------------
    def subscriptions_list(self, params: Obj, expand: list[str]) -> Obj:
        found = [
            self.render(s, expand)
            for s in self.of("subscription")
            if (not params.get("customer") or s["customer"] == params["customer"])
            and (params.get("status") == "all" or s["status"] != "canceled")
        ]
        return listing("/v1/subscriptions", found, params)

    def subscription_retrieve(self, params: Obj, expand: list[str], sub_id: str) -> Obj:
        return self.render(self.get("subscription", sub_id), expand)

    def _period(self, sub: Obj) -> tuple[int, int]:
        item = sub["items"]["data"][0]
        return int(item["current_period_start"]), int(item["current_period_end"])

    def _prorate(self, amount: int, sub: Obj, at: int) -> int:
        start, end = self._period(sub)
        fraction = Decimal(max(min(end - at, end - start), 0)) / Decimal(end - start)
        return int((Decimal(amount) * fraction).quantize(Decimal(1), rounding=ROUND_HALF_EVEN))

    def _proration_lines(self, sub: Obj, changes: list[Obj], at: int) -> list[Obj]:
        """Credit the unused time of each changed item, charge the remaining time of its new state."""
        lines = []
        start, end = self._period(sub)
        for change in changes:
            item = next((i for i in sub["items"]["data"] if i["id"] == change.get("id")), None)
            if item is None:
                raise StripeRefusal(400, "invalid_request_error", "No such item.", param="items")
            old_price = self.objects[item["price"]["id"]]
            new_price = self.get("price", change.get("price") or old_price["id"])
            old_qty = int(item["quantity"])
            new_qty = int(change.get("quantity") or old_qty)
            for price, qty, sign, text in (
                (old_price, old_qty, -1, "Unused time on"),
                (new_price, new_qty, 1, "Remaining time on"),
            ):
                amount = sign * self._prorate(int(price["unit_amount"]) * qty, sub, at)
                lines.append(
                    self._line(
                        sub,
                        item["id"],
                        price,
                        qty,
                        amount,
                        f"{text} {qty} × {price['id']}",
                        at,
                        end,
                        proration=True,
                    )
                )
        return lines

    def _line(
        self,
        sub: Obj,
        item_id: str,
        price: Obj,
        qty: int,
        amount: int,
        text: str,
        start: int,
        end: int,
        *,
        proration: bool,
    ) -> Obj:
        return {
            "id": self.new_id("il"),
            "object": "line_item",
            "amount": amount,
            "currency": price["currency"],
            "description": text,
            "discount_amounts": [],
            "discountable": not proration,
            "discounts": [],
            "invoice": None,
            "livemode": False,
            "metadata": {},
            "parent": {
                "invoice_item_details": None,
                "subscription_item_details": {
                    "invoice_item": None,
                    "proration": proration,
                    "proration_details": {"credited_items": None},
                    "subscription": sub["id"],
                    "subscription_item": item_id,
                },
                "type": "subscription_item_details",
            },
            "period": {"end": end, "start": start},
            "pretax_credit_amounts": [],
            "pricing": {
                "price_details": {"price": price["id"], "product": price["product"]},
                "type": "price_details",
                "unit_amount_decimal": str(price["unit_amount"]),
            },
            "quantity": qty,
            "subtotal": amount,
            "taxes": [],
        }

    def _apply_items(self, sub: Obj, changes: list[Obj]) -> None:
        for change in changes:
            for item in sub["items"]["data"]:
                if item["id"] == change.get("id"):
                    if change.get("price"):
                        item["price"] = copy.deepcopy(self.get("price", change["price"]))
                    if change.get("quantity"):
                        item["quantity"] = int(change["quantity"])

    def subscription_update(self, params: Obj, expand: list[str], sub_id: str) -> Obj:
        sub = self.get("subscription", sub_id)
        if sub["status"] in {"canceled", "incomplete_expired"}:
            raise StripeRefusal(400, "invalid_request_error", "This subscription is canceled.")
        if "metadata" in params:
            merged = {**(sub.get("metadata") or {}), **params["metadata"]}
            sub["metadata"] = {k: v for k, v in merged.items() if v != ""}
        if "trial_end" in params:
            sub["trial_end"] = to_int(params["trial_end"])
        if "pause_collection" in params:
            pause = params["pause_collection"]
            sub["pause_collection"] = (
                None
                if pause == ""
                else {"behavior": pause["behavior"], "resumes_at": to_int(pause.get("resumes_at"))}
            )
        if "cancel_at_period_end" in params:
            canceling = truthy(params["cancel_at_period_end"])
            sub["cancel_at_period_end"] = canceling
            sub["cancel_at"] = self._period(sub)[1] if canceling else None
            sub["canceled_at"] = self.clock if canceling else None
        if "cancellation_details" in params:
            sub["cancellation_details"] = {
                **sub["cancellation_details"],
                **params["cancellation_details"],
            }
        if "discounts" in params:
            sub["discounts"] = [self._discount(sub, entry) for entry in params["discounts"]]
        if "items" in params:
            behavior = params.get("proration_behavior", "create_prorations")
            at = to_int(params.get("proration_date")) or self.clock
            lines = self._proration_lines(sub, params["items"], at) if behavior != "none" else []
            self._apply_items(sub, params["items"])
            if behavior == "always_invoice":
                invoice = self._invoice(sub, lines, billing_reason="subscription_update")
                sub["latest_invoice"] = invoice["id"]
            elif behavior == "create_prorations":
                self.pending.extend(lines)
        self.event("customer.subscription.updated", self.render(sub, []))
        return self.render(sub, expand)

    def _discount(self, sub: Obj, entry: Obj) -> str:
        if entry.get("discount"):
            return entry["discount"]
        coupon = self.get("coupon", entry["coupon"])
        discount = {
            "id": self.new_id("di"),
            "object": "discount",
            "checkout_session": None,
            "customer": sub["customer"],
            "end": None,
            "invoice": None,
            "invoice_item": None,
            "promotion_code": None,
            "source": {"coupon": copy.deepcopy(coupon), "type": "coupon"},
            "start": self.clock,
            "subscription": sub["id"],
            "subscription_item": None,
        }
        self.objects[discount["id"]] = discount
        return discount["id"]

    def subscription_cancel(self, params: Obj, expand: list[str], sub_id: str) -> Obj:
        sub = self.get("subscription", sub_id)
        if sub["status"] == "canceled":
            raise StripeRefusal(400, "invalid_request_error", "Already canceled.")
        sub.update(
            status="canceled",
            canceled_at=self.clock,
            ended_at=self.clock,
            cancel_at_period_end=False,
        )
        if "cancellation_details" in params:
            sub["cancellation_details"] = {
                **sub["cancellation_details"],
                **params["cancellation_details"],
            }
        self.event("customer.subscription.deleted", self.render(sub, []))
        return self.render(sub, expand)

    # --- schedules ----------------------------------------------------------------------------
    def schedule_create(self, params: Obj, expand: list[str]) -> Obj:
        sub = self.get("subscription", params["from_subscription"])
        start, end = self._period(sub)
        schedule = {
            "id": self.new_id("sub_sched"),
            "object": "subscription_schedule",
            "canceled_at": None,
            "completed_at": None,
            "created": self.clock,
            "current_phase": {"end_date": end, "start_date": start},
            "customer": sub["customer"],
            "end_behavior": "release",
            "livemode": False,
            "metadata": {},
            "phases": [
                {
                    "start_date": start,
                    "end_date": end,
                    "items": [
                        {"price": i["price"]["id"], "quantity": i["quantity"]}
                        for i in sub["items"]["data"]
                    ],
                }
            ],
            "released_at": None,
            "released_subscription": None,
            "status": "active",
            "subscription": sub["id"],
            "test_clock": None,
        }
        self.objects[schedule["id"]] = schedule
        sub["schedule"] = schedule["id"]
        return copy.deepcopy(schedule)

    def schedule_retrieve(self, params: Obj, expand: list[str], schedule_id: str) -> Obj:
        return copy.deepcopy(self.get("subscription_schedule", schedule_id))

    def schedule_update(self, params: Obj, expand: list[str], schedule_id: str) -> Obj:
        schedule = self.get("subscription_schedule", schedule_id)
        if "metadata" in params:
            schedule["metadata"] = {**schedule["metadata"], **params["metadata"]}
        if "end_behavior" in params:
            schedule["end_behavior"] = params["end_behavior"]
        if "phases" in params:
            phases = []
            for phase in params["phases"]:
                phases.append(
                    {
                        "start_date": to_int(phase.get("start_date")),
                        "end_date": to_int(phase.get("end_date")),
                        "items": [
                            {"price": i["price"], "quantity": int(i.get("quantity") or 1)}
                            for i in phase["items"]
                        ],
                    }
                )
            schedule["phases"] = phases
        return copy.deepcopy(schedule)
