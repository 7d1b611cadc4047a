"""A database outage is one log line per failed request, and a burst of them is summarised.

Issue 12: during a 10 s outage the log grew 10 MB in 12 s — the driver's error chained
into Django's printed two tracebacks per 503, and ``django.request`` added its own line.
Now each 503 is one line without a traceback (``billing_app.middleware.log_failure``),
and ``billing_app.log_limits.RepeatLimitFilter`` on the handlers lets the first few of a
kind through per minute and counts the rest. The filter's clock is injected: no sleeps.
"""

from __future__ import annotations

import logging

import pytest
from django.db import OperationalError
from django.test import Client

from billing_app.catalog import Role
from billing_app.log_limits import RepeatLimitFilter
from billing_app.models import BillingAction
from helpdesk_connectors import authentication

OUTAGE = "connection to server at 10.0.0.5, port 5432 failed: Connection refused"


class Lines(logging.Handler):
    """Collects what a handler would write (records that passed its filters)."""

    def __init__(self, *filters: logging.Filter):
        super().__init__(level=logging.DEBUG)
        self.records: list[logging.LogRecord] = []
        for f in filters:
            self.addFilter(f)

    def emit(self, record: logging.LogRecord) -> None:
        self.format(record)  # renders the traceback text, as a real handler would
        self.records.append(record)

    def tracebacks(self) -> int:
        return sum(1 for r in self.records if r.exc_info or r.exc_text)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def database_down(monkeypatch):
    """Every token check hits a refused connection, chained like psycopg's error is."""

    def refused(claims):
        try:
            raise ConnectionRefusedError(111, "Connection refused")
        except ConnectionRefusedError as cause:
            raise OperationalError(OUTAGE) from cause

    # The signature check needs no database; the claims check (installation, grant) does.
    monkeypatch.setattr(authentication, "authenticate_claims", refused)


@pytest.fixture
def lines():
    """``lines(*filters)``: a handler on the root logger, removed after the test."""
    root = logging.getLogger()
    added: list[Lines] = []
    previous = root.level

    def attach(*filters: logging.Filter) -> Lines:
        handler = Lines(*filters)
        root.addHandler(handler)
        added.append(handler)
        return handler

    root.setLevel(logging.INFO)
    yield attach
    for handler in added:
        root.removeHandler(handler)
    root.setLevel(previous)


def test_the_console_handler_is_rate_limited():
    handlers = logging.getLogger().handlers
    assert any(isinstance(f, RepeatLimitFilter) for h in handlers for f in h.filters)


def test_each_503_of_a_database_outage_is_one_line_without_traceback(
    ws, api_as, database_down, lines
):
    # given the database refusing connections, and everything that is logged collected
    every = lines()
    agent = api_as(ws, Role.MANAGER)

    # when 100 requests fail
    for _ in range(100):
        response = agent.get("/api/v1/me/")
        assert response.status_code == 503
        assert response.json()["error"]["code"] == "service_unavailable"

    # then exactly one line per request, none with a traceback, none from django.request
    assert len(every.records) == 100
    assert every.tracebacks() == 0
    assert {r.name for r in every.records} == {"billing_app.requests"}
    message = every.records[0].getMessage()
    assert "status=503" in message and "OperationalError" in message
    assert OUTAGE not in message and "10.0.0.5" not in message
    assert not BillingAction.objects.exists()


def test_a_burst_of_identical_failures_is_summarised(ws, api_as, database_down, lines):
    # given the handlers' filter with a clock the test moves
    clock = Clock()
    written = lines(RepeatLimitFilter(per_window=10, window_seconds=60, clock=clock))
    agent = api_as(ws, Role.MANAGER)

    # when 100 requests fail within one minute
    for _ in range(100):
        assert agent.get("/api/v1/me/").status_code == 503

    # then 10 lines were written
    assert len(written.records) == 10
    assert written.tracebacks() == 0

    # when the next minute starts and one more fails
    clock.now += 60
    assert agent.get("/api/v1/me/").status_code == 503

    # then its line reports the 90 that were left out
    assert len(written.records) == 11
    assert "[90 more like this suppressed in the previous 60 s]" in written.records[-1].getMessage()


def test_a_database_outage_outside_drf_is_a_json_503_logged_once(ws, monkeypatch, lines):
    # given the webhook endpoint's first query failing
    def refused(*, slug):
        raise OperationalError(OUTAGE)

    monkeypatch.setattr("billing_app.webhooks.webhook_workspace_get", refused)
    every = lines()

    # when Stripe delivers
    response = Client().post(
        f"/webhooks/stripe/{ws.slug}/", data=b"{}", content_type="application/json"
    )

    # then a 503 envelope Stripe will retry, and one line without traceback
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "service_unavailable"
    assert len(every.records) == 1
    assert every.tracebacks() == 0


def test_only_the_first_line_of_a_kind_keeps_its_traceback():
    # given a filter and 5 identical bug reports with tracebacks
    clock = Clock()
    kept = Lines(RepeatLimitFilter(per_window=3, window_seconds=60, clock=clock))
    log = logging.getLogger("tests.log_volume")
    log.addHandler(kept)
    log.propagate = False
    try:
        for _ in range(5):
            try:
                raise RuntimeError("bug")
            except RuntimeError:
                log.exception("view crashed")
    finally:
        log.removeHandler(kept)
        log.propagate = True

    # then 3 lines, the first with the traceback
    assert len(kept.records) == 3
    assert [bool(r.exc_info or r.exc_text) for r in kept.records] == [True, False, False]


def test_info_lines_and_different_failures_are_not_limited():
    limit = RepeatLimitFilter(per_window=1, window_seconds=60, clock=Clock())

    def record(level: int, msg: str, status: int | None = None) -> logging.LogRecord:
        r = logging.LogRecord("x", level, __file__, 1, msg, ("/p",), None)
        if status is not None:
            r.status_code = status
        return r

    assert all(limit.filter(record(logging.INFO, "action %s done")) for _ in range(50))
    assert limit.filter(record(logging.WARNING, "%s", 404))
    assert limit.filter(record(logging.WARNING, "%s", 400))  # another status: another kind
    assert not limit.filter(record(logging.WARNING, "%s", 404))
