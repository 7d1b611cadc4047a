"""The monthly billing support report (the brief's MONTHLY REPORT), as data, CSV and text.

Built on the dashboard's figures (``selectors.dashboard``: same definitions,
same month rules) plus one more read of the month's daily roll-ups for the financial
impact:

* **Refunds processed** / **credits applied**: succeeded actions, amounts in
  the base currency (``BillingAction.amount_base``).
* **Plan upgrades / downgrades** in MRR: succeeded ``change_plan`` actions by
  ``result.direction``; the MRR delta is the one the action recorded when it ran
  (``result.mrr_delta``: signed minor units per month, in ``result.mrr_currency``,
  from the preview — a downgrade scheduled for period end with the real seat
  quantity), converted to the base currency with the workspace's rates. Never
  derived from today's prices. **Seat changes** (``adjust_seats``) and
  **discounts** (``apply_discount``) record theirs the same way and are shown in
  the data and CSV beside them. **Net billing impact** = upgrades + downgrades
  (one-off refunds and credits are shown, not netted into MRR).
* **Revenue retained from payment recovery** / **churn from payment failures**:
  the dashboard's payment-failure MRR figures.
* **System health**: uptime, API success rate (provider calls), payment
  processing success (mirrored charges succeeded / finished), webhook delivery.
* **Self-service** (issue 18): the dashboard's section (``dashboard.self_service``) —
  card-update prompts, self-service refund requests, the help widget — for the month
  and the month before, with the change.
"""

from __future__ import annotations

import csv
import io
from decimal import Decimal
from typing import Any

from ..catalog import ActionKind
from ..models import BillingAction, Workspace
from ..money import to_decimal
from .dashboard import (
    REFUND_KINDS,
    MonthRollups,
    action_groups,
    analytics_session,
    currency_rates,
    dashboard_build,
    money,
    plural,
    to_base_exact,
    whole_minor_units,
)
from .months import Month

# The actions whose executed result records an MRR change (``result.mrr_delta``).
MRR_KINDS = (ActionKind.CHANGE_PLAN, ActionKind.ADJUST_SEATS, ActionKind.APPLY_DISCOUNT)
# The report's MRR movements: (key, kind, direction or None for any).
MRR_MOVEMENTS: tuple[tuple[str, str, str | None], ...] = (
    ("upgrades", ActionKind.CHANGE_PLAN, "upgrade"),
    ("downgrades", ActionKind.CHANGE_PLAN, "downgrade"),
    ("seat_changes", ActionKind.ADJUST_SEATS, None),
    ("discounts", ActionKind.APPLY_DISCOUNT, None),
)


def _movement(kind: str, direction: str) -> str | None:
    for key, movement_kind, movement_direction in MRR_MOVEMENTS:
        if kind == movement_kind and movement_direction in (None, direction):
            return key
    return None


