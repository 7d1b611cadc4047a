"""The monthly billing support report (the brief's MONTHLY REPORT), as data, CSV and text.

Built on the dashboard's figures (``selectors.dashboard``: same definitions,
same month rules) plus one more aggregate for the financial impact:

* **Refunds processed** / **credits applied**: succeeded actions, amounts in
  the base currency (``BillingAction.amount_base``).
* **Plan upgrades / downgrades** in MRR: succeeded ``change_plan`` actions by
  ``result.direction``; the MRR delta is ``result.mrr_delta`` (signed minor
  units, base currency) when the action recorded it, otherwise the difference
  between the new and previous price's monthly amounts in the mirror
  (``result.new_price_id`` − ``result.previous_price_id``) times the item's
  quantity. **Net billing impact** = upgrades + downgrades (one-off refunds and
  credits are shown, not netted into MRR).
* **Revenue retained from payment recovery** / **churn from payment failures**:
  the dashboard's payment-failure MRR figures.
* **System health**: uptime, API success rate (provider calls), payment
  processing success (mirrored charges succeeded / finished), webhook delivery.
"""

from __future__ import annotations

import csv
import io
from typing import Any

from django.db.models import (
    Case,
    Count,
    FloatField,
    OuterRef,
    Q,
    Subquery,
    Sum,
    Value,
    When,
)
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Cast, Coalesce

from ..catalog import ActionKind
from ..models import BillingAction, MirrorPrice, MirrorSubscriptionItem, Workspace
from .dashboard import (
    REFUND_KINDS,
    _direction,
    _rates,
    analytics_session,
    dashboard_build,
    item_monthly_amount,
    money,
    plural,
    to_base,
)
from .months import Month


def _price_monthly(workspace: Workspace, price_key: str, rates: dict) -> Subquery:
    """The monthly amount (base minor units) of the mirrored price named by ``price_key``."""
    monthly = item_monthly_amount(quantity=None)
    prices = (
        MirrorPrice.objects.filter(workspace=workspace, stripe_id=OuterRef(price_key))
        .annotate(monthly=to_base(monthly, "currency", workspace=workspace, rates=rates))
        .values("monthly")[:1]
    )
    return Subquery(prices, output_field=FloatField())


def financial_impact(*, workspace: Workspace, month: Month, rates: dict) -> dict[str, Any]:
    currency = workspace.base_currency
    quantity = Subquery(
        MirrorSubscriptionItem.objects.filter(
            workspace=workspace,
            subscription_id=OuterRef("sub_key"),
            price_id=OuterRef("new_price_key"),
        ).values("quantity")[:1]
    )
    mrr_delta = Case(  # computed for plan changes only (CASE is lazy)
        When(
            kind=ActionKind.CHANGE_PLAN,
            then=Coalesce(
                Cast(KeyTextTransform("mrr_delta", "result"), FloatField()),
                (
                    Coalesce(_price_monthly(workspace, "new_price_key", rates), Value(0.0))
                    - Coalesce(_price_monthly(workspace, "previous_price_key", rates), Value(0.0))
                )
                * Coalesce(quantity, Value(1)),
                output_field=FloatField(),
            ),
        ),
        default=Value(None),
        output_field=FloatField(),
    )
    upgrade = Q(kind=ActionKind.CHANGE_PLAN, direction="upgrade")
    downgrade = Q(kind=ActionKind.CHANGE_PLAN, direction="downgrade")
    row = (
        BillingAction.objects.filter(
            workspace=workspace,
            created_at__gte=month.start,
            created_at__lt=month.end,
            status=BillingAction.Status.SUCCEEDED,
        )
        .annotate(
            direction=_direction(),
            sub_key=KeyTextTransform("subscription_id", "params"),
            new_price_key=Coalesce(
                KeyTextTransform("new_price_id", "result"), KeyTextTransform("price_id", "params")
            ),
            previous_price_key=KeyTextTransform("previous_price_id", "result"),
        )
        .annotate(mrr_delta=mrr_delta)
        .aggregate(
            refunds=Count("id", filter=Q(kind__in=REFUND_KINDS)),
            refunds_total=Sum("amount_base", filter=Q(kind__in=REFUND_KINDS)),
            credits=Count("id", filter=Q(kind=ActionKind.APPLY_CREDIT)),
            credits_total=Sum("amount_base", filter=Q(kind=ActionKind.APPLY_CREDIT)),
            upgrades=Count("id", filter=upgrade),
            upgrades_mrr=Sum("mrr_delta", filter=upgrade),
            downgrades=Count("id", filter=downgrade),
            downgrades_mrr=Sum("mrr_delta", filter=downgrade),
        )
    )
    up, down = round(row["upgrades_mrr"] or 0), round(row["downgrades_mrr"] or 0)
    return {
        "refunds": {"count": row["refunds"], "total": money(row["refunds_total"], currency)},
        "credits": {"count": row["credits"], "total": money(row["credits_total"], currency)},
        "upgrades": {"count": row["upgrades"], "mrr": money(up, currency)},
        "downgrades": {"count": row["downgrades"], "mrr": money(down, currency)},
        "net_mrr": money(up + down, currency),
    }


