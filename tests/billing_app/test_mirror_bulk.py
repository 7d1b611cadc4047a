"""``mirror_upsert_bulk`` leaves exactly the rows that ``mirror_upsert`` one by one leaves."""

from __future__ import annotations

import copy
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from billing_app.demo.seed import DemoSeeder as _Seeder
from billing_app.models import (
    MirrorBalanceTransaction,
    MirrorCharge,
    MirrorCustomer,
    MirrorDiscount,
    MirrorInvoice,
    MirrorInvoiceLine,
    MirrorPaymentMethod,
    MirrorPrice,
    MirrorProduct,
    MirrorRefund,
    MirrorSubscription,
    MirrorSubscriptionItem,
)
from billing_app.services.mirror import mirror_upsert
from billing_app.services.mirror_bulk import mirror_upsert_bulk

MODELS = (
    MirrorCustomer,
    MirrorProduct,
    MirrorPrice,
    MirrorSubscription,
    MirrorSubscriptionItem,
    MirrorInvoice,
    MirrorInvoiceLine,
    MirrorCharge,
    MirrorRefund,
    MirrorPaymentMethod,
    MirrorBalanceTransaction,
    MirrorDiscount,
)
SKIP = {"id", "workspace", "synced_at", "source_updated", "bundle_synced_at"}


def snapshot(workspace) -> dict:
    rows = {}
    for model in MODELS:
        names = [f.name for f in model._meta.concrete_fields if f.name not in SKIP]
        for row in model.objects.filter(workspace=workspace).values(*names):
            rows[(model.__name__, row["stripe_id"])] = row
    return rows


@pytest.fixture
def objects():
    return _Seeder(timezone.now()).build()


def test_a_bundle_stored_in_bulk_equals_one_upsert_per_object(make_workspace, objects):
    # given the same objects, stored one by one in one workspace and in bulk in another
    one_by_one, bulk = make_workspace(), make_workspace()
    read_at = timezone.now()
    for obj in objects:
        mirror_upsert(workspace=one_by_one, obj=obj, read_at=read_at)

    # when the bulk path stores them
    with CaptureQueriesContext(connection) as queries:
        count = mirror_upsert_bulk(workspace=bulk, objects=objects, read_at=read_at)

    # then every row is the same, for far fewer queries
    assert count == len(objects)
    expected = snapshot(one_by_one)
    assert len(expected) > len(objects)  # children (items, lines, refunds) were expanded too
    assert snapshot(bulk) == expected
    assert len(queries.captured_queries) < len(objects)


def test_rows_that_exist_take_the_careful_path_and_end_the_same(make_workspace, objects):
    # given a workspace that already mirrors an older state of some objects,
    # including a subscription item that Stripe has since removed
    one_by_one, bulk = make_workspace(), make_workspace()
    subscription = next(o for o in objects if o["object"] == "subscription")
    older = copy.deepcopy(subscription)
    older["status"] = "past_due"
    removed = copy.deepcopy(older["items"]["data"][0])
    removed["id"] = "si_removed_since"
    older["items"]["data"].append(removed)
    customer = next(o for o in objects if o["object"] == "customer")
    read_before, read_now = timezone.now() - timedelta(minutes=5), timezone.now()
    for workspace in (one_by_one, bulk):
        mirror_upsert(workspace=workspace, obj=older, read_at=read_before)
        mirror_upsert(
            workspace=workspace, obj={**customer, "name": "Old name"}, read_at=read_before
        )

    # when the current state is stored one by one in one and in bulk in the other
    for obj in objects:
        mirror_upsert(workspace=one_by_one, obj=obj, read_at=read_now)
    mirror_upsert_bulk(workspace=bulk, objects=objects, read_at=read_now)

    # then both hold the current state, and the removed item is gone from both
    assert snapshot(bulk) == snapshot(one_by_one)
    assert (
        MirrorSubscription.objects.get(workspace=bulk, stripe_id=subscription["id"]).status
        == (subscription["status"])
    )
    assert not MirrorSubscriptionItem.objects.filter(stripe_id="si_removed_since").exists()


def test_a_deleted_customer_is_marked_deleted(make_workspace, objects):
    # given a mirrored customer
    workspace = make_workspace()
    customer = next(o for o in objects if o["object"] == "customer")
    mirror_upsert(workspace=workspace, obj=customer, read_at=timezone.now())

    # when Stripe says it is deleted
    mirror_upsert_bulk(
        workspace=workspace,
        objects=[{"id": customer["id"], "object": "customer", "deleted": True}],
        read_at=timezone.now(),
    )

    # then the row stays, marked deleted
    assert MirrorCustomer.objects.get(workspace=workspace, stripe_id=customer["id"]).deleted


