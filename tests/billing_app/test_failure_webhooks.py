"""Payment failures on Stripe: signed webhook deliveries, Stripe and Zendesk intercepted.

Each delivery is signed with the workspace's webhook secret as Stripe signs
(``t=…,v1=HMAC-SHA256(secret, "t.payload")``); the object it names is re-read
from Stripe (answered here with the project's Stripe-shaped fixtures holding
Stripe's *current* state), so every test also checks that a duplicate or an
out-of-order delivery changes nothing twice.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests
import responses
from django.utils import timezone

from billing_app.catalog import Role
from billing_app.models import BillingAction, PaymentFailure, StripeEvent
from billing_app.providers.stripe.client import StripeHttpClient
from billing_app.services.mirror import mirror_upsert
from billing_app.services.outbox import outbox_redrive
from billing_app.services.payment_failures.escalation import csm_ticket_key
from billing_app.services.workspaces import installation_add

from .stripe_support import (
    API,
    event,
    load,
    make_stripe_workspace,
    stripe_state_setter,
    webhook_poster,
)

BETA = "cus_RbBetaExpired01"
INVOICE = "in_1RbBetaPro0007"
PI = "pi_3RbBetaFailed0001"
SUB = "sub_1RbBetaPro01"
T0 = 1774663200  # the first attempt (2026-03-28 02:00 UTC)
DAY = 86400
ZENDESK = "https://beta-help.zendesk.com"
CSM_GROUP_ID = 360000012345
STRIPE_FIXTURES = Path(__file__).resolve().parents[2] / "../shared/stripe/fixtures3.json"


@pytest.fixture(autouse=True)
def _no_backoff(monkeypatch):
    monkeypatch.setattr(StripeHttpClient, "backoff_scale", 0.0)


@pytest.fixture
def ws(make_workspace):
    workspace = make_stripe_workspace(make_workspace)
    workspace.csm_group = "Customer Success"
    workspace.save(update_fields=["csm_group"])
    mirror_upsert(
        workspace=workspace,
        obj={**load("customer"), "id": BETA, "name": "Beta Labs", "email": "ap@beta.example"},
    )
    return workspace


@pytest.fixture
def zendesk(ws):
    return installation_add(
        workspace=ws,
        connector="zendesk",
        domain="beta-help.zendesk.com",
        installation_id="360009999",
        app_id="818181",
        api_email="admin@beta.example",
        api_token="zdApiToken",
    )


@pytest.fixture
def agent_action(ws, zendesk, sign_in):
    """An action an agent took for Beta from Zendesk ticket 7001 (its latest ticket)."""
    membership, _ = sign_in(ws, Role.L2, agent_id="35436")

    def make(kind="resend_invoice", key="beta-1"):
        return BillingAction.objects.create(
            workspace=ws,
            installation=zendesk,
            actor=membership.user,
            actor_role="l2",
            ticket_id="7001",
            customer_id=BETA,
            kind=kind,
            params={"invoice_id": INVOICE},
            status=BillingAction.Status.SUCCEEDED,
            decision=BillingAction.Decision.ALLOW,
            idempotency_key=key,
            request_fingerprint="f" * 64,
            completed_at=datetime.now(tz=UTC),
        )

    return make


@pytest.fixture
def deliver(client, ws, django_capture_on_commit_callbacks):
    return webhook_poster(client, ws, django_capture_on_commit_callbacks)


@pytest.fixture
def stripe_state(http):
    return stripe_state_setter(http)


def stripe_gets(http, path):
    return [
        c
        for c in http.calls
        if c.request.method == "GET" and c.request.url.split("?")[0] == API + path
    ]


def failed_charge(n, *, created):
    return load(
        "charge_failed",
        id=f"ch_3RbBetaFailed000{n}",
        created=created,
        payment_intent=PI,
        description="Subscription update",
    )


def open_invoice(attempts, *, next_attempt):
    return load(
        "invoice_payment_failed",
        attempt_count=attempts,
        next_payment_attempt=next_attempt,
    )


def paid_invoice(*, paid_at, attempts=1):
    invoice = load("invoice_payment_failed", attempt_count=attempts)
    invoice.update(
        status="paid",
        amount_paid=9900,
        amount_remaining=0,
        next_payment_attempt=None,
        auto_advance=False,
        status_transitions={**invoice["status_transitions"], "paid_at": paid_at},
    )
    invoice["payments"]["data"][0].update(
        status="paid",
        amount_paid=9900,
        status_transitions={"canceled_at": None, "paid_at": paid_at},
    )
    return invoice


def intent(charge):
    return load(
        "payment_intent",
        id=PI,
        latest_charge=charge,
        last_payment_error={
            "charge": charge["id"],
            "code": "expired_card",
            "decline_code": "expired_card",
            "message": "Your card has expired.",
            "type": "card_error",
        },
    )


def fail(deliver, stripe_state, n, *, at, events=("charge.failed", "invoice.payment_failed")):
    """Attempt ``n`` fails at ``at``: Stripe's state moves on, then its events are delivered."""
    charge = failed_charge(n, created=at)
    invoice = open_invoice(n, next_attempt=at + 3 * DAY)
    stripe_state(f"/v1/charges/{charge['id']}", charge)
    stripe_state(f"/v1/invoices/{INVOICE}", invoice)
    stripe_state(f"/v1/payment_intents/{PI}", intent(charge))
    objects = {
        "charge.failed": charge,
        "invoice.payment_failed": invoice,
        "payment_intent.payment_failed": load("payment_intent", id=PI, latest_charge=charge["id"]),
    }
    return [
        deliver(event(f"evt_1{kind.replace('.', '_')}_{n}", kind, objects[kind], created=at + 5))
        for kind in events
    ]


