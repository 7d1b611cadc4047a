"""Stripe's side of a test clock: period ends, schedules, cancellations, renewals."""

from __future__ import annotations

import copy
from datetime import UTC, datetime

from dateutil.relativedelta import relativedelta

from .core import LIVE, FakeCore
from .wire import Obj


class FakeClock(FakeCore):
    # --- the test clock -----------------------------------------------------------------------
    def advance(self, to: datetime) -> None:
        """Apply every period end up to ``to``, as Stripe does while a test clock advances."""
        target = int(to.timestamp())
        for sub in sorted(self.of("subscription"), key=lambda s: s["id"]):
            while sub["status"] in LIVE and self._period(sub)[1] <= target:
                self._period_end(sub)
        self.clock = target

    def _period_end(self, sub: Obj) -> None:
        start, boundary = self._period(sub)
        self.clock = boundary
        if sub.get("cancel_at_period_end"):
            sub.update(status="canceled", ended_at=boundary, cancel_at_period_end=False)
            self.event("customer.subscription.deleted", self.render(sub, []))
            return
        schedule = self.objects.get(sub.get("schedule") or "")
        if (
            schedule
            and len(schedule["phases"]) > 1
            and (schedule["phases"][0]["end_date"] or 0) <= boundary
        ):
            for item, planned in zip(
                sub["items"]["data"], schedule["phases"][1]["items"], strict=False
            ):
                item["price"] = copy.deepcopy(self.get("price", planned["price"]))
                item["quantity"] = planned["quantity"]
            schedule.update(
                status="released", released_at=boundary, released_subscription=sub["id"]
            )
            sub["schedule"] = None
        if sub["status"] == "trialing":
            sub["status"] = "active"
        price = self.objects[sub["items"]["data"][0]["price"]["id"]]
        interval = (price.get("recurring") or {}).get("interval", "month")
        step = relativedelta(years=1) if interval == "year" else relativedelta(months=1)
        new_end = int((datetime.fromtimestamp(boundary, tz=UTC) + step).timestamp())
        for item in sub["items"]["data"]:
            item["current_period_start"], item["current_period_end"] = boundary, new_end
        lines = [
            self._line(
                sub,
                item["id"],
                item["price"],
                int(item["quantity"]),
                int(item["price"]["unit_amount"]) * int(item["quantity"]),
                f"{item['quantity']} × {item['price']['id']}",
                boundary,
                new_end,
                proration=False,
            )
            for item in sub["items"]["data"]
        ]
        pending = [
            line
            for line in self.pending
            if line["parent"]["subscription_item_details"]["subscription"] == sub["id"]
        ]
        self.pending = [line for line in self.pending if line not in pending]
        invoice = self._invoice(sub, lines + pending, billing_reason="subscription_cycle")
        sub["latest_invoice"] = invoice["id"]
        self.event("customer.subscription.updated", self.render(sub, []))
