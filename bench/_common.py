"""Shared helpers for the benchmarks in ``bench/`` (see bench/README.md).

Every benchmark:

* runs against PostgreSQL and Redis on this machine only (loopback), and refuses a
  database whose name contains neither ``bench`` nor ``test`` — the schema is
  dropped and rebuilt from the models at the start of each run;
* keeps its load bounded in count and time and stops by itself;
* prints its figures as a ``figure | measured | target | baseline`` table.

Defaults: ``DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench`` and
``REDIS_URL=redis://127.0.0.1:6379/5`` (a Redis database of its own, flushed at start).
"""

from __future__ import annotations

import contextlib
import http.server
import json
import math
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/bench"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/5"
LOOPBACK = "127.0.0.1"


# --- environment ---------------------------------------------------------------------------------


def _db_name(url: str) -> str:
    return url.rsplit("/", 1)[-1].split("?", 1)[0]


def _check_loopback(url: str, what: str) -> None:
    from urllib.parse import urlsplit

    host = urlsplit(url).hostname or ""
    if host not in {"127.0.0.1", "localhost", "::1"}:
        sys.exit(f"Refusing to run: {what} must be on this machine (127.0.0.1), not {host!r}.")


def bench_setup(*, redis: bool = True, reset: bool = True) -> dict[str, str]:
    """Check and export the environment, create the database if needed, set up Django.

    Returns the environment a gunicorn started by the benchmark must inherit.
    """
    url = os.environ.get("DATABASE_URL") or DEFAULT_DATABASE_URL
    if not url.startswith(("postgres://", "postgresql://")):
        sys.exit("DATABASE_URL must point at PostgreSQL (postgres://…/bench).")
    name = _db_name(url)
    if "bench" not in name and "test" not in name:
        sys.exit(
            f"Refusing to run against database {name!r}: its name must contain 'bench' or 'test'."
        )
    _check_loopback(url, "DATABASE_URL")
    env = {
        "DATABASE_URL": url,
        "DJANGO_SETTINGS_MODULE": "billing_app.settings",
        "DJANGO_DEBUG": "0",  # production settings: no query log, no debug toolbar-like costs
        "DJANGO_SECRET_KEY": os.environ.get("DJANGO_SECRET_KEY") or "bench-" + os.urandom(16).hex(),
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
        "BILLING_DESK_ENCRYPTION_KEYS": os.environ.get("BILLING_DESK_ENCRYPTION_KEYS")
        or _fernet_key(),
        "BILLING_DESK_TESTING": "0",
        # The benches run the demo's sandbox workspace as their stand-in billing system.
        "BILLING_DESK_SANDBOX_ENABLED": "1",
        "LOG_LEVEL": os.environ.get("LOG_LEVEL", "WARNING"),
    }
    if redis:
        redis_url = os.environ.get("REDIS_URL") or DEFAULT_REDIS_URL
        _check_loopback(redis_url, "REDIS_URL")
        env["REDIS_URL"] = redis_url
    os.environ.update(env)
    _create_database(url, name)
    if redis:
        _flush_redis(env["REDIS_URL"])
    import django

    django.setup()
    if reset:
        reset_schema()
    return dict(os.environ)


def _fernet_key() -> str:
    from cryptography.fernet import Fernet

    return Fernet.generate_key().decode()


def _create_database(url: str, name: str) -> None:
    import psycopg

    admin_url = url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{name}"')  # the name was checked above


def _flush_redis(url: str) -> None:
    import redis

    redis.Redis.from_url(url).flushdb()


def reset_schema() -> None:
    """Drop everything and create the tables straight from the models (no migrations)."""
    from django.apps import apps
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public;")
    settings.MIGRATION_MODULES = {app.label: None for app in apps.get_app_configs()}
    call_command("migrate", run_syncdb=True, verbosity=0, interactive=False)


