"""The next invoice, one rule (billing_app.invoice_rules): Stripe's upcoming invoice as the
reference, and the panel's context and the overcharge investigation agreeing on it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from billing_app.invoice_rules import (
    DiscountView,
    PendingItem,
    RenewalItem,
    ScheduledPrice,
    billed_at_renewal,
    discount_applies,
    discount_view_from_mirror,
    discount_view_from_stripe,
    exclusive_tax_rate,
    next_invoice_amounts,
    pending_item_from_stripe,
    renewal_at,
    renews,
)
from billing_app.subscriptions import ItemView, PriceView

PERIOD_START = datetime(2026, 1, 10, tzinfo=UTC)
RENEWAL = datetime(2026, 2, 10, tzinfo=UTC)
DURING = PERIOD_START + timedelta(days=5)


def price(unit_amount: int, *, id: str = "price_a", interval: str = "month") -> PriceView:
    return PriceView(
        id=id,
        product_id="prod_a",
        currency="USD",
        unit_amount=unit_amount,
        recurring=True,
        interval=interval,
        interval_count=1,
        active=True,
    )


def item(
    unit_amount: int, quantity: int = 1, *, id: str = "si_a", ends: datetime | None = RENEWAL
) -> RenewalItem:
    return RenewalItem(ItemView(id, price(unit_amount), quantity, addon=False), ends)


def estimate(items, **kwargs):
    kwargs.setdefault("renews_at", RENEWAL)
    kwargs.setdefault("period_start", PERIOD_START)
    kwargs.setdefault("currency", "USD")
    return next_invoice_amounts(items=items, **kwargs)


def once(percent: str = "20", *, start: datetime = DURING) -> DiscountView:
    return DiscountView(duration="once", percent_off=Decimal(percent), start=start)


# --- items and prices ---------------------------------------------------------------------------


def test_the_items_due_at_the_renewal_at_their_price():
    result = estimate([item(3_000, 35), item(5_000, id="si_b")])

    assert (result.subtotal, result.discount, result.tax, result.total) == (110_000, 0, 0, 110_000)


def test_an_item_on_another_cycle_is_billed_at_its_own_period_end():
    # a yearly add-on renewing in June is not on February's invoice ...
    yearly = item(120_000, id="si_yearly", ends=datetime(2026, 6, 1, tzinfo=UTC))

    assert estimate([item(3_000, 35), yearly]).total == 105_000
    # ... but a trial's end starts every item billing
    assert estimate([item(3_000, 35), yearly], trialing=True).total == 225_000
    assert billed_at_renewal(item(1, ends=None), renews_at=RENEWAL)


def test_a_change_scheduled_for_the_renewal_is_priced_at_the_new_price():
    scheduled = ScheduledPrice("si_a", price(2_000, id="price_small"))

    assert estimate([item(3_000, 35)], scheduled=scheduled).total == 70_000


def test_pending_invoice_items_are_swept_in_and_only_discountable_ones_discounted():
    # a seat change's prorations (+$273.99 for more seats, -$100 credit) and a $50 fee
    pending = [
        PendingItem(27_399),
        PendingItem(-10_000),
        PendingItem(5_000, discountable=True),
    ]
    forever = DiscountView(duration="forever", percent_off=Decimal(10))

    result = estimate([item(3_000, 35)], pending=pending, discounts=[forever])

    # subtotal 105,000 + 27,399 - 10,000 + 5,000; 10 % of the discountable 110,000
    assert (result.subtotal, result.discount, result.total) == (127_399, 11_000, 116_399)


def test_pending_items_read_from_stripe_default_discountable_as_stripe_does():
    assert pending_item_from_stripe({"amount": 5_000, "discountable": True}) == PendingItem(
        5_000, True
    )
    assert pending_item_from_stripe({"amount": 27_399, "proration": True}) == PendingItem(27_399)
    assert pending_item_from_stripe({"amount": -100}) == PendingItem(-100)
    assert pending_item_from_stripe({"amount": 100}) == PendingItem(100, True)


# --- once coupons ----------------------------------------------------------------------------


def test_a_once_coupon_added_this_period_applies_to_the_next_invoice():
    result = estimate([item(3_000, 35)], discounts=[once("20")])

    assert (result.discount, result.total) == (21_000, 84_000)


def test_a_once_coupon_an_invoice_has_consumed_does_not():
    # attached when the current period began: the invoice opening it consumed the coupon
    at_start = once("20", start=PERIOD_START)
    before = once("20", start=PERIOD_START - timedelta(days=3))
    removed = DiscountView(duration="once", percent_off=Decimal(20), start=DURING, active=False)

    for discount in (at_start, before, removed):
        assert estimate([item(3_000, 35)], discounts=[discount]).discount == 0
        assert not discount_applies(discount, renews_at=RENEWAL, period_start=PERIOD_START)


# --- percent and amount off, ended discounts -------------------------------------------------


def test_percent_and_amount_off_apply_in_order_to_what_is_left():
    ten = DiscountView(duration="repeating", percent_off=Decimal(10))
    fifty = DiscountView(duration="forever", amount_off=5_000, currency="USD")

    result = estimate([item(3_000, 35)], discounts=[ten, fifty])

    # 105,000 less 10 % (10,500) = 94,500, less $50 = 89,500
    assert (result.discount, result.total) == (15_500, 89_500)
    # an amount off larger than the invoice takes it to zero, never below
    big = DiscountView(duration="forever", amount_off=500_000, currency="USD")
    assert estimate([item(3_000, 35)], discounts=[big]).total == 0


def test_an_amount_off_in_another_currency_takes_nothing():
    euros = DiscountView(duration="forever", amount_off=5_000, currency="EUR")

    assert estimate([item(3_000, 35)], discounts=[euros]).discount == 0


def test_a_discount_ending_by_the_renewal_does_not_apply():
    ended = DiscountView(duration="repeating", percent_off=Decimal(50), end=RENEWAL)
    running = DiscountView(
        duration="repeating", percent_off=Decimal(50), end=RENEWAL + timedelta(seconds=1)
    )

    assert estimate([item(10_000)], discounts=[ended]).total == 10_000
    assert estimate([item(10_000)], discounts=[running]).total == 5_000


# --- tax -------------------------------------------------------------------------------------


def test_tax_is_added_on_the_discounted_amount():
    ten = DiscountView(duration="forever", percent_off=Decimal(10))

    result = estimate([item(99_000)], discounts=[ten], tax_rate=Decimal("0.19"))

    # 99,000 - 9,900 = 89,100; 19 % of it is 16,929
    assert (result.subtotal, result.discount, result.tax, result.total) == (
        99_000,
        9_900,
        16_929,
        106_029,
    )


def test_the_exclusive_tax_rate_of_stripe_tax_rates():
    vat = {"object": "tax_rate", "percentage": 19, "inclusive": False, "active": True}
    included = {"object": "tax_rate", "percentage": 20, "inclusive": True, "active": True}

    assert exclusive_tax_rate([vat]) == Decimal("0.19")
    assert exclusive_tax_rate([vat, {**vat, "percentage": 1.5}]) == Decimal("0.205")
    assert exclusive_tax_rate([included]) is None
    assert exclusive_tax_rate(["txr_not_expanded"]) is None
    assert exclusive_tax_rate([]) is None


def test_tax_rounds_half_even():
    # 10,050 × 5 % = 502.5 → 502
    assert estimate([item(10_050)], tax_rate=Decimal("0.05")).tax == 502


# --- whether and when ------------------------------------------------------------------------


def test_which_subscriptions_renew():
    assert renews(status="active")
    assert renews(status="trialing")
    assert renews(status="past_due", pause_behavior="keep_as_draft")
    assert not renews(status="canceled")
    assert not renews(status="paused")
    assert not renews(status="active", cancel_at_period_end=True)
    # A cancellation on a date stops the renewals from that date on; Stripe bills those before.
    assert not renews(status="active", cancel_at=RENEWAL, renewal=RENEWAL)
    assert not renews(status="active", cancel_at=RENEWAL)
    assert renews(status="active", cancel_at=RENEWAL + timedelta(days=30), renewal=RENEWAL)
    assert not renews(status="active", pause_behavior="void")


def test_when_the_next_invoice_comes():
    trial_end = datetime(2026, 1, 18, tzinfo=UTC)
    later = datetime(2026, 6, 1, tzinfo=UTC)

    assert renewal_at(
        status="active", trial_end=None, item_period_ends=[later, RENEWAL], period_end=None
    ) == (RENEWAL)
    assert renewal_at(status="active", trial_end=None, item_period_ends=[], period_end=later) == (
        later
    )
    assert (
        renewal_at(
            status="trialing", trial_end=trial_end, item_period_ends=[RENEWAL], period_end=None
        )
        == trial_end
    )


def test_discounts_read_from_stripe_and_from_the_mirror_alike():
    stripe = {
        "id": "di_1",
        "object": "discount",
        "start": int(DURING.timestamp()),
        "end": None,
        "source": {
            "type": "coupon",
            "coupon": {
                "id": "co_1",
                "duration": "forever",
                "amount_off": 5_000,
                "currency": "usd",
                "percent_off": None,
            },
        },
    }

    class Row:
        duration = "forever"
        percent_off = None
        amount_off = 5_000
        currency = "USD"
        start = DURING
        end = None
        active = True

    assert discount_view_from_stripe(stripe) == discount_view_from_mirror(Row())
    assert not discount_view_from_stripe({**stripe, "deleted": True}).active
    assert discount_view_from_stripe(
        {"coupon": {"duration": "once", "percent_off": 25.5}}
    ).percent_off == Decimal("25.5")


# --- both callers, one figure ------------------------------------------------------------------

INITECH, INITECH_SUB = "cus_sbx_initech", "sub_sbx_initech"  # 35 seats × $30, renews 2026-02-10


@pytest.fixture
def seeded(db, settings):
    from .context_support import seed_brief_day

    return seed_brief_day(settings)


def _with(workspace, *, discounts=(), tax_rates=(), extra_items=(), cancel_at=None):
    """Initech's subscription as Stripe would return it with these discounts, tax rates, items."""
    from billing_app.models import MirrorSubscription
    from billing_app.services.mirror import mirror_upsert

    data = dict(MirrorSubscription.objects.get(workspace=workspace, stripe_id=INITECH_SUB).data)
    data["discounts"] = list(discounts)
    data["default_tax_rates"] = list(tax_rates)
    items = dict(data["items"])
    items["data"] = list(items["data"]) + list(extra_items)
    data["items"] = items
    if cancel_at is not None:
        data["cancel_at"] = int(cancel_at.timestamp())
    mirror_upsert(workspace=workspace, obj=data)
    return data


