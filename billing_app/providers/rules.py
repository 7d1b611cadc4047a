"""Rules every provider applies to the objects it holds (all in Stripe's JSON shape).

The Stripe provider applies them to what Stripe returns, the sandbox to its own
Stripe-shaped records, so a rule such as "a disputed charge is not refunded" lives
once. Argument checks (before anything is read) are in ``arguments``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from ..errors import PreconditionFailed
from ..money import Money

Obj = dict[str, Any]


def ts(value: Any) -> datetime | None:
    """A Stripe timestamp (seconds since the epoch) as an aware datetime; None when unset."""
    return datetime.fromtimestamp(int(value), tz=UTC) if value else None


def subscription_items(subscription: Obj) -> list[Obj]:
    """A subscription's items (``items.data``)."""
    return list((subscription.get("items") or {}).get("data") or [])


def ref(value: Any) -> str:
    """An id from a field that holds either an id or an expanded object."""
    if isinstance(value, dict):
        return str(value.get("id") or "")
    return str(value or "")


def invoice_subscription_id(invoice: Obj) -> str:
    """The subscription an invoice bills ("" for a one-off invoice)."""
    parent = invoice.get("parent") or {}
    details = parent.get("subscription_details") or {}
    return ref(details.get("subscription"))


def charge_refundable(charge: Obj) -> Money:
    """What may still be refunded: captured minus already refunded."""
    captured = int(charge.get("amount_captured") or 0)
    refunded = int(charge.get("amount_refunded") or 0)
    return Money(max(captured - refunded, 0), str(charge.get("currency") or "").upper())


def charge_check_refundable(charge: Obj, amount: Money, *, window_days: int, now: datetime) -> None:
    """Refuse, before any money moves, a refund Stripe should not be asked for."""
    if charge.get("status") != "succeeded":
        raise PreconditionFailed(
            "Only a succeeded charge can be refunded.",
            code="charge_not_refundable",
            details={"status": charge.get("status")},
        )
    if charge.get("disputed"):
        raise PreconditionFailed(
            "This charge is disputed; the dispute decides where the money goes.",
            code="charge_disputed",
        )
    remainder = charge_refundable(charge)
    if amount.currency != remainder.currency:
        raise PreconditionFailed(
            f"The charge is in {remainder.currency}, not {amount.currency}.",
            code="currency_mismatch",
        )
    if remainder.amount == 0:
        raise PreconditionFailed("This charge is already fully refunded.", code="already_refunded")
    if amount.amount > remainder.amount:
        raise PreconditionFailed(
            f"At most {remainder} of this charge can still be refunded.",
            code="exceeds_refundable",
            details={"refundable": remainder.to_dict()},
        )
    created = ts(charge.get("created"))
    if created and window_days and (now - created).days > window_days:
        raise PreconditionFailed(
            f"The charge is older than the {window_days}-day refund window.",
            code="refund_window_passed",
            details={"charge_created": created.isoformat(), "window_days": window_days},
        )