def report_build(*, workspace: Workspace, month: Month) -> dict[str, Any]:
    """Every figure of the brief's MONTHLY BILLING SUPPORT REPORT, plus the dashboard behind it."""
    with analytics_session():
        dashboard = dashboard_build(workspace=workspace, month=month)
        financial = financial_impact(workspace=workspace, month=month, rates=_rates(workspace))
    tickets, failures, health = (
        dashboard["tickets"],
        dashboard["payment_failures"],
        dashboard["health"],
    )
    financial["payment_recovery"] = {
        "retained_mrr": failures["recovered_mrr"],
        "recovery_rate_pct": failures["recovery_rate_pct"],
        "failures": failures["count"],
        "recovered": failures["recovered"],
    }
    financial["failure_churn"] = {
        "mrr": failures["churned_mrr"],
        "accounts": failures["churned_accounts"],
        "pct_of_failures": failures["churn_pct_of_failures"],
    }
    return {
        "workspace": dashboard["workspace"],
        "month": dashboard["month"],
        "month_label": dashboard["month_label"],
        "period": dashboard["period"],
        "generated_at": dashboard["generated_at"],
        "volume": {
            "billing_tickets": tickets["billing"],
            "total_tickets": tickets["total"],
            "billing_share_pct": tickets["billing_share_pct"],
            "resolved_without_escalation": tickets["resolved_without_escalation"],
            "resolved_without_escalation_pct": tickets["resolved_without_escalation_pct"],
            "escalated": tickets["escalated"],
            "avg_resolution_minutes": tickets["avg_resolution_minutes"],
            "csat": tickets["csat"],
            "csat_responses": tickets["csat_responses"],
        },
        "financial": financial,
        "health": {
            "uptime_pct": health["uptime_pct"],
            "api_success_rate_pct": health["api_success_rate_pct"],
            "payment_processing_success_pct": health["payment_processing_success_pct"],
            "webhook_delivery_pct": health["webhooks"]["success_rate_pct"],
        },
        "recommendations": dashboard["recommendations"],
        "dashboard": dashboard,
    }


# --- presentation ------------------------------------------------------------------------------


def _num(value: Any, suffix: str = "") -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float) and value.is_integer() and suffix == "%":
        return f"{value:.1f}{suffix}"
    return f"{value}{suffix}"