def _discount(id, *, start, duration="forever", percent_off=None, amount_off=None):
    coupon = {
        "id": f"co_{id}",
        "object": "coupon",
        "duration": duration,
        "duration_in_months": None,
        "percent_off": percent_off,
        "amount_off": amount_off,
        "currency": "usd" if amount_off else None,
        "valid": True,
    }
    return {
        "id": id,
        "object": "discount",
        "customer": INITECH,
        "subscription": INITECH_SUB,
        "start": int(start.timestamp()),
        "end": None,
        "source": {"type": "coupon", "coupon": coupon},
    }


def _both(workspace):
    """(the context's next invoice amount, the investigation's next invoice total)."""
    from billing_app.models import MirrorCustomer
    from billing_app.selectors.breakdown import next_invoice_estimate
    from billing_app.selectors.context import customer_context

    customer = MirrorCustomer.objects.get(workspace=workspace, stripe_id=INITECH)
    context = customer_context(workspace=workspace, customer=customer)
    estimate = next_invoice_estimate(workspace=workspace, subscription_id=INITECH_SUB)
    panel = context["payment_status"]["next_invoice"]
    assert panel["date"] == estimate["date"] == "2026-02-10"
    return panel["amount"]["amount"], estimate["total"]["amount"]


def _period_start(data):
    return datetime.fromtimestamp(
        min(int(i["current_period_start"]) for i in data["items"]["data"]), tz=UTC
    )


