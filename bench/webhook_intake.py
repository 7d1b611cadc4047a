"""Stripe webhooks, the honest case: distinct events through gunicorn, then processing included.

A month-start invoicing burst about the demo's subscriptions (issue 15): for each
subscription and billing cycle, ``invoice.created`` → ``invoice.finalized`` →
``charge.succeeded`` → ``payment_intent.succeeded`` → ``invoice.paid`` →
``invoice.payment_succeeded`` → ``customer.subscription.updated``, every event
distinct, its body shaped as Stripe sends it (the object's standard representation: no
``payments``, ``refunds`` or ``tax_ids``, discounts by id). The mirror starts as a
backfill left it (customers, subscriptions, catalog, payment methods, read a day before
the burst); the fake Stripe (loopback) holds every object's final state.

1. **Intake** (the headline): every event POSTed once, signed, to
   ``/webhooks/stripe/<slug>/`` under ``gunicorn -w 4 -k gthread --threads 4`` from
   ``--connections`` client threads with a keep-alive session each (the client's CPU
   shares the two cores); the processing doorbell is queued to Redis on commit, as in
   production. No replays in this figure.
2. **Processing, one worker**: this process drains the received events in arrival order,
   one at a time (``stripe_event_process``, what the Celery task calls), with the fake
   Stripe answering at Stripe's latency (``LatencyMix``: a tail, not a constant). Each
   event is timed and classed by whether it made a Stripe call: the events settled by
   their own payload give the per-worker rate with no Stripe call; the burst as a whole
   (with the re-reads a payload cannot spare — an attempted invoice whose payment the
   payload does not name) is printed beside it.
3. **The re-read path** (before issue 15: every event re-read), for comparison: a
   sample of the same events processed in a second workspace with the payload path off.
4. **Exactly once**: every event delivered again through HTTP (a replay: acknowledged
   as a duplicate, processed no more), a hook counting each event's effects; and the
   mirror built from payloads equals the mirror built from re-reads of the final states.

Targets (issue 15): intake ≥ 500 distinct events/s; processing ≥ 300 events/s per worker
with no Stripe call.

    .venv/bin/python bench/webhook_intake.py [--cycles 10] [--reread-sample 60]
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import json
import os
import threading
import time
from collections import Counter
from typing import Any

from _common import (
    FakeStripe,
    LoopbackServer,
    Row,
    bench_setup,
    group_cpu_seconds,
    gunicorn,
    ms,
    percentile,
    post_prebuilt,
    print_machine,
    print_table,
    stripe_event,
    stripe_signature,
    stripe_workspace,
)

try:  # the fake's latency tail (helper E's _common); a constant otherwise
    from _common import LatencyMix
except ImportError:  # pragma: no cover
    LatencyMix = None  # type: ignore[assignment,misc]

TARGET_INTAKE = 500.0
TARGET_PROCESSING = 300.0
SECRET = "whsec_bench_intake_secret"
DAY = 86400

Obj = dict[str, Any]


def _ref(value: Any) -> str:
    return str(value.get("id") or "") if isinstance(value, dict) else str(value or "")


def as_delivered(obj: Obj) -> Obj:
    """``obj`` as Stripe puts it in an event: includable fields absent, expansions as ids."""
    obj = copy.deepcopy(obj)
    kind = obj.get("object")
    if kind == "invoice":
        obj.pop("payments", None)
    elif kind == "charge":
        obj.pop("refunds", None)
    elif kind == "customer":
        obj.pop("tax_ids", None)
        discount = obj.get("discount")
        if isinstance(discount, dict) and isinstance(
            (discount.get("source") or {}).get("coupon"), dict
        ):
            discount["source"]["coupon"] = discount["source"]["coupon"]["id"]
    elif kind == "subscription":
        obj["discounts"] = [_ref(d) for d in obj.get("discounts") or []]
    return obj


def burst(objects: list[Obj], cycles: int, start: int) -> tuple[list[Obj], list[Obj]]:
    """The burst's events (``created`` increasing) and every object's final state."""
    subs = [o for o in objects if o.get("object") == "subscription"]
    invoices = [
        o for o in objects if o.get("object") == "invoice" and (o.get("lines") or {}).get("data")
    ]
    charges = [o for o in objects if o.get("object") == "charge" and o.get("status") == "succeeded"]
    events: list[Obj] = []
    finals: dict[str, Obj] = {}
    for cycle in range(cycles):
        for n, sub in enumerate(subs):
            customer = _ref(sub.get("customer"))
            t = start + cycle * 3600 + n * 10
            tag = f"{cycle:03d}{n:03d}"
            inv_id, ch_id, pi_id = f"in_bench{tag}", f"ch_bench{tag}", f"pi_bench{tag}"
            template = next(
                (i for i in invoices if _ref(i.get("customer")) == customer), invoices[0]
            )
            draft = copy.deepcopy(template)
            lines = draft["lines"]["data"]
            for j, line in enumerate(lines):
                line["id"] = f"il_bench{tag}{j:02d}"
                line["invoice"] = inv_id
            draft.update(
                id=inv_id, customer=customer, status="draft", attempted=False, attempt_count=0,
                amount_paid=0, amount_remaining=draft.get("amount_due") or 0, created=t,
                number=None, payments={"object": "list", "data": [], "has_more": False},
                status_transitions={"finalized_at": None, "paid_at": None, "voided_at": None,
                                    "marked_uncollectible_at": None},
            )  # fmt: skip
            parent = draft.get("parent") or {}
            if parent.get("subscription_details"):
                parent["subscription_details"]["subscription"] = sub["id"]
            opened = {**copy.deepcopy(draft), "status": "open", "number": f"BENCH-{tag}",
                      "status_transitions": {**draft["status_transitions"], "finalized_at": t + 3600}}  # fmt: skip
            amount = int(draft.get("amount_due") or 0)
            paid = {**copy.deepcopy(opened), "status": "paid", "attempted": True, "attempt_count": 1,
                    "amount_paid": amount, "amount_remaining": 0,
                    "status_transitions": {**opened["status_transitions"], "paid_at": t + 3602},
                    "payments": {"object": "list", "has_more": False, "data": [{
                        "id": f"inpay_bench{tag}", "object": "invoice_payment", "invoice": inv_id,
                        "is_default": True, "status": "paid", "amount_paid": amount,
                        "amount_requested": amount, "currency": draft.get("currency"),
                        "created": t + 3601, "livemode": False,
                        "payment": {"type": "payment_intent", "payment_intent": pi_id},
                        "status_transitions": {"canceled_at": None, "paid_at": t + 3602}}]}}  # fmt: skip
            charge_template = next(
                (c for c in charges if _ref(c.get("customer")) == customer), charges[0]
            )
            charge = {**copy.deepcopy(charge_template), "id": ch_id, "customer": customer,
                      "payment_intent": pi_id, "amount": amount, "amount_captured": amount,
                      "amount_refunded": 0, "refunded": False, "disputed": False, "created": t + 3601,
                      "refunds": {"object": "list", "data": [], "has_more": False,
                                  "url": f"/v1/charges/{ch_id}/refunds"}}  # fmt: skip
            intent = {"id": pi_id, "object": "payment_intent", "amount": amount,
                      "amount_received": amount, "currency": draft.get("currency"),
                      "customer": customer, "created": t + 3601, "latest_charge": ch_id,
                      "last_payment_error": None, "livemode": False, "metadata": {},
                      "payment_method": _ref(charge.get("payment_method")) or None,
                      "status": "succeeded"}  # fmt: skip
            renewed = copy.deepcopy(sub)
            for item in (renewed.get("items") or {}).get("data") or []:
                item["current_period_start"] = t + 3602
                item["current_period_end"] = t + 3602 + 30 * DAY
            renewed["latest_invoice"] = inv_id
            steps = [
                (t, "invoice.created", draft),
                (t + 3600, "invoice.finalized", opened),
                (t + 3601, "charge.succeeded", charge),
                (t + 3601, "payment_intent.succeeded", intent),
                (t + 3602, "invoice.paid", paid),
                (t + 3602, "invoice.payment_succeeded", paid),
                (t + 3603, "customer.subscription.updated", renewed),
            ]
            for created, event_type, obj in steps:
                events.append(stripe_event(event_type, as_delivered(obj), created=created))
                finals[obj["id"]] = obj
    events.sort(key=lambda e: e["created"])
    return events, list(finals.values())


def snapshot(workspace) -> dict:  # type: ignore[no-untyped-def]
    from billing_app.models import (
        MirrorCharge,
        MirrorCustomer,
        MirrorInvoice,
        MirrorInvoiceLine,
        MirrorSubscription,
        MirrorSubscriptionItem,
    )

    skip = {"id", "workspace", "synced_at", "source_updated", "read_at", "bundle_synced_at"}
    rows = {}
    for model in (
        MirrorCustomer,
        MirrorSubscription,
        MirrorSubscriptionItem,
        MirrorInvoice,
        MirrorInvoiceLine,
        MirrorCharge,
    ):
        names = [f.name for f in model._meta.concrete_fields if f.name not in skip]
        for row in model.objects.filter(workspace=workspace).values(*names):
            row.pop("data", None)  # the raw object: a payload lacks what a re-read expands
            rows[(model.__name__, row["stripe_id"])] = json.dumps(row, sort_keys=True, default=str)
    return rows


def post_all(base: str, path: str, bodies: list[bytes], connections: int, processes: int):  # type: ignore[no-untyped-def]
    """POST each body once, signed before the clock starts, from ``connections`` keep-alive
    ``http.client`` connections in ``processes`` processes (``post_prebuilt``); the result
    carries the generator's own CPU seconds."""
    now = int(time.time())  # every signature well inside the 300 s tolerance of the run
    prebuilt = [
        (
            path,
            body,
            {
                "Stripe-Signature": stripe_signature(SECRET, body, now),
                "Content-Type": "application/json",
                "Content-Length": str(len(body)),
            },
        )
        for body in bodies
    ]
    return post_prebuilt(base, prebuilt, connections=connections, processes=processes)


