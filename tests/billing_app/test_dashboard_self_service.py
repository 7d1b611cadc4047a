"""The dashboard's and the monthly report's "Self-service" section (issue 18), on rows known
in advance — figure by figure, in JSON, CSV, text and on both pages.

February 2026 in workspace ``acme`` against January 2026 (``build_two_months``); rows of
December 2025, of 1 March 2026 00:00 (the first instant after February) and of workspace
``globex`` are written too and must count nowhere.

Card-update prompts (by ``sent_at``):
  February — p1 expiring, updated, renewal paid $50.00; p2 expiring, updated, renewal
  paid on 1 March (still February's prompt) $120.00; p3 failed, updated, renewal paid in
  a currency without a rate (base amount null); p4 failed, updated, no renewal yet; p5
  expiring, not updated; p6 suppressed and p7 could not be sent (no ``sent_at``).
  → sent 5 (3 expiring, 2 failed), updated 4, 80.0 %, failures avoided 3, revenue kept
  $170.00 (1 unconverted).
  January — q1 updated, renewal paid $30.00; q2 sent 31 Jan 23:00, not updated.
  → sent 2, updated 1, 50.0 %, avoided 1, $30.00.
  Change: +3 (+150.0 %), +3 (+300.0 %), +30.0 pp, +2 (+200.0 %), +$140.00.
Self-service refund requests (by ``created_at``):
  February — r1, r2 refunded within the limit ($20 + $30); r3 refused (window passed); r4
  with agents (approval pending); r5 approved after 2 h ($100); r6 declined after 6 h; r7
  being confirmed; r8 received.
  → 8 requests, executed 2 (25.0 %), sent to agents 3 (37.5 %: 1 approved, 1 declined,
  1 waiting), refused 1, in progress 2, refunded $150.00; agent time: r1, r2, r3 take 0,
  r5 2 h, r6 6 h → 8 h over 5 settled requests = 96.0 min per request; approval time
  (2 + 6) / 2 = 4.0 h.
  January — s1 refunded $10; s2 approved after 1 h, in a currency without a rate.
  → 2 requests, executed 1, sent 1, refunded $10.00 (1 unconverted); 1 h / 2 = 30.0 min;
  approval 1.0 h.
  Agent-initiated refunds (February): one refund an agent took 4 minutes over, directly.
Widget (by event ``created_at``):
  February — v1 (cus_a): answered next_invoice and invoices; v2 (cus_b): answered
  last_payment, then contacted; v3 (cus_c): opened only; v4 (cus_d): contacted without a
  question; v5 (cus_a): answered next_invoice; v1 of cus_z (same visit id, another
  customer: another visit): answered update_card.
  → 6 visits, 5 questions answered, 4 answered visits, 2 contacted support, 3 deflected
  (v1, v5, cus_z's v1), 75.0 %.
  January — w1: answered next_invoice, contacted; w2: answered refund.
  → 2 visits, 2 answered, 2 answered visits, 1 contact, 1 deflected, 50.0 %.
"""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import translation

from billing_app.catalog import Role
from billing_app.models import (
    BillingWidgetEvent,
    CardPrompt,
    SelfServiceLink,
    SelfServiceRefundRequest,
)
from billing_app.selectors.dashboard import dashboard_build
from billing_app.selectors.dashboard.self_service import self_service_metrics
from billing_app.selectors.months import Month
from billing_app.selectors.report import report_build, report_csv, report_text

from .dashboard_data import action, actor
from .two_factor_support import verified_login

FEB = Month(2026, 2)
Status = SelfServiceRefundRequest.Status
Kind = BillingWidgetEvent.Kind


def at(month: int, day: int, hour: int = 10, year: int = 2026) -> datetime:
    return datetime(year, month, day, hour, tzinfo=UTC)


# --- rows ----------------------------------------------------------------------------------------


