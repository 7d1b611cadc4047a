"""``POST /webhooks/stripe/<slug>/``: signed, stored once, processed once, out-of-order safe."""

from __future__ import annotations

import json
import time
from datetime import timedelta

import pytest
from django.utils import timezone

from billing_app.errors import ProviderUnavailable
from billing_app.models import (
    MirrorCharge,
    MirrorCustomer,
    MirrorDiscount,
    MirrorInvoice,
    MirrorInvoiceLine,
    MirrorPaymentMethod,
    MirrorRefund,
    MirrorSubscription,
    StripeEvent,
)
from billing_app.providers.stripe.client import StripeHttpClient
from billing_app.services.mirror import mirror_upsert
from billing_app.services.webhooks import (
    stripe_event_process,
    stripe_events_requeue,
    webhook_hook_register,
    webhook_hook_unregister,
    webhook_hooks_for,
)
from tests.billing_app.stripe_support import (
    StripeMock,
    event,
    load,
    make_stripe_workspace,
    sign,
    stripe_error,
)

CUS = "cus_RbAcmeCorp0001"
SUB = "sub_1RbAcmeEnterprise01"
CH = "ch_3RbAcmePaid0022"
INV = "in_1RbAcmeOpen0023"
NOW = int(time.time())
SUB_PATH = f"/v1/subscriptions/{SUB}"
INV_PATH = f"/v1/invoices/{INV}"


@pytest.fixture(autouse=True)
def _no_backoff(monkeypatch):
    monkeypatch.setattr(StripeHttpClient, "backoff_scale", 0.0)


@pytest.fixture
def ws(make_workspace):
    return make_stripe_workspace(make_workspace)


@pytest.fixture
def stripe(http):
    return StripeMock(http)


@pytest.fixture
def deliver(client, ws, django_capture_on_commit_callbacks):
    """POST an event as Stripe would (signed), running what is enqueued on commit."""

    def post(payload, *, slug=None, signature=None, raw=None):
        body = raw if raw is not None else json.dumps(payload)
        headers = {}
        if signature is not False:
            headers["HTTP_STRIPE_SIGNATURE"] = signature or sign(body)
        with django_capture_on_commit_callbacks(execute=True):
            return client.post(
                f"/webhooks/stripe/{slug or ws.slug}/",
                data=body,
                content_type="application/json",
                **headers,
            )

    return post


def subscription_event(
    event_id, *, status="active", created=None, type_="customer.subscription.updated"
):
    return event(event_id, type_, load("subscription", status=status), created=created)


# --- the happy path ------------------------------------------------------------------------


def test_valid_event_is_stored_and_applied_from_its_payload(deliver, ws, stripe):
    # Changed on purpose (issue 15): this test used to check that the object was re-read
    # from Stripe. The mirror holds nothing older than the event, so its payload is the
    # newest state and is applied with no Stripe call (the re-read and its expansions are
    # pinned in test_webhooks_payload.py, for the cases that still need one).

    # when an update event arrives (its payload says active)
    response = deliver(subscription_event("evt_1Valid"))

    # then it is accepted, stored, processed from its own payload
    assert response.status_code == 200
    assert response.json() == {"received": True, "event_id": "evt_1Valid", "duplicate": False}
    stored = StripeEvent.objects.get(workspace=ws, event_id="evt_1Valid")
    assert stored.status == StripeEvent.Status.PROCESSED
    assert stored.type == "customer.subscription.updated"
    assert stored.customer_id == CUS
    assert stored.attempts == 1
    assert MirrorSubscription.objects.get(workspace=ws, stripe_id=SUB).status == "active"
    assert stripe.calls == []


# --- refused before the database -------------------------------------------------------------


@pytest.mark.parametrize(
    ("signature", "code"),
    [
        (False, "signature_missing"),
        ("t=1,v1=deadbeef", "signature_expired"),
        ("garbage", "signature_invalid"),
    ],
    ids=["absent", "ancient", "malformed"],
)
def test_unsigned_requests_are_refused_and_nothing_is_stored(deliver, ws, stripe, signature, code):
    response = deliver(subscription_event("evt_1Bad"), signature=signature)

    assert response.status_code == 400
    assert response.json()["error"]["code"] == code
    assert StripeEvent.objects.count() == 0
    assert stripe.calls == []