def zendesk_ok(http, *, ticket_status=201):
    http.get(
        f"{ZENDESK}/api/v2/groups.json",
        json={
            "groups": [
                {"id": 360000000001, "name": "Support", "deleted": False},
                {"id": CSM_GROUP_ID, "name": "Customer Success", "deleted": False},
            ],
            "next_page": None,
            "previous_page": None,
            "count": 2,
        },
    )
    http.put(
        f"{ZENDESK}/api/v2/tickets/7001.json",
        json={
            "ticket": {"id": 7001},
            "audit": {"id": 88001, "events": [{"id": 88002, "type": "Comment"}]},
        },
    )
    http.post(
        f"{ZENDESK}/api/v2/tickets.json",
        status=ticket_status,
        json={
            "ticket": {"id": 9001, "status": "new", "group_id": CSM_GROUP_ID},
            "audit": {"id": 1, "events": []},
        },
    )


def zendesk_calls(http, method, path):
    return [c for c in http.calls if c.request.method == method and c.request.url == ZENDESK + path]


# --- one failure, three reports, delivered twice ------------------------------------------------


def test_one_failure_reported_three_ways_and_twice_is_recorded_once(
    ws, deliver, stripe_state, http
):
    # when Stripe reports the failed attempt by charge, payment intent and invoice
    answers = fail(
        deliver,
        stripe_state,
        1,
        at=T0,
        events=("charge.failed", "payment_intent.payment_failed", "invoice.payment_failed"),
    )

    # then one failure is recorded, with the decline in plain words and the invoice's retry
    assert [a["duplicate"] for a in answers] == [False, False, False]
    (failure,) = PaymentFailure.objects.filter(workspace=ws)
    assert (
        failure.charge_id,
        failure.payment_intent_id,
        failure.invoice_id,
        failure.subscription_id,
    ) == (
        "ch_3RbBetaFailed0001",
        PI,
        INVOICE,
        SUB,
    )
    assert (failure.amount, failure.currency, failure.decline_code, failure.reason) == (
        9900,
        "USD",
        "expired_card",
        "Card expired",
    )
    assert failure.attempt_count == 1
    assert failure.next_retry_at == datetime.fromtimestamp(T0 + 3 * DAY, tz=UTC)
    assert failure.failed_at == datetime.fromtimestamp(T0, tz=UTC)
    assert failure.source == "webhook"
    assert StripeEvent.objects.filter(workspace=ws, status="processed").count() == 3

    # when Stripe redelivers all three
    calls_before = len(http.calls)
    again = [
        deliver(
            event(
                f"evt_1{kind.replace('.', '_')}_1",
                kind,
                {"id": "x", "object": kind.split(".")[0]},
                created=T0 + 5,
            )
        )
        for kind in ("charge.failed", "payment_intent.payment_failed", "invoice.payment_failed")
    ]

    # then they are recognised and nothing is re-read or recorded again
    assert [a["duplicate"] for a in again] == [True, True, True]
    assert len(http.calls) == calls_before
    assert PaymentFailure.objects.filter(workspace=ws).count() == 1


