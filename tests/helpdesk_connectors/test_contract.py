"""One contract, every registered connector (STYLE.md 15).

A connector added to ``settings.HELPDESK_CONNECTORS`` fails here until it has a
harness below: how to make its installation and what its helpdesk answers.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.test import RequestFactory
from django.utils import timezone

from helpdesk_connectors.base import (
    ALL_FEATURES,
    AgentProfile,
    EntryRejected,
    HelpdeskApiError,
    HelpdeskConnector,
    NotRegistered,
    TicketPage,
)
from helpdesk_connectors.models import DemoTicket, DemoTicketComment
from helpdesk_connectors.registry import connector_for, get_connector, registered_keys
from tests.helpdesk_support import freshdesk_installation_add, zendesk_installation_add

from .conftest import (
    FRESHDESK_BASE,
    FRESHDESK_ROLES,
    ZENDESK_BASE,
    freshdesk_agent,
    freshdesk_group,
    zendesk_memberships,
    zendesk_user,
)


def _zendesk_ticket(ticket_id: int, updated: str) -> dict[str, Any]:
    return {
        "url": f"{ZENDESK_BASE}/api/v2/tickets/{ticket_id}.json",
        "id": ticket_id,
        "external_id": None,
        "via": {"channel": "email", "source": {"from": {}, "to": {}, "rel": None}},
        "created_at": "2026-11-01T10:00:00Z",
        "updated_at": updated,
        "type": "question",
        "subject": f"Refund request {ticket_id}",
        "raw_subject": f"Refund request {ticket_id}",
        "description": "Please refund the duplicate charge.",
        "priority": "normal",
        "status": "solved",
        "recipient": "support@acme.example",
        "requester_id": 20978392,
        "submitter_id": 20978392,
        "assignee_id": 35436,
        "organization_id": None,
        "group_id": 360000222,
        "collaborator_ids": [],
        "follower_ids": [],
        "email_cc_ids": [],
        "forum_topic_id": None,
        "problem_id": None,
        "has_incidents": False,
        "is_public": True,
        "due_at": None,
        "tags": ["billing", "refund"],
        "custom_fields": [],
        "satisfaction_rating": {"score": "good"},
        "sharing_agreement_ids": [],
        "fields": [],
        "followup_ids": [],
        "ticket_form_id": 360000001,
        "brand_id": 360000002,
        "allow_channelback": False,
        "allow_attachments": True,
        "generated_timestamp": 1764583200,
    }


def _zendesk_metric(ticket_id: int) -> dict[str, Any]:
    return {
        "url": f"{ZENDESK_BASE}/api/v2/ticket_metrics/{ticket_id + 5000}.json",
        "id": ticket_id + 5000,
        "ticket_id": ticket_id,
        "created_at": "2026-11-01T10:00:00Z",
        "updated_at": "2026-11-02T10:00:00Z",
        "group_stations": 1,
        "assignee_stations": 1,
        "reopens": 0,
        "replies": 2,
        "assignee_updated_at": "2026-11-01T11:00:00Z",
        "requester_updated_at": "2026-11-01T10:00:00Z",
        "status_updated_at": "2026-11-02T09:00:00Z",
        "initially_assigned_at": "2026-11-01T10:05:00Z",
        "assigned_at": "2026-11-01T10:05:00Z",
        "solved_at": "2026-11-02T09:00:00Z",
        "latest_comment_added_at": "2026-11-02T09:00:00Z",
        "reply_time_in_minutes": {"calendar": 60, "business": 60},
        "first_resolution_time_in_minutes": {"calendar": 1380, "business": 600},
        "full_resolution_time_in_minutes": {"calendar": 1380, "business": 600},
        "agent_wait_time_in_minutes": {"calendar": 0, "business": 0},
        "requester_wait_time_in_minutes": {"calendar": 60, "business": 60},
        "on_hold_time_in_minutes": {"calendar": 0, "business": 0},
    }


def _freshdesk_ticket(ticket_id: int) -> dict[str, Any]:
    return {
        "cc_emails": [],
        "fwd_emails": [],
        "reply_cc_emails": [],
        "ticket_cc_emails": [],
        "fr_escalated": False,
        "spam": False,
        "email_config_id": None,
        "group_id": 43000500,
        "priority": 1,
        "requester_id": 43000900,
        "responder_id": 43000123,
        "source": 1,
        "company_id": None,
        "status": 4,
        "subject": f"Invoice question {ticket_id}",
        "association_type": None,
        "support_email": None,
        "to_emails": None,
        "product_id": None,
        "id": ticket_id,
        "type": "Question",
        "due_by": "2026-11-04T10:00:00Z",
        "fr_due_by": "2026-11-02T10:00:00Z",
        "is_escalated": False,
        "custom_fields": {},
        "created_at": "2026-11-01T10:00:00Z",
        "updated_at": "2026-11-02T10:00:00Z",
        "associated_tickets_count": None,
        "tags": ["billing"],
        "stats": {
            "agent_responded_at": "2026-11-01T11:00:00Z",
            "requester_responded_at": None,
            "first_responded_at": "2026-11-01T11:00:00Z",
            "status_updated_at": "2026-11-02T09:00:00Z",
            "reopened_at": None,
            "resolved_at": "2026-11-02T09:00:00Z",
            "closed_at": None,
            "pending_since": None,
        },
        "requester": {
            "id": 43000900,
            "name": "Ap Team",
            "email": "ap@acme.example",
            "mobile": None,
            "phone": None,
        },
    }


class Harness:
    """How the contract tests drive one connector."""

    key: str

    def installation(self, workspace):  # pragma: no cover - interface
        raise NotImplementedError

    def agent_id(self) -> str:
        raise NotImplementedError

    def register_agent(self, http) -> None:
        pass

    def register_note(self, http, ticket_id: str) -> None:
        pass

    def register_two_ticket_pages(self, http, installation) -> None:
        pass

    def assert_note(self, http, installation, ticket_id: str, body: str) -> None:
        pass

    def register_comments(self, http, installation, ticket_id: str, marker: str) -> str:
        """The ticket holds a customer message, then our note with ``marker``: the note's id."""
        raise NotImplementedError

    def register_unreadable(self, http, ticket_id: str) -> bool:
        """The helpdesk fails to list the ticket's comments; False when it cannot fail."""
        return False


