"""Contract: plan changes — previews and proration, upgrades now, downgrades at the period end,
the add-on case of issue 13, and every refusal with the rulebook's one set of codes."""

from __future__ import annotations

from datetime import timedelta

import pytest

from billing_app.errors import BillingDeskError
from billing_app.money import Money

from .world import (
    PRICE_ADDON,
    PRICE_ARCHIVED,
    PRICE_BUSINESS,
    PRICE_EUR,
    PRICE_ONE_TIME,
    PRICE_PRO,
    PRICE_PRO_15,
    PRICE_PRO_25,
    PRICE_PRO_YEARLY,
    PRICE_TIERED,
    SI_ADDON,
    SI_PLAN,
    SUB,
    SUB_ADDON_ONLY,
    SUB_CANCELED,
)

KEY = "contract-plan-change"


def items_of(subscription):
    return {i["id"]: (i["price"]["id"], i["quantity"]) for i in subscription["items"]["data"]}


def preview(harness, price):
    return harness.provider.preview_plan_change(
        subscription_id=SUB, new_price_id=price, at=harness.now
    )


def change(harness, price, preview_=None):
    return harness.provider.change_plan(
        subscription_id=SUB,
        new_price_id=price,
        proration_date=preview_.proration_date if preview_ else None,
        idempotency_key=KEY,
    )


def test_an_upgrade_is_previewed_and_made_with_the_same_proration(harness):
    # when Acme's 3 seats move from $20 to $25 with 20 of 30 days left
    shown = preview(harness, PRICE_PRO_25)

    # then the preview credits the unused $60 × 2/3 and charges $75 × 2/3: $10 due now
    assert (shown.direction, shown.current_price_id, shown.new_price_id) == (
        "upgrade",
        PRICE_PRO,
        PRICE_PRO_25,
    )
    assert shown.amount_due_now == Money(1000, "USD")
    assert sum(line.amount.amount for line in shown.lines) == 1000
    assert all(line.proration for line in shown.lines)
    assert shown.new_recurring_amount == Money(3 * 2500 + 30_000, "USD")
    assert shown.proration_date == harness.now

    # and the change, pinned to the preview's date, invoices exactly that at once
    made = change(harness, PRICE_PRO_25, shown)
    assert (made.direction, made.new_price_id) == ("upgrade", PRICE_PRO_25)
    assert made.invoice_id
    assert harness.retrieve("invoice", made.invoice_id)["amount_due"] == 1000
    assert items_of(harness.retrieve("subscription", SUB)) == {
        SI_PLAN: (PRICE_PRO_25, 3),
        SI_ADDON: (PRICE_ADDON, 1),
    }


def test_a_plan_change_to_another_product_replaces_the_plan_item_not_the_add_on(harness):
    # given Acme's plan item (3 × $20 = $60/month) and its $300/month add-on (metadata addon=true)
    # when Acme moves to the Business product ($30 per seat)
    shown = preview(harness, PRICE_BUSINESS)
    made = change(harness, PRICE_BUSINESS, shown)

    # then the plan item is the one that changed — never the larger add-on
    assert (shown.current_price_id, shown.direction) == (PRICE_PRO, "upgrade")
    assert shown.amount_due_now == Money(2000, "USD")  # (3 × $30 − 3 × $20) × 2/3
    assert shown.new_recurring_amount == Money(3 * 3000 + 30_000, "USD")
    assert made.new_price_id == PRICE_BUSINESS
    assert items_of(harness.retrieve("subscription", SUB)) == {
        SI_PLAN: (PRICE_BUSINESS, 3),
        SI_ADDON: (PRICE_ADDON, 1),
    }


def test_a_downgrade_waits_for_the_period_end_and_applies_then(harness):
    # when Acme's seats move from $20 to $15
    shown = preview(harness, PRICE_PRO_15)
    made = change(harness, PRICE_PRO_15, shown)

    # then nothing is due now and nothing changes before the period ends
    assert (shown.direction, shown.amount_due_now, shown.lines) == (
        "downgrade",
        Money(0, "USD"),
        [],
    )
    assert shown.new_recurring_amount == Money(3 * 1500 + 30_000, "USD")
    period_end = harness.now + timedelta(days=20)
    assert (made.direction, made.effective_date) == ("downgrade", period_end)
    assert made.schedule_id
    assert items_of(harness.retrieve("subscription", SUB))[SI_PLAN] == (PRICE_PRO, 3)

    # and once the period has ended the plan item is on the new price, the add-on as it was,
    # and the renewal bills the new price for every seat
    harness.advance(period_end + timedelta(hours=1))
    subscription = harness.retrieve("subscription", SUB)
    assert items_of(subscription) == {SI_PLAN: (PRICE_PRO_15, 3), SI_ADDON: (PRICE_ADDON, 1)}
    renewal = harness.retrieve("invoice", subscription["latest_invoice"])
    assert renewal["amount_due"] == 3 * 1500 + 30_000


def test_an_interval_change_is_allowed(harness):
    # $240 a year per seat is $20 a month: the same monthly amount counts as an upgrade
    shown = preview(harness, PRICE_PRO_YEARLY)
    assert (shown.current_price_id, shown.new_price_id) == (PRICE_PRO, PRICE_PRO_YEARLY)


@pytest.mark.parametrize(
    ("subscription", "price", "code"),
    [
        (SUB, PRICE_PRO, "same_price"),
        (SUB, PRICE_ARCHIVED, "price_inactive"),
        (SUB, PRICE_ONE_TIME, "price_not_recurring"),
        (SUB, PRICE_EUR, "currency_mismatch"),
        (SUB, PRICE_TIERED, "price_not_comparable"),
        (SUB_CANCELED, PRICE_PRO_25, "subscription_not_active"),
        (SUB_ADDON_ONLY, PRICE_BUSINESS, "no_plan_item"),
    ],
)
def test_plan_changes_that_cannot_be_made(harness, subscription, price, code):
    # the preview and the change refuse alike, with the rulebook's codes, and nothing changes
    before = items_of(harness.retrieve("subscription", subscription))
    with pytest.raises(BillingDeskError) as previewed:
        harness.provider.preview_plan_change(subscription_id=subscription, new_price_id=price)
    with pytest.raises(BillingDeskError) as changed:
        harness.provider.change_plan(
            subscription_id=subscription,
            new_price_id=price,
            proration_date=None,
            idempotency_key=KEY,
        )
    assert (previewed.value.code, changed.value.code) == (code, code)
    assert items_of(harness.retrieve("subscription", subscription)) == before
