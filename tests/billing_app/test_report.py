"""The monthly report — data, JSON and CSV over the API, text and email — and who may see it.

The January 2026 data set is described in ``test_dashboard.py``. The report adds:
refunds $330.00 (3), credits $50 + $600 = $650.00 (2), one upgrade +$200.00 MRR
(recorded ``mrr_delta``), one downgrade −$50.00 MRR (price_small $50 − price_big
$100 in the mirror, quantity 1), net +$150.00 MRR; payment recovery retained
$255.00 MRR at 50% recovery; churn from failures $100.00 MRR (1 account, 25.0%);
uptime 88.89%, API success 77.78%, payment processing 3 of 7 charges = 42.9%,
webhook delivery 88.89%.
"""

from __future__ import annotations

import csv
import io
from decimal import Decimal

import pytest
from django.contrib.auth.models import User
from django.core import mail
from django.test import override_settings
from guardian.shortcuts import assign_perm

from billing_app.catalog import Role
from billing_app.models import CurrencyRate, MirrorPrice, MonthlyReport, Workspace
from billing_app.selectors.months import Month
from billing_app.selectors.report import report_build, report_csv, report_text
from billing_app.services.reports import monthly_report_email, monthly_report_generate
from billing_app.tasks.reports import monthly_reports_task

from .dashboard_data import action, actor, at, build_january, build_noise
from .two_factor_support import verified_login

JAN = Month(2026, 1)


@pytest.fixture
def january(workspace, make_workspace):
    build_january(workspace)
    build_noise(make_workspace("globex"))
    return workspace


def rows_of(text: str) -> dict[tuple[str, str], str]:
    reader = csv.reader(io.StringIO(text))
    assert next(reader) == ["section", "metric", "value", "currency"]
    return {(section, metric): value for section, metric, value, _currency in reader}


def test_report_figures(january):
    report = report_build(workspace=january, month=JAN)

    assert report["volume"] == {
        "billing_tickets": 10,
        "total_tickets": 20,
        "billing_share_pct": 50.0,
        "resolved_without_escalation": 7,
        "resolved_without_escalation_pct": 70.0,
        "escalated": 2,
        "escalated_pct": 20.0,
        "still_open": 1,
        "still_open_pct": 10.0,
        "avg_resolution_minutes": 4.4,
        "csat": 4.0,
        "csat_responses": 7,
    }
    f = report["financial"]
    assert (f["refunds"]["count"], f["refunds"]["total"]["display"]) == (3, "$330.00")
    assert (f["credits"]["count"], f["credits"]["total"]["display"]) == (2, "$650.00")
    assert (f["upgrades"]["count"], f["upgrades"]["mrr"]["amount"]) == (1, 20000)
    assert (f["downgrades"]["count"], f["downgrades"]["mrr"]["amount"]) == (1, -5000)
    assert f["net_mrr"] == {"amount": 15000, "currency": "USD", "exponent": 2, "display": "$150.00"}
    assert f["payment_recovery"] == {
        "retained_mrr": {"amount": 25500, "currency": "USD", "exponent": 2, "display": "$255.00"},
        "recovery_rate_pct": 50.0,
        "failures": 4,
        "recovered": 2,
        "recovered_after_agent_action": 1,
        "recovered_automatically": 1,
        "agent_intervened": 1,
        "agent_intervention_recovery_pct": 100.0,
    }
    assert f["failure_churn"] == {
        "mrr": {"amount": 10000, "currency": "USD", "exponent": 2, "display": "$100.00"},
        "accounts": 1,
        "pct_of_failures": 25.0,
    }
    assert report["health"] == {
        "uptime_pct": 88.89,
        "api_success_rate_pct": 77.78,
        "payment_processing_success_pct": 42.9,
        "webhook_delivery_pct": 88.89,
    }
    assert [r["rule"] for r in report["recommendations"]] == [
        "payment_failure_churn",
        "self_service_refunds",
        "billing_faq",
        "invoice_preview",
        "webhook_delivery",
    ]


