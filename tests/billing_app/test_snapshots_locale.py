"""Context snapshots per language (issue 16): a German agent and an English one each read
the context in their own language from their own snapshot row; a write makes both stale
with the one statement it always cost (on the default row); the doorbell rebuilds both;
a current German row is one query to read, like the default one."""

from __future__ import annotations

import json

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone, translation
from rest_framework.test import APIClient

from billing_app.catalog import Role
from billing_app.clock import billing_now
from billing_app.locales import snapshot_locale
from billing_app.models import CustomerSnapshot, MirrorCustomer, Workspace
from billing_app.selectors.context import customer_context
from billing_app.selectors.context.serialize import PER_REQUEST_FIELDS
from billing_app.services import context_cache, snapshots
from billing_app.services.context_cache import customer_context_invalidate
from billing_app.services.snapshots import (
    context_body,
    snapshot_build,
    snapshot_read,
    snapshots_redrive,
)

from .context_support import forget_provider_health, seed_brief_day
from .locale_support import agent_speaking

ACME = "cus_sbx_acme"
CONTEXT = "/api/v1/customers/{}/context/"
AUTH_TABLES = (
    "helpdesk_connectors_installation",
    "billing_app_agentmembership",
    "auth_permission",
    "guardian_",
    "auth_user",
    "auth_group",
)


@pytest.fixture(autouse=True)
def _forget_provider_health(db):
    yield
    forget_provider_health()


@pytest.fixture
def seeded(db, settings, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):  # as if the seed had committed
        return seed_brief_day(settings)


def agent_in(workspace, role: Role, locale: str) -> APIClient:
    """An API client for an agent whose helpdesk profile names ``locale``."""
    return agent_speaking(workspace, role, locale, agent_id=f"{role.value}-{locale or 'none'}")


def read(agent, customer_id=ACME, sql=None) -> dict:
    with CaptureQueriesContext(connection) as queries:
        response = agent.get(CONTEXT.format(customer_id))
    assert response.status_code == 200, response.content
    if sql is not None:
        sql[:] = [q["sql"] for q in queries.captured_queries]
    return response.json()


def row(workspace, locale: str, customer_id=ACME) -> CustomerSnapshot:
    return CustomerSnapshot.objects.get(workspace=workspace, customer_id=customer_id, locale=locale)


def from_scratch(workspace, snapshot: CustomerSnapshot, language: str) -> dict:
    """The context built now from the mirror in ``language``, for the snapshot's instants."""
    workspace = Workspace.objects.get(pk=workspace.pk)
    customer = MirrorCustomer.objects.get(workspace=workspace, stripe_id=snapshot.customer_id)
    with translation.override(language):
        return json.loads(
            context_body(
                customer_context(
                    workspace=workspace,
                    customer=customer,
                    now=billing_now(workspace),
                    real_now=snapshot.built_at,
                )
            )
        )


def without_request_fields(answer: dict) -> dict:
    return {k: v for k, v in answer.items() if k not in PER_REQUEST_FIELDS}


def test_the_snapshot_row_of_a_language():
    assert snapshot_locale("en") == ""
    assert snapshot_locale("en-us") == ""
    assert snapshot_locale("de") == "de"
    assert snapshot_locale("de-at") == "de"
    assert snapshot_locale("pt-br") == ""  # no catalog: the default row


def test_german_and_english_agents_read_their_own_bodies(seeded):
    workspace = seeded.workspace
    english = agent_in(workspace, Role.L1, "en-US")
    german = agent_in(workspace, Role.L1, "de")

    # when each opens Acme's panel
    answer_en = read(english)
    answer_de = read(german)

    # then each language has its row, built in that language, and each agent got theirs
    snapshot_en, snapshot_de = row(workspace, ""), row(workspace, "de")
    assert snapshot_en.data == from_scratch(workspace, snapshot_en, "en")
    assert snapshot_de.data == from_scratch(workspace, snapshot_de, "de")
    assert without_request_fields(answer_en) == snapshot_en.data
    assert without_request_fields(answer_de) == snapshot_de.data
    # the texts differ (Acme's context has translated words), the figures do not
    assert snapshot_en.body != snapshot_de.body
    assert answer_en["customer"]["id"] == answer_de["customer"]["id"] == ACME
    # and the German row is current against the default row's version
    assert snapshot_de.built_version == snapshot_en.wanted_version
    # the default row is built in English even while German is active (a worker's leftover)
    with translation.override("de"):
        snapshot_build(workspace=workspace, customer_id=ACME)
    rebuilt = row(workspace, "")
    assert rebuilt.data == from_scratch(workspace, rebuilt, "en")


