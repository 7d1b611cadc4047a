"""Subscription writes other than plan changes: trial, pause, cancellation, seats, discount, grace.

A seat change prorates by seconds over the current period like a plan change, but
bills nothing at once (Stripe's ``proration_behavior=create_prorations``, as the
Stripe provider asks for): the credit for the unused seats and the charge for the
new count wait as pending invoice items for the subscription's next invoice.
"""

from __future__ import annotations

from datetime import datetime

from ...errors import PreconditionFailed, ValidationFailed
from ...models import MirrorInvoice, MirrorSubscription
from ...proration import proration_line
from ...subscriptions import ENDED_STATUSES, discount_add_check
from ..arguments import cancellation_details, discount_check
from ..base import (
    PAUSE_BEHAVIORS,
    DiscountResult,
    SubscriptionResult,
)
from ..rules import invoice_subscription_id
from ..rules import ts as _ts
from . import objects
from .invoicing import SandboxInvoicing
from .items import subscription_items
from .state import Obj, SandboxState


def _ended(discount: Obj, now: datetime) -> bool:
    """A discount whose ``end`` has passed (Stripe then drops it from the subscription)."""
    end = discount.get("end")
    return end is not None and int(end) <= int(now.timestamp())


class SandboxSubscriptions(SandboxInvoicing, SandboxState):
    def extend_trial(
        self, *, subscription_id: str, trial_end: datetime, idempotency_key: str
    ) -> SubscriptionResult:
        def act(now: datetime) -> SubscriptionResult:
            sub = self._get(MirrorSubscription, subscription_id, "subscription")
            if sub.get("status") != "trialing":
                raise PreconditionFailed(
                    f"Subscription {subscription_id} is {sub.get('status')}, not trialing; "
                    "only a trial can be extended.",
                    code="not_trialing",
                    details={"status": sub.get("status")},
                )
            current_end = _ts(sub.get("trial_end"))
            if trial_end <= max(current_end or now, now):
                raise ValidationFailed(
                    "The new trial end must be later than the current one.",
                    code="trial_end_not_later",
                )
            end = objects.unix(trial_end)
            sub["trial_end"] = end
            for item in subscription_items(sub):
                item["current_period_end"] = end
            self._put(sub)
            return self._result(sub)

        return self._write(
            "extend_trial",
            idempotency_key,
            {"subscription_id": subscription_id, "trial_end": trial_end},
            act,
        )

    def pause_subscription(
        self,
        *,
        subscription_id: str,
        behavior: str,
        resumes_at: datetime | None,
        idempotency_key: str,
    ) -> SubscriptionResult:
        if behavior not in PAUSE_BEHAVIORS:
            raise ValidationFailed(
                f"behavior must be one of {', '.join(sorted(PAUSE_BEHAVIORS))}.",
                code="invalid_pause_behavior",
            )

        def act(now: datetime) -> SubscriptionResult:
            sub = self._live_subscription(subscription_id)
            if resumes_at is not None and resumes_at <= now:
                raise ValidationFailed(
                    "The resume date must be in the future.", code="invalid_resume_date"
                )
            sub["pause_collection"] = {"behavior": behavior, "resumes_at": objects.unix(resumes_at)}
            self._put(sub)
            return self._result(sub)

        return self._write(
            "pause_subscription",
            idempotency_key,
            {"subscription_id": subscription_id, "behavior": behavior, "resumes_at": resumes_at},
            act,
        )

    def resume_subscription(
        self, *, subscription_id: str, idempotency_key: str
    ) -> SubscriptionResult:
        """Clear ``pause_collection``: the next invoice is collected again."""

        def act(now: datetime) -> SubscriptionResult:
            sub = self._live_subscription(subscription_id)
            if not sub.get("pause_collection"):
                raise PreconditionFailed(
                    "Collection on this subscription is not paused.", code="not_paused"
                )
            sub["pause_collection"] = None
            self._put(sub)
            return self._result(sub)

        return self._write(
            "resume_subscription", idempotency_key, {"subscription_id": subscription_id}, act
        )

    def undo_cancellation(
        self, *, subscription_id: str, idempotency_key: str
    ) -> SubscriptionResult:
        """Set ``cancel_at_period_end`` back to false: the subscription renews as before."""

        def act(now: datetime) -> SubscriptionResult:
            sub = self._not_ended(subscription_id)
            if not sub.get("cancel_at_period_end"):
                raise PreconditionFailed(
                    "This subscription is not set to cancel.", code="not_canceling"
                )
            sub["cancel_at_period_end"] = False
            sub["cancel_at"] = None
            sub["canceled_at"] = None
            self._put(sub)
            return self._result(sub)

        return self._write(
            "undo_cancellation", idempotency_key, {"subscription_id": subscription_id}, act
        )

    def cancel_subscription(
        self,
        *,
        subscription_id: str,
        at_period_end: bool,
        reason: str,
        comment: str,
        idempotency_key: str,
    ) -> SubscriptionResult:
        def act(now: datetime) -> SubscriptionResult:
            sub = self._not_ended(subscription_id)
            # What the Stripe provider asks Stripe to store, as Stripe stores it.
            asked = cancellation_details(reason=reason, comment=comment)
            details = {
                "comment": asked.get("comment"),
                "feedback": asked["feedback"],
                "reason": "cancellation_requested",
            }
            sub["cancellation_details"] = details
            if at_period_end:
                item = self._plan_item(sub) or {}
                end = sub.get("trial_end") if sub.get("status") == "trialing" else None
                sub["cancel_at_period_end"] = True
                sub["cancel_at"] = end or item.get("current_period_end")
                sub["canceled_at"] = objects.unix(now)
            else:
                sub["status"] = "canceled"
                sub["cancel_at_period_end"] = False
                sub["canceled_at"] = objects.unix(now)
                sub["ended_at"] = objects.unix(now)
                sub["cancel_at"] = None
            self._put(sub)
            return self._result(sub)

        return self._write(
            "cancel_subscription",
            idempotency_key,
            {
                "subscription_id": subscription_id,
                "at_period_end": at_period_end,
                "reason": reason,
                "comment": comment,
            },
            act,
        )

    def adjust_seats(
        self, *, subscription_id: str, item_id: str, quantity: int, idempotency_key: str
    ) -> SubscriptionResult:
        if not isinstance(quantity, int) or isinstance(quantity, bool) or quantity < 1:
            raise ValidationFailed(
                "Seats must be a whole number of at least 1.", code="invalid_quantity"
            )

        def act(now: datetime) -> SubscriptionResult:
            sub = self._live_subscription(subscription_id)
            items = subscription_items(sub)
            item = next((i for i in items if i["id"] == item_id), None)
            if item is None:
                raise ValidationFailed(
                    "That item is not part of this subscription.", code="item_not_in_subscription"
                )
            old_qty = int(item.get("quantity") or 0)
            item["quantity"] = quantity
            price = item["price"]
            unit = int(price.get("unit_amount") or 0)
            start = _ts(item.get("current_period_start")) or now
            end = _ts(item.get("current_period_end")) or now
            # Stripe prorates nothing for the same count, during a trial, or outside the period.
            if quantity != old_qty and sub.get("status") != "trialing" and start <= now < end:
                name = objects.price_product_name(price)
                window = {"period_start": start, "period_end": end, "at": now}
                base_line = {
                    "price": price,
                    "item_id": item_id,
                    "proration": True,
                    "period_start": now,
                    "period_end": end,
                }
                unused = proration_line(
                    "unused", name=name, quantity=old_qty, amount=unit * old_qty, **window
                )
                remaining = proration_line(
                    "remaining", name=name, quantity=quantity, amount=unit * quantity, **window
                )
                # Stripe's create_prorations: pending invoice items for the next invoice.
                for n, (count, (description, amount)) in enumerate(
                    [(old_qty, unused), (quantity, remaining)]
                ):
                    line = {
                        **base_line,
                        "description": description,
                        "amount": amount,
                        "quantity": count,
                    }
                    self._add_pending_item(
                        item_id=self._id("ii", idempotency_key, n), subscription=sub, line=line
                    )
            self._put(sub)
            return self._result(sub, item_id=item_id)

        return self._write(
            "adjust_seats",
            idempotency_key,
            {"subscription_id": subscription_id, "item_id": item_id, "quantity": quantity},
            act,
        )

    def apply_discount(
        self,
        *,
        subscription_id: str,
        percent_off: float,
        duration: str,
        duration_in_months: int | None,
        idempotency_key: str,
    ) -> DiscountResult:
        percent_off = discount_check(
            percent_off=percent_off, duration=duration, duration_in_months=duration_in_months
        )

        def act(now: datetime) -> DiscountResult:
            sub = self._live_subscription(subscription_id)
            discount_add_check(
                subscription_id=subscription_id,
                current_discount_ids=[
                    str(d.get("id") if isinstance(d, dict) else d)
                    for d in sub.get("discounts") or []
                    if not (isinstance(d, dict) and (d.get("deleted") or _ended(d, now)))
                ],
            )
            coupon_obj = objects.coupon(
                id=self._id("coupon", idempotency_key),
                percent_off=float(percent_off),
                duration=duration,
                duration_in_months=duration_in_months,
                created=now,
            )
            end = None
            if duration == "repeating" and duration_in_months:
                from dateutil.relativedelta import relativedelta

                end = now + relativedelta(months=duration_in_months)
            discount_obj = objects.discount(
                id=self._id("di", idempotency_key),
                coupon=coupon_obj,
                customer_id=str(sub["customer"]),
                subscription_id=subscription_id,
                start=now,
                end=end,
            )
            for old in sub.get("discounts") or []:  # only ended ones are left (checked above)
                if isinstance(old, dict):
                    self._put({**old, "deleted": True})
            sub["discounts"] = [discount_obj]
            self._put(discount_obj)
            self._put(sub)
            return DiscountResult(
                subscription_id=subscription_id,
                coupon_id=coupon_obj["id"],
                percent_off=float(percent_off),
                duration=duration,
                duration_in_months=duration_in_months,
            )

        return self._write(
            "apply_discount",
            idempotency_key,
            {
                "subscription_id": subscription_id,
                "percent_off": float(percent_off),
                "duration": duration,
                "duration_in_months": duration_in_months,
            },
            act,
        )

    def extend_grace_period(
        self, *, subscription_id: str, invoice_id: str | None, until: datetime, idempotency_key: str
    ) -> SubscriptionResult:
        """Record the grace period on the subscription (``metadata.grace_period_until``, read
        by the payment-failure workflow) and move an open emailed invoice's due date to it."""

        def act(now: datetime) -> SubscriptionResult:
            sub = self._live_subscription(subscription_id)
            if until <= now:
                raise ValidationFailed(
                    "The grace period must end in the future.", code="invalid_until"
                )
            meta = dict(sub.get("metadata") or {})
            meta["grace_period_until"] = str(objects.unix(until))
            sub["metadata"] = meta
            if invoice_id:
                invoice = self._get(MirrorInvoice, invoice_id, "invoice")
                if invoice_subscription_id(invoice) not in {"", subscription_id}:
                    raise ValidationFailed(
                        "That invoice belongs to another subscription.",
                        code="invoice_not_for_subscription",
                    )
                # As on Stripe: automatic collection keeps retrying (a payment still
                # recovers); only an emailed invoice's due date can move, and only later.
                if (
                    invoice.get("collection_method") == "send_invoice"
                    and invoice.get("status") == "open"
                    and int(invoice.get("due_date") or 0) < (objects.unix(until) or 0)
                ):
                    invoice["due_date"] = objects.unix(until)
                    self._put(invoice)
            self._put(sub)
            return self._result(sub)

        return self._write(
            "extend_grace_period",
            idempotency_key,
            {"subscription_id": subscription_id, "invoice_id": invoice_id, "until": until},
            act,
        )

    def _not_ended(self, subscription_id: str) -> Obj:
        """The subscription, unless it has ended (``already_canceled``, as on Stripe)."""
        sub = self._get(MirrorSubscription, subscription_id, "subscription")
        if sub.get("status") in ENDED_STATUSES:
            raise PreconditionFailed(
                "This subscription is already canceled.", code="already_canceled"
            )
        return sub

    def _result(self, sub: Obj, *, item_id: str = "") -> SubscriptionResult:
        """The result Stripe's answer gives: ``quantity`` of the item changed, else the plan item."""
        item = next((i for i in subscription_items(sub) if i["id"] == item_id), None)
        item = item or self._plan_item(sub)
        return SubscriptionResult(
            subscription_id=sub["id"],
            status=sub["status"],
            trial_end=_ts(sub.get("trial_end")),
            cancel_at_period_end=bool(sub.get("cancel_at_period_end")),
            cancel_at=_ts(sub.get("cancel_at")),
            canceled_at=_ts(sub.get("canceled_at")),
            pause_collection=sub.get("pause_collection"),
            quantity=int(item["quantity"]) if item else None,
            schedule_id=sub.get("schedule") or "",
        )
