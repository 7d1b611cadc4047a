"""Duplicate charges: found, shown with both charges, the later one refunded once, then monitored."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
import responses

from billing_app.catalog import Role
from billing_app.models import CustomerFlag, MirrorCharge, MirrorCustomer, MirrorRefund
from billing_app.providers.stripe.client import StripeHttpClient
from billing_app.selectors.context import customer_context
from billing_app.selectors.duplicates import customer_duplicates
from billing_app.services.mirror import mirror_upsert

from .context_support import AS_OF, seed_brief_day
from .stripe_support import API, event, load, make_stripe_workspace, params_of, webhook_poster

GLOBEX = "cus_sbx_globex"
FIRST, DUPLICATE = "ch_sbx_globex_05", "ch_sbx_globex_duplicate"


@pytest.fixture
def seeded(db, settings):
    return seed_brief_day(settings)


@pytest.fixture
def ws(seeded):
    return seeded.workspace


def duplicates_url(customer_id=GLOBEX):
    return f"/api/v1/customers/{customer_id}/duplicates/"


def refund_duplicate(client, *, key="dup-1", ticket="GX-1", charge_ids=(FIRST, DUPLICATE)):
    return client.post(
        "/api/v1/actions/",
        {
            "kind": "refund_duplicate_charge",
            "customer_id": GLOBEX,
            "ticket_id": ticket,
            "params": {"charge_ids": list(charge_ids)},
            "idempotency_key": key,
        },
        format="json",
    )


def test_the_globex_pair_is_found_with_both_charges(ws, api_as):
    response = api_as(ws, Role.L1).get(duplicates_url())

    assert response.status_code == 200
    body = response.json()
    assert body["window_hours"] == 24
    (pair,) = body["pairs"]
    assert pair["charge_ids"] == [FIRST, DUPLICATE]
    assert pair["duplicate_charge_id"] == DUPLICATE  # the later one is refunded
    assert pair["amount"] == {
        "amount": 29_900,
        "currency": "USD",
        "exponent": 2,
        "display": "$299.00",
    }
    assert pair["refundable"]["amount"] == 29_900
    assert pair["minutes_apart"] == 3
    first, later = pair["charges"]
    assert (first["id"], first["invoice_number"], first["method"]) == (
        FIRST,
        "GLX-0005",
        "Visa 1881",
    )
    assert (later["id"], later["invoice_id"]) == (DUPLICATE, None)
    assert pair["root_cause"].startswith("Likely a payment gateway retry")
    assert pair["action"] == {
        "kind": "refund_duplicate_charge",
        "label": "Refund duplicate",
        "params": {"charge_ids": [FIRST, DUPLICATE]},
    }


def test_the_panel_alert_shows_both_charges_and_the_refund_action(ws):
    customer = MirrorCustomer.objects.get(workspace=ws, stripe_id=GLOBEX)

    alert = next(
        a
        for a in customer_context(workspace=ws, customer=customer)["alerts"]
        if a["type"] == "duplicate_charge"
    )

    assert [c["id"] for c in alert["data"]["charges"]] == [FIRST, DUPLICATE]
    assert [c["created"] for c in alert["data"]["charges"]] == [
        "2026-01-14T16:02:00Z",
        "2026-01-14T16:05:00Z",
    ]
    assert alert["data"]["action"]["kind"] == "refund_duplicate_charge"
    assert alert["data"]["action"]["refund_charge_id"] == DUPLICATE


def test_refund_duplicate_refunds_the_later_charge_once_and_monitors_for_30_days(
    ws, api_as, django_capture_on_commit_callbacks
):
    manager = api_as(ws, Role.MANAGER)

    # when a Manager refunds the duplicate (the pair given in either order)
    with django_capture_on_commit_callbacks(execute=True):
        response = refund_duplicate(manager, charge_ids=(DUPLICATE, FIRST))

    # then the later charge is refunded in full with reason "duplicate"
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["status"] == "succeeded"
    assert body["result"]["charge_id"] == DUPLICATE
    assert body["result"]["amount"]["amount"] == 29_900
    (refund,) = MirrorRefund.objects.filter(workspace=ws, charge_id=DUPLICATE)
    assert (refund.amount, refund.reason) == (29_900, "duplicate")
    assert MirrorCharge.objects.get(workspace=ws, stripe_id=FIRST).amount_refunded == 0
    # and the customer's message is the brief's, with the amount
    assert body["customer_message"] == (
        "We found a duplicate charge of $299.00. We've issued an immediate refund. "
        "It will appear on your statement within 5-7 business days."
    )
    # and the account is flagged for payment monitoring for 30 days
    flag = CustomerFlag.objects.get(workspace=ws, customer_id=GLOBEX, kind="payment_monitoring")
    assert flag.active_until == AS_OF + timedelta(days=30)

    # then the pair is gone, the panel shows the monitoring flag instead
    assert api_as(ws, Role.L1).get(duplicates_url()).json()["pairs"] == []
    customer = MirrorCustomer.objects.get(workspace=ws, stripe_id=GLOBEX)
    alerts = {a["type"]: a for a in customer_context(workspace=ws, customer=customer)["alerts"]}
    assert "duplicate_charge" not in alerts
    assert alerts["payment_monitoring"]["data"]["until"] == "2026-02-14"

    # and asking again refunds nothing more
    again = refund_duplicate(manager, key="dup-2")
    assert again.status_code == 422
    assert again.json()["error"]["code"] == "already_refunded"
    assert MirrorRefund.objects.filter(workspace=ws, charge_id=DUPLICATE).count() == 1


def test_only_same_amount_succeeded_charges_within_the_window_pair_up(ws):
    duplicate = MirrorCharge.objects.get(workspace=ws, stripe_id=DUPLICATE)
    base = duplicate.data

    # a failed attempt of the same amount and another amount an hour later are no duplicates
    mirror_upsert(
        workspace=ws, obj={**base, "id": "ch_sbx_globex_failed", "status": "failed", "paid": False}
    )
    mirror_upsert(
        workspace=ws,
        obj={
            **base,
            "id": "ch_sbx_globex_other",
            "amount": 4_900,
            "created": base["created"] + 3600,
        },
    )
    assert [
        p["duplicate_charge_id"]
        for p in customer_duplicates(workspace=ws, customer_id=GLOBEX, now=AS_OF)["pairs"]
    ] == [DUPLICATE]

    # and with a one-hour window, a charge two hours later is not a duplicate
    ws.duplicate_window_hours = 1
    mirror_upsert(workspace=ws, obj={**base, "created": base["created"] + 2 * 3600})
    assert customer_duplicates(workspace=ws, customer_id=GLOBEX, now=AS_OF)["pairs"] == []


def test_duplicates_endpoint_refuses_strangers(ws, api_as, make_workspace, client):
    assert client.get(duplicates_url()).status_code == 401
    other = make_workspace("initrode")
    response = api_as(other, Role.MANAGER).get(duplicates_url())
    assert (response.status_code, response.json()["error"]["code"]) == (404, "customer_not_found")


# --- on Stripe --------------------------------------------------------------------------------

CUS = "cus_RbAcmeCorp0001"


@pytest.fixture
def stripe_ws(make_workspace, monkeypatch):
    monkeypatch.setattr(StripeHttpClient, "backoff_scale", 0.0)
    workspace = make_stripe_workspace(make_workspace)
    mirror_upsert(workspace=workspace, obj=load("customer"))
    return workspace


def test_on_stripe_two_signed_charges_pair_up_and_the_later_is_refunded(
    stripe_ws, http, client, api_as, django_capture_on_commit_callbacks
):
    now = int(time.time())
    first = load(
        "charge", id="ch_3RbAcmeTwice0001", payment_intent="pi_3RbAcmeTwice0001", created=now - 3600
    )
    later = load(
        "charge", id="ch_3RbAcmeTwice0002", payment_intent="pi_3RbAcmeTwice0002", created=now - 3000
    )
    for charge in (first, later):
        http.upsert(responses.GET, f"{API}/v1/charges/{charge['id']}", json=charge)

    # when Stripe delivers both charges (signed)
    deliver = webhook_poster(client, stripe_ws, django_capture_on_commit_callbacks)
    for n, charge in enumerate((first, later)):
        deliver(event(f"evt_1Twice{n}", "charge.succeeded", charge, created=charge["created"]))

    # then they are a pair, ten minutes apart
    (pair,) = api_as(stripe_ws, Role.L2).get(duplicates_url(CUS)).json()["pairs"]
    assert pair["charge_ids"] == [first["id"], later["id"]] and pair["minutes_apart"] == 10

    # when a Manager refunds the duplicate
    refunded_later = {**later, "amount_refunded": later["amount"], "refunded": True}
    http.upsert(responses.GET, f"{API}/v1/charges/{later['id']}", json=later)
    http.add(responses.GET, f"{API}/v1/charges/{later['id']}", json=refunded_later)
    http.post(
        f"{API}/v1/refunds",
        json=load(
            "refund",
            id="re_3RbAcmeTwice0001",
            charge=later["id"],
            reason="duplicate",
            amount=later["amount"],
        ),
    )
    response = api_as(stripe_ws, Role.MANAGER).post(
        "/api/v1/actions/",
        {
            "kind": "refund_duplicate_charge",
            "customer_id": CUS,
            "ticket_id": "4822",
            "params": {"charge_ids": [first["id"], later["id"]]},
            "idempotency_key": "twice-1",
        },
        format="json",
    )

    # then Stripe got one refund of the later charge, reason duplicate, keyed by the action
    assert response.status_code == 201, response.json()
    action_id = response.json()["id"]
    (post,) = [
        c for c in http.calls if c.request.method == "POST" and c.request.url == f"{API}/v1/refunds"
    ]
    sent = params_of(post)
    assert (sent["charge"], sent["amount"], sent["reason"]) == (
        later["id"],
        str(later["amount"]),
        "duplicate",
    )
    assert (
        post.request.headers["Idempotency-Key"]
        == f"billing-desk-{action_id}-refund_duplicate_charge"
    )
    assert api_as(stripe_ws, Role.L2).get(duplicates_url(CUS)).json()["pairs"] == []
    assert CustomerFlag.objects.filter(workspace=stripe_ws, customer_id=CUS).exists()
