"""Issue 12's fault harness: each fault many times through gunicorn; every counter must be 0.

A production-like deployment on loopback — gunicorn (production settings), PostgreSQL,
a Redis of the benchmark's own as the Celery broker (the shared Redis only holds the
cache), a Celery worker — against a fake Stripe that can act and then hang, act and
then drop the connection, act and then answer 5xx, delay one chosen answer until it is
released, and a fake Zendesk (HTTPS on loopback) that counts the internal notes.
Beat is not run: its re-drive and reconciliation tasks are run in this process, at
once, where the deployment would wait for their period (see ``BEAT_TASK_WORDS``).

1. **Money moves once.** A refund whose POST to Stripe acts and then hangs past the
   client timeout / acts and then resets / acts and then answers 500 (retries with the
   same key are reset while the fault lasts) / is refused with 429 (nothing done); then
   the panel's retry of the same refund with a NEW idempotency key; then Stripe answers
   again and reconciliation runs. Counted at the fake Stripe: refunds beyond one per
   intended refund; and first attempts whose recorded status contradicts Stripe.
2. **History decisions under concurrency.** N refunds for one customer at once (distinct
   keys, Stripe at 0.3 s per refund) vs the same N one by one for a fresh customer:
   decisions that differ from the sequential ones (the 4th refund in 90 days goes to
   Manager review).
3. **The mirror never goes back in time.** Two webhook events for one subscription
   (updated: active, then deleted: canceled); the first event's re-read is answered
   from the state when it arrived (active) but only after the second event committed.
   Counted: mirror regressions, and contexts answering ``stale: false`` meanwhile.
4. **Side effects survive a broker blink.** Refunds with ticket ids and webhook
   deliveries at a steady pace while the broker is stopped for a few seconds and
   started again; then the re-drive. Counted at the fake Zendesk: notes never posted
   or posted twice; webhook deliveries answered non-2xx; events never processed.
5. **Hostile input.** Deeply nested JSON, 3 MB bodies, invalid UTF-8, unknown URLs and
   wrong methods under /api/, /webhooks/, the helpdesk entries and /demo/: 4xx/5xx
   answers that are not JSON, and 5xx answers. Webhooks signed an hour in the future,
   Zendesk signed-URL tokens replayed or valid for 10 years: how many were accepted.

Bounded in count and time, loopback only; every server it starts it stops.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench_faults \\
    REDIS_URL=redis://127.0.0.1:6379/14 .venv/bin/python bench/faults.py [--rounds 3]
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import json
import re
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from _common import (
    FakeStripe,
    FakeZendesk,
    LoopbackServer,
    RedisServer,
    Row,
    StripeRequest,
    agent_token,
    bench_setup,
    celery_worker,
    gunicorn,
    percentile,
    print_machine,
    print_table,
    self_signed_cert,
    stripe_event,
    stripe_signature,
)

# --- what this benchmark knows of the product beyond its HTTP API and tables --------------------
# Beat, compressed: every CELERY_BEAT_SCHEDULE entry whose name or task path contains one of
# these words is run in this process (task.apply()) whenever the scenario waits for beat.
BEAT_TASK_WORDS = ("reconcile", "outbox", "redrive", "re_drive", "requeue")
# Settings of *this* process only, so that reconciliation takes an open action over at once
# instead of after minutes (the deployment's period is what the operations guide states).
BEAT_SETTING_OVERRIDES: dict[str, Any] = {"BILLING_DESK_ACTION_STALE_SECONDS": 0}
# Stripe-shaped objects to clone customers from (the demo's Acme Corp and its catalog).
DEMO_OBJECTS = "billing_app.demo.seed.DemoSeeder"
# Action statuses that mean "not finished yet" (A1 adds outcome_unknown).
OPEN_STATUSES = ("executing", "outcome_unknown")
DONE_EVENT_STATUSES = ("processed", "ignored")
# What the baseline column shows (the figures of the tree before issue 12's fixes).
BASELINE = "main before issue 12 (037f989), --rounds 2, measured 2026-12-03"
LOG_FILES = ("gunicorn.log", "worker.log", "bench.log")
NOTE_MARKER = re.compile(r"Action id: ([0-9a-f-]{36})")

SECRET = "whsec_bench_faults"
ZENDESK_INSTALLATION_ID = "77"
GUNICORN_STRIPE_TIMEOUT = 1.5  # the panel's requests: a hang is noticed after 1.5 s
WORKER_STRIPE_TIMEOUT = 10.0  # webhook re-reads: a held answer (≤ 8 s) is not a timeout
FAULT_MODES = {
    "late": "act then hang",
    "act-reset": "act then reset",
    "act-500": "act then 500",
    "429": "429 before acting",  # the honest refusal: nothing was done, the retry must go through
}
ACTED = ("late", "act-reset", "act-500")
SEQUENTIAL_EXPECTED = "3 succeeded, the rest pending_approval"


# --- plumbing -------------------------------------------------------------------------------------


@dataclass
class Answer:
    status: int
    body: Any
    content_type: str

    @property
    def outcome(self) -> str:
        """``succeeded`` / ``pending_approval`` / … for a 2xx, else ``<http> <error code>``."""
        if 200 <= self.status < 300 and isinstance(self.body, dict):
            return str(self.body.get("status"))
        code = (self.body or {}).get("error", {}).get("code") if isinstance(self.body, dict) else ""
        return f"{self.status} {code or '-'}"


def http(session: Any, method: str, url: str, **kwargs: Any) -> Answer:
    import requests

    try:
        r = session.request(method, url, timeout=kwargs.pop("timeout", 60), **kwargs)
    except requests.RequestException as exc:
        return Answer(0, {"error": {"code": type(exc).__name__}}, "")
    try:
        body = r.json()
    except ValueError:
        body = None
    return Answer(r.status_code, body, r.headers.get("Content-Type", ""))


def raw_request(base: str, method: str, path: str, headers: dict[str, str], body: bytes) -> Answer:
    """Send a large body the way a patient client does: stop sending once the server answers.

    A server that refuses a body by its declared length answers (413) and closes before
    reading it; ``requests`` would report the broken pipe, not the answer. Here the body
    goes in 64 kB chunks, and an answer that arrives early is read and returned.
    """
    import select
    import socket
    from urllib.parse import urlsplit

    parts = urlsplit(base)
    head = [f"{method} {path} HTTP/1.1", f"Host: {parts.netloc}", "Connection: close"]
    head += [f"{k}: {v}" for k, v in headers.items()] + [f"Content-Length: {len(body)}", "", ""]
    received = b""
    with socket.create_connection((parts.hostname, parts.port), timeout=30) as sock:
        try:
            sock.sendall("\r\n".join(head).encode())
            for i in range(0, len(body), 65536):
                if select.select([sock], [], [], 0)[0]:
                    break  # the server has answered already
                sock.sendall(body[i : i + 65536])
        except OSError:
            pass  # it closed while we were sending: read what it said
        try:
            while chunk := sock.recv(65536):
                received += chunk
        except OSError:
            pass
    if not received.startswith(b"HTTP/"):
        return Answer(0, {"error": {"code": "no_answer"}}, "")
    header_block, _, payload = received.partition(b"\r\n\r\n")
    lines = header_block.decode("latin-1").split("\r\n")
    fields = {k.strip().lower(): v.strip() for k, _, v in (x.partition(":") for x in lines[1:])}
    try:
        parsed = json.loads(payload) if "json" in fields.get("content-type", "") else None
    except ValueError:
        parsed = None
    return Answer(int(lines[0].split()[1]), parsed, fields.get("content-type", ""))


def wait_for(check: Callable[[], bool], timeout: float, every: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        if check():
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(every)


def beat_once() -> list[str]:
    """Run beat's re-drive and reconciliation tasks once, here (see ``BEAT_TASK_WORDS``)."""
    import importlib

    from django.conf import settings
    from django.db import close_old_connections

    from billing_app.celery import app

    app.loader.import_default_modules()
    ran = []
    for name, entry in settings.CELERY_BEAT_SCHEDULE.items():
        path = entry["task"]
        if not any(w in name.lower() or w in path.lower() for w in BEAT_TASK_WORDS):
            continue
        task = app.tasks.get(path)
        if task is None:
            module, _, attr = path.rpartition(".")
            task = getattr(importlib.import_module(module), attr)
        result = task.apply(args=entry.get("args", ()), kwargs=entry.get("kwargs", {}))
        if result.failed():
            print(f"  beat task {name} failed: {result.result!r}")
        ran.append(name)
    close_old_connections()
    return ran