def prompt(
    workspace,
    n: str,
    *,
    sent: datetime | None,
    reason: str = CardPrompt.Reason.EXPIRING,
    status: str = CardPrompt.Status.SENT,
    updated: datetime | None = None,
    renewal_paid: datetime | None = None,
    renewal_base: int | None = None,
) -> CardPrompt:
    row = CardPrompt.objects.create(
        workspace=workspace,
        customer_id=f"cus_{n}",
        payment_method_id=f"pm_{n}",
        reason=reason,
        window=f"exp-2026-{n}",
        email=f"{n}@example.com",
        status=status,
        sent_at=sent,
        card_updated_at=updated,
        new_payment_method_id=f"pm_new_{n}" if updated else "",
        renewal_invoice_id=f"in_{n}" if renewal_paid else "",
        renewal_paid_at=renewal_paid,
        renewal_amount=renewal_base if renewal_paid else None,
        renewal_currency="USD" if renewal_paid else "",
        renewal_amount_base=renewal_base,
    )
    CardPrompt.objects.filter(pk=row.pk).update(created_at=sent or at(2, 1))
    return row


def refund_request(
    workspace,
    n: str,
    status: str,
    *,
    created: datetime,
    amount_base: int | None = 1000,
    approval_hours: float | None = None,
    approval_pending: bool = False,
    user: User | None = None,
) -> SelfServiceRefundRequest:
    """A request on its own link; ``approval_hours`` / ``approval_pending``: its refund action
    went for approval, decided that many hours after the approval request was made."""
    link = SelfServiceLink.objects.create(
        workspace=workspace, customer_id=f"cus_{n}", expires_at=created + timedelta(days=7)
    )
    refund_action = None
    if approval_hours is not None or approval_pending:
        decided = None if approval_pending else created + timedelta(hours=approval_hours or 0)
        approval_status = (
            "pending"
            if decided is None
            else ("approved" if status == Status.APPROVED else "denied")
        )
        refund_action = action(
            workspace,
            user or actor(),
            "issue_refund",
            created=created,
            status="succeeded" if status == Status.APPROVED else "pending_approval",
            decision="approval",
            amount_base=amount_base,
            approval=(approval_status, "manager", created, decided),
            customer_id=f"cus_{n}",
        )
    row = SelfServiceRefundRequest.objects.create(
        workspace=workspace,
        link=link,
        customer_id=f"cus_{n}",
        charge_id=f"ch_{n}",
        amount=amount_base or 1000,
        currency="USD" if amount_base is not None else "EUR",
        amount_base=amount_base,
        reason="requested_by_customer",
        status=status,
        refusal_code="refund_window_passed" if status == Status.REFUSED else "",
        action=refund_action,
    )
    SelfServiceRefundRequest.objects.filter(pk=row.pk).update(created_at=created)
    return row


def widget_event(workspace, customer: str, visit: str, kind: str, when: datetime, question=""):
    row = BillingWidgetEvent.objects.create(
        workspace=workspace, customer_id=customer, visit=visit, kind=kind, question=question
    )
    BillingWidgetEvent.objects.filter(pk=row.pk).update(created_at=when)


def visit(workspace, customer: str, visit_id: str, when: datetime, *steps: str) -> None:
    """An opened visit, then ``steps``: a question key (answered) or ``"contact"``."""
    widget_event(workspace, customer, visit_id, Kind.OPENED, when)
    for i, step in enumerate(steps, start=1):
        moment = when + timedelta(minutes=i)
        if step == "contact":
            widget_event(workspace, customer, visit_id, Kind.CONTACT, moment)
        else:
            widget_event(workspace, customer, visit_id, Kind.ANSWERED, moment, step)


