"""Payment failures: count, recovery, reasons, churn, MRR at risk / retained / churned, trend."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.db.models import (
    Avg,
    BigIntegerField,
    Count,
    DurationField,
    Exists,
    ExpressionWrapper,
    F,
    OuterRef,
    Q,
    Sum,
    Value,
)
from django.db.models.functions import Coalesce, TruncMonth

from ...models import MirrorSubscription, MirrorSubscriptionItem, PaymentFailure, Workspace
from ...subscriptions import ENDED_STATUSES
from ...vocabulary import DECLINE_CODES, FAILURE_CATEGORIES, OTHER_CATEGORY
from ..months import Month
from .shared import failures_between, money, monthly_in_base, pct, round_or_none, seconds

TREND_MONTHS = 6
# The failure-reason categories and the Stripe codes in each (the vocabulary's tables),
# as ``(category, label, codes)``: kept importable for callers of the old dashboard table.
FAILURE_REASONS: tuple[tuple[str, str, tuple[str, ...]], ...] = tuple(
    (key, label, tuple(code for code, d in DECLINE_CODES.items() if d.category == key))
    for key, label in FAILURE_CATEGORIES.items()
    if key != OTHER_CATEGORY
)


def payment_failure_metrics(
    *, workspace: Workspace, month: Month, rates: dict[str, Decimal]
) -> dict[str, Any]:
    currency = workspace.base_currency
    failures = failures_between(workspace, month.start, month.end)
    recovered = Q(recovered_at__isnull=False)
    summary = failures.aggregate(
        count=Count("id"),
        recovered=Count("id", filter=recovered),
        by_agent=Count(
            "id", filter=recovered & Q(recovered_by=PaymentFailure.RecoveredBy.AGENT_ACTION)
        ),
        avg_recovery=Avg(
            ExpressionWrapper(F("recovered_at") - F("failed_at"), DurationField()),
            filter=recovered,
        ),
    )
    reason_rows = {
        r["reason_category"]: r["count"]
        for r in failures.values("reason_category").annotate(count=Count("id")).order_by()
    }
    count = summary["count"]
    reason_rows[OTHER_CATEGORY] = reason_rows.get(OTHER_CATEGORY, 0) + sum(
        n for key, n in reason_rows.items() if key not in FAILURE_CATEGORIES
    )
    reasons = [
        {"key": key, "label": label, "count": reason_rows[key], "pct": pct(reason_rows[key], count)}
        for key, label in FAILURE_CATEGORIES.items()
        if reason_rows.get(key)
    ]
    reasons.sort(key=lambda r: (r["key"] == OTHER_CATEGORY, -r["count"]))

    with_subscription = failures.exclude(subscription_id="")
    failed_subs = with_subscription.values("subscription_id")
    recovered_subs = with_subscription.filter(recovered).values("subscription_id")
    ended_after_failure = failures.filter(
        recovered_at__isnull=True,
        subscription_id=OuterRef("stripe_id"),
        failed_at__lte=OuterRef("ended"),
    )
    churned = (
        MirrorSubscription.objects.filter(workspace=workspace, stripe_id__in=failed_subs)
        .annotate(ended=Coalesce("ended_at", "canceled_at"))
        .filter(ended__isnull=False, status__in=ENDED_STATUSES)
        .filter(Exists(ended_after_failure))
    )
    churned_ids = churned.values("stripe_id")
    churn = churned.aggregate(accounts=Count("customer_id", distinct=True))
    # Σ unit amount × quantity per (currency, interval) group, in integers; converted to
    # a month and to the base currency in Python (Decimal), rounded once per figure.
    amounts = list(
        MirrorSubscriptionItem.objects.filter(workspace=workspace, subscription_id__in=failed_subs)
        .annotate(
            gross=ExpressionWrapper(
                Coalesce(F("unit_amount"), Value(0)) * F("quantity"), BigIntegerField()
            )
        )
        .values("currency", "recurring_interval", "recurring_interval_count")
        .annotate(
            at_risk=Sum("gross"),
            retained=Sum(
                "gross",
                filter=Q(subscription_id__in=recovered_subs) & ~Q(subscription_id__in=churned_ids),
            ),
            churned=Sum("gross", filter=Q(subscription_id__in=churned_ids)),
        )
        .order_by()
    )

    def mrr(total: str) -> dict[str, Any]:
        return money(monthly_in_base(amounts, total, base=currency, rates=rates), currency)

    avg_recovery = seconds(summary["avg_recovery"])
    return {
        "count": count,
        "recovered": summary["recovered"],
        "recovery_rate_pct": pct(summary["recovered"], count, 0),
        "recovered_after_agent_action": summary["by_agent"],
        "agent_recovery_pct": pct(summary["by_agent"], summary["recovered"], 0),
        "avg_recovery_seconds": round_or_none(avg_recovery),
        "avg_recovery_days": round_or_none(avg_recovery / 86400)
        if avg_recovery is not None
        else None,
        "reasons": reasons,
        "churned_accounts": churn["accounts"],
        "churn_pct_of_failures": pct(churn["accounts"], count),
        "churned_mrr": mrr("churned"),
        "revenue_at_risk_mrr": mrr("at_risk"),
        "recovered_mrr": mrr("retained"),
        "trend": failure_trend(workspace=workspace, month=month),
    }


def failure_trend(*, workspace: Workspace, month: Month) -> list[dict[str, Any]]:
    first = month.shift(-(TREND_MONTHS - 1))
    rows = {
        Month.of(r["month"]): r
        for r in failures_between(workspace, first.start, month.end)
        .annotate(month=TruncMonth("failed_at"))
        .values("month")
        .annotate(failures=Count("id"), recovered=Count("id", filter=Q(recovered_at__isnull=False)))
        .order_by()
    }
    trend = []
    for offset in range(TREND_MONTHS):
        m = first.shift(offset)
        r = rows.get(m, {"failures": 0, "recovered": 0})
        trend.append(
            {
                "month": m.key,
                "label": m.start.strftime("%b %Y"),
                "failures": r["failures"],
                "recovered": r["recovered"],
                "recovery_rate_pct": pct(r["recovered"], r["failures"], 0),
            }
        )
    return trend