def test_report_text_reads_like_the_brief(january):
    text = report_text(report_build(workspace=january, month=JAN))

    assert text.startswith("BILLING SUPPORT MONTHLY REPORT — January 2026\n")
    for line in (
        "  Billing tickets: 10 (50.0% of total)",
        "  Resolved without escalation: 7 (70.0%)",
        "  Escalated: 2 (20.0%)",
        "  Still open: 1 (10.0%)",
        "  Average resolution time: 4.4 minutes",
        "  CSAT: 4.0/5.0",
        "  Refunds processed: $330.00 (3 refunds)",
        "  Credits applied: $650.00 (2 credits)",
        "  Plan upgrades: $200.00 MRR (1 upgrade)",
        "  Plan downgrades: -$50.00 MRR (1 downgrade)",
        "  Net billing impact: +$150.00 MRR",
        "  Revenue retained from payment recovery: $255.00 MRR (50.0% recovery rate)",
        "  Recovered after agent intervention: 1 of 1 failure an agent acted on (100.0%); "
        "1 recovered by automatic retries",
        "  Churn from payment failures: $100.00 MRR (1 account, 25.0% of failures)",
        "  Uptime: 88.9%",
        "  Payment processing success: 42.9%",
        "  1. Reduce payment failure churn: turn on card-update prompts "
        "(Django admin → Workspaces → Card prompts enabled) (1 account",
    ):
        assert line in text, line


def test_report_api_json_for_a_manager(january, api_as):
    client = api_as(january, Role.MANAGER)

    response = client.get("/api/v1/reports/monthly/", {"month": "2026-01"})

    assert response.status_code == 200
    body = response.json()
    assert body["month"] == "2026-01"
    assert body["volume"]["billing_tickets"] == 10
    assert body["financial"]["net_mrr"]["amount"] == 15000
    assert body["dashboard"]["refunds"]["count"] == 3


def test_report_api_csv_layout(january, api_as):
    client = api_as(january, Role.MANAGER)

    response = client.get("/api/v1/reports/monthly/", {"month": "2026-01", "format": "csv"})

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert 'filename="billing-report-acme-2026-01.csv"' in response["Content-Disposition"]
    rows = rows_of(response.content.decode())
    expected = {
        ("report", "month"): "2026-01",
        ("report", "currency"): "USD",
        ("volume", "billing_tickets"): "10",
        ("volume", "billing_share_pct"): "50.0",
        ("volume", "resolved_without_escalation"): "7",
        ("volume", "avg_resolution_minutes"): "4.4",
        ("volume", "csat"): "4.0",
        ("financial", "refunds_count"): "3",
        ("financial", "refunds_total"): "330.00",
        ("financial", "credits_total"): "650.00",
        ("financial", "upgrades_mrr"): "200.00",
        ("financial", "downgrades_mrr"): "-50.00",
        ("financial", "net_mrr"): "150.00",
        ("financial", "recovery_retained_mrr"): "255.00",
        ("financial", "recovery_rate_pct"): "50.0",
        ("financial", "failure_churn_mrr"): "100.00",
        ("financial", "failure_churn_accounts"): "1",
        ("health", "uptime_pct"): "88.89",
        ("health", "api_success_rate_pct"): "77.78",
        ("health", "payment_processing_success_pct"): "42.9",
        ("health", "webhook_delivery_pct"): "88.89",
        ("category", "payment_failed.tickets"): "2",
        ("category", "refund_request.avg_resolution_minutes"): "8.0",
        ("category", "duplicate_charge.share_pct"): "0.0",
        ("actions", "issue_refund.count"): "4",
        ("actions", "generate_payment_link.success_rate_pct"): "50.0",
        ("actions", "total"): "12",
        ("actions", "requiring_approval"): "4",
        ("actions", "avg_approval_hours"): "4.0",
        ("refund_reasons", "billing_error.amount"): "250.00",
        ("refund_approval", "manager.count"): "1",
        ("payment_failures", "count"): "4",
        ("payment_failures", "avg_recovery_days"): "1.5",
        ("payment_failures", "revenue_at_risk_mrr"): "355.00",
        ("payment_failure_reasons", "card_expired.count"): "1",
        ("response_times", "billing_data_retrieval.avg_ms"): "350.0",
    }
    for key, value in expected.items():
        assert rows[key] == value, key
    assert rows[("recommendations", "1.payment_failure_churn")].startswith(
        "Reduce payment failure churn"
    )


