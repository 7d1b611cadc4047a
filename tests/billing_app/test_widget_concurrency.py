"""The widget's "contact support" under concurrent sends, on PostgreSQL's real row locks."""

from __future__ import annotations

import pytest
from django.db import connection

from billing_app.models import BillingWidgetEvent, OutboxMessage
from billing_app.selectors.widget import widget_customer
from billing_app.services.widget import WidgetCaller, WidgetThrottled, widget_contact
from billing_app.services.widget import contact as widget_contact_module
from tests.concurrency import run_at_once

from .actions_support import account_seed
from .widget_support import ORIGIN, widget_enable

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
