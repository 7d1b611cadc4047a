"""How each mirrored Stripe object becomes a mirror row: one pure function per object type,
from the object (Stripe's JSON shape, either provider) to the row's typed columns.

``services.mirror`` stores what these return next to the raw object; ``mirror_bulk`` uses
the same functions for many rows at once.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from django.db.models import Model

from ..models import (
    MirrorBalanceTransaction,
    MirrorCharge,
    MirrorCustomer,
    MirrorDiscount,
    MirrorInvoice,
    MirrorInvoiceLine,
    MirrorPaymentMethod,
    MirrorPrice,
    MirrorProduct,
    MirrorRefund,
    MirrorSubscription,
    MirrorSubscriptionItem,
)

Obj = dict[str, Any]


def ts(value: int | None) -> datetime | None:
    """A Stripe unix timestamp as an aware datetime."""
    return datetime.fromtimestamp(value, tz=UTC) if value else None


def ref(value: Any) -> str:
    """An id from a field that is either an id string or an expanded object."""
    if isinstance(value, dict):
        return str(value.get("id") or "")
    return str(value or "")


def _currency(value: Any) -> str:
    return str(value or "").upper()


def _customer(o: Obj) -> Obj:
    tax_ids = o.get("tax_ids")
    invoice_settings = o.get("invoice_settings") or {}
    return {
        "email": (o.get("email") or "").strip().lower(),
        "name": o.get("name") or "",
        "description": o.get("description") or "",
        "phone": o.get("phone") or "",
        "address": o.get("address") or {},
        "currency": _currency(o.get("currency")),
        "balance": int(o.get("balance") or 0),
        "delinquent": bool(o.get("delinquent")),
        "deleted": bool(o.get("deleted")),
        "tax_exempt": o.get("tax_exempt") or "none",
        "tax_ids": [
            {"id": t.get("id"), "type": t.get("type"), "value": t.get("value")}
            for t in ((tax_ids or {}).get("data") or [])
        ]
        if isinstance(tax_ids, dict)
        else [],
        "metadata": o.get("metadata") or {},
        "default_payment_method_id": ref(invoice_settings.get("default_payment_method"))
        or ref(o.get("default_source")),
    }


def _product(o: Obj) -> Obj:
    return {
        "name": o.get("name") or "",
        "active": bool(o.get("active", True)),
        "metadata": o.get("metadata") or {},
    }


def _price(o: Obj) -> Obj:
    recurring = o.get("recurring") or {}
    return {
        "product_id": ref(o.get("product")),
        "nickname": o.get("nickname") or "",
        "lookup_key": o.get("lookup_key") or "",
        "active": bool(o.get("active", True)),
        "currency": _currency(o.get("currency")),
        "unit_amount": o.get("unit_amount"),
        "type": o.get("type") or "recurring",
        "recurring_interval": recurring.get("interval") or "",
        "recurring_interval_count": recurring.get("interval_count") or 1,
        "metadata": o.get("metadata") or {},
    }


def _item_fields(o: Obj) -> Obj:
    price = o.get("price") or {}
    recurring = price.get("recurring") or {} if isinstance(price, dict) else {}
    return {
        "subscription_id": ref(o.get("subscription")),
        "price_id": ref(price),
        "product_id": ref(price.get("product")) if isinstance(price, dict) else "",
        "quantity": o.get("quantity") or 0,
        "unit_amount": price.get("unit_amount") if isinstance(price, dict) else None,
        "currency": _currency(price.get("currency")) if isinstance(price, dict) else "",
        "recurring_interval": recurring.get("interval") or "",
        "recurring_interval_count": recurring.get("interval_count") or 1,
        "current_period_start": ts(o.get("current_period_start")),
        "current_period_end": ts(o.get("current_period_end")),
        "metadata": o.get("metadata") or {},
    }


def _subscription(o: Obj) -> Obj:
    items = (o.get("items") or {}).get("data") or []
    starts = [i.get("current_period_start") for i in items if i.get("current_period_start")]
    ends = [i.get("current_period_end") for i in items if i.get("current_period_end")]
    return {
        "customer_id": ref(o.get("customer")),
        "status": o.get("status") or "",
        "collection_method": o.get("collection_method") or "charge_automatically",
        "currency": _currency(o.get("currency")),
        "start_date": ts(o.get("start_date")),
        "current_period_start": ts(min(starts)) if starts else ts(o.get("current_period_start")),
        "current_period_end": ts(min(ends)) if ends else ts(o.get("current_period_end")),
        "cancel_at_period_end": bool(o.get("cancel_at_period_end")),
        "cancel_at": ts(o.get("cancel_at")),
        "canceled_at": ts(o.get("canceled_at")),
        "ended_at": ts(o.get("ended_at")),
        "trial_start": ts(o.get("trial_start")),
        "trial_end": ts(o.get("trial_end")),
        "pause_collection": o.get("pause_collection"),
        "default_payment_method_id": ref(o.get("default_payment_method")),
        "latest_invoice_id": ref(o.get("latest_invoice")),
        "schedule_id": ref(o.get("schedule")),
        "cancellation_details": o.get("cancellation_details") or {},
        "metadata": o.get("metadata") or {},
    }


def _invoice_payment_refs(o: Obj) -> tuple[str, str]:
    """(payment_intent id, charge id) from an invoice's ``payments`` (newer API) or legacy fields."""
    payments = (o.get("payments") or {}).get("data") or []
    for p in payments:
        payment = p.get("payment") or {}
        if payment.get("payment_intent") or payment.get("charge"):
            return ref(payment.get("payment_intent")), ref(payment.get("charge"))
    return ref(o.get("payment_intent")), ref(o.get("charge"))


