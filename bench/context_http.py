"""Panel context through the HTTP API under gunicorn: every request a cache miss first.

Seeds the demo workspace (Acme Corp and the playbook customers) in PostgreSQL, plus two
customers cloned from Acme's mirrored rows with 10 and with 5,000 invoices, charges and
customer balance transactions each; builds every context snapshot as the worker does
after the seed's writes (``services.snapshots``); signs a Manager in; starts
``gunicorn billing_app.wsgi -w 4 -k gthread --threads 4`` on loopback and sends
``GET /api/v1/customers/<id>/context/`` from 20 keep-alive clients for a bounded time
(wrk when installed, else Python threads with one ``requests.Session`` each).

Phases, the honest case first:

1. **Redis context cache off** (``BILLING_DESK_CONTEXT_CACHE_SECONDS=0``): every request
   misses the cache and reads the customer's snapshot — paced (20 agents with think
   time) and flat out; gunicorn CPU per request.
2. **History**: the same, cache off, only the 10-of-everything customer, then only the
   5,000-of-everything one, flat out; the ratio of their p50 (and p95).
3. **Redis cache on** (60 s): the hit path, paced and flat out, and the hit rate (from
   PostgreSQL's scan counter of the snapshot table: a hit never reads it).

Also printed: SQL queries per request (in-process, cache off: authentication's and the
context's), and what building each history customer's snapshot cost at write time.

Targets (issue 15): cache miss p95 ≤ 25 ms and ≥ 200 req/s; CPU ≤ 8 ms and ≤ 4 queries
per request; 5,000 vs 10 of everything ≤ 1.2×.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench_a REDIS_URL=redis://127.0.0.1:6379/1 \\
        .venv/bin/python bench/context_http.py [--seconds 15] [--clients 20] [--python-client]
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from _common import (
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

P95_TARGET, RPS_TARGET, CPU_TARGET, QUERIES_TARGET, RATIO_TARGET = 25.0, 200.0, 8.0, 4, 1.2
SMALL, LARGE = 10, 5_000
AUTH_TABLES = (
    "helpdesk_connectors_installation",
    "billing_app_agentmembership",
    "auth_permission",
    "guardian_",
    "auth_user",
    "auth_group",
)


def history_customer(workspace: Any, template_id: str, customer_id: str, n: int) -> int:
    """A customer cloned from ``template_id``'s mirrored rows with ``n`` paid invoices, ``n``
    charges and ``n`` balance transactions spread over two years (the mirror's bulk store:
    the same path as a first fetch). Returns the snapshot's build time at write time (ms)."""
    from django.utils import timezone

    from billing_app.models import (
        CustomerSnapshot,
        MirrorCharge,
        MirrorCustomer,
        MirrorInvoice,
    )
    from billing_app.services.mirror_bulk import mirror_upsert_bulk
    from billing_app.services.snapshots import snapshot_build

    customer = dict(MirrorCustomer.objects.get(workspace=workspace, stripe_id=template_id).data)
    customer.update(id=customer_id, name=f"History {n}", email=f"history-{n}@bench.example")
    customer.pop("discount", None)
    invoice = dict(
        MirrorInvoice.objects.filter(workspace=workspace, customer_id=template_id, status="paid")
        .latest("created")
        .data
    )
    charge = dict(
        MirrorCharge.objects.filter(
            workspace=workspace, customer_id=template_id, status="succeeded"
        )
        .latest("created")
        .data
    )
    now = timezone.now()
    step = timedelta(days=730) / n
    objects: list[dict[str, Any]] = [customer]
    for i in range(n):
        created = int((now - timedelta(days=730) + step * i).timestamp())
        suffix = f"{n}_{i}"
        objects.append(
            {
                **invoice,
                "id": f"in_hist_{suffix}",
                "number": f"HIST-{suffix}",
                "amount_due": 1_000 + i,
                "amount_paid": 1_000 + i,
                "total": 1_000 + i,
                "subtotal": 1_000 + i,
                "customer": customer_id,
                "subscription": None,
                "charge": f"ch_hist_{suffix}",
                "created": created,
                "lines": {"object": "list", "data": [], "has_more": False},
            }
        )
        amount = 1_000 + i  # no two alike: a duplicate-charge alert per pair is another bench
        objects.append(
            {
                **charge,
                "amount": amount,
                "amount_captured": amount,
                "amount_refunded": 0,
                "id": f"ch_hist_{suffix}",
                "customer": customer_id,
                "invoice": f"in_hist_{suffix}",
                "payment_intent": f"pi_hist_{suffix}",
                "created": created,
                "refunds": {"object": "list", "data": [], "has_more": False},
            }
        )
        objects.append(
            {
                "id": f"cbtxn_hist_{suffix}",
                "object": "customer_balance_transaction",
                "amount": -100 if i % 2 else 100,
                "currency": customer.get("currency") or "usd",
                "customer": customer_id,
                "created": created,
                "description": "Bench adjustment",
                "ending_balance": 0,
                "invoice": None,
                "livemode": False,
                "metadata": {},
                "type": "adjustment",
            }
        )
    mirror_upsert_bulk(workspace=workspace, objects=objects, read_at=now)
    snapshot_build(workspace=workspace, customer_id=customer_id)
    return CustomerSnapshot.objects.get(workspace=workspace, customer_id=customer_id).build_ms


