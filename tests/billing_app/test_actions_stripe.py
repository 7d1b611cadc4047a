"""Actions on a Stripe workspace, end to end through the API with Stripe intercepted.

The exact request of every Stripe method is tested with the provider; here the
point is the seam: the ``Idempotency-Key`` Stripe receives is derived from the
action id, a timeout is retried with that same key, and Stripe's refusal
leaves the action failed with nothing recorded as done.
"""

from __future__ import annotations

import time

import pytest
from requests.exceptions import ConnectionError as RequestsConnectionError
from requests.exceptions import ReadTimeout

from billing_app.catalog import Role
from billing_app.models import (
    BillingAction,
    MirrorBalanceTransaction,
    MirrorRefund,
    MirrorSubscriptionItem,
)
from billing_app.providers.stripe.client import StripeHttpClient
from billing_app.services.mirror import mirror_upsert
from billing_app.services.reconcile import actions_unknown_reconcile

from .stripe_support import StripeMock, load, make_stripe_workspace, params_of, stripe_error

CUS = "cus_RbAcmeCorp0001"
CH = "ch_3RbAcmePaid0022"
NOW = int(time.time())


@pytest.fixture(autouse=True)
def _no_backoff(monkeypatch):
    monkeypatch.setattr(StripeHttpClient, "backoff_scale", 0.0)


@pytest.fixture
def ws(make_workspace):
    workspace = make_stripe_workspace(make_workspace)
    mirror_upsert(workspace=workspace, obj=load("customer"))
    mirror_upsert(workspace=workspace, obj=load("charge", created=NOW - 2 * 86400))
    return workspace


@pytest.fixture
def stripe(http):
    return StripeMock(http)


def refund_body(amount=50000, key="k-1"):
    return {
        "kind": "issue_refund",
        "customer_id": CUS,
        "ticket_id": "4821",
        "params": {"charge_id": CH, "amount": amount, "currency": "USD", "reason": "billing_error"},
        "idempotency_key": key,
    }


def test_refund_reaches_stripe_with_the_action_idempotency_key(ws, stripe, api_as):
    # given Stripe answering the charge read, the refund and the re-read
    stripe.on("GET", f"/v1/charges/{CH}", load("charge", created=NOW - 2 * 86400))
    stripe.on("POST", "/v1/refunds", load("refund"))

    # when a Manager refunds $500 twice with the same client key (a double click)
    client = api_as(ws, Role.MANAGER)
    first = client.post("/api/v1/actions/", refund_body(), format="json")
    again = client.post("/api/v1/actions/", refund_body(), format="json")

    # then Stripe received one refund, keyed by the action id, with Stripe's reason enum
    assert first.status_code == 201, first.json()
    assert first.json()["status"] == "succeeded"
    assert again.status_code == 200 and again.json()["id"] == first.json()["id"]
    posts = stripe.requests_to("POST", "/v1/refunds")
    assert len(posts) == 1
    action_id = first.json()["id"]
    assert posts[0].request.headers["Idempotency-Key"] == f"billing-desk-{action_id}-issue_refund"
    sent = params_of(posts[0])
    assert sent["reason"] == "requested_by_customer"
    assert sent["metadata[billing_desk_action]"] == action_id
    assert sent["metadata[billing_desk_reason]"] == "billing_error"
    assert first.json()["provider_object_id"] == "re_3RbAcmeRefund0001"
    assert MirrorRefund.objects.filter(workspace=ws, stripe_id="re_3RbAcmeRefund0001").exists()


def test_stripe_timeouts_are_retried_with_the_same_key(ws, stripe, api_as, settings):
    # given Stripe timing out on every attempt of the first call (the client retries twice)
    settings.BILLING_DESK_ACTION_PROVIDER_RETRIES = 1
    stripe.on("GET", f"/v1/charges/{CH}", load("charge", created=NOW - 2 * 86400))
    for _ in range(1 + settings.STRIPE_MAX_NETWORK_RETRIES):
        stripe.on("POST", "/v1/refunds", exc=RequestsConnectionError("timed out"))
    stripe.on("POST", "/v1/refunds", load("refund"))

    response = api_as(ws, Role.MANAGER).post("/api/v1/actions/", refund_body(), format="json")

    # then the action-level retry went through with the very same Idempotency-Key
    body = response.json()
    assert body["status"] == "succeeded", body["error"]
    keys = {c.request.headers["Idempotency-Key"] for c in stripe.requests_to("POST", "/v1/refunds")}
    assert keys == {f"billing-desk-{body['id']}-issue_refund"}
    assert len(stripe.requests_to("POST", "/v1/refunds")) == 2 + settings.STRIPE_MAX_NETWORK_RETRIES


def test_stripe_refusal_fails_the_action_and_records_nothing(ws, stripe, api_as):
    stripe.on(
        "POST",
        f"/v1/customers/{CUS}/balance_transactions",
        stripe_error(
            "invalid_request_error", "Customer has no currency set.", code="parameter_missing"
        ),
        status=400,
    )
    body = {
        "kind": "apply_credit",
        "customer_id": CUS,
        "ticket_id": "4821",
        "params": {"amount": 2500, "currency": "USD"},
        "idempotency_key": "credit-1",
    }

    response = api_as(ws, Role.L2).post("/api/v1/actions/", body, format="json")

    result = response.json()
    assert response.status_code == 201
    assert result["status"] == "failed"
    assert "Customer has no currency set." in result["error"]["message"]
    (post,) = stripe.requests_to("POST", f"/v1/customers/{CUS}/balance_transactions")
    assert post.request.headers["Idempotency-Key"] == f"billing-desk-{result['id']}-apply_credit"
    assert params_of(post)["amount"] == "-2500"
    assert not MirrorBalanceTransaction.objects.filter(workspace=ws).exists()
    assert BillingAction.objects.get(pk=result["id"]).provider_object_id == ""


