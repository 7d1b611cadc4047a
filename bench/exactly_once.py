"""Fifty concurrent identical refund submissions while Stripe times out: exactly one refund.

A workspace connected to "Stripe" — a fake on loopback that honours
``Idempotency-Key`` like Stripe (the same key replays the first response) and
refuses to refund more than a charge's remainder — mirrors the demo's Acme Corp.
The fake **does the first two refund requests and then never answers them**
(the client times out after ``STRIPE_TIMEOUT_SECONDS=1``): the worst case, money
moved but nobody heard. Then, through gunicorn:

1. 50 clients POST the same refund with the same ``idempotency_key`` at once
   (a double click, a retry, a panel reopened in another tab);
2. 50 clients POST a full refund of another charge at once, each with its own
   key (fifty agents clicking "refund" on one charge);
3. the events Stripe sends about those refunds are delivered 10 × each,
   concurrently, to the webhook endpoint, and processed 10 × each by 8 racing
   threads; a hook counts how often each event's effects ran.

Target (issue 9): exactly one refund per charge at Stripe; 0 lost or
double-processed webhook events.

    .venv/bin/python bench/exactly_once.py
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

from _common import (
    FakeStripe,
    LoopbackServer,
    Row,
    agent_token,
    bench_setup,
    gunicorn,
    print_machine,
    print_table,
    stripe_event,
    stripe_signature,
    stripe_workspace,
)

CLIENTS = 50
SECRET = "whsec_bench_exactly_once"


def main() -> None:
    env = bench_setup()
    print_machine()
    import requests
    from django.db import connection
    from django.utils import timezone

    from billing_app.demo.seed import DemoSeeder as _Seeder
    from billing_app.models import BillingAction, MirrorCharge, StripeEvent
    from billing_app.services.mirror import mirror_upsert
    from billing_app.services.webhooks import stripe_event_process, webhook_hook_register

    objects = _Seeder(timezone.now()).build()
    acme = [o for o in objects if "acme" in str(o.get("customer") or o.get("id"))]
    refund_posts = Counter()
    lock = threading.Lock()

    def fault(method: str, path: str, _n: int) -> str | None:
        if method == "POST" and path == "/v1/refunds":
            with lock:
                refund_posts["n"] += 1
                if refund_posts["n"] <= 2:
                    return "late"  # refunded at Stripe, the answer never arrives
        return None

    fake = FakeStripe(objects, fault=fault, stall=2.5)
    with LoopbackServer(fake.handle) as stripe:
        env.update(
            STRIPE_API_BASE=stripe.url,
            STRIPE_TIMEOUT_SECONDS="1",
            STRIPE_MAX_NETWORK_RETRIES="2",
            LOG_LEVEL="ERROR",  # the 49 refused refunds of step 2 are expected
        )
        workspace = stripe_workspace(slug="bench-once", api_base=stripe.url, webhook_secret=SECRET)
        for obj in [o for o in objects if o.get("object") in {"product", "price"}] + acme:
            mirror_upsert(workspace=workspace, obj=obj)
        charges = list(
            MirrorCharge.objects.filter(
                workspace=workspace, customer_id="cus_sbx_acme", status="succeeded"
            ).order_by("-created")[:2]
        )
        partial, full = charges
        token = agent_token(workspace, "manager")
        headers = {"Authorization": f"Bearer {token}"}

        def submit(body: dict) -> tuple[int, dict]:
            with requests.Session() as session:
                r = session.post(f"{base}/api/v1/actions/", json=body, headers=headers, timeout=90)
                return r.status_code, (r.json() if r.content else {})

        with gunicorn(env) as base:
            same = {
                "kind": "issue_refund",
                "customer_id": "cus_sbx_acme",
                "ticket_id": "4521",
                "params": {
                    "charge_id": partial.stripe_id,
                    "amount": 5000,
                    "currency": partial.currency,
                    "reason": "requested_by_customer",
                },
                "idempotency_key": "bench-refund-4521",
            }
            began = time.perf_counter()
            with ThreadPoolExecutor(max_workers=CLIENTS) as pool:
                first = list(pool.map(lambda _: submit(same), range(CLIENTS)))
            first_s = time.perf_counter() - began
            posts_first, replayed_first = refund_posts["n"], fake.replayed
            distinct = [
                {
                    **same,
                    "params": {
                        **same["params"],
                        "charge_id": full.stripe_id,
                        "amount": full.amount_captured,
                    },
                    "idempotency_key": f"bench-full-refund-{n}",
                }
                for n in range(CLIENTS)
            ]
            with ThreadPoolExecutor(max_workers=CLIENTS) as pool:
                second = list(pool.map(submit, distinct))

            # Stripe's events about what it did, each delivered 10 × at once.
            refunds = [o for o in fake.objects.values() if o.get("object") == "refund"]
            events = [stripe_event("refund.created", r) for r in refunds] + [
                stripe_event("charge.refunded", fake.objects[r["charge"]]) for r in refunds
            ]
            deliveries = [json.dumps(e).encode() for e in events for _ in range(10)]

            def deliver(body: bytes) -> int:
                return requests.post(
                    f"{base}/webhooks/stripe/{workspace.slug}/",
                    data=body,
                    headers={"Stripe-Signature": stripe_signature(SECRET, body)},
                    timeout=30,
                ).status_code

            with ThreadPoolExecutor(max_workers=16) as pool:
                delivered = Counter(pool.map(deliver, deliveries))

        ran: Counter[str] = Counter()

        def count_hook(event) -> None:  # type: ignore[no-untyped-def]
            with lock:
                ran[event.event_id] += 1

        webhook_hook_register(event_type="*", hook=count_hook)
        pks = list(StripeEvent.objects.filter(workspace=workspace).values_list("pk", flat=True))

        def process(pk: int) -> None:
            try:
                stripe_event_process(event_pk=pk)
            finally:
                connection.close()

        with ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(process, [pk for pk in pks for _ in range(10)]))

    ids = {body.get("id") for _, body in first}
    statuses = Counter(code for code, _ in first)
    refunds_partial = [r for r in refunds if r["charge"] == partial.stripe_id]
    refunds_full = [r for r in refunds if r["charge"] == full.stripe_id]
    actions_same = BillingAction.objects.filter(
        workspace=workspace, idempotency_key="bench-refund-4521"
    )
    second_outcomes = Counter(
        body.get("status") or body.get("error", {}).get("code") for _, body in second
    )
    processed = StripeEvent.objects.filter(workspace=workspace, status="processed").count()
    double = sum(1 for n in ran.values() if n > 1)
    lost = len(events) - processed
    mirrored = MirrorCharge.objects.get(workspace=workspace, stripe_id=full.stripe_id)
    print(
        f"{CLIENTS} identical submissions answered in {first_s:.1f} s: HTTP {dict(statuses)}; "
        f"Stripe saw {posts_first} refund POSTs for them, all with one key: the first refunded "
        f"and timed out, {replayed_first} retries were replayed by that key"
    )
    print(f"{CLIENTS} distinct-key full refunds of one charge: {dict(second_outcomes)}")
    ok = print_table(
        "Exactly once: 50 concurrent refunds with Stripe timing out",
        [
            Row(
                "refunds at Stripe, same key ×50",
                str(len(refunds_partial)),
                "1",
                "",
                len(refunds_partial) == 1,
            ),
            Row(
                "actions recorded for that key",
                str(actions_same.count()),
                "1",
                "",
                actions_same.count() == 1,
            ),
            Row(
                "answers carrying that one action (201 once, then 200 replays)",
                f"{sum(1 for _, b in first if b.get('id') in ids and len(ids) == 1)} of {CLIENTS}",
                str(CLIENTS),
                "",
                len(ids) == 1 and statuses[201] == 1 and statuses[200] == CLIENTS - 1,
            ),
            Row(
                "action status",
                actions_same.first().status,
                "succeeded",
                "",
                actions_same.first().status == "succeeded",
            ),
            Row(
                "refunds at Stripe, 50 keys one charge",
                str(len(refunds_full)),
                "1",
                "",
                len(refunds_full) == 1,
            ),
            Row(
                "webhook deliveries answered 200",
                f"{delivered.get(200, 0)} of {len(deliveries)}",
                str(len(deliveries)),
                "",
                delivered.get(200, 0) == len(deliveries),
            ),
            Row(
                "events processed", f"{processed} of {len(events)}", str(len(events)), "", lost == 0
            ),
            Row("double-processed events", str(double), "0", "", double == 0),
            Row("lost events", str(lost), "0", "", lost == 0),
            Row(
                "mirror: charge fully refunded",
                f"{mirrored.amount_refunded} of {mirrored.amount_captured}",
                "equal",
                "",
                mirrored.amount_refunded == mirrored.amount_captured,
            ),
        ],
    )
    raise SystemExit(0 if ok else 1)


if __name__ == "__main__":
    main()