class ZendeskHarness(Harness):
    key = "zendesk"

    def installation(self, workspace):
        return zendesk_installation_add(workspace)

    def agent_id(self):
        return "35436"

    def register_agent(self, http):
        http.get(f"{ZENDESK_BASE}/api/v2/users/35436.json", json=zendesk_user(35436))
        http.get(
            f"{ZENDESK_BASE}/api/v2/users/35436/group_memberships.json",
            json=zendesk_memberships(35436, [(360000111, "Support")]),
        )

    def register_note(self, http, ticket_id):
        http.put(
            f"{ZENDESK_BASE}/api/v2/tickets/{ticket_id}.json",
            json={
                "ticket": _zendesk_ticket(int(ticket_id), "2026-11-27T10:00:00Z"),
                "audit": {
                    "id": 7700001,
                    "ticket_id": int(ticket_id),
                    "created_at": "2026-11-27T10:00:00Z",
                    "author_id": 35436,
                    "metadata": {"system": {}, "custom": {}},
                    "events": [
                        {
                            "id": 7700002,
                            "type": "Comment",
                            "author_id": 35436,
                            "body": "note",
                            "html_body": "<p>note</p>",
                            "plain_body": "note",
                            "public": False,
                            "attachments": [],
                            "audit_id": 7700001,
                        }
                    ],
                    "via": {"channel": "api", "source": {"from": {}, "to": {}, "rel": None}},
                },
            },
        )

    def register_comments(self, http, installation, ticket_id, marker):
        def comment(comment_id, body, public):
            return {
                "id": comment_id,
                "type": "Comment",
                "author_id": 35436 if not public else 20978392,
                "body": body,
                "html_body": f'<div class="zd-comment" dir="auto"><p>{body}</p></div>',
                "plain_body": body,
                "public": public,
                "attachments": [],
                "audit_id": comment_id - 1,
                "via": {"channel": "api", "source": {"from": {}, "to": {}, "rel": None}},
                "created_at": "2026-11-27T10:00:00Z",
                "metadata": {"system": {}, "custom": {}},
            }

        http.get(
            f"{ZENDESK_BASE}/api/v2/tickets/{ticket_id}/comments.json",
            match=[
                __import__("responses").matchers.query_param_matcher(
                    {"sort_order": "desc", "per_page": "100"}
                )
            ],
            json={
                "comments": [
                    comment(7700002, f"Refund of $50.00 issued.\n{marker}", False),
                    comment(7600002, "Please refund the duplicate charge.", True),
                ],
                "next_page": None,
                "previous_page": None,
                "count": 2,
            },
        )
        return "7700002"

    def register_unreadable(self, http, ticket_id):
        http.get(
            f"{ZENDESK_BASE}/api/v2/tickets/{ticket_id}/comments.json",
            status=503,
            json={"error": "Service Unavailable"},
        )
        return True

    def assert_note(self, http, installation, ticket_id, body):
        call = next(c for c in http.calls if c.request.method == "PUT")
        assert json.loads(call.request.body) == {
            "ticket": {"comment": {"body": body, "public": False}}
        }

    def register_two_ticket_pages(self, http, installation):
        http.get(
            f"{ZENDESK_BASE}/api/v2/incremental/tickets/cursor.json",
            match=[
                __import__("responses").matchers.query_param_matcher(
                    {"start_time": "1764547200", "include": "metric_sets"}
                )
            ],
            json={
                "tickets": [_zendesk_ticket(101, "2026-11-02T10:00:00Z")],
                "metric_sets": [_zendesk_metric(101)],
                "after_url": f"{ZENDESK_BASE}/api/v2/incremental/tickets/cursor.json?cursor=MTU3NjYxMzUzOS4wfHwxMDJ8",
                "after_cursor": "MTU3NjYxMzUzOS4wfHwxMDJ8",
                "before_url": None,
                "before_cursor": None,
                "end_of_stream": False,
            },
        )
        http.get(
            f"{ZENDESK_BASE}/api/v2/incremental/tickets/cursor.json",
            match=[
                __import__("responses").matchers.query_param_matcher(
                    {"cursor": "MTU3NjYxMzUzOS4wfHwxMDJ8", "include": "metric_sets"}
                )
            ],
            json={
                "tickets": [_zendesk_ticket(102, "2026-11-03T10:00:00Z")],
                "metric_sets": [_zendesk_metric(102)],
                "after_url": f"{ZENDESK_BASE}/api/v2/incremental/tickets/cursor.json?cursor=MTU3NjYxMzUzOS4wfHwxMDN8",
                "after_cursor": "MTU3NjYxMzUzOS4wfHwxMDN8",
                "before_url": None,
                "before_cursor": None,
                "end_of_stream": True,
            },
        )


