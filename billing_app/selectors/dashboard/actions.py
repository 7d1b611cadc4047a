"""Agent actions: count, success rate and handling time per action, approvals and their turnaround.

**Avg time** is the agent's handling time, in minutes, as the brief means it: from
``BillingAction.handling_started_at`` (when the agent opened the panel on the ticket, as
the server served it) to the moment the agent's part ended — ``completed_at`` for an
action that ran directly, the request's submission (``created_at``) for one that went
for approval (the hours an approver takes are "Average approval time", not the
agent's). Actions without a panel-open time (older panels, the API) or whose times are
out of order are left out of the average; each row says how many were measured.

The helpdesk gives no agent time we could use instead: Zendesk's ticket metric sets
(imported with the incremental export) carry resolution, reply and wait times, not the
agent's working time (that needs the Time Tracking app's custom fields), and Freshdesk
keeps time entries in a separate API we do not import. ``HelpdeskTicket`` therefore has
no agent-time field, and the panel's own timestamps are the source.

The system's execution time (``duration_ms``: request to provider answer) is kept as
``avg_execution_seconds`` — a system-health figure, shown in the health section; the
table's total of it counts every executed action, whoever asked.

Only agents' actions are in this table (``BillingAction.channel`` ``agent``): a refund a
customer's self-service request made (issue 18) is the system user's, not an agent's
work — it counts in the refund figures and the Self-service section instead. Approval
requests stay in "Average approval time" whoever asked: an approver decides them all.
"""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext, gettext_noop

from ...catalog import PolicyAction, Role
from ...models import ActionPolicy, BillingAction, Workspace
from ...money import exponent, short_money
from ...vocabulary import Labels
from .shared import (
    AGENT_CHANNEL,
    APPROVAL_FAMILY,
    MonthRollups,
    action_groups,
    pct,
    round_or_none,
)

# An action row's success rate against its target: below it the row is not "ok".
SUCCESS_RATE_TARGET_PCT = 95.0
SUCCESS_STATUS_LABELS: Labels = Labels(
    {
        "on_target": gettext_noop("on target"),
        "below_target": gettext_noop("below target"),
        "no_executions": gettext_noop("not run yet"),
    }
)


def success_status(rate_pct: float | None) -> str:
    """``on_target`` / ``below_target`` against ``SUCCESS_RATE_TARGET_PCT``; no rate → not run."""
    if rate_pct is None:
        return "no_executions"
    return "on_target" if rate_pct >= SUCCESS_RATE_TARGET_PCT else "below_target"


# The agent-actions table: (key, English label — read in the active language when the
# table is built); credit bands are labelled from the matrix.
ACTION_LABELS: tuple[tuple[str, str], ...] = (
    ("generate_payment_link", gettext_noop("Generate payment link")),
    ("resend_invoice", gettext_noop("Resend invoice")),
    ("apply_credit_small", gettext_noop("Apply credit (<{small})")),
    ("apply_credit_medium", gettext_noop("Apply credit ({small}–{large})")),
    ("apply_credit_large", gettext_noop("Apply credit (>{large})")),
    ("issue_refund", gettext_noop("Refund processed")),
    ("refund_duplicate_charge", gettext_noop("Duplicate charge refund")),
    ("plan_upgrade", gettext_noop("Plan upgrade")),
    ("plan_downgrade", gettext_noop("Plan downgrade")),
    ("change_plan", gettext_noop("Plan change")),
    ("extend_trial", gettext_noop("Extend trial")),
    ("update_payment_method", gettext_noop("Update payment method")),
    ("adjust_seats", gettext_noop("Adjust seat count")),
    ("apply_discount", gettext_noop("Apply discount")),
    ("pause_subscription", gettext_noop("Pause subscription")),
    ("resume_subscription", gettext_noop("Resume subscription")),
    ("cancel_subscription", gettext_noop("Cancel subscription")),
    ("undo_cancellation", gettext_noop("Keep subscription")),
    ("force_cancel", gettext_noop("Force cancellation")),
    ("extend_grace_period", gettext_noop("Extend grace period")),
    ("send_tax_invoice", gettext_noop("Send tax invoice")),
)


