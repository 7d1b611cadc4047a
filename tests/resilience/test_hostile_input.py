"""Hostile input on the JSON surfaces: a clear 4xx in the error envelope, and nothing changes.

DESIGN.md 9: no endpoint answers 500 to malformed input; every error under ``/api/``,
the helpdesk entries, ``/demo/`` and ``/webhooks/`` is ``{"error": {code, message,
details}}`` as ``application/json`` — in DEBUG too, where Django's own pages are HTML
with a traceback. Each case also checks that nothing was written: no action, no Stripe
event, no agent.
"""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.core.exceptions import RequestDataTooBig
from django.test import Client

from billing_app.catalog import Role
from billing_app.models import BillingAction, StripeEvent
from helpdesk_connectors.freshdesk import views as freshdesk_views
from tests.billing_app.stripe_support import load, sign

from .conftest import CH, NOW, refund_body

DEEP = b"[" * 4000
HUGE = b'{"pad": "' + b"x" * (3 * 1024 * 1024) + b'"}'
NOT_UTF8 = b'{"kind": "issue_refund", "ticket_id": "\xff\xfe"}'
TRUNCATED = b'{"kind": "issue_refund", "params": {"charge_id": "ch_'

BODIES = {
    "4000-nested-brackets": (DEEP, 400, "nesting_too_deep"),
    "3-MB-body": (HUGE, 413, "body_too_large"),
    "invalid-utf8": (NOT_UTF8, 400, "malformed_request"),
    "truncated-json": (TRUNCATED, 400, "malformed_request"),
}


def assert_envelope(response, status: int, code: str | None = None) -> dict:
    assert response.status_code == status, response.content[:300]
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"}
    error = body["error"]
    assert set(error) == {"code", "message", "details"}
    assert isinstance(error["code"], str) and error["code"]
    assert isinstance(error["message"], str) and error["message"]
    assert isinstance(error["details"], dict)
    if code is not None:
        assert error["code"] == code
    assert b"Traceback" not in response.content
    return error


def assert_nothing_changed() -> None:
    assert not BillingAction.objects.exists()
    assert not StripeEvent.objects.exists()
    assert not get_user_model().objects.filter(username__startswith="freshdesk:").exists()


@pytest.fixture(params=[False, True], ids=["debug-off", "debug-on"])
def debug(request, settings):
    """Both ways: Django's error pages differ with DEBUG (technical 404/500 pages)."""
    settings.DEBUG = request.param
    return request.param


@pytest.mark.parametrize("case", list(BODIES))
def test_hostile_body_to_the_actions_api_is_refused_in_the_envelope(case, ws, api_as, debug):
    # given an authenticated Manager and a hostile body
    raw, status, code = BODIES[case]
    agent = api_as(ws, Role.MANAGER)

    # when it is posted as JSON to the actions endpoint
    response = agent.post("/api/v1/actions/", data=raw, content_type="application/json")

    # then a 4xx envelope, and no action exists
    assert_envelope(response, status, code)
    assert_nothing_changed()


@pytest.mark.parametrize("case", list(BODIES))
def test_hostile_body_to_the_unauthenticated_freshdesk_entry_is_refused(case, db, debug):
    raw, status, code = BODIES[case]

    response = Client().post("/freshdesk/session/", data=raw, content_type="application/json")

    assert_envelope(response, status, code)
    assert_nothing_changed()


@pytest.mark.parametrize("case", ["3-MB-body"])
def test_an_oversized_webhook_is_413_before_it_is_read(case, ws, debug):
    raw, status, code = BODIES[case]

    response = Client().post(
        f"/webhooks/stripe/{ws.slug}/",
        data=raw,
        content_type="application/json",
        HTTP_STRIPE_SIGNATURE="t=1,v1=00",
    )

    error = assert_envelope(response, status, code)
    assert error["details"] == {"max_bytes": 1024 * 1024}
    assert_nothing_changed()


def test_a_correctly_signed_but_4000_deep_webhook_is_a_json_400(ws, debug):
    # given a body nested 4,000 deep, signed with the endpoint's secret
    payload = "[" * 4000

    response = Client().post(
        f"/webhooks/stripe/{ws.slug}/",
        data=payload,
        content_type="application/json",
        HTTP_STRIPE_SIGNATURE=sign(payload),
    )

    # then refused in the envelope (never a RecursionError 500), and no event is stored
    assert_envelope(response, 400, "nesting_too_deep")
    assert_nothing_changed()


def test_a_valid_body_still_works_after_the_parser_change(ws, api_as, stripe):
    # given Stripe refunding
    stripe.on("GET", f"/v1/charges/{CH}", load("charge", created=NOW - 2 * 86400))
    stripe.on("POST", "/v1/refunds", load("refund"))

    # when a Manager refunds with an ordinary JSON body
    response = api_as(ws, Role.MANAGER).post("/api/v1/actions/", refund_body(), format="json")

    # then the bounded parser read it like DRF's did
    assert response.status_code == 201, response.content
    assert response.json()["status"] == "succeeded"


