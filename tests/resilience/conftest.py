"""Fault injection: Stripe, the helpdesk, Redis and the database failing under the product.

Ordinary pytest, no timing: each test injects one fault (``responses`` for HTTP,
an unreachable Redis, a patched database write) and asserts what the agent sees
and — above all — what is and is not recorded.
"""

from __future__ import annotations

import time

import pytest
import requests

from billing_app.providers.stripe.client import StripeHttpClient
from billing_app.services.mirror import mirror_upsert
from tests.billing_app.stripe_support import StripeMock, load, make_stripe_workspace, stripe_error

CUS = "cus_RbAcmeCorp0001"
CH = "ch_3RbAcmePaid0022"
NOW = int(time.time())

# What Stripe does when it fails, as stripe-python's transport sees it.
FAULTS = {
    "timeout": {"exc": requests.exceptions.ReadTimeout("Read timed out. (read timeout=10)")},
    "connection_reset": {
        "exc": requests.exceptions.ConnectionError(
            ConnectionResetError(104, "Connection reset by peer")
        )
    },
    "rate_limited_429": {
        "body": stripe_error("invalid_request_error", "Too many requests.", code="rate_limit"),
        "status": 429,
        "headers": {"Retry-After": "1"},
    },
    "server_error_500": {
        "body": stripe_error("api_error", "Something went wrong on Stripe's end."),
        "status": 500,
    },
}


@pytest.fixture(autouse=True)
def _no_backoff(monkeypatch):
    monkeypatch.setattr(StripeHttpClient, "backoff_scale", 0.0)


@pytest.fixture
def stripe(http):
    return StripeMock(http)


@pytest.fixture
def ws(make_workspace):
    """A Stripe workspace mirroring Acme Corp and a recent $3,400 charge."""
    workspace = make_stripe_workspace(make_workspace)
    mirror_upsert(workspace=workspace, obj=load("customer"))
    mirror_upsert(workspace=workspace, obj=load("charge", created=NOW - 2 * 86400))
    return workspace


def fail(stripe: StripeMock, method: str, path: str, fault: str) -> None:
    """Every attempt of ``method path`` fails with ``fault`` (the last answer repeats)."""
    spec = FAULTS[fault]
    if "exc" in spec:
        stripe.on(method, path, exc=spec["exc"])
    else:
        stripe.on(method, path, spec["body"], status=spec["status"], headers=spec.get("headers"))


def refund_body(*, amount: int = 50000, key: str = "refund-1") -> dict:
    return {
        "kind": "issue_refund",
        "customer_id": CUS,
        "ticket_id": "4821",
        "params": {"charge_id": CH, "amount": amount, "currency": "USD", "reason": "billing_error"},
        "idempotency_key": key,
    }
