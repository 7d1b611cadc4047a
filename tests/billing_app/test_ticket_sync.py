"""Ticket sync: pages from the connector, categories from the rules, resumable and one at a time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from io import StringIO

import pytest
import responses
from django.core.management import CommandError, call_command
from django.test import override_settings
from django.utils import timezone

from billing_app.models import (
    HelpdeskTicket,
    TicketCategory,
    TicketCategoryRule,
    TicketSyncState,
    WorkspaceInstallation,
)
from billing_app.services.tickets import (
    TicketCategorizer,
    tickets_recategorize,
    tickets_sync_installation,
)
from billing_app.tasks.reports import tickets_sync_all_task
from helpdesk_connectors.base import (
    HelpdeskApiError,
    HelpdeskConnector,
    TicketPage,
    TicketRecord,
)
from helpdesk_connectors.models import Installation

T0 = datetime(2026, 1, 5, 9, tzinfo=UTC)


def record(ticket_id, subject, *, tags=(), minutes=0, solved_after=None, **extra) -> TicketRecord:
    created = T0 + timedelta(minutes=minutes)
    solved = created + timedelta(seconds=solved_after) if solved_after is not None else None
    return TicketRecord(
        ticket_id=str(ticket_id),
        subject=subject,
        status="solved" if solved else "open",
        tags=tuple(tags),
        created_at=created,
        updated_at=solved or created,
        solved_at=solved,
        **extra,
    )


class FakeConnector(HelpdeskConnector):
    """A helpdesk that serves ``PAGES`` in order and remembers how it was asked."""

    key = "demo"
    name = "Fake helpdesk"
    features = frozenset({"ticket_export"})
    PAGES: list = []
    CALLS: list = []

    def verify_entry(self, request):  # pragma: no cover - not used here
        raise NotImplementedError

    def fetch_agent(self, installation, agent_id):  # pragma: no cover
        raise NotImplementedError

    def post_internal_note(self, installation, ticket_id, body):  # pragma: no cover
        raise NotImplementedError

    def post_public_reply(self, installation, ticket_id, body):  # pragma: no cover
        raise NotImplementedError

    def tickets_updated_since(self, installation, *, since, cursor):
        FakeConnector.CALLS.append((since, cursor))
        page = FakeConnector.PAGES.pop(0)
        if isinstance(page, Exception):
            raise page
        return page


class NoExportConnector(FakeConnector):
    features = frozenset()


FAKE = {"demo": "tests.billing_app.test_ticket_sync.FakeConnector"}


@pytest.fixture
def fake(workspace):
    FakeConnector.PAGES, FakeConnector.CALLS = [], []
    with override_settings(HELPDESK_CONNECTORS=FAKE):
        yield FakeConnector


def installation_of(workspace) -> Installation:
    return workspace.installation_links.first().installation


def test_new_workspaces_get_rules_for_every_category(workspace):
    categories = set(
        TicketCategoryRule.objects.filter(workspace=workspace).values_list("category", flat=True)
    )

    assert categories == set(TicketCategory.values)


def test_two_pages_are_stored_categorised_and_the_cursor_kept(workspace, fake, settings):
    # given a first sync whose window reaches back past T0 (whatever today's date: with the
    # default 365 days, T0 would fall before the window from January 2027 on)
    settings.TICKET_SYNC_INITIAL_DAYS = (timezone.now() - T0).days + 30
    # and a first page of three tickets and a last page updating one and adding one
    fake.PAGES = [
        TicketPage(
            tickets=[
                record(1, "Question", tags=["refund"]),
                record(2, "I was charged twice for January", minutes=1),
                record(3, "Cannot log in", minutes=2, solved_after=60),
            ],
            cursor="c1",
            end_of_stream=False,
        ),
        TicketPage(
            tickets=[
                record(
                    1,
                    "Question",
                    tags=["refund"],
                    solved_after=300,
                    satisfaction_score=4.6,
                    escalated=True,
                    reopens=2,
                    requester_email="A@Example.com",
                ),
                record(
                    4,
                    "Need a VAT invoice",
                    minutes=3,
                    solved_after=999,
                    raw={"metric_set": {"full_resolution_time_in_minutes": {"calendar": 7}}},
                ),
            ],
            cursor="c2",
            end_of_stream=True,
        ),
    ]

    # when the installation is synced
    result = tickets_sync_installation(installation=installation_of(workspace))

    # then every ticket is stored once with its category and the helpdesk's figures
    assert (result.tickets, result.pages, result.skipped) == (5, 2, False)
    tickets = {t.external_id: t for t in HelpdeskTicket.objects.filter(workspace=workspace)}
    assert set(tickets) == {"1", "2", "3", "4"}
    assert tickets["1"].category == TicketCategory.REFUND_REQUEST and tickets["1"].is_billing
    assert tickets["1"].resolution_seconds == 300
    assert (tickets["1"].csat_score, tickets["1"].escalated, tickets["1"].reopens) == (5, True, 2)
    assert tickets["1"].requester_email == "a@example.com"
    assert tickets["2"].category == TicketCategory.DUPLICATE_CHARGE
    assert tickets["3"].category == "" and not tickets["3"].is_billing
    assert tickets["4"].category == TicketCategory.TAX_QUESTION
    assert tickets["4"].resolution_seconds == 420  # Zendesk's own metric wins
    state = TicketSyncState.objects.get(installation=installation_of(workspace))
    assert state.cursor == "c2"
    assert state.since == T0 + timedelta(minutes=3, seconds=999)
    assert state.lease_until is None and state.last_error == ""
    assert fake.CALLS[1][1] == "c1"

    # and the next run continues from the saved cursor
    fake.PAGES = [TicketPage(tickets=[], cursor="c2", end_of_stream=True)]
    tickets_sync_installation(installation=installation_of(workspace))
    assert fake.CALLS[-1] == (state.since, "c2")


def test_an_error_mid_stream_keeps_the_pages_before_it(workspace, fake):
    fake.PAGES = [
        TicketPage(tickets=[record(1, "refund please")], cursor="c1", end_of_stream=False),
        HelpdeskApiError("Zendesk is down", retryable=True, http_status=503),
    ]

    with pytest.raises(HelpdeskApiError):
        tickets_sync_installation(installation=installation_of(workspace))

    state = TicketSyncState.objects.get(installation=installation_of(workspace))
    assert HelpdeskTicket.objects.filter(workspace=workspace).count() == 1
    assert state.cursor == "c1"
    assert "Zendesk is down" in state.last_error
    assert state.lease_until is None

    # the retry resumes from the saved cursor
    fake.PAGES = [TicketPage(tickets=[record(2, "invoice")], cursor="c3", end_of_stream=True)]
    tickets_sync_installation(installation=installation_of(workspace))
    assert fake.CALLS[-1][1] == "c1"
    assert HelpdeskTicket.objects.filter(workspace=workspace).count() == 2


def test_one_sync_at_a_time_per_installation(workspace, fake):
    # given another sync holding the lease
    TicketSyncState.objects.create(
        installation=installation_of(workspace), lease_until=timezone.now() + timedelta(minutes=5)
    )
    fake.PAGES = [TicketPage(tickets=[record(1, "refund")], cursor="c", end_of_stream=True)]

    result = tickets_sync_installation(installation=installation_of(workspace))

    # then this one stands aside and the helpdesk is not called
    assert result.skipped and result.reason == "already running"
    assert fake.CALLS == []
    assert not HelpdeskTicket.objects.exists()


def test_a_connector_without_ticket_export_is_skipped(workspace):
    with override_settings(
        HELPDESK_CONNECTORS={"demo": "tests.billing_app.test_ticket_sync.NoExportConnector"}
    ):
        result = tickets_sync_installation(installation=installation_of(workspace))

    assert result.skipped and result.reason == "no ticket export"


def test_tags_beat_keywords_and_priority_decides(workspace):
    categorizer = TicketCategorizer.for_workspace(workspace)

    assert (
        categorizer.categorize(subject="Please upgrade my plan", tags=["Refund"])
        == TicketCategory.REFUND_REQUEST
    )
    assert categorizer.categorize(subject="Tax invoice for 2025", tags=[]) == "tax_question"
    assert categorizer.categorize(subject="Taxi receipt", tags=[]) == "invoice_discrepancy"
    assert categorizer.categorize(subject="A billing question", tags=[]) == "other_billing"
    assert categorizer.categorize(subject="Password reset", tags=["login"]) == ""


def test_rules_edited_in_admin_recategorise_stored_tickets(workspace, fake):
    fake.PAGES = [
        TicketPage(tickets=[record(1, "Refund for March")], cursor=None, end_of_stream=True)
    ]
    tickets_sync_installation(installation=installation_of(workspace))
    # when the admin switches the "refund" keyword off and adds "march" as a tax keyword
    TicketCategoryRule.objects.filter(workspace=workspace, value="refund").update(is_active=False)
    TicketCategoryRule.objects.create(
        workspace=workspace,
        category=TicketCategory.TAX_QUESTION,
        match_type="subject_keyword",
        value="march",
        priority=5,
    )

    changed = tickets_recategorize(workspace=workspace)

    assert changed == 1
    assert HelpdeskTicket.objects.get(external_id="1").category == "tax_question"


def test_sync_tickets_command(workspace, fake):
    fake.PAGES = [TicketPage(tickets=[record(1, "refund")], cursor="c", end_of_stream=True)]
    out, err = StringIO(), StringIO()

    call_command("sync_tickets", "--workspace", "acme", stdout=out, stderr=err)

    assert "1 tickets in 1 pages" in out.getvalue()
    assert "tickets" in err.getvalue()  # the progress bar
    with pytest.raises(CommandError, match="No workspace"):
        call_command("sync_tickets", "--workspace", "nope")
    with pytest.raises(CommandError, match="No active installation"):
        call_command("sync_tickets", "--installation", "999999")


def test_command_reports_a_failing_helpdesk(workspace, fake):
    fake.PAGES = [HelpdeskApiError("bad credentials", code="helpdesk_auth_failed")]
    err = StringIO()

    with pytest.raises(CommandError, match="1 installation"):
        call_command("sync_tickets", "--no-progress", stderr=err)

    assert "helpdesk_auth_failed" in err.getvalue()


def test_beat_task_syncs_every_active_installation(workspace, make_workspace, fake):
    make_workspace("globex")
    fake.PAGES = [
        TicketPage(tickets=[record(1, "refund")], cursor="a", end_of_stream=True),
        TicketPage(tickets=[record(1, "invoice")], cursor="b", end_of_stream=True),
    ]

    assert tickets_sync_all_task() == 2

    assert HelpdeskTicket.objects.count() == 2
    assert set(HelpdeskTicket.objects.values_list("category", flat=True)) == {
        "refund_request",
        "invoice_discrepancy",
    }


def test_zendesk_incremental_export_end_to_end(workspace, http):
    # given a Zendesk installation of the workspace with API credentials
    installation = Installation.objects.create(
        connector="zendesk", domain="acme.zendesk.com", api_email="a@acme.example", api_token="t"
    )
    WorkspaceInstallation.objects.create(workspace=workspace, installation=installation)
    http.add(
        responses.GET,
        "https://acme.zendesk.com/api/v2/incremental/tickets/cursor.json",
        json={
            "tickets": [
                {
                    "id": 35436,
                    "subject": "My payment failed",
                    "raw_subject": "My payment failed",
                    "status": "solved",
                    "tags": ["billing"],
                    "created_at": "2026-01-05T09:00:00Z",
                    "updated_at": "2026-01-05T09:04:00Z",
                    "requester_id": 20978392,
                    "satisfaction_rating": {"score": "good"},
                },
                {
                    "id": 35437,
                    "subject": "Feature idea",
                    "status": "open",
                    "tags": [],
                    "created_at": "2026-01-05T10:00:00Z",
                    "updated_at": "2026-01-05T10:00:00Z",
                },
            ],
            "metric_sets": [
                {
                    "ticket_id": 35436,
                    "solved_at": "2026-01-05T09:04:00Z",
                    "reopens": 0,
                    "group_stations": 1,
                }
            ],
            "after_cursor": "MTU3NjYxMzUzOS4wfHw0Njd8",
            "end_of_stream": True,
        },
    )

    result = tickets_sync_installation(installation=installation)

    assert result.tickets == 2
    failed = HelpdeskTicket.objects.get(installation=installation, external_id="35436")
    assert failed.category == "payment_failed"
    assert failed.resolution_seconds == 240
    assert failed.csat_score == 5
    assert (
        TicketSyncState.objects.get(installation=installation).cursor == "MTU3NjYxMzUzOS4wfHw0Njd8"
    )
    assert "start_time=" in http.calls[0].request.url