def test_both_callers_agree_on_a_once_coupon_added_this_period(seeded):
    from .context_support import AS_OF

    _with(
        seeded.workspace,
        discounts=[_discount("di_once", start=AS_OF, duration="once", percent_off=20)],
    )

    # 105,000 less 20 % = 84,000 (the context counted it, the investigation skipped it)
    assert _both(seeded.workspace) == (84_000, 84_000)


def test_both_callers_agree_on_a_consumed_once_coupon(seeded):
    data = _with(seeded.workspace)
    start = _period_start(data) - timedelta(days=1)
    _with(
        seeded.workspace,
        discounts=[_discount("di_used", start=start, duration="once", percent_off=20)],
    )

    assert _both(seeded.workspace) == (105_000, 105_000)


def test_both_callers_agree_on_percent_and_amount_off_and_tax(seeded):
    from .context_support import AS_OF

    vat = {
        "id": "txr_vat",
        "object": "tax_rate",
        "percentage": 19,
        "inclusive": False,
        "active": True,
    }
    _with(
        seeded.workspace,
        discounts=[
            _discount("di_pct", start=AS_OF, percent_off=10),
            _discount("di_amt", start=AS_OF + timedelta(seconds=1), amount_off=5_000),
        ],
        tax_rates=[vat],
    )

    # 105,000 - 10,500 - 5,000 = 89,500; + 19 % VAT 17,005 = 106,505
    # (the context ignored the amount off and the tax)
    assert _both(seeded.workspace) == (106_505, 106_505)