def build_two_months(workspace) -> None:
    # card-update prompts — February
    prompt(
        workspace, "p1", sent=at(2, 3), updated=at(2, 5), renewal_paid=at(2, 20), renewal_base=5000
    )
    prompt(
        workspace, "p2", sent=at(2, 4), updated=at(2, 6), renewal_paid=at(3, 1), renewal_base=12000
    )
    prompt(
        workspace,
        "p3",
        sent=at(2, 10),
        reason=CardPrompt.Reason.FAILED,
        updated=at(2, 11),
        renewal_paid=at(2, 25),
        renewal_base=None,
    )
    prompt(workspace, "p4", sent=at(2, 12), reason=CardPrompt.Reason.FAILED, updated=at(2, 14))
    prompt(workspace, "p5", sent=at(2, 15))
    prompt(workspace, "p6", sent=None, status=CardPrompt.Status.SUPPRESSED)
    prompt(workspace, "p7", sent=None, status=CardPrompt.Status.FAILED)
    # January
    prompt(
        workspace,
        "q1",
        sent=at(1, 10),
        updated=at(1, 12),
        renewal_paid=at(1, 28),
        renewal_base=3000,
    )
    prompt(workspace, "q2", sent=at(1, 31, 23))
    # neither month
    prompt(workspace, "x1", sent=at(12, 20, year=2025), updated=at(12, 21, year=2025))
    prompt(workspace, "x2", sent=datetime(2026, 3, 1, tzinfo=UTC), updated=at(3, 2))

    # refund requests — February
    refund_request(workspace, "r1", Status.REFUNDED, created=at(2, 2), amount_base=2000)
    refund_request(workspace, "r2", Status.REFUNDED, created=at(2, 3), amount_base=3000)
    refund_request(workspace, "r3", Status.REFUSED, created=at(2, 4), amount_base=4000)
    refund_request(workspace, "r4", Status.WITH_AGENTS, created=at(2, 10), approval_pending=True)
    refund_request(
        workspace, "r5", Status.APPROVED, created=at(2, 11), amount_base=10000, approval_hours=2
    )
    refund_request(workspace, "r6", Status.DENIED, created=at(2, 12), approval_hours=6)
    refund_request(workspace, "r7", Status.PROCESSING, created=at(2, 13))
    refund_request(workspace, "r8", Status.RECEIVED, created=at(2, 28, 23))
    # January
    refund_request(workspace, "s1", Status.REFUNDED, created=at(1, 5), amount_base=1000)
    refund_request(
        workspace, "s2", Status.APPROVED, created=at(1, 20), amount_base=None, approval_hours=1
    )
    # neither month
    refund_request(workspace, "x3", Status.REFUNDED, created=at(12, 31, 23, year=2025))
    refund_request(workspace, "x4", Status.REFUNDED, created=datetime(2026, 3, 1, tzinfo=UTC))
    # an agent-initiated refund in February: 4 minutes from the panel's open, executed directly
    action(
        workspace,
        actor(),
        "issue_refund",
        created=at(2, 16),
        completed=at(2, 16),
        amount_base=2500,
        handling=4,
        params={"reason": "requested_by_customer"},
    )

    # widget — February
    visit(workspace, "cus_a", "v1", at(2, 1), "next_invoice", "invoices")
    visit(workspace, "cus_b", "v2", at(2, 2), "last_payment", "contact")
    visit(workspace, "cus_c", "v3", at(2, 3))
    visit(workspace, "cus_d", "v4", at(2, 4), "contact")
    visit(workspace, "cus_a", "v5", at(2, 5), "next_invoice")
    visit(workspace, "cus_z", "v1", at(2, 6), "update_card")
    # January
    visit(workspace, "cus_a", "w1", at(1, 7), "next_invoice", "contact")
    visit(workspace, "cus_b", "w2", at(1, 8), "refund")
    # neither month
    visit(workspace, "cus_a", "x5", at(12, 7, year=2025), "next_invoice")
    visit(workspace, "cus_a", "x6", datetime(2026, 3, 1, tzinfo=UTC), "next_invoice")


