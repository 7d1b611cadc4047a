"""Payment failures: count, recovery, reasons, churn, MRR at risk / retained / churned, trend.

Recovery is split two ways, so that the parts add up to the headline:

* **recovered after agent intervention** — the failure's payment followed an agent's
  recovery action on that customer (payment link, payment-method update link, grace
  period, invoice resent: ``RECOVERY_ACTION_KINDS``; ``PaymentFailure.recovered_by`` =
  ``agent_action``, set by ``services.payment_failures`` when the payment arrives);
* **recovered automatically** — by Stripe's retries or the customer on their own.

recovered = after agent + automatically; recovery rate = recovered / failures, and the
two shares (of all failures) sum to it. The brief's "Recovery rate (after agent
intervention)" is its own figure: of the failures an agent acted on (a recovery action
on the customer completed after the failure was recorded, or a recovery credited to
one), the share that recovered after that action.
"""

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

from ...catalog import ActionKind
from ...models import (
    BillingAction,
    MirrorSubscription,
    MirrorSubscriptionItem,
    PaymentFailure,
    Workspace,
)
from ...subscriptions import ENDED_STATUSES
from ...vocabulary import DECLINE_CODES, FAILURE_CATEGORIES, OTHER_CATEGORY
from ..months import Month
from .shared import failures_between, money, monthly_in_base, pct, round_or_none, seconds

TREND_MONTHS = 6
# The agent actions that count as an intervention on a failed payment (the same kinds
# ``services.payment_failures.recovery`` credits a recovery to; a test keeps them equal).
RECOVERY_ACTION_KINDS: tuple[str, ...] = (
    ActionKind.GENERATE_PAYMENT_LINK.value,
    ActionKind.UPDATE_PAYMENT_METHOD.value,
    ActionKind.EXTEND_GRACE_PERIOD.value,
    ActionKind.RESEND_INVOICE.value,
)
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
    by_agent = recovered & Q(recovered_by=PaymentFailure.RecoveredBy.AGENT_ACTION)
    agent_acted = BillingAction.objects.filter(
        workspace=workspace,
        customer_id=OuterRef("customer_id"),
        kind__in=RECOVERY_ACTION_KINDS,
        status=BillingAction.Status.SUCCEEDED,
        completed_at__gte=OuterRef("created_at"),
    )
    intervened = by_agent | Q(Exists(agent_acted))
    summary = failures.aggregate(
        count=Count("id"),
        recovered=Count("id", filter=recovered),
        by_agent=Count("id", filter=by_agent),
        intervened=Count("id", filter=intervened),
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
    rate = pct(summary["recovered"], count, 0)
    agent_share = pct(summary["by_agent"], count, 0)
    return {
        "count": count,
        "recovered": summary["recovered"],
        "recovery_rate_pct": rate,
        # The headline's two parts (shares of all failures; they sum to the headline).
        "recovered_after_agent_action": summary["by_agent"],
        "recovered_after_agent_action_pct": agent_share,
        "recovered_automatically": summary["recovered"] - summary["by_agent"],
        "recovered_automatically_pct": None if rate is None else rate - (agent_share or 0),
        # Of the recoveries, the share that followed an agent's action.
        "agent_recovery_pct": pct(summary["by_agent"], summary["recovered"], 0),
        # The brief's "Recovery rate (after agent intervention)".
        "agent_intervened": summary["intervened"],
        "agent_intervention_recovery_pct": pct(summary["by_agent"], summary["intervened"], 0),
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
