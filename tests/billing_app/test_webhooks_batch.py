"""Webhook events processed in batches (issue 15): the same effects as one by one.

A worker's doorbell drains the events waiting behind it (``stripe_events_drain``):
consecutive events settled by their payloads share one transaction. These tests prove
that this changes nothing but the number of commits — the mirror, the events' records,
the payment-failure records, the outbox rows and the snapshots' staleness are those of
processing the same events one by one — that one failing event neither takes the
others down nor is lost nor applied twice, and that a batch's statements grow by a
constant per event.
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

import pytest
import responses
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from billing_app.models import (
    CustomerSnapshot,
    MirrorCharge,
    MirrorCustomer,
    MirrorDiscount,
    MirrorInvoice,
    MirrorInvoiceLine,
    MirrorPrice,
    MirrorSubscription,
    MirrorSubscriptionItem,
    OutboxMessage,
    PaymentFailure,
    StripeEvent,
)
from billing_app.providers.stripe.client import StripeHttpClient
from billing_app.services import webhooks as service
from billing_app.services.mirror import mirror_upsert
from billing_app.services.payment_failures import payment_failure_record
from billing_app.services.webhooks import (
    stripe_event_process,
    stripe_event_receive,
    stripe_events_drain,
    stripe_events_process_batch,
    webhook_hook_register,
    webhook_hook_unregister,
)
from tests.billing_app.stripe_support import StripeMock, load, make_stripe_workspace
from tests.billing_app.test_webhooks_payload import stripe_event

T = 1_796_000_000
BETA = "cus_RbBetaExpired01"


def at(seconds: float) -> datetime:
    return datetime.fromtimestamp(T, tz=UTC) + timedelta(seconds=seconds)


@pytest.fixture(autouse=True)
def _no_backoff(monkeypatch):
    monkeypatch.setattr(StripeHttpClient, "backoff_scale", 0.0)


@pytest.fixture(autouse=True)
def _own_hooks(monkeypatch):
    """The hooks these tests register leave no pattern behind (the registry's order is tested)."""
    monkeypatch.setattr(service, "_HOOKS", {k: list(v) for k, v in service._HOOKS.items()})


def backfill(ws) -> None:
    """The mirror before the burst: Acme's subscription and customer, Beta's unpaid invoice
    (with its payment: read before the attempt) and Beta itself, read a minute before."""
    mirror_upsert(workspace=ws, obj=load("subscription"), read_at=at(-60))
    mirror_upsert(workspace=ws, obj=load("customer"), read_at=at(-60))
    mirror_upsert(
        workspace=ws, obj=load("invoice_payment_failed", attempt_count=0), read_at=at(-60)
    )
    mirror_upsert(
        workspace=ws, obj={**load("customer"), "id": BETA, "name": "Beta Labs"}, read_at=at(-60)
    )


def burst() -> list[dict[str, Any]]:
    """Distinct events, every one settled by its payload: a subscription change, a new
    invoice, a failed charge and the invoice's payment failure (a failure record and its
    outbox rows), a customer update."""
    return [
        stripe_event(
            "evt_1BatchSub",
            "customer.subscription.updated",
            load("subscription", status="past_due"),
        ),
        stripe_event(
            "evt_1BatchInv",
            "invoice.finalized",
            load("invoice", attempted=False, attempt_count=0),
            created=T + 1,
        ),
        stripe_event("evt_1BatchCharge", "charge.failed", load("charge_failed"), created=T + 2),
        stripe_event(
            "evt_1BatchFailed",
            "invoice.payment_failed",
            load("invoice_payment_failed", attempt_count=1),
            created=T + 3,
        ),
        stripe_event(
            "evt_1BatchCus",
            "customer.updated",
            {**load("customer"), "name": "Acme Corp."},
            created=T + 4,
        ),
    ]


def receive_all(ws) -> list[int]:
    return [stripe_event_receive(workspace=ws, event=e)[0].pk for e in burst()]


MODELS = (
    MirrorCustomer,
    MirrorSubscription,
    MirrorSubscriptionItem,
    MirrorPrice,
    MirrorDiscount,
    MirrorInvoice,
    MirrorInvoiceLine,
    MirrorCharge,
    PaymentFailure,
    OutboxMessage,
)


def _compared(model) -> list[str]:
    """The fields that describe the effect, not the row's identity or wall-clock time."""
    names = []
    for field in model._meta.concrete_fields:
        if field.primary_key or field.name in {"workspace", "synced_at", "dedupe_key"}:
            continue
        if getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False):
            continue
        if callable(field.default) and field.default not in (dict, list):
            continue  # timezone.now, uuid4: when it was written, not what
        names.append(field.name)
    return names


