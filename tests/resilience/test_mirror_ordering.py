"""The mirror never goes back in time (issue 12, point 3).

A re-read whose Stripe answer arrives late must not overwrite what a newer re-read
already stored, and the panel must not call data fresh while an event about the
customer is still unapplied. The faults are deterministic: a ``responses`` callback
blocks a Stripe answer on a ``threading.Event`` until the test releases it, so the
late answer always lands after the newer one has committed — no sleeps, no timing.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests
from django.core.cache import cache
from django.db import connection, connections, transaction
from django.utils import timezone

from billing_app.models import MirrorCustomer, MirrorSubscription, StripeEvent
from billing_app.providers.stripe.client import StripeHttpClient
from billing_app.selectors.context import customer_context
from billing_app.selectors.mirror_freshness import customer_mirror_superseded
from billing_app.services import refresh as refresh_service
from billing_app.services.mirror import mirror_upsert
from billing_app.services.refresh import customer_mirror_ensure, customer_refresh
from billing_app.services.webhooks import stripe_event_process
from tests.billing_app.stripe_support import (
    API,
    StripeMock,
    event,
    listing,
    load,
    make_stripe_workspace,
)

CUS = "cus_RbAcmeCorp0001"
SUB = "sub_1RbAcmeEnterprise01"
WAIT = 60  # seconds a thread may wait for its cue before the test fails (never decides outcomes)

postgres_only = pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="needs PostgreSQL (DATABASE_URL) for concurrent transactions and row locks",
)


@pytest.fixture(autouse=True)
def _no_backoff(monkeypatch):
    monkeypatch.setattr(StripeHttpClient, "backoff_scale", 0.0)


@pytest.fixture(autouse=True)
def _no_background_refresh(monkeypatch):
    """A stale answer queues a refresh; here it would run eagerly against unregistered URLs."""
    monkeypatch.setattr(refresh_service, "customer_refresh_enqueue", lambda **kwargs: True)


def active() -> dict[str, Any]:
    return load("subscription")


def canceled() -> dict[str, Any]:
    now = int(time.time())
    return load("subscription", status="canceled", canceled_at=now, ended_at=now)


def mirrored_workspace(make_workspace):
    """A Stripe workspace mirroring Acme with an active subscription, read a minute ago."""
    workspace = make_stripe_workspace(make_workspace)
    read_a_minute_ago = timezone.now() - timedelta(minutes=1)
    mirror_upsert(workspace=workspace, obj=load("customer"), read_at=read_a_minute_ago)
    mirror_upsert(workspace=workspace, obj=active(), read_at=read_a_minute_ago)
    MirrorCustomer.objects.filter(workspace=workspace, stripe_id=CUS).update(
        bundle_synced_at=read_a_minute_ago
    )
    return workspace


def stored_event(workspace, event_id: str, type_: str, obj: dict[str, Any]) -> StripeEvent:
    payload = event(event_id, type_, obj, created=int(time.time()))
    return StripeEvent.objects.create(
        workspace=workspace,
        event_id=event_id,
        type=type_,
        created=datetime.fromtimestamp(payload["created"], tz=UTC),
        payload=payload,
        customer_id=obj.get("customer") or "",  # named at intake (issue 15)
    )


class Answers:
    """Stripe's answers to one URL, in order; the ones marked ``hold`` wait for ``release``."""

    def __init__(self, http, path: str, answers: list[tuple[dict[str, Any], bool]]):
        self.answers = list(answers)
        self.sent = threading.Event()  # the held request has been sent (its read has started)
        self.release = threading.Event()
        self.lock = threading.Lock()
        http.add_callback("GET", API + path, callback=self, content_type="application/json")

    def __call__(self, request: requests.PreparedRequest) -> tuple[int, dict, str]:
        import json

        with self.lock:
            body, hold = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if hold:
            self.sent.set()
            assert self.release.wait(WAIT), "the test never released the held answer"
        return 200, {}, json.dumps(body)


class InThread:
    """Run ``fn`` in a thread with its own database connection; re-raise its error on join."""

    def __init__(self, fn):
        self.error: BaseException | None = None
        self.result: Any = None

        def run():
            try:
                self.result = fn()
            except BaseException as exc:  # re-raised in join()
                self.error = exc
            finally:
                connections.close_all()

        self.thread = threading.Thread(target=run)
        self.thread.start()

    def join(self) -> Any:
        self.thread.join(WAIT)
        assert not self.thread.is_alive(), "the thread did not finish"
        if self.error is not None:
            raise self.error
        return self.result