def machine() -> dict[str, str]:
    """What the figures were measured on."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        pg = cursor.fetchone()[0]
    mem = ""
    with contextlib.suppress(OSError), open("/proc/meminfo") as f:
        kb = int(f.readline().split()[1])
        mem = f"{kb / 1024 / 1024:.1f} GiB"
    return {
        "cpus": str(os.cpu_count()),
        "memory": mem,
        "python": sys.version.split()[0],
        "postgresql": pg.split()[0],
    }


def print_machine() -> None:
    m = machine()
    print(
        f"machine: {m['cpus']} cores, {m['memory']}, Python {m['python']}, "
        f"PostgreSQL {m['postgresql']}"
    )


# --- workspaces and agents -----------------------------------------------------------------------


def demo_workspace() -> Any:
    """The demo sandbox workspace with its seeded customers (Acme Corp and the scenarios)."""
    from billing_app.demo.seed import demo_seed

    return demo_seed(admin_password="bench-" + os.urandom(6).hex())


def agent_token(workspace: Any, role: str = "manager", agent_id: str = "bench-agent") -> str:
    """An app session token for an agent of ``workspace`` (signed in through the demo connector)."""
    from billing_app.catalog import Role
    from billing_app.services.identity import agent_sign_in
    from helpdesk_connectors.base import AgentProfile, HelpdeskIdentity

    link = workspace.installation_links.select_related("installation").first()
    identity = HelpdeskIdentity(
        installation=link.installation,
        agent=AgentProfile(
            agent_id=agent_id,
            name=f"Bench {agent_id}",
            email=f"{agent_id}@agents.example",
            helpdesk_role="agent",
        ),
    )
    _, minted = agent_sign_in(identity=identity, workspace=workspace, role_override=Role(role))
    return minted.token


def stripe_workspace(
    *, slug: str, api_base: str, webhook_secret: str = "whsec_bench_secret"
) -> Any:
    """A workspace connected to "Stripe" — the fake Stripe at ``api_base`` on loopback."""
    from django.conf import settings

    from billing_app.services.workspaces import installation_add, workspace_create

    settings.STRIPE_API_BASE = api_base
    workspace = workspace_create(
        slug=slug,
        name=slug.replace("-", " ").title(),
        provider="stripe",
        stripe_secret_key="sk_test_bench_" + os.urandom(8).hex(),
        stripe_webhook_secret=webhook_secret,
    )
    installation_add(workspace=workspace, connector="demo", domain=f"{slug}.demo.local")
    return workspace


def live_panel_load(workspace: Any, customer_id: str) -> Any:
    """One panel open as a live sidebar without a mirror would do it — the "no mirror"
    baseline: the customer's Stripe reads at once (the provider's one concurrent wave,
    as any sensible sidebar calls Stripe), then the panel's context built from the
    answers (stored first only because the context is built from mirror rows).
    Returns the context."""
    from django.utils import timezone

    from billing_app.providers.stripe.provider import StripeProvider
    from billing_app.selectors.context import customer_context
    from billing_app.services.refresh import customer_bundle_store

    read_at = timezone.now()
    bundle = StripeProvider(workspace).fetch_customer_bundle(customer_id)
    customer = customer_bundle_store(
        workspace=workspace, customer_id=customer_id, bundle=bundle, read_at=read_at
    )
    return customer_context(workspace=workspace, customer=customer)


# --- statistics and tables -----------------------------------------------------------------------


def percentile(values: Sequence[float], pct: float) -> float:
    """Linear-interpolated percentile (the same definition as numpy's default)."""
    if not values:
        return math.nan
    ordered = sorted(values)
    if len(ordered) == 1:
        return float(ordered[0])
    rank = (len(ordered) - 1) * pct / 100
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return float(ordered[low] + (ordered[high] - ordered[low]) * (rank - low))


@dataclass
class Row:
    figure: str
    measured: str
    target: str = ""
    baseline: str = ""
    ok: bool | None = None


def ms(value: float) -> str:
    return f"{value:.1f} ms" if value < 100 else f"{value:.0f} ms"


def print_table(title: str, rows: Sequence[Row]) -> bool:
    """Print ``figure | measured | target | baseline | met``; return whether every target held."""
    header = ("figure", "measured", "target", "baseline", "met")
    cells = [
        (r.figure, r.measured, r.target or "—", r.baseline or "—", _verdict(r.ok)) for r in rows
    ]
    widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(header)]
    print(f"\n## {title}\n")
    print("| " + " | ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)) + " |")
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for c in cells:
        print("| " + " | ".join(v.ljust(w) for v, w in zip(c, widths, strict=True)) + " |")
    print()
    return all(r.ok is not False for r in rows)


def _verdict(ok: bool | None) -> str:
    return "—" if ok is None else ("yes" if ok else "NO")


# --- servers on loopback -------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((LOOPBACK, 0))
        return int(s.getsockname()[1])


def group_cpu_seconds(pgid: int) -> float:
    """User + system CPU seconds of every live process in process group ``pgid`` (Linux)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid:  # fields after "(comm)": state ppid pgrp ...
            total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / tick


class Server(str):
    """A base URL that also knows the process group of the server behind it."""

    pgid: int


@contextlib.contextmanager
def gunicorn(
    env: dict[str, str],
    *,
    workers: int = 4,
    threads: int = 4,
    timeout: float = 30,
    log: str | Path | None = None,
) -> Iterator[Server]:
    """Run ``billing_app.wsgi`` under gunicorn on a free loopback port; yield its base URL.

    ``log``: a file for gunicorn's stdout and stderr (the product's log lines), else the
    benchmark's own.
    """
    import requests

    port = free_port()
    cmd = [
        str(ROOT / ".venv" / "bin" / "gunicorn"),
        "billing_app.wsgi",
        "-w",
        str(workers),
        "-k",
        "gthread",
        "--threads",
        str(threads),
        "-b",
        f"{LOOPBACK}:{port}",
        "--log-level",
        "warning",
        "--timeout",
        "60",
    ]
    out = open(log, "ab") if log else None  # noqa: SIM115 (closed in finally)
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, start_new_session=True, stdout=out, stderr=out)
    base = f"http://{LOOPBACK}:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"gunicorn exited with {proc.returncode}")
            try:
                if requests.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("gunicorn did not answer /healthz in time")
            time.sleep(0.2)
        server = Server(base)
        server.pgid = proc.pid
        yield server
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)  # the group of the gunicorn we started
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        if out is not None:
            out.close()


class _QuietHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body leave in one segment: unbuffered writes with Nagle on meet the
    # client's delayed ACK and add ~40 ms to every answer, which is not Stripe's latency.
    wbufsize = 1 << 16
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _Server(http.server.ThreadingHTTPServer):
    # socketserver's default listen backlog is 5: a wave of concurrent connections beyond
    # it loses SYNs, which the client retransmits a second later — a delay Stripe does
    # not have.
    request_queue_size = 128


class LoopbackServer:
    """A threaded HTTP server on 127.0.0.1 whose requests go to ``handle(method, path, headers, body)``.

    ``handle`` returns ``(status, headers, body_bytes)``; it may sleep (simulated latency)
    or return ``None`` to drop the connection (a timeout / reset as the client sees it).
    ``tls=(certfile, keyfile)`` serves HTTPS (see ``self_signed_cert``); ``port`` 0 is a
    free one.
    """

    def __init__(
        self,
        handle: Callable[[str, str, dict[str, str], bytes], tuple[int, dict, bytes] | None],
        *,
        tls: tuple[str, str] | None = None,
        port: int = 0,
    ):
        outer = self

        class Handler(_QuietHandler):
            def _any(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                headers = {k.lower(): v for k, v in self.headers.items()}
                answer = outer.handle(self.command, self.path, headers, body)
                if answer is None:
                    self.close_connection = True
                    with contextlib.suppress(OSError):
                        self.connection.shutdown(socket.SHUT_RDWR)
                    return
                status, extra, payload = answer
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                for k, v in extra.items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_DELETE = do_PUT = do_PATCH = _any

        self.handle = handle
        self.server = _Server((LOOPBACK, port), Handler)
        self.server.daemon_threads = True
        scheme = "http"
        if tls is not None:  # (certfile, keyfile): HTTPS for clients that only speak https://
            import ssl

            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(*tls)
            self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
            scheme = "https"
        self.port = int(self.server.server_address[1])
        self.url = f"{scheme}://{LOOPBACK}:{self.port}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> LoopbackServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def json_bytes(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def self_signed_cert(directory: str | Path, host: str = LOOPBACK) -> tuple[str, str]:
    """A throw-away certificate and key for ``host`` (an IP address), valid for one day.

    Returns ``(certfile, keyfile)``; point ``REQUESTS_CA_BUNDLE`` at the certfile so the
    product's ``requests`` calls trust a loopback HTTPS fake (the connectors only build
    ``https://`` URLs).
    """
    import datetime as dt
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(host))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    certfile, keyfile = Path(directory) / "fake-helpdesk.crt", Path(directory) / "fake-helpdesk.key"
    certfile.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    keyfile.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return str(certfile), str(keyfile)


class FakeZendesk:
    """The part of Zendesk's REST API that posting notes uses, in memory (serve it over TLS).

    * ``PUT /api/v2/tickets/{id}.json`` with ``{"ticket": {"comment": {...}}}`` adds a
      comment and answers with the audit (its ``Comment`` event carries the comment id);
    * ``GET /api/v2/tickets/{id}/comments.json`` lists the ticket's comments, newest first
      (what a de-duplicating poster reads before posting again);
    * ``GET /api/v2/users/{id}.json`` (an active agent) and its group memberships (none),
      for the signed-URL entry;
    * ``down`` answers 503 to everything while set.

    ``comments`` keeps every comment posted, so a benchmark can count notes per action.
    """

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.comments: dict[str, list[dict[str, Any]]] = {}
        self.down = False
        self._seq = 0

    def handle(self, method: str, raw_path: str, headers: dict[str, str], body: bytes):
        import re
        from urllib.parse import urlsplit

        path = urlsplit(raw_path).path
        if self.down:
            return 503, {"Retry-After": "1"}, json_bytes({"error": "unavailable"})
        put = re.fullmatch(r"/api/v2/tickets/(\d+)\.json", path)
        if method == "PUT" and put:
            try:
                comment = json.loads(body)["ticket"]["comment"]
            except (ValueError, KeyError, TypeError):
                return 400, {}, json_bytes({"error": "RecordInvalid"})
            with self.lock:
                self._seq += 1
                stored = {
                    "id": self._seq,
                    "type": "Comment",
                    "body": str(comment.get("body") or ""),
                    "plain_body": str(comment.get("body") or ""),
                    "html_body": f"<p>{comment.get('body') or ''}</p>",
                    "public": bool(comment.get("public", True)),
                    "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                    "posted_at": time.time(),  # not Zendesk's: for the benchmark's delays
                }
                self.comments.setdefault(put.group(1), []).append(stored)
            audit = {"id": 10_000 + stored["id"], "events": [stored]}
            return 200, {}, json_bytes({"ticket": {"id": int(put.group(1))}, "audit": audit})
        user = re.fullmatch(r"/api/v2/users/(\d+)\.json", path)
        if method == "GET" and user:
            return (
                200,
                {},
                json_bytes(
                    {
                        "user": {
                            "id": int(user.group(1)),
                            "name": f"Bench Agent {user.group(1)}",
                            "email": f"agent{user.group(1)}@faults.example",
                            "role": "agent",
                            "role_type": None,
                            "custom_role_id": None,
                            "active": True,
                            "suspended": False,
                        }
                    }
                ),
            )
        if method == "GET" and re.fullmatch(r"/api/v2/users/\d+/group_memberships\.json", path):
            return 200, {}, json_bytes({"group_memberships": [], "groups": [], "next_page": None})
        listed = re.fullmatch(r"/api/v2/tickets/(\d+)/comments\.json", path)
        if method == "GET" and listed:
            with self.lock:
                found = list(reversed(self.comments.get(listed.group(1), [])))
            return (
                200,
                {},
                json_bytes(
                    {
                        "comments": found[:100],
                        "next_page": None,
                        "previous_page": None,
                        "count": len(found),
                    }
                ),
            )
        return 404, {}, json_bytes({"error": "InvalidEndpoint", "description": "Not found"})

    def all_comments(self) -> list[dict[str, Any]]:
        with self.lock:
            return [c for comments in self.comments.values() for c in comments]


class RedisServer:
    """A redis-server of the benchmark's own on a free loopback port, to stop and start at will.

    Never the shared Redis: a broker outage is simulated by stopping this one.
    ``persistence=True`` keeps an append-only file (fsync every write) in a temporary
    directory, so a restart keeps what was queued — a broker configured as the
    operations guide asks; ``False`` loses the queue on every stop.
    """

    def __init__(self, *, persistence: bool = True) -> None:
        import tempfile

        self.port = free_port()
        self.url = f"redis://{LOOPBACK}:{self.port}/0"
        self.persistence = persistence
        self._dir = tempfile.TemporaryDirectory(prefix="bench-redis-")
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 10) -> None:
        import redis

        cmd = [
            "redis-server",
            "--port", str(self.port),
            "--bind", LOOPBACK,
            "--dir", self._dir.name,
            "--save", "",
            "--appendonly", "yes" if self.persistence else "no",
            "--appendfsync", "always",
            "--protected-mode", "yes",
            "--loglevel", "warning",
        ]  # fmt: skip
        self._proc = subprocess.Popen(
            cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
        )
        deadline = time.monotonic() + timeout
        while True:
            try:
                if redis.Redis(host=LOOPBACK, port=self.port, socket_timeout=1).ping():
                    return
            except redis.RedisError:
                pass
            if self._proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("redis-server did not start")
            time.sleep(0.1)

    def stop(self) -> None:
        """Stop it (SIGTERM: an orderly restart, as a failover or an upgrade does)."""
        if self._proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            self._proc.terminate()  # only the redis-server this object started
        try:
            self._proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        self._proc = None

    def __enter__(self) -> RedisServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
        self._dir.cleanup()


@contextlib.contextmanager
def celery_worker(
    env: dict[str, str], *, concurrency: int = 3, log: str | Path | None = None
) -> Iterator[int]:
    """A Celery worker of ``billing_app`` (prefork, ``concurrency`` processes); yields its pgid.

    It consumes the project's default queue from ``env["CELERY_BROKER_URL"]``; the
    benchmark stops it (its own process group) on exit. ``log``: a file for its output.
    """
    cmd = [
        str(ROOT / ".venv" / "bin" / "celery"),
        "-A",
        "billing_app",
        "worker",
        "--loglevel",
        "error",
        "--concurrency",
        str(concurrency),
        "--without-mingle",
        "--without-gossip",
        "--without-heartbeat",
    ]
    out = open(log, "ab") if log else None  # noqa: SIM115 (closed in finally)
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, start_new_session=True, stdout=out, stderr=out)
    try:
        time.sleep(1.0)
        if proc.poll() is not None:
            raise RuntimeError(f"the celery worker exited with {proc.returncode}")
        yield proc.pid
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)  # the group of the worker we started
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        if out is not None:
            out.close()


# --- load -------------------------------------------------------------------------------------------


@dataclass
class LoadResult:
    latencies_ms: list[float]
    errors: int
    seconds: float
    statuses: dict[int, int]

    @property
    def count(self) -> int:
        return len(self.latencies_ms)

    @property
    def rps(self) -> float:
        return self.count / self.seconds if self.seconds else 0.0


def run_load(
    *,
    clients: int,
    seconds: float,
    request: Callable[[Any, int], int],
    max_requests: int = 200_000,
    warmup: float = 2.0,
    think: float = 0.0,
) -> LoadResult:
    """``clients`` threads, each with its own keep-alive ``requests.Session``, for ``seconds``.

    ``request(session, i)`` sends one request and returns its HTTP status. The first
    ``warmup`` seconds are run but not counted. Bounded by time and by ``max_requests``.
    """
    import requests

    lock = threading.Lock()
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    errors = 0
    sent = 0
    start = time.monotonic()
    measure_from = start + warmup
    stop_at = measure_from + seconds

    def worker(n: int) -> None:
        nonlocal errors, sent
        session = requests.Session()
        i = n
        while True:
            now = time.monotonic()
            if now >= stop_at:
                break
            with lock:
                if sent >= max_requests:
                    break
                sent += 1
            began = time.perf_counter()
            try:
                status = request(session, i)
            except requests.RequestException:
                status = 0
            took = (time.perf_counter() - began) * 1000
            i += clients
            if think:
                time.sleep(think)
            if now < measure_from:
                continue
            with lock:
                latencies.append(took)
                statuses[status] = statuses.get(status, 0) + 1
                if status == 0 or status >= 500:
                    errors += 1
        session.close()

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = min(time.monotonic(), stop_at + 60) - measure_from
    return LoadResult(latencies, errors, max(elapsed, 1e-9), statuses)


def wrk_available() -> bool:
    from shutil import which

    return which("wrk") is not None


WRK_SCRIPT = """
local n = 0
local paths = {}
local token = os.getenv("BENCH_TOKEN")
for p in string.gmatch(os.getenv("BENCH_PATHS"), "[^,]+") do paths[#paths + 1] = p end
local pause = tonumber(os.getenv("BENCH_DELAY_MS") or "0")
delay = function() return pause end
request = function()
  n = n + 1
  return wrk.format("GET", paths[(n % #paths) + 1], {["Authorization"] = "Bearer " .. token})
end
done = function(summary, latency, requests)
  io.write(string.format("BENCH %d %d %d %d %d %d %d %d %d\\n",
    summary.requests, summary.duration, summary.errors.connect + summary.errors.read
      + summary.errors.write + summary.errors.timeout, summary.errors.status,
    latency:percentile(50), latency:percentile(95), latency:percentile(99), latency.max,
    latency.mean))
end
"""


@dataclass
class WrkResult:
    requests: int
    seconds: float
    socket_errors: int
    status_errors: int
    p50_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float
    mean_ms: float

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


def run_wrk(
    *,
    base: str,
    paths: list[str],
    token: str,
    clients: int,
    seconds: int,
    threads: int = 2,
    think_ms: int = 0,
) -> WrkResult:
    """Drive ``paths`` round-robin with wrk (``clients`` keep-alive connections), bounded in time.

    ``think_ms``: each connection waits that long between an answer and its next
    request (an agent, not a flood); 0 saturates the server.
    """
    import tempfile

    if not base.startswith(f"http://{LOOPBACK}:"):
        raise ValueError("load is only ever sent to loopback")
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(WRK_SCRIPT)
    try:
        out = subprocess.run(
            [
                "wrk",
                "-t",
                str(threads),
                "-c",
                str(clients),
                "-d",
                f"{seconds}s",
                "--timeout",
                "10s",
                "-s",
                script.name,
                base,
            ],
            env={
                **os.environ,
                "BENCH_TOKEN": token,
                "BENCH_PATHS": ",".join(paths),
                "BENCH_DELAY_MS": str(think_ms),
            },
            capture_output=True,
            text=True,
            timeout=seconds + 60,
            check=True,
        ).stdout
    finally:
        os.unlink(script.name)
    line = next(x for x in out.splitlines() if x.startswith("BENCH "))
    n, dur, sock, status, p50, p95, p99, mx, mean = (float(v) for v in line.split()[1:])
    return WrkResult(
        requests=int(n),
        seconds=dur / 1e6,
        socket_errors=int(sock),
        status_errors=int(status),
        p50_ms=p50 / 1000,
        p95_ms=p95 / 1000,
        p99_ms=p99 / 1000,
        max_ms=mx / 1000,
        mean_ms=mean / 1000,
    )


# --- a fake Stripe on loopback ------------------------------------------------------------------------

RESOURCES = {
    "customers": "customer",
    "subscriptions": "subscription",
    "invoices": "invoice",
    "charges": "charge",
    "refunds": "refund",
    "payment_methods": "payment_method",
    "products": "product",
    "prices": "price",
    "payment_intents": "payment_intent",
    "balance_transactions": "customer_balance_transaction",
}


@dataclass(frozen=True)
class StripeRequest:
    """One request as ``FakeStripe.fault_for`` sees it."""

    method: str
    path: str
    n: int
    idempotency_key: str
    form: dict[str, str]


class Hold:
    """One answer of the fake Stripe held back until ``release()`` (see ``FakeStripe.hold``)."""

    def __init__(self, method: str, path: str, timeout: float):
        self.method, self.path, self.timeout = method, path, timeout
        self.reached = threading.Event()  # the request arrived; its answer is computed and held
        self.released = threading.Event()

    def release(self) -> None:
        self.released.set()


@dataclass(frozen=True)
class LatencyMix:
    """Stripe's latency per call, varying as Stripe's does: most calls take ``usual`` seconds,
    a ``tail_share`` of them ``tail`` seconds (uniform within each band).

    Each call's latency is drawn from a hash of the seed and the request (method, path,
    query, and how many times that same request came before), not from a shared random
    stream: concurrent calls arriving in a different order get the same latencies, so a
    run with the same seed and the same requests is repeatable.
    """

    seed: int = 15
    usual: tuple[float, float] = (0.15, 0.30)
    tail: tuple[float, float] = (0.60, 0.90)
    tail_share: float = 0.08

    def draw(self, request_key: str) -> float:
        import hashlib

        digest = hashlib.sha256(f"{self.seed}|{request_key}".encode()).digest()
        band = int.from_bytes(digest[:8], "big") / 2**64
        where = int.from_bytes(digest[8:16], "big") / 2**64
        low, high = self.tail if band < self.tail_share else self.usual
        return low + (high - low) * where

    def describe(self) -> str:
        return (
            f"{self.usual[0] * 1000:.0f}–{self.usual[1] * 1000:.0f} ms, "
            f"{self.tail_share:.0%} of calls {self.tail[0] * 1000:.0f}–{self.tail[1] * 1000:.0f} ms "
            f"(seed {self.seed})"
        )


@dataclass(frozen=True)
class StripeCall:
    """One request the fake Stripe answered: ``began``/``ended`` are ``time.perf_counter()``
    at arrival and when the answer was ready (``ended - began`` is the call as Stripe's
    side saw it: the latency drawn plus the work)."""

    n: int
    method: str
    path: str
    query: str
    latency: float
    began: float
    ended: float

    @property
    def seconds(self) -> float:
        return self.ended - self.began


@dataclass(frozen=True)
class Wave:
    """The Stripe calls one panel load made (``FakeStripe.calls_since``)."""

    calls: tuple[StripeCall, ...]

    @property
    def slowest(self) -> float:
        """The slowest single call, in seconds (0 when no call was made)."""
        return max((c.seconds for c in self.calls), default=0.0)

    @property
    def round_trips(self) -> int:
        """How many rounds of calls: a call that began after another had answered starts a
        new round (1 = every call was sent before any answer came back)."""
        rounds, answered_at = 0, float("-inf")
        for call in sorted(self.calls, key=lambda c: c.began):
            if call.began >= answered_at:
                rounds += 1
                answered_at = float("inf")
            answered_at = min(answered_at, call.ended)
        return rounds


# Stripe refuses an expansion of more than four levels (``data`` counts as one).
MAX_EXPAND_LEVELS = 4


def _ref(value: Any) -> str:
    return str(value.get("id") or "") if isinstance(value, dict) else str(value or "")


def _stripe_error(status: int, code: str, message: str, type_: str = "invalid_request_error"):
    return status, {}, json_bytes({"error": {"type": type_, "code": code, "message": message}})


class FakeStripe:
    """Stripe's REST surface as the Stripe provider uses it, from Stripe-shaped objects in memory.

    * ``latency`` per request: seconds (a constant), or a ``LatencyMix`` (a seeded tail:
      most calls 150–300 ms, a few 600–900 ms); every answered request is logged
      (``log``, ``mark()`` / ``calls_since(mark)`` → a ``Wave``: its slowest call, its
      round trips);
    * answers as Stripe renders them: a subscription item's price names its product by id
      unless ``items.data.price.product`` is expanded (on one subscription: four levels),
      and an expansion deeper than four levels is refused (400
      ``property_expansion_max_depth``);
    * ``fault(method, path, n)`` — or ``fault_for(request)``, which also sees the
      ``Idempotency-Key`` and the form (a ``StripeRequest``) — may return:
      ``"timeout"`` (sleep past the client's timeout before doing anything),
      ``"late"`` (act then hang: do the work, then sleep past the timeout; the client
      never sees the answer), ``"reset"`` (drop the connection before doing
      anything), ``"act-reset"`` (do the work, then drop the connection),
      ``"act-500"`` / ``"act-502"`` / ``"act-503"`` (do the work, then answer that 5xx
      — the work stays recorded under the idempotency key, as at Stripe), an HTTP
      status (answered before doing anything; 429 carries ``Retry-After``), a number
      of seconds as a float (extra latency for this request only) or ``None``;
    * ``hold(method, path)`` delays one chosen answer: the next matching request is
      answered from the state *at the time it arrived*, but only once the hold is
      released (``Hold.reached`` tells when it is waiting);
    * POSTs honour ``Idempotency-Key`` like Stripe: the same key returns the first
      response (``Idempotent-Replayed: true``) and concurrent ones wait for it;
    * ``POST /v1/refunds`` refuses more than the charge's refundable remainder.
    """

    def __init__(
        self,
        objects: Sequence[dict[str, Any]],
        *,
        latency: float | LatencyMix = 0.0,
        fault: Callable[[str, str, int], Any] | None = None,
        fault_for: Callable[[StripeRequest], Any] | None = None,
        stall: float = 5.0,
    ):
        self.lock = threading.Lock()
        self.objects: dict[str, dict[str, Any]] = {}
        for obj in objects:
            self.objects[obj["id"]] = json.loads(json.dumps(obj))
        self.latency = latency
        self.fault = fault
        self.fault_for = fault_for
        self.stall = stall
        self._holds: list[Hold] = []
        self.calls = 0
        self.posts = 0
        self.refunds_created = 0
        self.replayed = 0
        self._responses: dict[str, tuple[int, dict, bytes]] = {}
        self._key_locks: dict[str, threading.Lock] = {}
        self._seq = 0
        self.log: list[StripeCall] = []
        self._seen: dict[str, int] = {}

    def mark(self) -> int:
        """Where the call log stands now: ``calls_since(mark)`` gives the calls after it."""
        with self.lock:
            return len(self.log)

    def calls_since(self, mark: int) -> Wave:
        with self.lock:
            return Wave(tuple(self.log[mark:]))

    def _latency(self, method: str, raw_path: str) -> float:
        if not isinstance(self.latency, LatencyMix):
            return float(self.latency or 0.0)
        with self.lock:
            seen = self._seen.get(f"{method} {raw_path}", 0)
            self._seen[f"{method} {raw_path}"] = seen + 1
        return self.latency.draw(f"{method} {raw_path} #{seen}")

    # -- plumbing
    def handle(self, method: str, raw_path: str, headers: dict[str, str], body: bytes):
        began = time.perf_counter()
        latency = self._latency(method, raw_path)
        try:
            return self._handle(method, raw_path, headers, body, latency)
        finally:
            ended = time.perf_counter()
            path, _, query = raw_path.partition("?")
            with self.lock:
                n = len(self.log) + 1
                self.log.append(StripeCall(n, method, path, query, latency, began, ended))

    def _handle(
        self, method: str, raw_path: str, headers: dict[str, str], body: bytes, latency: float
    ):
        from urllib.parse import parse_qsl, urlsplit

        with self.lock:
            self.calls += 1
            n = self.calls
        parts = urlsplit(raw_path)
        query = dict(parse_qsl(parts.query))
        key = headers.get("idempotency-key", "")
        form = dict(parse_qsl(body.decode())) if method == "POST" else {}
        if latency:
            time.sleep(latency)
        fault = self.fault(method, parts.path, n) if self.fault else None
        if fault is None and self.fault_for is not None:
            fault = self.fault_for(StripeRequest(method, parts.path, n, key, form))
        if isinstance(fault, float):
            time.sleep(fault)
            fault = None
        if fault == "reset":
            return None
        if fault == "timeout":
            time.sleep(self.stall)
            return None
        if isinstance(fault, int):
            extra = {"Retry-After": "1"} if fault == 429 else {}
            code = "rate_limit" if fault == 429 else "api_error"
            status, _, payload = _stripe_error(fault, code, "Injected fault.", "api_error")
            return status, extra, payload
        if method == "POST":
            answer = self._post_once(key, parts.path, form)
        else:
            answer = self._get(parts.path, query)
        held = self._take_hold(method, parts.path)
        if held is not None:
            held.reached.set()
            held.released.wait(held.timeout)
        if fault == "late":
            time.sleep(self.stall)
            return None
        if fault == "act-reset":
            return None
        if isinstance(fault, str) and fault.startswith("act-") and fault[4:].isdigit():
            status, _, payload = _stripe_error(
                int(fault[4:]), "api_error", "Injected.", "api_error"
            )
            return status, {}, payload
        return answer

    def hold(self, method: str, path: str, *, timeout: float = 30.0) -> Hold:
        """Delay the answer to the next ``method path`` until ``Hold.release()`` (or ``timeout``)."""
        held = Hold(method, path, timeout)
        with self.lock:
            self._holds.append(held)
        return held

    def _take_hold(self, method: str, path: str) -> Hold | None:
        with self.lock:
            for held in self._holds:
                if held.method == method and held.path == path:
                    self._holds.remove(held)
                    return held
        return None

    def _post_once(self, key: str, path: str, form: dict[str, str]):
        if not key:
            return self._post(path, form)
        with self.lock:
            key_lock = self._key_locks.setdefault(key, threading.Lock())
        with key_lock:
            if key in self._responses:
                with self.lock:
                    self.replayed += 1
                status, extra, payload = self._responses[key]
                return status, {**extra, "Idempotent-Replayed": "true"}, payload
            answer = self._post(path, form)
            if answer[0] < 500:
                self._responses[key] = answer
            return answer

    def _new_id(self, prefix: str) -> str:
        with self.lock:
            self._seq += 1
            return f"{prefix}_bench{self._seq:08d}"

    # -- reads
    def _get(self, path: str, query: dict[str, str]):
        segments = [s for s in path.split("/") if s][1:]  # drop "v1"
        if not segments or segments[0] not in RESOURCES:
            return _stripe_error(404, "resource_missing", f"Unrecognized request URL {path}.")
        expand = [v for k, v in query.items() if k == "expand" or k.startswith("expand[")]
        too_deep = [e for e in expand if len(e.split(".")) > MAX_EXPAND_LEVELS]
        if too_deep:
            return _stripe_error(
                400,
                "property_expansion_max_depth",
                f"You cannot expand more than 4 levels of a property. Property: {too_deep[0]}",
            )
        kind = RESOURCES[segments[0]]
        if len(segments) == 1:
            return 200, {}, json_bytes(self._rendered(self._list(kind, query, path), expand))
        if len(segments) == 3 and segments[0] == "customers" and segments[2] in RESOURCES:
            return (
                200,
                {},
                json_bytes(
                    self._list(RESOURCES[segments[2]], {**query, "customer": segments[1]}, path)
                ),
            )
        obj = self.objects.get(segments[1])
        if obj is None or obj.get("object") != kind:
            return _stripe_error(404, "resource_missing", f"No such {kind}: '{segments[1]}'")
        return 200, {}, json_bytes(self._render(obj, expand))

    def _rendered(self, listing: dict[str, Any], expand: list[str]) -> dict[str, Any]:
        inner = [e.removeprefix("data.") for e in expand if e.startswith("data.")]
        return {**listing, "data": [self._render(o, inner) for o in listing["data"]]}

    def _render(self, obj: dict[str, Any], expand: list[str]) -> dict[str, Any]:
        """``obj`` as Stripe sends it: a subscription item's price names its product by id
        unless ``items.data.price.product`` is expanded."""
        if obj.get("object") != "subscription" or "items.data.price.product" in expand:
            return obj
        out = dict(obj)
        items = dict(out.get("items") or {})
        data = []
        for item in items.get("data") or []:
            price = item.get("price")
            if isinstance(price, dict) and isinstance(price.get("product"), dict):
                item = {**item, "price": {**price, "product": price["product"]["id"]}}
            data.append(item)
        out["items"] = {**items, "data": data}
        return out

    def _list(self, kind: str, query: dict[str, str], url: str) -> dict[str, Any]:
        ids = {v for k, v in query.items() if k.startswith("ids[")}
        customer = query.get("customer")
        charge = query.get("charge")
        email = query.get("email")
        with self.lock:
            found = [
                o
                for o in self.objects.values()
                if o.get("object") == kind
                and (not ids or o["id"] in ids)
                and (not customer or _ref(o.get("customer")) == customer)
                and (not charge or _ref(o.get("charge")) == charge)
                and (not email or o.get("email") == email)
                and (query.get("status") in (None, "all") or o.get("status") == query["status"])
            ]
        found.sort(key=lambda o: (o.get("created") or 0, o["id"]), reverse=True)
        limit = int(query.get("limit") or 10)
        return {
            "object": "list",
            "data": found[:limit],
            "has_more": len(found) > limit,
            "url": url.split("?")[0],
        }

    # -- writes
    def _post(self, path: str, form: dict[str, str]):
        with self.lock:
            self.posts += 1
        if path == "/v1/refunds":
            return self._refund(form)
        return _stripe_error(404, "resource_missing", f"Unrecognized request URL {path}.")

    def _refund(self, form: dict[str, str]):
        with self.lock:
            charge = self.objects.get(form.get("charge", ""))
            if charge is None or charge.get("object") != "charge":
                return _stripe_error(404, "resource_missing", "No such charge.")
            remaining = int(charge.get("amount_captured") or 0) - int(
                charge.get("amount_refunded") or 0
            )
            amount = int(form.get("amount") or remaining)
            if amount > remaining or remaining <= 0:
                return _stripe_error(
                    400,
                    "charge_already_refunded",
                    f"Charge {charge['id']} has already been refunded.",
                )
            self._seq += 1
            refund = {
                "id": f"re_bench{self._seq:08d}",
                "object": "refund",
                "amount": amount,
                "balance_transaction": None,
                "charge": charge["id"],
                "created": int(time.time()),
                "currency": charge.get("currency"),
                "destination_details": None,
                "metadata": {
                    k[len("metadata[") : -1]: v
                    for k, v in form.items()
                    if k.startswith("metadata[")
                },
                "payment_intent": charge.get("payment_intent"),
                "reason": form.get("reason"),
                "receipt_number": None,
                "source_transfer_reversal": None,
                "status": "succeeded",
                "transfer_reversal": None,
            }
            self.objects[refund["id"]] = refund
            charge["amount_refunded"] = int(charge.get("amount_refunded") or 0) + amount
            charge["refunded"] = charge["amount_refunded"] >= int(
                charge.get("amount_captured") or 0
            )
            refunds = charge.setdefault(
                "refunds", {"object": "list", "data": [], "has_more": False, "url": ""}
            )
            refunds["data"] = [refund, *refunds.get("data", [])]
            self.refunds_created += 1
            return 200, {}, json_bytes(refund)


def stripe_event(event_type: str, obj: dict[str, Any], *, created: int | None = None) -> dict:
    """A Stripe event envelope around ``obj`` (the shape of ``GET /v1/events/:id``)."""
    return {
        "id": "evt_" + os.urandom(12).hex(),
        "object": "event",
        "api_version": "2026-10-28.endive",
        "created": created or int(time.time()),
        "data": {"object": obj},
        "livemode": False,
        "pending_webhooks": 1,
        "request": {"id": None, "idempotency_key": None},
        "type": event_type,
    }


def stripe_signature(secret: str, payload: bytes, timestamp: int | None = None) -> str:
    """The ``Stripe-Signature`` header Stripe would send for ``payload``."""
    import hashlib
    import hmac

    t = timestamp or int(time.time())
    mac = hmac.new(secret.encode(), f"{t}.".encode() + payload, hashlib.sha256).hexdigest()
    return f"t={t},v1={mac}"


# --- a lean load generator for pre-built requests (issue 15, webhook_intake.py) ----------------


@dataclass
class PostResult:
    """What ``post_prebuilt`` measured: requests sent, wall seconds, statuses, transport
    errors, and the generator's own CPU seconds (all its processes)."""

    count: int
    seconds: float
    statuses: dict[int, int]
    errors: int
    client_cpu: float


def _post_worker(
    host: str, port: int, shares: list[list[tuple[str, bytes, dict]]], start, out
) -> None:  # type: ignore[no-untyped-def]
    import collections
    import http.client

    statuses: collections.Counter = collections.Counter()
    errors = [0]

    def send(share: list[tuple[str, bytes, dict]]) -> None:
        conn = http.client.HTTPConnection(host, port, timeout=60)
        for path, body, headers in share:
            try:
                conn.request("POST", path, body=body, headers=headers)
                response = conn.getresponse()
                response.read()
                statuses[response.status] += 1
            except (OSError, http.client.HTTPException):
                errors[0] += 1
                conn.close()
                conn = http.client.HTTPConnection(host, port, timeout=60)
        conn.close()

    threads = [threading.Thread(target=send, args=(share,)) for share in shares]
    cpu = os.times()
    start.wait()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    after = os.times()
    out.put((dict(statuses), errors[0], (after.user - cpu.user) + (after.system - cpu.system)))


def post_prebuilt(
    base: str,
    requests_: list[tuple[str, bytes, dict]],
    *,
    connections: int = 8,
    processes: int = 2,
) -> PostResult:
    """POST pre-built (pre-signed) requests once each over ``connections`` keep-alive
    ``http.client`` connections spread over ``processes`` forked processes: no request is
    built, signed or parsed beyond its status while the clock runs. Request ``i`` goes to
    connection ``i % connections``, each connection sends in order (the list's order, about).
    """
    import collections
    import multiprocessing
    from urllib.parse import urlsplit

    parts = urlsplit(base)
    ctx = multiprocessing.get_context("fork")
    per_conn: list[list[tuple[str, bytes, dict]]] = [[] for _ in range(connections)]
    for i, request in enumerate(requests_):
        per_conn[i % connections].append(request)
    processes = max(1, min(processes, connections))
    start, out = ctx.Event(), ctx.Queue()
    procs = [
        ctx.Process(
            target=_post_worker,
            args=(parts.hostname, parts.port, per_conn[p::processes], start, out),
            daemon=True,
        )
        for p in range(processes)
    ]
    for proc in procs:
        proc.start()
    time.sleep(0.2)  # every process forked and waiting
    began = time.perf_counter()
    start.set()
    results = [out.get(timeout=600) for _ in procs]
    seconds = time.perf_counter() - began
    for proc in procs:
        proc.join(timeout=10)
    statuses: collections.Counter = collections.Counter()
    for found, _, _ in results:
        statuses.update(found)
    return PostResult(
        count=sum(statuses.values()),
        seconds=seconds,
        statuses=statuses,
        errors=sum(e for _, e, _ in results),
        client_cpu=sum(c for _, _, c in results),
    )