def effects(ws) -> dict[str, Any]:
    state: dict[str, Any] = {}
    for model in MODELS:
        names = _compared(model)
        rows = model.objects.filter(workspace=ws).values(*names)
        state[model.__name__] = sorted(json.dumps(r, sort_keys=True, default=str) for r in rows)
    state["events"] = sorted(
        StripeEvent.objects.filter(workspace=ws).values_list(
            "event_id", "status", "attempts", "error"
        )
    )
    state["snapshots stale"] = sorted(
        (s.customer_id, s.built_version < s.wanted_version)
        for s in CustomerSnapshot.objects.filter(workspace_id=ws.pk)
    )
    return state


def no_stripe():
    """Any Stripe call would fail (``responses`` knows no URL), and none may be made."""
    return responses.RequestsMock(assert_all_requests_are_fired=False)


def test_a_batch_has_the_effects_of_one_by_one(make_workspace):
    # given the same mirror and the same events in two workspaces
    one, batch = (
        make_stripe_workspace(make_workspace, slug="one-by-one"),
        make_stripe_workspace(make_workspace, slug="batched"),
    )
    for ws in (one, batch):
        backfill(ws)
    singles, batched = receive_all(one), receive_all(batch)

    # when one is processed event by event and the other in one batch
    with no_stripe() as mock:
        for pk in singles:
            stripe_event_process(event_pk=pk)
        assert stripe_events_process_batch(event_pks=batched) == len(batched)
        assert len(mock.calls) == 0

    # then the mirror, the events, the failure records, the outbox and the snapshots'
    # staleness are the same
    expected, got = effects(one), effects(batch)
    assert got == expected
    assert {s for _, s, _, _ in got["events"]} == {"processed"}
    assert len(got["PaymentFailure"]) == 1
    assert MirrorSubscription.objects.get(workspace=batch).status == "past_due"


def test_a_drain_processes_the_waiting_events_in_one_transaction(
    make_workspace, transactional_db, monkeypatch
):
    monkeypatch.setattr(service, "_enqueue", lambda event_pk: None)  # no eager doorbell
    ws = make_stripe_workspace(make_workspace)
    backfill(ws)
    pks = receive_all(ws)
    commits = Counter()
    original = connection.commit

    def counting_commit() -> None:
        commits["n"] += 1
        original()

    connection.commit = counting_commit  # type: ignore[method-assign]
    try:
        with no_stripe():
            processed = stripe_events_drain(event_pk=pks[0])
    finally:
        del connection.commit
    assert processed == len(pks)
    assert commits["n"] == 1
    # the doorbells of the events drained with it find nothing to do
    with CaptureQueriesContext(connection) as queries:
        assert stripe_events_drain(event_pk=pks[-1]) == 0
    assert len(queries.captured_queries) == 2  # the doorbell's event, the waiting list


