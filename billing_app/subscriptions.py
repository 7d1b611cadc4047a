"""The subscription rulebook: what a plan item is, what a subscription costs a month,
which statuses are live, and when a plan change is allowed.

Pure functions over plain values, used by the actions, the customer context, the plan
list, the Stripe provider and the sandbox alike, so a rule cannot drift between the
panel, the precondition checks and what the billing system is asked to do.

Items and prices come in two shapes — Stripe-shaped dicts (providers, the mirrored JSON)
and mirror rows (``MirrorSubscriptionItem``, ``MirrorPrice``) — and are read through
:class:`ItemView` / :class:`PriceView`, built by the ``*_from_stripe`` and
``*_from_mirror`` adapters below.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, TypeVar

from django.utils.translation import gettext

from .errors import PreconditionFailed

# Stripe statuses in which a subscription still exists and bills (or will again):
# ``paused`` is a trial that ended without a payment method; ``canceled``,
# ``incomplete`` and ``incomplete_expired`` are not live.
LIVE_STATUSES: frozenset[str] = frozenset({"active", "trialing", "past_due", "unpaid", "paused"})
# Stripe's final statuses: nothing changes a subscription in them any more.
ENDED_STATUSES: frozenset[str] = frozenset({"canceled", "incomplete_expired"})
# Statuses in which a subscription is billing now (renewals are expected).
BILLING_STATUSES: frozenset[str] = frozenset({"active", "trialing", "past_due", "unpaid"})

# Months per billing interval, to bring any recurring price to a monthly amount.
MONTHS_PER_INTERVAL: Mapping[str, Decimal] = {
    "day": Decimal(12) / Decimal(365),
    "week": Decimal(12) / Decimal(52),
    "month": Decimal(1),
    "year": Decimal(12),
}
PERIODS_PER_YEAR: Mapping[str, int] = {"day": 365, "week": 52, "month": 12, "year": 1}

# The product metadata flag that marks an add-on (an extra item beside the plan).
ADDON_METADATA_KEY = "addon"


@dataclass(frozen=True, slots=True)
class PriceView:
    """The facts of a price the rules need."""

    id: str
    product_id: str
    currency: str  # upper case
    unit_amount: int | None  # minor units; None for tiered / custom prices
    recurring: bool
    interval: str  # "" when not recurring
    interval_count: int
    active: bool

    @property
    def months_per_period(self) -> Decimal:
        """Months one billing period lasts (``year`` → 12, ``week`` → 12/52)."""
        factor = MONTHS_PER_INTERVAL.get(self.interval or "month", Decimal(1))
        return factor * max(self.interval_count, 1)


@dataclass(frozen=True, slots=True)
class ItemView:
    """The facts of a subscription item the rules need."""

    id: str
    price: PriceView
    quantity: int
    addon: bool


def _ref(value: Any) -> str:
    if isinstance(value, Mapping):
        return str(value.get("id") or "")
    return str(value or "")


def is_addon_product(product: Any, addon_products: Collection[str] = ()) -> bool:
    """Whether a product (an id or an expanded Stripe product) is marked as an add-on."""
    if isinstance(product, Mapping):
        metadata = product.get("metadata") or {}
        if str(metadata.get(ADDON_METADATA_KEY) or "").lower() == "true":
            return True
    return bool(_ref(product)) and _ref(product) in addon_products


def price_view_from_stripe(price: Mapping[str, Any]) -> PriceView:
    recurring = price.get("recurring") or {}
    unit_amount = price.get("unit_amount")
    return PriceView(
        id=str(price.get("id") or ""),
        product_id=_ref(price.get("product")),
        currency=str(price.get("currency") or "").upper(),
        unit_amount=int(unit_amount) if unit_amount is not None else None,
        recurring=bool(recurring) or price.get("type") == "recurring",
        interval=str(recurring.get("interval") or ""),
        interval_count=int(recurring.get("interval_count") or 1),
        active=bool(price.get("active", True)),
    )


def item_view_from_stripe(
    item: Mapping[str, Any], *, addon_products: Collection[str] = ()
) -> ItemView:
    """A Stripe-shaped subscription item; its product is an add-on when the expanded
    product says so or its id is in ``addon_products``."""
    price = item.get("price") or {}
    quantity = item.get("quantity")
    return ItemView(
        id=str(item.get("id") or ""),
        price=price_view_from_stripe(price),
        quantity=int(quantity) if quantity is not None else 1,
        addon=is_addon_product(price.get("product"), addon_products),
    )


def price_view_from_mirror(row: Any) -> PriceView:
    """A ``MirrorPrice`` row (duck-typed: this module imports no models)."""
    interval = str(getattr(row, "recurring_interval", "") or "")
    unit_amount = getattr(row, "unit_amount", None)
    return PriceView(
        id=str(row.stripe_id),
        product_id=str(getattr(row, "product_id", "") or ""),
        currency=str(getattr(row, "currency", "") or "").upper(),
        unit_amount=int(unit_amount) if unit_amount is not None else None,
        recurring=getattr(row, "type", "recurring") == "recurring" and bool(interval),
        interval=interval,
        interval_count=int(getattr(row, "recurring_interval_count", 1) or 1),
        active=bool(getattr(row, "active", True)),
    )


def item_view_from_mirror(row: Any, *, addon_products: Collection[str] = ()) -> ItemView:
    """A ``MirrorSubscriptionItem`` row (duck-typed)."""
    unit_amount = getattr(row, "unit_amount", None)
    product_id = str(getattr(row, "product_id", "") or "")
    quantity = getattr(row, "quantity", None)
    return ItemView(
        id=str(row.stripe_id),
        price=PriceView(
            id=str(getattr(row, "price_id", "") or ""),
            product_id=product_id,
            currency=str(getattr(row, "currency", "") or "").upper(),
            unit_amount=int(unit_amount) if unit_amount is not None else None,
            recurring=True,
            interval=str(getattr(row, "recurring_interval", "") or "month"),
            interval_count=int(getattr(row, "recurring_interval_count", 1) or 1),
            active=True,
        ),
        quantity=int(quantity) if quantity is not None else 1,
        addon=bool(product_id) and product_id in addon_products,
    )


def seats_used(*metadata: Mapping[str, Any] | None) -> int | None:
    """Seats in use, as the billing system records them: metadata ``seats_used`` of the
    first source that has it (the plan item's, then the subscription's). ``None`` when
    none records it or the value is not a whole number."""
    for source in metadata:
        value = (source or {}).get("seats_used")
        if value in (None, ""):
            continue
        text = str(value).strip()
        return int(text) if text.isdigit() else None
    return None


def discount_add_check(*, subscription_id: str, current_discount_ids: Iterable[str]) -> None:
    """Billing Desk adds a discount only to a subscription that has none in force.

    A second one would either stack past the role's percent limit (Stripe keeps every
    discount in the list) or, set as a new list, silently drop the one the customer was
    given. ``discount_exists`` names the discount in force instead.
    """
    current = [d for d in current_discount_ids if d]
    if current:
        raise PreconditionFailed(
            gettext(
                "Subscription %(id)s already has a discount (%(discount)s); a second one is "
                "not added. Remove or change it in Stripe first."
            )
            % {"id": subscription_id, "discount": current[0]},
            code="discount_exists",
            details={"discount_id": current[0]},
        )


def is_live(status: str | None) -> bool:
    return (status or "") in LIVE_STATUSES


def is_billing(status: str | None) -> bool:
    return (status or "") in BILLING_STATUSES


def period_amount(item: ItemView) -> int:
    """What the item costs per billing period, in minor units (before discounts and tax)."""
    return (item.price.unit_amount or 0) * item.quantity


def monthly_amount(item: ItemView) -> Decimal:
    """What the item costs per month, in (fractional) minor units."""
    return Decimal(period_amount(item)) / item.price.months_per_period


def monthly_total(items: Iterable[ItemView]) -> Decimal:
    return sum((monthly_amount(i) for i in items), Decimal(0))


T = TypeVar("T")


def plan_item(
    items: Iterable[T],
    view: Callable[[T], ItemView],
    *,
    new_product: str | None = None,
) -> T | None:
    """The subscription's plan item: the one a plan change replaces and seats are counted on.

    The item selling ``new_product`` (a plan change within a product) when there is
    one; otherwise the non-add-on item with the largest monthly amount. ``None`` when
    every item is an add-on (or there are none).
    """
    pairs = [(item, view(item)) for item in items]
    if new_product:
        for item, v in pairs:
            if v.price.product_id == new_product and not v.addon:
                return item
    candidates = [(item, v) for item, v in pairs if not v.addon]
    if not candidates:
        return None
    return max(candidates, key=lambda pair: monthly_amount(pair[1]))[0]


def plan_item_required(
    items: Iterable[T], view: Callable[[T], ItemView], *, new_product: str | None = None
) -> T:
    """:func:`plan_item`, or ``no_plan_item`` when the subscription has none."""
    item = plan_item(items, view, new_product=new_product)
    if item is None:
        raise PreconditionFailed(
            gettext("The subscription has no plan item (every item is an add-on)."),
            code="no_plan_item",
        )
    return item


def plan_change_check(*, status: str | None, current: PriceView, new: PriceView) -> None:
    """Whether a live subscription item on ``current`` may move to ``new``.

    One set of error codes for every provider. Interval changes are allowed (Stripe
    resets the billing anchor); currency changes are not (Stripe refuses them).
    """
    if not is_live(status):
        raise PreconditionFailed(
            gettext("Only a live subscription can change plan."),
            code="subscription_not_active",
            details={"status": status or ""},
        )
    if current.id and current.id == new.id:
        raise PreconditionFailed(
            gettext("The subscription is already on this price."), code="same_price"
        )
    if not new.active:
        raise PreconditionFailed(gettext("The target price is archived."), code="price_inactive")
    if not new.recurring:
        raise PreconditionFailed(
            gettext("The target price is not a recurring price."), code="price_not_recurring"
        )
    if new.currency != current.currency:
        raise PreconditionFailed(
            gettext("A subscription cannot change currency."), code="currency_mismatch"
        )
    if current.unit_amount is None or new.unit_amount is None:
        raise PreconditionFailed(
            gettext("Only per-unit prices can be compared for a plan change."),
            code="price_not_comparable",
        )
    if new.interval not in PERIODS_PER_YEAR or current.interval not in PERIODS_PER_YEAR:
        raise PreconditionFailed(gettext("Unknown billing interval."), code="price_not_comparable")


def plan_change_direction(*, current: PriceView, new: PriceView, quantity: int) -> str:
    """``upgrade`` when the monthly amount grows (or stays), else ``downgrade``."""
    before = Decimal((current.unit_amount or 0) * quantity) / current.months_per_period
    after = Decimal((new.unit_amount or 0) * quantity) / new.months_per_period
    return "upgrade" if after >= before else "downgrade"


def mrr_delta(before: Iterable[ItemView], after: Iterable[ItemView]) -> int:
    """The change in monthly recurring revenue, in whole minor units (half-even)."""
    change = monthly_total(after) - monthly_total(before)
    return int(change.quantize(Decimal(1)))


def discounted_mrr_delta(monthly: Decimal | int, *, percent_off: Decimal | float | str) -> int:
    """MRR removed by a percentage discount on a monthly amount (negative)."""
    cut = Decimal(monthly) * Decimal(str(percent_off)) / 100
    return -int(cut.quantize(Decimal(1)))


__all__ = [
    "BILLING_STATUSES",
    "ENDED_STATUSES",
    "LIVE_STATUSES",
    "MONTHS_PER_INTERVAL",
    "PERIODS_PER_YEAR",
    "ItemView",
    "PriceView",
    "discount_add_check",
    "discounted_mrr_delta",
    "is_addon_product",
    "is_billing",
    "is_live",
    "item_view_from_mirror",
    "item_view_from_stripe",
    "monthly_amount",
    "monthly_total",
    "mrr_delta",
    "period_amount",
    "plan_change_check",
    "plan_change_direction",
    "plan_item",
    "plan_item_required",
    "price_view_from_mirror",
    "price_view_from_stripe",
    "seats_used",
]
