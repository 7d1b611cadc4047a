"""Self-service refund requests under real concurrency (PostgreSQL: SQLite has no row locks
and one writer): a request submitted many times at once refunds exactly once."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from billing_app.models import (
    BillingAction,
    MirrorRefund,
    SelfServiceLink,
    SelfServiceRefundRequest,
)
from billing_app.services.mirror import mirror_upsert
from billing_app.services.refund_links import LINKS_PER_CUSTOMER_PER_HOUR, refund_link_create
from billing_app.services.self_service_refunds.requests import (
    REQUESTS_PER_LINK_PER_HOUR,
    RequestRateLimited,
    refund_request_submit,
)
from tests.concurrency import run_at_once

from . import self_service_refund_support as support
from .actions_support import charge

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif(
        connection.vendor != "postgresql",
        reason="needs PostgreSQL (DATABASE_URL) for concurrent transactions and row locks",
    ),
    pytest.mark.django_db(transaction=True),
]

Status = SelfServiceRefundRequest.Status


# The fixtures, shared with the other self-service refund tests.
spy = support.spy
acme = support.acme_limited


def test_twenty_concurrent_submissions_of_one_request_refund_once(acme, spy):
    # given one link and a charge within the self-service limit
    link, _url = refund_link_create(workspace=acme, customer_id="cus_acme", source="panel")

    # when the customer's request arrives twenty times at once (double clicks, tabs, retries)
    results = run_at_once(
        20,
        lambda i: refund_request_submit(
            link=link, charge_id="ch_acme_dup1", reason="charged_twice", comment=f"try {i}"
        ),
    )

    # then one request, one action, one refund at the provider — and every caller is told
    # the same request (refunded, or still being confirmed by the first caller)
    errors = [r for r in results if isinstance(r, BaseException)]
    assert errors == []
    assert {r.pk for r in results} == {results[0].pk}
    assert SelfServiceRefundRequest.objects.count() == 1
    assert BillingAction.objects.count() == 1
    assert len(spy.writes("refund")) == 1
    assert MirrorRefund.objects.filter(workspace=acme, charge_id="ch_acme_dup1").count() == 1
    request = SelfServiceRefundRequest.objects.get()
    assert request.status == Status.REFUNDED
    assert request.action.status == BillingAction.Status.SUCCEEDED
    assert {r.status for r in results} <= {Status.REFUNDED, Status.RECEIVED, Status.PROCESSING}


def test_concurrent_requests_from_several_links_on_one_charge_refund_once(acme, spy):
    # given five links of the same customer (sent by several agents, or a macro and the panel)
    links = [
        refund_link_create(workspace=acme, customer_id="cus_acme", source="panel")[0]
        for _ in range(5)
    ]

    # when each asks for the same charge at the same moment
    results = run_at_once(
        5,
        lambda i: refund_request_submit(link=links[i], charge_id="ch_acme_dup1", reason="other"),
    )

    # then the customer's decision lock serialises them as it does agents' refunds: one is
    # refunded, the others are refused (nothing left to refund) — never two refunds. A
    # refusal while the first request was still open says so (request_pending: "a request
    # for this payment is already with our team"), one after it was refunded the agents' code.
    errors = [r for r in results if isinstance(r, BaseException)]
    assert errors == []
    statuses = sorted(r.status for r in results)
    assert statuses.count(Status.REFUNDED) == 1
    refused = [r.refusal_code for r in results if r.status != Status.REFUNDED]
    assert len(refused) == 4
    assert set(refused) <= {"already_refunded", "request_pending"}
    assert len(spy.writes("refund")) == 1


def test_concurrent_requests_above_the_limit_make_one_approval_and_one_ticket(acme, spy):
    from billing_app.models import ApprovalRequest, OutboxMessage

    link, _url = refund_link_create(workspace=acme, customer_id="cus_acme", source="panel")
    results = run_at_once(
        10,
        lambda i: refund_request_submit(link=link, charge_id="ch_acme_paid", reason="other"),
    )
    assert [r for r in results if isinstance(r, BaseException)] == []
    assert ApprovalRequest.objects.count() == 1
    assert OutboxMessage.objects.filter(kind=OutboxMessage.Kind.CUSTOMER_TICKET).count() == 1
    assert SelfServiceRefundRequest.objects.get().status == Status.WITH_AGENTS
    assert spy.writes() == []


# --- rate limits hold under concurrency (review r2: counted and inserted under a lock) ------


def test_concurrent_posts_on_one_link_stay_within_its_limit(acme, spy):
    now = timezone.now()
    ids = []
    for n in range(15):
        charge_id = f"ch_race_{n}"
        mirror_upsert(
            workspace=acme,
            obj=charge(charge_id, "cus_acme", 1000 + n, now - timedelta(hours=n + 1)),
        )
        ids.append(charge_id)
    link, _url = refund_link_create(workspace=acme, customer_id="cus_acme", source="panel")

    results = run_at_once(
        15, lambda i: refund_request_submit(link=link, charge_id=ids[i], reason="other")
    )

    made = SelfServiceRefundRequest.objects.filter(link=link).count()
    assert made == REQUESTS_PER_LINK_PER_HOUR
    refused = [r for r in results if isinstance(r, BaseException)]
    assert len(refused) == 15 - made
    assert all(isinstance(r, RequestRateLimited) for r in refused), refused


def test_concurrent_link_creations_stay_within_the_customers_limit(acme):
    results = run_at_once(
        30, lambda i: refund_link_create(workspace=acme, customer_id="cus_acme", source="widget")
    )

    made = SelfServiceLink.objects.filter(customer_id="cus_acme").count()
    assert made == LINKS_PER_CUSTOMER_PER_HOUR
    errors = [r for r in results if isinstance(r, BaseException)]
    assert len(errors) == 30 - made
    assert all(getattr(r, "code", "") == "refund_link_rate_limited" for r in errors), errors