def test_a_signature_made_with_another_secret_is_refused(deliver, ws, stripe):
    payload = json.dumps(subscription_event("evt_1Forged"))

    response = deliver(None, raw=payload, signature=sign(payload, "whsec_someone_else"))

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "signature_invalid"
    assert StripeEvent.objects.count() == 0
    assert MirrorSubscription.objects.count() == 0
    assert stripe.calls == []


def test_a_tampered_body_is_refused(deliver, ws, stripe):
    signed = json.dumps(subscription_event("evt_1Tamper"))
    tampered = signed.replace('"active"', '"canceled"')

    response = deliver(None, raw=tampered, signature=sign(signed))

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "signature_invalid"
    assert StripeEvent.objects.count() == 0


def test_a_stale_timestamp_is_refused(deliver, ws, stripe):
    payload = json.dumps(subscription_event("evt_1Stale"))
    stale = sign(payload, timestamp=int(time.time()) - 301)

    response = deliver(None, raw=payload, signature=stale)

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "signature_expired"
    assert StripeEvent.objects.count() == 0
    assert stripe.calls == []


def test_a_timestamp_within_the_tolerance_is_accepted(deliver, ws, stripe):
    stripe.on("GET", SUB_PATH, load("subscription"))
    payload = json.dumps(subscription_event("evt_1Late"))

    response = deliver(None, raw=payload, signature=sign(payload, timestamp=int(time.time()) - 290))

    assert response.status_code == 200
    assert StripeEvent.objects.filter(event_id="evt_1Late").exists()


def test_a_signature_dated_an_hour_in_the_future_is_refused(deliver, ws, stripe):
    # given a correctly signed event whose timestamp is one hour ahead (issue 12:
    # stripe-python checks only the past, so it would stay replayable for an hour)
    payload = json.dumps(subscription_event("evt_1Future"))
    future = sign(payload, timestamp=int(time.time()) + 3600)

    response = deliver(None, raw=payload, signature=future)

    # then it is a 400 with a clear code, and nothing is stored or fetched
    assert response.status_code == 400
    assert response["Content-Type"].startswith("application/json")
    assert response.json()["error"]["code"] == "signature_in_future"
    assert StripeEvent.objects.count() == 0
    assert stripe.calls == []


def test_a_future_signature_cannot_hide_behind_a_second_timestamp(deliver, ws, stripe):
    # given a future-dated signature whose header adds a second, harmless-looking ``t``
    # (stripe-python verifies the first ``t``, read with int(): "+T" is T)
    payload = json.dumps(subscription_event("evt_1TwoT"))
    future = int(time.time()) + 3600
    digest = sign(payload, timestamp=future).split("v1=", 1)[1]
    header = f"t=+{future},t=0,v1={digest}"

    response = deliver(None, raw=payload, signature=header)

    # then the time checked is the one that was verified: refused, nothing stored
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "signature_in_future"
    assert StripeEvent.objects.count() == 0


def test_a_small_clock_skew_ahead_is_accepted(deliver, ws, stripe):
    stripe.on("GET", SUB_PATH, load("subscription"))
    payload = json.dumps(subscription_event("evt_1Skew"))

    response = deliver(None, raw=payload, signature=sign(payload, timestamp=int(time.time()) + 60))

    assert response.status_code == 200
    assert StripeEvent.objects.filter(event_id="evt_1Skew").exists()


def test_the_verifier_refuses_the_future_beyond_the_tolerance_only(settings):
    # given a 300 s tolerance and a fixed clock (no dependence on the machine's speed)
    from unittest import mock

    from billing_app.errors import ValidationFailed
    from billing_app.services import webhooks as webhooks_service
    from tests.billing_app.stripe_support import WEBHOOK_SECRET

    settings.STRIPE_WEBHOOK_TOLERANCE_SECONDS = 300
    now = 1_800_000_000
    payload = json.dumps(subscription_event("evt_1Edge"))
    with mock.patch("time.time", return_value=now):
        # then +300 s is accepted and +301 s refused
        event = webhooks_service.stripe_webhook_verify(
            secret=WEBHOOK_SECRET,
            payload=payload.encode(),
            signature=sign(payload, timestamp=now + 300),
        )
        assert event["id"] == "evt_1Edge"
        with pytest.raises(ValidationFailed) as error:
            webhooks_service.stripe_webhook_verify(
                secret=WEBHOOK_SECRET,
                payload=payload.encode(),
                signature=sign(payload, timestamp=now + 301),
            )
        assert error.value.code == "signature_in_future"