def test_empty_month_report_in_json_and_csv(workspace, api_as):
    client = api_as(workspace, Role.MANAGER)

    body = client.get("/api/v1/reports/monthly/", {"month": "2024-02"}).json()
    csv_rows = rows_of(
        client.get(
            "/api/v1/reports/monthly/", {"month": "2024-02", "format": "csv"}
        ).content.decode()
    )

    assert body["volume"]["billing_tickets"] == 0
    assert body["volume"]["billing_share_pct"] is None
    assert body["financial"]["net_mrr"]["amount"] == 0
    assert body["health"]["uptime_pct"] is None
    assert body["recommendations"] == []
    assert csv_rows[("volume", "billing_share_pct")] == "n/a"
    assert csv_rows[("health", "uptime_pct")] == "n/a"
    assert csv_rows[("financial", "refunds_total")] == "0.00"


def test_dashboard_api_for_a_manager(january, api_as):
    body = api_as(january, Role.MANAGER).get("/api/v1/dashboard/", {"month": "2026-01"}).json()

    assert body["tickets"]["billing"] == 10
    assert body["actions"]["total"] == 12
    assert body["payment_failures"]["count"] == 4


@pytest.mark.parametrize("url", ["/api/v1/dashboard/", "/api/v1/reports/monthly/"])
@pytest.mark.parametrize(
    "month", ["2026-13", "2026-1", "January", "1999-12", "2026-01x", "２０２６-01"]
)
def test_bad_month_is_400_invalid_month(workspace, api_as, url, month):
    response = api_as(workspace, Role.MANAGER).get(url, {"month": month})

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_month"


def test_an_empty_month_means_the_default_month(workspace, api_as):
    client = api_as(workspace, Role.MANAGER)

    before = Month.current()
    dashboard = client.get("/api/v1/dashboard/", {"month": ""}).json()
    report = client.get("/api/v1/reports/monthly/", {"month": ""}).json()
    after = Month.current()  # midnight at a month's end may pass during the requests

    assert dashboard["month"] in {before.key, after.key}
    assert report["month"] in {before.shift(-1).key, after.shift(-1).key}


def test_bad_format_is_400_even_for_csv_errors(workspace, api_as):
    client = api_as(workspace, Role.MANAGER)

    bad_format = client.get("/api/v1/reports/monthly/", {"month": "2026-01", "format": "xml"})
    csv_error = client.get("/api/v1/reports/monthly/", {"month": "nope", "format": "csv"})

    assert bad_format.status_code == 400
    assert bad_format.json()["error"]["code"] == "invalid_format"
    assert csv_error.status_code == 400
    assert csv_error["Content-Type"].startswith("application/json")
    assert csv_error.json()["error"]["code"] == "invalid_month"


@pytest.mark.parametrize("url", ["/api/v1/dashboard/", "/api/v1/reports/monthly/"])
def test_unauthenticated_is_401(db, client, url):
    response = client.get(url, {"month": "2026-01"})

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "not_authenticated"


@pytest.mark.parametrize("role", [Role.L1, Role.L2, Role.SPECIALIST])
@pytest.mark.parametrize("url", ["/api/v1/dashboard/", "/api/v1/reports/monthly/"])
def test_agents_without_approve_actions_get_403(january, api_as, role, url):
    response = api_as(january, role).get(url, {"month": "2026-01"})

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "not_permitted"
    assert "volume" not in response.json()