def test_an_invoice_event_alone_fetches_the_failed_charge(ws, deliver, stripe_state, http):
    # when only invoice.payment_failed reaches the endpoint (no charge events subscribed)
    fail(deliver, stripe_state, 1, at=T0, events=("invoice.payment_failed",))

    # then the intent's latest charge was fetched (expanded) and the failure recorded from it
    (read,) = stripe_gets(http, f"/v1/payment_intents/{PI}")
    assert "expand%5B0%5D=latest_charge" in read.request.url
    (failure,) = PaymentFailure.objects.filter(workspace=ws)
    assert (failure.charge_id, failure.decline_code, failure.attempt_count) == (
        "ch_3RbBetaFailed0001",
        "expired_card",
        1,
    )

    # and the charge event arriving later lands on the same record
    charge = failed_charge(1, created=T0)
    deliver(event("evt_1late_charge", "charge.failed", charge, created=T0 + 9))
    assert PaymentFailure.objects.filter(workspace=ws).count() == 1


# --- three in a row -------------------------------------------------------------------------------


def test_three_consecutive_failures_send_one_warning_and_one_zendesk_ticket(
    ws, zendesk, agent_action, deliver, stripe_state, http
):
    # given Beta's latest ticket is Zendesk #7001 and Zendesk answers
    agent_action()
    zendesk_ok(http)

    # when three attempts fail, three days apart
    for n in (1, 2, 3):
        fail(deliver, stripe_state, n, at=T0 + (n - 1) * 3 * DAY)

    # then the third carries the streak's warning
    rows = list(PaymentFailure.objects.filter(workspace=ws).order_by("failed_at"))
    assert [(f.attempt_count, f.consecutive_count) for f in rows] == [(1, 1), (2, 2), (3, 3)]
    # each attempt's retry was the next attempt
    assert [f.next_retry_at for f in rows[:2]] == [f.failed_at for f in rows[1:]]
    third = rows[-1]
    assert third.suspension_warning_sent_at is not None
    assert [f.suspension_warning_sent_at is None for f in rows[:2]] == [True, True]
    # and one internal note on ticket 7001
    (note,) = zendesk_calls(http, "PUT", "/api/v2/tickets/7001.json")
    comment = json.loads(note.request.body)["ticket"]["comment"]
    assert comment["public"] is False
    assert comment["body"].startswith("Billing Desk · Account suspension warning")
    assert "Beta Labs (cus_RbBetaExpired01, ap@beta.example)" in comment["body"]
    assert "Consecutive payment failures: 3" in comment["body"]
    # and one CSM ticket for the Customer Success group
    (created,) = zendesk_calls(http, "POST", "/api/v2/tickets.json")
    ticket = json.loads(created.request.body)["ticket"]
    assert ticket["group_id"] == CSM_GROUP_ID
    assert ticket["subject"] == "CSM outreach: Beta Labs — 3 consecutive payment failures"
    assert ticket["comment"]["public"] is False
    assert "Latest: $99.00 on April 3, 2026 — Card expired (attempt 3)" in ticket["comment"]["body"]
    assert third.next_retry_at == datetime.fromtimestamp(T0 + 9 * DAY, tz=UTC)
    assert created.request.headers["Authorization"].startswith("Basic ")
    assert (third.suspension_note_status, third.suspension_note_ref) == ("posted", "7001:88002")
    assert (third.csm_outreach_status, third.csm_outreach_ref) == ("ticket", "zendesk:9001")

    # when attempt 3's events are redelivered and a fourth attempt fails
    deliver(
        event(
            "evt_1invoice_payment_failed_3", "invoice.payment_failed", {"id": INVOICE}, created=T0
        )
    )
    fail(deliver, stripe_state, 4, at=T0 + 9 * DAY)

    # then no second note, no second ticket
    assert len(zendesk_calls(http, "POST", "/api/v2/tickets.json")) == 1
    assert len(zendesk_calls(http, "PUT", "/api/v2/tickets/7001.json")) == 1
    assert (
        PaymentFailure.objects.filter(
            workspace=ws, suspension_warning_sent_at__isnull=False
        ).count()
        == 1
    )
    assert PaymentFailure.objects.filter(workspace=ws).count() == 4