def _invoice(o: Obj) -> Obj:
    transitions = o.get("status_transitions") or {}
    taxes = o.get("total_taxes")
    tax = (
        sum(int(t.get("amount") or 0) for t in taxes)
        if isinstance(taxes, list)
        else int(o.get("tax") or 0)
    )
    discounts = o.get("total_discount_amounts") or []
    parent = o.get("parent") or {}
    subscription = ref((parent.get("subscription_details") or {}).get("subscription")) or ref(
        o.get("subscription")
    )
    payment_intent_id, charge_id = _invoice_payment_refs(o)
    return {
        "customer_id": ref(o.get("customer")),
        "subscription_id": subscription,
        "number": o.get("number") or "",
        "status": o.get("status") or "",
        "collection_method": o.get("collection_method") or "charge_automatically",
        "billing_reason": o.get("billing_reason") or "",
        "currency": _currency(o.get("currency")),
        "subtotal": int(o.get("subtotal") or 0),
        "total": int(o.get("total") or 0),
        "tax": tax,
        "total_discount": sum(int(d.get("amount") or 0) for d in discounts),
        "amount_due": int(o.get("amount_due") or 0),
        "amount_paid": int(o.get("amount_paid") or 0),
        "amount_remaining": int(o.get("amount_remaining") or 0),
        "starting_balance": int(o.get("starting_balance") or 0),
        "ending_balance": o.get("ending_balance"),
        "hosted_invoice_url": o.get("hosted_invoice_url") or "",
        "invoice_pdf": o.get("invoice_pdf") or "",
        "period_start": ts(o.get("period_start")),
        "period_end": ts(o.get("period_end")),
        "due_date": ts(o.get("due_date")),
        "paid_at": ts(transitions.get("paid_at")),
        "attempt_count": int(o.get("attempt_count") or 0),
        "next_payment_attempt": ts(o.get("next_payment_attempt")),
        "payment_intent_id": payment_intent_id,
        "charge_id": charge_id,
    }


def _line(o: Obj) -> Obj:
    parent = o.get("parent") or {}
    details = parent.get("subscription_item_details") or parent.get("invoice_item_details") or {}
    pricing = o.get("pricing") or {}
    price_details = pricing.get("price_details") or {}
    legacy_price = o.get("price") or {}
    period = o.get("period") or {}
    return {
        "invoice_id": ref(o.get("invoice")),
        "description": o.get("description") or "",
        "amount": int(o.get("amount") or 0),
        "currency": _currency(o.get("currency")),
        "quantity": o.get("quantity"),
        "price_id": ref(price_details.get("price")) or ref(legacy_price),
        "product_id": ref(price_details.get("product"))
        or (ref(legacy_price.get("product")) if isinstance(legacy_price, dict) else ""),
        "subscription_item_id": ref(details.get("subscription_item"))
        or ref(o.get("subscription_item")),
        "proration": bool(details.get("proration", o.get("proration", False))),
        "period_start": ts(period.get("start")),
        "period_end": ts(period.get("end")),
        "discount_amount": sum(
            int(d.get("amount") or 0) for d in (o.get("discount_amounts") or [])
        ),
        "tax_amount": sum(int(t.get("amount") or 0) for t in (o.get("taxes") or [])),
    }


