"""The dashboard's daily roll-ups (``services.rollups``), kept at write time.

The oracle is the rebuild from the raw rows (``rollups_rebuild``), whose figures the
dashboard tests pin number by number (``test_dashboard.py``, ``test_report.py``): after
every kind of write through the product's own paths — ticket sync, an action executed,
failed, sent for approval, approved, denied, expired, the same write processed twice —
the incrementally kept roll-ups equal a rebuild, and so do the dashboard and the report.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from billing_app.catalog import ActionKind as K
from billing_app.catalog import Role
from billing_app.errors import ProviderError
from billing_app.models import BillingAction, DailyRollup, HelpdeskTicket, RollupSource
from billing_app.models.rollups import MEASURE_FIELDS
from billing_app.selectors.dashboard import dashboard_build
from billing_app.selectors.months import Month
from billing_app.selectors.report import report_build
from billing_app.services.actions import action_submit
from billing_app.services.approvals import approval_decide, approvals_expire
from billing_app.services.identity import AgentContext
from billing_app.services.rollups import (
    rollups_action_changed,
    rollups_action_recorded,
    rollups_outcome_update,
    rollups_rebuild,
    rollups_tickets_changed,
)
from billing_app.services.tickets import TicketCategorizer, tickets_upsert
from helpdesk_connectors.base import TicketRecord

from .actions_support import ProviderSpy, account_seed, next_key
from .dashboard_data import action, actor, call, ticket

REFUND = {"charge_id": "ch_acme_paid", "currency": "USD", "reason": "service_outage"}


@pytest.fixture
def acme(workspace):
    return account_seed(workspace)


@pytest.fixture
def agent(workspace, sign_in):
    def make(role: Role) -> AgentContext:
        membership, _ = sign_in(workspace, role)
        return AgentContext(
            user=membership.user,
            workspace=workspace,
            membership=membership,
            installation=membership.installation,
            role=role,
        )

    return make


@pytest.fixture
def spy(monkeypatch):
    from billing_app.services.actions import run as actions_run

    spy = ProviderSpy()
    real = actions_run.get_provider
    monkeypatch.setattr(actions_run, "get_provider", lambda ws: spy.wrap(real(ws)))
    return spy


def refund(context: AgentContext, amount: int, ticket_id: str = "1001") -> BillingAction:
    return action_submit(
        context=context,
        kind=K.ISSUE_REFUND,
        customer_id="cus_acme",
        ticket_id=ticket_id,
        params={**REFUND, "amount": amount},
        idempotency_key=next_key(),
    )


def record(ticket_id: str, *, created: datetime, solved: bool = False, tags=("refund",)):
    return TicketRecord(
        ticket_id=ticket_id,
        subject=f"Ticket {ticket_id}",
        status="solved" if solved else "open",
        tags=tuple(tags),
        created_at=created,
        updated_at=created + timedelta(minutes=5),
        solved_at=created + timedelta(minutes=4) if solved else None,
    )


def sync(workspace, *records: TicketRecord) -> None:
    installation = workspace.installation_links.first().installation
    tickets_upsert(
        records=records,
        workspace=workspace,
        installation=installation,
        categorizer=TicketCategorizer.for_workspace(workspace),
    )


def rollups(workspace) -> dict:
    """The roll-up rows that hold anything, as plain data."""
    return {
        (r.day, r.family, r.key): tuple(getattr(r, f) for f in MEASURE_FIELDS)
        for r in DailyRollup.objects.filter(workspace=workspace)
        if any(getattr(r, f) for f in MEASURE_FIELDS)
    }


def figures(workspace, month: Month) -> dict:
    report = report_build(workspace=workspace, month=month)
    report.pop("generated_at")
    report["dashboard"].pop("generated_at")
    return report


def assert_same_as_rebuild(workspace) -> dict:
    """The incremental roll-ups (and the month's report and dashboard) equal a rebuild.

    The month is the latest the roll-ups hold, not the clock's (midnight may have passed
    since the test wrote its records)."""
    kept = rollups(workspace)
    month = Month.of(max(day for day, _, _ in kept)) if kept else Month.of(timezone.now())
    kept_figures = figures(workspace, month)
    rollups_rebuild(workspace=workspace)
    assert rollups(workspace) == kept
    assert figures(workspace, month) == kept_figures
    return kept_figures


# --- every kind of write -----------------------------------------------------------------------


def test_ticket_sync_and_a_resync_of_the_same_page(workspace):
    now = timezone.now()
    page = [record("1001", created=now), record("1002", created=now, solved=True)]
    sync(workspace, *page)
    first = rollups(workspace)
    assert sum(v[0] for (_, family, _), v in first.items() if family == "ticket") == 2

    sync(workspace, *page)  # the same page again: nothing moves
    assert rollups(workspace) == first

    sync(workspace, record("1001", created=now, solved=True))  # solved: it moves keys
    report = assert_same_as_rebuild(workspace)
    assert report["volume"]["billing_tickets"] == 2
    assert report["volume"]["resolved_without_escalation"] == 2


def test_executed_and_failed_actions_and_their_ticket(workspace, acme, agent, spy):
    sync(workspace, record("1001", created=timezone.now(), solved=True))
    manager = agent(Role.MANAGER)

    done = refund(manager, 1000)
    assert done.status == BillingAction.Status.SUCCEEDED
    spy.fail("refund", ProviderError("Declined.", code="card_error", provider_code="x"))
    failed = refund(manager, 1000)
    assert failed.status == BillingAction.Status.FAILED

    report = assert_same_as_rebuild(workspace)
    row = next(r for r in report["dashboard"]["actions"]["rows"] if r["key"] == "issue_refund")
    assert (row["count"], row["succeeded"], row["failed"]) == (2, 1, 1)
    assert report["financial"]["refunds"]["count"] == 1
    # the succeeded direct refund auto-resolves the solved refund ticket it was taken on
    category = next(c for c in report["dashboard"]["categories"] if c["key"] == "refund_request")
    assert category["auto_resolved"] == 1


def test_approval_approved_denied_and_expired(workspace, acme, agent, spy):
    # half an hour ago, but in this month (at 00:10 on the 1st, half an hour ago is last month)
    now = timezone.now()
    sync(workspace, record("1001", created=max(now - timedelta(minutes=30), Month.of(now).start)))
    specialist, manager = agent(Role.SPECIALIST), agent(Role.MANAGER)

    approved = refund(specialist, 110000)
    denied = refund(specialist, 105000, ticket_id="1002")
    expiring = refund(specialist, 101000, ticket_id="1003")
    assert approved.status == denied.status == BillingAction.Status.PENDING_APPROVAL
    # a request for approval escalates the ticket it came from
    report = assert_same_as_rebuild(workspace)
    assert report["volume"]["escalated"] == 1

    approval_decide(
        approval_id=approved.approval.pk,
        user=manager.user,
        workspace=workspace,
        decision="approve",
    )
    approval_decide(
        approval_id=denied.approval.pk,
        user=manager.user,
        workspace=workspace,
        decision="deny",
        comment="Not this time.",
    )
    approvals_expire(now=expiring.approval.expires_at + timedelta(seconds=1))

    report = assert_same_as_rebuild(workspace)
    paths = {p["key"]: p["count"] for p in report["dashboard"]["refunds"]["by_approval_path"]}
    assert (paths["manager"], paths["denied"], paths.get("expired")) == (1, 1, 1)
    assert report["dashboard"]["actions"]["approvals_decided"] == 3


def test_processing_the_same_write_twice_counts_it_once(workspace, acme, agent, spy):
    sync(workspace, record("1001", created=timezone.now()))
    done = refund(agent(Role.MANAGER), 1000)
    kept = rollups(workspace)

    rollups_action_changed(action_id=done.pk)
    rollups_action_changed(action_id=done.pk)
    rollups_tickets_changed(workspace=workspace, tickets=HelpdeskTicket.objects.all())

    assert rollups(workspace) == kept
    assert_same_as_rebuild(workspace)


def test_the_action_paths_upkeep_from_memory_counts_once_and_moves_the_ticket_once(
    workspace, acme, agent, spy
):
    # given a solved refund ticket auto-resolved by a direct refund (the outcome's upkeep,
    # from the action in memory: its ticket's key moved from the stored one, not re-read)
    sync(workspace, record("1001", created=timezone.now(), solved=True))
    done = refund(agent(Role.MANAGER), 1000)
    kept = rollups(workspace)
    report = assert_same_as_rebuild(workspace)
    category = next(c for c in report["dashboard"]["categories"] if c["key"] == "refund_request")
    assert category["auto_resolved"] == 1

    # when the same upkeep runs again, from memory and from the database
    found = BillingAction.objects.select_related("workspace").get(pk=done.pk)
    rollups_action_recorded(found)
    rollups_action_recorded(found)
    rollups_action_changed(action_id=done.pk)

    # then nothing moved twice
    assert rollups(workspace) == kept


def test_an_outcome_another_recorder_won_writes_no_roll_up(workspace, acme, agent, spy):
    # given an action already recorded as succeeded
    sync(workspace, record("1001", created=timezone.now(), solved=True))
    done = refund(agent(Role.MANAGER), 1000)
    kept = rollups(workspace)

    # when a late recorder tries to record it as failed
    late = BillingAction.objects.select_related("workspace").get(pk=done.pk)
    values = {"status": BillingAction.Status.FAILED, "error_code": "late"}
    for name, value in values.items():
        setattr(late, name, value)
    won = rollups_outcome_update(late, values, open_statuses=["executing", "outcome_unknown"])

    # then its UPDATE matched nothing and the roll-ups did not move
    assert won == 0
    assert BillingAction.objects.get(pk=done.pk).status == BillingAction.Status.SUCCEEDED
    assert rollups(workspace) == kept
    assert_same_as_rebuild(workspace)


def test_a_change_made_behind_the_writers_back_is_applied_once_when_reported(workspace):
    # given an action whose roll-up is current
    user = actor()
    row = action(workspace, user, K.RESEND_INVOICE, created=timezone.now(), duration_ms=100)
    # when its status changes and the change is reported (twice)
    BillingAction.objects.filter(pk=row.pk).update(status=BillingAction.Status.FAILED)
    rollups_action_changed(action_id=row.pk)
    rollups_action_changed(action_id=row.pk)
    # then it left its old key and counts once under the new one
    report = assert_same_as_rebuild(workspace)
    (resend,) = report["dashboard"]["actions"]["rows"]
    assert (resend["count"], resend["succeeded"], resend["failed"]) == (1, 0, 1)
    assert RollupSource.objects.filter(family="action", source_id=str(row.pk)).count() == 1


# --- months and days ---------------------------------------------------------------------------


def test_a_record_belongs_to_the_utc_day_and_month_of_its_creation(workspace):
    user = actor()
    last_moment = datetime(2026, 1, 31, 23, 59, 59, tzinfo=UTC)
    first_moment = datetime(2026, 2, 1, 0, 0, 0, tzinfo=UTC)
    ticket(workspace, "1", category="tax_question", created=last_moment)
    ticket(workspace, "2", category="tax_question", created=first_moment)
    action(workspace, user, K.RESEND_INVOICE, created=last_moment)
    action(workspace, user, K.RESEND_INVOICE, created=first_moment)
    action(workspace, user, K.RESEND_INVOICE, created=first_moment)

    january = dashboard_build(workspace=workspace, month=Month.parse("2026-01"))
    february = dashboard_build(workspace=workspace, month=Month.parse("2026-02"))

    assert (january["tickets"]["billing"], february["tickets"]["billing"]) == (1, 1)
    assert (january["actions"]["total"], february["actions"]["total"]) == (1, 2)
    days = set(DailyRollup.objects.filter(family="ticket").values_list("day", flat=True))
    assert {d.isoformat() for d in days} == {"2026-01-31", "2026-02-01"}


# --- query counts ------------------------------------------------------------------------------

# The dashboard: the month's roll-ups (1), the workspace's rates and credit limits (2),
# payment failures — summary, reasons, churned accounts with the MRR groups (one query),
# 6-month trend (4) —, the provider's last 100 calls (1), webhook events (1), mirrored
# charges (1), the last audit verification (1: issue 17), the self-service section (4,
# issue 18: card prompts, refund requests, widget visits, widget questions — each for the
# month and the month before), the self-service features' state for the recommendations
# (1: an enabled widget, the month's refund links). Transaction control (and PostgreSQL's
# set_config) is not counted.
DASHBOARD_QUERIES = 16
REPORT_QUERIES = DASHBOARD_QUERIES + 2  # the month's action roll-ups again, the rates


def _counted(func) -> int:
    with CaptureQueriesContext(connection) as captured:
        func()
    # Transaction control is not a query; SQLite runs no set_config.
    return len(
        [
            q
            for q in captured.captured_queries
            if not q["sql"].startswith(("BEGIN", "COMMIT", "SAVEPOINT", "RELEASE"))
            and "set_config" not in q["sql"]
        ]
    )


def test_dashboard_and_report_query_counts_are_pinned_and_do_not_grow(workspace):
    month = Month.parse("2026-01")
    user = actor()

    def build() -> int:
        return _counted(lambda: dashboard_build(workspace=workspace, month=month))

    def report() -> int:
        return _counted(lambda: report_build(workspace=workspace, month=month))

    assert (build(), report()) == (DASHBOARD_QUERIES, REPORT_QUERIES)
    for day in range(1, 29):
        moment = datetime(2026, 1, day, 12, tzinfo=UTC)
        ticket(workspace, f"t{day}", category="refund_request", created=moment, resolution=60)
        action(workspace, user, K.APPLY_CREDIT, created=moment, amount_base=day * 1000)
        action(workspace, user, K.ISSUE_REFUND, created=moment, ticket_id=f"t{day}")
        call(workspace, "refund", 900 + day, created=moment)
    assert (build(), report()) == (DASHBOARD_QUERIES, REPORT_QUERIES)


def test_reapplying_the_category_rules_moves_the_tickets_roll_ups(workspace):
    from billing_app.models import TicketCategoryRule
    from billing_app.services.tickets import tickets_recategorize

    sync(workspace, record("1001", created=timezone.now(), solved=True))
    assert assert_same_as_rebuild(workspace)["volume"]["billing_tickets"] == 1

    TicketCategoryRule.objects.filter(workspace=workspace).delete()
    assert tickets_recategorize(workspace=workspace) == 1

    report = assert_same_as_rebuild(workspace)
    assert (report["volume"]["billing_tickets"], report["volume"]["total_tickets"]) == (0, 1)


def test_the_recovery_index_covers_the_dashboards_recovery_kinds():
    from billing_app.selectors.dashboard.failures import RECOVERY_ACTION_KINDS

    index = next(i for i in BillingAction._meta.indexes if i.name == "action_recovery_idx")
    assert set(dict(index.condition.children)["kind__in"]) == set(RECOVERY_ACTION_KINDS)


def test_provider_calls_are_counted_as_they_are_recorded(workspace):
    from billing_app.providers.instrumented import provider_call_record

    def record_call(operation: str, outcome: str, ms: int) -> None:
        provider_call_record(
            workspace_id=workspace.pk,
            provider="sandbox",
            operation=operation,
            duration_ms=ms,
            outcome=outcome,
        )

    record_call("refund", "ok", 1200)  # in autocommit: its own transaction
    with transaction.atomic():  # inside a caller's transaction (a savepoint in tests)
        record_call("refund", "unavailable", 3000)
        record_call("fetch_customer_bundle", "ok", 300)

    report = assert_same_as_rebuild(workspace)
    health = report["dashboard"]["health"]
    assert health["provider_calls"] == 3
    refund_times = next(r for r in health["response_times"] if r["operation"] == "refund")
    assert (refund_times["calls"], refund_times["avg_ms"]) == (2, 2100)


def test_the_rebuild_command_recounts_what_the_writers_missed(workspace, acme, agent, spy):
    from io import StringIO

    from django.core.management import CommandError, call_command

    sync(workspace, record("1001", created=timezone.now(), solved=True))
    refund(agent(Role.MANAGER), 1000)
    kept = rollups(workspace)
    DailyRollup.objects.filter(workspace=workspace).delete()  # e.g. written by the old code
    assert rollups(workspace) == {}
    out = StringIO()
    call_command("rollups_rebuild", workspace=workspace.slug, stdout=out)
    assert rollups(workspace) == kept
    assert f"{workspace.slug}: rolled up" in out.getvalue()
    with pytest.raises(CommandError, match="No workspace"):
        call_command("rollups_rebuild", workspace="no-such-workspace", stdout=StringIO())
