"""Stripe timing out, rate limiting, failing with 500 or resetting the connection.

Reads: the panel keeps answering from the mirror, with ``provider_status:
unavailable`` and a banner. Writes: the action fails cleanly — nothing recorded
as done — and every attempt carried the same ``Idempotency-Key``.
"""

from __future__ import annotations

import pytest

from billing_app.catalog import Role
from billing_app.models import BillingAction, MirrorCustomer, MirrorRefund, ProviderCall
from billing_app.providers.stripe.client import StripeHttpClient
from billing_app.services.refresh import customer_refresh, provider_health_record
from tests.billing_app.stripe_support import load

from .conftest import CH, CUS, FAULTS, NOW, fail, refund_body

BUNDLE_READS = [
    f"/v1/customers/{CUS}",
    "/v1/subscriptions",
    "/v1/invoices",
    "/v1/charges",
    f"/v1/customers/{CUS}/payment_methods",
    f"/v1/customers/{CUS}/balance_transactions",
]


@pytest.fixture(autouse=True)
def _healthy_again(ws):
    yield
    provider_health_record(workspace_id=ws.pk, available=True)  # the cache outlives the test


@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_stripe_down_during_a_refresh_leaves_the_mirror_served_with_a_banner(
    ws, stripe, api_as, fault
):
    # given Acme is mirrored, and Stripe fails every read of the background refresh
    for path in BUNDLE_READS:
        fail(stripe, "GET", path, fault)
    before = MirrorCustomer.objects.get(workspace=ws, stripe_id=CUS)

    # when the refresh runs
    refreshed = customer_refresh(workspace_id=ws.pk, customer_id=CUS)

    # then nothing was overwritten, the outage is recorded and counted
    assert refreshed is False
    after = MirrorCustomer.objects.get(workspace=ws, stripe_id=CUS)
    assert (after.data, after.bundle_synced_at) == (before.data, before.bundle_synced_at)
    assert ProviderCall.objects.filter(
        workspace=ws, operation="fetch_customer_bundle", outcome="unavailable"
    ).exists()
    # and the panel still answers from the mirror, saying the provider is unavailable
    response = api_as(ws, Role.L1).get(f"/api/v1/customers/{CUS}/context/")
    assert response.status_code == 200
    body = response.json()
    assert body["provider_status"] == "unavailable"
    assert "provider_down" in {a["type"] for a in body["alerts"]}
    assert body["payment_status"]["last_payment"]["charge_id"] == CH


@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_a_customer_not_mirrored_yet_with_stripe_down_is_a_clean_503(ws, stripe, api_as, fault):
    # given Stripe fails every read and nothing of this customer is mirrored
    new = "cus_RbNotMirroredYet"
    for path in [f"/v1/customers/{new}", *BUNDLE_READS[1:4]]:
        fail(stripe, "GET", path, fault)
    for path in (
        f"/v1/customers/{new}/payment_methods",
        f"/v1/customers/{new}/balance_transactions",
    ):
        fail(stripe, "GET", path, fault)

    # when the panel asks for its context
    response = api_as(ws, Role.L1).get(f"/api/v1/customers/{new}/context/")

    # then it gets 503 with a machine-readable code, and nothing was mirrored
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "provider_unavailable"
    assert not MirrorCustomer.objects.filter(workspace=ws, stripe_id=new).exists()


def test_a_refund_stripe_rate_limits_fails_cleanly_and_records_nothing(
    ws, stripe, api_as, settings
):
    # given Stripe reads the charge but refuses every refund attempt with 429
    settings.BILLING_DESK_ACTION_PROVIDER_RETRIES = 1
    stripe.on("GET", f"/v1/charges/{CH}", load("charge", created=NOW - 2 * 86400))
    fail(stripe, "POST", "/v1/refunds", "rate_limited_429")
    client = api_as(ws, Role.MANAGER)

    # when a Manager refunds $500
    response = client.post("/api/v1/actions/", refund_body(), format="json")

    # then the action is failed with the provider's code: Stripe refused, so nothing changed
    assert response.status_code == 201
    body = response.json()
    assert body["status"] == "failed"
    assert "nothing was changed" in body["error"]["message"]
    action = BillingAction.objects.get(pk=body["id"])
    assert action.error_code == "provider_unavailable"
    assert action.provider_object_id == ""
    assert action.completed_at is not None
    assert not MirrorRefund.objects.filter(workspace=ws).exists()
    # and every attempt (transport retries × action retries) carried one Idempotency-Key
    posts = stripe.requests_to("POST", "/v1/refunds")
    assert len(posts) == (1 + settings.STRIPE_MAX_NETWORK_RETRIES) * 2
    assert {p.request.headers["Idempotency-Key"] for p in posts} == {
        f"billing-desk-{action.pk}-issue_refund"
    }

    # when the agent retries with the same idempotency key
    again = client.post("/api/v1/actions/", refund_body(), format="json")

    # then they get the first answer back, and Stripe is not asked again
    assert again.status_code == 200
    assert (again.json()["id"], again.json()["status"]) == (body["id"], "failed")
    assert len(stripe.requests_to("POST", "/v1/refunds")) == len(posts)