def log_to(path: Path) -> None:
    """Send this process's log lines (beat's tasks run here) to ``path``, not the terminal."""
    import logging

    stream = open(path, "a")  # noqa: SIM115 (open for the life of the process)
    loggers = [
        logging.getLogger(),
        *(logging.getLogger(n) for n in logging.root.manager.loggerDict),
    ]
    for logger in loggers:
        for handler in getattr(logger, "handlers", []):
            if isinstance(handler, logging.StreamHandler) and not isinstance(
                handler, logging.FileHandler
            ):
                handler.setStream(stream)


def settle(done: Callable[[], bool], seconds: float) -> tuple[bool, float]:
    """Run beat_once until ``done()`` or ``seconds`` pass; (settled, seconds taken)."""
    began = time.monotonic()
    while True:
        beat_once()
        if wait_for(done, 2.0, every=0.25):
            return True, time.monotonic() - began
        if time.monotonic() - began > seconds:
            return False, time.monotonic() - began


# --- Stripe-shaped customers cloned from the demo's Acme ------------------------------------------


class Objects:
    """Customers with one active subscription and ``charges`` succeeded charges of $100."""

    def __init__(self) -> None:
        import importlib

        from django.utils import timezone

        module, _, name = DEMO_OBJECTS.rpartition(".")
        built = getattr(importlib.import_module(module), name)(timezone.now()).build()
        self.catalog = [o for o in built if o.get("object") in {"product", "price"}]
        self.customer = next(o for o in built if o["id"] == "cus_sbx_acme")
        self.subscription = next(
            o
            for o in built
            if o.get("object") == "subscription"
            and o.get("customer") == "cus_sbx_acme"
            and o.get("status") == "active"
        )
        self.charge = next(
            o
            for o in built
            if o.get("object") == "charge"
            and o.get("customer") == "cus_sbx_acme"
            and o.get("status") == "succeeded"
        )
        pm = self.customer["invoice_settings"]["default_payment_method"]
        self.payment_method = pm if isinstance(pm, dict) else None

    def make(self, tag: str, *, charges: int = 1, amount: int = 10_000) -> list[dict[str, Any]]:
        def clone(obj: dict[str, Any]) -> dict[str, Any]:
            text = json.dumps(obj).replace("cus_sbx_acme", f"cus_flt_{tag}")
            return json.loads(text.replace("sbx_acme", f"flt_{tag}"))

        now = int(time.time())
        customer = clone(self.customer)
        customer.update(
            email=f"{tag}@faults.example",
            name=f"Faults {tag}",
            metadata={},
            created=now - 86400 * 400,
        )
        subscription = clone(self.subscription)
        subscription.update(latest_invoice=None, status="active", canceled_at=None, ended_at=None)
        made = [customer, subscription]
        if self.payment_method:
            made.append(clone(self.payment_method))
        for i in range(charges):
            charge = clone(self.charge)
            charge.update(
                id=f"ch_flt_{tag}_{i}",
                amount=amount,
                amount_captured=amount,
                amount_refunded=0,
                refunded=False,
                created=now - 3600 * (i + 1),
                payment_intent=None,
                balance_transaction=None,
                description=f"Bench charge {i}",
                refunds={
                    "object": "list",
                    "data": [],
                    "has_more": False,
                    "total_count": 0,
                    "url": f"/v1/charges/ch_flt_{tag}_{i}/refunds",
                },
            )
            charge.pop("invoice", None)
            made.append(charge)
        return made


# --- the deployment ---------------------------------------------------------------------------------


