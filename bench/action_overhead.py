"""What an action costs Billing Desk beyond the billing provider, through HTTP (issue 15).

20 agents (each their own app session token, their own customer, their own idempotency
keys) submit ``POST /api/v1/actions/`` to gunicorn on loopback — a credit and a refund
in turn, as a Manager, each executing at once — against the demo's sandbox workspace in
PostgreSQL. The sandbox is the stand-in billing system: its work (its own rows, in the
same database) is timed by the service as ``BillingAction.provider_ms``.

Printed, the honest case first:

* **latency through HTTP** — what the agent waits for, the sandbox's work included
  (an upper bound of the overhead: with Stripe that part is a network call);
* **overhead through HTTP** = that latency − the action's ``provider_ms`` (target:
  p95 ≤ 30 ms);
* **statements and commits per action** — one credit and one refund submitted
  in-process through Django's test client on the same database (same view, same code;
  gunicorn keeps no query log), sorted as ``tests/billing_app/test_actions_statements.py``
  sorts them: authentication, the sandbox's own, and the rest — BEGIN/COMMIT/SAVEPOINT
  included (target: ≤ 15).

Setup: the refund pattern is raised for the bench workspace (every refund executes: the
bench times the executing path); 20 customers cloned from Acme Corp, each with a large
charge to refund from. Other sessions on the machine load the cores: the figures vary
with them (see bench/README.md).

    .venv/bin/python bench/action_overhead.py [--seconds 20 --agents 20 --think-ms 1000]
"""

from __future__ import annotations

import argparse
import copy
import itertools
import os
import threading
import time
from typing import Any

from _common import (
    Row,
    agent_token,
    bench_setup,
    demo_workspace,
    gunicorn,
    ms,
    percentile,
    print_machine,
    print_table,
    run_load,
)

TARGET_P95_MS = 30.0
TARGET_STATEMENTS = 15
AUTH_TABLES = (
    "helpdesk_connectors_installation",
    "billing_app_agentmembership",
    "billing_app_workspaceinstallation",
    "auth_permission",
    "guardian_",
)


CHARGES_PER_CUSTOMER = 10  # refunds rotate over them: the sandbox re-stores a charge's refunds


def _customers(workspace: Any, count: int) -> list[str]:
    """``count`` customers cloned from Acme Corp, each with ten $50,000 charges made today."""
    from django.utils import timezone

    from billing_app.models import MirrorCharge, MirrorCustomer
    from billing_app.services.mirror import mirror_upsert

    acme = MirrorCustomer.objects.get(workspace=workspace, name="Acme Corp")
    charge = (
        MirrorCharge.objects.filter(
            workspace=workspace, customer_id=acme.stripe_id, status="succeeded"
        )
        .order_by("-created")
        .first()
    )
    now = int(timezone.now().timestamp())
    ids = []
    for n in range(count):
        cid = f"cus_bench_{n:02d}"
        customer = copy.deepcopy(acme.data)
        customer.update(id=cid, name=f"Bench Customer {n:02d}", email=f"{cid}@bench.example")
        customer["balance"] = 0
        customer["currency"] = "usd"
        mirror_upsert(workspace=workspace, obj=customer)
        for k in range(CHARGES_PER_CUSTOMER):
            paid = copy.deepcopy(charge.data)
            paid.update(
                id=f"ch_bench_{n:02d}_{k}",
                customer=cid,
                amount=5_000_000,
                amount_captured=5_000_000,
                amount_refunded=0,
                refunded=False,
                created=now - 3600 - k,
                currency="usd",
                invoice=None,
                payment_intent=None,
            )
            paid["refunds"] = {"object": "list", "data": [], "has_more": False, "url": ""}
            mirror_upsert(workspace=workspace, obj=paid)
        ids.append(cid)
    return ids


def _body(kind: str, customer: str, key: str, i: int = 0) -> dict[str, Any]:
    n = customer.rsplit("_", 1)[-1]
    params = (
        {"amount": 1000, "currency": "USD", "description": "bench credit"}
        if kind == "apply_credit"
        else {
            "charge_id": f"ch_bench_{n}_{i % CHARGES_PER_CUSTOMER}",
            "amount": 100,
            "currency": "USD",
            "reason": "service_outage",
        }
    )
    return {
        "kind": kind,
        "customer_id": customer,
        "ticket_id": f"bench-{n}",
        "params": params,
        "idempotency_key": key,
    }


class _Marks:
    """Statements run inside the sandbox's own calls (indexes into the query log)."""

    def __init__(self) -> None:
        self.windows: list[tuple[int, int]] = []
        self.local = threading.local()

    def run(self, connection: Any, fn: Any, *args: Any, **kwargs: Any) -> Any:
        if getattr(self.local, "inside", False):
            return fn(*args, **kwargs)
        self.local.inside = True
        start = len(connection.queries_log)
        try:
            return fn(*args, **kwargs)
        finally:
            self.windows.append((start, len(connection.queries_log)))
            self.local.inside = False