def subscription_row(workspace) -> MirrorSubscription:
    return MirrorSubscription.objects.get(workspace=workspace, stripe_id=SUB)


def context_of(workspace) -> tuple[dict[str, Any], bool]:
    state = customer_mirror_ensure(workspace=workspace, customer_id=CUS)
    return customer_context(workspace=workspace, customer=state.customer), state.stale


@pytest.mark.django_db(transaction=True)
def test_a_late_webhook_reread_does_not_bring_back_a_canceled_subscription(make_workspace, http):
    # given Acme's active subscription, and two events about it: an update (re-read #1),
    # then the cancellation (re-read #2). Stripe holds its answer to re-read #1 ("active")
    # and answers re-read #2 at once ("canceled")
    workspace = mirrored_workspace(make_workspace)
    updated = stored_event(workspace, "evt_1Updated", "customer.subscription.updated", active())
    deleted = stored_event(workspace, "evt_2Deleted", "customer.subscription.deleted", canceled())
    stripe = Answers(http, f"/v1/subscriptions/{SUB}", [(active(), True), (canceled(), False)])
    # (issue 15: a payload newer than the mirror is applied with no re-read; the mirror read
    # within the events' second cannot be ordered against them, so they are re-read)
    MirrorSubscription.objects.filter(workspace=workspace).update(read_at=updated.created)

    # when re-read #1 starts, re-read #2 starts after Stripe cancelled and commits,
    first = InThread(lambda: stripe_event_process(event_pk=updated.pk))
    assert stripe.sent.wait(WAIT)
    stripe_event_process(event_pk=deleted.pk)
    assert subscription_row(workspace).status == "canceled"
    _, stale_meanwhile = context_of(workspace)  # event #1 is not applied yet
    # and then re-read #1's late answer ("active") arrives
    stripe.release.set()
    first.join()

    # then the mirror stays canceled, both events are processed, and the context says so
    row = subscription_row(workspace)
    assert row.status == "canceled"
    assert row.data["status"] == "canceled"
    assert set(StripeEvent.objects.values_list("status", flat=True)) == {"processed"}
    context, stale = context_of(workspace)
    assert stale_meanwhile is True
    assert stale is False
    assert [s["status"] for s in context["subscriptions"]] == ["canceled"]


@pytest.mark.django_db(transaction=True)
def test_a_refresh_answered_late_does_not_overwrite_a_newer_webhook_reread(make_workspace, http):
    # given Acme mirrored with an active subscription; a background refresh whose
    # subscription listing Stripe holds (it lists the subscription as active)
    workspace = mirrored_workspace(make_workspace)
    stripe = StripeMock(http)
    stripe.on("GET", f"/v1/customers/{CUS}", load("customer"))
    stripe.on("GET", "/v1/invoices", listing("/v1/invoices"))
    stripe.on("GET", "/v1/charges", listing("/v1/charges"))
    stripe.on("GET", f"/v1/customers/{CUS}/payment_methods", listing("/v1/payment_methods"))
    stripe.on("GET", f"/v1/customers/{CUS}/balance_transactions", listing("/v1/x"))
    stripe.on("GET", "/v1/products", listing("/v1/products", load("product")))
    held = Answers(http, "/v1/subscriptions", [(listing("/v1/subscriptions", active()), True)])
    Answers(http, f"/v1/subscriptions/{SUB}", [(canceled(), False)])
    deleted = stored_event(workspace, "evt_2Deleted", "customer.subscription.deleted", canceled())

    # when the refresh starts, then the cancellation's webhook re-reads and commits,
    refresh = InThread(lambda: customer_refresh(workspace_id=workspace.pk, customer_id=CUS))
    assert held.sent.wait(WAIT)
    stripe_event_process(event_pk=deleted.pk)
    # and then the refresh's late answer arrives
    held.release.set()
    assert refresh.join() is True

    # then the subscription stays canceled, and the context is not stale and says canceled
    assert subscription_row(workspace).status == "canceled"
    context, stale = context_of(workspace)
    assert stale is False
    assert [s["status"] for s in context["subscriptions"]] == ["canceled"]