def test_another_workspaces_secret_does_not_open_this_workspace(
    deliver, make_workspace, ws, stripe
):
    # given a second workspace with its own signing secret
    other = make_stripe_workspace(
        make_workspace, "other-co", stripe_webhook_secret="whsec_otherco_secret_000000000001"
    )
    payload = json.dumps(subscription_event("evt_1Cross"))

    # when an event signed for the other workspace is posted to this one's URL
    response = deliver(None, raw=payload, signature=sign(payload, other.stripe_webhook_secret))

    # then it is refused and neither workspace stored anything
    assert response.status_code == 400
    assert StripeEvent.objects.count() == 0


@pytest.mark.parametrize("raw", ["not json", "[]", '{"id": "evt_1", "type": "x"}'])
def test_a_signed_body_that_is_not_an_event_is_refused(deliver, ws, raw):
    response = deliver(None, raw=raw, signature=sign(raw))

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_payload"
    assert StripeEvent.objects.count() == 0


def test_unknown_workspace_is_404_and_writes_nothing(deliver, ws, stripe):
    payload = json.dumps(subscription_event("evt_1Nowhere"))

    response = deliver(None, raw=payload, slug="no-such-co")

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
    assert StripeEvent.objects.count() == 0
    assert stripe.calls == []


def test_a_sandbox_workspace_has_no_stripe_endpoint(deliver, make_workspace, stripe):
    sandbox = make_workspace("sandbox-co")
    payload = json.dumps(subscription_event("evt_1Sandbox"))

    response = deliver(None, raw=payload, slug=sandbox.slug)

    assert response.status_code == 404
    assert StripeEvent.objects.count() == 0


def test_only_post_is_accepted(client, ws):
    assert client.get(f"/webhooks/stripe/{ws.slug}/").status_code == 405
    assert StripeEvent.objects.count() == 0


# --- once, and in any order ------------------------------------------------------------------


def test_a_duplicate_delivery_is_acknowledged_and_not_processed_again(deliver, ws, stripe):
    # given an event already received and processed
    stripe.on("GET", SUB_PATH, load("subscription"))
    payload = subscription_event("evt_1Twice")
    deliver(payload)
    calls = len(stripe.calls)

    # when Stripe delivers it again
    response = deliver(payload)

    # then it is acknowledged as a duplicate, stored once, and Stripe not asked again
    assert response.status_code == 200
    assert response.json()["duplicate"] is True
    assert StripeEvent.objects.filter(workspace=ws, event_id="evt_1Twice").count() == 1
    assert StripeEvent.objects.get(event_id="evt_1Twice").attempts == 1
    assert len(stripe.calls) == calls


def test_out_of_order_events_keep_the_newer_state(deliver, ws, stripe):
    # given the subscription was canceled (newer) after being updated (older)
    stripe.on("GET", SUB_PATH, load("subscription", status="canceled", canceled_at=NOW - 60))
    newer = subscription_event(
        "evt_2Newer", status="canceled", created=NOW - 60, type_="customer.subscription.deleted"
    )
    older = subscription_event("evt_1Older", status="active", created=NOW - 600)

    # when the newer event arrives first and the older one after it
    deliver(newer)
    deliver(older)

    # then both are processed and the mirror keeps the newer (current) state
    assert set(StripeEvent.objects.values_list("event_id", "status")) == {
        ("evt_2Newer", "processed"),
        ("evt_1Older", "processed"),
    }
    assert MirrorSubscription.objects.get(workspace=ws, stripe_id=SUB).status == "canceled"


def test_a_stale_payload_never_overwrites_the_current_state(deliver, ws, stripe):
    # given the mirror already holds the current state (trialing ended, now active)
    mirror_upsert(workspace=ws, obj=load("subscription", status="active"))
    stripe.on("GET", SUB_PATH, load("subscription", status="active"))

    # when a late event whose payload still says trialing is processed
    deliver(subscription_event("evt_1Late", status="trialing", created=NOW - 3600))

    # then the re-read state stands
    assert MirrorSubscription.objects.get(workspace=ws, stripe_id=SUB).status == "active"