def financial_impact(
    *, workspace: Workspace, month: Month, rates: dict[str, Decimal]
) -> dict[str, Any]:
    """Refunds, credits and the MRR the month's succeeded actions recorded, from the month's
    action roll-ups (one query).

    The MRR of a plan change, seat change or discount is what the action recorded when
    it ran (``result.mrr_delta``, signed minor units per month in ``result.mrr_currency``;
    the base currency when no currency was recorded), converted to the base currency
    with the workspace's rates in Decimal and rounded once per figure. An action that
    recorded no delta counts, with no MRR (``unrecorded``); one in a currency without
    a rate likewise (``unconverted``).
    """
    base = workspace.base_currency.upper()
    wanted = {*REFUND_KINDS, ActionKind.APPLY_CREDIT, *MRR_KINDS}
    grouped: dict[tuple[str, str, str], dict[str, Any]] = {}
    for g in action_groups(MonthRollups.read(workspace, month)):
        if g["status"] != BillingAction.Status.SUCCEEDED or g["kind"] not in wanted:
            continue
        row = grouped.setdefault(
            (g["kind"], g["direction"], g["mrr_currency"]),
            {
                "kind": g["kind"],
                "direction": g["direction"],
                "mrr_currency": g["mrr_currency"],
                "count": 0,
                "amount": 0,
                "mrr": 0,
                "recorded": 0,
            },
        )
        row["count"] += g["count"]
        row["amount"] += g["amount"]
        row["mrr"] += g["mrr"]
        row["recorded"] += g["mrr_recorded"]
    rows = grouped.values()
    totals = {key: {"count": 0, "amount": 0} for key in ("refunds", "credits")}
    movements: dict[str, dict[str, Any]] = {
        key: {"count": 0, "mrr": Decimal(0), "unrecorded": 0, "unconverted": 0}
        for key, _, _ in MRR_MOVEMENTS
    }
    for row in rows:
        kind = row["kind"]
        if kind in REFUND_KINDS or kind == ActionKind.APPLY_CREDIT:
            total = totals["refunds" if kind in REFUND_KINDS else "credits"]
            total["count"] += row["count"]
            total["amount"] += row["amount"] or 0
            continue
        key = _movement(kind, row["direction"])
        if key is None:
            continue
        movement = movements[key]
        movement["count"] += row["count"]
        movement["unrecorded"] += row["count"] - row["recorded"]
        if row["recorded"]:
            mrr = to_base_exact(row["mrr"], row["mrr_currency"] or base, base=base, rates=rates)
            if mrr is None:
                movement["unconverted"] += row["recorded"]
            else:
                movement["mrr"] += mrr
    out: dict[str, Any] = {
        key: {"count": t["count"], "total": money(t["amount"], base)} for key, t in totals.items()
    }
    for key, m in movements.items():
        out[key] = {
            "count": m["count"],
            "mrr": money(whole_minor_units(m["mrr"]), base),
            "unrecorded": m["unrecorded"],
            "unconverted": m["unconverted"],
        }
    # Net billing impact: plan upgrades + downgrades (DESIGN.md section 7).
    out["net_mrr"] = money(
        out["upgrades"]["mrr"]["amount"] + out["downgrades"]["mrr"]["amount"], base
    )
    return out


def report_build(*, workspace: Workspace, month: Month) -> dict[str, Any]:
    """Every figure of the brief's MONTHLY BILLING SUPPORT REPORT, plus the dashboard behind it."""
    with analytics_session():
        dashboard = dashboard_build(workspace=workspace, month=month)
        financial = financial_impact(
            workspace=workspace, month=month, rates=currency_rates(workspace)
        )
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
        "recovered_after_agent_action": failures["recovered_after_agent_action"],
        "recovered_automatically": failures["recovered_automatically"],
        "agent_intervened": failures["agent_intervened"],
        "agent_intervention_recovery_pct": failures["agent_intervention_recovery_pct"],
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
            "escalated_pct": tickets["escalated_pct"],
            "still_open": tickets["still_open"],
            "still_open_pct": tickets["still_open_pct"],
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
        "self_service": dashboard["self_service"],
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


def _major(figure: dict[str, Any]) -> tuple[str, str]:
    """A money figure (``money_json``) as ``(amount in major units, currency)``, in Decimal:
    ``{"amount": 33000, "currency": "USD"}`` → ``("330.00", "USD")``; JPY has no decimals."""
    currency = str(figure["currency"])
    return str(to_decimal(int(figure["amount"]), currency)), currency