def test_shallow_nesting_within_the_limit_is_validation_not_parsing(ws, api_as):
    # given params nested 60 deep: legal JSON, nonsense params
    body = b'{"kind": "issue_refund", "customer_id": "cus_1", "params": ' + b"[" * 60
    body += b"]" * 60 + b', "idempotency_key": "k-deep"}'

    response = api_as(ws, Role.MANAGER).post(
        "/api/v1/actions/", data=body, content_type="application/json"
    )

    # then the parser accepted it and the serializer refused it
    error = assert_envelope(response, 400)
    assert error["code"] == "invalid"
    assert_nothing_changed()


@pytest.mark.parametrize(
    "path", ["/api/v1/nope/", "/webhooks/nope/", "/freshdesk/nope/", "/api/nope"]
)
def test_unknown_urls_on_json_surfaces_are_a_json_404(path, db, debug):
    response = Client().get(path)

    assert_envelope(response, 404, "not_found")


def test_debug_really_switches_django_to_its_technical_404_elsewhere(db, settings):
    # given DEBUG on — the HTML pages keep Django's behaviour, which proves DEBUG took effect
    settings.DEBUG = True

    response = Client().get("/no-such-page/")

    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")
    assert b"Using the URLconf defined in" in response.content  # the technical 404 page


def test_html_pages_keep_their_html_404(db):
    response = Client().get("/no-such-page/")

    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")


def test_the_demo_switched_off_is_a_json_404(db, settings, debug):
    settings.DEMO_MODE = False

    response = Client().post(
        "/demo/session/", data=b'{"role": "l1"}', content_type="application/json"
    )

    assert_envelope(response, 404, "not_found")


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/freshdesk/session/"),
        ("put", "/freshdesk/session/"),
        ("get", "/webhooks/stripe/acme/"),
        ("delete", "/zendesk/sidebar/"),
    ],
)
def test_a_wrong_method_is_a_json_405_with_allow(method, path, db, debug):
    response = getattr(Client(), method)(path)

    assert_envelope(response, 405, "method_not_allowed")
    assert response["Allow"] == "POST"
    assert_nothing_changed()


def test_a_wrong_method_on_the_api_is_a_json_405(ws, api_as, debug):
    response = api_as(ws, Role.MANAGER).put("/api/v1/actions/", {}, format="json")

    assert_envelope(response, 405, "method_not_allowed")
    assert_nothing_changed()


def test_a_body_found_too_large_only_when_read_is_a_json_413(db, monkeypatch, debug):
    # given a view that reads the body and meets Django's lazy limit (a body whose length
    # was not declared up front: RequestDataTooBig is raised on the first read)
    def too_big(key):
        raise RequestDataTooBig("Request body exceeded settings.DATA_UPLOAD_MAX_MEMORY_SIZE.")

    monkeypatch.setattr(freshdesk_views, "get_connector", too_big)

    response = Client().post("/freshdesk/session/", data=b"{}", content_type="application/json")

    assert_envelope(response, 413, "body_too_large")


def test_an_unhandled_exception_is_a_json_500_without_traceback(db, monkeypatch, debug):
    # given a bug deep in an entry view (its message must not reach the client)
    def broken(key):
        raise RuntimeError("internal detail: /srv/app/secret.py line 12")

    monkeypatch.setattr(freshdesk_views, "get_connector", broken)

    response = Client().post("/freshdesk/session/", data=b"{}", content_type="application/json")

    assert_envelope(response, 500, "internal_error")
    assert b"internal detail" not in response.content


def test_an_unhandled_exception_in_an_api_view_is_a_json_500(ws, api_as, monkeypatch, debug):
    from billing_app.api import actions as actions_api

    def broken(**kwargs):
        raise RuntimeError("internal detail")

    monkeypatch.setattr(actions_api, "action_submit", broken)

    response = api_as(ws, Role.MANAGER).post("/api/v1/actions/", refund_body(), format="json")

    assert_envelope(response, 500, "internal_error")
    assert b"internal detail" not in response.content
    assert_nothing_changed()


def test_an_entry_error_page_stays_html_for_the_agent_and_is_json_for_programs(db):
    # given a forged Zendesk signed-URL token (the sidebar frame asks for HTML)
    as_browser = Client().post(
        "/zendesk/sidebar/", {"token": "forged"}, HTTP_ACCEPT="text/html,application/xhtml+xml"
    )
    as_program = Client().post("/zendesk/sidebar/", {"token": "forged"})

    # then the agent sees the page; a program gets the same code in the envelope
    assert as_browser.status_code == 401
    assert as_browser["Content-Type"].startswith("text/html")
    error = assert_envelope(as_program, 401)
    assert error["code"].encode() in as_browser.content
    assert "WWW-Authenticate" in as_program