def snapshots_build_all(workspace: Any) -> int:
    """What the workers do after the seed's writes: build every pending snapshot."""
    from billing_app.models import MirrorCustomer
    from billing_app.services.snapshots import snapshot_build

    ids = list(
        MirrorCustomer.objects.filter(workspace=workspace).values_list("stripe_id", flat=True)
    )
    for customer_id in ids:
        snapshot_build(workspace=workspace, customer_id=customer_id)
    return len(ids)


def query_counts(token: str, customer_id: str) -> tuple[int, int, int]:
    """(all, authentication's, the context's) SQL queries of one request, Redis cache off."""
    from django.conf import settings
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    settings.BILLING_DESK_CONTEXT_CACHE_SECONDS = 0
    client = Client(HTTP_AUTHORIZATION=f"Bearer {token}", HTTP_HOST="127.0.0.1")
    for _ in range(2):  # the second: per-process memos warm, as in a running worker
        with CaptureQueriesContext(connection) as captured:
            response = client.get(f"/api/v1/customers/{customer_id}/context/")
        assert response.status_code == 200, response.content[:300]
    sql = [q["sql"] for q in captured.captured_queries]
    auth = sum(1 for q in sql if any(t in q for t in AUTH_TABLES))
    return len(sql), auth, len(sql) - auth