def report_rows(report: dict[str, Any]) -> list[tuple[str, str, str]]:
    """The report flattened to (section, metric, value) rows — the CSV layout."""
    v, f, h = report["volume"], report["financial"], report["health"]
    d = report["dashboard"]
    rows: list[tuple[str, str, str]] = [
        ("report", "workspace", report["workspace"]["slug"]),
        ("report", "month", report["month"]),
        ("report", "currency", report["workspace"]["base_currency"]),
        ("volume", "billing_tickets", str(v["billing_tickets"])),
        ("volume", "total_tickets", str(v["total_tickets"])),
        ("volume", "billing_share_pct", _num(v["billing_share_pct"])),
        ("volume", "resolved_without_escalation", str(v["resolved_without_escalation"])),
        ("volume", "resolved_without_escalation_pct", _num(v["resolved_without_escalation_pct"])),
        ("volume", "escalated", str(v["escalated"])),
        ("volume", "avg_resolution_minutes", _num(v["avg_resolution_minutes"])),
        ("volume", "csat", _num(v["csat"])),
        ("volume", "csat_responses", str(v["csat_responses"])),
        ("financial", "refunds_count", str(f["refunds"]["count"])),
        ("financial", "refunds_total", str(f["refunds"]["total"]["amount"])),
        ("financial", "credits_count", str(f["credits"]["count"])),
        ("financial", "credits_total", str(f["credits"]["total"]["amount"])),
        ("financial", "upgrades_count", str(f["upgrades"]["count"])),
        ("financial", "upgrades_mrr", str(f["upgrades"]["mrr"]["amount"])),
        ("financial", "downgrades_count", str(f["downgrades"]["count"])),
        ("financial", "downgrades_mrr", str(f["downgrades"]["mrr"]["amount"])),
        ("financial", "net_mrr", str(f["net_mrr"]["amount"])),
        (
            "financial",
            "recovery_retained_mrr",
            str(f["payment_recovery"]["retained_mrr"]["amount"]),
        ),
        ("financial", "recovery_rate_pct", _num(f["payment_recovery"]["recovery_rate_pct"])),
        ("financial", "failure_churn_mrr", str(f["failure_churn"]["mrr"]["amount"])),
        ("financial", "failure_churn_accounts", str(f["failure_churn"]["accounts"])),
        ("financial", "failure_churn_pct_of_failures", _num(f["failure_churn"]["pct_of_failures"])),
        ("health", "uptime_pct", _num(h["uptime_pct"])),
        ("health", "api_success_rate_pct", _num(h["api_success_rate_pct"])),
        ("health", "payment_processing_success_pct", _num(h["payment_processing_success_pct"])),
        ("health", "webhook_delivery_pct", _num(h["webhook_delivery_pct"])),
    ]
    for c in d["categories"]:
        key = c["key"]
        rows += [
            ("category", f"{key}.tickets", str(c["tickets"])),
            ("category", f"{key}.share_pct", _num(c["share_pct"])),
            ("category", f"{key}.avg_resolution_minutes", _num(c["avg_resolution_minutes"])),
            ("category", f"{key}.auto_resolved_pct", _num(c["auto_resolved_pct"])),
        ]
    for a in d["actions"]["rows"]:
        key = a["key"]
        rows += [
            ("actions", f"{key}.count", str(a["count"])),
            ("actions", f"{key}.success_rate_pct", _num(a["success_rate_pct"])),
            ("actions", f"{key}.avg_seconds", _num(a["avg_seconds"])),
        ]
    actions = d["actions"]
    rows += [
        ("actions", "total", str(actions["total"])),
        ("actions", "requiring_approval", str(actions["requiring_approval"])),
        ("actions", "requiring_approval_pct", _num(actions["requiring_approval_pct"])),
        ("actions", "avg_approval_hours", _num(actions["avg_approval_hours"])),
    ]
    for r in d["refunds"]["by_reason"]:
        rows += [
            ("refund_reasons", f"{r['key']}.count", str(r["count"])),
            ("refund_reasons", f"{r['key']}.amount", str(r["amount"]["amount"])),
        ]
    for r in d["refunds"]["by_approval_path"]:
        rows.append(("refund_approval", f"{r['key']}.count", str(r["count"])))
    pf = d["payment_failures"]
    rows += [
        ("payment_failures", "count", str(pf["count"])),
        ("payment_failures", "recovered", str(pf["recovered"])),
        (
            "payment_failures",
            "recovered_after_agent_action",
            str(pf["recovered_after_agent_action"]),
        ),
        ("payment_failures", "avg_recovery_days", _num(pf["avg_recovery_days"])),
        ("payment_failures", "revenue_at_risk_mrr", str(pf["revenue_at_risk_mrr"]["amount"])),
    ]
    for r in pf["reasons"]:
        rows.append(("payment_failure_reasons", f"{r['key']}.count", str(r["count"])))
    for r in d["health"]["response_times"]:
        rows.append(("response_times", f"{r['key']}.avg_ms", _num(r["avg_ms"])))
    for i, r in enumerate(report["recommendations"], start=1):
        rows.append(("recommendations", f"{i}.{r['rule']}", f"{r['text']} ({r['evidence']})"))
    return rows


