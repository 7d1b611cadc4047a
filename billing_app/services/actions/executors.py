"""One executor per kind: the provider call(s) and what the action's result records.

An executor returns ``(result, provider_object_id)``; ``execution`` records it.
Every provider write goes through ``Run.call`` (the action's provider idempotency
key, bounded retries). Plan changes, seat changes and discounts also record their
MRR change (``mrr``) in ``run.recorded`` before the write, so it is kept even when
the write's outcome is unknown.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from typing import Any

from ...catalog import ActionKind
from ...providers.base import TaxIdInput
from .mrr import discount_mrr, plan_change_mrr, seat_change_mrr
from .outcomes import to_json
from .run import Run

Executor = Callable[[Run], tuple[dict[str, Any], str]]


def _exec_payment_link(run: Run) -> tuple[dict[str, Any], str]:
    a = run.action
    link = run.call(
        run.provider.create_payment_link,
        customer_id=a.customer_id,
        invoice_id=a.params.get("invoice_id") or None,
    )
    return to_json(link), link.object_id


def _exec_resend_invoice(run: Run) -> tuple[dict[str, Any], str]:
    sent = run.call(run.provider.resend_invoice, invoice_id=run.action.params["invoice_id"])
    return to_json(sent), sent.invoice_id


def _exec_credit(run: Run) -> tuple[dict[str, Any], str]:
    a, p = run.action, run.prepared
    description = a.params.get("description") or f"Billing Desk credit (ticket {a.ticket_id})"
    credit = run.call(
        run.provider.apply_credit,
        customer_id=a.customer_id,
        amount=p.amount,
        description=description[:350],
    )
    return to_json(credit), credit.transaction_id


def _exec_refund(run: Run) -> tuple[dict[str, Any], str]:
    a, p = run.action, run.prepared
    assert p.charge is not None and p.amount is not None
    our_reason = a.params.get("reason", "duplicate")
    refund = run.call(
        run.provider.refund,
        charge_id=p.charge.stripe_id,
        amount=p.amount,
        reason=p.values["stripe_reason"],
        metadata={
            "billing_desk_action": str(a.pk),
            "billing_desk_reason": our_reason,
            "ticket_id": a.ticket_id,
        },
    )
    result = to_json(refund) | {"billing_desk_reason": our_reason}
    if "original_charge_id" in p.values:
        result["original_charge_id"] = p.values["original_charge_id"]
    return result, refund.refund_id


def _sub_result(result: Any, **extra: Any) -> tuple[dict[str, Any], str]:
    return to_json(result) | to_json(extra), result.subscription_id


def _exec_extend_trial(run: Run) -> tuple[dict[str, Any], str]:
    r = run.call(
        run.provider.extend_trial,
        subscription_id=run.prepared.subscription.stripe_id,  # type: ignore[union-attr]
        trial_end=run.prepared.values["trial_end"],
    )
    return _sub_result(r)


def _exec_pause(run: Run) -> tuple[dict[str, Any], str]:
    params = run.action.params
    resumes = params.get("resumes_at")
    r = run.call(
        run.provider.pause_subscription,
        subscription_id=params["subscription_id"],
        behavior=params["behavior"],
        resumes_at=datetime.fromisoformat(resumes) if resumes else None,
    )
    return _sub_result(r)


def _exec_resume(run: Run) -> tuple[dict[str, Any], str]:
    """Collection resumes now; the pause's behaviour and resume date are kept in the result
    (the mirror forgets them once the subscription is resumed)."""
    sub = run.prepared.subscription
    assert sub is not None
    r = run.call(run.provider.resume_subscription, subscription_id=sub.stripe_id)
    return _sub_result(r, paused=sub.pause_collection or None)


def _exec_undo_cancellation(run: Run) -> tuple[dict[str, Any], str]:
    """The period-end cancellation is undone; the end date it had is kept in the result."""
    sub = run.prepared.subscription
    assert sub is not None
    was_ending = sub.cancel_at or sub.current_period_end
    r = run.call(run.provider.undo_cancellation, subscription_id=sub.stripe_id)
    return _sub_result(r, was_ending_at=was_ending)


def _exec_change_plan(run: Run) -> tuple[dict[str, Any], str]:
    params, p = run.action.params, run.prepared
    pinned = params.get("proration_date")
    preview = run.provider.preview_plan_change(
        subscription_id=params["subscription_id"],
        new_price_id=params["price_id"],
        at=datetime.fromisoformat(pinned) if pinned else None,
    )
    run.recorded.update(
        plan_change_mrr(
            workspace=run.action.workspace,
            subscription=p.subscription,  # type: ignore[arg-type]
            item=p.item,  # type: ignore[arg-type]
            new_price=p.price,  # type: ignore[arg-type]
            replaced_price_id=preview.current_price_id,
        )
    )
    change = run.call(
        run.provider.change_plan,
        subscription_id=params["subscription_id"],
        new_price_id=params["price_id"],
        proration_date=datetime.fromisoformat(pinned) if pinned else preview.proration_date,
    )
    result = to_json(change) | {
        "previous_price_id": p.values["previous_price_id"],
        "preview": to_json(preview),
        **run.recorded,
    }
    return result, change.invoice_id or change.schedule_id or change.subscription_id


def _exec_cancel(run: Run) -> tuple[dict[str, Any], str]:
    params = run.action.params
    r = run.call(
        run.provider.cancel_subscription,
        subscription_id=params["subscription_id"],
        at_period_end=run.action.kind == ActionKind.CANCEL_SUBSCRIPTION,
        reason=params["reason"],
        comment=params.get("comment", ""),
    )
    return _sub_result(r, customer_requested=params.get("customer_requested", False))


def _exec_payment_method_link(run: Run) -> tuple[dict[str, Any], str]:
    link = run.call(
        run.provider.payment_method_update_link,
        customer_id=run.action.customer_id,
        return_url=run.prepared.values["return_url"],
    )
    return to_json(link), link.object_id


def _exec_seats(run: Run) -> tuple[dict[str, Any], str]:
    p = run.prepared
    sub, item = p.subscription, p.item
    assert sub is not None and item is not None
    quantity = run.action.params["quantity"]
    run.recorded.update(seat_change_mrr(subscription=sub, item=item, quantity=quantity))
    r = run.call(
        run.provider.adjust_seats,
        subscription_id=sub.stripe_id,
        item_id=item.stripe_id,
        quantity=quantity,
    )
    return _sub_result(r, previous_quantity=p.values["previous_quantity"], **run.recorded)


def _exec_discount(run: Run) -> tuple[dict[str, Any], str]:
    params = run.action.params
    percent_off = Decimal(params["percent_off"])
    run.recorded.update(
        discount_mrr(
            workspace=run.action.workspace,
            subscription=run.prepared.subscription,  # type: ignore[arg-type]
            percent_off=percent_off,
        )
    )
    r = run.call(
        run.provider.apply_discount,
        subscription_id=params["subscription_id"],
        percent_off=float(percent_off),
        duration=params["duration"],
        duration_in_months=params.get("duration_in_months"),
    )
    return to_json(r) | run.recorded, r.coupon_id


def _exec_grace(run: Run) -> tuple[dict[str, Any], str]:
    params = run.action.params
    r = run.call(
        run.provider.extend_grace_period,
        subscription_id=params["subscription_id"],
        invoice_id=params.get("invoice_id") or None,
        until=run.prepared.values["until"],
    )
    return _sub_result(r, grace_until=run.prepared.values["until"], days=params["days"])


def _exec_tax_invoice(run: Run) -> tuple[dict[str, Any], str]:
    params = run.action.params
    result: dict[str, Any] = {}
    if params.get("tax_id") or params.get("address"):
        tax = params.get("tax_id")
        details = run.call(
            run.provider.update_tax_details,
            step="tax-details",
            customer_id=run.action.customer_id,
            tax_id=TaxIdInput(type=tax["type"], value=tax["value"]) if tax else None,
            address=params.get("address"),
        )
        result["tax_details"] = to_json(details)
    sent = run.call(run.provider.resend_invoice, invoice_id=params["invoice_id"])
    result.update(to_json(sent))
    return result, sent.invoice_id


EXECUTORS: dict[ActionKind, Executor] = {
    ActionKind.GENERATE_PAYMENT_LINK: _exec_payment_link,
    ActionKind.RESEND_INVOICE: _exec_resend_invoice,
    ActionKind.APPLY_CREDIT: _exec_credit,
    ActionKind.ISSUE_REFUND: _exec_refund,
    ActionKind.EXTEND_TRIAL: _exec_extend_trial,
    ActionKind.PAUSE_SUBSCRIPTION: _exec_pause,
    ActionKind.CHANGE_PLAN: _exec_change_plan,
    ActionKind.CANCEL_SUBSCRIPTION: _exec_cancel,
    ActionKind.FORCE_CANCEL: _exec_cancel,
    ActionKind.UPDATE_PAYMENT_METHOD: _exec_payment_method_link,
    ActionKind.ADJUST_SEATS: _exec_seats,
    ActionKind.APPLY_DISCOUNT: _exec_discount,
    ActionKind.REFUND_DUPLICATE_CHARGE: _exec_refund,
    ActionKind.EXTEND_GRACE_PERIOD: _exec_grace,
    ActionKind.SEND_TAX_INVOICE: _exec_tax_invoice,
    ActionKind.RESUME_SUBSCRIPTION: _exec_resume,
    ActionKind.UNDO_CANCELLATION: _exec_undo_cancellation,
}
