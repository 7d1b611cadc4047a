"""The subscription rulebook (billing_app.subscriptions): one rule for every caller."""

from __future__ import annotations

from decimal import Decimal
from types import SimpleNamespace

import pytest

from billing_app import subscriptions as rules
from billing_app.errors import PreconditionFailed


def price(pid, product, amount, *, interval="month", count=1, currency="usd", active=True):
    return {
        "id": pid,
        "object": "price",
        "product": product,
        "currency": currency,
        "unit_amount": amount,
        "active": active,
        "type": "recurring" if interval else "one_time",
        "recurring": {"interval": interval, "interval_count": count} if interval else None,
    }


def item(iid, p, quantity=1):
    return {"id": iid, "object": "subscription_item", "price": p, "quantity": quantity}


ADDON = {"id": "prod_addon", "object": "product", "metadata": {"addon": "true"}}
SEATS = item("si_seats", price("price_seat", "prod_team", 2000), quantity=3)  # 3 × $20
ADDON_ITEM = item("si_addon", price("price_addon", ADDON, 30000))  # $300 add-on


def view(i):
    return rules.item_view_from_stripe(i)


def test_the_plan_item_is_never_the_bigger_add_on():
    assert rules.plan_item([SEATS, ADDON_ITEM], view) is SEATS
    assert rules.plan_item([ADDON_ITEM, SEATS], view) is SEATS
    # A plan change to another product still replaces the plan item, not the add-on.
    assert rules.plan_item([SEATS, ADDON_ITEM], view, new_product="prod_business") is SEATS


def test_add_on_known_by_id_when_the_product_is_not_expanded():
    addon_by_id = item("si_addon", price("price_addon", "prod_addon", 30000))
    views = lambda i: rules.item_view_from_stripe(i, addon_products={"prod_addon"})  # noqa: E731
    assert rules.plan_item([SEATS, addon_by_id], views) is SEATS
    # Without knowing the add-on, the biggest item would be picked: the reason for the rule.
    assert rules.plan_item([SEATS, addon_by_id], view) is addon_by_id


def test_same_product_wins_then_largest_monthly_amount():
    small = item("si_small", price("price_a", "prod_a", 1000))
    yearly = item("si_big", price("price_b", "prod_b", 120_000, interval="year"))  # $100/month
    monthly = item("si_mid", price("price_c", "prod_c", 9000))  # $90/month
    assert rules.plan_item([small, yearly, monthly], view) is yearly
    assert rules.plan_item([small, yearly, monthly], view, new_product="prod_a") is small


def test_only_add_ons_has_no_plan_item():
    assert rules.plan_item([ADDON_ITEM], view) is None
    assert rules.plan_item([], view) is None
    with pytest.raises(PreconditionFailed) as err:
        rules.plan_item_required([ADDON_ITEM], view)
    assert err.value.code == "no_plan_item"


def test_mirror_rows_read_the_same_way():
    row = SimpleNamespace(
        stripe_id="si_seats",
        price_id="price_seat",
        product_id="prod_team",
        unit_amount=2000,
        quantity=3,
        currency="usd",
        recurring_interval="month",
        recurring_interval_count=1,
    )
    addon_row = SimpleNamespace(
        stripe_id="si_addon",
        price_id="price_addon",
        product_id="prod_addon",
        unit_amount=30000,
        quantity=1,
        currency="usd",
        recurring_interval="month",
        recurring_interval_count=1,
    )
    pick = rules.plan_item(
        [addon_row, row],
        lambda r: rules.item_view_from_mirror(r, addon_products={"prod_addon"}),
    )
    assert pick is row
    assert rules.item_view_from_mirror(row) == rules.item_view_from_stripe(SEATS)


@pytest.mark.parametrize(
    ("interval", "count", "amount", "monthly"),
    [
        ("month", 1, 2000, Decimal(2000)),
        ("month", 3, 6000, Decimal(2000)),
        ("year", 1, 24000, Decimal(2000)),
        ("week", 1, 1200, Decimal(1200) * 52 / 12),
    ],
)
def test_monthly_amount(interval, count, amount, monthly):
    v = view(item("si", price("p", "prod", amount, interval=interval, count=count)))
    assert rules.monthly_amount(v) == pytest.approx(monthly)


def test_live_statuses():
    for status in ("active", "trialing", "past_due", "unpaid", "paused"):
        assert rules.is_live(status)
    for status in ("canceled", "incomplete", "incomplete_expired", "", None):
        assert not rules.is_live(status)


def pv(p):
    return rules.price_view_from_stripe(p)


CURRENT = price("price_team", "prod_team", 2000)


@pytest.mark.parametrize(
    ("status", "new", "code"),
    [
        ("canceled", price("price_biz", "prod_biz", 5000), "subscription_not_active"),
        ("active", CURRENT, "same_price"),
        ("active", price("price_old", "prod_biz", 5000, active=False), "price_inactive"),
        ("active", price("price_once", "prod_biz", 5000, interval=None), "price_not_recurring"),
        ("active", price("price_eur", "prod_biz", 5000, currency="eur"), "currency_mismatch"),
        ("active", {**price("price_tier", "prod_biz", None)}, "price_not_comparable"),
    ],
)
def test_plan_change_check_codes(status, new, code):
    with pytest.raises(PreconditionFailed) as err:
        rules.plan_change_check(status=status, current=pv(CURRENT), new=pv(new))
    assert err.value.code == code


def test_interval_changes_are_allowed_as_stripe_allows_them():
    yearly = price("price_team_year", "prod_team", 20000, interval="year")
    rules.plan_change_check(status="active", current=pv(CURRENT), new=pv(yearly))


def test_direction_and_mrr_delta():
    business = price("price_biz", "prod_biz", 5000)
    assert rules.plan_change_direction(current=pv(CURRENT), new=pv(business), quantity=3) == (
        "upgrade"
    )
    cheaper_yearly = price("price_y", "prod_team", 18000, interval="year")  # $15/month
    assert (
        rules.plan_change_direction(current=pv(CURRENT), new=pv(cheaper_yearly), quantity=3)
        == "downgrade"
    )
    before = [view(SEATS), view(ADDON_ITEM)]
    after = [view(item("si_seats", business, 3)), view(ADDON_ITEM)]
    assert rules.mrr_delta(before, after) == 3 * (5000 - 2000)
    assert rules.mrr_delta(before, before) == 0
    assert rules.discounted_mrr_delta(36000, percent_off="25") == -9000


def test_seats_used_reads_the_item_first_then_the_subscription():
    assert rules.seats_used({"seats_used": "7"}, {"seats_used": "9"}) == 7
    assert rules.seats_used({}, {"seats_used": 9}) == 9
    assert rules.seats_used(None, {"seats_used": ""}) is None
    assert rules.seats_used({"seats_used": "many"}, {"seats_used": "9"}) is None
    assert rules.seats_used({"seats_used": "-2"}) is None


def test_one_discount_per_subscription():
    rules.discount_add_check(subscription_id="sub_1", current_discount_ids=[])
    rules.discount_add_check(subscription_id="sub_1", current_discount_ids=["", ""])
    with pytest.raises(PreconditionFailed) as err:
        rules.discount_add_check(subscription_id="sub_1", current_discount_ids=["di_1", "di_2"])
    assert err.value.code == "discount_exists"
    assert err.value.details == {"discount_id": "di_1"}
