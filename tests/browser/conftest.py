"""Browser tests: Playwright's sync API driving Debian's Chromium against a live server.

Chromium is never downloaded: the executable comes from ``BILLING_DESK_CHROMIUM``
(the Makefile passes ``command -v chromium``) or ``chromium`` on PATH; without it
every browser test is skipped with the reason. One browser per session; a fresh
context (cookies, storage) per test.
"""

from __future__ import annotations

import os
import shutil
import threading
from datetime import UTC, datetime

import pytest
from django.core.signals import request_finished, request_started

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SKIP_NO_CHROMIUM = (
    "Chromium not found: install Debian's chromium package (apt-get install chromium)"
)


def chromium_path() -> str | None:
    configured = os.environ.get("BILLING_DESK_CHROMIUM", "").strip()
    for candidate in (configured, shutil.which("chromium"), shutil.which("chromium-browser")):
        if candidate and os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    return None


@pytest.fixture(scope="package")
def browser():
    """One Chromium for the browser tests, closed when they are done.

    Playwright's sync API keeps an asyncio loop in the main thread while it runs,
    and Django's ORM refuses to run in a thread with a loop unless told that loop
    runs none of our code: so ``DJANGO_ALLOW_ASYNC_UNSAFE`` is set exactly while the
    browser is open (package scope), and the rest of the suite keeps the check.
    """
    path = chromium_path()
    if path is None:
        pytest.skip(SKIP_NO_CHROMIUM)
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("playwright is not installed: pip install -e '.[dev]'")
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as playwright:
            chromium = playwright.chromium.launch(executable_path=path, args=CHROMIUM_ARGS)
            yield chromium
            chromium.close()
    finally:
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture
def demo_settings(settings):
    settings.DEMO_MODE = True
    settings.DEBUG = False  # the test suite (TESTING) is what allows the demo here
    return settings


# The product brief's own day: Acme's figures then read exactly as its BILLING CONTEXT screen.
BRIEF_DAY = datetime(2026, 1, 15, 12, 0, tzinfo=UTC)


@pytest.fixture
def sandbox(transactional_db, demo_settings):
    """The demo workspace with the sandbox seeded as ``seed_demo --as-of 2026-01-15`` seeds it."""
    from billing_app.demo.seed import demo_seed

    return demo_seed(as_of=BRIEF_DAY)


@pytest.fixture
def page(browser, live_server, sandbox, server_activity):
    yield from _page(browser, live_server, server_activity)


@pytest.fixture
def bare_page(browser, live_server, server_activity):
    """A page on the live server with no seeded data (static files, error pages)."""
    yield from _page(browser, live_server, server_activity)


@pytest.fixture
def server_activity():
    """How many requests the live server is handling right now (Django's request signals)."""
    active = [0]
    lock = threading.Lock()

    def started(**kwargs):
        with lock:
            active[0] += 1

    def finished(**kwargs):
        with lock:
            active[0] -= 1

    request_started.connect(started, weak=False, dispatch_uid="browser-tests-started")
    request_finished.connect(finished, weak=False, dispatch_uid="browser-tests-finished")
    yield lambda: active[0]
    request_started.disconnect(dispatch_uid="browser-tests-started")
    request_finished.disconnect(dispatch_uid="browser-tests-finished")


def _page(browser, live_server, server_activity):
    context = browser.new_context(viewport={"width": 1280, "height": 900}, base_url=live_server.url)
    context.set_default_timeout(15_000)
    page = context.new_page()
    page.console_errors = []  # type: ignore[attr-defined]
    page.on(
        "console",
        lambda msg: msg.type == "error" and page.console_errors.append(msg.text),  # type: ignore[attr-defined]
    )
    page.on("pageerror", lambda exc: page.console_errors.append(str(exc)))  # type: ignore[attr-defined]
    yield page
    # Stop the page (no new requests), then let the live server finish what it is handling
    # before the test database is flushed: the server thread shares the test's connection.
    page.goto("about:blank")
    quiet = 0
    for _ in range(100):
        quiet = quiet + 1 if server_activity() <= 0 else 0
        if quiet >= 3:
            break
        page.wait_for_timeout(50)
    context.close()