def test_a_failing_event_is_retried_and_the_others_commit(
    make_workspace, transactional_db, monkeypatch
):
    monkeypatch.setattr(service, "_enqueue", lambda event_pk: None)  # no eager doorbell
    ws = make_stripe_workspace(make_workspace)
    backfill(ws)
    pks = receive_all(ws)
    committed: Counter[str] = Counter()

    def effect(event) -> None:  # an effect counted when its transaction commits
        transaction.on_commit(partial(committed.update, [event.event_id]))

    def broken(event) -> None:
        if event.event_id == "evt_1BatchCharge":
            raise RuntimeError("the charge's workflow failed")

    webhook_hook_register(event_type="*", hook=effect)
    webhook_hook_register(event_type="charge.*", hook=broken)
    try:
        # when the batch meets the failing event
        with no_stripe():
            processed = stripe_events_process_batch(event_pks=pks)

        # then the others are processed once, the failing one is failed (nothing of it
        # written), counted as one attempt and due for the re-drive
        assert processed == len(pks) - 1
        events = {e.event_id: e for e in StripeEvent.objects.filter(workspace=ws)}
        failed = events.pop("evt_1BatchCharge")
        assert (failed.status, failed.attempts) == ("failed", 1)
        assert "RuntimeError" in failed.error
        assert {e.status for e in events.values()} == {"processed"}
        assert not MirrorCharge.objects.filter(workspace=ws).exists()
        assert committed == Counter({e: 1 for e in events})

        # when the re-drive rings for it once its workflow works again
        webhook_hook_unregister(event_type="charge.*", hook=broken)
        with no_stripe():
            assert stripe_events_drain(event_pk=failed.pk) == 1
    finally:
        webhook_hook_unregister(event_type="*", hook=effect)
        webhook_hook_unregister(event_type="charge.*", hook=broken)

    # then it is applied, and nothing ran twice
    failed.refresh_from_db()
    assert (failed.status, failed.attempts) == ("processed", 2)
    assert MirrorCharge.objects.filter(workspace=ws).count() == 1
    assert committed == Counter({e: 1 for e in [*events, "evt_1BatchCharge"]})


def _drain_recording(ws, *, event_pk: int, limit: int) -> tuple[int, list[str], list[list[int]]]:
    """One drain with pages of ``limit``: how many it processed, the order the events'
    hooks ran in, and the batches it handed over."""
    order: list[str] = []
    batches: list[list[int]] = []
    original = service.stripe_events_process_batch

    def batch(*, event_pks: list[int]) -> int:
        batches.append(list(event_pks))
        return original(event_pks=event_pks)

    def record(event) -> None:
        order.append(event.event_id)

    webhook_hook_register(event_type="*", hook=record)
    try:
        with no_stripe(), pytest.MonkeyPatch.context() as patch:
            patch.setattr(service, "stripe_events_process_batch", batch)
            processed = stripe_events_drain(event_pk=event_pk, limit=limit)
    finally:
        webhook_hook_unregister(event_type="*", hook=record)
    return processed, order, batches


def test_a_doorbell_for_a_later_event_drains_the_backlog_in_arrival_order(
    make_workspace, monkeypatch
):
    monkeypatch.setattr(service, "_enqueue", lambda event_pk: None)  # no eager doorbell
    ws = make_stripe_workspace(make_workspace)
    backfill(ws)
    pks = receive_all(ws)

    # when the last event's doorbell rings first and a page holds two events
    processed, order, batches = _drain_recording(ws, event_pk=pks[-1], limit=2)

    # then the one drain processed every waiting event, in pages of two, in arrival order
    # (the cursor never jumps past the events between the first page and the doorbell's)
    assert processed == len(pks)
    assert batches == [pks[0:2], pks[2:4], pks[4:]]
    assert order == [e["id"] for e in burst()]
    assert set(StripeEvent.objects.filter(workspace=ws).values_list("status", flat=True)) == {
        "processed"
    }


def test_a_failed_doorbell_is_processed_in_its_place_among_the_waiting(make_workspace, monkeypatch):
    monkeypatch.setattr(service, "_enqueue", lambda event_pk: None)  # no eager doorbell
    ws = make_stripe_workspace(make_workspace)
    backfill(ws)
    pks = receive_all(ws)
    # the third event failed once (its re-drive rings for it); the others wait
    StripeEvent.objects.filter(pk=pks[2]).update(status="failed", attempts=1)

    processed, order, batches = _drain_recording(ws, event_pk=pks[2], limit=2)

    # then it ran between the events around it, in the page whose pks reach it
    assert processed == len(pks)
    assert batches == [pks[0:2], pks[2:5]]
    assert order == [e["id"] for e in burst()]