def backfill(workspace, objects: list[Obj], read_at) -> None:  # type: ignore[no-untyped-def]
    """The mirror as a backfill left it: everything but invoices and charges."""
    from billing_app.services.mirror import mirror_upsert

    for obj in objects:
        if obj.get("object") in {"customer", "subscription", "product", "price", "payment_method"}:
            mirror_upsert(workspace=workspace, obj=obj, read_at=read_at)


class Drain:
    """One worker's drain: the burst's wall time and this process's CPU time and SQL
    statements, with the events that needed a re-read (timed one by one: they are processed
    alone, outside the batches) set apart from those settled by their payloads."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.cpu = 0.0
        self.statements = 0
        self.calling: list[float] = []
        self.calling_cpu = 0.0
        self.calling_statements = 0
        self.commits = 0
        self.calling_commits = 0

    def quiet(self, total: int) -> tuple[int, float, float, float, float]:
        """(events, seconds, CPU s, statements, commits) of the events settled by payload."""
        return (
            total - len(self.calling),
            self.seconds - sum(self.calling),
            self.cpu - self.calling_cpu,
            self.statements - self.calling_statements,
            self.commits - self.calling_commits,
        )


def drain(first_pk: int, fake, *, batched: bool = True, pks: list[int] | None = None) -> Drain:  # type: ignore[no-untyped-def]
    """``stripe_events_drain`` (what the Celery task calls on its doorbell) from ``first_pk``;
    or, ``batched=False``, ``stripe_event_process`` on each of ``pks`` in turn."""
    from django.db import connection

    import billing_app.services.webhooks as service

    result = Drain()
    statements = [0, 0]

    def counting(execute, sql, params, many, context):  # type: ignore[no-untyped-def]
        statements[0] += 1
        return execute(sql, params, many, context)

    original_reread = service._process_with_reread
    original_commit = connection.commit

    def commit() -> None:
        statements[1] += 1
        original_commit()

    def timed_reread(event_pk):  # type: ignore[no-untyped-def]
        counted, commits = statements[0], statements[1]
        cpu, began = time.process_time(), time.perf_counter()
        try:
            return original_reread(event_pk)
        finally:
            result.calling.append(time.perf_counter() - began)
            result.calling_cpu += time.process_time() - cpu
            result.calling_statements += statements[0] - counted
            result.calling_commits += statements[1] - commits

    service._process_with_reread = timed_reread
    connection.commit = commit  # type: ignore[method-assign]
    try:
        with connection.execute_wrapper(counting):
            cpu, began = time.process_time(), time.perf_counter()
            if batched and os.environ.get("BENCH_WEBHOOK_PROFILE"):
                # Where the worker's CPU goes (a CPU-time cProfile of the drain, re-reads included,
                # written to that path): the figures of such a run are inflated by the profiler.
                import cProfile

                with cProfile.Profile(time.process_time) as profile:
                    service.stripe_events_drain(event_pk=first_pk)
                profile.dump_stats(os.environ["BENCH_WEBHOOK_PROFILE"])
            elif batched:
                service.stripe_events_drain(event_pk=first_pk)
            else:
                for pk in pks or []:
                    # a failure is recorded on the event; the caller counts them
                    with contextlib.suppress(Exception):
                        service.stripe_event_process(event_pk=pk)
            result.seconds = time.perf_counter() - began
            result.cpu = time.process_time() - cpu
            result.statements = statements[0]
            result.commits = statements[1]
    finally:
        service._process_with_reread = original_reread
        del connection.commit
    return result


def database_round_trips() -> str:
    """What one statement and one commit cost on this machine right now (the floor under
    every per-event figure)."""
    from django.db import connection

    with connection.cursor() as cursor:  # a logged table: each INSERT waits for its WAL flush
        cursor.execute("CREATE TABLE bench_probe (v int)")
        began = time.perf_counter()
        for _ in range(100):
            cursor.execute("SELECT 1")
        select = (time.perf_counter() - began) * 10
        began = time.perf_counter()
        for n in range(100):
            cursor.execute("INSERT INTO bench_probe VALUES (%s)", [n])
        insert = (time.perf_counter() - began) * 10
        cursor.execute("DROP TABLE bench_probe")
    return f"PostgreSQL now: SELECT 1 {select:.2f} ms, autocommitted INSERT {insert:.2f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cycles", type=int, default=10, help="billing cycles in the burst")
    parser.add_argument("--connections", type=int, default=8, help="keep-alive connections")
    parser.add_argument("--client-processes", type=int, default=2, help="load generator processes")
    parser.add_argument("--reread-sample", type=int, default=60, help="events, re-read path")
    args = parser.parse_args()
    cycles = max(1, min(args.cycles, 60))

    env = bench_setup()
    print_machine()
    print(database_round_trips())
    from datetime import UTC, datetime

    from django.utils import timezone

    import billing_app.services.webhooks as webhooks_service
    from billing_app.demo.seed import DemoSeeder as _Seeder
    from billing_app.models import StripeEvent
    from billing_app.services.webhooks import stripe_event_receive, webhook_hook_register

    objects = _Seeder(timezone.now()).build()
    start = int(time.time()) - 30 * DAY
    events, finals = burst(objects, cycles, start)
    latency = LatencyMix() if LatencyMix is not None else 0.3
    fake = FakeStripe([*objects, *finals], latency=latency)
    described = latency.describe() if hasattr(latency, "describe") else f"{latency * 1000:.0f} ms"
    count = len(events)
    before_burst = datetime.fromtimestamp(start - DAY, tz=UTC)

    ran: Counter[tuple[int, str]] = Counter()
    ran_lock = threading.Lock()

    def count_hook(event) -> None:  # type: ignore[no-untyped-def]
        with ran_lock:
            ran[(event.workspace.pk, event.event_id)] += 1

    with LoopbackServer(fake.handle) as stripe:
        env["STRIPE_API_BASE"] = stripe.url
        ws = stripe_workspace(slug="bench-hooks", api_base=stripe.url, webhook_secret=SECRET)
        ref = stripe_workspace(slug="bench-hooks-ref", api_base=stripe.url, webhook_secret=SECRET)
        backfill(ws, objects, before_burst)
        backfill(ref, objects, before_burst)

        # 1. intake: every distinct event once, through HTTP
        bodies = [json.dumps(e, separators=(",", ":")).encode() for e in events]
        path = f"/webhooks/stripe/{ws.slug}/"
        with gunicorn(env) as base:
            # Warm-up, not counted: unsigned deliveries (400, nothing stored) open each
            # worker thread's database connection, as on a server that has been up a while.
            unsigned = [(path, b"{}", {"Content-Type": "application/json", "Content-Length": "2"})]
            post_prebuilt(base, unsigned * 64, connections=args.connections, processes=1)
            cpu_before = group_cpu_seconds(base.pgid)
            posted = post_all(base, path, bodies, args.connections, args.client_processes)
            intake_cpu_ms = (
                (group_cpu_seconds(base.pgid) - cpu_before) * 1000 / max(posted.count, 1)
            )
            sent, seconds = posted.count, posted.seconds
            bad = posted.errors + sum(n for status, n in posted.statuses.items() if status != 200)
            intake_rps = sent / seconds
            cores = os.cpu_count() or 1
            client_share = posted.client_cpu / (seconds * cores)
            stored = StripeEvent.objects.filter(workspace=ws).count()
            customers_named = (
                StripeEvent.objects.filter(workspace=ws).exclude(customer_id="").count()
            )

            # 2. one worker drains them: what the Celery task does on the first doorbell
            # (stripe_events_drain: batches of payload-settled events, re-reads one by one)
            webhook_hook_register(event_type="*", hook=count_hook)
            first_pk = (
                StripeEvent.objects.filter(workspace=ws).order_by("pk").values_list("pk", flat=True)
            ).first()
            calls_before = fake.calls
            worker = drain(first_pk, fake)
            drain_s = worker.seconds
            calling = worker.calling
            drain_calls = fake.calls - calls_before
            failed_after_drain = StripeEvent.objects.filter(
                workspace=ws, status=StripeEvent.Status.FAILED
            ).count()
            received_after_drain = StripeEvent.objects.filter(
                workspace=ws, status=StripeEvent.Status.RECEIVED
            ).count()

            # 4. replays: every event again through HTTP: duplicates, nothing processed again
            replays = post_all(base, path, bodies, args.connections, args.client_processes)
            replayed = replays.count
            replay_bad = replays.errors + sum(
                n for status, n in replays.statuses.items() if status != 200
            )
        statuses = Counter(
            StripeEvent.objects.filter(workspace=ws).values_list("status", flat=True)
        )

        # 3. the re-read path (before issue 15) on a sample, and the reference mirror: every
        # event re-read (the fake holds the final states), in order, in the second workspace
        original = webhooks_service.webhook_payload_kind
        webhooks_service.webhook_payload_kind = lambda event_type, obj: None
        try:
            ref_pks = [stripe_event_receive(workspace=ref, event=e)[0].pk for e in events]
            sample = ref_pks[: max(1, min(args.reread_sample, count))]
            calls_before = fake.calls
            reread = drain(0, fake, batched=False, pks=sample)
            reread_times, reread_s = reread.calling, reread.seconds
            reread_failures = StripeEvent.objects.filter(
                pk__in=sample, status=StripeEvent.Status.FAILED
            ).count()
            reread_calls = fake.calls - calls_before
            fake.latency = 0.0  # the rest only builds the reference mirror
            drain(0, fake, batched=False, pks=ref_pks[len(sample) :])
        finally:
            webhooks_service.webhook_payload_kind = original

    mine = snapshot(ws)
    reference = snapshot(ref)
    differing = sorted(k for k in set(mine) | set(reference) if mine.get(k) != reference.get(k))
    once = sum(1 for (wsid, _), n in ran.items() if wsid == ws.pk and n == 1)
    twice = sum(1 for (wsid, _), n in ran.items() if wsid == ws.pk and n > 1)
    processed = statuses.get("processed", 0) + statuses.get("ignored", 0)
    quiet_n, quiet_s, quiet_cpu, quiet_statements, quiet_commits = worker.quiet(count)
    quiet_rate = quiet_n / quiet_s if quiet_s > 0 else 0.0
    failures = failed_after_drain + received_after_drain
    burst_rate = count / drain_s
    reread_rate = len(sample) / reread_s
    per_call = (sum(calling) / len(calling)) if calling else 0.0
    print(
        f"intake: {intake_cpu_ms:.2f} ms of gunicorn CPU per event; load generator "
        f"({args.client_processes} processes, {args.connections} keep-alive connections, "
        f"pre-signed): {posted.client_cpu * 1000 / max(sent, 1):.2f} ms CPU per request, "
        f"{client_share:.0%} of the {cores} cores during intake"
    )
    print(
        f"worker, per event settled by its payload (batches of {webhooks_service.WEBHOOK_BATCH}):"
        f" {quiet_cpu * 1000 / max(quiet_n, 1):.2f} ms of CPU, "
        f"{quiet_statements / max(quiet_n, 1):.1f} SQL statements, "
        f"{quiet_commits} commits for {quiet_n} events"
    )
    print(
        f"{count} distinct events ({cycles} cycles × {count // (7 * cycles)} subscriptions × 7): "
        f"intake {sent} in {seconds:.1f} s; one worker drained them in {drain_s:.1f} s "
        f"({quiet_n} from their payload in {quiet_s:.2f} s; {len(calling)} with a re-read, "
        f"{drain_calls} Stripe calls, {ms(per_call * 1000)} each); fake Stripe latency "
        f"{described}; left failed/received {failed_after_drain}/{received_after_drain}; "
        f"re-read path failures {reread_failures}"
    )
    if differing:
        print("rows differing from the re-read mirror:", differing[:10])
    ok = print_table(
        "Stripe webhooks: distinct events through gunicorn, then processing from the payload",
        [
            Row(
                "intake: distinct events accepted and stored / s (HTTP, signed, gunicorn)",
                f"{intake_rps:.0f} /s",
                f"≥ {TARGET_INTAKE:.0f} /s",
                "issue 15 before: 160–200 /s",
                intake_rps >= TARGET_INTAKE and bad == 0,
            ),
            Row("non-200 answers", str(bad), "0", "", bad == 0),
            Row("distinct events stored", f"{stored} of {count}", str(count), "", stored == count),
            Row(
                "events naming their customer (customer_id)",
                f"{customers_named} of {stored}",
                str(stored),
                "",
                customers_named == stored,
            ),
            Row(
                "processing, one worker, events settled by their payload (no Stripe call)",
                f"{quiet_rate:.0f} /s ({quiet_n} events)",
                f"≥ {TARGET_PROCESSING:.0f} /s",
                f"re-read path: {reread_rate:.1f} /s",
                quiet_rate >= TARGET_PROCESSING and not failures,
            ),
            Row(
                "processing, one worker, the whole burst (re-reads included)",
                f"{burst_rate:.0f} /s ({len(calling)} re-read of {count})",
                "—",
                f"re-read path: {reread_rate:.1f} /s",
                None,
            ),
            Row(
                "re-read path (every event re-read, before issue 15), sample",
                f"{reread_rate:.1f} /s ({reread_calls} calls for {len(sample)} events, p50 "
                f"{ms(percentile(reread_times, 50) * 1000)} each)",
                "—",
                "",
                None,
            ),
            Row("events processed", str(processed), str(count), "", processed == count),
            Row(
                "replays acknowledged, processed again",
                f"{replayed} / {sum(1 for n in ran.values() if n > 1)}",
                f"{count} / 0",
                "",
                replayed == count and replay_bad == 0,
            ),
            Row("effects ran exactly once", str(once), str(count), "", once == count),
            Row("double-processed", str(twice), "0", "", twice == 0),
            Row(
                "mirror from payloads = mirror from re-reads",
                "yes" if not differing else f"NO ({len(differing)} rows)",
                "yes",
                "",
                not differing,
            ),
        ],
    )
    raise SystemExit(0 if ok else 1)


if __name__ == "__main__":
    main()