def test_a_manager_of_another_tenant_sees_only_their_own(january, api_as):
    globex = Workspace.objects.get(slug="globex")
    client = api_as(globex, Role.MANAGER)

    own = client.get("/api/v1/reports/monthly/", {"month": "2026-01"}).json()
    other = client.get("/api/v1/reports/monthly/", {"month": "2026-01", "workspace": "acme"})

    assert own["workspace"]["slug"] == "globex"
    assert own["volume"]["billing_tickets"] == 5
    assert own["financial"]["refunds"]["count"] == 1
    assert other.status_code == 404


def _staff(*, superuser=False, staff=True) -> User:
    return User.objects.create_user(
        username=f"staff-{User.objects.count()}",
        password="x-unused-x",
        is_staff=staff,
        is_superuser=superuser,
    )


def test_staff_session_sees_only_workspaces_they_hold_perms_on(january, client):
    user = _staff()
    assign_perm("billing_app.view_billing", user, january)
    verified_login(client, user)

    ok = client.get("/api/v1/reports/monthly/", {"month": "2026-01"})
    other = client.get("/api/v1/reports/monthly/", {"month": "2026-01", "workspace": "globex"})

    assert ok.status_code == 200
    assert ok.json()["workspace"]["slug"] == "acme"
    assert other.status_code == 404


def test_superuser_with_several_workspaces_names_one(january, client):
    verified_login(client, _staff(superuser=True))

    unnamed = client.get("/api/v1/dashboard/", {"month": "2026-01"})
    named = client.get("/api/v1/dashboard/", {"month": "2026-01", "workspace": "globex"})

    assert unnamed.status_code == 400
    assert unnamed.json()["error"]["code"] == "workspace_required"
    assert named.json()["tickets"]["billing"] == 5


def test_signed_in_user_without_permissions_gets_403(january, client):
    verified_login(client, _staff(staff=False))

    response = client.get("/api/v1/dashboard/", {"month": "2026-01"})

    assert response.status_code == 403


# --- MRR movements: what each action recorded when it ran ----------------------------------------

FEB = Month(2026, 2)


def _recorded(workspace, kind, day, *, delta, currency="USD", direction="", status="succeeded"):
    result = {"mrr_delta": delta, "mrr_currency": currency}
    if direction:
        result["direction"] = direction
    return action(
        workspace,
        actor(),
        kind,
        created=at(day, month=2),
        status=status,
        params={"subscription_id": "sub_x", "price_id": "price_new"},
        result=result,
    )


def test_report_mrr_reads_the_recorded_deltas_not_todays_prices(workspace):
    # today's mirrored prices disagree with what was recorded: the report must not read them
    MirrorPrice.objects.create(
        workspace=workspace,
        stripe_id="price_new",
        currency="USD",
        unit_amount=1,
        recurring_interval="month",
        recurring_interval_count=1,
        active=True,
    )
    _recorded(workspace, "change_plan", 2, delta=30000, direction="upgrade")
    _recorded(workspace, "change_plan", 3, delta=12345, direction="upgrade")
    _recorded(workspace, "change_plan", 4, delta=-4000, direction="downgrade")
    # a downgrade scheduled for period end on 5 seats: ($100 − $60) × 5 recorded at execution
    _recorded(workspace, "change_plan", 5, delta=-20000, direction="downgrade")
    # not succeeded: left out
    _recorded(workspace, "change_plan", 6, delta=99900, direction="upgrade", status="failed")

    f = report_build(workspace=workspace, month=FEB)["financial"]

    assert (f["upgrades"]["count"], f["upgrades"]["mrr"]["amount"]) == (2, 42345)
    assert (f["downgrades"]["count"], f["downgrades"]["mrr"]["amount"]) == (2, -24000)
    assert f["net_mrr"]["amount"] == 18345
    assert f["net_mrr"]["display"] == "$183.45"
    assert f["upgrades"]["unrecorded"] == f["downgrades"]["unrecorded"] == 0


