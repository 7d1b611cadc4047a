"""The panel's first answer for a customer the mirror does not know yet, Stripe at 300 ms a call.

A local fake Stripe on loopback (``_common.FakeStripe``) serves Stripe-shaped
objects — the demo's customers, subscriptions, invoices, charges and payment
methods — and sleeps ``--latency`` (0.3 s) before every answer. A workspace
connected to "Stripe" (``STRIPE_API_BASE`` pointing at the fake) has its catalog
(products, prices) mirrored, as the backfill leaves it when Stripe is connected;
then each customer's ``GET /api/v1/customers/<id>/context/`` goes through gunicorn
while nothing of that customer is mirrored: the customer bundle is fetched from
Stripe, mirrored, and the context answered.

Target (issue 9): the first answer within 1.2 × one Stripe call (the bundle's
reads run concurrently). Baseline: the same reads one after another (the sum of
the calls), measured in-process. Also printed: the same with the catalog not
mirrored (the products need a second round trip).

    .venv/bin/python bench/context_cold.py [--latency 0.3] [--rounds 2]
"""

from __future__ import annotations

import argparse
import os
import time
from concurrent.futures import ThreadPoolExecutor

from _common import (
    FakeStripe,
    LoopbackServer,
    Row,
    agent_token,
    bench_setup,
    gunicorn,
    ms,
    percentile,
    print_machine,
    print_table,
    stripe_workspace,
)

TARGET_FACTOR = 1.2


def stripe_objects() -> list[dict]:
    from django.utils import timezone

    from billing_app.demo.seed import DemoSeeder as _Seeder

    return _Seeder(timezone.now()).build()


def mirror_catalog(workspace, objects: list[dict]) -> None:  # type: ignore[no-untyped-def]
    from billing_app.services.mirror import mirror_upsert

    for obj in objects:
        if obj.get("object") in {"product", "price"}:
            mirror_upsert(workspace=workspace, obj=obj)


def cold_requests(base: str, token: str, customers: list[str]) -> list[float]:
    import requests

    took = []
    with requests.Session() as session:
        for cid in customers:
            began = time.perf_counter()
            response = session.get(
                f"{base}/api/v1/customers/{cid}/context/",
                headers={"Authorization": f"Bearer {token}"},
                timeout=30,
            )
            took.append((time.perf_counter() - began) * 1000)
            if response.status_code != 200:
                raise SystemExit(f"{cid}: {response.status_code} {response.text[:300]}")
    return took


def sequential_baseline(api_base: str, customers: list[str], objects: list[dict]) -> list[float]:
    """The naive panel: the same Stripe reads one after another, then mirror and context."""
    from django.utils import timezone

    from billing_app.providers.stripe import provider as stripe_provider
    from billing_app.selectors.context import customer_context
    from billing_app.services.refresh import customer_bundle_store

    workspace = stripe_workspace(slug="bench-sequential", api_base=api_base)
    original = stripe_provider._run_concurrently
    stripe_provider._run_concurrently = lambda calls: {k: fn() for k, fn in calls.items()}
    took = []
    try:
        provider = stripe_provider.StripeProvider(workspace)
        for cid in customers:
            began = time.perf_counter()
            read_at = timezone.now()
            bundle = provider.fetch_customer_bundle(cid)
            customer = customer_bundle_store(
                workspace=workspace, customer_id=cid, bundle=bundle, read_at=read_at
            )
            customer_context(workspace=workspace, customer=customer)
            took.append((time.perf_counter() - began) * 1000)
    finally:
        stripe_provider._run_concurrently = original
    return took


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--latency", type=float, default=0.3, help="seconds per Stripe call")
    parser.add_argument("--rounds", type=int, default=2, help="fresh workspaces to measure")
    args = parser.parse_args()
    latency = max(0.05, min(args.latency, 2.0))
    rounds = max(1, min(args.rounds, 5))

    env = bench_setup()
    print_machine()
    objects = stripe_objects()
    customers = [o["id"] for o in objects if o.get("object") == "customer"]
    fake = FakeStripe(objects, latency=latency)
    with LoopbackServer(fake.handle) as stripe:
        os.environ["STRIPE_API_BASE"] = stripe.url
        env["STRIPE_API_BASE"] = stripe.url
        warm_catalog: list[float] = []
        cold_catalog: list[float] = []
        calls_before = fake.calls
        with gunicorn(env, workers=2, threads=4) as base:
            # Warm every worker (imports, connections, the Stripe client and its read
            # pool) on a workspace of its own, as a server that has been up for a while.
            warm = stripe_workspace(slug="bench-cold-warmup", api_base=stripe.url)
            mirror_catalog(warm, objects)
            warm_token = agent_token(warm, "manager", agent_id="cold-warmup")
            with ThreadPoolExecutor(max_workers=8) as pool:
                list(pool.map(lambda cid: cold_requests(base, warm_token, [cid]), customers))
            calls_before = fake.calls
            for n in range(rounds):
                workspace = stripe_workspace(slug=f"bench-cold-{n}", api_base=stripe.url)
                mirror_catalog(workspace, objects)
                token = agent_token(workspace, "manager", agent_id=f"cold-{n}")
                warm_catalog += cold_requests(base, token, customers)
            stripe_calls = (fake.calls - calls_before) / (rounds * len(customers))
            bare = stripe_workspace(slug="bench-cold-bare", api_base=stripe.url)
            token = agent_token(bare, "manager", agent_id="cold-bare")
            cold_catalog = cold_requests(base, token, customers)
        sequential = sequential_baseline(stripe.url, customers, objects)

    one_call = latency * 1000
    target = TARGET_FACTOR * one_call
    p50, worst = percentile(warm_catalog, 50), max(warm_catalog)
    print("first answers (ms):", " ".join(f"{v:.0f}" for v in warm_catalog))
    print(
        f"{len(warm_catalog)} first loads of unmirrored customers over {rounds} workspaces; "
        f"{stripe_calls:.1f} Stripe calls per load; one Stripe call = {one_call:.0f} ms"
    )
    ok = print_table(
        "First panel answer for a customer not mirrored yet (Stripe at "
        f"{one_call:.0f} ms per call)",
        [
            Row(
                "p50 first answer",
                ms(p50),
                f"≤ {target:.0f} ms (1.2 × one call)",
                ms(percentile(sequential, 50)) + " (calls in sequence)",
                p50 <= target,
            ),
            Row(
                "slowest first answer",
                ms(worst),
                f"≤ {target:.0f} ms",
                ms(max(sequential)),
                worst <= target,
            ),
            Row(
                "p50 / slowest, catalog not mirrored",
                f"{ms(percentile(cold_catalog, 50))} / {ms(max(cold_catalog))}",
                "—",
                "2 round trips",
            ),
        ],
    )
    raise SystemExit(0 if ok else 1)


if __name__ == "__main__":
    main()
