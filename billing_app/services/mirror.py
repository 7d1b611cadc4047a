"""Writing provider objects (Stripe's JSON shapes) into the local mirror.

Providers never write here themselves (they sit below services). What Stripe returns
reaches ``mirror_upsert`` through the services that called it: a write's result
carries the objects it changed (``mirror_provider_changes``), webhook re-reads and the
backfill store what they read; the sandbox's simulated objects are stored the same
way. Each row keeps the raw object in ``data`` and the typed columns the panel queries.

The mirror never goes back in time (issue 12). Every state is stamped with when it
was *read* (``read_at``: the request's send time, or a webhook payload's event
``created``), never with when it is written: a re-read whose answer arrives late
would otherwise overwrite what a later re-read already stored. A write replaces
the row only if its read is not older, compared under the row lock
(``select_for_update``; the insert race falls back to the same comparison), and
never moves Stripe's forward-only fields back (a canceled subscription, a paid or
void invoice, a deleted customer). A state whose read time is unknown inserts a
missing row but never overwrites one: the object is re-fetched instead. Skipped
writes bump nothing in the context cache; applied ones bump the customer's version.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Model, Q
from django.utils import timezone

from ..errors import BillingDeskError
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
from ..providers.base import MIRRORED_RETRIEVABLE, changes_of

logger = logging.getLogger(__name__)

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
SUBSCRIPTION_FINAL = frozenset({"canceled", "incomplete_expired"})
INVOICE_FINAL = frozenset({"paid", "void"})
INVOICE_EARLY = frozenset({"draft", "open"})
# What a write that cannot be ordered can re-fetch (``BillingProvider.retrieve_object``).
REFETCHABLE = MIRRORED_RETRIEVABLE


def mirror_read_clock() -> datetime:
    """The read time of a provider request about to be sent: call it *before* sending."""
    return timezone.now()


def mirror_upsert(
    *,
    workspace: Workspace,
    obj: Obj,
    read_at: datetime | None = None,
    source_updated: int | None = None,
) -> Model | None:
    """Store one provider object (and its embedded children) unless the mirror holds a newer state.

    ``read_at`` is when the request that returned ``obj`` was sent; ``source_updated``
    (a webhook event's ``created``, unix seconds) stands for it when the state comes
    from an event payload. Without either, the write cannot be ordered: on a Stripe
    workspace a new row is inserted (marked "read time unknown", so any ordered read
    replaces it) but an existing row is never overwritten — the object is re-fetched
    and that read is stored instead. The sandbox *is* the billing system, so its
    writes are the state itself and are stamped with now.
    """
    if read_at is None and source_updated is not None:
        read_at = datetime.fromtimestamp(source_updated, tz=UTC)
    if read_at is None:
        return _upsert_unordered(workspace, obj)
    return _upsert(workspace, obj, read_at)


def _upsert_unordered(workspace: Workspace, obj: Obj) -> Model | None:
    if workspace.provider != Workspace.Provider.STRIPE:
        return _upsert(workspace, obj, mirror_read_clock())
    kind, object_id = str(obj.get("object") or ""), str(obj.get("id") or "")
    model = mirror_model_for(kind)
    if model is None or not object_id or (kind == "customer" and obj.get("deleted")):
        return _upsert(workspace, obj, None)
    if not model._default_manager.filter(workspace=workspace, stripe_id=object_id).exists():
        return _upsert(workspace, obj, None)  # inserted; an existing row is left alone
    return _refetch(workspace, kind, object_id)


def _refetch(workspace: Workspace, kind: str, object_id: str) -> Model | None:
    """Replace an unordered write by a fresh, ordered read; on failure the row stays as it is
    (the webhook that every Stripe change sends, or the next refresh, repairs it)."""
    from ..providers import get_provider

    model = mirror_model_for(kind)
    row = (
        model._default_manager.filter(workspace=workspace, stripe_id=object_id).first()
        if model
        else None
    )
    if kind not in REFETCHABLE:
        return row
    read_at = mirror_read_clock()
    try:
        current = get_provider(workspace).retrieve_object(kind, object_id)
    except BillingDeskError as exc:
        logger.warning(
            "re-fetch of %s %s for an unordered mirror write failed (%s); row left as it is",
            kind,
            object_id,
            exc.code,
        )
        return row
    return _upsert(workspace, current, read_at)


def _superseded(existing: Model, read_at: datetime | None, kind: str, fields: Obj) -> bool:
    """Whether the stored row is newer than the incoming state (then nothing is written)."""
    if read_at is None:
        return True  # an unordered state never overwrites
    stored = existing.read_at  # type: ignore[attr-defined]
    if stored is not None and read_at < stored:
        return True
    if stored is None and existing.source_updated > int(read_at.timestamp()):  # type: ignore[attr-defined]
        return True  # a row stored before read times were recorded
    status = getattr(existing, "status", "")
    if kind == "subscription":
        return status in SUBSCRIPTION_FINAL and fields["status"] not in SUBSCRIPTION_FINAL
    if kind == "invoice":
        return status in INVOICE_FINAL and fields["status"] in INVOICE_EARLY
    if kind == "customer":
        return bool(existing.deleted) and not fields["deleted"]  # type: ignore[attr-defined]
    return False


@transaction.atomic
def _upsert(workspace: Workspace, obj: Obj, read_at: datetime | None) -> Model | None:
    """Compare-and-set under the row lock: on PostgreSQL a concurrent writer of the same
    object waits for ours and then compares against what we committed."""
    kind = str(obj.get("object") or "")
    if kind == "customer" and obj.get("deleted"):
        # Final at Stripe (a deleted customer never comes back): needs no ordering.
        if MirrorCustomer.objects.filter(workspace=workspace, stripe_id=obj.get("id")).update(
            deleted=True
        ):
            _context_invalidate(workspace, obj)
        return None
    entry = MAPPERS.get(kind)
    if entry is None or not obj.get("id"):
        return None
    model, mapper = entry
    fields = mapper(obj)
    values = {
        **fields,
        "livemode": bool(obj.get("livemode")),
        "created": ts(obj.get("created")),
        "data": obj,
        "read_at": read_at,
        "source_updated": int(read_at.timestamp()) if read_at else 0,
    }
    existing = (
        model._default_manager.select_for_update()
        .filter(workspace=workspace, stripe_id=obj["id"])
        .first()
    )
    if existing is None:
        try:
            with transaction.atomic():
                instance = model._default_manager.create(
                    workspace=workspace, stripe_id=obj["id"], **values
                )
        except IntegrityError:
            # A concurrent writer inserted it between our read and our insert: lock theirs
            # and compare with it.
            existing = (
                model._default_manager.select_for_update()
                .filter(workspace=workspace, stripe_id=obj["id"])
                .first()
            )
            if existing is None:  # not the uniqueness race
                raise
    if existing is not None:
        if _superseded(existing, read_at, kind, fields):
            return existing  # older than what is stored: no write, no cache bump
        for name, value in values.items():
            setattr(existing, name, value)
        existing.save()
        instance = existing
    _context_invalidate(workspace, obj)
    _upsert_children(workspace, obj, read_at)
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


def _upsert_children(workspace: Workspace, obj: Obj, stamp: datetime | None) -> None:
    """The embedded objects, ordered by their parent's read (they were read with it)."""
    kind = obj.get("object")
    if kind == "subscription":
        items = (obj.get("items") or {}).get("data") or []
        seen = []
        for item in items:
            item = {**item, "subscription": obj["id"]}
            price = item.get("price")
            if isinstance(price, dict):
                _upsert(workspace, price, stamp)
            _upsert(workspace, item, stamp)
            seen.append(item["id"])
        # Items removed from the subscription (a plan change) leave the mirror too.
        if (obj.get("items") or {}).get("has_more") is False or items:
            MirrorSubscriptionItem.objects.filter(
                workspace=workspace, subscription_id=obj["id"]
            ).exclude(stripe_id__in=seen).delete()
    elif kind == "invoice":
        lines = (obj.get("lines") or {}).get("data") or []
        for line in lines:
            _upsert(workspace, {**line, "invoice": obj["id"]}, stamp)
    elif kind == "charge":
        for refund in (obj.get("refunds") or {}).get("data") or []:
            _upsert(
                workspace,
                {**refund, "customer": refund.get("customer") or obj.get("customer")},
                stamp,
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
    stamp: datetime | None,
    *,
    customer_id: str,
    subscription_id: str,
) -> None:
    """The discounts an object carries now: expanded ones are stored, and any mirrored
    discount of that owner that is no longer listed is marked inactive (removed)."""
    current = [ref(d) for d in discounts if ref(d)]
    for discount in discounts:
        if isinstance(discount, dict) and discount.get("id"):
            _upsert(
                workspace,
                {
                    **discount,
                    "customer": discount.get("customer") or customer_id,
                    "subscription": discount.get("subscription") or subscription_id,
                },
                stamp,
            )
    if stamp is not None:
        mirror_discounts_deactivate(
            workspace=workspace,
            customer_id=customer_id,
            subscription_id=subscription_id,
            listed=current,
            read_at=stamp,
        )


def mirror_discounts_deactivate(
    *,
    workspace: Workspace,
    customer_id: str,
    subscription_id: str,
    listed: list[str],
    read_at: datetime,
) -> int:
    """Mark inactive the owner's mirrored discounts that a read at ``read_at`` no longer lists
    (only those stored from an older read: a newer one knows better)."""
    return (
        MirrorDiscount.objects.filter(
            workspace=workspace,
            customer_id=customer_id,
            subscription_id=subscription_id,
            active=True,
        )
        .filter(
            Q(read_at__lte=read_at)
            | Q(read_at__isnull=True, source_updated__lte=int(read_at.timestamp()))
        )
        .exclude(stripe_id__in=listed)
        .update(active=False)
    )


def mirror_customer_balance_update(
    *, workspace: Workspace, customer_id: str, balance: Money, read_at: datetime | None = None
) -> int:
    """Stripe's ending balance after a balance transaction we just made (credit granted).

    Only a balance in the customer's own currency is the customer's ``balance``. Ordered
    like any write (``read_at``: when the balance transaction was sent); without a read
    time the customer is re-fetched instead.
    """
    if read_at is None:
        if workspace.provider == Workspace.Provider.STRIPE:
            return 1 if _refetch(workspace, "customer", customer_id) is not None else 0
        read_at = mirror_read_clock()
    with transaction.atomic():
        customer = (
            MirrorCustomer.objects.select_for_update()
            .filter(workspace=workspace, stripe_id=customer_id, currency=balance.currency)
            .first()
        )
        if customer is None or (customer.read_at is not None and read_at < customer.read_at):
            return 0
        customer.balance = balance.amount
        customer.data = {**(customer.data or {}), "balance": balance.amount}
        customer.read_at = read_at
        customer.source_updated = int(read_at.timestamp())
        customer.save(update_fields=["balance", "data", "read_at", "source_updated", "synced_at"])
        _context_invalidate(workspace, {"object": "customer", "id": customer_id})
    return 1


def mirror_provider_changes(*, workspace: Workspace, result: Any) -> int:
    """Store what a provider write changed (``result.changes``, see ``providers.base``).

    Called by the service that made the write, right after the provider answered, so
    the panel shows the result at once. A failure to mirror is logged, never raised:
    the money has moved, and the webhook that follows (or the next refresh) repairs
    the mirror. Returns how many objects are mirrored (stored now or already newer).
    """
    changes = changes_of(result)
    stored = 0
    for obj in changes.objects:
        try:
            if mirror_upsert(workspace=workspace, obj=obj, read_at=changes.read_at) is not None:
                stored += 1
        except Exception:  # the provider write stands; webhooks repair the mirror
            logger.exception(
                "mirror upsert failed after a provider write (workspace %s, %s %s)",
                workspace.pk,
                obj.get("object"),
                obj.get("id"),
            )
    for change in changes.balances:
        try:
            mirror_customer_balance_update(
                workspace=workspace,
                customer_id=change.customer_id,
                balance=change.balance,
                read_at=changes.read_at,
            )
        except Exception:
            logger.exception("mirror balance update failed (workspace %s)", workspace.pk)
    return stored


def mirror_upsert_many(
    *,
    workspace: Workspace,
    objects: Iterable[Obj],
    read_at: datetime | None = None,
    source_updated: int | None = None,
) -> int:
    """Each object through ``mirror_upsert``; how many are mirrored (stored now or already newer)."""
    count = 0
    for obj in objects:
        stored = mirror_upsert(
            workspace=workspace, obj=obj, read_at=read_at, source_updated=source_updated
        )
        if stored is not None:
            count += 1
    return count
