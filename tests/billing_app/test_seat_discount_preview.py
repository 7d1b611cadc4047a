"""Seat changes and discounts get the plan change's next-invoice preview, and every refusal the
server can predict comes back at preview time, in words (``POST customers/{id}/seats/preview/``
and ``.../discount/preview/``).

Acme (``actions_support.account_seed``): 50 seats of Enterprise Pro at $48.00 plus three
add-ons ($500, $300, $200) — $3,400.00 a month; 45 seats in use; the period began 10 days
ago and ends in 20 (30 days), so two thirds of it remain.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from billing_app.catalog import Role
from billing_app.models import BillingAction, MirrorSubscription

from .actions_support import account_seed, next_key
from .stripe_support import make_stripe_workspace

SEATS = "/api/v1/customers/cus_acme/seats/preview/"
DISCOUNT = "/api/v1/customers/cus_acme/discount/preview/"


@pytest.fixture
def acme(workspace):
    return account_seed(workspace)


@pytest.fixture
def manager(api_as, workspace):
    return api_as(workspace, Role.MANAGER)


def usd(amount):
    return {"amount": amount, "currency": "USD"}


def money(value):
    return {"amount": value["amount"], "currency": value["currency"]}


def test_a_seat_change_previews_its_prorations_and_the_next_invoice(acme, manager):
    # when 5 seats are added to the 50, with two thirds of the period left
    response = manager.post(SEATS, {"subscription_id": "sub_acme", "quantity": 55}, format="json")

    # then the next invoice carries Stripe's two proration lines, by seconds of the period
    assert response.status_code == 200, response.json()
    preview = response.json()
    unused, remaining = preview["lines"]
    assert unused["description"].startswith("Unused time on 50 × Enterprise Pro after ")
    assert money(unused["amount"]) == usd(-160_000)  # 50 × $48 × 2/3
    assert remaining["description"].startswith("Remaining time on 55 × Enterprise Pro after ")
    assert money(remaining["amount"]) == usd(176_000)  # 55 × $48 × 2/3
    # nothing is invoiced now; the recurring amount grows by 5 × $48
    assert money(preview["amount_due_now"]) == usd(0)
    assert money(preview["current_recurring_amount"]) == usd(340_000)
    assert money(preview["new_recurring_amount"]) == usd(364_000)
    # the renewal in 20 days bills the new count plus the prorations
    nxt = preview["next_invoice"]
    assert nxt["date"][:10] == (acme.now + timedelta(days=20)).date().isoformat()
    assert money(nxt["amount"]) == usd(364_000 + 16_000)
    # and a preview writes nothing
    assert not BillingAction.objects.exists()


def test_fewer_seats_than_in_use_are_refused_at_preview_in_words(acme, manager):
    response = manager.post(SEATS, {"subscription_id": "sub_acme", "quantity": 40}, format="json")

    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "below_seats_used"
    assert error["message"] == "45 seats are in use; the count cannot go below 45."
    assert error["details"]["seats_used"] == 45


def test_the_same_seat_count_is_refused_in_words(acme, manager):
    response = manager.post(SEATS, {"subscription_id": "sub_acme", "quantity": 50}, format="json")

    assert response.status_code == 422
    assert response.json()["error"]["message"] == (
        "The subscription already has 50 seats; enter a different count."
    )


def test_a_bad_seat_count_is_a_400_in_words(acme, manager):
    response = manager.post(
        SEATS, {"subscription_id": "sub_acme", "quantity": "ten"}, format="json"
    )

    assert response.status_code == 400
    message = response.json()["error"]["message"]
    assert message.startswith("Check the details of Adjust seat count: ")
    assert "_" not in message


def test_a_repeating_discount_previews_the_lower_recurring_amount(acme, manager):
    body = {
        "subscription_id": "sub_acme",
        "percent_off": "10",
        "duration": "repeating",
        "duration_in_months": 3,
    }

    response = manager.post(DISCOUNT, body, format="json")

    assert response.status_code == 200, response.json()
    preview = response.json()
    assert preview["lines"] == []
    assert money(preview["current_recurring_amount"]) == usd(340_000)
    assert money(preview["new_recurring_amount"]) == usd(306_000)
    assert money(preview["next_invoice"]["discount"]) == usd(34_000)
    assert money(preview["next_invoice"]["amount"]) == usd(306_000)


def test_a_one_time_discount_only_lowers_the_next_invoice(acme, manager):
    body = {"subscription_id": "sub_acme", "percent_off": "25", "duration": "once"}

    preview = manager.post(DISCOUNT, body, format="json").json()

    assert money(preview["new_recurring_amount"]) == usd(340_000)
    assert money(preview["next_invoice"]["amount"]) == usd(255_000)


def test_a_second_discount_is_refused_at_preview_in_words(acme, manager):
    # given Acme already holding 10 % off forever
    response = manager.post(
        "/api/v1/actions/",
        {
            "kind": "apply_discount",
            "customer_id": "cus_acme",
            "params": {"subscription_id": "sub_acme", "percent_off": "10", "duration": "forever"},
            "idempotency_key": next_key(),
        },
        format="json",
    )
    assert response.json()["status"] == "succeeded", response.json()

    # when another discount is previewed
    body = {"subscription_id": "sub_acme", "percent_off": "5", "duration": "once"}
    response = manager.post(DISCOUNT, body, format="json")

    # then it is refused before Confirm, naming the discount in force in words
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "discount_exists"
    assert error["message"] == (
        "This subscription already has a discount (10% off forever); a second one is not "
        "added. Change or remove that one in Stripe first."
    )


def test_a_cancelled_subscription_is_refused_at_preview(acme, manager):
    MirrorSubscription.objects.filter(stripe_id="sub_acme").update(status="canceled")

    seats = manager.post(SEATS, {"subscription_id": "sub_acme", "quantity": 55}, format="json")
    discount = manager.post(
        DISCOUNT,
        {"subscription_id": "sub_acme", "percent_off": "5", "duration": "once"},
        format="json",
    )

    for response in (seats, discount):
        assert response.status_code == 422
        assert response.json()["error"]["code"] == "subscription_not_active"
        assert response.json()["error"]["message"].startswith("This subscription was cancelled")


def test_another_workspaces_customer_is_not_found(acme, make_workspace, api_as):
    other = make_workspace("other")
    response = api_as(other, Role.MANAGER).post(
        SEATS, {"subscription_id": "sub_acme", "quantity": 55}, format="json"
    )
    assert response.status_code == 404


def test_on_stripe_the_preview_comes_from_the_mirror_without_calling_stripe(
    make_workspace, api_as, http
):
    # given a Stripe workspace with Acme mirrored
    ws = make_stripe_workspace(make_workspace)
    account_seed(ws)

    # when seats and a discount are previewed
    seats = api_as(ws, Role.MANAGER).post(
        SEATS, {"subscription_id": "sub_acme", "quantity": 60}, format="json"
    )
    discount = api_as(ws, Role.MANAGER).post(
        DISCOUNT,
        {"subscription_id": "sub_acme", "percent_off": "15", "duration": "forever"},
        format="json",
    )

    # then both answer with the figures, and Stripe was never called
    assert seats.status_code == 200, seats.json()
    assert money(seats.json()["new_recurring_amount"]) == usd(340_000 + 10 * 4800)
    assert discount.status_code == 200, discount.json()
    assert money(discount.json()["new_recurring_amount"]) == usd(289_000)
    assert len(http.calls) == 0


def test_a_plan_change_to_the_current_plan_is_refused_at_preview_in_words(acme, manager):
    response = manager.post(
        "/api/v1/customers/cus_acme/plan-change/preview/",
        {"subscription_id": "sub_acme", "price_id": "price_pro_seat"},
        format="json",
    )

    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "same_price"
    assert error["message"] == (
        "The subscription is already on this plan at this price; pick another plan."
    )
