"""Stripe webhook intake under gunicorn, then exactly-once processing of replays in any order.

1. **Intake.** A workspace connected to "Stripe" (a fake on loopback) receives
   ``--events`` distinct signed events about the demo's customers, subscriptions,
   invoices, charges and payment methods — each delivered ``--replays`` times
   (10 ×), all deliveries shuffled — POSTed to ``/webhooks/stripe/<slug>/`` under
   ``gunicorn -w 4 -k gthread --threads 4`` from 8 client threads with a keep-alive
   session each (the client's own CPU shares the two cores). Every delivery must be answered 200 and every distinct event
   stored once. Processing is queued to Redis on commit, as in production.
2. **Processing.** Every stored event is processed ``--replays`` times by 8
   threads in shuffled order (duplicate task deliveries racing each other). The
   payloads carry intermediate states (a subscription trialing, then past due,
   then active ...); the fake Stripe holds the final state. A hook counts how
   often each event's effects ran: exactly once each, none lost.
3. **Order.** The same events are processed once, in order, in a second
   workspace; both mirrors must hold the same rows.

Target (issue 9): ≥ 300 events/s accepted and stored on 2 cores; processing
idempotent under 10 × replays and shuffled order.

    .venv/bin/python bench/webhook_intake.py [--events 400] [--replays 10]
"""

from __future__ import annotations

import argparse
import copy
import json
import random
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

from _common import (
    FakeStripe,
    LoopbackServer,
    Row,
    bench_setup,
    gunicorn,
    ms,
    print_machine,
    print_table,
    run_load,
    stripe_event,
    stripe_signature,
    stripe_workspace,
)

TARGET_RPS = 300.0
SECRET = "whsec_bench_intake_secret"
TYPES = {
    "customer": ["customer.updated"],
    "subscription": ["customer.subscription.updated"],
    "invoice": ["invoice.finalized", "invoice.paid", "invoice.updated"],
    "charge": ["charge.succeeded", "charge.updated"],
    "payment_method": ["payment_method.attached"],
}


def make_events(objects: list[dict], count: int, rng: random.Random) -> list[dict]:
    """``count`` events with intermediate payload states, ``created`` increasing."""
    subjects = [o for o in objects if o.get("object") in TYPES]
    now = int(time.time()) - 3600
    events = []
    for n in range(count):
        obj = copy.deepcopy(subjects[n % len(subjects)])
        kind = obj["object"]
        if kind == "subscription":
            obj["status"] = rng.choice(["trialing", "past_due", "active", "unpaid"])
        elif kind == "invoice":
            obj["status"] = rng.choice(["draft", "open", "paid"])
            obj["amount_paid"] = rng.randint(0, int(obj.get("amount_due") or 0))
        elif kind == "charge":
            obj["amount_refunded"] = 0
        elif kind == "customer":
            obj["name"] = f"{obj.get('name')} (as of step {n})"
        event_type = TYPES[kind][n % len(TYPES[kind])]
        events.append(stripe_event(event_type, obj, created=now + n))
    return events


def snapshot(workspace) -> dict:  # type: ignore[no-untyped-def]
    from billing_app.models import (
        MirrorCharge,
        MirrorCustomer,
        MirrorInvoice,
        MirrorInvoiceLine,
        MirrorPaymentMethod,
        MirrorPrice,
        MirrorRefund,
        MirrorSubscription,
        MirrorSubscriptionItem,
    )

    skip = {"id", "workspace", "synced_at", "source_updated", "bundle_synced_at"}
    rows = {}
    for model in (
        MirrorCustomer,
        MirrorSubscription,
        MirrorSubscriptionItem,
        MirrorPrice,
        MirrorInvoice,
        MirrorInvoiceLine,
        MirrorCharge,
        MirrorRefund,
        MirrorPaymentMethod,
    ):
        names = [f.name for f in model._meta.concrete_fields if f.name not in skip]
        for row in model.objects.filter(workspace=workspace).values(*names):
            rows[(model.__name__, row["stripe_id"])] = json.dumps(row, sort_keys=True, default=str)
    return rows


