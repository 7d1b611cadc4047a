"""The add-on case of issue 13 end to end, on every provider: an agent's plan change and seat
change through ``/api/v1/actions/`` move the plan item, never the larger add-on — at the
provider and in the mirror the panel reads (the service stores what the provider changed)."""

from __future__ import annotations

import itertools

from billing_app.catalog import ActionKind, Role
from billing_app.models import MirrorSubscriptionItem

from .world import (
    ACME,
    PRICE_ADDON,
    PRICE_BUSINESS,
    PRICE_PRO,
    SI_ADDON,
    SI_PLAN,
    SUB,
)

_keys = itertools.count(1)


def act(harness, api_as, kind, params):
    response = api_as(harness.workspace, Role.L2).post(
        "/api/v1/actions/",
        {
            "kind": str(kind),
            "customer_id": ACME,
            "ticket_id": "4242",
            "params": params,
            "idempotency_key": f"contract-addon-{next(_keys)}",
        },
        format="json",
    )
    body = response.json()
    assert response.status_code == 201, body
    assert body["status"] == "succeeded", body.get("error")
    return body


def provider_items(harness):
    subscription = harness.retrieve("subscription", SUB)
    return {i["id"]: (i["price"]["id"], i["quantity"]) for i in subscription["items"]["data"]}


def mirrored_items(harness):
    return {
        row.stripe_id: (row.price_id, row.quantity)
        for row in MirrorSubscriptionItem.objects.filter(
            workspace=harness.workspace, subscription_id=SUB
        )
    }


def test_a_plan_change_through_the_api_replaces_the_plan_item(harness, api_as):
    # given Acme: 3 × $20 seats beside a $300/month add-on (product metadata addon="true")
    # when an agent moves Acme to the Business product ($30 a seat)
    body = act(
        harness,
        api_as,
        ActionKind.CHANGE_PLAN,
        {"subscription_id": SUB, "price_id": PRICE_BUSINESS},
    )

    # then the plan item changed at the provider and in the mirror; the add-on did not
    expected = {SI_PLAN: (PRICE_BUSINESS, 3), SI_ADDON: (PRICE_ADDON, 1)}
    assert provider_items(harness) == expected
    assert mirrored_items(harness) == expected
    assert body["result"]["previous_price_id"] == PRICE_PRO
    assert (body["result"]["mrr_delta"], body["result"]["mrr_currency"]) == (3 * 1000, "USD")


def test_seats_through_the_api_change_the_plan_item(harness, api_as):
    # when an agent asks for 5 seats without naming an item
    body = act(harness, api_as, ActionKind.ADJUST_SEATS, {"subscription_id": SUB, "quantity": 5})

    # then the plan item has 5 seats, at the provider and in the mirror; the add-on still 1
    expected = {SI_PLAN: (PRICE_PRO, 5), SI_ADDON: (PRICE_ADDON, 1)}
    assert provider_items(harness) == expected
    assert mirrored_items(harness) == expected
    assert (body["result"]["mrr_delta"], body["result"]["mrr_currency"]) == (2 * 2000, "USD")
