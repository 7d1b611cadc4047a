"""Refunds processed: count and total in the base currency, by reason and by approval path."""

from __future__ import annotations

from typing import Any

from django.db.models import Case, CharField, Count, Q, Sum, Value, When
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Coalesce, NullIf

from ...catalog import ActionKind, Role
from ...models import BillingAction, Workspace
from ...vocabulary import REFUND_REASONS
from ..months import Month
from .shared import money, month_actions, pct

REFUND_KINDS = (ActionKind.ISSUE_REFUND.value, ActionKind.REFUND_DUPLICATE_CHARGE.value)
REFUND_REASON_LABELS: dict[str, str] = {key: r.label for key, r in REFUND_REASONS.items()}
APPROVAL_PATHS: tuple[tuple[str, str], ...] = (
    ("auto", "Auto-approved (within agent limits)"),
    ("manager", "Manager-approved"),
    ("vp", "VP-approved"),
    ("other_approver", "Approved by another approver"),
    ("denied", "Denied"),
    ("expired", "Expired"),
    ("pending", "Pending"),
)


def refund_metrics(*, workspace: Workspace, month: Month) -> dict[str, Any]:
    currency = workspace.base_currency
    refunds = month_actions(workspace, month).filter(kind__in=REFUND_KINDS)
    reason_key = Case(
        When(kind=ActionKind.REFUND_DUPLICATE_CHARGE, then=Value("duplicate")),
        default=Coalesce(
            NullIf(KeyTextTransform("reason", "params"), Value("")),
            Value("other"),
            output_field=CharField(),
        ),
        output_field=CharField(),
    )
    by_reason = list(
        refunds.filter(status=BillingAction.Status.SUCCEEDED)
        .annotate(reason_key=reason_key)
        .values("reason_key")
        .annotate(
            count=Count("id"),
            amount=Sum("amount_base"),
            unconverted=Count("id", filter=Q(amount_base__isnull=True)),
        )
        .order_by()
    )
    path = Case(
        When(decision=BillingAction.Decision.ALLOW, then=Value("auto")),
        When(
            approval__status="approved", approval__decided_role=Role.MANAGER, then=Value("manager")
        ),
        When(approval__status="approved", approval__decided_role=Role.VP, then=Value("vp")),
        When(approval__status="approved", then=Value("other_approver")),
        When(approval__status="denied", then=Value("denied")),
        When(status=BillingAction.Status.DENIED, then=Value("denied")),
        When(approval__status="expired", then=Value("expired")),
        When(status=BillingAction.Status.EXPIRED, then=Value("expired")),
        default=Value("pending"),
        output_field=CharField(),
    )
    paths = {
        r["path"]: r["count"]
        for r in refunds.annotate(path=path).values("path").annotate(count=Count("id")).order_by()
    }
    count = sum(r["count"] for r in by_reason)
    total = sum(r["amount"] or 0 for r in by_reason)
    path_total = sum(paths.values())
    reasons = sorted(
        (
            {
                "key": r["reason_key"],
                "label": REFUND_REASON_LABELS.get(
                    r["reason_key"], r["reason_key"].replace("_", " ").capitalize()
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
            "label": label,
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