def build_noise(workspace) -> None:
    """Another tenant's rows in February: none of them may count for acme."""
    prompt(workspace, "n1", sent=at(2, 3), updated=at(2, 4), renewal_paid=at(2, 5), renewal_base=99)
    refund_request(workspace, "n2", Status.REFUNDED, created=at(2, 3), amount_base=99)
    visit(workspace, "cus_n", "n3", at(2, 3), "next_invoice")


@pytest.fixture
def february(workspace, make_workspace):
    build_two_months(workspace)
    build_noise(make_workspace("globex"))
    return workspace


def usd(amount: int) -> dict:
    return {"amount": amount, "currency": "USD", "exponent": 2, "display": f"${amount / 100:,.2f}"}


def texts(part: dict) -> dict[str, tuple[str, str, str]]:
    return {
        r["key"]: (r["current_text"], r["previous_text"], r["change_text"]) for r in part["rows"]
    }


# --- figures -----------------------------------------------------------------------------------


def test_card_prompt_figures(february):
    section = dashboard_build(workspace=february, month=FEB)["self_service"]
    prompts = section["card_prompts"]

    assert section["previous_month"] == "2026-01"
    assert prompts["current"] == {
        "sent": 5,
        "sent_expiring": 3,
        "sent_failed": 2,
        "cards_updated": 4,
        "update_rate_pct": 80.0,
        "failures_avoided": 3,
        "revenue_kept": usd(17000),
        "revenue_unconverted": 1,
    }
    assert prompts["previous"] == {
        "sent": 2,
        "sent_expiring": 2,
        "sent_failed": 0,
        "cards_updated": 1,
        "update_rate_pct": 50.0,
        "failures_avoided": 1,
        "revenue_kept": usd(3000),
        "revenue_unconverted": 0,
    }
    assert prompts["change"] == {
        "sent": 3,
        "cards_updated": 3,
        "update_rate_pct": 30.0,
        "failures_avoided": 2,
        "revenue_kept": usd(14000),
    }
    assert texts(prompts) == {
        "sent": ("5", "2", "+3 (+150.0%)"),
        "cards_updated": ("4", "1", "+3 (+300.0%)"),
        "update_rate_pct": ("80.0%", "50.0%", "+30.0 pp"),
        "failures_avoided": ("3", "1", "+2 (+200.0%)"),
        "revenue_kept": ("$170.00", "$30.00", "+$140.00"),
    }


def test_refund_request_figures_and_agent_time(february):
    refunds = dashboard_build(workspace=february, month=FEB)["self_service"]["refund_requests"]

    assert refunds["current"] == {
        "requests": 8,
        "executed": 2,
        "executed_pct": 25.0,
        "sent_to_agents": 3,
        "sent_to_agents_pct": 37.5,
        "approved": 1,
        "declined": 1,
        "with_agents": 1,
        "refused": 1,
        "in_progress": 2,
        "refunded_amount": usd(15000),
        "refunded_unconverted": 0,
        "agent_time_measured": 5,
        "agent_minutes_per_request": 96.0,
        "approvals_decided": 2,
        "avg_approval_hours": 4.0,
    }
    previous = refunds["previous"]
    assert (previous["requests"], previous["executed"], previous["sent_to_agents"]) == (2, 1, 1)
    assert (previous["refunded_amount"], previous["refunded_unconverted"]) == (usd(1000), 1)
    assert (previous["agent_minutes_per_request"], previous["avg_approval_hours"]) == (30.0, 1.0)
    assert refunds["change"]["agent_minutes_per_request"] == 66.0
    assert refunds["change"]["refused"] == 1
    assert texts(refunds)["refused"] == ("1", "0", "+1")  # no relative change from 0
    assert texts(refunds)["agent_minutes_per_request"] == ("96.0 min", "30.0 min", "+66.0 min")
    assert texts(refunds)["avg_approval_hours"] == ("4.0 hours", "1.0 hours", "+3.0 hours")
    # compared with the refunds agents initiated: the dashboard's own issue_refund row
    # (the self-service actions carry no panel-open time, so only the agent's is timed)
    assert refunds["agent_initiated"] == {
        "avg_handling_minutes": 4.0,
        "handling_measured": 1,
        "count": 4,
    }