class FreshdeskHarness(Harness):
    key = "freshdesk"

    def installation(self, workspace):
        return freshdesk_installation_add(workspace)

    def agent_id(self):
        return "43000123"

    def register_agent(self, http):
        http.get(f"{FRESHDESK_BASE}/api/v2/agents/43000123", json=freshdesk_agent(43000123))
        http.get(f"{FRESHDESK_BASE}/api/v2/roles", json=FRESHDESK_ROLES)
        http.get(f"{FRESHDESK_BASE}/api/v2/groups", json=[freshdesk_group(43000500, "Billing")])

    def register_note(self, http, ticket_id):
        http.post(
            f"{FRESHDESK_BASE}/api/v2/tickets/{ticket_id}/notes",
            status=201,
            json={
                "body_text": "note",
                "body": "<div>note</div>",
                "id": 43000777,
                "incoming": False,
                "private": True,
                "user_id": 43000123,
                "support_email": None,
                "ticket_id": int(ticket_id),
                "to_emails": None,
                "attachments": [],
                "created_at": "2026-11-27T10:00:00Z",
                "updated_at": "2026-11-27T10:00:00Z",
            },
        )

    def register_comments(self, http, installation, ticket_id, marker):
        import responses

        def conversation(conversation_id, text, private):
            return {
                "body": f"<div>{text}</div>",
                "body_text": text,
                "id": conversation_id,
                "incoming": not private,
                "private": private,
                "user_id": 43000123 if private else 43000900,
                "support_email": None,
                "source": 2 if private else 0,
                "category": 2,
                "ticket_id": int(ticket_id),
                "to_emails": [],
                "from_email": None,
                "cc_emails": [],
                "bcc_emails": None,
                "attachments": [],
                "created_at": "2026-11-27T10:00:00Z",
                "updated_at": "2026-11-27T10:00:00Z",
                "last_edited_at": None,
                "last_edited_user_id": None,
            }

        url = f"{FRESHDESK_BASE}/api/v2/tickets/{ticket_id}/conversations"
        # Oldest first, paged: our note is on the second page.
        http.get(
            url,
            match=[responses.matchers.query_param_matcher({"per_page": "100", "page": "1"})],
            json=[conversation(43000700, "Please refund the duplicate charge.", False)],
            headers={"Link": f'<{url}?per_page=100&page=2>; rel="next"'},
        )
        http.get(
            url,
            match=[responses.matchers.query_param_matcher({"per_page": "100", "page": "2"})],
            json=[conversation(43000777, f"Refund of $50.00 issued. {marker}", True)],
        )
        return "43000777"

    def register_unreadable(self, http, ticket_id):
        http.get(
            f"{FRESHDESK_BASE}/api/v2/tickets/{ticket_id}/conversations",
            status=429,
            headers={"Retry-After": "60"},
            json={"message": "You have exceeded the limit of requests per minute"},
        )
        return True

    def assert_note(self, http, installation, ticket_id, body):
        call = next(c for c in http.calls if c.request.method == "POST")
        assert json.loads(call.request.body) == {"body": body, "private": True}

    def register_two_ticket_pages(self, http, installation):
        import responses

        base = {
            "updated_since": "2025-12-01T00:00:00Z",
            "per_page": "100",
            "order_by": "updated_at",
            "order_type": "asc",
            "include": "stats,requester",
        }
        http.get(
            f"{FRESHDESK_BASE}/api/v2/tickets",
            match=[responses.matchers.query_param_matcher({**base, "page": "1"})],
            json=[_freshdesk_ticket(201)],
            headers={"Link": f'<{FRESHDESK_BASE}/api/v2/tickets?page=2&per_page=100>; rel="next"'},
        )
        http.get(
            f"{FRESHDESK_BASE}/api/v2/tickets",
            match=[responses.matchers.query_param_matcher({**base, "page": "2"})],
            json=[_freshdesk_ticket(202)],
        )