SUB = "sub_1RbAcmeEnterprise01"


def addon_subscription(plan_quantity: int = 3) -> dict:
    """Stripe's subscription fixture reshaped: 3 × $20.00 seats and a $300.00 add-on item
    (the larger item; only its product's ``addon`` metadata marks it)."""
    sub = load("subscription")
    plan, addon = (dict(i) for i in sub["items"]["data"][:2])
    plan["price"] = dict(
        plan["price"], id="price_1RbTeamSeat", product="prod_RbTeam", unit_amount=2000
    )
    plan["price"]["unit_amount_decimal"] = "2000"
    plan["quantity"] = plan_quantity
    addon["price"] = dict(
        addon["price"], id="price_1RbPlatform", product="prod_RbPlatform", unit_amount=30000
    )
    addon["price"]["unit_amount_decimal"] = "30000"
    addon["quantity"] = 1
    sub["items"] = dict(sub["items"], data=[plan, addon], total_count=2)
    sub["metadata"] = {"seats_used": "3"}
    return sub


def mirror_addon_subscription(ws) -> None:
    """The reshaped subscription in the mirror, with its products (the add-on flagged)."""
    team, platform = load("product"), load("product")
    team.update(id="prod_RbTeam", name="Team", metadata={})
    platform.update(id="prod_RbPlatform", name="Platform", metadata={"addon": "true"})
    for obj in (team, platform, addon_subscription()):
        mirror_upsert(workspace=ws, obj=obj)


def test_seats_on_stripe_change_the_plan_item_beside_a_larger_add_on(ws, stripe, api_as):
    # given a subscription with 3 × $20.00 seats and a $300.00 add-on, mirrored with its products
    mirror_addon_subscription(ws)
    stripe.on("GET", f"/v1/subscriptions/{SUB}", addon_subscription())
    stripe.on("POST", f"/v1/subscriptions/{SUB}", addon_subscription(plan_quantity=5))

    # when an L2 agent asks for 5 seats without naming an item
    response = api_as(ws, Role.L2).post(
        "/api/v1/actions/",
        {
            "kind": "adjust_seats",
            "customer_id": CUS,
            "ticket_id": "4821",
            "params": {"subscription_id": SUB, "quantity": 5},
            "idempotency_key": "seats-1",
        },
        format="json",
    )

    # then Stripe was asked to change the seat item, never the add-on's
    body = response.json()
    assert response.status_code == 201, body
    assert body["status"] == "succeeded", body["error"]
    (post,) = stripe.requests_to("POST", f"/v1/subscriptions/{SUB}")
    sent = params_of(post)
    assert (sent["items[0][id]"], sent["items[0][quantity]"]) == ("si_RbAcmePlan01", "5")
    assert not any(value == "si_RbAcmeAnalytics01" for value in sent.values())
    assert post.request.headers["Idempotency-Key"] == f"billing-desk-{body['id']}-adjust_seats"
    assert body["result"]["previous_quantity"] == 3
    assert (body["result"]["mrr_delta"], body["result"]["mrr_currency"]) == (2 * 2000, "USD")
    quantities = dict(
        MirrorSubscriptionItem.objects.filter(workspace=ws, subscription_id=SUB).values_list(
            "stripe_id", "quantity"
        )
    )
    assert quantities == {"si_RbAcmePlan01": 5, "si_RbAcmeAnalytics01": 1}


def test_a_seat_change_stripe_made_without_answering_keeps_its_mrr_change(
    ws, stripe, api_as, settings
):
    # given Stripe changes the seats and the answer is lost (read timeouts, every attempt)
    settings.BILLING_DESK_ACTION_PROVIDER_RETRIES = 0
    mirror_addon_subscription(ws)
    stripe.on("GET", f"/v1/subscriptions/{SUB}", addon_subscription())
    for _ in range(1 + settings.STRIPE_MAX_NETWORK_RETRIES):
        stripe.on("POST", f"/v1/subscriptions/{SUB}", exc=ReadTimeout("Read timed out."))
    response = api_as(ws, Role.L2).post(
        "/api/v1/actions/",
        {
            "kind": "adjust_seats",
            "customer_id": CUS,
            "ticket_id": "4821",
            "params": {"subscription_id": SUB, "quantity": 5},
            "idempotency_key": "seats-lost",
        },
        format="json",
    )
    body = response.json()
    assert response.status_code == 202, body
    assert (body["result"]["mrr_delta"], body["result"]["mrr_currency"]) == (4000, "USD")

    # when reconciliation finds the change by the action id in the subscription's metadata
    changed = addon_subscription(plan_quantity=5)
    changed["metadata"] = {**changed["metadata"], "billing_desk_action": body["id"]}
    stripe.on("GET", f"/v1/subscriptions/{SUB}", changed)
    assert actions_unknown_reconcile() == 1

    # then it is recorded once, with the MRR change computed before the answer was lost
    action = BillingAction.objects.get(pk=body["id"])
    assert action.status == BillingAction.Status.SUCCEEDED
    assert action.result["reconciled"] == "metadata"
    assert (action.result["mrr_delta"], action.result["mrr_currency"]) == (4000, "USD")
