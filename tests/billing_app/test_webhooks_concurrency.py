"""One Stripe event delivered many times at once is stored once and applied once (PostgreSQL)."""

from __future__ import annotations

import json
import threading

import pytest
from django.db import connection, connections
from django.test import Client

from billing_app.models import MirrorSubscription, StripeEvent
from billing_app.providers.stripe.client import StripeHttpClient
from billing_app.services.webhooks import webhook_hook_register, webhook_hook_unregister
from tests.billing_app.stripe_support import StripeMock, event, load, make_stripe_workspace, sign

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif(
        connection.vendor != "postgresql",
        reason="needs PostgreSQL (DATABASE_URL) for concurrent transactions and row locks",
    ),
    pytest.mark.django_db(transaction=True),
]

SUB = "sub_1RbAcmeEnterprise01"


@pytest.fixture(autouse=True)
def _no_backoff(monkeypatch):
    monkeypatch.setattr(StripeHttpClient, "backoff_scale", 0.0)


def test_ten_simultaneous_deliveries_store_and_apply_the_event_once(make_workspace, http):
    # given a Stripe workspace, Stripe answering the re-read, and a hook counting applications
    ws = make_stripe_workspace(make_workspace)
    StripeMock(http).on("GET", f"/v1/subscriptions/{SUB}", load("subscription"))
    applied = []
    lock = threading.Lock()

    def count(webhook):
        with lock:
            applied.append(webhook.event_id)

    payload = json.dumps(event("evt_1Storm", "customer.subscription.updated", load("subscription")))
    barrier = threading.Barrier(10)
    responses: list = [None] * 10

    def deliver(i: int) -> None:
        try:
            barrier.wait()
            responses[i] = Client().post(
                f"/webhooks/stripe/{ws.slug}/",
                data=payload,
                content_type="application/json",
                HTTP_STRIPE_SIGNATURE=sign(payload),
            )
        except BaseException as exc:  # collected for the assertions
            responses[i] = exc
        finally:
            connections.close_all()

    webhook_hook_register(event_type="customer.subscription.updated", hook=count)
    try:
        # when Stripe's retries deliver the same event ten times at once
        threads = [threading.Thread(target=deliver, args=(i,)) for i in range(10)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
    finally:
        webhook_hook_unregister(event_type="customer.subscription.updated", hook=count)

    # then every delivery was acknowledged, one stored it, and it was applied once
    assert not any(t.is_alive() for t in threads)
    assert all(getattr(r, "status_code", None) == 200 for r in responses), responses
    assert sum(1 for r in responses if not r.json()["duplicate"]) == 1
    assert StripeEvent.objects.filter(workspace=ws, event_id="evt_1Storm").count() == 1
    assert StripeEvent.objects.get(event_id="evt_1Storm").status == StripeEvent.Status.PROCESSED
    assert applied == ["evt_1Storm"]
    assert MirrorSubscription.objects.filter(workspace=ws, stripe_id=SUB).count() == 1