def credit_bands(workspace: Workspace) -> tuple[int, int]:
    """The credit limits of L2 and Manager in this workspace's matrix (the brief's bands)."""
    limits = dict(
        ActionPolicy.objects.filter(
            workspace=workspace,
            action=PolicyAction.APPLY_CREDIT,
            role__in=[Role.L2, Role.MANAGER],
            effect=ActionPolicy.Effect.ALLOW,
            limit__isnull=False,
        ).values_list("role", "limit")
    )
    scale = 10 ** exponent(workspace.base_currency)
    return int(limits.get(Role.L2, 100 * scale)), int(limits.get(Role.MANAGER, 500 * scale))


def action_metrics(*, workspace: Workspace, rollups: MonthRollups) -> dict[str, Any]:
    """The agent-actions table (agents' actions only) and the approval figures, from the
    month's roll-ups."""
    small, large = credit_bands(workspace)
    rows: dict[str, dict[str, Any]] = {}
    # The system's execution time is a health figure: every executed action, both channels.
    time_ms = executed_n = 0
    for g in action_groups(rollups):
        time_ms += g["time_ms"]
        executed_n += g["timed"]
        if g["channel"] != AGENT_CHANNEL:
            continue
        r = rows.setdefault(
            g["label"],
            dict.fromkeys(
                ("count", "succeeded", "failed", "time_ms", "timed", "handled", "handling_us"), 0
            )
            | {"needing_approval": 0},
        )
        r["count"] += g["count"]
        r["succeeded"] += g["count"] if g["status"] == BillingAction.Status.SUCCEEDED else 0
        r["failed"] += g["count"] if g["status"] == BillingAction.Status.FAILED else 0
        for name in ("time_ms", "timed", "handled", "handling_us"):
            r[name] += g[name]
        if g["decision"] == BillingAction.Decision.APPROVAL:
            r["needing_approval"] += g["count"]
    for r in rows.values():
        r["avg_ms"] = r["time_ms"] / r["timed"] if r["timed"] else None
    labels = {"small": short_money(small, workspace.base_currency)}
    labels["large"] = short_money(large, workspace.base_currency)
    table = []
    for key, label in ACTION_LABELS:
        found = rows.get(key)
        if found is None:
            continue
        r = found
        avg_ms = r["avg_ms"]
        rate = pct(r["succeeded"], r["succeeded"] + r["failed"])
        status = success_status(rate)
        handled_seconds = r["handling_us"] / 1_000_000
        table.append(
            {
                "key": key,
                "label": gettext(label).format(**labels),
                "count": r["count"],
                "succeeded": r["succeeded"],
                "failed": r["failed"],
                "success_rate_pct": rate,
                "success_status": status,
                "success_status_label": SUCCESS_STATUS_LABELS[status],
                "avg_handling_minutes": (
                    round_or_none(handled_seconds / r["handled"] / 60) if r["handled"] else None
                ),
                "handling_measured": r["handled"],
                "handling_seconds": round(handled_seconds, 1),
                "avg_execution_seconds": (
                    round_or_none(avg_ms / 1000, 2) if avg_ms is not None else None
                ),
                "time_ms": r["time_ms"] or 0,
                "timed": r["timed"],
                "requiring_approval": r["needing_approval"],
            }
        )
    table.sort(key=lambda r: -r["count"])
    total = sum(r["count"] for r in table)
    needing = sum(r["requiring_approval"] for r in table)
    decided = rollups.rows(APPROVAL_FAMILY).get("decided", {"count": 0, "m1": 0})
    avg_approval = decided["m1"] / decided["count"] / 1_000_000 if decided["count"] else None
    approvals = {"decided": decided["count"]}
    measured_n = sum(r["handling_measured"] for r in table)
    handling_total = sum(r["handling_seconds"] for r in table)
    return {
        "rows": table,
        "total": total,
        "requiring_approval": needing,
        "requiring_approval_pct": pct(needing, total),
        "approvals_decided": approvals["decided"],
        "avg_approval_seconds": round_or_none(avg_approval),
        "avg_approval_hours": round_or_none(avg_approval / 3600)
        if avg_approval is not None
        else None,
        "handling_measured": measured_n,
        "handling_seconds": round(handling_total, 1),
        "avg_handling_minutes": (
            round_or_none(handling_total / measured_n / 60) if measured_n else None
        ),
        "success_rate_target_pct": SUCCESS_RATE_TARGET_PCT,
        # System execution (request to provider answer): a health figure, not agent time —
        # every executed action's, a customer's self-service refund's too.
        "total_time_ms": time_ms,
        "avg_execution_seconds": round_or_none(time_ms / executed_n / 1000, 2)
        if executed_n
        else None,
    }
