"""Refunds processed: count and total in the base currency, by reason and by approval path.

Every refund Billing Desk made, whoever asked: an agent, or a customer through a
self-service request (issue 18). A customer's request refunded within the workspace's
self-service limit has its own approval path, "Self-service"; one sent to agents is
counted by how it was decided, like an agent's request for approval.
"""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext, gettext_noop

from ...catalog import ActionKind
from ...models import BillingAction, Workspace
from ...vocabulary import REFUND_REASONS, Labels
from .shared import MonthRollups, action_groups, money, pct

REFUND_KINDS = (ActionKind.ISSUE_REFUND.value, ActionKind.REFUND_DUPLICATE_CHARGE.value)
# Codes → labels, read in the active language when looked up.
REFUND_REASON_LABELS: Labels = Labels({key: r.english for key, r in REFUND_REASONS.items()})
# (key, English label — read in the active language when the breakdown is built).
APPROVAL_PATHS: tuple[tuple[str, str], ...] = (
    ("auto", gettext_noop("Auto-approved (within agent limits)")),
    ("self_service", gettext_noop("Self-service (within the self-service limit)")),
    ("manager", gettext_noop("Manager-approved")),
    ("vp", gettext_noop("VP-approved")),
    ("other_approver", gettext_noop("Approved by another approver")),
    ("denied", gettext_noop("Denied")),
    ("expired", gettext_noop("Expired")),
    ("pending", gettext_noop("Pending")),
)


def refund_metrics(*, workspace: Workspace, rollups: MonthRollups) -> dict[str, Any]:
    """Refunds by reason and by approval path, from the month's action roll-ups (their key
    carries the reason and the path; ``services.rollups``)."""
    currency = workspace.base_currency
    reasons_by_key: dict[str, dict[str, Any]] = {}
    paths: dict[str, int] = {}
    for g in action_groups(rollups):
        if g["kind"] not in REFUND_KINDS:
            continue
        paths[g["path"]] = paths.get(g["path"], 0) + g["count"]
        if g["status"] != BillingAction.Status.SUCCEEDED:
            continue
        r = reasons_by_key.setdefault(
            g["reason"], {"reason_key": g["reason"], "count": 0, "amount": 0, "unconverted": 0}
        )
        r["count"] += g["count"]
        r["amount"] += g["amount"]
        r["unconverted"] += g["unconverted"]
    by_reason = list(reasons_by_key.values())
    count = sum(r["count"] for r in by_reason)
    total = sum(r["amount"] or 0 for r in by_reason)
    path_total = sum(paths.values())
    reasons = sorted(
        (
            {
                "key": r["reason_key"],
                "label": (
                    REFUND_REASON_LABELS[r["reason_key"]]
                    if r["reason_key"] in REFUND_REASON_LABELS
                    else r["reason_key"].replace("_", " ").capitalize()
                ),
                "count": r["count"],
                "amount": money(r["amount"], currency),
                "share_pct": pct(r["count"], count),
            }
            for r in by_reason
        ),
        key=lambda r: (r["key"] == "other", -r["count"], r["key"]),
    )
    shown = ("auto", "manager", "vp", "denied")
    breakdown = [
        {
            "key": key,
            "label": gettext(label),
            "count": paths.get(key, 0),
            "pct": pct(paths.get(key, 0), path_total),
        }
        for key, label in APPROVAL_PATHS
        if key in shown or paths.get(key)
    ]
    return {
        "count": count,
        "total": money(total, currency),
        "unconverted": sum(r["unconverted"] for r in by_reason),
        "by_reason": reasons,
        "by_approval_path": breakdown,
    }