def test_an_event_that_needs_a_re_read_is_processed_alone_in_its_place(
    make_workspace, http, monkeypatch
):
    ws = make_stripe_workspace(make_workspace)
    backfill(ws)
    events = burst()
    # the new invoice arrives already paid: its payment (includable) is not in the payload
    paid = load("invoice", status="paid")
    events[1] = stripe_event("evt_1BatchInv", "invoice.paid", paid, created=T + 1)
    StripeMock(http).on("GET", f"/v1/invoices/{paid['id']}", paid)
    pks = [stripe_event_receive(workspace=ws, event=e)[0].pk for e in events]
    order: list[str] = []
    alone: list[int] = []
    original = service._process_with_reread

    def reread(event_pk: int):
        alone.append(event_pk)
        return original(event_pk)

    def record(event) -> None:
        order.append(event.event_id)

    monkeypatch.setattr(service, "_process_with_reread", reread)
    webhook_hook_register(event_type="*", hook=record)
    try:
        processed = stripe_events_process_batch(event_pks=pks)
    finally:
        webhook_hook_unregister(event_type="*", hook=record)

    # then it was re-read alone, and every event's hooks ran in arrival order
    assert processed == len(pks)
    assert alone == [pks[1]]
    assert order == [e["id"] for e in events]
    assert MirrorInvoice.objects.get(workspace=ws, stripe_id=paid["id"]).status == "paid"


def _finalized(n: int) -> list[dict[str, Any]]:
    """``n`` events about ``n`` distinct invoices never mirrored (4 lines each)."""
    events = []
    for i in range(n):
        invoice = load("invoice", attempted=False, attempt_count=0, id=f"in_1Batch{i:04d}")
        for j, line in enumerate(invoice["lines"]["data"]):
            line["id"] = f"il_1Batch{i:04d}{j}"
            line["invoice"] = invoice["id"]
        events.append(stripe_event(f"evt_1Fin{i:04d}", "invoice.finalized", invoice, created=T + i))
    return events


def _batch_statements(make_workspace, slug: str, n: int) -> int:
    ws = make_stripe_workspace(make_workspace, slug=slug)
    mirror_upsert(workspace=ws, obj=load("customer"), read_at=at(-60))
    pks = [stripe_event_receive(workspace=ws, event=e)[0].pk for e in _finalized(n)]
    with no_stripe(), CaptureQueriesContext(connection) as queries:
        assert stripe_events_process_batch(event_pks=pks) == n
    return len(queries.captured_queries)


def test_a_batch_costs_a_constant_number_of_statements_per_event(make_workspace):
    three = _batch_statements(make_workspace, "three", 3)
    six = _batch_statements(make_workspace, "six", 6)
    # Per new invoice with 4 lines: its row read under lock (once: mirror_upsert takes the
    # row the decision locked, and writes without a savepoint of its own: the batch rolls
    # back whole), the insert in its own savepoint (3: a concurrent insert is caught there)
    # — 4 — and its lines, however many: one locked read of those stored and one savepointed
    # INSERT of the new ones (4). 8 (was 22: the upsert's savepoint, each line read and
    # inserted alone). The batch's own statements (the events' lock, their workspaces, one
    # status UPDATE, the customer's snapshot mark once) do not grow with it.
    per_event = (six - three) / 3
    assert per_event == 8
    assert three - 3 * per_event <= 8


def _paid_charges(n: int) -> list[dict[str, Any]]:
    """``n`` ``charge.succeeded`` events about ``n`` distinct charges of Acme, never mirrored."""
    events = []
    for i in range(n):
        charge = load("charge", id=f"ch_1BatchPaid{i:04d}", payment_intent=f"pi_1BatchPaid{i:04d}")
        events.append(stripe_event(f"evt_1Paid{i:04d}", "charge.succeeded", charge, created=T + i))
    return events


def _paid_statements(make_workspace, slug: str, n: int, *, failure: bool = False) -> int:
    ws = make_stripe_workspace(make_workspace, slug=slug)
    mirror_upsert(workspace=ws, obj=load("customer"), read_at=at(-60))
    if failure:  # an open failure of Acme's: every success must look for what it settles
        failed = load("charge_failed", customer=load("customer")["id"])
        mirror_upsert(workspace=ws, obj=failed, read_at=at(-60))
        payment_failure_record(
            workspace=ws,
            charge=MirrorCharge.objects.get(workspace=ws, stripe_id=failed["id"]),
        )
        assert PaymentFailure.objects.filter(workspace=ws, recovered_at__isnull=True).exists()
    pks = [stripe_event_receive(workspace=ws, event=e)[0].pk for e in _paid_charges(n)]
    with no_stripe(), CaptureQueriesContext(connection) as queries:
        assert stripe_events_process_batch(event_pks=pks) == n
    return len(queries.captured_queries)


