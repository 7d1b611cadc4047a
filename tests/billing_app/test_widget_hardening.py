"""The billing widget after the security review (r3): events counted once without a
check-then-insert, the hourly limit counting requests, one-day refund links re-used, no
"we opened a ticket" when no helpdesk can, unstorable messages refused, every error
readable by the allowed page, ids matched whole."""

from __future__ import annotations

import json
import logging
from datetime import timedelta

import pytest
from django.core.cache import cache
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from billing_app.checks import billing_widget_ready
from billing_app.models import BillingWidgetEvent, OutboxMessage, SelfServiceLink
from billing_app.selectors.widget import widget_customer
from billing_app.services.refund_links import refund_link_create
from billing_app.services.widget import WidgetCaller, widget_answer
from billing_app.services.widget import answers as widget_answers
from billing_app.services.widget.answers import _event_once

from .actions_support import account_seed
from .widget_support import ORIGIN, VISIT, call, sign, widget_enable


@pytest.fixture
def widget(workspace):
    cache.clear()  # the hourly request counters live in the cache
    account_seed(workspace)
    yield widget_enable(workspace)
    cache.clear()


@pytest.fixture
def caller(widget):
    customer = widget_customer(workspace=widget.workspace, customer_id="cus_acme")
    return WidgetCaller(widget=widget, workspace=widget.workspace, customer=customer, origin=ORIGIN)


def helpdesks_off(workspace) -> None:
    for link in workspace.installation_links.select_related("installation"):
        link.installation.is_active = False
        link.installation.save(update_fields=["is_active"])


# --- events: one insert, no check-then-act ------------------------------------------------------


def test_an_event_is_one_insert_that_a_twin_turns_into_nothing(caller):
    with CaptureQueriesContext(connection) as first:
        _event_once(caller, visit=VISIT, kind="answered", question="invoices")
    with CaptureQueriesContext(connection) as twin:
        _event_once(caller, visit=VISIT, kind="answered", question="invoices")

    # no SELECT before the INSERT for a simultaneous twin to slip between (the unique
    # constraint decides, ON CONFLICT DO NOTHING / INSERT OR IGNORE), and no IntegrityError
    assert [q["sql"].split()[0].upper() for q in first.captured_queries] == ["INSERT"]
    assert [q["sql"].split()[0].upper() for q in twin.captured_queries] == ["INSERT"]
    assert BillingWidgetEvent.objects.count() == 1


def test_repeated_opens_and_answers_of_a_visit_answer_and_count_once(client, widget):
    codes = [call(client, widget.workspace, "open/").status_code for _ in range(2)]
    codes += [call(client, widget.workspace, "answers/invoices/").status_code for _ in range(2)]

    assert codes == [200, 200, 200, 200]
    assert BillingWidgetEvent.objects.count() == 2


# --- the hourly limit counts requests ----------------------------------------------------------


def test_one_visit_re_used_is_still_rate_limited(client, widget, monkeypatch):
    monkeypatch.setattr(widget_answers, "EVENTS_PER_HOUR", 5)

    codes = [call(client, widget.workspace, "answers/next_invoice/").status_code for _ in range(8)]

    assert codes == [200] * 5 + [429] * 3
    assert BillingWidgetEvent.objects.count() == 1  # one visit, one question


def test_the_limit_fails_open_when_the_cache_cannot_count(client, widget, monkeypatch):
    monkeypatch.setattr(widget_answers, "EVENTS_PER_HOUR", 1)

    def down(key, delta=1, version=None):
        raise ValueError("cache unavailable")

    monkeypatch.setattr(cache, "incr", down)

    codes = [call(client, widget.workspace, "answers/invoices/").status_code for _ in range(3)]

    assert codes == [200, 200, 200]


# --- refund links: re-used for half a one-day link's life --------------------------------------


def test_one_day_links_are_re_used_and_leave_the_panel_its_quota(client, widget):
    workspace = widget.workspace
    workspace.self_service_link_days = 1
    workspace.save(update_fields=["self_service_link_days"])

    codes = [call(client, workspace, "answers/refund/").status_code for _ in range(11)]

    assert codes == [200] * 11
    assert SelfServiceLink.objects.filter(source="widget").count() == 1
    # the agent's panel can still send the customer a link
    refund_link_create(workspace=workspace, customer_id="cus_acme", source="panel")


