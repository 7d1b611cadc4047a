"""The database failing mid-action: no half-done money movement, never a false "succeeded".

The worst moment is after Stripe refunded and before the audit row says so. The
action must then stay ``executing`` (not ``failed``: the money moved; not
``succeeded``: nothing recorded it), the agent gets a 503 telling them to retry
with the same key, and the reconciliation takes it over, gets Stripe's first
result back (same provider key; a fully refunded charge is found by the action id
in the refund's metadata) and records it — one refund at Stripe in every case.
"""

from __future__ import annotations

import json
from urllib.parse import parse_qsl

import pytest
from django.db import DatabaseError

from billing_app.catalog import Role
from billing_app.models import BillingAction
from billing_app.services.actions import outcomes as actions
from billing_app.services.reconcile import actions_stale_reconcile
from tests.billing_app.stripe_support import API, listing, load

from .conftest import CH, NOW, refund_body


def charge(refunded: int = 0, refunds: tuple = ()):
    return load(
        "charge",
        created=NOW - 2 * 86400,
        amount_refunded=refunded,
        refunded=refunded >= 340000,
        refunds=listing(f"/v1/charges/{CH}/refunds", *refunds),
    )


@pytest.fixture
def audit_write_fails(monkeypatch):
    """The audit write after the provider call raises, every time, until ``heal()``."""
    real = actions._succeed
    state = {"broken": True, "calls": 0}

    def succeed(*args, **kwargs):
        state["calls"] += 1
        if state["broken"]:
            raise DatabaseError("server closed the connection unexpectedly")
        return real(*args, **kwargs)

    monkeypatch.setattr(actions, "_succeed", succeed)
    state["heal"] = lambda: state.update(broken=False)
    return state


@pytest.mark.parametrize(
    ("amount", "second_post"),
    [(50000, True), (340000, False)],
    ids=["partial-refund-replayed-by-key", "full-refund-found-by-metadata"],
)
def test_a_refund_whose_audit_write_fails_is_reconciled_without_refunding_twice(
    ws, stripe, http, api_as, settings, audit_write_fails, amount, second_post
):
    # given Stripe refunds (echoing our metadata, as Stripe does), then the database
    # refuses the audit write
    made: list[dict] = []

    def create(request):
        sent = dict(parse_qsl(request.body))
        metadata = {k[9:-1]: v for k, v in sent.items() if k.startswith("metadata[")}
        if not made:
            made.append(load("refund", amount=amount, metadata=metadata))
        return 200, {}, json.dumps(made[0])

    def read_charge(request):
        return 200, {}, json.dumps(charge(amount, tuple(made)) if made else charge())

    def list_refunds(request):
        return 200, {}, json.dumps(listing("/v1/refunds", *made))

    http.add_callback("POST", f"{API}/v1/refunds", callback=create)
    http.add_callback("GET", f"{API}/v1/charges/{CH}", callback=read_charge)
    http.add_callback("GET", f"{API}/v1/refunds", callback=list_refunds)

    # when a Manager refunds
    response = api_as(ws, Role.MANAGER).post(
        "/api/v1/actions/", refund_body(amount=amount), format="json"
    )

    # then the agent is told to retry with the same key — a 503, not a 500
    assert response.status_code == 503, response.content
    error = response.json()["error"]
    assert error["code"] == "action_not_recorded"
    action = BillingAction.objects.get(pk=error["details"]["action_id"])
    # and the action is neither succeeded nor failed: it stays executing, recorded as nothing
    assert action.status == BillingAction.Status.EXECUTING
    assert (action.provider_object_id, action.completed_at) == ("", None)
    assert audit_write_fails["calls"] == 2  # retried once on a fresh connection
    assert len(stripe.requests_to("POST", "/v1/refunds")) == 1

    # when the database is back and the reconciliation finds the action stale
    audit_write_fails["heal"]()
    settings.BILLING_DESK_ACTION_STALE_SECONDS = 0
    taken = actions_stale_reconcile()

    # then it is recorded as succeeded with Stripe's refund, and Stripe refunded once
    action.refresh_from_db()
    assert taken == 1
    assert action.status == BillingAction.Status.SUCCEEDED, (
        action.error_code,
        action.error_message,
    )
    assert action.provider_object_id == made[0]["id"]
    assert made[0]["metadata"]["billing_desk_action"] == str(action.pk)
    posts = stripe.requests_to("POST", "/v1/refunds")
    assert len(posts) == (2 if second_post else 1)
    assert len({p.request.headers["Idempotency-Key"] for p in posts}) == 1


def test_a_passing_database_hiccup_is_retried_and_recorded(ws, stripe, api_as, monkeypatch):
    # given the first audit write fails and the second works
    real = actions._succeed
    calls = []

    def succeed(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise DatabaseError("could not serialize access")
        return real(*args, **kwargs)

    monkeypatch.setattr(actions, "_succeed", succeed)
    stripe.on("GET", f"/v1/charges/{CH}", charge())
    stripe.on("POST", "/v1/refunds", load("refund"))

    response = api_as(ws, Role.MANAGER).post("/api/v1/actions/", refund_body(), format="json")

    # then the action is recorded as succeeded, with one refund at Stripe
    assert response.status_code == 201
    assert response.json()["status"] == "succeeded"
    assert len(stripe.requests_to("POST", "/v1/refunds")) == 1


def test_a_database_error_before_the_provider_call_moves_no_money(ws, stripe, api_as, monkeypatch):
    # given the database refuses to record the attempt
    def broken_save(self, *args, **kwargs):
        raise DatabaseError("the database system is starting up")

    monkeypatch.setattr(BillingAction, "save", broken_save)

    response = api_as(ws, Role.MANAGER).post("/api/v1/actions/", refund_body(), format="json")

    # then the agent gets a clean 503 and Stripe was never asked to refund
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "service_unavailable"
    assert stripe.requests_to("POST", "/v1/refunds") == []
    assert not BillingAction.objects.exists()


def test_reconciliation_leaves_fresh_executing_actions_alone(ws, stripe, api_as, settings):
    # given an action another worker is executing right now
    settings.BILLING_DESK_ACTION_STALE_SECONDS = 300
    stripe.on("GET", f"/v1/charges/{CH}", charge())
    stripe.on("POST", "/v1/refunds", load("refund"))
    done = api_as(ws, Role.MANAGER).post("/api/v1/actions/", refund_body(), format="json")
    BillingAction.objects.filter(pk=done.json()["id"]).update(status="executing")

    # when the reconciliation runs
    taken = actions_stale_reconcile()

    # then it takes nothing over and calls nobody
    assert taken == 0
    assert len(stripe.requests_to("POST", "/v1/refunds")) == 1
