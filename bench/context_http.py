"""Panel context for mirrored customers through the HTTP API under gunicorn.

Seeds the demo workspace (Acme Corp and the playbook customers, 22 months of
history for Acme) in PostgreSQL, signs a Manager in, starts
``gunicorn billing_app.wsgi -w 4 -k gthread --threads 4`` on loopback with Redis
as the cache, and sends ``GET /api/v1/customers/<id>/context/`` round-robin over
the seeded customers from 20 keep-alive clients for a bounded time (wrk when it
is installed, else Python threads with one ``requests.Session`` each).

Targets (DESIGN.md 4, issue 9): p50 ≤ 10 ms, p95 ≤ 25 ms, ≥ 200 requests/s.
Baseline: no mirror — every panel load fetches the customer's bundle from Stripe
(seven calls at 300 ms each, made one after another), measured in-process
against a local fake Stripe on loopback. Also printed: the SQL queries one
context request costs, cold (cache empty) and warm.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench REDIS_URL=redis://127.0.0.1:6379/5 \\
        .venv/bin/python bench/context_http.py [--seconds 20] [--clients 20] [--python-client]
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass

from _common import (
    FakeStripe,
    LoopbackServer,
    Row,
    agent_token,
    bench_setup,
    demo_workspace,
    group_cpu_seconds,
    gunicorn,
    ms,
    percentile,
    print_machine,
    print_table,
    run_load,
    run_wrk,
    wrk_available,
)

P50_TARGET, P95_TARGET, RPS_TARGET = 10.0, 25.0, 200.0
STRIPE_LATENCY = 0.3


def query_counts(token: str, customer_id: str) -> tuple[int, int]:
    """SQL queries of one context request with an empty cache, then with a warm one."""
    from django.core.cache import cache
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    client = Client(HTTP_AUTHORIZATION=f"Bearer {token}", HTTP_HOST="127.0.0.1")
    cache.clear()
    counts = []
    for _ in range(2):
        with CaptureQueriesContext(connection) as captured:
            response = client.get(f"/api/v1/customers/{customer_id}/context/")
        assert response.status_code == 200, response.content[:300]
        counts.append(len(captured.captured_queries))
    cache.clear()
    return counts[0], counts[1]


def no_mirror_baseline(runs: int = 3) -> tuple[float, int]:
    """Panel load without a mirror: the bundle's Stripe calls one after another, then the context.

    Returns (median ms per panel load, Stripe calls per load).
    """
    from _common import stripe_workspace
    from django.utils import timezone

    from billing_app.demo.seed import DemoSeeder as _Seeder
    from billing_app.providers.stripe import provider as stripe_provider
    from billing_app.selectors.context import customer_context
    from billing_app.services.refresh import customer_bundle_store

    objects = _Seeder(timezone.now()).build()
    fake = FakeStripe(objects, latency=STRIPE_LATENCY)
    with LoopbackServer(fake.handle) as server:
        workspace = stripe_workspace(slug="bench-nomirror", api_base=server.url)
        provider = stripe_provider.StripeProvider(workspace)
        original = stripe_provider._run_concurrently
        stripe_provider._run_concurrently = lambda calls: {k: fn() for k, fn in calls.items()}
        try:
            took = []
            for _ in range(runs):
                before = fake.calls
                began = time.perf_counter()
                read_at = timezone.now()
                bundle = provider.fetch_customer_bundle("cus_sbx_acme")
                customer = customer_bundle_store(
                    workspace=workspace, customer_id="cus_sbx_acme", bundle=bundle, read_at=read_at
                )
                customer_context(workspace=workspace, customer=customer)
                took.append((time.perf_counter() - began) * 1000)
                calls = fake.calls - before
        finally:
            stripe_provider._run_concurrently = original
    return percentile(took, 50), calls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=20, help="measured seconds (bounded)")
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument(
        "--think-ms",
        type=int,
        default=80,
        help="pause of each client between requests in the paced phase (20 / (80 ms + W) ≥ 200 req/s)",
    )
    parser.add_argument("--python-client", action="store_true", help="use threads, not wrk")
    args = parser.parse_args()
    seconds = max(1, min(args.seconds, 120))

    env = bench_setup()
    print_machine()
    seed = demo_workspace()
    workspace = seed.workspace
    token = agent_token(workspace, "manager")
    customers = [c.id for c in seed.customers.values()]
    paths = [f"/api/v1/customers/{cid}/context/" for cid in customers]
    cold_q, warm_q = query_counts(token, seed.acme_id)
    print(f"{len(customers)} mirrored customers; context queries: {cold_q} cold, {warm_q} warm")

    with gunicorn(env, workers=args.workers, threads=args.threads) as base:
        use_wrk = wrk_available() and not args.python_client
        # Warm every worker's connections and the cache before measuring.
        run_load(
            clients=args.clients,
            seconds=2,
            warmup=0,
            request=lambda s, i: (
                s.get(
                    base + paths[i % len(paths)], headers={"Authorization": f"Bearer {token}"}
                ).status_code
            ),
        )
        paced = _measure(args, base, paths, token, seconds, use_wrk, think_ms=args.think_ms)
        flood = _measure(args, base, paths, token, seconds, use_wrk, think_ms=0)

    baseline_ms, stripe_calls = no_mirror_baseline()
    driver = f"wrk, {args.clients} connections" if use_wrk else f"{args.clients} Python threads"
    print(
        f"driver: {driver}; gunicorn -w {args.workers} --threads {args.threads}; "
        f"{seconds} s per phase"
    )
    ok = print_table(
        "Panel context, mirrored customer, HTTP (gunicorn + PostgreSQL + Redis)",
        [
            Row(
                f"p50, {args.clients} agents at {paced.rps:.0f} req/s",
                ms(paced.p50),
                f"≤ {P50_TARGET:.0f} ms",
                ms(baseline_ms),
                paced.p50 <= P50_TARGET,
            ),
            Row(
                f"p95, {args.clients} agents at {paced.rps:.0f} req/s",
                ms(paced.p95),
                f"≤ {P95_TARGET:.0f} ms",
                "",
                paced.p95 <= P95_TARGET,
            ),
            Row(
                "offered rate held (paced phase)",
                f"{paced.rps:.0f} req/s",
                f"≥ {RPS_TARGET:.0f} req/s",
                "",
                paced.rps >= RPS_TARGET,
            ),
            Row(
                f"capacity, {args.clients} clients flat out",
                f"{flood.rps:.0f} req/s",
                f"≥ {RPS_TARGET:.0f} req/s",
                f"{1000 / baseline_ms * args.workers * args.threads:.0f} req/s at best",
                flood.rps >= RPS_TARGET,
            ),
            Row("p50 / p95 flat out", f"{ms(flood.p50)} / {ms(flood.p95)}"),
            Row(
                "errors",
                str(paced.errors + flood.errors),
                "0",
                "",
                paced.errors + flood.errors == 0,
            ),
            Row("SQL queries / request", f"{cold_q} cold, {warm_q} warm"),
            Row("gunicorn CPU / request", ms(flood.cpu_ms)),
        ],
    )
    print(
        f"baseline: no mirror — {stripe_calls} Stripe calls of {STRIPE_LATENCY * 1000:.0f} ms, one "
        "after another, per panel load (fake Stripe on loopback); its throughput is bounded by "
        "the 16 gunicorn threads waiting on Stripe."
    )
    raise SystemExit(0 if ok else 1)


@dataclass
class Phase:
    p50: float
    p95: float
    rps: float
    errors: int
    cpu_ms: float


def _measure(args, base, paths, token, seconds, use_wrk, *, think_ms: int) -> Phase:  # type: ignore[no-untyped-def]
    cpu_before = group_cpu_seconds(base.pgid)
    if use_wrk:
        r = run_wrk(
            base=base,
            paths=paths,
            token=token,
            clients=args.clients,
            seconds=seconds,
            think_ms=think_ms,
        )
        phase = Phase(r.p50_ms, r.p95_ms, r.rps, r.socket_errors + r.status_errors, 0.0)
        n = r.requests
    else:
        load = run_load(
            clients=args.clients,
            seconds=seconds,
            think=think_ms / 1000,
            request=lambda s, i: (
                s.get(
                    base + paths[i % len(paths)], headers={"Authorization": f"Bearer {token}"}
                ).status_code
            ),
        )
        bad = load.errors + sum(v for k, v in load.statuses.items() if k != 200)
        phase = Phase(
            percentile(load.latencies_ms, 50), percentile(load.latencies_ms, 95), load.rps, bad, 0.0
        )
        n = load.count
    phase.cpu_ms = (group_cpu_seconds(base.pgid) - cpu_before) * 1000 / max(n, 1)
    return phase


if __name__ == "__main__":
    main()