def test_a_write_makes_both_stale_with_one_statement_and_both_are_rebuilt(
    seeded, django_capture_on_commit_callbacks
):
    workspace = seeded.workspace
    read(agent_in(workspace, Role.L1, ""))
    read(agent_in(workspace, Role.L1, "de"))
    german_before = row(workspace, "de")

    # when a writer changes Acme (the name) and marks its context, in one transaction
    with django_capture_on_commit_callbacks(execute=False) as callbacks, transaction.atomic():
        MirrorCustomer.objects.filter(workspace=workspace, stripe_id=ACME).update(
            name="Acme Corporation (renamed)"
        )
        with CaptureQueriesContext(connection) as queries:
            customer_context_invalidate(workspace_id=workspace.pk, customer_id=ACME)

        # then the write path is the one statement it always was, on the default row
        assert len(queries.captured_queries) == 1, queries.captured_queries
        statement = queries.captured_queries[0]["sql"]
        assert statement.startswith("INSERT INTO") and "ON CONFLICT" in statement
        assert row(workspace, "de").wanted_version == german_before.wanted_version
        # and both languages are stale from that moment
        now, real_now = billing_now(workspace), timezone.now()
        for locale in ("", "de"):
            stored = snapshot_read(workspace=workspace, customer_id=ACME, locale=locale)
            assert not stored.current(now=now, real_now=real_now), locale

    # when it commits, the doorbell rebuilds the default row and the German one (opened)
    for callback in callbacks:
        callback()
    now, real_now = billing_now(workspace), timezone.now()
    for locale, language in (("", "en"), ("de", "de")):
        stored = snapshot_read(workspace=workspace, customer_id=ACME, locale=locale)
        assert stored.current(now=now, real_now=real_now), locale
        snapshot = row(workspace, locale)
        assert snapshot.data["customer"]["name"] == "Acme Corporation (renamed)"
        assert snapshot.data == from_scratch(workspace, snapshot, language)


def test_the_pending_redrive_rebuilds_the_language_rows_opened_recently(seeded, monkeypatch):
    workspace = seeded.workspace
    read(agent_in(workspace, Role.L1, "de"))
    # the broker is away: the doorbell is lost
    monkeypatch.setattr(snapshots, "enqueue", lambda *a, **k: (_ for _ in ()).throw(OSError()))
    MirrorCustomer.objects.filter(workspace=workspace, stripe_id=ACME).update(name="Acme AG")
    customer_context_invalidate(workspace_id=workspace.pk, customer_id=ACME)

    built = snapshots_redrive()

    assert built >= 2
    assert row(workspace, "de").data["customer"]["name"] == "Acme AG"
    assert row(workspace, "").data["customer"]["name"] == "Acme AG"


def test_a_language_row_not_opened_recently_waits_for_its_read(
    seeded, django_capture_on_commit_callbacks
):
    workspace = seeded.workspace
    german = agent_in(workspace, Role.L1, "de")
    read(german)
    CustomerSnapshot.objects.filter(workspace=workspace, locale="de").update(
        opened_at=timezone.now() - snapshots.REDRIVE_RECENT * 2
    )
    with django_capture_on_commit_callbacks(execute=True):
        MirrorCustomer.objects.filter(workspace=workspace, stripe_id=ACME).update(name="Acme SE")
        customer_context_invalidate(workspace_id=workspace.pk, customer_id=ACME)
    # the doorbell rebuilt the default row only
    assert row(workspace, "").data["customer"]["name"] == "Acme SE"
    assert row(workspace, "de").data["customer"]["name"] != "Acme SE"
    # and the German agent's next read is still the truth (built for the read)
    assert read(german)["customer"]["name"] == "Acme SE"


def test_a_german_open_is_one_query_when_current(seeded):
    workspace = seeded.workspace
    german = agent_in(workspace, Role.L1, "de")
    read(german)  # builds the German row; warms what authentication caches per process

    sql: list[str] = []
    answer = read(german, sql=sql)

    # (the sandbox's billing clock is a read of its own, the same in every language)
    ours = [
        q
        for q in sql
        if not any(table in q for table in AUTH_TABLES) and "billing_app_sandboxcontrol" not in q
    ]
    assert len(ours) == 1, ours
    assert "customersnapshot" in ours[0] and "stripeevent" in ours[0]
    assert without_request_fields(answer) == row(workspace, "de").data


def test_the_redis_entry_is_per_language(seeded, settings):
    settings.BILLING_DESK_CONTEXT_CACHE_SECONDS = 60
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    from django.core.cache import cache

    cache.clear()
    workspace = seeded.workspace
    english = agent_in(workspace, Role.L1, "")
    german = agent_in(workspace, Role.L1, "de")
    answer_en = read(english)
    answer_de = read(german)
    # warm: both served from the cache, each in its own language
    assert without_request_fields(read(english)) == without_request_fields(answer_en)
    assert without_request_fields(read(german)) == without_request_fields(answer_de)
    assert context_cache._entry_key(workspace.pk, ACME, "de") != context_cache._entry_key(
        workspace.pk, ACME, ""
    )
    entries = [
        cache.get(context_cache._entry_key(workspace.pk, ACME, locale)) for locale in ("", "de")
    ]
    assert all(entries) and entries[0]["data"]["body"] != entries[1]["data"]["body"]
    cache.clear()