@dataclass
class Deployment:
    base: str
    token: str
    workspace: Any
    fake: FakeStripe
    helpdesk: FakeZendesk
    broker: RedisServer
    ticket_seq: list[int] = field(default_factory=lambda: [1000])
    lock: threading.Lock = field(default_factory=threading.Lock)

    def ticket(self) -> str:
        with self.lock:
            self.ticket_seq[0] += 1
            return str(self.ticket_seq[0])

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def mirror(self, session: Any, customer_id: str) -> None:
        """The panel's first look at a customer (mirrors it from Stripe)."""
        a = http(
            session,
            "GET",
            f"{self.base}/api/v1/customers/{customer_id}/context/",
            headers=self.headers,
        )
        if a.status != 200:
            raise SystemExit(f"could not load {customer_id}: HTTP {a.status} {a.body!r:.300}")

    def refund(
        self, session: Any, *, customer: str, charge: str, amount: int, key: str, ticket: str = ""
    ) -> Answer:
        body = {
            "kind": "issue_refund",
            "customer_id": customer,
            "ticket_id": ticket,
            "params": {
                "charge_id": charge,
                "amount": amount,
                "currency": "usd",
                "reason": "requested_by_customer",
            },
            "idempotency_key": key,
        }
        return http(
            session, "POST", f"{self.base}/api/v1/actions/", json=body, headers=self.headers
        )

    def deliver(
        self, session: Any, event: dict[str, Any], *, timestamp: int | None = None
    ) -> Answer:
        payload = json.dumps(event).encode()
        return http(
            session,
            "POST",
            f"{self.base}/webhooks/stripe/{self.workspace.slug}/",
            data=payload,
            headers={
                "Stripe-Signature": stripe_signature(SECRET, payload, timestamp),
                "Content-Type": "application/json",
            },
        )

    def refunds_by_charge(self) -> Counter[str]:
        with self.fake.lock:
            return Counter(
                str(o["charge"]) for o in self.fake.objects.values() if o.get("object") == "refund"
            )