def test_an_older_read_is_skipped_and_a_newer_one_applied(make_workspace):
    # given a subscription mirrored from a read started at 12:00:10
    workspace = make_stripe_workspace(make_workspace)
    at = datetime(2026, 12, 3, 12, 0, 10, tzinfo=UTC)
    mirror_upsert(workspace=workspace, obj=load("subscription", status="past_due"), read_at=at)

    # when a read started a microsecond earlier is written after it
    mirror_upsert(
        workspace=workspace,
        obj=load("subscription", status="active"),
        read_at=at - timedelta(microseconds=1),
    )

    # then nothing changed; a read started at the same instant or later is applied
    assert (subscription_row(workspace).status, subscription_row(workspace).read_at) == (
        "past_due",
        at,
    )
    mirror_upsert(workspace=workspace, obj=load("subscription", status="unpaid"), read_at=at)
    assert subscription_row(workspace).status == "unpaid"
    later = at + timedelta(seconds=1)
    mirror_upsert(workspace=workspace, obj=load("subscription", status="active"), read_at=later)
    assert (subscription_row(workspace).status, subscription_row(workspace).read_at) == (
        "active",
        later,
    )


def test_an_event_payload_is_ordered_by_the_event_time(make_workspace):
    # given a subscription read at 12:00:10
    workspace = make_stripe_workspace(make_workspace)
    at = datetime(2026, 12, 3, 12, 0, 10, tzinfo=UTC)
    mirror_upsert(workspace=workspace, obj=active(), read_at=at)

    # when the payload of an event created at 12:00:05 is written
    mirror_upsert(
        workspace=workspace,
        obj=load("subscription", status="past_due"),
        source_updated=int(at.timestamp()) - 5,
    )

    # then the newer read stays
    assert subscription_row(workspace).status == "active"


def test_stripes_final_states_are_never_reopened(make_workspace):
    # given a canceled subscription
    workspace = make_stripe_workspace(make_workspace)
    at = timezone.now()
    mirror_upsert(workspace=workspace, obj=canceled(), read_at=at)

    # when a state saying "active" is stamped later (clock skew between hosts, say)
    mirror_upsert(workspace=workspace, obj=active(), read_at=at + timedelta(seconds=5))

    # then it stays canceled: Stripe never reactivates a canceled subscription
    assert subscription_row(workspace).status == "canceled"


def test_a_write_without_a_read_time_refetches_instead_of_overwriting(make_workspace, http):
    # given a subscription mirrored as active, and Stripe now answering "canceled"
    workspace = make_stripe_workspace(make_workspace)
    mirror_upsert(workspace=workspace, obj=active(), read_at=timezone.now() - timedelta(minutes=1))
    stripe = StripeMock(http)
    stripe.on("GET", f"/v1/subscriptions/{SUB}", canceled())

    # when a state of unknown read time ("past_due") is written
    before = timezone.now()
    mirror_upsert(workspace=workspace, obj=load("subscription", status="past_due"))

    # then the object was re-fetched and the re-read stored, stamped with its own read time
    row = subscription_row(workspace)
    assert len(stripe.requests_to("GET", f"/v1/subscriptions/{SUB}")) == 1
    assert row.status == "canceled"
    assert row.read_at >= before


def test_a_write_without_a_read_time_and_stripe_down_leaves_the_row(make_workspace, http):
    # given a subscription mirrored as active, and Stripe not answering
    workspace = make_stripe_workspace(make_workspace)
    read = timezone.now() - timedelta(minutes=1)
    mirror_upsert(workspace=workspace, obj=active(), read_at=read)
    StripeMock(http).on(
        "GET", f"/v1/subscriptions/{SUB}", exc=requests.exceptions.ConnectionError("refused")
    )

    # when a state of unknown read time is written
    mirror_upsert(workspace=workspace, obj=load("subscription", status="past_due"))

    # then the row is left as it was; a new object is still inserted (nothing to go back from)
    assert (subscription_row(workspace).status, subscription_row(workspace).read_at) == (
        "active",
        read,
    )
    mirror_upsert(workspace=workspace, obj=load("subscription", id="sub_New", status="trialing"))
    fresh = MirrorSubscription.objects.get(workspace=workspace, stripe_id="sub_New")
    assert (fresh.status, fresh.read_at) == ("trialing", None)