def _charge(o: Obj) -> Obj:
    details = o.get("payment_method_details") or {}
    card = details.get("card") or {}
    outcome = o.get("outcome") or {}
    disputed = bool(o.get("disputed"))
    return {
        "customer_id": ref(o.get("customer")),
        "payment_intent_id": ref(o.get("payment_intent")),
        "invoice_id": ref(o.get("invoice")),
        "amount": int(o.get("amount") or 0),
        "amount_captured": int(o.get("amount_captured") or 0),
        "amount_refunded": int(o.get("amount_refunded") or 0),
        "currency": _currency(o.get("currency")),
        "status": o.get("status") or "",
        "paid": bool(o.get("paid")),
        "refunded": bool(o.get("refunded")),
        "disputed": disputed,
        "failure_code": o.get("failure_code") or "",
        "failure_message": o.get("failure_message") or "",
        "decline_code": (outcome.get("reason") or "") if o.get("status") == "failed" else "",
        "outcome": outcome,
        "payment_method_id": ref(o.get("payment_method")),
        "card_brand": card.get("brand") or "",
        "card_last4": card.get("last4") or "",
        "description": o.get("description") or "",
    }


def _refund(o: Obj) -> Obj:
    return {
        "charge_id": ref(o.get("charge")),
        "payment_intent_id": ref(o.get("payment_intent")),
        "customer_id": ref(o.get("customer")),
        "amount": int(o.get("amount") or 0),
        "currency": _currency(o.get("currency")),
        "status": o.get("status") or "",
        "reason": o.get("reason") or "",
        "metadata": o.get("metadata") or {},
    }


def _payment_method(o: Obj) -> Obj:
    card = o.get("card") or {}
    return {
        "customer_id": ref(o.get("customer")),
        "type": o.get("type") or "",
        "card_brand": card.get("brand") or "",
        "card_last4": card.get("last4") or "",
        "card_exp_month": card.get("exp_month"),
        "card_exp_year": card.get("exp_year"),
        "billing_details": o.get("billing_details") or {},
    }


def _balance_transaction(o: Obj) -> Obj:
    return {
        "customer_id": ref(o.get("customer")),
        "amount": int(o.get("amount") or 0),
        "currency": _currency(o.get("currency")),
        "type": o.get("type") or "",
        "description": o.get("description") or "",
        "invoice_id": ref(o.get("invoice")),
        "ending_balance": int(o.get("ending_balance") or 0),
        "metadata": o.get("metadata") or {},
    }


def _discount(o: Obj) -> Obj:
    source = o.get("source") or {}
    coupon = source.get("coupon") if isinstance(source.get("coupon"), dict) else o.get("coupon")
    coupon = coupon if isinstance(coupon, dict) else {}
    return {
        "customer_id": ref(o.get("customer")),
        "subscription_id": ref(o.get("subscription")),
        "coupon_id": coupon.get("id") or ref(source.get("coupon")),
        "coupon_name": coupon.get("name") or "",
        "percent_off": coupon.get("percent_off"),
        "amount_off": coupon.get("amount_off"),
        "currency": _currency(coupon.get("currency")),
        "duration": coupon.get("duration") or "",
        "duration_in_months": coupon.get("duration_in_months"),
        "start": ts(o.get("start")),
        "end": ts(o.get("end")),
        "active": not o.get("deleted", False),
    }


MAPPERS: dict[str, tuple[type[Model], Callable[[Obj], Obj]]] = {
    "customer": (MirrorCustomer, _customer),
    "product": (MirrorProduct, _product),
    "price": (MirrorPrice, _price),
    "subscription": (MirrorSubscription, _subscription),
    "subscription_item": (MirrorSubscriptionItem, _item_fields),
    "invoice": (MirrorInvoice, _invoice),
    "line_item": (MirrorInvoiceLine, _line),
    "charge": (MirrorCharge, _charge),
    "refund": (MirrorRefund, _refund),
    "payment_method": (MirrorPaymentMethod, _payment_method),
    "customer_balance_transaction": (MirrorBalanceTransaction, _balance_transaction),
    "discount": (MirrorDiscount, _discount),
}


def mirror_model_for(object_type: str) -> type[Model] | None:
    entry = MAPPERS.get(object_type)
    return entry[0] if entry else None


# Stripe's own forward-only fields: states no later read can move away from.