def test_unknown_event_types_are_stored_as_ignored(deliver, ws, stripe):
    response = deliver(event("evt_1Balance", "balance.available", load("balance")))

    assert response.status_code == 200
    assert StripeEvent.objects.get(event_id="evt_1Balance").status == StripeEvent.Status.IGNORED
    assert stripe.calls == []
    assert MirrorCustomer.objects.count() == 0


# --- what each kind of event changes ---------------------------------------------------------


def test_dispute_created_marks_the_charge_disputed(deliver, ws, stripe):
    mirror_upsert(workspace=ws, obj=load("charge"))
    stripe.on("GET", f"/v1/charges/{CH}", load("charge", disputed=True))

    deliver(event("evt_1Dispute", "charge.dispute.created", load("dispute")))

    assert MirrorCharge.objects.get(workspace=ws, stripe_id=CH).disputed is True
    assert StripeEvent.objects.get(event_id="evt_1Dispute").status == "processed"


def test_charge_refunded_mirrors_the_charge_and_its_refunds(deliver, ws, stripe):
    # Issue 15: the payload is shaped as Stripe sends it — the refunded amount, but no
    # ``refunds`` (an includable field). A refund the mirror does not know of makes it
    # partial, so the charge is still re-read (with its refunds expanded).
    refunded = load("charge", amount_refunded=50000)
    refunded["refunds"]["data"] = [load("refund")]
    stripe.on("GET", f"/v1/charges/{CH}", refunded)
    payload = load("charge", amount_refunded=50000)
    del payload["refunds"]

    deliver(event("evt_1Refunded", "charge.refunded", payload))

    assert MirrorCharge.objects.get(workspace=ws, stripe_id=CH).amount_refunded == 50000
    refund = MirrorRefund.objects.get(workspace=ws, stripe_id="re_3RbAcmeRefund0001")
    assert refund.customer_id == CUS


def test_refund_updated_is_applied_from_its_payload(deliver, ws, stripe):
    # Changed on purpose (issue 15): the refund used to be re-read; its payload is the
    # whole refund and newer than the mirror, so it is applied with no Stripe call.
    deliver(event("evt_1RefundUpd", "refund.updated", load("refund", status="failed")))

    assert (
        MirrorRefund.objects.get(workspace=ws, stripe_id="re_3RbAcmeRefund0001").status == "failed"
    )
    assert stripe.calls == []


def test_payment_failed_mirrors_the_failed_charge_with_its_decline(deliver, ws, stripe):
    intent = load("payment_intent")
    stripe.on(
        "GET",
        f"/v1/payment_intents/{intent['id']}",
        load("payment_intent", latest_charge=load("charge_failed")),
    )

    deliver(event("evt_1PiFailed", "payment_intent.payment_failed", intent))

    failed = MirrorCharge.objects.get(workspace=ws, stripe_id="ch_3RbBetaFailed0001")
    assert failed.status == "failed"
    assert failed.failure_code == "expired_card"
    assert failed.decline_code == "expired_card"


def test_customer_deleted_marks_the_mirrored_customer(deliver, ws, stripe):
    mirror_upsert(workspace=ws, obj=load("customer"))

    deliver(event("evt_1CusDel", "customer.deleted", load("customer")))

    assert MirrorCustomer.objects.get(workspace=ws, stripe_id=CUS).deleted is True
    assert stripe.calls == []


def test_customer_updated_re_reads_the_customer(deliver, ws, stripe):
    # Issue 15: a customer the mirror has never seen, in a payload as Stripe sends it (no
    # ``tax_ids``, an includable field): partial, so the customer is still re-read.
    stripe.on("GET", f"/v1/customers/{CUS}", load("customer", email="AP@Acme.example"))
    payload = load("customer")
    del payload["tax_ids"]

    deliver(event("evt_1CusUpd", "customer.updated", payload))

    assert MirrorCustomer.objects.get(workspace=ws, stripe_id=CUS).email == "ap@acme.example"


def test_tax_id_created_re_reads_the_customer(deliver, ws, stripe):
    customer = load("customer")
    customer["tax_ids"]["data"] = [load("tax_id")]
    stripe.on("GET", f"/v1/customers/{CUS}", customer)

    deliver(event("evt_1Tax", "customer.tax_id.created", load("tax_id")))

    assert MirrorCustomer.objects.get(workspace=ws, stripe_id=CUS).tax_ids == [
        {"id": "txi_1RbAcmeVat0001", "type": "eu_vat", "value": "DE811907980"}
    ]


