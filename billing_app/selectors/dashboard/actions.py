"""Agent actions: count, success rate and time per action, approvals and their turnaround."""

from __future__ import annotations

from typing import Any

from django.db.models import (
    Avg,
    Case,
    CharField,
    Count,
    DurationField,
    ExpressionWrapper,
    F,
    Q,
    Sum,
    Value,
    When,
)

from ...catalog import ActionKind, PolicyAction, Role
from ...models import ActionPolicy, ApprovalRequest, BillingAction, Workspace
from ...money import exponent, short_money
from ..months import Month
from .shared import action_direction, month_actions, pct, round_or_none, seconds

# The agent-actions table: (key, label); credit bands are labelled from the matrix.
ACTION_LABELS: tuple[tuple[str, str], ...] = (
    ("generate_payment_link", "Generate payment link"),
    ("resend_invoice", "Resend invoice"),
    ("apply_credit_small", "Apply credit (<{small})"),
    ("apply_credit_medium", "Apply credit ({small}–{large})"),
    ("apply_credit_large", "Apply credit (>{large})"),
    ("issue_refund", "Refund processed"),
    ("refund_duplicate_charge", "Duplicate charge refund"),
    ("plan_upgrade", "Plan upgrade"),
    ("plan_downgrade", "Plan downgrade"),
    ("change_plan", "Plan change"),
    ("extend_trial", "Extend trial"),
    ("update_payment_method", "Update payment method"),
    ("adjust_seats", "Adjust seat count"),
    ("apply_discount", "Apply discount"),
    ("pause_subscription", "Pause subscription"),
    ("cancel_subscription", "Cancel subscription"),
    ("force_cancel", "Force cancellation"),
    ("extend_grace_period", "Extend grace period"),
    ("send_tax_invoice", "Send tax invoice"),
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


def action_metrics(*, workspace: Workspace, month: Month) -> dict[str, Any]:
    small, large = credit_bands(workspace)
    credit = ActionKind.APPLY_CREDIT
    label_key = Case(
        When(kind=credit, amount_base__lt=small, then=Value("apply_credit_small")),
        When(kind=credit, amount_base__lte=large, then=Value("apply_credit_medium")),
        When(kind=credit, amount_base__gt=large, then=Value("apply_credit_large")),
        When(kind=credit, then=Value("apply_credit_small")),
        When(kind=ActionKind.CHANGE_PLAN, direction="upgrade", then=Value("plan_upgrade")),
        When(kind=ActionKind.CHANGE_PLAN, direction="downgrade", then=Value("plan_downgrade")),
        default=F("kind"),
        output_field=CharField(),
    )
    executed = Q(status__in=[BillingAction.Status.SUCCEEDED, BillingAction.Status.FAILED])
    rows = {
        r["label_key"]: r
        for r in month_actions(workspace, month)
        .annotate(direction=action_direction())
        .annotate(label_key=label_key)
        .values("label_key")
        .annotate(
            count=Count("id"),
            succeeded=Count("id", filter=Q(status=BillingAction.Status.SUCCEEDED)),
            failed=Count("id", filter=Q(status=BillingAction.Status.FAILED)),
            avg_ms=Avg("duration_ms", filter=executed),
            time_ms=Sum("duration_ms", filter=executed),
            needing_approval=Count("id", filter=Q(decision=BillingAction.Decision.APPROVAL)),
        )
        .order_by()
    }
    labels = {"small": short_money(small, workspace.base_currency)}
    labels["large"] = short_money(large, workspace.base_currency)
    table = []
    for key, label in ACTION_LABELS:
        r = rows.get(key)
        if r is None:
            continue
        avg_ms = r["avg_ms"]
        table.append(
            {
                "key": key,
                "label": label.format(**labels),
                "count": r["count"],
                "succeeded": r["succeeded"],
                "failed": r["failed"],
                "success_rate_pct": pct(r["succeeded"], r["succeeded"] + r["failed"]),
                "avg_seconds": round_or_none(avg_ms / 1000, 2) if avg_ms is not None else None,
                "time_ms": r["time_ms"] or 0,
                "requiring_approval": r["needing_approval"],
            }
        )
    table.sort(key=lambda r: -r["count"])
    total = sum(r["count"] for r in table)
    needing = sum(r["requiring_approval"] for r in table)
    approvals = ApprovalRequest.objects.filter(
        workspace=workspace,
        created_at__gte=month.start,
        created_at__lt=month.end,
        decided_at__isnull=False,
    ).aggregate(
        decided=Count("id"),
        avg=Avg(ExpressionWrapper(F("decided_at") - F("created_at"), DurationField())),
    )
    avg_approval = seconds(approvals["avg"])
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
        "total_time_ms": sum(r["time_ms"] for r in table),
    }
