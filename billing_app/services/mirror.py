"""Writing provider objects (Stripe's JSON shapes) into the local mirror.

Both providers feed the mirror through ``mirror_upsert``: the Stripe provider with
what Stripe returns (API responses, webhook re-reads, the backfill), the sandbox
with the objects it simulates. Each row keeps the raw object in ``data`` and the
typed columns the panel queries. ``source_updated`` guards against out-of-order
writes: a state older than the one stored is ignored.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

from django.db import IntegrityError, transaction
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
    Workspace,
)
from ..money import Money

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


@transaction.atomic
def mirror_upsert(
    *, workspace: Workspace, obj: Obj, source_updated: int | None = None
) -> Model | None:
    """Store one provider object (and its embedded children) in the mirror.

    ``source_updated`` is the provider-side time of this state (a webhook event's
    ``created``); when older than what is stored, nothing changes. Re-reads from
    the API pass ``None``: the object's current state, stamped with now.
    """
    kind = obj.get("object")
    _context_invalidate(workspace, obj)
    if kind == "customer" and obj.get("deleted"):
        MirrorCustomer.objects.filter(workspace=workspace, stripe_id=obj["id"]).update(deleted=True)
        return None
    entry = MAPPERS.get(str(kind))
    if entry is None or not obj.get("id"):
        return None
    model, mapper = entry
    stamp = source_updated if source_updated is not None else int(datetime.now(tz=UTC).timestamp())
    fields = mapper(obj)
    existing = (
        model.objects.select_for_update().filter(workspace=workspace, stripe_id=obj["id"]).first()
    )
    if existing is not None and existing.source_updated > stamp:
        return existing
    values = {
        **fields,
        "livemode": bool(obj.get("livemode")),
        "created": ts(obj.get("created")),
        "data": obj,
        "source_updated": stamp,
    }
    if existing is None:
        try:
            with transaction.atomic():
                instance = model.objects.create(workspace=workspace, stripe_id=obj["id"], **values)
        except IntegrityError:
            # A concurrent writer (another event about the same object) inserted it
            # between our read and our insert: lock theirs and apply the newer state.
            existing = (
                model.objects.select_for_update()
                .filter(workspace=workspace, stripe_id=obj["id"])
                .first()
            )
            if existing is None:  # not the uniqueness race
                raise
            if existing.source_updated > stamp:
                return existing
    if existing is not None:
        for name, value in values.items():
            setattr(existing, name, value)
        existing.save()
        instance = existing
    _upsert_children(workspace, obj, stamp)
    return instance


def _context_invalidate(workspace: Workspace, obj: Obj) -> None:
    """Drop the cached panel context of the customer this object belongs to (after commit).

    Catalog objects (prices, products) and children (items, lines) bump nothing:
    their parent's upsert does, and a renamed product shows within the cache's TTL.
    """
    from .context_cache import context_cache_seconds, customer_context_invalidate

    if context_cache_seconds() <= 0:
        return
    kind = obj.get("object")
    customer_id = obj.get("id") if kind == "customer" else ref(obj.get("customer"))
    if not customer_id and kind == "refund":  # Stripe's refunds name only their charge
        customer_id = (
            MirrorCharge.objects.filter(workspace=workspace, stripe_id=ref(obj.get("charge")))
            .values_list("customer_id", flat=True)
            .first()
        )
    if customer_id:
        customer_context_invalidate(workspace_id=workspace.pk, customer_id=str(customer_id))


def _upsert_children(workspace: Workspace, obj: Obj, stamp: int) -> None:
    kind = obj.get("object")
    if kind == "subscription":
        items = (obj.get("items") or {}).get("data") or []
        seen = []
        for item in items:
            item = {**item, "subscription": obj["id"]}
            price = item.get("price")
            if isinstance(price, dict):
                mirror_upsert(workspace=workspace, obj=price, source_updated=stamp)
            mirror_upsert(workspace=workspace, obj=item, source_updated=stamp)
            seen.append(item["id"])
        # Items removed from the subscription (a plan change) leave the mirror too.
        if (obj.get("items") or {}).get("has_more") is False or items:
            MirrorSubscriptionItem.objects.filter(
                workspace=workspace, subscription_id=obj["id"]
            ).exclude(stripe_id__in=seen).delete()
    elif kind == "invoice":
        lines = (obj.get("lines") or {}).get("data") or []
        for line in lines:
            mirror_upsert(
                workspace=workspace, obj={**line, "invoice": obj["id"]}, source_updated=stamp
            )
    elif kind == "charge":
        for refund in (obj.get("refunds") or {}).get("data") or []:
            mirror_upsert(
                workspace=workspace,
                obj={**refund, "customer": refund.get("customer") or obj.get("customer")},
                source_updated=stamp,
            )
    if kind == "subscription" and "discounts" in obj:
        _upsert_discounts(
            workspace,
            obj.get("discounts") or [],
            stamp,
            customer_id=ref(obj.get("customer")),
            subscription_id=obj["id"],
        )
    elif kind == "customer" and "discount" in obj:
        _upsert_discounts(
            workspace,
            [obj["discount"]] if obj.get("discount") else [],
            stamp,
            customer_id=obj["id"],
            subscription_id="",
        )


def _upsert_discounts(
    workspace: Workspace,
    discounts: list[Any],
    stamp: int,
    *,
    customer_id: str,
    subscription_id: str,
) -> None:
    """The discounts an object carries now: expanded ones are stored, and any mirrored
    discount of that owner that is no longer listed is marked inactive (removed)."""
    current = [ref(d) for d in discounts if ref(d)]
    for discount in discounts:
        if isinstance(discount, dict) and discount.get("id"):
            mirror_upsert(
                workspace=workspace,
                obj={
                    **discount,
                    "customer": discount.get("customer") or customer_id,
                    "subscription": discount.get("subscription") or subscription_id,
                },
                source_updated=stamp,
            )
    MirrorDiscount.objects.filter(
        workspace=workspace,
        customer_id=customer_id,
        subscription_id=subscription_id,
        source_updated__lte=stamp,
        active=True,
    ).exclude(stripe_id__in=current).update(active=False)


def mirror_customer_balance_update(
    *, workspace: Workspace, customer_id: str, balance: Money
) -> int:
    """Stripe's ending balance after a balance transaction we just made (credit granted).

    Only a balance in the customer's own currency is the customer's ``balance``.
    """
    from .context_cache import customer_context_invalidate

    customer_context_invalidate(workspace_id=workspace.pk, customer_id=customer_id)
    return MirrorCustomer.objects.filter(
        workspace=workspace, stripe_id=customer_id, currency=balance.currency
    ).update(balance=balance.amount)


def mirror_upsert_many(
    *, workspace: Workspace, objects: Iterable[Obj], source_updated: int | None = None
) -> int:
    count = 0
    for obj in objects:
        if mirror_upsert(workspace=workspace, obj=obj, source_updated=source_updated) is not None:
            count += 1
    return count
