"""The Redis accelerator in front of the context snapshots: served from the cache, dropped by
the writes that mark the snapshot stale, never past the snapshot's time horizon."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from billing_app.catalog import Role
from billing_app.models import MirrorCharge
from billing_app.services.mirror import mirror_upsert

from .context_support import AS_OF, forget_provider_health, seed_brief_day

ACME = "cus_sbx_acme"
GLOBEX = "cus_sbx_globex"
CONTEXT = "/api/v1/customers/{}/context/"


@pytest.fixture
def seeded(db, settings, django_capture_on_commit_callbacks):
    settings.BILLING_DESK_CONTEXT_CACHE_SECONDS = 60
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
            "LOCATION": "context-cache-tests",
        }
    }
    from django.core.cache import cache

    cache.clear()
    with django_capture_on_commit_callbacks(execute=True):  # as if the seed had committed
        seed = seed_brief_day(settings)
    yield seed
    forget_provider_health()
    cache.clear()


def get(agent, customer_id, sql=None):
    with CaptureQueriesContext(connection) as queries:
        response = agent.get(CONTEXT.format(customer_id))
    assert response.status_code == 200, response.content
    if sql is not None:
        sql[:] = [q["sql"] for q in queries.captured_queries]
    return response.json(), len(queries.captured_queries)


def snapshot_reads(sql):
    return [q for q in sql if q.startswith("SELECT") and "customersnapshot" in q]


def snapshot_stores(sql):
    return [q for q in sql if q.startswith("UPDATE") and "customersnapshot" in q]


def test_a_second_read_comes_from_the_cache_with_the_same_answer(seeded, api_as):
    # given a manager who opened Acme's panel once
    agent = api_as(seeded.workspace, Role.MANAGER)
    cold_sql, warm_sql = [], []
    first, cold = get(agent, ACME, cold_sql)

    # when they open it again
    second, warm = get(agent, ACME, warm_sql)

    # then the answer is the same, the snapshot row is not read again, and it costs only
    # authentication, the billing clock and the pending-event check
    assert second == first
    assert snapshot_reads(cold_sql) and not snapshot_reads(warm_sql)
    assert warm <= cold
    assert warm <= 6


def test_a_mirror_write_for_the_customer_drops_its_cached_context(
    seeded, api_as, django_capture_on_commit_callbacks
):
    # given Acme's context is cached
    agent = api_as(seeded.workspace, Role.MANAGER)
    before, _ = get(agent, ACME)
    charge = MirrorCharge.objects.get(
        workspace=seeded.workspace, stripe_id=before["payment_status"]["last_payment"]["charge_id"]
    )

    # when a webhook re-read stores the charge as refunded
    data = dict(charge.data)
    data.update(amount_refunded=data["amount_captured"], refunded=True)
    with django_capture_on_commit_callbacks(execute=True):  # the bump runs at commit
        mirror_upsert(workspace=seeded.workspace, obj=data)

    # then the next read is not served from the cache and shows it
    sql = []
    after, _ = get(agent, ACME, sql)
    row = next(r for r in after["payment_history"]["items"] if r["charge_id"] == charge.stripe_id)
    assert row["status"] == "refunded"
    assert snapshot_reads(sql)


def test_another_customers_write_keeps_the_cache(
    seeded, api_as, django_capture_on_commit_callbacks
):
    # given Acme's context is cached
    agent = api_as(seeded.workspace, Role.MANAGER)
    get(agent, ACME)
    globex = MirrorCharge.objects.filter(workspace=seeded.workspace, customer_id=GLOBEX).first()

    # when Globex's charge changes
    with django_capture_on_commit_callbacks(execute=True):
        mirror_upsert(workspace=seeded.workspace, obj=dict(globex.data))

    # then Acme is still served from the cache
    _, warm = get(agent, ACME)
    assert warm <= 6


def test_an_action_shows_in_the_next_read(seeded, api_as, django_capture_on_commit_callbacks):
    # given Acme's context is cached
    agent = api_as(seeded.workspace, Role.MANAGER)
    before, _ = get(agent, ACME)

    # when the agent resends an invoice (its transactions commit; Acme owes nothing, so a
    # payment link would be refused as nothing to pay)
    with django_capture_on_commit_callbacks(execute=True):
        response = agent.post(
            "/api/v1/actions/",
            {
                "kind": "resend_invoice",
                "customer_id": ACME,
                "ticket_id": "4521",
                "params": {"invoice_id": "in_sbx_acme_2026_01"},
                "idempotency_key": "cache-test-link",
            },
            format="json",
        )
    assert response.status_code == 201, response.content

    # then the next read lists it among the recent actions
    after, _ = get(agent, ACME)
    ids = [a["id"] for a in after["recent_actions"]]
    assert response.json()["id"] in ids
    assert len(after["recent_actions"]) == len(before["recent_actions"]) + 1


def test_freshness_flags_are_the_requests_own(seeded, api_as, settings):
    # given Acme's context is cached while fresh
    agent = api_as(seeded.workspace, Role.MANAGER)
    first, _ = get(agent, ACME)
    assert first["stale"] is False

    # when the mirror counts as stale from now on
    settings.MIRROR_STALE_AFTER_SECONDS = -1
    second, _ = get(agent, ACME)

    # then the cached figures come back with this request's freshness
    assert second["stale"] is True
    assert second["refreshing"] is True
    assert {k: v for k, v in second.items() if k not in {"stale", "refreshing"}} == {
        k: v for k, v in first.items() if k not in {"stale", "refreshing"}
    }


def test_a_wrong_tenant_is_not_served_from_another_workspaces_cache(seeded, api_as, make_workspace):
    # given Acme's context is cached in the demo workspace
    get(api_as(seeded.workspace, Role.MANAGER), ACME)

    # when an agent of another workspace asks for the same customer id
    other = api_as(make_workspace("other-co"), Role.MANAGER)
    response = other.get(CONTEXT.format(ACME))

    # then they get 404, not the cached context
    assert response.status_code == 404


def test_an_entry_past_the_snapshots_time_horizon_is_not_served(seeded, api_as):
    # given Acme's context is cached, with a time horizon ahead (its entry says until when)
    from django.core.cache import cache

    from billing_app.models import CustomerSnapshot

    agent = api_as(seeded.workspace, Role.MANAGER)
    get(agent, ACME)
    snapshot = CustomerSnapshot.objects.get(workspace=seeded.workspace, customer_id=ACME)

    # when the snapshot's horizon is moved to the past behind the cache's back (as time would)
    passed = AS_OF - timedelta(days=1)  # the sandbox clock is frozen at AS_OF
    CustomerSnapshot.objects.filter(pk=snapshot.pk).update(valid_until=passed)
    key = f"billing-desk:ctx:{seeded.workspace.pk}:{ACME}"
    entry = cache.get(key)
    entry["data"]["valid_until"] = passed
    cache.set(key, entry, 60)

    # then the next read goes to the snapshot (and rebuilds it), not the cached entry
    sql = []
    get(agent, ACME, sql)
    assert snapshot_reads(sql)
    assert snapshot_stores(sql)
