"""Redis down: the panel degrades to the database, it does not fail and does not corrupt."""

from __future__ import annotations

import pytest
from django.core.cache import cache

from billing_app.catalog import Role
from billing_app.selectors.payments import cursor_decode
from billing_app.services.refresh import provider_health_status
from tests.billing_app.context_support import forget_provider_health, seed_brief_day

ACME = "cus_sbx_acme"
UNREACHABLE = {
    "default": {
        "BACKEND": "billing_app.cache.ResilientRedisCache",
        "LOCATION": "redis://127.0.0.1:1/0",  # nothing listens on port 1: refused at once
    }
}


@pytest.fixture
def seeded(db, settings):
    seed = seed_brief_day(settings)
    forget_provider_health()  # another test's outage may linger in a shared Redis
    return seed


def test_the_panel_answers_from_the_database_when_redis_is_down(seeded, api_as, settings):
    # given the context as it is computed with a working (local) cache
    agent = api_as(seeded.workspace, Role.MANAGER)
    expected = agent.get(f"/api/v1/customers/{ACME}/context/").json()

    # when the cache is a Redis nobody answers, with the context cache and perms memo on
    settings.CACHES = UNREACHABLE
    settings.BILLING_DESK_CONTEXT_CACHE_SECONDS = 60
    settings.BILLING_DESK_AGENT_PERMS_TTL = 30
    first = agent.get(f"/api/v1/customers/{ACME}/context/")
    second = agent.get(f"/api/v1/customers/{ACME}/context/")

    # then every answer is complete and the same as with the cache
    assert first.status_code == second.status_code == 200
    assert comparable(first.json()) == comparable(second.json()) == comparable(expected)


def comparable(body: dict) -> dict:
    """The answer without what depends on the wall clock, so a slow machine cannot fail it.

    ``now`` is the time of the answer, and the payment-history cursor is signed with a
    timestamp (``django.core.signing``): two answers a second apart differ there only.
    The cursor is compared by where it points (its decoded position), not by its bytes.
    """
    body = {k: v for k, v in body.items() if k != "now"}
    history = dict(body.get("payment_history") or {})
    if history.get("next_cursor"):
        history["next_cursor"] = cursor_decode(customer_id=ACME, cursor=history["next_cursor"])
    body["payment_history"] = history
    return body


def test_stale_data_is_still_served_when_the_refresh_cannot_be_coordinated(
    seeded, api_as, settings
):
    # given Redis is down and Acme's mirror counts as stale
    settings.CACHES = UNREACHABLE
    settings.MIRROR_STALE_AFTER_SECONDS = -1

    response = api_as(seeded.workspace, Role.L1).get(f"/api/v1/customers/{ACME}/context/")

    # then the mirrored data is served, marked stale
    assert response.status_code == 200
    assert response.json()["stale"] is True
    assert response.json()["customer"]["id"] == ACME


def test_cache_failures_read_as_misses_and_writes_are_dropped(settings):
    settings.CACHES = UNREACHABLE

    cache.set("k", "v", 30)
    assert cache.get("k") is None
    assert cache.get("k", "fallback") == "fallback"
    assert cache.get_many(["k"]) == {}
    assert cache.add("lock", "1", 30) is False
    assert cache.delete("k") is False
    assert provider_health_status(workspace_id=1) == "ok"
    with pytest.raises(ValueError):
        cache.incr("counter")


def test_readyz_reports_the_cache_down_while_healthz_stays_up(db, client, settings):
    settings.CACHES = UNREACHABLE

    ready = client.get("/readyz")
    alive = client.get("/healthz")

    assert alive.status_code == 200
    assert ready.status_code == 503
    assert ready.json()["checks"]["cache"]["ok"] is False
    assert ready.json()["checks"]["database"]["ok"] is True
