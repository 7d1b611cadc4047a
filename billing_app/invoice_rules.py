"""The next invoice: what a subscription's next renewal will bill, the one rule.

Pure functions over plain values, used by the panel's context
(``selectors.context.subscription.next_invoice``, from the mirrored Stripe JSON)
and the overcharge investigation (``selectors.breakdown.next_invoice``, from the
mirror rows), so the two figures cannot drift apart. Stripe's upcoming invoice is
the reference:

* **Whether there is one** (:func:`renews`): a subscription billing now (the
  rulebook's ``is_billing``) that is not set to cancel and whose collection is not
  paused with ``void``.
* **When** (:func:`renewal_at`): the trial end while trialing, else the earliest
  period end of its items (Stripe moved periods onto items), else the subscription's.
* **Which items** (:func:`billed_at_renewal`): the items whose period ends on the
  renewal day. All items of a Stripe subscription normally share one billing
  interval, so this is every item; an item on another cycle (possible with Stripe's
  mixed-interval subscriptions, or a mirror that lags) is billed at its own period
  end, not at this renewal. At a trial's end every item is billed.
* **At which price**: the current one, or the price of a change scheduled for the
  renewal (a downgrade at period end) for the item it replaces.
* **Pending invoice items** (e.g. prorations of a seat change) are swept into the
  next invoice. Stripe applies subscription discounts only to the ``discountable``
  ones (it defaults to false for prorations and negative items).
* **Discounts** (:func:`discount_applies`): each discount of the subscription still
  attached, not ended by the renewal (``end`` after it), in order — a percentage of
  what is left, or an amount off in the invoice's currency — never below zero. A
  ``once`` coupon applies when no invoice has consumed it yet: it was attached after
  the current period began (an invoice opening a period consumes a ``once``
  coupon attached by then, and Stripe then removes it).
* **Tax**: an exclusive rate on the discounted amount (inclusive rates are already
  in the prices), rounded half-even. The callers choose the rate:
  :func:`exclusive_tax_rate` of the subscription's tax rates, or an observed rate
  when Stripe decides it (automatic tax).

Amounts are minor units before any customer credit balance.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from .subscriptions import ItemView, PriceView, is_billing, period_amount

ONCE = "once"


@dataclass(frozen=True, slots=True)
class DiscountView:
    """The facts of a discount (a coupon applied to a subscription) the rule needs."""

    duration: str  # once, repeating, forever
    percent_off: Decimal | None = None
    amount_off: int | None = None  # minor units of ``currency``
    currency: str = ""  # of ``amount_off``, upper case ("" when none)
    start: datetime | None = None
    end: datetime | None = None
    active: bool = True  # still attached (a removed or consumed discount is not)


@dataclass(frozen=True, slots=True)
class RenewalItem:
    """A subscription item and the end of its current period."""

    view: ItemView
    period_end: datetime | None = None


@dataclass(frozen=True, slots=True)
class ScheduledPrice:
    """A price change scheduled for the renewal: ``item_id`` moves to ``price``."""

    item_id: str
    price: PriceView


@dataclass(frozen=True, slots=True)
class PendingItem:
    """A pending invoice item the next invoice sweeps in (e.g. a seat change's proration)."""

    amount: int  # minor units, signed
    discountable: bool = False


@dataclass(frozen=True, slots=True)
class InvoiceEstimate:
    """The next invoice's figures, in minor units: ``total = subtotal - discount + tax``."""

    subtotal: int
    discount: int
    tax: int

    @property
    def total(self) -> int:
        return self.subtotal - self.discount + self.tax


# --- adapters -------------------------------------------------------------------------------


def _timestamp(value: Any) -> datetime | None:
    return datetime.fromtimestamp(int(value), tz=UTC) if value else None


def _decimal(value: Any) -> Decimal | None:
    return None if value is None or value == "" else Decimal(str(value))


def discount_view_from_stripe(discount: Mapping[str, Any]) -> DiscountView:
    """A Stripe-shaped discount (the coupon under ``source.coupon``, or ``coupon``)."""
    source = discount.get("source") or {}
    coupon: Mapping[str, Any] = {}
    for candidate in (source.get("coupon"), discount.get("coupon")):
        if isinstance(candidate, Mapping):
            coupon = candidate
            break
    amount_off = coupon.get("amount_off")
    return DiscountView(
        duration=str(coupon.get("duration") or ""),
        percent_off=_decimal(coupon.get("percent_off")),
        amount_off=int(amount_off) if amount_off is not None else None,
        currency=str(coupon.get("currency") or "").upper(),
        start=_timestamp(discount.get("start")),
        end=_timestamp(discount.get("end")),
        active=not discount.get("deleted"),
    )


def discount_view_from_mirror(row: Any) -> DiscountView:
    """A ``MirrorDiscount`` row (duck-typed: this module imports no models)."""
    amount_off = getattr(row, "amount_off", None)
    return DiscountView(
        duration=str(getattr(row, "duration", "") or ""),
        percent_off=_decimal(getattr(row, "percent_off", None)),
        amount_off=int(amount_off) if amount_off is not None else None,
        currency=str(getattr(row, "currency", "") or "").upper(),
        start=getattr(row, "start", None),
        end=getattr(row, "end", None),
        active=bool(getattr(row, "active", True)),
    )


def pending_item_from_stripe(item: Mapping[str, Any]) -> PendingItem:
    """A Stripe ``invoiceitem`` not yet on an invoice."""
    amount = int(item.get("amount") or 0)
    default = amount >= 0 and not item.get("proration")
    return PendingItem(amount=amount, discountable=bool(item.get("discountable", default)))


def exclusive_tax_rate(tax_rates: Iterable[Any]) -> Decimal | None:
    """The share added on top by Stripe tax rate objects (``percentage``), summed over the
    active exclusive ones; ``None`` when there are none. Inclusive rates are already in
    the price; a rate given by id only (not expanded) cannot be read and counts for none.
    """
    total = Decimal(0)
    found = False
    for rate in tax_rates:
        if not isinstance(rate, Mapping) or rate.get("inclusive"):
            continue
        if rate.get("active") is False or rate.get("percentage") is None:
            continue
        total += Decimal(str(rate["percentage"])) / 100
        found = True
    return total if found else None


# --- the rule -------------------------------------------------------------------------------


def renews(
    *,
    status: str | None,
    cancel_at_period_end: bool = False,
    cancel_at: datetime | None = None,
    renewal: datetime | None = None,
    pause_behavior: str | None = None,
) -> bool:
    """Whether the subscription has a next invoice at all (see the module docstring).

    A cancellation scheduled for a date (``cancel_at``) stops the renewal only when it
    falls on or before it: Stripe still bills the renewals before that date.
    """
    if not is_billing(status) or cancel_at_period_end:
        return False
    if cancel_at is not None and (renewal is None or cancel_at <= renewal):
        return False
    return pause_behavior != "void"


def renewal_at(
    *,
    status: str | None,
    trial_end: datetime | None,
    item_period_ends: Iterable[datetime | None],
    period_end: datetime | None,
) -> datetime | None:
    """When the next invoice comes: the trial end while trialing, else the earliest
    period end of the items, else the subscription's."""
    if status == "trialing" and trial_end is not None:
        return trial_end
    ends = [end for end in item_period_ends if end is not None]
    return min(ends) if ends else period_end


def billed_at_renewal(item: RenewalItem, *, renews_at: datetime, trialing: bool = False) -> bool:
    """Whether the item is billed at this renewal: its period ends that day (or no period
    is known), or a trial ends (every item starts billing)."""
    if trialing or item.period_end is None:
        return True
    return item.period_end.date() == renews_at.date()


def discount_applies(
    discount: DiscountView, *, renews_at: datetime, period_start: datetime | None
) -> bool:
    """Whether the discount reduces the invoice made at ``renews_at``."""
    if not discount.active:
        return False
    if discount.end is not None and discount.end <= renews_at:
        return False
    if discount.duration == ONCE:
        # consumed by the invoice that opened the current period unless attached after it
        if discount.start is None or period_start is None:
            return False
        return discount.start > period_start
    return True


def _round(value: Decimal) -> int:
    return int(value.quantize(Decimal(1), rounding=ROUND_HALF_EVEN))


def discount_total(discounts: Iterable[DiscountView], base: int, currency: str) -> int:
    """What the discounts take off ``base`` (minor units of ``currency``), applied in
    order to what is left; an amount off in another currency takes nothing."""
    left = max(base, 0)
    for discount in discounts:
        if discount.percent_off is not None:
            cut = _round(Decimal(left) * discount.percent_off / 100)
        elif discount.amount_off and discount.currency in ("", currency.upper()):
            cut = discount.amount_off
        else:
            continue
        left -= min(max(cut, 0), left)
    return max(base, 0) - left


def next_invoice_amounts(
    *,
    items: Sequence[RenewalItem],
    renews_at: datetime,
    period_start: datetime | None,
    currency: str,
    trialing: bool = False,
    discounts: Iterable[DiscountView] = (),
    scheduled: ScheduledPrice | None = None,
    pending: Iterable[PendingItem] = (),
    tax_rate: Decimal | None = None,
) -> InvoiceEstimate:
    """What the subscription's invoice at ``renews_at`` will bill (the module docstring)."""
    recurring = 0
    for item in items:
        if not billed_at_renewal(item, renews_at=renews_at, trialing=trialing):
            continue
        if scheduled is not None and scheduled.item_id == item.view.id:
            recurring += (scheduled.price.unit_amount or 0) * item.view.quantity
        else:
            recurring += period_amount(item.view)
    pending = list(pending)
    subtotal = recurring + sum(p.amount for p in pending)
    discountable = recurring + sum(p.amount for p in pending if p.discountable)
    applying = [
        d for d in discounts if discount_applies(d, renews_at=renews_at, period_start=period_start)
    ]
    discount = discount_total(applying, discountable, currency)
    tax = _round(Decimal(subtotal - discount) * tax_rate) if tax_rate else 0
    return InvoiceEstimate(subtotal=subtotal, discount=discount, tax=tax)


__all__ = [
    "DiscountView",
    "InvoiceEstimate",
    "PendingItem",
    "RenewalItem",
    "ScheduledPrice",
    "billed_at_renewal",
    "discount_applies",
    "discount_total",
    "discount_view_from_mirror",
    "discount_view_from_stripe",
    "exclusive_tax_rate",
    "next_invoice_amounts",
    "pending_item_from_stripe",
    "renewal_at",
    "renews",
]
