"""The panel's first answer for a customer the mirror does not know yet, against the slowest
Stripe call of its own wave — Stripe's latency varying per call.

A local fake Stripe on loopback (``_common.FakeStripe``) serves Stripe-shaped objects —
the demo's customers, subscriptions, invoices, charges, payment methods and catalog —
and waits a latency drawn per call (``_common.LatencyMix``: most calls 150–300 ms, 8 %
of them 600–900 ms, seeded, so a run is repeatable). Each customer's
``GET /api/v1/customers/<id>/context/`` goes through gunicorn while nothing of that
customer is mirrored: the bundle is read from Stripe in one wave of concurrent calls,
mirrored, and the context answered. For every load the fake's log gives the calls of
that load: their number, the slowest one, and how many round trips they took.

Target (issue 15): first answer ≤ 1.2 × the slowest single Stripe call of the same wave,
for every load. Cases, the honest one first:

1. the workspace's catalog not mirrored yet (just connected: a catalog page rides in
   the wave, 7 calls);
2. the catalog mirrored, as the backfill leaves it (6 calls);

Baseline: a live sidebar without a mirror, calling Stripe concurrently (the same wave,
in-process, then the panel built from the answers).

    .venv/bin/python bench/context_cold.py [--rounds 2] [--seed 15] [--latency mix|SECONDS]
"""

from __future__ import annotations

import argparse
import os
import time
from concurrent.futures import ThreadPoolExecutor