class DemoHarness(Harness):
    key = "demo"

    def installation(self, workspace):
        return workspace.installation_links.get(installation__connector="demo").installation

    def agent_id(self):
        return "demo-l2"

    def register_comments(self, http, installation, ticket_id, marker):
        DemoTicketComment.objects.create(
            installation=installation,
            ticket_id=ticket_id,
            body="Please refund the duplicate charge.",
            public=True,
        )
        note = DemoTicketComment.objects.create(
            installation=installation,
            ticket_id=ticket_id,
            body=f"Refund of $50.00 issued.\n{marker}",
            public=False,
        )
        return str(note.pk)

    def assert_note(self, http, installation, ticket_id, body):
        note = DemoTicketComment.objects.get(installation=installation, ticket_id=ticket_id)
        assert (note.body, note.public) == (body, False)

    def register_two_ticket_pages(self, http, installation):
        import helpdesk_connectors.demo.connector as demo

        demo.PAGE_SIZE = 1
        for n, day in ((301, 2), (302, 3)):
            when = datetime(2026, 11, day, 10, tzinfo=UTC)
            DemoTicket.objects.create(
                installation=installation,
                ticket_id=str(n),
                subject=f"Demo {n}",
                status="solved",
                tags=["billing"],
                created_at=when,
                updated_at=when,
                solved_at=when,
            )


HARNESSES = {h.key: h for h in (ZendeskHarness(), FreshdeskHarness(), DemoHarness())}
SINCE = datetime(2025, 12, 1, tzinfo=UTC)