def test_discount_events_follow_the_subscription(deliver, ws, stripe):
    # given a discount was added, then removed
    stripe.on("GET", SUB_PATH, load("subscription", discounts=[load("discount")]))
    stripe.on("GET", SUB_PATH, load("subscription", discounts=[]))

    # when the created event, then the deleted event, arrive
    deliver(event("evt_1DiscAdd", "customer.discount.created", load("discount")))
    added = MirrorDiscount.objects.get(workspace=ws, stripe_id="di_1RbAcmeDiscount01")
    deliver(event("evt_2DiscDel", "customer.discount.deleted", load("discount")))

    # then the discount was mirrored while it applied, and is inactive now
    assert added.active is True and added.percent_off == 15
    assert (
        MirrorDiscount.objects.get(workspace=ws, stripe_id="di_1RbAcmeDiscount01").active is False
    )


def test_payment_method_detached_clears_its_customer(deliver, ws, stripe):
    mirror_upsert(workspace=ws, obj=load("payment_method"))
    pm = "pm_1RbAcmeVisa4242"
    stripe.on("GET", f"/v1/payment_methods/{pm}", load("payment_method", customer=None))

    deliver(event("evt_1PmDetach", "payment_method.detached", load("payment_method")))

    assert MirrorPaymentMethod.objects.get(workspace=ws, stripe_id=pm).customer_id == ""


def test_invoice_events_re_read_the_invoice_and_deleted_drafts_leave(deliver, ws, stripe):
    stripe.on("GET", f"/v1/invoices/{INV}", load("invoice", status="paid", amount_paid=340000))

    deliver(event("evt_1InvPaid", "invoice.paid", load("invoice")))
    invoice = MirrorInvoice.objects.get(workspace=ws, stripe_id=INV)
    lines = MirrorInvoiceLine.objects.filter(workspace=ws, invoice_id=INV).count()
    deliver(event("evt_2InvDel", "invoice.deleted", load("invoice", status="draft")))

    assert invoice.status == "paid" and invoice.amount_paid == 340000
    assert lines == 4
    assert not MirrorInvoice.objects.filter(workspace=ws, stripe_id=INV).exists()
    assert not MirrorInvoiceLine.objects.filter(workspace=ws, invoice_id=INV).exists()


# --- failures and hooks ----------------------------------------------------------------------


def test_stripe_down_leaves_the_event_failed_then_a_redelivery_processes_it(deliver, ws, stripe):
    # given an event that needs a re-read (issue 15: an attempted invoice whose payment the
    # mirror does not know — a partial payload) and Stripe cannot answer it
    stripe.on("GET", INV_PATH, stripe_error("api_error", "down"), status=503)
    payload = event("evt_1Down", "invoice.paid", load("invoice", status="paid"))

    # when the event is delivered
    first = deliver(payload)

    # then Stripe still gets a 200 (the event is stored), but nothing is mirrored yet
    assert first.status_code == 200
    stored = StripeEvent.objects.get(event_id="evt_1Down")
    assert stored.status == StripeEvent.Status.FAILED
    assert "ProviderUnavailable" in stored.error
    assert MirrorInvoice.objects.count() == 0

    # and when Stripe is back and redelivers, it is processed once
    stripe.http.replace(
        "GET", f"https://api.stripe.com{INV_PATH}", json=load("invoice", status="paid")
    )
    second = deliver(payload)
    assert second.json()["duplicate"] is True
    assert StripeEvent.objects.get(event_id="evt_1Down").status == StripeEvent.Status.PROCESSED
    assert MirrorInvoice.objects.get(workspace=ws, stripe_id=INV).status == "paid"


def test_hooks_run_once_after_the_mirror_is_written(deliver, ws, stripe):
    seen = []

    def on_failure(webhook):
        seen.append(
            (
                webhook.event_id,
                webhook.current["status"],
                MirrorInvoice.objects.get(workspace=ws, stripe_id=INV).attempt_count,
            )
        )

    webhook_hook_register(event_type="invoice.payment_failed", hook=on_failure)
    try:
        stripe.on("GET", f"/v1/invoices/{INV}", load("invoice", attempt_count=2))
        payload = event("evt_1InvFail", "invoice.payment_failed", load("invoice"))
        deliver(payload)
        deliver(payload)
    finally:
        webhook_hook_unregister(event_type="invoice.payment_failed", hook=on_failure)

    assert seen == [("evt_1InvFail", "open", 2)]


