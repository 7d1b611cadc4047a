"""Writers racing on PostgreSQL: two events about one new object, many refreshes at once."""

from __future__ import annotations

import threading

import pytest
from django.db import connection, connections
from django.utils import timezone

from billing_app.models import MirrorCharge, MirrorRefund
from billing_app.services.mirror import mirror_upsert
from billing_app.services.mirror_bulk import mirror_upsert_bulk
from tests.billing_app.stripe_support import load

from .conftest import NOW

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif(
        connection.vendor != "postgresql",
        reason="needs PostgreSQL (DATABASE_URL) for concurrent transactions",
    ),
    pytest.mark.django_db(transaction=True),
]


def run_at_once(count, work):
    barrier = threading.Barrier(count)
    errors: list[BaseException] = []

    def run(n):
        try:
            barrier.wait()
            work(n)
        except BaseException as exc:  # reported below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(n,)) for n in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return errors


def test_concurrent_first_upserts_of_one_object_store_it_once(make_workspace):
    # given a charge the mirror has never seen, arriving in eight events at once
    workspace = make_workspace()
    states = [
        load(
            "charge",
            created=NOW - 86400,
            amount_refunded=1000 * n,
            refunds={"object": "list", "data": []},
        )
        for n in range(8)
    ]

    # when eight writers upsert it at the same moment (each with its own event time)
    errors = run_at_once(
        8, lambda n: mirror_upsert(workspace=workspace, obj=states[n], source_updated=NOW + n)
    )

    # then none failed on the unique constraint, one row exists, holding the newest state
    assert errors == []
    rows = MirrorCharge.objects.filter(workspace=workspace)
    assert rows.count() == 1
    assert rows.get().amount_refunded == 7000


def test_bulk_store_racing_webhooks_ends_with_every_object_once(make_workspace):
    # given a refresh storing a charge with its refund while webhooks store the same objects
    workspace = make_workspace()
    refund = load("refund")
    charge = load(
        "charge",
        created=NOW - 86400,
        amount_refunded=refund["amount"],
        refunds={"object": "list", "data": [refund]},
    )

    read_at = timezone.now()

    def work(n):
        if n % 2:
            mirror_upsert_bulk(workspace=workspace, objects=[charge], read_at=read_at)
        else:
            mirror_upsert(workspace=workspace, obj=charge, read_at=read_at)

    errors = run_at_once(6, work)

    assert errors == []
    assert MirrorCharge.objects.filter(workspace=workspace).count() == 1
    assert MirrorRefund.objects.filter(workspace=workspace).count() == 1