from _common import (
    FakeStripe,
    LatencyMix,
    LoopbackServer,
    Row,
    Wave,
    agent_token,
    bench_setup,
    gunicorn,
    live_panel_load,
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
    """The catalog as the backfill leaves it: products and prices stored, the products sync
    marked complete (which tells the bundle not to read the catalog from Stripe)."""
    from billing_app.models import SyncState
    from billing_app.services.mirror import mirror_upsert

    for obj in objects:
        if obj.get("object") in {"product", "price"}:
            mirror_upsert(workspace=workspace, obj=obj)
    for resource in ("products", "prices"):
        SyncState.objects.create(workspace=workspace, resource=resource, completed=True)


class Load:
    """One first answer: its time (ms, as the client saw it) and the Stripe calls it made."""

    def __init__(self, customer: str, took_ms: float, wave: Wave):
        self.customer = customer
        self.took_ms = took_ms
        self.wave = wave

    @property
    def slowest_ms(self) -> float:
        return self.wave.slowest * 1000

    @property
    def ratio(self) -> float:
        return self.took_ms / self.slowest_ms if self.slowest_ms else float("inf")


def cold_requests(base: str, token: str, customers: list[str], fake: FakeStripe) -> list[Load]:
    """Each customer's first context request, one after another (so each load's Stripe calls
    are the fake's calls between its request and its answer)."""
    import requests

    loads = []
    with requests.Session() as session:
        for cid in customers:
            mark = fake.mark()
            began = time.perf_counter()
            response = session.get(
                f"{base}/api/v1/customers/{cid}/context/",
                headers={"Authorization": f"Bearer {token}"},
                timeout=30,
            )
            took = (time.perf_counter() - began) * 1000
            if response.status_code != 200:
                raise SystemExit(f"{cid}: {response.status_code} {response.text[:300]}")
            loads.append(Load(cid, took, fake.calls_since(mark)))
    return loads


def live_baseline(api_base: str, customers: list[str], fake: FakeStripe) -> list[Load]:
    """A live sidebar without a mirror: the same reads at once, then the panel from them."""
    workspace = stripe_workspace(slug="bench-live-sidebar", api_base=api_base)
    loads = []
    for cid in customers:
        mark = fake.mark()
        began = time.perf_counter()
        live_panel_load(workspace, cid)
        loads.append(Load(cid, (time.perf_counter() - began) * 1000, fake.calls_since(mark)))
    return loads


def ratios(loads: list[Load]) -> tuple[float, float]:
    values = [load.ratio for load in loads]
    return percentile(values, 50), max(values)


def beyond(loads: list[Load]) -> str:
    """What a first answer costs beyond its slowest Stripe call (ms): the server's own work."""
    extra = [load.took_ms - load.slowest_ms for load in loads]
    return f"{ms(percentile(extra, 50))} / {ms(max(extra))}"


def describe(name: str, loads: list[Load]) -> None:
    calls = sorted({len(load.wave.calls) for load in loads})
    trips = sorted({load.wave.round_trips for load in loads})
    print(
        f"{name}: {len(loads)} loads; Stripe calls per load {'/'.join(map(str, calls))}; "
        f"round trips per load {'/'.join(map(str, trips))}; answer / slowest call (ms): "
        + " ".join(f"{load.took_ms:.0f}/{load.slowest_ms:.0f}" for load in loads)
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=2, help="fresh workspaces per case")
    parser.add_argument("--seed", type=int, default=15, help="seed of the latency mix")
    parser.add_argument(
        "--latency", default="mix", help="'mix' (the seeded tail) or seconds per call"
    )
    args = parser.parse_args()
    rounds = max(1, min(args.rounds, 5))
    if args.latency == "mix":
        latency: float | LatencyMix = LatencyMix(seed=args.seed)
        latency_text = LatencyMix(seed=args.seed).describe()
    else:
        latency = max(0.05, min(float(args.latency), 2.0))
        latency_text = f"{latency * 1000:.0f} ms every call"

    env = bench_setup()
    print_machine()
    print(f"fake Stripe latency: {latency_text}")
    objects = stripe_objects()
    customers = [o["id"] for o in objects if o.get("object") == "customer"]
    fake = FakeStripe(objects, latency=latency)
    bare: list[Load] = []
    mirrored: list[Load] = []
    with LoopbackServer(fake.handle) as stripe:
        os.environ["STRIPE_API_BASE"] = stripe.url
        env["STRIPE_API_BASE"] = stripe.url
        with gunicorn(env, workers=2, threads=4) as base:
            # Warm every worker (imports, connections, the Stripe client and its read
            # pool) on a workspace of its own, as a server that has been up for a while.
            warm = stripe_workspace(slug="bench-cold-warmup", api_base=stripe.url)
            mirror_catalog(warm, objects)
            warm_token = agent_token(warm, "manager", agent_id="cold-warmup")
            with ThreadPoolExecutor(max_workers=8) as pool:
                list(pool.map(lambda c: cold_requests(base, warm_token, [c], fake), customers))
            for n in range(rounds):
                workspace = stripe_workspace(slug=f"bench-cold-bare-{n}", api_base=stripe.url)
                token = agent_token(workspace, "manager", agent_id=f"cold-bare-{n}")
                bare += cold_requests(base, token, customers, fake)
                workspace = stripe_workspace(slug=f"bench-cold-{n}", api_base=stripe.url)
                mirror_catalog(workspace, objects)
                token = agent_token(workspace, "manager", agent_id=f"cold-{n}")
                mirrored += cold_requests(base, token, customers, fake)
        live = live_baseline(stripe.url, customers, fake)

    describe("catalog not mirrored", bare)
    describe("catalog mirrored", mirrored)
    describe("live sidebar (baseline, in-process)", live)
    bare_p50, bare_worst = ratios(bare)
    mirrored_p50, mirrored_worst = ratios(mirrored)
    live_p50, live_worst = ratios(live)
    worst = max(bare + mirrored, key=lambda load: load.ratio)
    target = f"≤ {TARGET_FACTOR:.1f}×"
    ok = print_table(
        "First panel answer for a customer not mirrored yet, vs the slowest Stripe call of "
        f"its wave ({latency_text})",
        [
            Row(
                "catalog not mirrored — worst load: answer / slowest call",
                f"{bare_worst:.2f}×",
                target,
                f"live sidebar, concurrent calls: {live_worst:.2f}×",
                bare_worst <= TARGET_FACTOR,
            ),
            Row(
                "same — p50",
                f"{bare_p50:.2f}×",
                target,
                f"{live_p50:.2f}×",
                bare_p50 <= TARGET_FACTOR,
            ),
            Row(
                "catalog mirrored — worst load",
                f"{mirrored_worst:.2f}×",
                target,
                "—",
                mirrored_worst <= TARGET_FACTOR,
            ),
            Row(
                "same — p50",
                f"{mirrored_p50:.2f}×",
                target,
                "—",
                mirrored_p50 <= TARGET_FACTOR,
            ),
            Row(
                "worst load in ms (answer / slowest call)",
                f"{ms(worst.took_ms)} / {ms(worst.slowest_ms)} ({worst.customer})",
                "—",
                "—",
            ),
            Row(
                "time beyond the slowest call, p50 / max (not mirrored; mirrored)",
                f"{beyond(bare)}; {beyond(mirrored)}",
                "—",
                beyond(live),
            ),
            Row(
                "first answer p50 / max, catalog not mirrored",
                f"{ms(percentile([x.took_ms for x in bare], 50))} / "
                f"{ms(max(x.took_ms for x in bare))}",
                "—",
                f"{ms(percentile([x.took_ms for x in live], 50))} / "
                f"{ms(max(x.took_ms for x in live))}",
            ),
            Row(
                "first answer p50 / max, catalog mirrored",
                f"{ms(percentile([x.took_ms for x in mirrored], 50))} / "
                f"{ms(max(x.took_ms for x in mirrored))}",
                "—",
                "—",
            ),
            Row(
                "round trips to Stripe per load (max)",
                str(max(x.wave.round_trips for x in bare + mirrored)),
                "1",
                str(max(x.wave.round_trips for x in live)),
                max(x.wave.round_trips for x in bare + mirrored) == 1,
            ),
        ],
    )
    raise SystemExit(0 if ok else 1)


if __name__ == "__main__":
    main()