def test_a_failing_hook_rolls_the_mirror_back(deliver, ws, stripe):
    def broken(webhook):
        raise RuntimeError("workflow bug")

    webhook_hook_register(event_type="customer.subscription.*", hook=broken)
    try:
        stripe.on("GET", SUB_PATH, load("subscription"))
        response = deliver(subscription_event("evt_1Hook"))
    finally:
        webhook_hook_unregister(event_type="customer.subscription.*", hook=broken)

    assert response.status_code == 200
    stored = StripeEvent.objects.get(event_id="evt_1Hook")
    assert stored.status == StripeEvent.Status.FAILED
    assert "workflow bug" in stored.error
    assert MirrorSubscription.objects.count() == 0


def test_hook_patterns_match_exact_prefix_and_all():
    def a(webhook): ...
    def b(webhook): ...
    def c(webhook): ...

    mine = (a, b, c)

    def hooks(event_type):  # other modules may register hooks of their own
        return [h for h in webhook_hooks_for(event_type) if h in mine]

    webhook_hook_register(event_type="charge.dispute.created", hook=a)
    webhook_hook_register(event_type="charge.dispute.*", hook=b)
    webhook_hook_register(event_type="*", hook=c)
    webhook_hook_register(event_type="*", hook=c)
    try:
        assert hooks("charge.dispute.created") == [a, b, c]
        assert hooks("charge.dispute.closed") == [b, c]
        assert hooks("charge.succeeded") == [c]
    finally:
        webhook_hook_unregister(event_type="charge.dispute.created", hook=a)
        webhook_hook_unregister(event_type="charge.dispute.*", hook=b)
        webhook_hook_unregister(event_type="*", hook=c)
    assert hooks("charge.dispute.created") == []


def test_processing_directly_is_idempotent(ws, stripe, db):
    stored = StripeEvent.objects.create(
        workspace=ws,
        event_id="evt_1Direct",
        type="customer.subscription.updated",
        created="2026-11-01T00:00:00Z",
        payload=subscription_event("evt_1Direct"),
    )

    stripe_event_process(event_pk=stored.pk)
    stripe_event_process(event_pk=stored.pk)

    # Changed on purpose (issue 15): applied from its payload, so no re-read at all (was 1).
    assert StripeEvent.objects.get(pk=stored.pk).attempts == 1
    assert stripe.calls == []


def test_processing_raises_unavailable_for_the_task_to_retry(ws, stripe, db):
    # an event that needs a re-read (issue 15: a partial payload, see the test above)
    stripe.on("GET", INV_PATH, stripe_error("api_error", "down"), status=500)
    stored = StripeEvent.objects.create(
        workspace=ws,
        event_id="evt_1Retry",
        type="invoice.paid",
        created="2026-11-01T00:00:00Z",
        payload=event("evt_1Retry", "invoice.paid", load("invoice", status="paid")),
    )

    with pytest.raises(ProviderUnavailable):
        stripe_event_process(event_pk=stored.pk)

    assert StripeEvent.objects.get(pk=stored.pk).status == StripeEvent.Status.FAILED


def test_requeue_picks_up_events_left_behind(ws, stripe, db):
    # given an event stored long ago whose task never ran, and one already processed
    for event_id, status in (("evt_1Lost", "received"), ("evt_1Done", "processed")):
        StripeEvent.objects.create(
            workspace=ws,
            event_id=event_id,
            type="customer.subscription.updated",
            created=timezone.now(),
            payload=subscription_event(event_id),
            status=status,
        )
    StripeEvent.objects.update(received_at=timezone.now() - timedelta(hours=1))

    # when the periodic requeue runs
    count = stripe_events_requeue()

    # then only the lost one was processed — from its payload (issue 15: no re-read, was 1)
    assert count == 1
    assert StripeEvent.objects.get(event_id="evt_1Lost").status == StripeEvent.Status.PROCESSED
    assert MirrorSubscription.objects.get(workspace=ws, stripe_id=SUB).status == "active"
    assert stripe.calls == []