def test_report_mrr_in_another_currency_is_converted_with_the_workspace_rate(workspace):
    CurrencyRate.objects.create(workspace=workspace, currency="EUR", rate=Decimal("1.1"))
    _recorded(workspace, "change_plan", 2, delta=10001, currency="EUR", direction="upgrade")
    _recorded(workspace, "change_plan", 3, delta=10001, currency="eur", direction="upgrade")
    _recorded(workspace, "change_plan", 4, delta=5000, currency="USD", direction="upgrade")
    # ¥: zero-decimal currency without a rate: counted, no MRR, reported as unconverted
    _recorded(workspace, "change_plan", 5, delta=-3000, currency="JPY", direction="downgrade")

    f = report_build(workspace=workspace, month=FEB)["financial"]

    # €100.01 × 2 × 1.1 = $220.022 → 22002 (rounded once), + $50.00
    assert (f["upgrades"]["count"], f["upgrades"]["mrr"]["amount"]) == (3, 27002)
    assert f["downgrades"] == {
        "count": 1,
        "mrr": {"amount": 0, "currency": "USD", "exponent": 2, "display": "$0.00"},
        "unrecorded": 0,
        "unconverted": 1,
    }


def test_seat_changes_and_discounts_show_their_recorded_mrr_beside_plan_changes(workspace, client):
    _recorded(workspace, "change_plan", 2, delta=10000, direction="upgrade")
    _recorded(workspace, "adjust_seats", 3, delta=6000)  # 3 seats added at $20
    _recorded(workspace, "adjust_seats", 4, delta=-2000)
    _recorded(workspace, "apply_discount", 5, delta=-1500)  # 10% off $150

    report = report_build(workspace=workspace, month=FEB)
    f = report["financial"]
    rows = rows_of(report_csv(report))

    assert (f["seat_changes"]["count"], f["seat_changes"]["mrr"]["amount"]) == (2, 4000)
    assert (f["discounts"]["count"], f["discounts"]["mrr"]["amount"]) == (1, -1500)
    assert f["net_mrr"]["amount"] == 10000  # net billing impact = upgrades + downgrades
    assert rows[("financial", "seat_changes_mrr")] == "40.00"
    assert rows[("financial", "discounts_count")] == "1"
    verified_login(client, _staff(superuser=True))
    html = client.get("/reports/monthly/2026-02/", {"workspace": workspace.slug}).content.decode()
    assert "Seat changes</th><td>$40.00 MRR" in html
    assert "Discounts</th><td>-$15.00 MRR" in html


def test_a_plan_change_that_recorded_no_delta_counts_without_mrr(workspace):
    action(
        workspace,
        actor(),
        "change_plan",
        created=at(2, month=2),
        result={"direction": "upgrade", "new_price_id": "p2", "previous_price_id": "p1"},
    )
    _recorded(workspace, "change_plan", 3, delta=-700, currency="", direction="downgrade")

    f = report_build(workspace=workspace, month=FEB)["financial"]

    assert (f["upgrades"]["count"], f["upgrades"]["mrr"]["amount"]) == (1, 0)
    assert f["upgrades"]["unrecorded"] == 1
    # no currency recorded (older demo rows): the base currency
    assert f["downgrades"]["mrr"]["amount"] == -700


# --- web pages -----------------------------------------------------------------------------------


def test_dashboard_page_renders_figures_and_svg_charts(january, client):
    verified_login(client, _staff(superuser=True))

    response = client.get("/dashboard/", {"month": "2026-01", "workspace": "acme"})

    assert response.status_code == 200
    html = response.content.decode()
    assert "Billing support dashboard — January 2026" in html
    assert "<svg" in html and "Payment failures and recoveries by month" in html
    assert "<script" not in html
    assert 'option value="globex"' in html  # workspace switcher for several workspaces
    assert "/api/v1/reports/monthly/?workspace=acme&amp;month=2026-01&amp;format=csv" in html
    assert "266" not in html or "4.4 min" in html
    assert "4.4 min" in html and "4.0/5.0" in html and "$330.00" in html
    assert "Reduce payment failure churn" in html