def test_a_zendesk_outage_is_retried_and_still_opens_one_ticket(
    ws, zendesk, agent_action, deliver, stripe_state, http
):
    agent_action()
    http.post(f"{ZENDESK}/api/v2/tickets.json", status=503, json={"error": "Service Unavailable"})
    zendesk_ok(http)

    for n in (1, 2, 3):
        fail(deliver, stripe_state, n, at=T0 + (n - 1) * DAY)
    # the escalation is an outbox row: the minute re-drive retries it after its backoff
    outbox_redrive(now=timezone.now() + timedelta(minutes=5))

    posts = zendesk_calls(http, "POST", "/api/v2/tickets.json")
    assert [p.response.status_code for p in posts] == [503, 201]
    assert len(zendesk_calls(http, "PUT", "/api/v2/tickets/7001.json")) == 1
    third = PaymentFailure.objects.get(workspace=ws, attempt_count=3)
    # each try names the failure and what it sends: here the re-read moved the next retry
    # date between the tries, so the retry is another request (Zendesk refuses a key
    # reused with another body) and carries another key; an unchanged retry reuses its key
    bodies = [json.loads(p.request.body)["ticket"] for p in posts]
    keys = [p.request.headers["Idempotency-Key"] for p in posts]
    assert all(key.startswith(f"csm-outreach-{third.pk}-") for key in keys)
    assert bodies[0] != bodies[1] and keys[0] != keys[1]
    assert keys[1] == csm_ticket_key(
        third, subject=bodies[1]["subject"], body=bodies[1]["comment"]["body"]
    )
    assert (third.csm_outreach_status, third.csm_outreach_ref) == ("ticket", "zendesk:9001")
    assert third.escalation_attempts == 2


def test_the_csm_ticket_key_is_the_same_for_the_same_ticket_and_new_for_another():
    failure, other = PaymentFailure(pk=7), PaymentFailure(pk=8)
    key = csm_ticket_key(failure, subject="CSM outreach: Beta", body="Next retry: April 1")

    assert key == csm_ticket_key(failure, subject="CSM outreach: Beta", body="Next retry: April 1")
    assert key != csm_ticket_key(failure, subject="CSM outreach: Beta", body="Next retry: April 2")
    assert key != csm_ticket_key(other, subject="CSM outreach: Beta", body="Next retry: April 1")
    assert key.startswith("csm-outreach-7-") and len(key) <= 255


def test_a_warning_note_that_timed_out_after_zendesk_stored_it_is_not_posted_twice(
    ws, zendesk, agent_action, deliver, stripe_state, http
):
    # given Zendesk stores the suspension warning, then the answer times out
    agent_action()
    zendesk_ok(http)
    stored: list[dict] = []

    def put(request):
        body = json.loads(request.body)["ticket"]["comment"]["body"]
        stored.append({"id": 88002, "type": "Comment", "body": body, "plain_body": body})
        raise requests.exceptions.ReadTimeout("Read timed out. (read timeout=10)")

    http.remove(responses.PUT, f"{ZENDESK}/api/v2/tickets/7001.json")
    http.add_callback(responses.PUT, f"{ZENDESK}/api/v2/tickets/7001.json", callback=put)
    http.add_callback(
        responses.GET,
        f"{ZENDESK}/api/v2/tickets/7001/comments.json",
        callback=lambda request: (
            200,
            {},
            json.dumps({"comments": stored[::-1], "next_page": None, "count": len(stored)}),
        ),
    )

    # when the third failure escalates and the re-drive retries the timed-out note
    for n in (1, 2, 3):
        fail(deliver, stripe_state, n, at=T0 + (n - 1) * DAY)
    outbox_redrive(now=timezone.now() + timedelta(minutes=5))

    # then the warning is on the ticket once, found by its marker and recorded as posted
    assert len(zendesk_calls(http, "PUT", "/api/v2/tickets/7001.json")) == 1
    assert len(stored) == 1 and "Billing Desk ref: payment-failure-" in stored[0]["body"]
    third = PaymentFailure.objects.get(workspace=ws, attempt_count=3)
    assert (third.suspension_note_status, third.suspension_note_ref) == ("posted", "7001:88002")


# --- recovery ---------------------------------------------------------------------------------