class Faults:
    """The fake Stripe's per-request decisions, by charge (scenarios 1 and 2)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.act_faults: dict[str, str] = {}  # charge → mode of its first refund POST
        self.first_key: dict[str, str] = {}
        self.slow: set[str] = set()  # charges whose refunds take 0.3 s
        self.acted: set[str] = set()
        self.healed = False

    def __call__(self, req: StripeRequest) -> Any:
        if req.method != "POST" or req.path != "/v1/refunds":
            return None
        charge = req.form.get("charge", "")
        with self.lock:
            if charge in self.slow:
                return 0.3
            mode = self.act_faults.get(charge)
            if mode is None or self.healed:
                return None
            if req.idempotency_key != self.first_key.setdefault(charge, req.idempotency_key):
                return None  # another key: Stripe answers normally
            if mode == "429":
                return 429  # rate limited, every attempt with that key: nothing is done
            if charge in self.acted:
                # stripe-python's retries with the same key meet a Stripe still not answering.
                return "reset"
            self.acted.add(charge)
            return mode  # the first attempt acts and its answer is lost


# --- 1. money moves once ---------------------------------------------------------------------------


def scenario_money(d: Deployment, faults: Faults, objects: Objects, rounds: int, settle_s: float):
    import requests

    from billing_app.models import BillingAction

    units = [(mode, r) for r in range(rounds) for mode in FAULT_MODES]
    tags = {u: f"m{i}" for i, u in enumerate(units)}
    for tag in ["mctl", *tags.values()]:
        for obj in objects.make(tag):
            d.fake.objects[obj["id"]] = obj
    with requests.Session() as s:
        for tag in ["mctl", *tags.values()]:
            d.mirror(s, f"cus_flt_{tag}")
        # The honest case: Stripe answers; one refund, recorded succeeded.
        control = d.refund(
            s, customer="cus_flt_mctl", charge="ch_flt_mctl_0", amount=3000, key="mctl-a"
        )
    with faults.lock:
        for (mode, _), tag in tags.items():
            faults.act_faults[f"ch_flt_{tag}_0"] = mode

    def unit(u: tuple[str, int]) -> tuple[str, Answer, Answer]:
        tag = tags[u]
        ticket = d.ticket()
        with requests.Session() as s:
            a = d.refund(
                s,
                customer=f"cus_flt_{tag}",
                charge=f"ch_flt_{tag}_0",
                amount=3000,
                key=f"{tag}-a",
                ticket=ticket,
            )
            # The agent sees no success and clicks again: the panel sends a new key.
            b = d.refund(
                s,
                customer=f"cus_flt_{tag}",
                charge=f"ch_flt_{tag}_0",
                amount=3000,
                key=f"{tag}-b",
                ticket=ticket,
            )
        return u[0], a, b

    with ThreadPoolExecutor(max_workers=len(units)) as pool:
        results = list(pool.map(unit, units))
    with faults.lock:
        faults.healed = True  # Stripe answers again
    customers = [f"cus_flt_{t}" for t in tags.values()]

    def closed() -> bool:
        return not BillingAction.objects.filter(
            workspace=d.workspace, customer_id__in=customers, status__in=OPEN_STATUSES
        ).exists()

    settled, took = settle(closed, settle_s)
    refunds = d.refunds_by_charge()
    double = sum(max(0, refunds[f"ch_flt_{t}_0"] - 1) for t in tags.values())
    still_open = BillingAction.objects.filter(
        workspace=d.workspace, customer_id__in=customers, status__in=OPEN_STATUSES
    ).count()
    first_status = dict(
        BillingAction.objects.filter(
            workspace=d.workspace, idempotency_key__in=[f"{t}-a" for t in tags.values()]
        ).values_list("idempotency_key", "status")
    )
    # The audit trail against Stripe: a first attempt that acted must read succeeded; one that
    # was refused with 429 must not (its retry made the refund).
    untrue = sum(
        1
        for (mode, _), t in tags.items()
        if (first_status.get(f"{t}-a") == "succeeded") != (mode in ACTED)
    )
    by_mode: dict[str, Counter[str]] = {}
    for mode, a, b in results:
        c = by_mode.setdefault(mode, Counter())
        c[f"first {a.outcome}"] += 1
        c[f"retry {b.outcome}"] += 1
    return {
        "control": (control.outcome, refunds["ch_flt_mctl_0"]),
        "units": len(units),
        "double": double,
        "open": still_open,
        "untrue": untrue,
        "by_mode": by_mode,
        "settled": settled,
        "settle_s": took,
        "final": Counter(first_status.values()),
    }


# --- 2. decisions under concurrency ----------------------------------------------------------------


def scenario_concurrency(d: Deployment, faults: Faults, objects: Objects, rounds: int, n: int):
    import requests

    seq_all: Counter[str] = Counter()
    conc_all: Counter[str] = Counter()
    differing = 0
    sequential_example: list[str] = []
    for r in range(rounds):
        cc, sc = f"cc{r}", f"cs{r}"
        for tag in (cc, sc):
            for obj in objects.make(tag, charges=n):
                d.fake.objects[obj["id"]] = obj
            with faults.lock:
                faults.slow.update(f"ch_flt_{tag}_{i}" for i in range(n))
        with requests.Session() as s:
            d.mirror(s, f"cus_flt_{cc}")
            d.mirror(s, f"cus_flt_{sc}")
            sequential = [
                d.refund(
                    s,
                    customer=f"cus_flt_{sc}",
                    charge=f"ch_flt_{sc}_{i}",
                    amount=1000,
                    key=f"{sc}-{i}",
                    ticket=d.ticket(),
                ).outcome
                for i in range(n)
            ]
        barrier = threading.Barrier(n)

        def one(i: int, tag: str = cc, barrier: threading.Barrier = barrier) -> str:
            with requests.Session() as s:
                barrier.wait(timeout=30)
                return d.refund(
                    s,
                    customer=f"cus_flt_{tag}",
                    charge=f"ch_flt_{tag}_{i}",
                    amount=1000,
                    key=f"{tag}-{i}",
                    ticket=d.ticket(),
                ).outcome

        with ThreadPoolExecutor(max_workers=n) as pool:
            concurrent = list(pool.map(one, range(n)))
        seq_c, conc_c = Counter(sequential), Counter(concurrent)
        differing += sum((seq_c - conc_c).values())
        seq_all += seq_c
        conc_all += conc_c
        sequential_example = sequential_example or sequential
    return {
        "rounds": rounds,
        "n": n,
        "differing": differing,
        "sequential": seq_all,
        "concurrent": conc_all,
        "example": sequential_example,
    }


# --- 3. the mirror never goes back in time ----------------------------------------------------------


def scenario_mirror(d: Deployment, objects: Objects, rounds: int):
    import requests

    from billing_app.models import MirrorSubscription, StripeEvent

    def status_of(event_id: str) -> str:
        row = StripeEvent.objects.filter(workspace=d.workspace, event_id=event_id).first()
        return row.status if row else ""

    def trial(tag: str, *, delayed: bool) -> dict[str, Any]:
        for obj in objects.make(tag):
            d.fake.objects[obj["id"]] = obj
        sub_id = next(
            o["id"]
            for o in d.fake.objects.values()
            if o.get("object") == "subscription" and o.get("customer") == f"cus_flt_{tag}"
        )
        path = f"/v1/subscriptions/{sub_id}"
        out: dict[str, Any] = {"inconclusive": ""}
        with requests.Session() as s:
            d.mirror(s, f"cus_flt_{tag}")
            held = d.fake.hold("GET", path, timeout=8.0) if delayed else None
            now = int(time.time())
            active = copy.deepcopy(d.fake.objects[sub_id])
            first = stripe_event("customer.subscription.updated", active, created=now - 2)
            codes = [d.deliver(s, first).status]
            if held is not None and not held.reached.wait(20):
                held.release()
                out["inconclusive"] = "first re-read never reached Stripe"
            if held is None:
                wait_for(lambda: status_of(first["id"]) in DONE_EVENT_STATUSES, 20)
            with d.fake.lock:
                sub = d.fake.objects[sub_id]
                sub.update(status="canceled", canceled_at=now - 1, ended_at=now - 1)
                canceled = copy.deepcopy(sub)
            second = stripe_event("customer.subscription.deleted", canceled, created=now - 1)
            codes.append(d.deliver(s, second).status)
            second_done = wait_for(lambda: status_of(second["id"]) in DONE_EVENT_STATUSES, 8)
            if held is not None:
                held.release()
            wait_for(
                lambda: (
                    status_of(first["id"]) in (*DONE_EVENT_STATUSES, "failed")
                    and status_of(second["id"]) in (*DONE_EVENT_STATUSES, "failed")
                ),
                20,
            )
            time.sleep(0.3)
            mirrored = (
                MirrorSubscription.objects.filter(workspace=d.workspace, stripe_id=sub_id)
                .values_list("status", flat=True)
                .first()
            )
            context = http(
                s,
                "GET",
                f"{d.base}/api/v1/customers/cus_flt_{tag}/context/",
                headers=d.headers,
            )
        out.update(
            mirrored=mirrored,
            stale=(context.body or {}).get("stale") if isinstance(context.body, dict) else None,
            second_first=second_done,
            codes=codes,
            events=(status_of(first["id"]), status_of(second["id"])),
        )
        return out

    control = trial("sctl", delayed=False)
    trials = [trial(f"s{r}", delayed=True) for r in range(rounds)]
    regressions = sum(1 for t in trials if t["mirrored"] != "canceled")
    stale_lies = sum(1 for t in trials if t["mirrored"] != "canceled" and t["stale"] is False)
    return {
        "control": control,
        "trials": len(trials),
        "regressions": regressions,
        "stale_lies": stale_lies,
        "inconclusive": sum(1 for t in trials if t["inconclusive"]),
        "second_committed_first": sum(1 for t in trials if t["second_first"]),
        "non2xx": sum(1 for t in trials for c in t["codes"] if not 200 <= c < 300),
        "states": Counter(f"{t['mirrored']}/stale={t['stale']}" for t in trials),
    }


# --- 4. a broker blink -------------------------------------------------------------------------------


def scenario_broker(d: Deployment, objects: Objects, count: int, outage: float, settle_s: float):
    import requests

    from billing_app.models import StripeEvent

    tags = [f"b{j}" for j in range(count)]
    for tag in tags:
        for obj in objects.make(tag):
            d.fake.objects[obj["id"]] = obj
    with requests.Session() as s:
        for tag in tags:
            d.mirror(s, f"cus_flt_{tag}")
    window = outage + 3.0
    began = time.monotonic()
    lock = threading.Lock()
    action_answers: list[tuple[float, Answer]] = []
    webhook_answers: list[tuple[float, Answer]] = []
    event_ids: list[str] = []

    def submit(j: int) -> None:
        tag = tags[j]
        with requests.Session() as s:
            a = d.refund(
                s,
                customer=f"cus_flt_{tag}",
                charge=f"ch_flt_{tag}_0",
                amount=2000,
                key=f"{tag}-note",
                ticket=d.ticket(),
            )
            customer = copy.deepcopy(d.fake.objects[f"cus_flt_{tag}"])
            event = stripe_event("customer.updated", customer)
            w = d.deliver(s, event)
        with lock:
            action_answers.append((time.monotonic() - began, a))
            webhook_answers.append((time.monotonic() - began, w))
            event_ids.append(event["id"])

    with ThreadPoolExecutor(max_workers=8) as pool:
        futures = []
        stopped = restarted = False
        for j in range(count):
            at = began + window * j / count
            while time.monotonic() < at:
                now = time.monotonic() - began
                if not stopped and now >= 1.0:
                    d.broker.stop()
                    stopped = True
                    down_at = now
                if stopped and not restarted and now >= 1.0 + outage:
                    d.broker.start()
                    restarted = True
                    up_at = now
                time.sleep(0.02)
            futures.append(pool.submit(submit, j))
        if not stopped:
            d.broker.stop()
            down_at = time.monotonic() - began
            stopped = True
        if not restarted:
            wait_for(lambda: time.monotonic() - began >= down_at + outage, outage + 1)
            d.broker.start()
            up_at = time.monotonic() - began
        for f in futures:
            f.result()
    customers = [f"cus_flt_{t}" for t in tags]

    def noted() -> set[str]:
        return set(notes_posted(d)[0])

    def done() -> bool:
        expected = set(notes_due(d, customers))
        events_open = (
            StripeEvent.objects.filter(workspace=d.workspace, event_id__in=event_ids)
            .exclude(status__in=DONE_EVENT_STATUSES)
            .exists()
        )
        stored = StripeEvent.objects.filter(workspace=d.workspace, event_id__in=event_ids).count()
        return expected <= noted() and not events_open and stored == len(event_ids)

    settled, took = settle(done, settle_s)
    stored = StripeEvent.objects.filter(workspace=d.workspace, event_id__in=event_ids)
    in_window = [a for t, a in action_answers if down_at <= t <= up_at + 2]
    return {
        "actions": len(action_answers),
        "deliveries": len(webhook_answers),
        "down": (down_at, up_at),
        "actions_5xx": sum(1 for _, a in action_answers if a.status >= 500 or a.status == 0),
        "actions_in_outage": len(in_window),
        "webhook_non2xx": sum(1 for _, w in webhook_answers if not 200 <= w.status < 300),
        "webhook_codes": Counter(w.status for _, w in webhook_answers),
        "events_unprocessed": len(event_ids)
        - stored.filter(status__in=DONE_EVENT_STATUSES).count(),
        "action_codes": Counter(a.outcome for _, a in action_answers),
        "settled": settled,
        "settle_s": took,
    }


def notes_due(d: Deployment, customers: list[str] | None = None) -> dict[str, Any]:
    """Finished actions with a ticket that the product owes a note: ``{id: completed_at}``.

    Every succeeded action, and any failed one whose row says a note is (or was) due
    (``note_status`` not ``none``): the product notes successes; whether a failure is
    noted is its policy, counted apart (``failed_unnoted``), not a lost side effect.
    """
    from django.db.models import Q

    from billing_app.models import BillingAction

    rows = BillingAction.objects.filter(workspace=d.workspace).exclude(ticket_id="")
    if customers is not None:
        rows = rows.filter(customer_id__in=customers)
    due = rows.filter(
        Q(status="succeeded") | (Q(status="failed") & ~Q(note_status__in=("", "none")))
    )
    return {str(pk): done for pk, done in due.values_list("pk", "completed_at")}


def notes_posted(d: Deployment) -> tuple[Counter[str], dict[str, float]]:
    """Notes on the fake Zendesk per action id, and when each action's first one arrived."""
    posted: Counter[str] = Counter()
    first_post: dict[str, float] = {}
    for c in d.helpdesk.all_comments():
        m = NOTE_MARKER.search(c["body"])
        if m:
            posted[m.group(1)] += 1
            first_post[m.group(1)] = min(first_post.get(m.group(1), 1e12), c["posted_at"])
    return posted, first_post