def report_csv(report: dict[str, Any]) -> str:
    """``section,metric,value`` rows; money in minor units of the report's currency."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["section", "metric", "value"])
    writer.writerows(report_rows(report))
    return buffer.getvalue()


def _pct_text(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f}%"


def report_text(report: dict[str, Any]) -> str:
    """The plain-text report, laid out like the brief's."""
    v, f, h = report["volume"], report["financial"], report["health"]
    title = f"BILLING SUPPORT MONTHLY REPORT — {report['month_label']}"
    minutes = v["avg_resolution_minutes"]
    csat = "n/a" if v["csat"] is None else f"{v['csat']:.1f}/5.0"
    lines = [
        title,
        "=" * len(title),
        f"Workspace: {report['workspace']['name']}",
        "",
        "VOLUME & PERFORMANCE:",
        f"  Billing tickets: {v['billing_tickets']} ({_pct_text(v['billing_share_pct'])} of total)",
        f"  Resolved without escalation: {v['resolved_without_escalation']} "
        f"({_pct_text(v['resolved_without_escalation_pct'])})",
        f"  Average resolution time: {'n/a' if minutes is None else f'{minutes} minutes'}",
        f"  CSAT: {csat}",
        "",
        "FINANCIAL IMPACT:",
        f"  Refunds processed: {f['refunds']['total']['display']} ({plural(f['refunds']['count'], 'refund')})",
        f"  Credits applied: {f['credits']['total']['display']} ({plural(f['credits']['count'], 'credit')})",
        f"  Plan upgrades: {f['upgrades']['mrr']['display']} MRR ({plural(f['upgrades']['count'], 'upgrade')})",
        f"  Plan downgrades: {f['downgrades']['mrr']['display']} MRR "
        f"({plural(f['downgrades']['count'], 'downgrade')})",
        f"  Net billing impact: {'+' if f['net_mrr']['amount'] >= 0 else ''}"
        f"{f['net_mrr']['display']} MRR",
        "",
        f"  Revenue retained from payment recovery: "
        f"{f['payment_recovery']['retained_mrr']['display']} MRR "
        f"({_pct_text(f['payment_recovery']['recovery_rate_pct'])} recovery rate)",
        f"  Churn from payment failures: {f['failure_churn']['mrr']['display']} MRR "
        f"({plural(f['failure_churn']['accounts'], 'account')}, "
        f"{_pct_text(f['failure_churn']['pct_of_failures'])} of failures)",
        "",
        "BILLING SYSTEM HEALTH:",
        f"  Uptime: {_pct_text(h['uptime_pct'])}",
        f"  API success rate: {_pct_text(h['api_success_rate_pct'])}",
        f"  Payment processing success: {_pct_text(h['payment_processing_success_pct'])}",
        f"  Webhook delivery: {_pct_text(h['webhook_delivery_pct'])}",
        "",
        "RECOMMENDATIONS:",
    ]
    if report["recommendations"]:
        lines += [
            f"  {i}. {r['text']} ({r['evidence']})"
            for i, r in enumerate(report["recommendations"], start=1)
        ]
    else:
        lines.append("  None: no rule was triggered by this month's figures.")
    return "\n".join(lines) + "\n"
