"""The clock-advance step: what Stripe does to subscriptions while time passes.

Like advancing a Stripe test clock, ``SandboxProvider.advance(to=...)`` (or
``sandbox_advance(workspace=..., to=...)``) moves the sandbox's frozen clock forward
and, for every live subscription, applies each period end it passes, in order:

* a cancellation set for the period end (``cancel_at``) ends the subscription
  (``canceled``, ``ended_at``) and nothing more is billed;
* a trial that ends starts the first paid period, anchored on the trial end;
* a downgrade scheduled for the period end (the schedule's second phase) swaps the
  plan item's price, and the schedule releases the subscription;
* the period rolls (``current_period_start`` / ``current_period_end`` of each item,
  months counted from the billing cycle anchor) and the next period is invoiced
  (``billing_reason=subscription_cycle``): each item at its price and quantity, the
  pending invoice items (seat prorations) swept in, the subscription's discount and
  the customer balance applied, collected as any sandbox invoice (a failed charge
  announced as ``charge.failed`` + ``invoice.payment_failed``); while collection is
  paused the invoice stays a draft, or is voided or marked uncollectible, as
  ``pause_collection.behavior`` says, and collection resumes at ``resumes_at``.

Failed invoices are not retried here (``payments.sandbox_payment_attempt`` is one
retry); the clock never moves back.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from django.db import transaction

from ...errors import ValidationFailed
from ...models import MirrorSubscription, SandboxControl
from ...proration import period_end_after
from ...subscriptions import LIVE_STATUSES
from ..rules import ts as _ts
from . import objects
from .control import sandbox_control_get
from .invoicing import SandboxInvoicing
from .items import subscription_items
from .state import Obj

# A guard against a subscription whose periods never end (e.g. a zero-length interval).
MAX_PERIODS_PER_ADVANCE = 400
PAUSED_INVOICE_STATUS = {
    "keep_as_draft": "draft",
    "void": "void",
    "mark_uncollectible": "uncollectible",
}


@dataclass(frozen=True)
class AdvanceResult:
    """What one advance did: the new clock, the invoices finalized, the subscriptions changed."""

    clock: datetime
    invoice_ids: list[str] = field(default_factory=list)
    subscription_ids: list[str] = field(default_factory=list)


class SandboxClockAdvance(SandboxInvoicing):
    def advance(self, *, to: datetime) -> AdvanceResult:
        """Move the sandbox clock to ``to``, applying every period end on the way."""
        if to.tzinfo is None:
            raise ValidationFailed("The new clock must be timezone-aware.", code="invalid_clock")
        sandbox_control_get(workspace=self.workspace)
        invoices: list[str] = []
        changed: list[str] = []
        with transaction.atomic():
            control = SandboxControl.objects.select_for_update().get(workspace=self.workspace)
            self._check_up(control)
            if to < self._now(control):
                raise ValidationFailed(
                    "The sandbox clock only moves forward.", code="clock_moves_back"
                )
            rows = MirrorSubscription.objects.filter(
                workspace=self.workspace, status__in=LIVE_STATUSES
            ).order_by("stripe_id")
            for row in rows:
                made = self._advance_subscription(dict(row.data), to)
                if made is not None:
                    invoices.extend(made)
                    changed.append(row.stripe_id)
            control.clock = to
            control.save(update_fields=["clock", "updated_at"])
        return AdvanceResult(clock=to, invoice_ids=invoices, subscription_ids=changed)

    def _advance_subscription(self, sub: Obj, to: datetime) -> list[str] | None:
        """The invoices made while ``sub`` crossed its period ends up to ``to`` (None: untouched)."""
        invoices: list[str] = []
        touched = False
        for _ in range(MAX_PERIODS_PER_ADVANCE):
            item = self._plan_item(sub) or next(iter(subscription_items(sub)), None)
            boundary = _ts((item or {}).get("current_period_end"))
            cancel_at = _ts(sub.get("cancel_at"))
            if (
                cancel_at is not None
                and cancel_at <= to
                and (boundary is None or cancel_at <= boundary)
            ):
                # Canceled at ``cancel_at`` (the period end, or a date set for it): nothing more bills.
                sub["status"] = "canceled"
                sub["ended_at"] = objects.unix(cancel_at)
                sub["cancel_at_period_end"] = False
                touched = True
                break
            if item is None or boundary is None or boundary > to:
                break
            touched = True
            invoice = self._roll_period(sub, boundary)
            if invoice is not None:
                invoices.append(invoice)
        resumes_at = _ts((sub.get("pause_collection") or {}).get("resumes_at"))
        if sub.get("status") != "canceled" and resumes_at is not None and resumes_at <= to:
            sub["pause_collection"] = None  # collection resumes on its date, as on Stripe
            touched = True
        if touched:
            self._put(sub)
            return invoices
        return None

    def _roll_period(self, sub: Obj, boundary: datetime) -> str | None:
        """Apply one period end at ``boundary``: trial end, scheduled change, new period, invoice."""
        anchor = _ts(sub.get("billing_cycle_anchor"))
        if sub.get("status") == "trialing":
            sub["status"] = "active"
            sub["billing_cycle_anchor"] = objects.unix(boundary)
            anchor = boundary
        meta = dict(sub.get("metadata") or {})
        switch_at = _ts(meta.get("pending_change_at"))
        if switch_at is not None and switch_at <= boundary:
            pending_item = meta.get("pending_item_id")
            new_price = self._price(str(meta["pending_price_id"]))
            for item in subscription_items(sub):
                if item["id"] == pending_item:
                    item["price"] = new_price
            for key in ("pending_price_id", "pending_change_at", "pending_item_id"):
                meta.pop(key, None)
            sub["metadata"] = meta
            sub["schedule"] = None  # the schedule's last phase ends: it releases the subscription
        previous_start = boundary
        for item in subscription_items(sub):
            previous_start = _ts(item.get("current_period_start")) or boundary
            item["current_period_start"] = objects.unix(boundary)
            item["current_period_end"] = objects.unix(
                period_end_after(boundary, item["price"], anchor=anchor)
            )
        pause = sub.get("pause_collection") or None
        resumes_at = _ts((pause or {}).get("resumes_at"))
        if pause and resumes_at is not None and resumes_at <= boundary:
            sub["pause_collection"] = pause = None
        invoice = self._bill_now(
            now=boundary,
            key=f"cycle:{sub['id']}:{objects.unix(boundary)}",
            customer=self._customer(str(sub["customer"])),
            subscription=sub,
            billing_reason="subscription_cycle",
            period=(previous_start, boundary),
            lines=[
                {
                    "description": objects.recurring_line_description(
                        item["price"], int(item.get("quantity") or 1)
                    ),
                    "amount": int(item["price"].get("unit_amount") or 0)
                    * int(item.get("quantity") or 1),
                    "price": item["price"],
                    "quantity": int(item.get("quantity") or 1),
                    "item_id": item["id"],
                    "proration": False,
                    "period_start": _ts(item["current_period_start"]),
                    "period_end": _ts(item["current_period_end"]),
                }
                for item in subscription_items(sub)
            ],
            discount=self._discount_for(sub, boundary),
            paused_status=PAUSED_INVOICE_STATUS.get(str((pause or {}).get("behavior"))),
        )
        return str(invoice["id"])

    def _discount_for(self, sub: Obj, at: datetime) -> Obj | None:
        """The subscription's discount still running at ``at`` (a ``once`` coupon is used up)."""
        for discount in sub.get("discounts") or []:
            if not isinstance(discount, dict):
                continue
            end = _ts(discount.get("end"))
            if end is not None and end <= at:
                continue
            coupon = (discount.get("source") or {}).get("coupon") or {}
            if coupon.get("duration") == "once":
                sub["discounts"] = [d for d in sub["discounts"] if d is not discount]
                self._put({**discount, "deleted": True})
            return discount
        return None