def notes_count(d: Deployment) -> dict[str, Any]:
    """Every action owed a note has exactly one on its ticket (all scenarios)."""
    from billing_app.models import BillingAction

    posted, first_post = notes_posted(d)
    due = notes_due(d)
    delays = [first_post[pk] - done.timestamp() for pk, done in due.items() if pk in first_post]
    failed = BillingAction.objects.filter(workspace=d.workspace, status="failed").exclude(
        ticket_id=""
    )
    return {
        "expected": len(due),
        "never": sum(1 for pk in due if posted[pk] == 0),
        "twice": sum(1 for n in posted.values() if n > 1),
        "comments": len(d.helpdesk.all_comments()),
        "failed": failed.count(),
        "failed_unnoted": sum(
            1 for pk in failed.values_list("pk", flat=True) if not posted[str(pk)]
        ),
        "delay_p50": percentile(delays, 50) if delays else float("nan"),
        "delay_max": max(delays) if delays else float("nan"),
    }


# --- 5. hostile input --------------------------------------------------------------------------------


def scenario_hostile(d: Deployment, repeats: int):
    import requests

    slug = d.workspace.slug
    auth = d.headers
    nested = b"[" * 4000
    nested_obj = b'{"a":' * 4000 + b"1" + b"}" * 4000
    big = b'{"kind":"issue_refund","params":{"reason":"' + b"x" * (3 * 1024 * 1024) + b'"}}'
    bad_utf8 = b'{"kind":"issue_refund","customer_id":"\xff\xfe\xfd"}'
    js = {"Content-Type": "application/json"}
    cases: list[tuple[str, str, str, dict[str, Any]]] = [
        ("nested [ × 4000, freshdesk entry", "POST", "/freshdesk/session/", {"data": nested, "headers": js}),
        ("nested [ × 4000, actions", "POST", "/api/v1/actions/", {"data": nested, "headers": {**js, **auth}}),
        ("nested {…} × 4000, actions", "POST", "/api/v1/actions/", {"data": nested_obj, "headers": {**js, **auth}}),
        ("nested [ × 4000, webhook", "POST", f"/webhooks/stripe/{slug}/", {"data": nested, "headers": js}),
        ("3 MB body, actions", "POST", "/api/v1/actions/", {"data": big, "headers": {**js, **auth}}),
        ("3 MB body, webhook", "POST", f"/webhooks/stripe/{slug}/", {"data": big, "headers": {**js, "Stripe-Signature": "t=1,v1=00"}}),
        ("3 MB body, freshdesk entry", "POST", "/freshdesk/session/", {"data": big, "headers": js}),
        ("3 MB form, zendesk entry", "POST", "/zendesk/sidebar/", {"data": b"token=" + b"x" * (3 * 1024 * 1024), "headers": {"Content-Type": "application/x-www-form-urlencoded"}}),
        ("invalid UTF-8, actions", "POST", "/api/v1/actions/", {"data": bad_utf8, "headers": {**js, **auth}}),
        ("invalid UTF-8, freshdesk entry", "POST", "/freshdesk/session/", {"data": bad_utf8, "headers": js}),
        ("invalid UTF-8, webhook", "POST", f"/webhooks/stripe/{slug}/", {"data": bad_utf8, "headers": {**js, "Stripe-Signature": "t=1,v1=00"}}),
        ("unknown /api/ URL", "GET", "/api/v1/no-such-thing/", {"headers": auth}),
        ("unknown /api/ URL, no version", "GET", "/api/nothing", {}),
        ("unknown /webhooks/ URL", "POST", "/webhooks/nothing/", {"data": b"{}", "headers": js}),
        ("unknown workspace webhook", "POST", "/webhooks/stripe/no-such-workspace/", {"data": b"{}", "headers": js}),
        ("unknown /demo/ URL", "GET", "/demo/no-such-page/", {}),
        ("unknown /freshdesk/ URL", "GET", "/freshdesk/no-such-page/", {}),
        ("unknown /zendesk/ URL", "GET", "/zendesk/no-such-page/", {}),
        ("DELETE actions", "DELETE", "/api/v1/actions/", {"headers": auth}),
        ("PUT actions", "PUT", "/api/v1/actions/", {"data": b"{}", "headers": {**js, **auth}}),
        ("GET webhook", "GET", f"/webhooks/stripe/{slug}/", {}),
        ("PATCH freshdesk entry", "PATCH", "/freshdesk/session/", {"data": b"{}", "headers": js}),
        ("malformed zendesk token", "POST", "/zendesk/sidebar/", {"data": {"token": "not.a.jwt"}}),
    ]  # fmt: skip
    html: Counter[str] = Counter()
    fivexx: Counter[str] = Counter()
    seen: dict[str, Counter[str]] = {}
    sent = 0
    with requests.Session() as s:
        for _ in range(repeats):
            for label, method, path, kwargs in cases:
                data = kwargs.get("data")
                if isinstance(data, bytes) and len(data) > 1024 * 1024:
                    a = raw_request(d.base, method, path, kwargs.get("headers", {}), data)
                else:
                    a = http(s, method, f"{d.base}{path}", **kwargs)
                sent += 1
                seen.setdefault(label, Counter())[f"{a.status} {a.content_type.split(';')[0]}"] += 1
                if a.status >= 400 and "json" not in a.content_type:
                    html[label] += 1
                if a.status >= 500 or a.status == 0:
                    fivexx[label] += 1
        # A webhook signed an hour in the future (a captured, pre-signed delivery).
        future_accepted = 0
        for _ in range(repeats):
            customer = copy.deepcopy(d.fake.objects["cus_flt_mctl"])
            a = d.deliver(
                s, stripe_event("customer.updated", customer), timestamp=int(time.time()) + 3600
            )
            future_accepted += 200 <= a.status < 300
    return {
        "sent": sent,
        "html": html,
        "fivexx": fivexx,
        "seen": seen,
        "future": future_accepted,
        "repeats": repeats,
    }


