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