def report_rows(report: dict[str, Any]) -> list[tuple[str, ...]]:
    """The report flattened to (section, metric, value[, currency]) rows — the CSV layout.

    Money rows carry the amount in major units (``330.00``) and the currency code.
    """
    v, f, h = report["volume"], report["financial"], report["health"]
    d = report["dashboard"]
    rows: list[tuple[str, ...]] = [
        ("report", "workspace", report["workspace"]["slug"]),
        ("report", "month", report["month"]),
        ("report", "currency", report["workspace"]["base_currency"]),
        ("volume", "billing_tickets", str(v["billing_tickets"])),
        ("volume", "total_tickets", str(v["total_tickets"])),
        ("volume", "billing_share_pct", _num(v["billing_share_pct"])),
        ("volume", "resolved_without_escalation", str(v["resolved_without_escalation"])),
        ("volume", "resolved_without_escalation_pct", _num(v["resolved_without_escalation_pct"])),
        ("volume", "escalated", str(v["escalated"])),
        ("volume", "escalated_pct", _num(v.get("escalated_pct"))),
        ("volume", "still_open", str(v.get("still_open", ""))),
        ("volume", "still_open_pct", _num(v.get("still_open_pct"))),
        ("volume", "avg_resolution_minutes", _num(v["avg_resolution_minutes"])),
        ("volume", "csat", _num(v["csat"])),
        ("volume", "csat_responses", str(v["csat_responses"])),
        ("financial", "refunds_count", str(f["refunds"]["count"])),
        ("financial", "refunds_total", *_major(f["refunds"]["total"])),
        ("financial", "credits_count", str(f["credits"]["count"])),
        ("financial", "credits_total", *_major(f["credits"]["total"])),
        ("financial", "upgrades_count", str(f["upgrades"]["count"])),
        ("financial", "upgrades_mrr", *_major(f["upgrades"]["mrr"])),
        ("financial", "downgrades_count", str(f["downgrades"]["count"])),
        ("financial", "downgrades_mrr", *_major(f["downgrades"]["mrr"])),
        ("financial", "net_mrr", *_major(f["net_mrr"])),
        ("financial", "seat_changes_count", str(f["seat_changes"]["count"])),
        ("financial", "seat_changes_mrr", *_major(f["seat_changes"]["mrr"])),
        ("financial", "discounts_count", str(f["discounts"]["count"])),
        ("financial", "discounts_mrr", *_major(f["discounts"]["mrr"])),
        (
            "financial",
            "recovery_retained_mrr",
            *_major(f["payment_recovery"]["retained_mrr"]),
        ),
        ("financial", "recovery_rate_pct", _num(f["payment_recovery"]["recovery_rate_pct"])),
        ("financial", "failure_churn_mrr", *_major(f["failure_churn"]["mrr"])),
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
            ("actions", f"{key}.success_status", a.get("success_status", "")),
            ("actions", f"{key}.avg_handling_minutes", _num(a.get("avg_handling_minutes"))),
            ("actions", f"{key}.handling_measured", str(a.get("handling_measured", ""))),
            ("actions", f"{key}.avg_execution_seconds", _num(a.get("avg_execution_seconds"))),
        ]
    actions = d["actions"]
    rows += [
        ("actions", "total", str(actions["total"])),
        ("actions", "requiring_approval", str(actions["requiring_approval"])),
        ("actions", "requiring_approval_pct", _num(actions["requiring_approval_pct"])),
        ("actions", "avg_approval_hours", _num(actions["avg_approval_hours"])),
        ("actions", "avg_handling_minutes", _num(actions.get("avg_handling_minutes"))),
        ("actions", "handling_measured", str(actions.get("handling_measured", ""))),
    ]
    for r in d["refunds"]["by_reason"]:
        rows += [
            ("refund_reasons", f"{r['key']}.count", str(r["count"])),
            ("refund_reasons", f"{r['key']}.amount", *_major(r["amount"])),
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
        ("payment_failures", "recovered_automatically", str(pf.get("recovered_automatically", ""))),
        ("payment_failures", "agent_intervened", str(pf.get("agent_intervened", ""))),
        (
            "payment_failures",
            "agent_intervention_recovery_pct",
            _num(pf.get("agent_intervention_recovery_pct")),
        ),
        ("payment_failures", "avg_recovery_days", _num(pf["avg_recovery_days"])),
        ("payment_failures", "revenue_at_risk_mrr", *_major(pf["revenue_at_risk_mrr"])),
    ]
    for r in pf["reasons"]:
        rows.append(("payment_failure_reasons", f"{r['key']}.count", str(r["count"])))
    for r in d["health"]["response_times"]:
        rows.append(("response_times", f"{r['key']}.avg_ms", _num(r["avg_ms"])))
    rows += _self_service_rows(report.get("self_service"))
    for i, r in enumerate(report["recommendations"], start=1):
        rows.append(("recommendations", f"{i}.{r['rule']}", f"{r['text']} ({r['evidence']})"))
    return rows


# --- the self-service section ------------------------------------------------------------------

# The self-service section's parts, as the CSV names them.
SELF_SERVICE_PARTS = ("card_prompts", "refund_requests", "widget")


def _figure(value: Any) -> tuple[str, ...]:
    """One figure's CSV value: money in major units with its currency, else the number."""
    return _major(value) if isinstance(value, dict) else (_num(value),)