def test_both_callers_leave_out_an_item_on_another_cycle(seeded):
    data = _with(seeded.workspace)
    first = data["items"]["data"][0]
    yearly = {
        **first,
        "id": "si_initech_yearly",
        "price": {
            **first["price"],
            "id": "price_initech_yearly",
            "unit_amount": 120_000,
            "recurring": {**first["price"]["recurring"], "interval": "year"},
        },
        "quantity": 1,
        "current_period_end": int(datetime(2026, 12, 1, tzinfo=UTC).timestamp()),
    }
    _with(seeded.workspace, extra_items=[yearly])

    # the context added the item to February's invoice; it renews in December
    assert _both(seeded.workspace) == (105_000, 105_000)


def test_both_callers_bill_the_renewal_before_a_scheduled_cancellation(seeded):
    from billing_app.models import MirrorCustomer
    from billing_app.selectors.breakdown import next_invoice_estimate
    from billing_app.selectors.context import customer_context

    # Cancelling on 2026-03-20: Stripe still bills the 2026-02-10 renewal.
    _with(seeded.workspace, cancel_at=datetime(2026, 3, 20, tzinfo=UTC))
    assert _both(seeded.workspace) == (105_000, 105_000)

    # Cancelling on the renewal day (or before): nothing more is billed.
    _with(seeded.workspace, cancel_at=datetime(2026, 2, 10, tzinfo=UTC))
    customer = MirrorCustomer.objects.get(workspace=seeded.workspace, stripe_id=INITECH)
    context = customer_context(workspace=seeded.workspace, customer=customer)
    assert context["payment_status"]["next_invoice"] is None
    assert next_invoice_estimate(workspace=seeded.workspace, subscription_id=INITECH_SUB) is None