def rsa_pair() -> tuple[str, str]:
    """The Zendesk app's key pair: it signs the entry tokens, the installation holds its public key."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    public = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    return private, public


def zendesk_tokens(d: Deployment, private_pem: str, repeats: int) -> dict[str, Any]:
    """Signed-URL entry tokens: one replayed after it opened the panel, one valid for 10 years."""
    import uuid

    import jwt
    import requests

    host = "127.0.0.1"

    def token(agent: int, lifetime: int) -> str:
        now = int(time.time())
        claims = {
            "iss": host,
            "aud": f"https://{host}/api/v2/apps/installations/{ZENDESK_INSTALLATION_ID}.json",
            "sub": f"https://{host}/api/v2/users/{agent}.json",
            "iat": now,
            "exp": now + lifetime,
            "jti": uuid.uuid4().hex,
            "context": {"product": "support", "location": "ticket_sidebar"},
        }
        return jwt.encode(claims, private_pem, algorithm="RS256")

    out: dict[str, Any] = {"replayed": 0, "long": 0, "inconclusive": 0, "first": Counter()}
    with requests.Session() as s:
        for i in range(repeats):
            t = token(9001 + i, 60)
            url = f"{d.base}/zendesk/sidebar/?origin=https://{host}&app_guid=bench"
            first = http(s, "POST", url, data={"token": t})
            out["first"][first.status] += 1
            if first.status != 200:
                out["inconclusive"] += 1
                continue
            again = http(s, "POST", url, data={"token": t})
            out["replayed"] += 200 <= again.status < 300
            long = http(s, "POST", url, data={"token": token(9101 + i, 10 * 365 * 86400)})
            out["long"] += 200 <= long.status < 300
    return out


# --- main ---------------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3, help="repetitions of each fault (1–50)")
    parser.add_argument("--concurrent", type=int, default=8, help="refunds at once in scenario 2")
    parser.add_argument("--outage", type=float, default=5.0, help="seconds the broker is down")
    parser.add_argument(
        "--settle", type=float, default=75.0, help="longest wait for the re-drive (seconds)"
    )
    parser.add_argument(
        "--broker-no-persistence",
        action="store_true",
        help="the broker loses its queue when stopped (no append-only file)",
    )
    parser.add_argument(
        "--logs", default="", help="directory for the product's logs (default: a new temporary one)"
    )
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--threads", type=int, default=4)
    args = parser.parse_args()
    rounds = max(1, min(args.rounds, 50))
    concurrent = max(4, min(args.concurrent, 50))
    outage = max(1.0, min(args.outage, 60.0))
    settle_s = max(5.0, min(args.settle, 300.0))
    started = time.monotonic()

    import os

    tmp = tempfile.TemporaryDirectory(prefix="bench-faults-")
    certfile, keyfile = self_signed_cert(tmp.name)
    broker = RedisServer(persistence=not args.broker_no_persistence)
    broker.start()
    try:
        os.environ.update(
            CELERY_BROKER_URL=broker.url,
            STRIPE_TIMEOUT_SECONDS="5",
            STRIPE_MAX_NETWORK_RETRIES="2",
            REQUESTS_CA_BUNDLE=certfile,
            LOG_LEVEL=os.environ.get("LOG_LEVEL", "WARNING"),
        )
        env = bench_setup()
        logs = Path(args.logs or tempfile.mkdtemp(prefix="bench-faults-logs-"))
        logs.mkdir(parents=True, exist_ok=True)
        for name in LOG_FILES:  # this run's lines only
            (logs / name).unlink(missing_ok=True)
        log_to(logs / "bench.log")
        print_machine()
        print(f"logs: {logs}/ (gunicorn.log, worker.log, bench.log: beat run in this process)")
        args.logs = str(logs)
        run(args, env, broker, (certfile, keyfile), rounds, concurrent, outage, settle_s, started)
    finally:
        broker.stop()
        tmp.cleanup()


def run(args, env, broker, tls, rounds, concurrent, outage, settle_s, started) -> None:  # type: ignore[no-untyped-def]
    from django.conf import settings

    from billing_app.services.workspaces import installation_add, workspace_create
    from helpdesk_connectors.models import Installation

    for name, value in BEAT_SETTING_OVERRIDES.items():
        setattr(settings, name, value)
    objects = Objects()
    faults = Faults()
    fake = FakeStripe(objects.catalog, fault_for=faults, stall=GUNICORN_STRIPE_TIMEOUT + 1.0)
    helpdesk = FakeZendesk()
    try:  # on 443 the fake Zendesk has a domain of its own (127.0.0.1): signed-URL entry too
        zd_server = LoopbackServer(helpdesk.handle, tls=tls, port=443)
    except OSError:
        zd_server = LoopbackServer(helpdesk.handle, tls=tls)
    with LoopbackServer(fake.handle) as stripe, zd_server as zd:
        settings.STRIPE_API_BASE = stripe.url
        workspace = workspace_create(
            slug="bench-faults",
            name="Bench Faults",
            provider="stripe",
            stripe_secret_key="sk_test_bench_faults",
            stripe_webhook_secret=SECRET,
        )
        installation = installation_add(
            workspace=workspace,
            connector="zendesk",
            domain="bench-faults.zendesk.com",
            app_id="1",
            api_email="bench@faults.example",
            api_token="bench-token",
        )
        # The connector builds https://<domain>: point it at the fake on its loopback port.
        private_pem, public_pem = rsa_pair()
        Installation.objects.filter(pk=installation.pk).update(
            domain="127.0.0.1" if zd.port == 443 else f"127.0.0.1:{zd.port}",
            installation_id=ZENDESK_INSTALLATION_ID,
            public_key=public_pem,
        )
        token = agent_token(workspace, "manager", "bench-faults-manager")
        common = dict(
            STRIPE_API_BASE=stripe.url,
            STRIPE_MAX_NETWORK_RETRIES="2",
            CELERY_BROKER_URL=broker.url,
            REQUESTS_CA_BUNDLE=env["REQUESTS_CA_BUNDLE"],
        )
        web_env = {**env, **common, "STRIPE_TIMEOUT_SECONDS": str(GUNICORN_STRIPE_TIMEOUT)}
        worker_env = {**env, **common, "STRIPE_TIMEOUT_SECONDS": str(WORKER_STRIPE_TIMEOUT)}
        logs = Path(args.logs)
        with (
            celery_worker(worker_env, concurrency=3, log=logs / "worker.log"),
            gunicorn(
                web_env, workers=args.workers, threads=args.threads, log=logs / "gunicorn.log"
            ) as base,
        ):
            d = Deployment(base, token, workspace, fake, helpdesk, broker)
            print(
                f"gunicorn {base}, fake Stripe {stripe.url}, fake Zendesk {zd.url}, broker {broker.url}"
            )
            t = time.monotonic()
            money = scenario_money(d, faults, objects, rounds, settle_s)
            print(f"1. money once: {time.monotonic() - t:.0f} s")
            t = time.monotonic()
            conc = scenario_concurrency(d, faults, objects, rounds, concurrent)
            print(f"2. concurrency: {time.monotonic() - t:.0f} s")
            t = time.monotonic()
            mirror = scenario_mirror(d, objects, rounds)
            print(f"3. mirror ordering: {time.monotonic() - t:.0f} s")
            t = time.monotonic()
            blink = scenario_broker(d, objects, max(6, 4 * rounds), outage, settle_s)
            print(f"4. broker blink: {time.monotonic() - t:.0f} s")
            t = time.monotonic()
            hostile = scenario_hostile(d, rounds)
            hostile["tokens"] = zendesk_tokens(d, private_pem, rounds) if zd.port == 443 else None
            print(f"5. hostile input: {time.monotonic() - t:.0f} s")
            settle(lambda: notes_count(d)["never"] == 0, settle_s)
            time.sleep(1.0)  # a duplicate post still in flight shows up now
            notes = notes_count(d)
    lines = tracebacks = 0
    for name in LOG_FILES:
        with contextlib.suppress(OSError), open(logs / name, errors="replace") as f:
            for line in f:
                lines += 1
                tracebacks += line.startswith("Traceback")
                # A task the worker does not know is discarded: its side effect waits for beat.
                notes["unregistered"] = notes.get("unregistered", 0) + (
                    "Received unregistered task" in line
                )
    report(
        money, conc, mirror, blink, hostile, notes, rounds, concurrent, outage, started,
        (lines, tracebacks),
    )  # fmt: skip


def report(
    money, conc, mirror, blink, hostile, notes, rounds, concurrent, outage, started, logged
) -> None:  # type: ignore[no-untyped-def]
    ctl_outcome, ctl_refunds = money["control"]
    c = mirror["control"]
    print("\n## The honest case (no fault injected)\n")
    print(f"- refund, Stripe answering: {ctl_outcome}, {ctl_refunds} refund at Stripe")
    print(
        f"- {concurrent} refunds one by one for one customer: {dict(Counter(conc['example']))} "
        f"(expected: {SEQUENTIAL_EXPECTED})"
    )
    print(
        f"- subscription updated then deleted, in order, no delay: mirror {c['mirrored']}, "
        f"stale={c['stale']}, deliveries {c['codes']}"
    )
    print("\n## What happened\n")
    for mode, counts in money["by_mode"].items():
        print(f"- {FAULT_MODES[mode]} ×{rounds}: {dict(counts)}")
    print(
        f"- after Stripe answered again and reconciliation ran ({money['settle_s']:.0f} s, "
        f"{'settled' if money['settled'] else 'NOT settled'}): first actions {dict(money['final'])}"
    )
    print(
        f"- {concurrent} at once ×{rounds}: {dict(conc['concurrent'])}; "
        f"one by one: {dict(conc['sequential'])}"
    )
    print(
        f"- delayed re-read ×{mirror['trials']}: {dict(mirror['states'])}; the newer event "
        f"committed while the older read was held in {mirror['second_committed_first']} of "
        f"{mirror['trials']}; inconclusive {mirror['inconclusive']}"
    )
    down, up = blink["down"]
    print(
        f"- broker down from {down:.1f} s to {up:.1f} s: {blink['actions']} refunds "
        f"{dict(blink['action_codes'])}, {blink['deliveries']} webhook deliveries "
        f"{dict(blink['webhook_codes'])}; re-drive {blink['settle_s']:.0f} s "
        f"({'settled' if blink['settled'] else 'NOT settled'})"
    )
    print(
        f"- notes: {notes['expected']} actions owed a note, "
        f"{notes['comments']} comments on the fake Zendesk"
    )
    print(f"- hostile input: {hostile['sent']} requests ({hostile['repeats']} × each case)")
    for label, seen in hostile["seen"].items():
        bad = (
            " ← "
            + ("HTML" if hostile["html"][label] else "")
            + (" 5xx" if hostile["fivexx"][label] else "")
        )
        print(
            f"    {label}: {dict(seen)}{bad if hostile['html'][label] or hostile['fivexx'][label] else ''}"
        )

    def zero(figure: str, value: int, baseline: str, of: str = "") -> Row:
        return Row(figure, f"{value}{of}", "0", baseline, value == 0)

    rows = [
        zero(
            f"money moved twice: refunds beyond one per intended refund ({money['units']} faulty "
            "refunds retried with a new key, then reconciled)",
            money["double"],
            "6 of 8 (every one that acted)",
            f" of {money['units']}",
        ),
        zero(
            "unknown outcomes still open after reconciliation", money["open"], "0 (recorded failed)"
        ),
        zero(
            "first attempts whose recorded status contradicts Stripe (acted: not succeeded; "
            "429: succeeded)",
            money["untrue"],
            "6 of 8 (acted, recorded failed)",
        ),
        zero(
            f"decisions differing from sequential ({concurrent} at once × {conc['rounds']})",
            conc["differing"],
            "6–10 (12–16 of 16 executed, 6 should)",
        ),
        zero(
            f"mirror regressions (older re-read held until a newer one committed, × {mirror['trials']})",
            mirror["regressions"],
            "2 of 2",
        ),
        zero("contexts answering stale: false while superseded", mirror["stale_lies"], "2 of 2"),
        zero(
            f"lost side effects: notes never posted ({notes['expected']} actions owed one)",
            notes["never"],
            "5 of 34 (pending for good)",
        ),
        zero("lost side effects: notes posted twice", notes["twice"], "0"),
        zero(
            "tasks the worker discarded as unregistered (worker.log)",
            notes.get("unregistered", 0),
            "0",
        ),
        Row(
            "failed actions with a ticket and no note (DESIGN: every action is noted; policy)",
            f"{notes['failed_unnoted']} of {notes['failed']}",
            "",
            "6–8 of 6–8",
        ),
        Row(
            "note posted after its action finished — median / slowest",
            f"{notes['delay_p50']:.1f} s / {notes['delay_max']:.0f} s",
            "",
            "0.3 s / 1 s (of those posted)",
        ),
        zero(
            f"webhook deliveries answered non-2xx ({blink['deliveries']}, broker down {outage:.0f} s)",
            blink["webhook_non2xx"] + mirror["non2xx"],
            "4 of 8 (HTML 500)",
        ),
        zero(
            "webhook events not processed after the re-drive",
            blink["events_unprocessed"],
            "4 of 8 (requeued after 10 min)",
        ),
        zero(
            f"refund submissions answered 5xx around the outage ({blink['actions']})",
            blink["actions_5xx"],
            "0",
        ),
        zero(
            f"HTML error bodies (hostile input, {hostile['sent']} requests)",
            sum(hostile["html"].values()),
            "28 of 46",
        ),
        zero(
            "5xx answers (hostile input)",
            sum(hostile["fivexx"].values()),
            "6 of 46 (RecursionError)",
        ),
        zero(
            f"webhooks signed 1 h in the future accepted (of {hostile['repeats']})",
            hostile["future"],
            "2 of 2",
        ),
    ]
    rows.append(
        Row(
            "log lines the product wrote during the run (of which tracebacks)",
            f"{logged[0]} ({logged[1]})",
            "",
            "~1,970 (59)",
        )
    )
    tokens = hostile.get("tokens")
    if tokens is None:
        rows.append(Row("Zendesk entry tokens", "not measured (port 443 not free)", "", ""))
    else:
        usable = hostile["repeats"] - tokens["inconclusive"]
        if tokens["inconclusive"]:
            print(f"- Zendesk entry: first use answered {dict(tokens['first'])}")
        rows += [
            zero(
                f"Zendesk entry tokens accepted twice (of {usable} that opened the panel)",
                tokens["replayed"],
                "2 of 2",
            ),
            zero(
                f"Zendesk entry tokens valid for 10 years accepted (of {usable})",
                tokens["long"],
                "2 of 2",
            ),
        ]
        if usable == 0:
            rows.append(
                Row("Zendesk entry: no token opened the panel", "inconclusive", "", "", False)
            )
    print(f"baseline: {BASELINE}")
    ok = print_table("Faults (issue 12): every counter must be 0", rows)
    print(f"run took {time.monotonic() - started:.0f} s")
    raise SystemExit(0 if ok else 1)


if __name__ == "__main__":
    main()