def test_new_rows_cost_one_lookup_for_every_table_and_one_insert_per_table(make_workspace, objects):
    workspace = make_workspace()
    with CaptureQueriesContext(connection) as queries:
        mirror_upsert_bulk(workspace=workspace, objects=objects, read_at=timezone.now())
    sql = [q["sql"] for q in queries.captured_queries]
    lookups = [q for q in sql if q.lstrip("(").startswith("SELECT") and "billing_app_mirror" in q]
    inserts = [q for q in sql if q.startswith("INSERT") and "billing_app_mirror" in q]
    assert len(lookups) == 1 and "UNION ALL" in lookups[0]
    tables = {model._meta.db_table for model in MODELS if model.objects.filter(workspace=workspace)}
    # one INSERT per table (SQLite splits a long one by its bound-parameter limit)
    assert {q.split('"')[1] for q in inserts} == tables
    if connection.vendor == "postgresql":
        assert len(inserts) == len(tables)
    # no savepoint of its own besides the inserts' one (the caller's transaction is enough)
    assert len([q for q in sql if q.startswith("SAVEPOINT")]) <= 1


def test_a_new_customer_comes_back_from_the_bundle_store_as_stored(make_workspace, objects):
    from billing_app.providers.base import CustomerBundle
    from billing_app.services.refresh import customer_bundle_store

    workspace = make_workspace()
    customer = next(o for o in objects if o["object"] == "customer")
    mine = [o for o in objects if o.get("customer") == customer["id"]]
    bundle = CustomerBundle(
        customer=customer,
        subscriptions=[o for o in mine if o["object"] == "subscription"],
        invoices=[o for o in mine if o["object"] == "invoice"],
        charges=[o for o in mine if o["object"] == "charge"],
    )
    read_at = timezone.now()
    with CaptureQueriesContext(connection) as queries:
        stored = customer_bundle_store(
            workspace=workspace, customer_id=customer["id"], bundle=bundle, read_at=read_at
        )
    sql = [q["sql"] for q in queries.captured_queries]
    # inserted with its bundle_synced_at: no UPDATE of it, no re-read after the store
    assert not [q for q in sql if q.startswith("UPDATE") and "mirrorcustomer" in q]
    assert not [q for q in sql if q.startswith('SELECT "billing_app_mirrorcustomer"."id"')]
    fresh = MirrorCustomer.objects.get(workspace=workspace, stripe_id=customer["id"])
    assert stored.pk == fresh.pk and stored.bundle_synced_at == read_at
    names = [f.attname for f in MirrorCustomer._meta.concrete_fields]
    assert {n: getattr(stored, n) for n in names} == {n: getattr(fresh, n) for n in names}

    # a second store of the same customer moves bundle_synced_at forward the usual way
    later = timezone.now()
    again = customer_bundle_store(
        workspace=workspace, customer_id=customer["id"], bundle=bundle, read_at=later
    )
    assert again.bundle_synced_at == later


def test_existing_rows_cost_one_locking_read_and_one_update_per_table(make_workspace, objects):
    # given a workspace mirroring everything from an older read
    workspace = make_workspace()
    mirror_upsert_bulk(
        workspace=workspace, objects=objects, read_at=timezone.now() - timedelta(minutes=5)
    )
    # when a refresh stores the same bundle read now
    with CaptureQueriesContext(connection) as queries:
        mirror_upsert_bulk(workspace=workspace, objects=objects, read_at=timezone.now())
    sql = [q["sql"] for q in queries.captured_queries]
    tables = {model._meta.db_table for model in MODELS if model.objects.filter(workspace=workspace)}
    updates = [q for q in sql if q.startswith("UPDATE") and "billing_app_mirror" in q]
    # one UPDATE per table (Django splits a long one in batches on SQLite); the removed
    # items and discounts of every owner in one statement each
    assert {q.split('"')[1] for q in updates} <= tables | {"billing_app_mirrordiscount"}
    if connection.vendor == "postgresql":
        assert len(updates) <= len(tables) + 1
    assert len([q for q in sql if q.startswith("DELETE")]) == 1
    assert len([q for q in sql if "mirrordiscount" in q and q.startswith("UPDATE")]) == 1
    assert len(sql) < len(objects) // 4


def test_a_late_bundle_writes_nothing_over_a_newer_read(make_workspace, objects):
    # given everything mirrored from a read made now
    workspace = make_workspace()
    now = timezone.now()
    mirror_upsert_bulk(workspace=workspace, objects=objects, read_at=now)
    before = snapshot(workspace)

    # when a bundle read earlier (its answer arrived late) says other things
    late = copy.deepcopy(objects)
    for obj in late:
        if obj["object"] == "customer":
            obj["name"] = "Late name"
        if obj["object"] == "subscription":
            obj["status"] = "past_due"
    mirror_upsert_bulk(workspace=workspace, objects=late, read_at=now - timedelta(seconds=30))

    # then nothing moved back
    assert snapshot(workspace) == before