def test_a_payment_of_a_customer_with_no_open_failure_costs_one_recovery_probe(make_workspace):
    three = _paid_statements(make_workspace, "paid-three", 3)
    six = _paid_statements(make_workspace, "paid-six", 6)
    # Per new succeeded charge: its row read under lock, the insert in its own savepoint
    # (opened and released) — 4 — then the recovery hook's one statement: the customer's lock
    # asking whether any failure is open. Before, the upsert had a savepoint of its own (2)
    # and the hook read the charge row, its invoice, the lock and the open failures: 11.
    per_event = (six - three) / 3
    assert per_event == 5
    # with an open failure the hook still looks for what the payment settles (same outcome
    # as before: the tests of test_payment_failures.py and test_failure_webhooks.py)
    with_failure = _paid_statements(make_workspace, "paid-open", 3, failure=True)
    assert with_failure > three
    assert not PaymentFailure.objects.filter(recovered_at__isnull=True).exists()


def test_intake_rings_one_drain_per_workspace_while_one_is_queued(
    make_workspace, transactional_db, monkeypatch
):
    from django.core.cache import cache

    rung: list[int] = []
    monkeypatch.setattr(service, "_enqueue", rung.append)
    ws = make_stripe_workspace(make_workspace)
    backfill(ws)
    cache.delete(service._drain_flag(ws.pk))

    # a burst: the first event rings, the others find a drain queued that has not read yet
    pks = receive_all(ws)
    assert rung == [pks[0]]

    # the drain clears the flag before it reads, and takes them all
    with no_stripe():
        assert stripe_events_drain(event_pk=pks[0]) == len(pks)

    # an event stored after that read rings again
    later = stripe_event("evt_1BatchLater", "customer.updated", load("customer"), created=T + 9)
    stored, _ = stripe_event_receive(workspace=ws, event=later)
    assert rung == [pks[0], stored.pk]


def test_intake_rings_for_every_event_when_the_cache_is_away(
    make_workspace, transactional_db, monkeypatch
):
    from django.core.cache import cache

    rung: list[int] = []
    monkeypatch.setattr(service, "_enqueue", rung.append)
    # what ResilientRedisCache answers with Redis down: add() false, get() empty
    monkeypatch.setattr(cache, "add", lambda *args, **kwargs: False)
    monkeypatch.setattr(cache, "get", lambda *args, **kwargs: None)
    ws = make_stripe_workspace(make_workspace)

    pks = receive_all(ws)

    assert rung == pks


def test_an_invoices_lines_in_one_read_and_one_insert_keep_each_lines_order(make_workspace):
    # given an invoice whose first line the mirror holds from a newer read
    ws = make_stripe_workspace(make_workspace, slug="lines-order")
    invoice = load("invoice", attempted=False, attempt_count=0)
    lines = invoice["lines"]["data"]
    newer = {**lines[0], "invoice": invoice["id"], "description": "newer"}
    mirror_upsert(workspace=ws, obj=newer, read_at=at(60))
    # when the invoice (read earlier) is stored with all its lines
    mirror_upsert(workspace=ws, obj=invoice, read_at=at(0))
    stored = {line.stripe_id: line for line in MirrorInvoiceLine.objects.filter(workspace=ws)}
    # then the newer line is kept, the others are inserted, stamped with the invoice's read
    assert set(stored) == {line["id"] for line in lines}
    assert stored[lines[0]["id"]].data["description"] == "newer"
    assert all(stored[line["id"]].read_at == at(0) for line in lines[1:])


def test_two_lines_with_one_id_fall_back_to_one_by_one(make_workspace):
    # given an invoice listing the same line twice (the one INSERT of the new lines fails)
    ws = make_stripe_workspace(make_workspace, slug="lines-twice")
    invoice = load("invoice", attempted=False, attempt_count=0)
    line = invoice["lines"]["data"][0]
    invoice["lines"]["data"] = [line, {**line, "description": "second"}]
    # when it is stored
    mirror_upsert(workspace=ws, obj=invoice, read_at=at(0))
    # then the lines took the one-by-one path: one row, the last state of the same read
    rows = list(MirrorInvoiceLine.objects.filter(workspace=ws))
    assert [row.stripe_id for row in rows] == [line["id"]]
    assert rows[0].data["description"] == "second"