def test_a_one_day_link_is_handed_out_until_half_its_life_is_left(caller):
    workspace = caller.workspace
    workspace.self_service_link_days = 1
    workspace.save(update_fields=["self_service_link_days"])
    t0 = timezone.now()

    first = widget_answer(caller=caller, visit=VISIT, question="refund", now=t0)
    later = widget_answer(
        caller=caller, visit=VISIT, question="refund", now=t0 + timedelta(hours=11)
    )
    fresh = widget_answer(
        caller=caller, visit=VISIT, question="refund", now=t0 + timedelta(hours=13)
    )

    assert later.links[0].url == first.links[0].url  # thirteen hours left: the same link
    assert fresh.links[0].url != first.links[0].url  # eleven hours left: a new one
    assert SelfServiceLink.objects.filter(source="widget").count() == 2


# --- contact support ---------------------------------------------------------------------------


@pytest.mark.parametrize("message", ["help\u0000me", "\ud800 help"])
def test_a_message_that_cannot_be_stored_is_refused_400(widget, message):
    body = json.dumps(
        {"customer": "cus_acme", "signature": sign("cus_acme"), "visit": VISIT, "message": message}
    )
    response = Client(raise_request_exception=False).post(
        f"/widget/api/v1/{widget.workspace.slug}/contact/",
        data=body,
        content_type="application/json",
        HTTP_ORIGIN=ORIGIN,
    )

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "message_invalid"
    assert response["Access-Control-Allow-Origin"] == ORIGIN
    assert not OutboxMessage.objects.filter(kind=OutboxMessage.Kind.CUSTOMER_TICKET).exists()
    assert not BillingWidgetEvent.objects.filter(kind="contact").exists()


def test_contact_without_a_helpdesk_that_opens_tickets_is_refused(client, widget):
    helpdesks_off(widget.workspace)

    response = call(
        client, widget.workspace, "contact/", message="Refund my double charge", lang="de"
    )

    assert response.status_code == 503
    assert response.json()["error"]["code"] == "no_helpdesk"
    assert response["Content-Language"] == "de"
    assert response["Access-Control-Allow-Origin"] == ORIGIN
    assert not OutboxMessage.objects.filter(kind=OutboxMessage.Kind.CUSTOMER_TICKET).exists()
    assert not BillingWidgetEvent.objects.filter(kind="contact").exists()


def test_the_check_warns_of_an_enabled_widget_no_helpdesk_can_take_contacts(widget):
    assert billing_widget_ready(None) == []

    helpdesks_off(widget.workspace)

    warnings = billing_widget_ready(None)
    assert [w.id for w in warnings] == ["billing.W031"]
    assert "'acme'" in warnings[0].msg and "can open tickets" in warnings[0].msg


# --- errors the allowed page can read ------------------------------------------------------------


@pytest.mark.parametrize(
    "body,content_type,status",
    [
        ("{", "application/json", 400),
        ("x", "text/plain", 415),
        ("[]", "application/json", 400),
    ],
)
def test_body_errors_carry_cors_for_the_allowed_origin(client, widget, body, content_type, status):
    response = client.post(
        f"/widget/api/v1/{widget.workspace.slug}/start/",
        data=body,
        content_type=content_type,
        HTTP_ORIGIN=ORIGIN,
    )

    assert response.status_code == status
    assert response["Access-Control-Allow-Origin"] == ORIGIN


def test_body_errors_from_a_foreign_origin_carry_no_cors(client, widget):
    response = client.post(
        f"/widget/api/v1/{widget.workspace.slug}/start/",
        data="{",
        content_type="application/json",
        HTTP_ORIGIN="https://evil.example",
    )

    assert response.status_code == 403
    assert "Access-Control-Allow-Origin" not in response


def test_an_unexpected_exception_is_the_json_envelope_with_cors_and_logged(
    widget, monkeypatch, settings, caplog
):
    settings.DEBUG = False

    def boom(**kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(widget_answers, "account_answer", boom)

    with caplog.at_level(logging.ERROR, logger="billing_app.web.widget"):
        response = call(
            Client(raise_request_exception=False), widget.workspace, "answers/invoices/"
        )

    assert response.status_code == 500
    assert response["Content-Type"].startswith("application/json")
    assert response.json()["error"]["code"] == "internal_error"
    assert response["Access-Control-Allow-Origin"] == ORIGIN
    assert any(r.exc_info and "boom" in str(r.exc_info[1]) for r in caplog.records)


# --- ids are matched whole -----------------------------------------------------------------------


def test_a_trailing_newline_does_not_pass_the_id_checks(client, widget):
    customer = call(client, widget.workspace, "start/", customer="cus_acme\n")
    visit = call(client, widget.workspace, "open/", visit=VISIT + "\n")
    signature = call(client, widget.workspace, "start/", signature=sign("cus_acme") + "\n")

    assert customer.status_code == 401
    assert visit.status_code == 400
    assert visit.json()["error"]["code"] == "invalid_visit"
    assert signature.status_code == 401
