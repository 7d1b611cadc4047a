"""Context snapshots (issue 15): computed at write time, true after every kind of write,
explicitly stale until rebuilt, never overwritten by an older build, rebuilt when time
moves them, re-driven when the broker lost the doorbell, and one query to read."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from billing_app.catalog import Role
from billing_app.clock import billing_now
from billing_app.models import (
    AgentMembership,
    CustomerSnapshot,
    MirrorCharge,
    MirrorCustomer,
    SandboxControl,
    Workspace,
)
from billing_app.selectors.context import customer_context
from billing_app.selectors.context.serialize import PER_REQUEST_FIELDS
from billing_app.services import refresh, snapshots
from billing_app.services.mirror import mirror_upsert
from billing_app.services.mirror_bulk import mirror_upsert_bulk
from billing_app.services.snapshots import (
    context_serialize,
    snapshot_build,
    snapshot_mark_stale,
    snapshots_redrive,
)

from .context_support import (
    AS_OF,
    FakeStripe,
    forget_provider_health,
    seed_brief_day,
    stripe_acme_bundle,
)
from .stripe_support import StripeMock, event, load, make_stripe_workspace, webhook_poster

ACME = "cus_sbx_acme"
STRIPE_ACME = "cus_RbAcmeCorp0001"
SUB = "sub_1RbAcmeEnterprise01"
CONTEXT = "/api/v1/customers/{}/context/"
# Queries made by authentication (helper C's cache removes them in the common case).
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


@pytest.fixture
def stripe_ws(make_workspace, monkeypatch, django_capture_on_commit_callbacks):
    """A Stripe workspace with Acme mirrored from a (fake) Stripe, its snapshot built."""
    workspace = make_stripe_workspace(make_workspace)
    fake = FakeStripe(workspace, bundles={STRIPE_ACME: stripe_acme_bundle()})
    monkeypatch.setattr(refresh, "get_provider", lambda ws: fake)
    with django_capture_on_commit_callbacks(execute=True):
        refresh.customer_refresh(workspace_id=workspace.pk, customer_id=STRIPE_ACME)
    workspace.fake = fake
    return workspace


def row(workspace, customer_id) -> CustomerSnapshot:
    return CustomerSnapshot.objects.get(workspace=workspace, customer_id=customer_id)


def from_scratch(workspace, customer_id, snapshot: CustomerSnapshot) -> dict:
    """The context built now from the mirror, for the instants the snapshot was built for."""
    workspace = Workspace.objects.get(pk=workspace.pk)
    customer = MirrorCustomer.objects.get(workspace=workspace, stripe_id=customer_id)
    now = billing_now(workspace) if workspace.provider == "sandbox" else snapshot.built_at
    data = context_serialize(
        customer_context(
            workspace=workspace, customer=customer, now=now, real_now=snapshot.built_at
        )
    )
    for name in PER_REQUEST_FIELDS:
        data.pop(name)
    return data


def assert_true_snapshot(workspace, customer_id) -> CustomerSnapshot:
    snapshot = row(workspace, customer_id)
    generation = Workspace.objects.get(pk=workspace.pk).context_generation
    assert snapshot.built_version == snapshot.wanted_version
    assert snapshot.workspace_generation == generation
    assert snapshot.data == from_scratch(workspace, customer_id, snapshot)
    return snapshot


def read(agent, customer_id, sql=None) -> dict:
    with CaptureQueriesContext(connection) as queries:
        response = agent.get(CONTEXT.format(customer_id))
    assert response.status_code == 200, response.content
    if sql is not None:
        sql[:] = [q["sql"] for q in queries.captured_queries]
    return response.json()


def without_request_fields(answer: dict) -> dict:
    return {k: v for k, v in answer.items() if k not in PER_REQUEST_FIELDS}


def is_auth(sql: str) -> bool:
    return any(table in sql for table in AUTH_TABLES)


# --- true after every kind of write ------------------------------------------------------------


def test_after_a_webhook_the_snapshot_equals_a_from_scratch_build(
    stripe_ws, client, http, django_capture_on_commit_callbacks
):
    # given Acme's snapshot is built (active subscription)
    before = assert_true_snapshot(stripe_ws, STRIPE_ACME)
    assert before.data["subscription"]["status"] == "active"
    # (should the webhook re-read the subscription from Stripe, it says past_due too)
    StripeMock(http).on("GET", f"/v1/subscriptions/{SUB}", load("subscription", status="past_due"))

    # when Stripe posts a signed event saying the subscription is past due, and it is processed
    payload = event(
        "evt_1SnapshotPastDue",
        "customer.subscription.updated",
        load("subscription", status="past_due"),
        created=int(timezone.now().timestamp()) + 5,
    )
    webhook_poster(client, stripe_ws, django_capture_on_commit_callbacks)(payload)

    # then the snapshot was rebuilt at write time and is what a from-scratch build says
    after = assert_true_snapshot(stripe_ws, STRIPE_ACME)
    assert after.wanted_version > before.wanted_version
    assert after.data["subscription"]["status"] == "past_due"


def test_after_an_action_the_snapshot_equals_a_from_scratch_build(
    seeded, api_as, django_capture_on_commit_callbacks
):
    # given Acme's snapshot, built when the seed committed
    assert_true_snapshot(seeded.workspace, ACME)
    agent = api_as(seeded.workspace, Role.MANAGER)

    # when an agent resends an invoice through the actions API (its transactions commit)
    with django_capture_on_commit_callbacks(execute=True):
        response = agent.post(
            "/api/v1/actions/",
            {
                "kind": "resend_invoice",
                "customer_id": ACME,
                "ticket_id": "4521",
                "params": {"invoice_id": "in_sbx_acme_2026_01"},
                "idempotency_key": "snapshot-action",
            },
            format="json",
        )
    assert response.status_code == 201, response.content

    # then the snapshot lists the action and equals a from-scratch build
    snapshot = assert_true_snapshot(seeded.workspace, ACME)
    assert response.json()["id"] in [a["id"] for a in snapshot.data["recent_actions"]]


def test_after_a_sync_the_snapshot_equals_a_from_scratch_build(
    stripe_ws, django_capture_on_commit_callbacks
):
    # given Stripe now has Acme under a new name
    bundle = stripe_acme_bundle()
    bundle.customer["name"] = "Acme Corporation (renamed)"
    stripe_ws.fake.bundles[STRIPE_ACME] = bundle

    # when the background refresh syncs it
    with django_capture_on_commit_callbacks(execute=True):
        assert refresh.customer_refresh(workspace_id=stripe_ws.pk, customer_id=STRIPE_ACME)

    # then the snapshot shows it and equals a from-scratch build
    snapshot = assert_true_snapshot(stripe_ws, STRIPE_ACME)
    assert snapshot.data["customer"]["name"] == "Acme Corporation (renamed)"


def test_after_a_workspace_settings_edit_the_answer_equals_a_from_scratch_build(
    seeded, api_as, django_capture_on_commit_callbacks
):
    # given Acme's snapshot is current
    agent = api_as(seeded.workspace, Role.MANAGER)
    read(agent, ACME)
    generation = Workspace.objects.get(pk=seeded.workspace.pk).context_generation

    # when an admin saves the workspace with another base currency for customers without one
    workspace = Workspace.objects.get(pk=seeded.workspace.pk)
    workspace.duplicate_window_hours = 1
    with django_capture_on_commit_callbacks(execute=True):
        workspace.save()

    # then every snapshot of the workspace is out of date, and the next answer is rebuilt
    assert Workspace.objects.get(pk=workspace.pk).context_generation == generation + 1
    assert row(seeded.workspace, ACME).workspace_generation == generation
    answer = read(agent, ACME)
    snapshot = assert_true_snapshot(seeded.workspace, ACME)
    assert without_request_fields(answer) == snapshot.data


def test_after_an_agent_is_renamed_their_actions_show_the_new_name(
    seeded, api_as, django_capture_on_commit_callbacks
):
    # given an action by a manager shown in Acme's recent actions
    agent = api_as(seeded.workspace, Role.MANAGER)
    with django_capture_on_commit_callbacks(execute=True):
        response = agent.post(
            "/api/v1/actions/",
            {
                "kind": "resend_invoice",
                "customer_id": ACME,
                "ticket_id": "4522",
                "params": {"invoice_id": "in_sbx_acme_2026_01"},
                "idempotency_key": "snapshot-rename",
            },
            format="json",
        )
    assert response.status_code == 201, response.content
    action_id = response.json()["id"]
    user = AgentMembership.objects.filter(workspace=seeded.workspace).latest("pk").user

    # when the agent's name changes (admin)
    user.first_name, user.last_name = "Renamed", "Agent"
    with django_capture_on_commit_callbacks(execute=True):
        user.save()

    # then the next answer names them so, and equals a from-scratch build
    answer = read(agent, ACME)
    shown = next(a for a in answer["recent_actions"] if a["id"] == action_id)
    assert shown["actor"] == "Renamed Agent"
    assert without_request_fields(answer) == assert_true_snapshot(seeded.workspace, ACME).data


def test_saving_the_same_workspace_twice_never_writes_an_old_generation_back(seeded):
    workspace = Workspace.objects.get(pk=seeded.workspace.pk)
    start = workspace.context_generation

    workspace.duplicate_window_hours = 2
    workspace.save()
    workspace.refund_pattern_days = 60
    workspace.save()

    # raised once in this transaction, and the second save did not write ``start`` back
    assert Workspace.objects.get(pk=workspace.pk).context_generation == start + 1


def test_a_sign_in_touching_last_login_moves_nothing(seeded, sign_in):
    membership, _ = sign_in(seeded.workspace, Role.L1)
    user = membership.user
    generation = Workspace.objects.get(pk=seeded.workspace.pk).context_generation

    user.last_login = timezone.now()
    user.save(update_fields=["last_login"])

    assert Workspace.objects.get(pk=seeded.workspace.pk).context_generation == generation


# --- staleness, races, time -------------------------------------------------------------------


def test_a_write_not_rebuilt_yet_says_so_and_the_answer_is_still_the_truth(seeded, api_as):
    # given Acme's last charge, and a webhook re-read storing it as refunded (not committed yet:
    # the doorbell has not rung)
    agent = api_as(seeded.workspace, Role.MANAGER)
    before = read(agent, ACME)
    charge_id = before["payment_status"]["last_payment"]["charge_id"]
    charge = MirrorCharge.objects.get(workspace=seeded.workspace, stripe_id=charge_id)
    data = dict(charge.data)
    data.update(amount_refunded=data["amount_captured"], refunded=True)
    mirror_upsert(workspace=seeded.workspace, obj=data)

    # then the snapshot knows it is behind the mirror
    pending = row(seeded.workspace, ACME)
    assert pending.built_version < pending.wanted_version

    # and the panel still answers the truth (rebuilt synchronously), which catches the row up
    sql: list[str] = []
    answer = read(agent, ACME, sql)
    shown = next(r for r in answer["payment_history"]["items"] if r["charge_id"] == charge_id)
    assert shown["status"] == "refunded"
    assert any(q.startswith("UPDATE") and "customersnapshot" in q for q in sql)
    assert without_request_fields(answer) == assert_true_snapshot(seeded.workspace, ACME).data


def test_a_build_that_raced_a_newer_write_never_overwrites_it(seeded, monkeypatch):
    workspace = seeded.workspace
    version = row(workspace, ACME).wanted_version
    build = snapshots.customer_context

    # given a build during which a write about Acme commits (it read the version before)
    def racing(**kwargs):
        snapshot_mark_stale(workspace_id=workspace.pk, customer_id=ACME)
        return build(**kwargs)

    monkeypatch.setattr(snapshots, "customer_context", racing)
    snapshot_build(workspace=workspace, customer_id=ACME)
    monkeypatch.setattr(snapshots, "customer_context", build)

    # then it stored what it built under the version it read: still behind the write
    raced = row(workspace, ACME)
    assert (raced.built_version, raced.wanted_version) == (version, version + 1)

    # when the next build stores the newer version, then a late build of the older one
    snapshot_build(workspace=workspace, customer_id=ACME)
    newest = row(workspace, ACME)
    assert newest.built_version == version + 1
    snapshot_build(workspace=workspace, customer_id=ACME, versions=(version, 1))

    # then the older build changed nothing
    assert row(workspace, ACME).built_version == version + 1
    assert row(workspace, ACME).built_at == newest.built_at


def test_a_snapshot_read_after_its_time_horizon_is_rebuilt(seeded, api_as):
    # given Acme's snapshot, true until an instant ahead of the (frozen) sandbox clock
    agent = api_as(seeded.workspace, Role.MANAGER)
    read(agent, ACME)
    snapshot = row(seeded.workspace, ACME)
    assert snapshot.valid_until is not None and snapshot.valid_until > AS_OF
    generation = Workspace.objects.get(pk=seeded.workspace.pk).context_generation

    # when the billing clock passes it (time moves; nothing is written)
    later = snapshot.valid_until + timedelta(minutes=1)
    SandboxControl.objects.filter(workspace=seeded.workspace).update(clock=later)

    # then the next read rebuilds it for the new now, and answers what a fresh build says
    sql: list[str] = []
    answer = read(agent, ACME, sql)
    assert any(q.startswith("UPDATE") and "customersnapshot" in q for q in sql)
    rebuilt = row(seeded.workspace, ACME)
    assert Workspace.objects.get(pk=seeded.workspace.pk).context_generation == generation
    assert rebuilt.valid_until is None or rebuilt.valid_until > later
    assert answer["now"] == later.isoformat()
    assert without_request_fields(answer) == assert_true_snapshot(seeded.workspace, ACME).data


def test_setting_the_sandbox_clock_moves_every_snapshot_of_the_workspace(seeded):
    from billing_app.providers.sandbox.control import sandbox_control_set

    generation = Workspace.objects.get(pk=seeded.workspace.pk).context_generation
    sandbox_control_set(workspace=seeded.workspace, clock=AS_OF - timedelta(days=30))
    assert Workspace.objects.get(pk=seeded.workspace.pk).context_generation > generation


# --- the broker down, the re-drive ------------------------------------------------------------


def test_with_the_broker_down_the_write_commits_and_the_redrive_rebuilds(
    seeded, monkeypatch, caplog, django_capture_on_commit_callbacks
):
    # given the broker refuses every task
    def refused(*args, **kwargs):
        raise ConnectionRefusedError("broker down")

    monkeypatch.setattr(snapshots, "enqueue", refused)
    monkeypatch.setattr(snapshots, "_last_warning", 0.0)
    charge = MirrorCharge.objects.filter(
        workspace=seeded.workspace, customer_id=ACME, status="succeeded"
    ).latest("created")
    data = dict(charge.data)
    data.update(amount_refunded=data["amount_captured"], refunded=True)

    # when a webhook re-read stores the charge refunded (and commits)
    with caplog.at_level(logging.WARNING), django_capture_on_commit_callbacks(execute=True):
        mirror_upsert(workspace=seeded.workspace, obj=data)

    # then the write is there, the snapshot is pending, one warning says why
    assert MirrorCharge.objects.get(pk=charge.pk).refunded is True
    pending = row(seeded.workspace, ACME)
    assert pending.built_version < pending.wanted_version
    assert len([r for r in caplog.records if "snapshot rebuild" in r.getMessage()]) == 1

    # when the re-drive runs (beat, every minute)
    assert snapshots_redrive() >= 1

    # then the snapshot is current and true
    snapshot = assert_true_snapshot(seeded.workspace, ACME)
    shown = next(
        r for r in snapshot.data["payment_history"]["items"] if r["charge_id"] == charge.stripe_id
    )
    assert shown["status"] == "refunded"


def test_the_redrive_rebuilds_opened_snapshots_whose_horizon_passed(seeded, api_as):
    # given Acme's snapshot opened in a panel, Globex's never opened, and the billing clock
    # past both horizons
    read(api_as(seeded.workspace, Role.L1), ACME)
    snapshot = row(seeded.workspace, ACME)
    assert snapshot.valid_until is not None and snapshot.opened_at is not None
    others = CustomerSnapshot.objects.filter(
        workspace=seeded.workspace, opened_at__isnull=True, valid_until__isnull=False
    )
    assert others.exists()
    before = {s.customer_id: s.built_at for s in others}
    latest = max(s.valid_until for s in CustomerSnapshot.objects.filter(valid_until__isnull=False))
    SandboxControl.objects.filter(workspace=seeded.workspace).update(
        clock=max(latest, snapshot.valid_until) + timedelta(seconds=1)
    )

    # when the re-drive runs, then Acme's is rebuilt ahead of any read, the others wait for
    # their first read
    assert snapshots_redrive() == 1
    assert row(seeded.workspace, ACME).built_at > snapshot.built_at
    assert_true_snapshot(seeded.workspace, ACME)
    assert {s.customer_id: s.built_at for s in others.all()} == before


def test_the_redrive_leaves_snapshots_opened_more_than_a_week_ago(seeded, api_as):
    read(api_as(seeded.workspace, Role.L1), ACME)
    snapshot = row(seeded.workspace, ACME)
    CustomerSnapshot.objects.filter(pk=snapshot.pk).update(
        opened_at=timezone.now() - snapshots.REDRIVE_RECENT - timedelta(minutes=1)
    )
    SandboxControl.objects.filter(workspace=seeded.workspace).update(
        clock=snapshot.valid_until + timedelta(seconds=1)
    )
    assert snapshots_redrive() == 0
    assert row(seeded.workspace, ACME).built_at == snapshot.built_at


def test_the_redrive_rebuilds_a_passed_wall_clock_horizon(seeded, api_as):
    read(api_as(seeded.workspace, Role.L1), ACME)
    snapshot = row(seeded.workspace, ACME)
    CustomerSnapshot.objects.filter(pk=snapshot.pk).update(
        valid_until_real=timezone.now() - timedelta(seconds=1)
    )
    assert snapshots_redrive() == 1
    assert row(seeded.workspace, ACME).built_at > snapshot.built_at


def test_a_panel_open_moves_opened_at_at_most_once_an_hour(seeded, api_as):
    agent = api_as(seeded.workspace, Role.L1)
    assert row(seeded.workspace, ACME).opened_at is None  # built at write time, never opened

    # the first open stores it; the next ones within the hour write nothing
    sql: list[str] = []
    read(agent, ACME, sql)
    first = row(seeded.workspace, ACME).opened_at
    assert first is not None
    read(agent, ACME, sql)
    assert not [q for q in sql if q.startswith("UPDATE") and "customersnapshot" in q]
    assert row(seeded.workspace, ACME).opened_at == first

    # an hour later, one conditional UPDATE moves it
    CustomerSnapshot.objects.filter(workspace=seeded.workspace, customer_id=ACME).update(
        opened_at=first - snapshots.OPENED_EVERY - timedelta(seconds=1)
    )
    read(agent, ACME, sql)
    updates = [q for q in sql if q.startswith("UPDATE") and "customersnapshot" in q]
    assert len(updates) == 1 and "opened_at" in updates[0]
    assert row(seeded.workspace, ACME).opened_at > first


def test_a_build_for_a_read_stores_opened_at_with_the_build(seeded, api_as):
    snapshot_mark_stale(workspace_id=seeded.workspace.pk, customer_id=ACME)
    sql: list[str] = []
    read(api_as(seeded.workspace, Role.L1), ACME, sql)
    updates = [q for q in sql if q.startswith("UPDATE") and "customersnapshot" in q]
    assert len(updates) == 1 and "opened_at" in updates[0] and "body" in updates[0]
    assert row(seeded.workspace, ACME).opened_at is not None


# --- queries ------------------------------------------------------------------------------------


def _history(workspace, customer_id: str, n: int) -> None:
    """``n`` paid invoices, ``n`` charges and ``n`` balance transactions, over the last year."""
    now = int(timezone.now().timestamp())
    objects = []
    for i in range(n):
        created = now - 86_400 * 365 + i * (86_400 * 360 // max(n, 1))
        objects.append(
            load(
                "invoice",
                id=f"in_hist_{n}_{i}",
                number=f"HIST-{n}-{i}",
                customer=customer_id,
                status="paid",
                created=created,
                subscription=None,
                charge=f"ch_hist_{n}_{i}",
                lines={"object": "list", "data": [], "has_more": False},
            )
        )
        objects.append(
            load(
                "charge",
                id=f"ch_hist_{n}_{i}",
                customer=customer_id,
                invoice=f"in_hist_{n}_{i}",
                payment_intent=f"pi_hist_{n}_{i}",
                created=created,
                refunds={"object": "list", "data": [], "has_more": False},
            )
        )
        objects.append(
            load(
                "customer_balance_transaction",
                id=f"cbtxn_hist_{n}_{i}",
                customer=customer_id,
                created=created,
                invoice=None,
            )
        )
    mirror_upsert_bulk(workspace=workspace, objects=objects, read_at=timezone.now())


@pytest.mark.parametrize("history", [10, 500])
def test_a_snapshot_hit_is_one_query_besides_authentication_whatever_the_history(
    stripe_ws, api_as, django_capture_on_commit_callbacks, history
):
    # given Acme with a long or short history, its snapshot built at write time
    with django_capture_on_commit_callbacks(execute=True):
        _history(stripe_ws, STRIPE_ACME, history)
    assert_true_snapshot(stripe_ws, STRIPE_ACME)
    agent = api_as(stripe_ws, Role.L1)
    read(agent, STRIPE_ACME)  # warm what authentication caches per process

    # when the panel opens
    sql: list[str] = []
    read(agent, STRIPE_ACME, sql)

    # then the context costs one indexed query (the snapshot, the workspace's generation and
    # the pending-event check together); the rest is authentication's (4 here, where its
    # cache is not configured; 0 in the bench, where it is: helper C)
    ours = [q for q in sql if not is_auth(q)]
    assert len(ours) == 1, ours
    assert "customersnapshot" in ours[0] and "stripeevent" in ours[0]
    assert len(sql) - len(ours) <= 4


def test_the_rebuild_costs_the_same_queries_for_10_or_500_of_everything(
    stripe_ws, api_as, django_capture_on_commit_callbacks
):
    agent = api_as(stripe_ws, Role.L1)
    read(agent, STRIPE_ACME)
    counts = []
    for n in (10, 500):
        with django_capture_on_commit_callbacks(execute=True):
            _history(stripe_ws, STRIPE_ACME, n)
        snapshot_mark_stale(workspace_id=stripe_ws.pk, customer_id=STRIPE_ACME)
        sql: list[str] = []
        read(agent, STRIPE_ACME, sql)
        counts.append(len(sql))
        assert_true_snapshot(stripe_ws, STRIPE_ACME)
    assert counts[0] == counts[1]


# --- the first answer -----------------------------------------------------------------------


def test_a_first_answer_stores_and_builds_in_one_transaction_and_queues_no_second_build(
    make_workspace, monkeypatch, api_as, django_capture_on_commit_callbacks
):
    # given a Stripe customer nothing of which is mirrored yet
    workspace = make_stripe_workspace(make_workspace)
    fake = FakeStripe(workspace, bundles={STRIPE_ACME: stripe_acme_bundle()})
    monkeypatch.setattr(refresh, "get_provider", lambda ws: fake)
    rung: list[tuple] = []
    monkeypatch.setattr(snapshots, "enqueue", lambda *args: rung.append(args))
    agent = api_as(workspace, Role.L1)

    # when the panel opens it (and the request's transaction commits)
    with django_capture_on_commit_callbacks(execute=True):
        answer = read(agent, STRIPE_ACME)

    # then the snapshot it built is current and true, and no rebuild was queued for it
    assert answer["customer"]["id"] == STRIPE_ACME
    assert_true_snapshot(workspace, STRIPE_ACME)
    assert not [args for args in rung if args[0] == snapshots.SNAPSHOT_TASK]


def test_a_first_answer_fetches_from_the_provider_outside_any_transaction(
    make_workspace, monkeypatch, api_as, django_capture_on_commit_callbacks
):
    # given a Stripe customer nothing of which is mirrored yet, and a provider that notes
    # how many transactions are open while the agent waits on it
    workspace = make_stripe_workspace(make_workspace)
    fake = FakeStripe(workspace, bundles={STRIPE_ACME: stripe_acme_bundle()})
    fetch = fake.fetch_customer_bundle
    depths: list[int] = []

    def noting_fetch(customer_id: str):
        depths.append(len(connection.atomic_blocks))
        return fetch(customer_id)

    monkeypatch.setattr(fake, "fetch_customer_bundle", noting_fetch)
    monkeypatch.setattr(refresh, "get_provider", lambda ws: fake)
    rung: list[tuple] = []
    monkeypatch.setattr(snapshots, "enqueue", lambda *args: rung.append(args))
    agent = api_as(workspace, Role.L1)
    outer = len(connection.atomic_blocks)  # the test's own transaction(s)

    # when the panel opens it
    with django_capture_on_commit_callbacks(execute=True):
        answer = read(agent, STRIPE_ACME)

    # then the provider was asked once, inside no transaction of the read path's own; the
    # bundle and the snapshot built from it were still stored together (no rebuild queued)
    assert depths == [outer]
    assert answer["customer"]["id"] == STRIPE_ACME
    assert_true_snapshot(workspace, STRIPE_ACME)
    assert not [args for args in rung if args[0] == snapshots.SNAPSHOT_TASK]


def test_a_write_after_a_build_in_the_same_transaction_still_rings(
    seeded, monkeypatch, django_capture_on_commit_callbacks
):
    rung: list[tuple] = []
    monkeypatch.setattr(snapshots, "enqueue", lambda *args: rung.append(args))
    with django_capture_on_commit_callbacks(execute=True):
        snapshot_mark_stale(workspace_id=seeded.workspace.pk, customer_id=ACME)
        snapshot_build(workspace=seeded.workspace, customer_id=ACME)
        snapshot_mark_stale(workspace_id=seeded.workspace.pk, customer_id=ACME)
    assert rung == [(snapshots.SNAPSHOT_TASK, seeded.workspace.pk, ACME)]
    pending = row(seeded.workspace, ACME)
    assert pending.built_version < pending.wanted_version


def test_a_cached_entry_from_before_the_text_body_is_a_miss_not_an_error(seeded, settings, api_as):
    from django.core.cache import cache

    settings.BILLING_DESK_CONTEXT_CACHE_SECONDS = 60
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
            "LOCATION": "snapshot-text-tests",
        }
    }
    cache.clear()
    agent = api_as(seeded.workspace, Role.MANAGER)
    first = read(agent, ACME)
    # given the entry as the previous release cached it (the decoded data, no body)
    key = f"billing-desk:ctx:{seeded.workspace.pk}:{ACME}"
    entry = cache.get(key)
    assert entry is not None and "body" in entry["data"]
    old = {k: v for k, v in entry["data"].items() if k != "body"}
    cache.set(key, {"v": entry["v"], "data": {**old, "data": without_request_fields(first)}}, 60)

    # then the next open reads the snapshot and answers the same
    sql: list[str] = []
    assert read(agent, ACME, sql) == first
    assert any("customersnapshot" in q for q in sql)
    cache.clear()