def intake_python(base: str, path: str, deliveries: list[tuple[str, bytes]], threads: int):  # type: ignore[no-untyped-def]
    queue = list(deliveries)
    lock = threading.Lock()

    def send(session, _i):  # type: ignore[no-untyped-def]
        with lock:
            if not queue:
                return 200
            signature, body = queue.pop()
        return session.post(
            base + path,
            data=body,
            headers={"Stripe-Signature": signature, "Content-Type": "application/json"},
        ).status_code

    load = run_load(
        clients=threads, seconds=120, warmup=0, request=send, max_requests=len(deliveries)
    )
    bad = load.errors + sum(v for k, v in load.statuses.items() if k != 200)
    return load.count, load.seconds, bad


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=400, help="distinct events")
    parser.add_argument("--replays", type=int, default=10, help="deliveries of each event")
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--seed", type=int, default=9)
    args = parser.parse_args()
    count = max(20, min(args.events, 2000))
    replays = max(1, min(args.replays, 20))
    rng = random.Random(args.seed)

    env = bench_setup()
    print_machine()
    from django.db import connection
    from django.utils import timezone

    from billing_app.demo.seed import DemoSeeder as _Seeder
    from billing_app.models import StripeEvent
    from billing_app.services.webhooks import (
        stripe_event_process,
        stripe_event_receive,
        webhook_hook_register,
    )

    objects = _Seeder(timezone.now()).build()
    fake = FakeStripe(objects)  # the final state of everything; no latency for re-reads
    events = make_events(objects, count, rng)
    with LoopbackServer(fake.handle) as stripe:
        env["STRIPE_API_BASE"] = stripe.url
        shuffled = stripe_workspace(slug="bench-hooks", api_base=stripe.url, webhook_secret=SECRET)
        in_order = stripe_workspace(
            slug="bench-hooks-ref", api_base=stripe.url, webhook_secret=SECRET
        )

        # 1. intake
        bodies = [json.dumps(e, separators=(",", ":")).encode() for e in events]
        deliveries = [(b, n) for n, b in enumerate(bodies) for _ in range(replays)]
        rng.shuffle(deliveries)
        signed = [(stripe_signature(SECRET, body), body) for body, _ in deliveries]
        path = f"/webhooks/stripe/{shuffled.slug}/"
        with gunicorn(env) as base:
            sent, seconds, bad = intake_python(base, path, signed, args.connections)
        stored = StripeEvent.objects.filter(workspace=shuffled).count()
        accepted_rps = sent / seconds

        # 2. processing: every event `replays` times, shuffled, 8 threads racing
        ran: Counter[str] = Counter()
        ran_lock = threading.Lock()

        def count_hook(event) -> None:  # type: ignore[no-untyped-def]
            with ran_lock:
                ran[(event.workspace.pk, event.event_id)] += 1

        webhook_hook_register(event_type="*", hook=count_hook)
        pks = list(StripeEvent.objects.filter(workspace=shuffled).values_list("pk", flat=True))
        jobs = [pk for pk in pks for _ in range(replays)]
        rng.shuffle(jobs)
        failures: Counter[str] = Counter()

        def process(pk: int) -> None:
            try:
                stripe_event_process(event_pk=pk)
            except Exception as exc:
                failures[type(exc).__name__] += 1
            finally:
                connection.close()

        began = time.perf_counter()
        with ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(process, jobs))
        processing_s = time.perf_counter() - began

        # 3. the same events once, in order, in the reference workspace
        for event in sorted(events, key=lambda e: e["created"]):
            stored_ref, _ = stripe_event_receive(workspace=in_order, event=event)
            stripe_event_process(event_pk=stored_ref.pk)

    statuses = Counter(
        StripeEvent.objects.filter(workspace=shuffled).values_list("status", flat=True)
    )
    once = sum(1 for pk_event, n in ran.items() if pk_event[0] == shuffled.pk and n == 1)
    twice = sum(1 for pk_event, n in ran.items() if pk_event[0] == shuffled.pk and n > 1)
    processed = statuses.get("processed", 0) + statuses.get("ignored", 0)
    lost = count - processed
    same = snapshot(shuffled) == snapshot(in_order)
    print(
        f"{sent} deliveries of {count} events ({replays} × each, shuffled) in {seconds:.1f} s; "
        f"{len(jobs)} processing runs in {processing_s:.1f} s ({ms(processing_s * 1000 / len(jobs))} each); "
        f"failures {dict(failures) or 0}"
    )
    ok = print_table(
        "Stripe webhooks: intake under gunicorn, then exactly-once processing",
        [
            Row(
                "deliveries accepted and stored / s",
                f"{accepted_rps:.0f} /s",
                f"≥ {TARGET_RPS:.0f} /s",
                "",
                accepted_rps >= TARGET_RPS and bad == 0,
            ),
            Row("non-200 answers", str(bad), "0", "", bad == 0),
            Row("distinct events stored", f"{stored} of {count}", str(count), "", stored == count),
            Row(
                "duplicates recognised",
                str(sent - stored),
                str(sent - count),
                "",
                sent - stored == sent - count,
            ),
            Row("events processed", str(processed), str(count), "", processed == count),
            Row("effects ran exactly once", str(once), str(count), "", once == count),
            Row("double-processed", str(twice), "0", "", twice == 0),
            Row("lost", str(lost), "0", "", lost == 0),
            Row("mirror = in-order mirror", "yes" if same else "NO", "yes", "", same),
        ],
    )
    raise SystemExit(0 if ok else 1)


if __name__ == "__main__":
    main()