def test_widget_figures_and_questions(february):
    widget = dashboard_build(workspace=february, month=FEB)["self_service"]["widget"]

    assert widget["current"] == {
        "visits": 6,
        "questions_answered": 5,
        "answered_visits": 4,
        "contact_visits": 2,
        "deflected_visits": 3,
        "deflection_rate_pct": 75.0,
    }
    assert widget["previous"] == {
        "visits": 2,
        "questions_answered": 2,
        "answered_visits": 2,
        "contact_visits": 1,
        "deflected_visits": 1,
        "deflection_rate_pct": 50.0,
    }
    assert texts(widget)["deflection_rate_pct"] == ("75.0%", "50.0%", "+25.0 pp")
    assert [
        (q["key"], q["label"], q["current"], q["previous"], q["change_text"])
        for q in widget["by_question"]
    ] == [
        ("next_invoice", "Next invoice", 2, 1, "+1 (+100.0%)"),
        ("invoices", "Invoices to download", 1, 0, "+1"),
        ("last_payment", "Last payment", 1, 0, "+1"),
        ("update_card", "Update card", 1, 0, "+1"),
        ("refund", "Request a refund", 0, 1, "-1 (-100.0%)"),
    ]


def test_a_contact_within_a_day_after_an_answer_is_not_a_deflection(workspace):
    """A visit is the script's tab session; a customer who reads an answer and contacts
    support from another visit (the next page, a new tab) within 24 hours was not helped."""
    visit(workspace, "cus_a", "page-one", at(2, 10, 9), "last_payment")
    visit(workspace, "cus_a", "page-two", at(2, 10, 11), "contact")  # two hours later
    visit(workspace, "cus_b", "monday", at(2, 9, 9), "invoices")
    visit(workspace, "cus_b", "thursday", at(2, 12, 9), "contact")  # three days later
    visit(workspace, "cus_c", "after", at(2, 11, 9), "contact", "next_invoice")
    visit(workspace, "cus_d", "other", at(2, 11, 9), "next_invoice")
    visit(workspace, "cus_e", "elsewhere", at(2, 11, 10), "contact")  # another customer

    widget = dashboard_build(workspace=workspace, month=FEB)["self_service"]["widget"]

    # deflected: cus_b's monday (contact three days later), cus_d; not: cus_a's page-one
    # (contacted two hours later), cus_c's visit (contacted in the visit itself)
    assert widget["current"]["answered_visits"] == 4
    assert widget["current"]["deflected_visits"] == 2
    assert widget["current"]["deflection_rate_pct"] == 50.0


def test_empty_months_are_zero_and_rates_unknown(workspace):
    section = dashboard_build(workspace=workspace, month=FEB)["self_service"]

    assert section["card_prompts"]["current"]["sent"] == 0
    assert section["card_prompts"]["current"]["update_rate_pct"] is None
    assert section["card_prompts"]["change"]["update_rate_pct"] is None
    assert section["card_prompts"]["current"]["revenue_kept"] == usd(0)
    assert section["refund_requests"]["current"]["agent_minutes_per_request"] is None
    assert section["refund_requests"]["agent_initiated"]["avg_handling_minutes"] is None
    assert section["widget"]["current"]["deflection_rate_pct"] is None
    assert section["widget"]["by_question"] == []
    assert texts(section["widget"])["deflection_rate_pct"] == ("n/a", "n/a", "n/a")
    assert texts(section["card_prompts"])["sent"] == ("0", "0", "0")


