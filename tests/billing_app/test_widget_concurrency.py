"""The widget under concurrent requests, on PostgreSQL's real row locks and constraints:
"contact support" sends, and identical opens and answers (one event, every one answered)."""

from __future__ import annotations

import json

import pytest
from django.core.cache import cache
from django.db import connection
from django.test import Client

from billing_app.models import BillingWidgetEvent, OutboxMessage
from billing_app.selectors.widget import widget_customer
from billing_app.services.widget import (
    WidgetCaller,
    WidgetThrottled,
    widget_answer,
    widget_contact,
    widget_open,
)
from billing_app.services.widget import contact as widget_contact_module
from tests.concurrency import run_at_once

from .actions_support import account_seed
from .widget_support import ORIGIN, sign, widget_enable

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif(
        connection.vendor != "postgresql",
        reason="needs PostgreSQL (DATABASE_URL) for concurrent transactions and row locks",
    ),
    pytest.mark.django_db(transaction=True),
]


@pytest.fixture
def caller(workspace):
    cache.clear()  # the hourly request counters
    account_seed(workspace)
    widget = widget_enable(workspace)
    customer = widget_customer(workspace=workspace, customer_id="cus_acme")
    return WidgetCaller(widget=widget, workspace=workspace, customer=customer, origin=ORIGIN)


def tickets() -> int:
    return OutboxMessage.objects.filter(kind=OutboxMessage.Kind.CUSTOMER_TICKET).count()


def test_twenty_sends_of_one_visit_at_once_make_one_ticket(caller):
    results = run_at_once(
        20, lambda i: widget_contact(caller=caller, visit="visit-race-0001", message="Help")
    )

    assert not [r for r in results if isinstance(r, BaseException)]
    assert len({r.pk for r in results}) == 1
    assert tickets() == 1
    assert BillingWidgetEvent.objects.filter(kind="contact").count() == 1


def test_sends_from_many_visits_at_once_never_pass_the_hourly_limit_together(caller):
    results = run_at_once(
        10,
        lambda i: widget_contact(caller=caller, visit=f"visit-race-{i:04}", message="Help"),
    )

    limit = widget_contact_module.CONTACTS_PER_HOUR
    refused = [r for r in results if isinstance(r, WidgetThrottled)]
    assert len(refused) == 10 - limit
    assert not [r for r in results if isinstance(r, BaseException) and r not in refused]
    assert tickets() == limit


# --- identical opens and answers: the unique constraint decides, nobody gets an error -----------


def test_twenty_identical_answers_at_once_count_once_and_all_answer(caller):
    results = run_at_once(
        20, lambda i: widget_answer(caller=caller, visit="visit-race-0101", question="invoices")
    )

    assert not [r for r in results if isinstance(r, BaseException)]
    assert BillingWidgetEvent.objects.filter(kind="answered").count() == 1


def test_twenty_identical_opens_at_once_count_once(caller):
    results = run_at_once(20, lambda i: widget_open(caller=caller, visit="visit-race-0102"))

    assert not [r for r in results if isinstance(r, BaseException)]
    assert BillingWidgetEvent.objects.filter(kind="opened").count() == 1


def test_twenty_identical_http_answers_at_once_are_all_200(caller):
    body = json.dumps(
        {"customer": "cus_acme", "signature": sign("cus_acme"), "visit": "visit-race-0103"}
    )

    def ask(i):
        return (
            Client()
            .post(
                f"/widget/api/v1/{caller.workspace.slug}/answers/invoices/",
                data=body,
                content_type="application/json",
                HTTP_ORIGIN=ORIGIN,
            )
            .status_code
        )

    assert run_at_once(20, ask) == [200] * 20
    assert BillingWidgetEvent.objects.filter(kind="answered").count() == 1