def test_report_page_and_month_switcher(january, client):
    verified_login(client, _staff(superuser=True))

    page = client.get("/reports/monthly/2026-01/", {"workspace": "acme"})
    picked = client.get("/reports/monthly/", {"workspace": "acme", "month": "2026-01"})
    bad = client.get("/reports/monthly/2026-13/", {"workspace": "acme"})
    bad_dashboard = client.get("/dashboard/", {"month": "13-2026", "workspace": "acme"})

    assert page.status_code == 200
    html = page.content.decode()
    assert "Net billing impact" in html and "$150.00 MRR" in html
    assert picked.status_code == 302 and picked["Location"].startswith("/reports/monthly/2026-01/")
    assert bad.status_code == 404
    assert bad_dashboard.status_code == 400


def test_web_pages_need_login_and_permission(january, client):
    anonymous = client.get("/dashboard/")
    verified_login(client, _staff(staff=False))
    forbidden = client.get("/dashboard/")
    approver = _staff(staff=False)
    assign_perm("billing_app.approve_actions", approver, january)
    verified_login(client, approver)
    other_tenant = client.get("/dashboard/", {"workspace": "globex"})
    own = client.get("/dashboard/", {"workspace": "acme", "month": "2026-01"})

    assert anonymous.status_code == 302 and "/login/" in anonymous["Location"]
    assert forbidden.status_code == 403
    assert other_tenant.status_code == 404
    assert own.status_code == 200
    assert 'option value="globex"' not in own.content.decode()


# --- the monthly task ----------------------------------------------------------------------------


@override_settings(MONTHLY_REPORT_RECIPIENTS=["ops@acme.example", "cfo@acme.example"])
def test_monthly_task_stores_and_emails_each_workspace_once(january):
    # when the beat task runs for January, twice
    queued = monthly_reports_task(month="2026-01")
    monthly_reports_task(month="2026-01")

    # then one report per active workspace is stored and emailed exactly once
    assert queued == 2
    assert MonthlyReport.objects.count() == 2
    assert len(mail.outbox) == 2
    acme_mail = next(m for m in mail.outbox if "Acme" in m.subject)
    assert acme_mail.to == ["ops@acme.example", "cfo@acme.example"]
    assert "BILLING SUPPORT MONTHLY REPORT — January 2026" in acme_mail.body
    assert "Net billing impact: +$150.00 MRR" in acme_mail.body
    name, content, mimetype = acme_mail.attachments[0]
    assert name == "billing-report-acme-2026-01.csv" and mimetype == "text/csv"
    assert rows_of(content)[("financial", "net_mrr")] == "150.00"
    stored = MonthlyReport.objects.get(workspace=january)
    assert stored.month.isoformat() == "2026-01-01"
    assert stored.emailed_to == ["ops@acme.example", "cfo@acme.example"]
    assert stored.body["financial"]["refunds"]["count"] == 3


def test_a_failed_email_is_released_for_the_retry(january, monkeypatch):
    report = monthly_report_generate(workspace=january, month=JAN)

    def broken(*args, **kwargs):
        raise OSError("smtp down")

    monkeypatch.setattr("django.core.mail.EmailMessage.send", broken)
    with pytest.raises(OSError):
        monthly_report_email(report=report, recipients=["ops@acme.example"])
    report.refresh_from_db()
    assert report.emailed_at is None
    monkeypatch.undo()
    assert monthly_report_email(report=report, recipients=["ops@acme.example"]) is True
    assert len(mail.outbox) == 1


def test_without_recipients_the_report_is_stored_only(january, settings):
    settings.MONTHLY_REPORT_RECIPIENTS = []

    monthly_reports_task(month="2026-01")

    assert MonthlyReport.objects.filter(workspace=january, emailed_at__isnull=True).exists()
    assert mail.outbox == []