@pytest.fixture(params=registered_keys())
def harness(request, monkeypatch):
    if request.param not in HARNESSES:
        pytest.fail(f"connector {request.param!r} has no contract-test harness")
    import helpdesk_connectors.demo.connector as demo

    monkeypatch.setattr(demo, "PAGE_SIZE", demo.PAGE_SIZE)
    return HARNESSES[request.param]


@pytest.fixture
def connector(harness) -> HelpdeskConnector:
    return get_connector(harness.key)


def test_has_key_name_and_known_features(harness, connector):
    assert connector.key == harness.key
    assert connector.name
    assert connector.features and connector.features <= ALL_FEATURES


def test_registry_serves_it_and_refuses_unknown_keys(harness, connector, workspace):
    installation = harness.installation(workspace)
    assert connector_for(installation) is connector
    with pytest.raises(NotRegistered):
        get_connector("nonexistent")


def test_verify_entry_rejects_an_empty_request(harness, connector, workspace, settings):
    settings.DEMO_MODE = True
    harness.installation(workspace)
    for request in (RequestFactory().post("/", {}), RequestFactory().get("/")):
        with pytest.raises(EntryRejected) as excinfo:
            connector.verify_entry(request)
        assert excinfo.value.status == 401


def test_fetch_agent_returns_a_profile(harness, connector, workspace, http):
    installation = harness.installation(workspace)
    harness.register_agent(http)
    profile = connector.fetch_agent(installation, harness.agent_id())
    assert isinstance(profile, AgentProfile)
    assert profile.agent_id == harness.agent_id()
    assert profile.name and profile.helpdesk_role and profile.active


def test_fetch_agent_of_nobody_is_an_api_error(harness, connector, workspace, http):
    installation = harness.installation(workspace)
    with pytest.raises(HelpdeskApiError):
        connector.fetch_agent(installation, "not-an-agent")


def test_post_internal_note(harness, connector, workspace, http):
    installation = harness.installation(workspace)
    harness.register_note(http, "4711")
    note_id = connector.post_internal_note(installation, "4711", "Refund of $50.00 issued.")
    assert note_id
    harness.assert_note(http, installation, "4711", "Refund of $50.00 issued.")


MARKER = "Billing Desk ref: 2f1c9a6e-6b3e-4d5a-9c1e-8a7b6c5d4e3f"


def test_find_recent_note_finds_a_note_by_its_marker(harness, connector, workspace, http):
    # given the ticket holds a customer message and a note of ours carrying its marker
    installation = harness.installation(workspace)
    expected = harness.register_comments(http, installation, "4711", MARKER)

    # then the note is found by its marker, and another marker finds nothing
    assert connector.find_recent_note(installation, "4711", marker=MARKER) == expected
    other = "Billing Desk ref: 00000000-0000-0000-0000-000000000000"
    assert connector.find_recent_note(installation, "4711", marker=other) is None


def test_find_recent_note_that_cannot_read_is_an_api_error_not_none(
    harness, connector, workspace, http
):
    installation = harness.installation(workspace)
    if not harness.register_unreadable(http, "4711"):
        pytest.skip("this helpdesk's comments are local rows: reading cannot fail")
    with pytest.raises(HelpdeskApiError) as excinfo:
        connector.find_recent_note(installation, "4711", marker=MARKER)
    assert excinfo.value.retryable


def test_tickets_updated_since_pages_to_the_end(harness, connector, workspace, http):
    installation = harness.installation(workspace)
    harness.register_two_ticket_pages(http, installation)

    first = connector.tickets_updated_since(installation, since=SINCE, cursor=None)
    assert isinstance(first, TicketPage)
    assert not first.end_of_stream and first.cursor
    second = connector.tickets_updated_since(installation, since=SINCE, cursor=first.cursor)
    assert second.end_of_stream

    tickets = first.tickets + second.tickets
    assert len({t.ticket_id for t in tickets}) == 2
    for ticket in tickets:
        assert ticket.created_at <= ticket.updated_at
        assert ticket.status in {"solved", "resolved", "closed"}
        assert "billing" in ticket.tags
        assert ticket.solved_at is not None and timezone.is_aware(ticket.solved_at)
    assert first.tickets[0].updated_at < second.tickets[0].updated_at + timedelta(days=1)
