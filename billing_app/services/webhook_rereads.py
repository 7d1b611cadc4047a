"""What a Stripe event changes in the mirror: the object it is about, re-read from Stripe.

Used when the event's own payload cannot settle it (``services.webhook_payloads``: the
order against the mirror cannot be decided, or the payload is partial), and for the
events whose state is taken from the payload anyway (the deletes). Each event
type has a refresher that re-reads what the event names (the subscription, the
customer that carries a discount or tax id, the disputed charge, a payment intent's
latest charge, ...) *before* the processing transaction opens, or, for an object Stripe
no longer returns, takes the payload's state (``payload_upserts``, stamped with the
event's time). ``services.webhooks`` applies the result.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..errors import BillingDeskError, ProviderError
from ..providers.base import BillingProvider
from ..providers.stripe.readers import ref

Obj = dict[str, Any]


@dataclass
class Refresh:
    """What an event changes in the mirror, fetched before the transaction opens."""

    current: Obj | None = None
    # States re-read from Stripe, stamped with when the re-read was sent (``read_at``).
    upserts: list[Obj] = field(default_factory=list)
    # States taken from the payload (objects Stripe no longer returns), stamped with the event time.
    payload_upserts: list[Obj] = field(default_factory=list)
    invoice_deletes: list[str] = field(default_factory=list)


def _gone(exc: BillingDeskError) -> bool:
    return isinstance(exc, ProviderError) and exc.status == 404


def _reread(provider: BillingProvider, resource: str, obj_id: str, fallback: Obj) -> Refresh:
    if not obj_id:
        return Refresh()
    try:
        current = provider.retrieve_object(resource, obj_id)
    except BillingDeskError as exc:
        if _gone(exc):
            return Refresh(payload_upserts=[fallback] if fallback.get("id") else [])
        raise
    return Refresh(current=current, upserts=[current])


def _refresh_customer_deleted(provider: BillingProvider, obj: Obj) -> Refresh:
    return Refresh(payload_upserts=[{"id": obj.get("id"), "object": "customer", "deleted": True}])


def _refresh_subscription(provider: BillingProvider, obj: Obj) -> Refresh:
    return _reread(provider, "subscription", str(obj.get("id") or ""), obj)


def _refresh_discount_owner(provider: BillingProvider, obj: Obj) -> Refresh:
    """A discount has no endpoint of its own: re-read what carries it."""
    subscription_id = ref(obj.get("subscription"))
    if subscription_id:
        return _reread(provider, "subscription", subscription_id, {})
    return _reread(provider, "customer", ref(obj.get("customer")), {})


def _refresh_tax_id_owner(provider: BillingProvider, obj: Obj) -> Refresh:
    owner = obj.get("owner") or {}
    customer_id = ref(obj.get("customer")) or ref(owner.get("customer"))
    return _reread(provider, "customer", customer_id, {})


def _refresh_customer(provider: BillingProvider, obj: Obj) -> Refresh:
    refresh = _reread(provider, "customer", str(obj.get("id") or ""), {})
    if not refresh.current and not refresh.upserts:
        return _refresh_customer_deleted(provider, obj)
    return refresh


def _refresh_invoice_deleted(provider: BillingProvider, obj: Obj) -> Refresh:
    return Refresh(invoice_deletes=[str(obj.get("id") or "")])


def _refresh_invoice(provider: BillingProvider, obj: Obj) -> Refresh:
    invoice_id = str(obj.get("id") or "")
    if not invoice_id.startswith("in_"):  # e.g. invoice.upcoming: a preview, nothing stored
        return Refresh()
    try:
        current = provider.retrieve_object("invoice", invoice_id)
    except BillingDeskError as exc:
        if _gone(exc):
            return Refresh(invoice_deletes=[invoice_id])
        raise
    return Refresh(current=current, upserts=[current])


def _refresh_charge(provider: BillingProvider, obj: Obj) -> Refresh:
    return _reread(provider, "charge", str(obj.get("id") or ""), obj)


def _refresh_dispute(provider: BillingProvider, obj: Obj) -> Refresh:
    """The disputed charge, re-read: Stripe marks it ``disputed``."""
    refresh = _reread(provider, "charge", ref(obj.get("charge")), {})
    return Refresh(current=obj, upserts=refresh.upserts)


def _refresh_payment_intent(provider: BillingProvider, obj: Obj) -> Refresh:
    """The intent's latest charge carries the failure (code, decline reason) or the success."""
    intent = provider.retrieve_object("payment_intent", str(obj.get("id") or ""))
    charge = intent.get("latest_charge")
    if isinstance(charge, str) and charge:
        charge = provider.retrieve_object("charge", charge)
    return Refresh(current=intent, upserts=[charge] if isinstance(charge, dict) else [])


def _refresh_simple(resource: str) -> Callable[[BillingProvider, Obj], Refresh]:
    def refresh(provider: BillingProvider, obj: Obj) -> Refresh:
        return _reread(provider, resource, str(obj.get("id") or ""), obj)

    return refresh


def _refresh_catalog_deleted(provider: BillingProvider, obj: Obj) -> Refresh:
    return Refresh(payload_upserts=[{**obj, "active": False}])


# Ordered: the first matching pattern wins (``prefix.*`` matches everything under it).
REFRESHERS: list[tuple[str, Callable[[BillingProvider, Obj], Refresh]]] = [
    ("customer.subscription.*", _refresh_subscription),
    ("customer.discount.*", _refresh_discount_owner),
    ("customer.tax_id.*", _refresh_tax_id_owner),
    ("customer.deleted", _refresh_customer_deleted),
    ("customer.*", _refresh_customer),
    ("invoice.deleted", _refresh_invoice_deleted),
    ("invoice.*", _refresh_invoice),
    ("charge.dispute.*", _refresh_dispute),
    ("charge.*", _refresh_charge),
    ("payment_intent.payment_failed", _refresh_payment_intent),
    ("payment_intent.succeeded", _refresh_payment_intent),
    ("refund.*", _refresh_simple("refund")),
    ("payment_method.*", _refresh_simple("payment_method")),
    ("product.deleted", _refresh_catalog_deleted),
    ("price.deleted", _refresh_catalog_deleted),
    ("product.*", _refresh_simple("product")),
    ("price.*", _refresh_simple("price")),
]


def webhook_refresher_for(event_type: str) -> Callable[[BillingProvider, Obj], Refresh] | None:
    for pattern, refresher in REFRESHERS:
        if pattern == event_type or (
            pattern.endswith(".*") and event_type.startswith(pattern[:-1])
        ):
            return refresher
    return None