def test_another_tenant_sees_only_its_own_rows(february):
    globex = february.__class__.objects.get(slug="globex")

    section = dashboard_build(workspace=globex, month=FEB)["self_service"]

    assert section["card_prompts"]["current"]["sent"] == 1
    assert section["refund_requests"]["current"]["requests"] == 1
    assert section["widget"]["current"]["visits"] == 1


def test_the_section_is_four_queries_whatever_the_data(february, make_workspace):
    # given the section's queries on the February rows
    empty = make_workspace("initech")
    actions = {"rows": []}

    def counted(workspace) -> int:
        with CaptureQueriesContext(connection) as captured:
            self_service_metrics(workspace=workspace, month=FEB, actions=actions)
        return len(captured.captured_queries)

    # then an empty workspace and a busy one run the same four
    assert counted(empty) == counted(february) == 4
    for n in range(30):
        prompt(february, f"bulk{n}", sent=at(2, 1 + n % 27), updated=at(2, 28))
        visit(february, f"cus_bulk{n}", f"b{n}", at(2, 1 + n % 27), "next_invoice", "contact")
    assert counted(february) == 4


# --- the report: JSON, CSV, text -----------------------------------------------------------------


def rows_of(text: str) -> dict[tuple[str, str], tuple[str, str]]:
    reader = csv.reader(io.StringIO(text))
    assert next(reader) == ["section", "metric", "value", "currency"]
    return {(section, metric): (value, currency) for section, metric, value, currency in reader}


def test_report_carries_the_section_in_json_csv_and_text(february):
    report = report_build(workspace=february, month=FEB)
    rows = rows_of(report_csv(report))
    text = report_text(report)

    assert report["self_service"] is report["dashboard"]["self_service"]
    expected = {
        ("self_service", "previous_month"): ("2026-01", ""),
        ("self_service.card_prompts", "sent"): ("5", ""),
        ("self_service.card_prompts", "sent.previous"): ("2", ""),
        ("self_service.card_prompts", "sent.change"): ("3", ""),
        ("self_service.card_prompts", "update_rate_pct"): ("80.0", ""),
        ("self_service.card_prompts", "update_rate_pct.change"): ("30.0", ""),
        ("self_service.card_prompts", "revenue_kept"): ("170.00", "USD"),
        ("self_service.card_prompts", "revenue_kept.previous"): ("30.00", "USD"),
        ("self_service.card_prompts", "revenue_kept.change"): ("140.00", "USD"),
        ("self_service.card_prompts", "revenue_unconverted"): ("1", ""),
        ("self_service.refund_requests", "executed"): ("2", ""),
        ("self_service.refund_requests", "sent_to_agents"): ("3", ""),
        ("self_service.refund_requests", "refunded_amount"): ("150.00", "USD"),
        ("self_service.refund_requests", "agent_minutes_per_request"): ("96.0", ""),
        ("self_service.refund_requests", "agent_minutes_per_request.previous"): ("30.0", ""),
        ("self_service.refund_requests", "agent_initiated_refund_handling_minutes"): ("4.0", ""),
        ("self_service.refund_requests", "agent_initiated_refund_handling_measured"): ("1", ""),
        ("self_service.widget", "deflection_rate_pct"): ("75.0", ""),
        ("self_service.widget", "deflected_visits.change"): ("2", ""),
        ("self_service.widget_questions", "next_invoice.answered"): ("2", ""),
        ("self_service.widget_questions", "refund.answered.change"): ("-1", ""),
    }
    for key, value in expected.items():
        assert rows[key] == value, key
    for line in (
        "SELF-SERVICE (compared with January 2026):",
        "  Card-update prompts:",
        "    Prompts sent: 5 (before: 2; change +3 (+150.0%))",
        "    Revenue kept (those renewals, base currency): $170.00 (before: $30.00; change +$140.00)",
        "    Executed within the self-service limit: 2 (before: 1; change +1 (+100.0%))",
        "    Agent-initiated refunds, handling time this month: 4.0 min (1 timed)",
        "    Deflection rate (deflected / answered visits): 75.0% (before: 50.0%; change +25.0 pp)",
    ):
        assert line in text, line