@pytest.mark.parametrize("fault", ["connection_reset", "server_error_500", "timeout"])
def test_a_refund_stripe_does_not_answer_is_held_open_not_failed(
    ws, stripe, api_as, settings, fault
):
    # given Stripe reads the charge but every refund attempt is lost after it was sent
    settings.BILLING_DESK_ACTION_PROVIDER_RETRIES = 1
    stripe.on("GET", f"/v1/charges/{CH}", load("charge", created=NOW - 2 * 86400))
    fail(stripe, "POST", "/v1/refunds", fault)
    client = api_as(ws, Role.MANAGER)

    # when a Manager refunds $500
    response = client.post("/api/v1/actions/", refund_body(), format="json")

    # then the refund may have happened: the action is open, never "failed, nothing changed"
    assert response.status_code == 202
    body = response.json()
    assert body["status"] == "outcome_unknown"
    assert body["error"]["code"] == "provider_outcome_unknown"
    assert "nothing was changed" not in body["error"]["message"]
    action = BillingAction.objects.get(pk=body["id"])
    assert action.completed_at is None
    assert action.customer_message == ""
    posts = stripe.requests_to("POST", "/v1/refunds")
    assert {p.request.headers["Idempotency-Key"] for p in posts} == {
        f"billing-desk-{action.pk}-issue_refund"
    }

    # when the agent retries with the same idempotency key
    again = client.post("/api/v1/actions/", refund_body(), format="json")

    # then they get the open action back, and Stripe is not asked again
    assert again.status_code == 202
    assert (again.json()["id"], again.json()["status"]) == (body["id"], "outcome_unknown")
    assert len(stripe.requests_to("POST", "/v1/refunds")) == len(posts)


def test_a_429_is_retried_after_what_retry_after_asks_with_the_same_key(
    ws, stripe, api_as, monkeypatch
):
    # given Stripe rate-limits the first refund attempt, asking for 2 seconds
    slept: list[float] = []
    monkeypatch.setattr(StripeHttpClient, "backoff_scale", 1.0)
    monkeypatch.setattr("stripe._http_client.time.sleep", slept.append)
    stripe.on("GET", f"/v1/charges/{CH}", load("charge", created=NOW - 2 * 86400))
    stripe.on(
        "POST",
        "/v1/refunds",
        FAULTS["rate_limited_429"]["body"],
        status=429,
        headers={"Retry-After": "2"},
    )
    stripe.on("POST", "/v1/refunds", load("refund"))

    # when a Manager refunds
    response = api_as(ws, Role.MANAGER).post("/api/v1/actions/", refund_body(), format="json")

    # then the retry waited at least two seconds and went through with the same key
    assert response.json()["status"] == "succeeded"
    posts = stripe.requests_to("POST", "/v1/refunds")
    assert len(posts) == 2
    assert len({p.request.headers["Idempotency-Key"] for p in posts}) == 1
    assert slept and slept[0] >= 2.0
    assert MirrorRefund.objects.filter(workspace=ws, stripe_id="re_3RbAcmeRefund0001").exists()


def test_a_retry_after_beyond_the_cap_is_not_waited_out(ws, stripe, api_as, monkeypatch):
    # given Stripe asks for an hour
    slept: list[float] = []
    monkeypatch.setattr(StripeHttpClient, "backoff_scale", 1.0)
    monkeypatch.setattr("stripe._http_client.time.sleep", slept.append)
    stripe.on("GET", f"/v1/charges/{CH}", load("charge", created=NOW - 2 * 86400))
    stripe.on(
        "POST",
        "/v1/refunds",
        FAULTS["rate_limited_429"]["body"],
        status=429,
        headers={"Retry-After": "3600"},
    )
    stripe.on("POST", "/v1/refunds", load("refund"))

    api_as(ws, Role.MANAGER).post("/api/v1/actions/", refund_body(), format="json")

    # then the agent waits at most the cap per retry
    assert slept and max(slept) <= StripeHttpClient.max_retry_after
