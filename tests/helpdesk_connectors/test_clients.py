"""The shared HTTP helper and the two API clients: request shapes, errors, rate limits."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
import requests
import responses

from helpdesk_connectors import http as hd_http
from helpdesk_connectors.base import HelpdeskApiError
from helpdesk_connectors.freshdesk import client as fd
from helpdesk_connectors.models import Installation
from helpdesk_connectors.registry import get_connector
from helpdesk_connectors.zendesk import client as zd

from .conftest import FRESHDESK_BASE, ZENDESK_BASE, zendesk_group

# --- http.py -------------------------------------------------------------------------------------


def test_parse_retry_after_seconds_and_dates():
    now = datetime(2026, 11, 27, 12, 0, 0, tzinfo=UTC)
    assert hd_http.parse_retry_after("30") == 30
    assert hd_http.parse_retry_after("Fri, 27 Nov 2026 12:00:45 GMT", now=now) == 45
    assert hd_http.parse_retry_after("Fri, 27 Nov 2026 11:00:00 GMT", now=now) == 0
    assert hd_http.parse_retry_after("999999") == hd_http.MAX_RETRY_AFTER_SECONDS
    assert hd_http.parse_retry_after("soon") is None
    assert hd_http.parse_retry_after(None) is None


def test_timeouts_are_explicit(http, settings):
    settings.HELPDESK_HTTP_TIMEOUT_SECONDS = 7
    http.get("https://h.example/x", json={})
    hd_http.send("GET", "https://h.example/x", service="Test")
    assert hd_http.timeout() == (5.0, 7.0)
    assert http.calls[0].request.req_kwargs["timeout"] == (5.0, 7.0)


@pytest.mark.parametrize(
    "status, headers, code, retryable, retry_after",
    [
        (429, {"Retry-After": "12"}, "helpdesk_rate_limited", True, 12),
        (503, {"Retry-After": "3"}, "helpdesk_unavailable", True, 3),
        (500, {}, "helpdesk_unavailable", True, None),
        (401, {}, "helpdesk_unauthorized", False, None),
        (404, {}, "helpdesk_not_found", False, None),
        (422, {}, "helpdesk_rejected", False, None),
        (302, {"Location": "https://elsewhere.example/"}, "helpdesk_refused", False, None),
    ],
)
def test_error_statuses(http, status, headers, code, retryable, retry_after):
    http.get("https://h.example/x", status=status, headers=headers, json={"error": "x"})
    with pytest.raises(HelpdeskApiError) as excinfo:
        hd_http.send("GET", "https://h.example/x", service="Test")
    exc = excinfo.value
    assert (exc.code, exc.retryable, exc.retry_after, exc.http_status) == (
        code,
        retryable,
        retry_after,
        status,
    )


@pytest.mark.parametrize(
    "error, code",
    [
        (requests.ConnectTimeout(), "helpdesk_timeout"),
        (requests.ConnectionError(), "helpdesk_unreachable"),
    ],
)
def test_transport_errors_are_retryable(http, error, code):
    http.get("https://h.example/x", body=error)
    with pytest.raises(HelpdeskApiError) as excinfo:
        hd_http.send("GET", "https://h.example/x", service="Test", auth=("user", "secret-token"))
    assert excinfo.value.retryable and excinfo.value.code == code
    assert "secret-token" not in str(excinfo.value)


def test_non_json_answer_is_a_clear_error(http):
    http.get("https://h.example/x", body="<html>maintenance</html>")
    with pytest.raises(HelpdeskApiError) as excinfo:
        hd_http.send("GET", "https://h.example/x", service="Test").json()
    assert excinfo.value.code == "helpdesk_bad_response"


# --- Zendesk ------------------------------------------------------------------------------------


def test_zendesk_public_reply_and_note_shapes(http, zendesk_installation):
    http.put(
        f"{ZENDESK_BASE}/api/v2/tickets/4711.json",
        json={
            "ticket": {"id": 4711},
            "audit": {"id": 1, "events": [{"id": 2, "type": "Comment", "public": True}]},
        },
    )
    connector = get_connector("zendesk")
    assert (
        connector.post_public_reply(zendesk_installation, "4711", "Your refund is on its way.")
        == "2"
    )
    assert json.loads(http.calls[0].request.body) == {
        "ticket": {"comment": {"body": "Your refund is on its way.", "public": True}}
    }
    # API token auth: basic {email}/token:{token}
    assert (
        http.calls[0].request.headers["Authorization"]
        == "Basic YWRtaW5AYWNtZS5leGFtcGxlL3Rva2VuOnpkQXBpVG9rZW4="
    )


def test_zendesk_without_credentials_is_a_clear_error(zendesk_installation):
    Installation.objects.filter(pk=zendesk_installation.pk).update(api_token="", oauth_token="")
    zendesk_installation.refresh_from_db()
    with pytest.raises(HelpdeskApiError) as excinfo:
        get_connector("zendesk").post_internal_note(zendesk_installation, "1", "x")
    assert excinfo.value.code == "helpdesk_credentials_missing"


def test_zendesk_membership_pages_are_followed_on_the_same_host_only(http, zendesk_installation):
    first = {
        "group_memberships": [{"id": 1, "user_id": 5, "group_id": 11, "default": True}],
        "groups": [zendesk_group(11, "Support")],
        "next_page": f"{ZENDESK_BASE}/api/v2/users/5/group_memberships.json?page=2&include=groups",
        "previous_page": None,
        "count": 2,
    }
    second = {
        "group_memberships": [{"id": 2, "user_id": 5, "group_id": 12, "default": False}],
        "groups": [zendesk_group(12, "Billing")],
        "next_page": "https://evil.example/api/v2/steal",
        "previous_page": None,
        "count": 2,
    }
    http.get(
        f"{ZENDESK_BASE}/api/v2/users/5/group_memberships.json",
        match=[responses.matchers.query_param_matcher({"include": "groups"})],
        json=first,
    )
    http.get(
        f"{ZENDESK_BASE}/api/v2/users/5/group_memberships.json",
        match=[responses.matchers.query_param_matcher({"page": "2", "include": "groups"})],
        json=second,
    )
    groups = zd.user_groups_list(zendesk_installation, "5")
    assert [(g.id, g.name) for g in groups] == [("11", "Support"), ("12", "Billing")]
    assert len(http.calls) == 2


def test_zendesk_create_ticket_for_a_group_by_name(http, zendesk_installation):
    http.get(
        f"{ZENDESK_BASE}/api/v2/groups.json",
        json={
            "groups": [zendesk_group(11, "Support"), zendesk_group(12, "Customer Success")],
            "next_page": None,
            "previous_page": None,
            "count": 2,
        },
    )
    http.post(
        f"{ZENDESK_BASE}/api/v2/tickets.json",
        status=201,
        json={"ticket": {"id": 9001, "status": "new"}, "audit": {"id": 1, "events": []}},
    )
    ticket_id = get_connector("zendesk").create_ticket(
        zendesk_installation,
        subject="Payment failing 3×: Acme Corp",
        body="Reach out.",
        group="customer success",
    )
    assert ticket_id == "9001"
    sent = json.loads(http.calls[1].request.body)["ticket"]
    assert sent["group_id"] == 12 and sent["comment"] == {"body": "Reach out.", "public": False}


def test_zendesk_create_ticket_for_an_unknown_group(http, zendesk_installation):
    http.get(
        f"{ZENDESK_BASE}/api/v2/groups.json",
        json={"groups": [], "next_page": None, "previous_page": None, "count": 0},
    )
    with pytest.raises(HelpdeskApiError) as excinfo:
        get_connector("zendesk").create_ticket(
            zendesk_installation, subject="s", body="b", group="CSM"
        )
    assert excinfo.value.code == "unknown_group"


def test_zendesk_ticket_record_maps_satisfaction_and_metrics():
    record = zd.ticket_record(
        {
            "id": 5,
            "subject": "Refund",
            "status": "solved",
            "tags": ["billing"],
            "created_at": "2026-11-01T10:00:00Z",
            "updated_at": "2026-11-02T10:00:00Z",
            "satisfaction_rating": {"score": "bad"},
            "group_id": 12,
            "assignee_id": 35436,
        },
        {"ticket_id": 5, "solved_at": "2026-11-02T09:00:00Z", "reopens": 2, "group_stations": 2},
    )
    assert record.satisfaction_score == 1.0
    assert record.reopens == 2 and record.escalated
    assert record.solved_at == datetime(2026, 11, 2, 9, tzinfo=UTC)
    unrated = zd.ticket_record(
        {
            "id": 6,
            "status": "open",
            "created_at": "2026-11-01T10:00:00Z",
            "satisfaction_rating": {"score": "unoffered"},
        },
        None,
    )
    assert unrated.satisfaction_score is None and unrated.solved_at is None


# --- Freshdesk ----------------------------------------------------------------------------------


def test_freshdesk_reply_shape(http, freshdesk_installation):
    http.post(
        f"{FRESHDESK_BASE}/api/v2/tickets/812/reply",
        status=201,
        json={
            "body_text": "Hi",
            "body": "<div>Hi</div>",
            "id": 43000888,
            "user_id": 43000123,
            "from_email": "support@acme.freshdesk.com",
            "cc_emails": [],
            "bcc_emails": [],
            "ticket_id": 812,
            "replied_to": ["ap@acme.example"],
            "attachments": [],
            "created_at": "2026-11-27T10:00:00Z",
            "updated_at": "2026-11-27T10:00:00Z",
        },
    )
    assert (
        get_connector("freshdesk").post_public_reply(freshdesk_installation, "812", "Hi")
        == "43000888"
    )
    assert json.loads(http.calls[0].request.body) == {"body": "Hi"}
    assert http.calls[0].request.headers["Authorization"] == "Basic ZmRBcGlLZXkxMjM6WA=="


def test_freshdesk_create_ticket(http, freshdesk_installation):
    http.get(f"{FRESHDESK_BASE}/api/v2/groups", json=[{"id": 43000700, "name": "CSM"}])
    http.post(
        f"{FRESHDESK_BASE}/api/v2/tickets",
        status=201,
        json={"id": 9100, "status": 2, "subject": "x"},
    )
    assert (
        get_connector("freshdesk").create_ticket(
            freshdesk_installation, subject="x", body="y", group="CSM"
        )
        == "9100"
    )
    sent = json.loads(http.calls[1].request.body)
    assert (
        sent["group_id"] == 43000700
        and sent["email"] == "admin@acme.example"
        and sent["description"] == "y"
    )


def test_freshdesk_ticket_record_status_names():
    record = fd.ticket_record(
        {
            "id": 1,
            "status": 5,
            "created_at": "2026-11-01T10:00:00Z",
            "updated_at": "2026-11-03T10:00:00Z",
            "stats": {"closed_at": "2026-11-03T10:00:00Z", "reopened_at": "2026-11-02T10:00:00Z"},
        }
    )
    assert record.status == "closed"
    assert record.solved_at == datetime(2026, 11, 3, 10, tzinfo=UTC)
    assert record.reopens == 1


def test_freshdesk_rate_limit_is_retryable(http, freshdesk_installation):
    http.post(
        f"{FRESHDESK_BASE}/api/v2/tickets/1/notes",
        status=429,
        headers={"Retry-After": "60"},
        json={},
    )
    with pytest.raises(HelpdeskApiError) as excinfo:
        get_connector("freshdesk").post_internal_note(freshdesk_installation, "1", "x")
    assert excinfo.value.retryable and excinfo.value.retry_after == 60