def test_a_skipped_write_keeps_the_cached_context_and_a_newer_one_drops_it(
    make_workspace, settings, django_capture_on_commit_callbacks
):
    # given the context cache on and Acme's subscription mirrored
    settings.BILLING_DESK_CONTEXT_CACHE_SECONDS = 60
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
            "LOCATION": "mirror-ordering-tests",
        }
    }
    cache.clear()
    workspace = make_stripe_workspace(make_workspace)
    at = timezone.now()
    key = f"billing-desk:ctxv:{workspace.pk}:{CUS}"
    with django_capture_on_commit_callbacks(execute=True):
        mirror_upsert(workspace=workspace, obj=active(), read_at=at)
    version = cache.get(key)
    assert version is not None

    # when an older read is written, then a newer one
    with django_capture_on_commit_callbacks(execute=True):
        mirror_upsert(workspace=workspace, obj=canceled(), read_at=at - timedelta(seconds=1))
    after_older = cache.get(key)
    with django_capture_on_commit_callbacks(execute=True):
        mirror_upsert(workspace=workspace, obj=canceled(), read_at=at + timedelta(seconds=1))

    # then the older one bumped nothing, the newer one bumped the customer's version
    assert after_older == version
    assert cache.get(key) not in {None, version}
    cache.clear()


def test_an_unapplied_event_newer_than_the_data_makes_it_stale(make_workspace):
    # given Acme read a minute ago, and an event about Acme's subscription stored just now
    workspace = mirrored_workspace(make_workspace)
    customer = MirrorCustomer.objects.get(workspace=workspace, stripe_id=CUS)
    assert customer_mirror_superseded(workspace=workspace, customer=customer) is False
    pending = stored_event(workspace, "evt_3Pending", "customer.subscription.updated", active())

    # when the panel asks, then the data is superseded until the event is applied
    assert customer_mirror_superseded(workspace=workspace, customer=customer) is True
    StripeEvent.objects.filter(pk=pending.pk).update(status=StripeEvent.Status.PROCESSED)
    assert customer_mirror_superseded(workspace=workspace, customer=customer) is False


@pytest.mark.postgres
@postgres_only
@pytest.mark.django_db(transaction=True)
def test_concurrent_writers_leave_the_newest_read_whatever_the_commit_order(make_workspace):
    # given eight reads of one subscription, started one second apart, the newest canceled
    workspace = make_stripe_workspace(make_workspace)
    start = timezone.now()
    states = [
        (load("subscription", status="past_due"), start + timedelta(seconds=n)) for n in range(7)
    ]
    states.append((canceled(), start + timedelta(seconds=7)))
    for round_ in range(3):
        MirrorSubscription.objects.filter(workspace=workspace).delete()
        barrier = threading.Barrier(8)

        def write(n: int) -> None:
            obj, read_at = states[(n + round_ * 3) % 8]
            barrier.wait(WAIT)
            mirror_upsert(workspace=workspace, obj=obj, read_at=read_at)

        writers = [InThread(lambda n=n: write(n)) for n in range(8)]
        for writer in writers:
            writer.join()

        # then the row holds the newest read, whichever writer committed last
        row = subscription_row(workspace)
        assert (row.status, row.read_at) == ("canceled", start + timedelta(seconds=7))


@pytest.mark.postgres
@postgres_only
@pytest.mark.django_db(transaction=True)
def test_an_older_write_waiting_on_the_row_lock_compares_with_what_committed(make_workspace):
    # given a subscription mirrored as active, and a newer writer holding its row lock
    workspace = make_stripe_workspace(make_workspace)
    at = timezone.now()
    mirror_upsert(workspace=workspace, obj=active(), read_at=at - timedelta(minutes=1))
    locked, commit = threading.Event(), threading.Event()

    def newer() -> None:
        with transaction.atomic():
            mirror_upsert(workspace=workspace, obj=canceled(), read_at=at + timedelta(seconds=1))
            locked.set()
            assert commit.wait(WAIT)

    holder = InThread(newer)
    assert locked.wait(WAIT)

    # when an older read (started before it) is written meanwhile, and the newer one commits
    older = InThread(
        lambda: mirror_upsert(
            workspace=workspace, obj=load("subscription", status="past_due"), read_at=at
        )
    )
    with connection.cursor() as cursor:  # wait until it blocks on the lock (or has finished)
        for _ in range(10_000):
            cursor.execute(
                "SELECT count(*) FROM pg_locks WHERE NOT granted"
                " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
            )
            if cursor.fetchone()[0] or not older.thread.is_alive():
                break
    commit.set()
    holder.join()
    older.join()

    # then the older write saw the committed newer state and changed nothing
    row = subscription_row(workspace)
    assert (row.status, row.read_at) == ("canceled", at + timedelta(seconds=1))
