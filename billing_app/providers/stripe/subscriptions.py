"""Stripe writes on one subscription: trial, pause and resume, cancel and its undo, seats,
discounts, and the grace period of a failed payment.

Each is one subscription update tagged with the action id (``keys.action_meta``), so
reconciliation can tell from the subscription alone whether it happened.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from ...errors import PreconditionFailed, ValidationFailed
from ...subscriptions import ENDED_STATUSES, discount_add_check
from ..arguments import (
    cancellation_details,
    discount_check,
    future_check,
    pause_check,
    quantity_check,
)
from ..base import (
    DiscountResult,
    SubscriptionResult,
)
from ..rules import invoice_subscription_id
from . import readers as r
from .core import SUBSCRIPTION_EXPAND, StripeCore
from .keys import action_meta, action_tag, key_required, step_key, tagged_by

Obj = dict[str, Any]


def _coupon_tagged(discount: Obj, action_id: str) -> bool:
    source = discount.get("source") or {}
    coupon = source.get("coupon") if isinstance(source, dict) else None
    return isinstance(coupon, dict) and tagged_by(coupon, action_id)


class StripeSubscriptions(StripeCore):
    def extend_trial(
        self, *, subscription_id: str, trial_end: datetime, idempotency_key: str
    ) -> SubscriptionResult:
        key = key_required(idempotency_key)
        subscription = self.api.subscription_retrieve(subscription_id)
        if subscription.get("status") != "trialing":
            raise PreconditionFailed(
                "Only a trialing subscription can have its trial extended.",
                code="not_trialing",
                details={"status": subscription.get("status")},
            )
        current_end = subscription.get("trial_end") or 0
        if r.unix(trial_end) <= max(int(current_end), int(self.now().timestamp())):
            raise ValidationFailed(
                "The new trial end must be later than the current one.",
                code="trial_end_not_later",
            )
        updated = self.api.subscription_update(
            subscription_id,
            {"trial_end": r.unix(trial_end), "proration_behavior": "none", **action_meta(key)},
            key=key,
        )
        return r.subscription_result(updated).with_changes(self._changed(updated))

    def pause_subscription(
        self,
        *,
        subscription_id: str,
        behavior: str,
        resumes_at: datetime | None,
        idempotency_key: str,
    ) -> SubscriptionResult:
        key = key_required(idempotency_key)
        pause_check(behavior=behavior, resumes_at=resumes_at, now=self.now())
        self._live_subscription(subscription_id)
        pause: dict[str, Any] = {"behavior": behavior}
        if resumes_at is not None:
            pause["resumes_at"] = r.unix(resumes_at)
        updated = self.api.subscription_update(
            subscription_id, {"pause_collection": pause, **action_meta(key)}, key=key
        )
        return r.subscription_result(updated).with_changes(self._changed(updated))

    def resume_subscription(
        self, *, subscription_id: str, idempotency_key: str
    ) -> SubscriptionResult:
        """Clear ``pause_collection``: Stripe bills the subscription again from its next invoice."""
        key = key_required(idempotency_key)
        subscription = self._live_subscription(subscription_id)
        if not subscription.get("pause_collection"):
            raise PreconditionFailed(
                "Collection on this subscription is not paused.", code="not_paused"
            )
        updated = self.api.subscription_update(
            subscription_id, {"pause_collection": "", **action_meta(key)}, key=key
        )
        return r.subscription_result(updated).with_changes(self._changed(updated))

    def cancel_subscription(
        self,
        *,
        subscription_id: str,
        at_period_end: bool,
        reason: str,
        comment: str,
        idempotency_key: str,
    ) -> SubscriptionResult:
        """``cancellation_details.feedback`` takes Stripe's enumeration; any other reason is
        kept, with the agent's comment, in ``cancellation_details.comment``."""
        key = key_required(idempotency_key)
        subscription = self.api.subscription_retrieve(subscription_id)
        if subscription.get("status") in ENDED_STATUSES:
            raise PreconditionFailed(
                "This subscription is already canceled.", code="already_canceled"
            )
        details = cancellation_details(reason=reason, comment=comment)
        if at_period_end:
            updated = self.api.subscription_update(
                subscription_id,
                {"cancel_at_period_end": True, "cancellation_details": details, **action_meta(key)},
                key=key,
            )
        else:
            updated = self.api.subscription_cancel(
                subscription_id, {"cancellation_details": details}, key=key
            )
        return r.subscription_result(updated).with_changes(self._changed(updated))

    def undo_cancellation(
        self, *, subscription_id: str, idempotency_key: str
    ) -> SubscriptionResult:
        """Set ``cancel_at_period_end`` back to false: the subscription renews as before."""
        key = key_required(idempotency_key)
        subscription = self.api.subscription_retrieve(subscription_id)
        if subscription.get("status") in ENDED_STATUSES:
            raise PreconditionFailed(
                "This subscription is already canceled.", code="already_canceled"
            )
        if not subscription.get("cancel_at_period_end"):
            raise PreconditionFailed(
                "This subscription is not set to cancel.", code="not_canceling"
            )
        updated = self.api.subscription_update(
            subscription_id, {"cancel_at_period_end": False, **action_meta(key)}, key=key
        )
        return r.subscription_result(updated).with_changes(self._changed(updated))

    def adjust_seats(
        self, *, subscription_id: str, item_id: str, quantity: int, idempotency_key: str
    ) -> SubscriptionResult:
        key = key_required(idempotency_key)
        quantity_check(quantity)
        subscription = self._live_subscription(subscription_id)
        if item_id not in {i.get("id") for i in r.subscription_items(subscription)}:
            raise ValidationFailed(
                "That item is not part of this subscription.", code="item_not_in_subscription"
            )
        updated = self.api.subscription_update(
            subscription_id,
            {
                "items": [{"id": item_id, "quantity": quantity}],
                "proration_behavior": "create_prorations",
                **action_meta(key),
            },
            key=key,
        )
        return r.subscription_result(updated, item_id=item_id).with_changes(self._changed(updated))

    def apply_discount(
        self,
        *,
        subscription_id: str,
        percent_off: float,
        duration: str,
        duration_in_months: int | None,
        idempotency_key: str,
    ) -> DiscountResult:
        """A coupon for this action, as the subscription's discount. A subscription that
        has one already is refused (``subscriptions.discount_add_check``): setting
        ``discounts`` replaces the whole list, and keeping the old entries would stack."""
        key = key_required(idempotency_key)
        percent = discount_check(
            percent_off=percent_off, duration=duration, duration_in_months=duration_in_months
        )
        subscription = self._live_subscription(subscription_id, expand=SUBSCRIPTION_EXPAND)
        # A discount this very action added (its answer lost, the same key sent again) is
        # not "another" one: the coupon and the update below replay under their keys.
        action_id = action_tag(key).get("billing_desk_action", "")
        discount_add_check(
            subscription_id=subscription_id,
            current_discount_ids=[
                r.ref(d)
                for d in subscription.get("discounts") or []
                if not (action_id and isinstance(d, dict) and _coupon_tagged(d, action_id))
            ],
        )
        coupon_params: dict[str, Any] = {
            "percent_off": percent,
            "duration": duration,
            "name": f"{percent:g}% off (Billing Desk)",
            "metadata": action_tag(key, {"billing_desk_subscription": subscription_id}),
        }
        if duration == "repeating":
            coupon_params["duration_in_months"] = duration_in_months
        coupon = self.api.coupon_create(coupon_params, key=step_key(key, "coupon"))
        updated = self.api.subscription_update(
            subscription_id,
            {
                "discounts": [{"coupon": coupon["id"]}],
                "expand": SUBSCRIPTION_EXPAND,
                **action_meta(key),
            },
            key=step_key(key, "apply"),
        )
        return DiscountResult(
            subscription_id=subscription_id,
            coupon_id=coupon["id"],
            percent_off=float(coupon.get("percent_off") or percent),
            duration=str(coupon.get("duration") or duration),
            duration_in_months=coupon.get("duration_in_months"),
        ).with_changes(self._changed(updated))

    def extend_grace_period(
        self, *, subscription_id: str, invoice_id: str | None, until: datetime, idempotency_key: str
    ) -> SubscriptionResult:
        """Record the grace period on the subscription (``metadata.grace_period_until``, unix seconds — the
        same key the sandbox writes and the panel reads — read by the
        payment-failure workflow before it warns or suspends) and, for an open invoice
        collected by ``send_invoice``, move its due date to ``until``.

        Automatic collection is deliberately not paused: Stripe's retries keep running,
        so the customer can still pay (and recover) during the grace period. An
        automatically-charged invoice has no due date to move.
        """
        key = key_required(idempotency_key)
        future_check(until, now=self.now())
        self._live_subscription(subscription_id)
        until_utc = until.astimezone(UTC).replace(microsecond=0)
        invoice: Obj | None = None
        changed_invoice: Obj | None = None
        if invoice_id:
            invoice = self.api.invoice_retrieve(invoice_id)
            if invoice_subscription_id(invoice) not in {"", subscription_id}:
                raise ValidationFailed(
                    "That invoice belongs to another subscription.",
                    code="invoice_not_for_subscription",
                )
        updated = self.api.subscription_update(
            subscription_id,
            {"metadata": action_tag(key, {"grace_period_until": str(r.unix(until_utc))})},
            key=step_key(key, "subscription"),
        )
        if (
            invoice is not None
            and invoice.get("collection_method") == "send_invoice"
            and invoice.get("status") == "open"
            and (r.invoice_due_date(invoice) or 0) < r.unix(until_utc)
        ):
            invoice = self.api.invoice_update(
                invoice["id"], {"due_date": r.unix(until_utc)}, key=step_key(key, "invoice")
            )
            changed_invoice = invoice
        return r.subscription_result(updated).with_changes(self._changed(changed_invoice, updated))