def _self_service_rows(section: dict[str, Any] | None) -> list[tuple[str, ...]]:
    """``self_service.<part>`` rows: each figure of the month, ``<figure>.previous`` (the
    month before) and ``<figure>.change``; the widget's questions as
    ``self_service.widget_questions``. Reports stored before issue 18 have none."""
    if not section:
        return []
    rows: list[tuple[str, ...]] = [("self_service", "previous_month", section["previous_month"])]
    for part_key in SELF_SERVICE_PARTS:
        part, name = section[part_key], f"self_service.{part_key}"
        for key, value in part["current"].items():
            rows.append((name, key, *_figure(value)))
            rows.append((name, f"{key}.previous", *_figure(part["previous"][key])))
            if key in part["change"]:
                rows.append((name, f"{key}.change", *_figure(part["change"][key])))
    initiated = section["refund_requests"]["agent_initiated"]
    rows += [
        (
            "self_service.refund_requests",
            "agent_initiated_refund_handling_minutes",
            _num(initiated["avg_handling_minutes"]),
        ),
        (
            "self_service.refund_requests",
            "agent_initiated_refund_handling_measured",
            str(initiated["handling_measured"]),
        ),
    ]
    for q in section["widget"]["by_question"]:
        rows += [
            ("self_service.widget_questions", f"{q['key']}.answered", str(q["current"])),
            ("self_service.widget_questions", f"{q['key']}.answered.previous", str(q["previous"])),
            ("self_service.widget_questions", f"{q['key']}.answered.change", str(q["change"])),
        ]
    return rows


def _self_service_lines(section: dict[str, Any] | None) -> list[str]:
    """The section in the text report: each figure, the month before and the change."""
    if not section:
        return []
    lines = ["", f"SELF-SERVICE (compared with {section['previous_month_label']}):"]
    titles = {
        "card_prompts": "Card-update prompts",
        "refund_requests": "Self-service refund requests",
        "widget": "Billing help widget",
    }
    for part_key in SELF_SERVICE_PARTS:
        lines.append(f"  {titles[part_key]}:")
        lines += [
            f"    {r['label']}: {r['current_text']} "
            f"(before: {r['previous_text']}; change {r['change_text']})"
            for r in section[part_key]["rows"]
        ]
        if part_key == "refund_requests":
            initiated = section[part_key]["agent_initiated"]
            minutes = initiated["avg_handling_minutes"]
            lines.append(
                "    Agent-initiated refunds, handling time this month: "
                f"{'n/a' if minutes is None else f'{minutes} min'} "
                f"({initiated['handling_measured']} timed)"
            )
    return lines


def report_csv(report: dict[str, Any]) -> str:
    """``section,metric,value,currency`` rows; money in major units (``330.00``) with its
    currency code, every other row with an empty currency."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["section", "metric", "value", "currency"])
    writer.writerows(row if len(row) == 4 else (*row, "") for row in report_rows(report))
    return buffer.getvalue()


def _pct_text(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f}%"


def _agent_recovery_lines(recovery: dict[str, Any]) -> list[str]:
    """The recovery after agent intervention, beside the headline (reports stored before
    the figure existed have none)."""
    if "agent_intervened" not in recovery:
        return []
    return [
        f"  Recovered after agent intervention: {recovery['recovered_after_agent_action']} of "
        f"{plural(recovery['agent_intervened'], 'failure')} an agent acted on "
        f"({_pct_text(recovery['agent_intervention_recovery_pct'])}); "
        f"{recovery['recovered_automatically']} recovered by automatic retries",
    ]


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
        *(
            [
                f"  Escalated: {v['escalated']} ({_pct_text(v.get('escalated_pct'))})",
                f"  Still open: {v['still_open']} ({_pct_text(v.get('still_open_pct'))})",
            ]
            if "still_open" in v
            else []
        ),
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
        *_agent_recovery_lines(f["payment_recovery"]),
        f"  Churn from payment failures: {f['failure_churn']['mrr']['display']} MRR "
        f"({plural(f['failure_churn']['accounts'], 'account')}, "
        f"{_pct_text(f['failure_churn']['pct_of_failures'])} of failures)",
        "",
        "BILLING SYSTEM HEALTH:",
        f"  Uptime: {_pct_text(h['uptime_pct'])}",
        f"  API success rate: {_pct_text(h['api_success_rate_pct'])}",
        f"  Payment processing success: {_pct_text(h['payment_processing_success_pct'])}",
        f"  Webhook delivery: {_pct_text(h['webhook_delivery_pct'])}",
        *_self_service_lines(report.get("self_service")),
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