def snapshot_scans() -> int:
    """PostgreSQL's count of scans of the snapshot table (a Redis hit makes none)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT coalesce(seq_scan, 0) + coalesce(idx_scan, 0) FROM pg_stat_user_tables "
            "WHERE relname = 'billing_app_customersnapshot'"
        )
        return int(cursor.fetchone()[0])


@dataclass
class Phase:
    p50: float
    p95: float
    rps: float
    errors: int
    cpu_ms: float
    requests: int


def _measure(base, paths, token, seconds, clients, use_wrk, *, think_ms: int) -> Phase:  # type: ignore[no-untyped-def]
    cpu_before = group_cpu_seconds(base.pgid)
    if use_wrk:
        r = run_wrk(
            base=base, paths=paths, token=token, clients=clients, seconds=seconds, think_ms=think_ms
        )
        phase = Phase(r.p50_ms, r.p95_ms, r.rps, r.socket_errors + r.status_errors, 0.0, r.requests)
    else:
        load = run_load(
            clients=clients,
            seconds=seconds,
            warmup=0,
            think=think_ms / 1000,
            request=lambda s, i: (
                s.get(
                    base + paths[i % len(paths)], headers={"Authorization": f"Bearer {token}"}
                ).status_code
            ),
        )
        bad = load.errors + sum(v for k, v in load.statuses.items() if k != 200)
        phase = Phase(
            percentile(load.latencies_ms, 50),
            percentile(load.latencies_ms, 95),
            load.rps,
            bad,
            0.0,
            load.count,
        )
    phase.cpu_ms = (group_cpu_seconds(base.pgid) - cpu_before) * 1000 / max(phase.requests, 1)
    return phase


def _warm(base, paths, token, clients) -> int:  # type: ignore[no-untyped-def]
    load = run_load(
        clients=clients,
        seconds=2,
        warmup=0,
        request=lambda s, i: (
            s.get(
                base + paths[i % len(paths)], headers={"Authorization": f"Bearer {token}"}
            ).status_code
        ),
    )
    return load.count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=15, help="measured seconds per phase")
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--think-ms", type=int, default=80, help="paced phases: pause per client")
    parser.add_argument("--python-client", action="store_true", help="use threads, not wrk")
    args = parser.parse_args()
    seconds = max(1, min(args.seconds, 120))

    env = bench_setup()
    print_machine()
    seed = demo_workspace()
    workspace = seed.workspace
    token = agent_token(workspace, "manager")
    started = time.perf_counter()
    build_small = history_customer(workspace, seed.acme_id, "cus_bench_hist_small", SMALL)
    build_large = history_customer(workspace, seed.acme_id, "cus_bench_hist_large", LARGE)
    built = snapshots_build_all(workspace)
    print(
        f"{built} customers, snapshots built at write time in {time.perf_counter() - started:.1f} s "
        f"(history customers: {build_small} ms for {SMALL}, {build_large} ms for {LARGE} "
        "of everything)"
    )
    customers = [c.id for c in seed.customers.values()]
    paths = [f"/api/v1/customers/{cid}/context/" for cid in customers]
    total_q, auth_q, ours_q = query_counts(token, seed.acme_id)
    large_q = query_counts(token, "cus_bench_hist_large")
    print(
        f"SQL per request, cache off: {total_q} ({auth_q} authentication, {ours_q} context); "
        f"{large_q[0]} for the {LARGE}-of-everything customer"
    )
    use_wrk = wrk_available() and not args.python_client
    clients = args.clients

    # 1 + 2: the Redis cache off: every request reads the snapshot.
    with gunicorn(
        {**env, "BILLING_DESK_CONTEXT_CACHE_SECONDS": "0"},
        workers=args.workers,
        threads=args.threads,
    ) as base:
        _warm(base, paths, token, clients)
        miss_paced = _measure(base, paths, token, seconds, clients, use_wrk, think_ms=args.think_ms)
        miss_flood = _measure(base, paths, token, seconds, clients, use_wrk, think_ms=0)
        half = max(1, seconds // 2)
        small = _measure(
            base,
            ["/api/v1/customers/cus_bench_hist_small/context/"],
            token,
            half,
            clients,
            use_wrk,
            think_ms=0,
        )
        large = _measure(
            base,
            ["/api/v1/customers/cus_bench_hist_large/context/"],
            token,
            half,
            clients,
            use_wrk,
            think_ms=0,
        )

    # 3: the Redis cache on: the hit path and the hit rate.
    scans_before = snapshot_scans()
    with gunicorn(
        {**env, "BILLING_DESK_CONTEXT_CACHE_SECONDS": "60"},
        workers=args.workers,
        threads=args.threads,
    ) as base:
        warm_n = _warm(base, paths, token, clients)
        hit_paced = _measure(base, paths, token, seconds, clients, use_wrk, think_ms=args.think_ms)
        hit_flood = _measure(base, paths, token, seconds, clients, use_wrk, think_ms=0)
    time.sleep(1.5)  # the backends report their table statistics as they exit
    scans = snapshot_scans() - scans_before
    sent = warm_n + hit_paced.requests + hit_flood.requests
    hit_rate = max(0.0, 1 - scans / max(sent, 1))

    driver = f"wrk, {clients} connections" if use_wrk else f"{clients} Python threads"
    print(
        f"driver: {driver}; gunicorn -w {args.workers} --threads {args.threads}; {seconds} s per phase"
    )
    ratio50 = small.p50 and large.p50 / small.p50
    ratio95 = small.p95 and large.p95 / small.p95
    ok = print_table(
        "Panel context through HTTP (gunicorn + PostgreSQL), snapshots built at write time",
        [
            Row(
                f"cache MISS (cache off), {clients} agents paced — p95",
                ms(miss_paced.p95),
                f"≤ {P95_TARGET:.0f} ms",
                f"p50 {ms(miss_paced.p50)} at {miss_paced.rps:.0f} req/s",
                miss_paced.p95 <= P95_TARGET,
            ),
            Row(
                f"cache MISS, {clients} clients flat out — req/s",
                f"{miss_flood.rps:.0f} req/s",
                f"≥ {RPS_TARGET:.0f} req/s",
                f"p50 {ms(miss_flood.p50)}, p95 {ms(miss_flood.p95)}",
                miss_flood.rps >= RPS_TARGET,
            ),
            Row(
                "cache MISS — gunicorn CPU / request",
                ms(miss_flood.cpu_ms),
                f"≤ {CPU_TARGET:.0f} ms",
                "",
                miss_flood.cpu_ms <= CPU_TARGET,
            ),
            Row(
                "cache MISS — SQL queries / request",
                f"{total_q} ({auth_q} auth + {ours_q})",
                f"≤ {QUERIES_TARGET}",
                "auth's are helper C's to remove",
                total_q <= QUERIES_TARGET,
            ),
            Row(
                f"{LARGE:,} vs {SMALL} invoices + charges + balance txns — p50 ratio",
                f"{ratio50:.2f}×",
                f"≤ {RATIO_TARGET}×",
                f"{ms(large.p50)} vs {ms(small.p50)}; p95 {ratio95:.2f}×",
                ratio50 <= RATIO_TARGET,
            ),
            Row(
                f"cache HIT path, {clients} agents paced — p95",
                ms(hit_paced.p95),
                f"≤ {P95_TARGET:.0f} ms",
                f"p50 {ms(hit_paced.p50)} at {hit_paced.rps:.0f} req/s",
                hit_paced.p95 <= P95_TARGET,
            ),
            Row(
                f"cache HIT path, {clients} clients flat out — req/s",
                f"{hit_flood.rps:.0f} req/s",
                f"≥ {RPS_TARGET:.0f} req/s",
                f"p95 {ms(hit_flood.p95)}; CPU {ms(hit_flood.cpu_ms)}/request",
                hit_flood.rps >= RPS_TARGET,
            ),
            Row("cache hit rate (11 customers round-robin, 60 s entries)", f"{hit_rate:.1%}"),
            Row(
                "errors",
                str(
                    sum(
                        p.errors
                        for p in (miss_paced, miss_flood, small, large, hit_paced, hit_flood)
                    )
                ),
                "0",
                "",
                sum(p.errors for p in (miss_paced, miss_flood, small, large, hit_paced, hit_flood))
                == 0,
            ),
        ],
    )
    raise SystemExit(0 if ok else 1)


if __name__ == "__main__":
    main()
