"""Finding what a Stripe write whose answer was lost did, by the action id its objects carry
(``metadata.billing_desk_action``): reconciliation asks once Stripe's idempotency keys
have expired, and first, to avoid acting again."""

from __future__ import annotations

from typing import Any, Literal

from ...money import Money
from ..base import WRITE_ABSENT, CreditResult, PlanChangeResult, RefundResult, WriteFound
from . import readers as r
from .core import StripeCore
from .keys import TAGGED_SUBSCRIPTION_KINDS, tagged_by

Obj = dict[str, Any]


class StripeReconciliation(StripeCore):
    def find_action_write(
        self, *, action_id: str, kind: str, customer_id: str, params: dict[str, Any], charge_id: str
    ) -> WriteFound | Literal["absent"] | None:
        """Stripe's record of an action whose answer was lost, by ``metadata.billing_desk_action``:
        refunds listed by charge, balance transactions listed by customer, the subscription's
        own metadata for the kinds that make one tagged subscription update."""
        if kind in {"issue_refund", "refund_duplicate_charge"}:
            charge = charge_id or str(params.get("charge_id") or "")
            if not charge:
                return None
            page = r.page_read(self.api.refunds_list({"charge": charge, "limit": 100}))
            refund = next(
                (
                    x
                    for x in page.objects
                    if tagged_by(x, action_id)
                    and x.get("status") in {"succeeded", "pending", "requires_action"}
                ),
                None,
            )
            if refund is None:
                return None if page.has_more else WRITE_ABSENT
            changes = self._changed(refund, self._reread_quietly("charge", charge))
            currency = str(refund.get("currency") or "").upper()
            return WriteFound(
                object_id=refund["id"],
                result=RefundResult(
                    refund_id=refund["id"],
                    charge_id=charge,
                    amount=Money(int(refund.get("amount") or 0), currency),
                    status=str(refund.get("status") or ""),
                    reason=str(refund.get("reason") or ""),
                ),
            ).with_changes(changes)
        if kind == "apply_credit":
            page = r.page_read(
                self.api.customer_balance_transactions_list(customer_id, {"limit": 100})
            )
            txn = next((x for x in page.objects if tagged_by(x, action_id)), None)
            if txn is None:
                return None if page.has_more else WRITE_ABSENT
            currency = str(txn.get("currency") or "").upper()
            return WriteFound(
                object_id=txn["id"],
                result=CreditResult(
                    transaction_id=txn["id"],
                    amount=Money(-int(txn.get("amount") or 0), currency),
                    ending_balance=Money(int(txn.get("ending_balance") or 0), currency),
                ),
            ).with_changes(self._changed(txn))
        subscription_id = str(params.get("subscription_id") or "")
        if not subscription_id or kind not in TAGGED_SUBSCRIPTION_KINDS | {
            "force_cancel",
            "change_plan",
        }:
            return None
        subscription = self.api.subscription_retrieve(subscription_id)
        if kind == "change_plan":
            return self._find_plan_change(subscription, action_id, str(params.get("price_id")))
        if tagged_by(subscription, action_id) or (
            kind == "force_cancel" and subscription.get("status") == "canceled"
        ):
            return WriteFound(
                object_id=subscription_id, result=r.subscription_result(subscription)
            ).with_changes(self._changed(subscription))
        # An immediate cancel carries no metadata: only a canceled subscription is conclusive.
        # (A plan change is found by replaying its key: its result needs the preview.)
        return WRITE_ABSENT if kind in TAGGED_SUBSCRIPTION_KINDS else None

    def _find_plan_change(
        self, subscription: Obj, action_id: str, price_id: str
    ) -> WriteFound | None:
        """An upgrade tags the subscription; a downgrade tags its schedule's phases update."""
        subscription_id = subscription["id"]
        if tagged_by(subscription, action_id):
            changes = self._changed(subscription)
            return WriteFound(
                object_id=r.ref(subscription.get("latest_invoice")) or subscription_id,
                result=PlanChangeResult(
                    subscription_id=subscription_id,
                    direction="upgrade",
                    new_price_id=price_id,
                    effective_date=self.now(),
                    invoice_id=r.ref(subscription.get("latest_invoice")),
                ),
            ).with_changes(changes)
        schedule_id = r.ref(subscription.get("schedule"))
        schedule = self.api.subscription_schedule_retrieve(schedule_id) if schedule_id else None
        if schedule is not None and tagged_by(schedule, action_id):
            changes = self._changed(subscription)
            period_end = r.ts(r.subscription_period_end(subscription))
            return WriteFound(
                object_id=schedule["id"],
                result=PlanChangeResult(
                    subscription_id=subscription_id,
                    direction="downgrade",
                    new_price_id=price_id,
                    effective_date=period_end or self.now(),
                    schedule_id=schedule["id"],
                ),
            ).with_changes(changes)
        # Neither tagged: the change did not happen, unless a schedule was created but
        # its phases never written — then replaying the key finishes it.
        return None