def test_invoice_paid_recovers_the_failures_with_their_recovery_time(
    ws, zendesk, agent_action, deliver, stripe_state
):
    # given two failed attempts, then an agent's payment link
    fail(deliver, stripe_state, 1, at=T0)
    fail(deliver, stripe_state, 2, at=T0 + DAY)
    action = agent_action(kind="generate_payment_link", key="beta-link")

    # when the customer pays two days after the first failure
    paid_at = T0 + 2 * DAY
    stripe_state(f"/v1/invoices/{INVOICE}", paid_invoice(paid_at=paid_at, attempts=3))
    deliver(
        event("evt_1paid", "invoice.paid", {"id": INVOICE, "object": "invoice"}, created=paid_at)
    )

    # then both are recovered at the payment, after the agent's action
    rows = list(PaymentFailure.objects.filter(workspace=ws).order_by("failed_at"))
    when = datetime.fromtimestamp(paid_at, tz=UTC)
    assert [f.recovered_at for f in rows] == [when, when]
    assert [f.time_to_recover for f in rows] == [timedelta(days=2), timedelta(days=1)]
    assert {f.recovered_by for f in rows} == {"agent_action"}
    assert {f.recovery_action_id for f in rows} == {action.pk}
    assert {f.recovered_via for f in rows} == {INVOICE}

    # and a redelivered or a second success event changes nothing
    before = list(
        PaymentFailure.objects.filter(workspace=ws).values("recovered_at", "time_to_recover")
    )
    deliver(
        event("evt_1paid", "invoice.paid", {"id": INVOICE, "object": "invoice"}, created=paid_at)
    )
    deliver(
        event("evt_1succeeded", "invoice.payment_succeeded", {"id": INVOICE}, created=paid_at + 60)
    )
    assert (
        list(PaymentFailure.objects.filter(workspace=ws).values("recovered_at", "time_to_recover"))
        == before
    )


def test_a_success_delivered_before_the_failure_does_not_leave_it_open(ws, deliver, stripe_state):
    # given the invoice was paid a day after the failed attempt, and Stripe says so first
    paid_at = T0 + DAY
    stripe_state(f"/v1/invoices/{INVOICE}", paid_invoice(paid_at=paid_at))
    deliver(
        event(
            "evt_1paid_first", "invoice.paid", {"id": INVOICE, "object": "invoice"}, created=paid_at
        )
    )

    # when the older failure event arrives afterwards
    charge = failed_charge(1, created=T0)
    stripe_state(f"/v1/charges/{charge['id']}", charge)
    deliver(event("evt_1failed_late", "charge.failed", charge, created=T0 + 5))

    # then the failure is recorded, and recovered at the payment
    (failure,) = PaymentFailure.objects.filter(workspace=ws)
    assert failure.invoice_id == INVOICE
    assert failure.recovered_at == datetime.fromtimestamp(paid_at, tz=UTC)
    assert failure.time_to_recover == timedelta(days=1)
    assert failure.recovered_by == "payment"


def test_a_succeeded_retry_on_the_same_intent_recovers_the_failure(ws, deliver, stripe_state):
    fail(deliver, stripe_state, 1, at=T0, events=("charge.failed",))

    succeeded = load(
        "charge",
        id="ch_3RbBetaRetryOk01",
        customer=BETA,
        amount=9900,
        payment_intent=PI,
        created=T0 + 3 * DAY,
    )
    stripe_state(f"/v1/charges/{succeeded['id']}", succeeded)
    deliver(event("evt_1retry_ok", "charge.succeeded", succeeded, created=T0 + 3 * DAY))

    (failure,) = PaymentFailure.objects.filter(workspace=ws)
    assert (failure.recovered_via, failure.time_to_recover) == (
        "ch_3RbBetaRetryOk01",
        timedelta(days=3),
    )


# --- the shapes read -----------------------------------------------------------------------------


@pytest.mark.skipif(
    not STRIPE_FIXTURES.exists(), reason="Stripe's example objects (../shared) are absent"
)
def test_the_fields_read_exist_in_stripes_own_objects():
    examples = json.loads(STRIPE_FIXTURES.read_text())["resources"]
    assert {"id", "attempt_count", "next_payment_attempt", "status", "status_transitions"} <= set(
        examples["invoice"]
    )
    assert {"latest_charge", "last_payment_error"} <= set(examples["payment_intent"])
    assert {"id", "status", "payment_intent", "failure_code", "outcome"} <= set(examples["charge"])
    ours = json.loads(
        (
            Path(__file__).resolve().parents[1] / "fixtures/stripe/invoice_payment_failed.json"
        ).read_text()
    )
    assert set(ours) - set(examples["invoice"]) == {"payments"}  # includable, expanded on re-read
    assert set(ours["payments"]["data"][0]) <= set(examples["invoice_payment"])