def test_a_report_stored_before_the_section_still_renders(february):
    # given a stored body from before issue 18 (no self-service section)
    report = report_build(workspace=february, month=FEB)
    del report["self_service"]

    # then its CSV and text have no self-service rows, and nothing fails
    assert not [key for key in rows_of(report_csv(report)) if key[0].startswith("self_service")]
    assert "SELF-SERVICE" not in report_text(report)


def test_report_api_json_and_csv_carry_the_section(february, api_as):
    client = api_as(february, Role.MANAGER)

    body = client.get("/api/v1/reports/monthly/", {"month": "2026-02"}).json()
    dashboard = client.get("/api/v1/dashboard/", {"month": "2026-02"}).json()
    csv_text = client.get("/api/v1/reports/monthly/", {"month": "2026-02", "format": "csv"})

    assert body["self_service"]["card_prompts"]["current"]["sent"] == 5
    assert dashboard["self_service"]["widget"]["current"]["deflected_visits"] == 3
    assert rows_of(csv_text.content.decode())[("self_service.refund_requests", "requests")] == (
        "8",
        "",
    )


# --- the pages ---------------------------------------------------------------------------------


@pytest.fixture
def staff_client(client):
    user = User.objects.create_user(username="boss", password="x-unused-x", is_superuser=True)
    verified_login(client, user)
    return client


@pytest.mark.parametrize(
    ("url", "params"),
    [
        ("/dashboard/", {"month": "2026-02", "workspace": "acme"}),
        ("/reports/monthly/2026-02/", {"workspace": "acme"}),
    ],
)
def test_both_pages_show_the_section(february, staff_client, url, params):
    response = staff_client.get(url, params)
    html = response.content.decode()

    assert response.status_code == 200
    assert ">Self-service</h2>" in html
    assert "February 2026 compared with January 2026." in html
    for caption in ("Card-update prompts", "Self-service refund requests", "Billing help widget"):
        assert f"<caption>{caption}</caption>" in html
    assert (
        '<tr data-figure="sent"><th scope="row">Prompts sent</th><td>5</td><td>2</td>'
        "<td>+3 (+150.0%)</td></tr>"
    ) in html
    assert "96.0 min per self-service request" in html
    assert "4.0 min per agent-initiated refund" in html
    assert '<tr data-question="next_invoice"><th scope="row">Next invoice</th>' in html
    assert "1 renewal paid in a currency without a rate is not in the revenue kept." in html


def test_the_section_reads_german(february):
    # given a German reader (the catalogs compiled from /work/notes/de_*.json)
    with translation.override("de"):
        section = dashboard_build(workspace=february, month=FEB)["self_service"]

    # then labels and texts are German, numbers written the German way
    prompts, refunds = texts(section["card_prompts"]), texts(section["refund_requests"])
    assert section["previous_month_label"] == "Januar 2026"
    assert [r["label"] for r in section["card_prompts"]["rows"]][:2] == [
        "Gesendete Aufforderungen",
        "Nach einer Aufforderung aktualisierte Karten",
    ]
    assert prompts["sent"] == ("5", "2", "+3 (+150,0\u00a0%)")
    assert prompts["update_rate_pct"] == ("80,0\u00a0%", "50,0\u00a0%", "+30,0 Pp.")
    assert prompts["revenue_kept"] == ("170,00\u00a0$", "30,00\u00a0$", "+140,00\u00a0$")
    assert refunds["agent_minutes_per_request"] == ("96,0 Min.", "30,0 Min.", "+66,0 Min.")
    questions = {q["key"]: q["label"] for q in section["widget"]["by_question"]}
    assert questions["next_invoice"] == "Nächste Rechnung"