def _count_statements(token: str, customer: str) -> dict[str, dict[str, int]]:
    """One credit and one refund in-process: statements by kind of work, and commits."""
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    import billing_app.providers as providers_pkg
    from billing_app.providers.instrumented import OPERATIONS

    marks = _Marks()
    real_class = providers_pkg.provider_class

    def marked(name: str) -> Any:
        cls = real_class(name)

        def wrap(op: str) -> Any:
            return lambda self, *a, **k: marks.run(
                connection, getattr(super(sub, self), op), *a, **k
            )

        methods = {op: wrap(op) for op in OPERATIONS if callable(getattr(cls, op, None))}
        sub = type(f"Marked{cls.__name__}", (cls,), methods)
        sub.clock_now = classmethod(lambda _c, ws: marks.run(connection, cls.clock_now, ws))
        return sub

    from billing_app.providers import instrumented
    from billing_app.services import rollups as rollups_module
    from billing_app.services.actions import outcomes, submit

    record_marks = _Marks()
    real_record = instrumented.provider_call_record
    instrumented.provider_call_record = lambda **kw: record_marks.run(  # type: ignore[assignment]
        connection, real_record, **kw
    )
    rollup_marks = _Marks()
    # The upkeep where it is a call of its own (on PostgreSQL an executed action's rides
    # on the outcome's UPDATE and is counted there, in "own").
    real_rollups = {m: m.rollups_action_recorded for m in (outcomes, submit, rollups_module)}

    def spied(real: Any) -> Any:
        return lambda *a, **kw: rollup_marks.run(connection, real, *a, **kw)

    for module, real in real_rollups.items():
        module.rollups_action_recorded = spied(real)  # type: ignore[attr-defined]
    providers_pkg.provider_class = marked
    client = Client(HTTP_AUTHORIZATION=f"Bearer {token}", HTTP_HOST="127.0.0.1")
    counts: dict[str, dict[str, int]] = {}
    try:
        for kind in ("apply_credit", "issue_refund", "apply_credit", "issue_refund"):
            marks.windows.clear()
            rollup_marks.windows.clear()
            record_marks.windows.clear()
            connection.queries_log.clear()
            with CaptureQueriesContext(connection) as captured:
                response = client.post(
                    "/api/v1/actions/",
                    _body(kind, customer, f"count-{kind}-{time.monotonic_ns()}"),
                    content_type="application/json",
                    secure=True,
                )
            assert response.status_code == 201, response.content[:300]
            inside = {i for start, end in marks.windows for i in range(start, end)}
            rolled = {i for start, end in rollup_marks.windows for i in range(start, end)}
            recorded = {i for start, end in record_marks.windows for i in range(start, end)}
            auth = provider = own = commits = rollups = snapshot = record = 0
            in_transaction = False
            for i, query in enumerate(captured.captured_queries):
                sql = query["sql"]
                if i in inside:
                    provider += 1
                    continue
                if any(table in sql for table in AUTH_TABLES):
                    auth += 1
                    continue
                if i in rolled:
                    rollups += 1
                    continue
                if i in recorded:
                    record += 1
                elif "billing_app_customersnapshot" in sql:
                    snapshot += 1
                else:
                    own += 1
                verb = sql.split(None, 1)[0].upper()
                if verb == "BEGIN":
                    in_transaction = True
                elif verb in ("COMMIT", "ROLLBACK"):
                    in_transaction = False
                    commits += verb == "COMMIT"
                elif verb in ("INSERT", "UPDATE", "DELETE", "WITH") and not in_transaction:
                    commits += 1  # WITH: the call record's data-modifying CTE, autocommitted
            # The second of each kind is counted (the first warms the process).
            counts[kind] = {
                "auth": auth,
                "provider": provider,
                "own": own,
                "snapshot": snapshot,
                "rollups": rollups,
                "record": record,
                "commits": commits,
            }
    finally:
        providers_pkg.provider_class = real_class
        instrumented.provider_call_record = real_record  # type: ignore[assignment]
        for module, real in real_rollups.items():
            module.rollups_action_recorded = real  # type: ignore[attr-defined]
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--agents", type=int, default=20)
    parser.add_argument("--think-ms", type=float, default=1000)
    parser.add_argument("--max-actions", type=int, default=4000)
    args = parser.parse_args()
    agents = max(1, min(args.agents, 50))

    env = bench_setup()
    print_machine()
    from billing_app.models import BillingAction, Workspace

    seed = demo_workspace()
    workspace = seed.workspace
    Workspace.objects.filter(pk=workspace.pk).update(refund_pattern_count=1_000_000)
    workspace.refresh_from_db()
    customers = _customers(workspace, agents + 1)
    tokens = [agent_token(workspace, "manager", f"bench-agent-{n:02d}") for n in range(agents + 1)]

    counts = _count_statements(tokens[-1], customers[-1])

    import requests  # noqa: F401  (run_load's sessions)

    keys = itertools.count()
    run_tag = os.urandom(4).hex()
    base_holder: dict[str, str] = {}
    # (when it ended, latency ms, the action's provider_ms as the API answered it)
    timed: list[tuple[float, float, int]] = []

    def request(session: Any, i: int) -> int:
        agent = i % agents
        kind = "apply_credit" if (i // agents) % 2 == 0 else "issue_refund"
        key = f"bench-{run_tag}-{agent}-{next(keys)}"
        began = time.perf_counter()
        response = session.post(
            f"{base_holder['url']}/api/v1/actions/",
            json=_body(kind, customers[agent], key, i // agents // 2),
            headers={"Authorization": f"Bearer {tokens[agent]}"},
            timeout=30,
        )
        took = (time.perf_counter() - began) * 1000
        if response.status_code == 201:
            timed.append((time.monotonic(), took, int(response.json().get("provider_ms") or 0)))
        return response.status_code

    started = time.time()
    with gunicorn(env) as base:
        base_holder["url"] = base
        measure_from = time.monotonic() + 2.0  # run_load's warm-up
        load = run_load(
            clients=agents,
            seconds=args.seconds,
            request=request,
            max_requests=args.max_actions,
            think=args.think_ms / 1000,
        )

    from datetime import UTC, datetime

    rows = list(
        BillingAction.objects.filter(
            workspace=workspace,
            idempotency_key__startswith=f"bench-{run_tag}-",
            created_at__gte=datetime.fromtimestamp(started, UTC),
        ).values_list("status", "provider_ms", "duration_ms")
    )
    succeeded = sum(1 for s, _, _ in rows if s == BillingAction.Status.SUCCEEDED)
    kept = [(took, provider) for ended, took, provider in timed if ended >= measure_from]
    latency = [took for took, _ in kept]
    provider_ms = [provider for _, provider in kept]
    provider_p50 = percentile(provider_ms, 50)
    # Per request: what the agent waited for minus that action's own sandbox time.
    overhead = [max(0.0, took - provider) for took, provider in kept]
    service = [max(0, d - p) for _, p, d in rows if d is not None and p is not None]
    non_201 = sum(n for status, n in load.statuses.items() if status != 201)

    print(
        f"{agents} agents, think {args.think_ms:.0f} ms, {load.count} timed requests in "
        f"{load.seconds:.1f} s ({load.rps:.0f}/s); {len(rows)} actions recorded, "
        f"{succeeded} succeeded; statuses {dict(sorted(load.statuses.items()))}; "
        f"sandbox time per action p50 {ms(provider_p50)}"
    )
    credit, refund = counts["apply_credit"], counts["issue_refund"]
    ok = print_table(
        "Action overhead through HTTP (gunicorn, sandbox provider, PostgreSQL)",
        [
            Row("p50 latency through HTTP, sandbox included", ms(percentile(latency, 50))),
            Row("p95 latency through HTTP, sandbox included", ms(percentile(latency, 95))),
            Row(
                "p50 overhead through HTTP (latency − the action's sandbox time)",
                ms(percentile(overhead, 50)),
            ),
            Row(
                "p95 overhead through HTTP (latency − the action's sandbox time)",
                ms(percentile(overhead, 95)),
                f"≤ {TARGET_P95_MS:.0f} ms",
                "31–45 ms in-process (issue 15)",
                percentile(overhead, 95) <= TARGET_P95_MS,
            ),
            Row(
                "p95 in the service (duration_ms − provider_ms)",
                ms(percentile(service, 95)),
            ),
            *[
                Row(
                    f"statements per {label}, all in: action path + roll-ups' upkeep + the "
                    "call's record + staleness mark",
                    f"{c['own'] + c['rollups'] + c['record'] + c['snapshot']} "
                    f"({c['own']} + {c['rollups']} + {c['record']} + {c['snapshot']})",
                    f"≤ {TARGET_STATEMENTS}",
                    "31–45",
                    c["own"] + c["record"] + c["snapshot"] + c["rollups"] <= TARGET_STATEMENTS,
                )
                for label, c in (("refund", refund), ("credit", credit))
            ],
            Row(
                "apart: authentication / the sandbox's own (refund)",
                f"{refund['auth']} / {refund['provider']}",
            ),
            Row(
                "commits per action (own)",
                f"{refund['commits']} refund, {credit['commits']} credit",
                "as few as the guarantees allow",
                "4",
            ),
            Row("non-201 answers", str(non_201), "0", "", non_201 == 0 and load.errors == 0),
        ],
    )
    raise SystemExit(0 if ok else 1)


if __name__ == "__main__":
    main()
