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

from django.db import connection
from django.db.models import (
    Avg,
    Count,
    DurationField,
    Exists,
    ExpressionWrapper,
    F,
    OuterRef,
    Q,
)
from django.db.models.functions import TruncMonth

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
    # ``failed_at`` (never null) is counted, not ``id``: the month's failures are then
    # read from the covering ``failure_month_cover_idx`` alone.
    summary = failures.aggregate(
        count=Count("failed_at"),
        recovered=Count("failed_at", filter=recovered),
        by_agent=Count("failed_at", filter=by_agent),
        intervened=Count("failed_at", filter=intervened),
        avg_recovery=Avg(
            ExpressionWrapper(F("recovered_at") - F("failed_at"), DurationField()),
            filter=recovered,
        ),
    )
    reason_rows = {
        r["reason_category"]: r["count"]
        for r in failures.values("reason_category").annotate(count=Count("failed_at")).order_by()
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

    churn, amounts = _failure_mrr(workspace, month)

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
        "churned_accounts": churn,
        "churn_pct_of_failures": pct(churn, count),
        "churned_mrr": mrr("churned"),
        "revenue_at_risk_mrr": mrr("at_risk"),
        "recovered_mrr": mrr("retained"),
        "trend": failure_trend(workspace=workspace, month=month),
    }


def _failure_mrr_sql(workspace: Workspace, month: Month) -> tuple[str, list[Any]]:
    """The month's failed subscriptions (``f``: one row each — recovered at least once,
    and the first failure left unrecovered) and those of them that churned after a failure
    (``churned``: ended, in an ended status, on or after that first unrecovered failure —
    exactly when an unrecovered failure of the month precedes the end). Both start from
    the month's failures (the covering ``failure_month_cover_idx``) and reach the ended
    subscriptions through the small partial ``mirror_sub_ended_idx``: no scan of all
    mirrored subscriptions, and the churned set is computed once per query instead of
    once per filter that uses it (it was twice, each time per failed subscription)."""
    qn = connection.ops.quote_name
    failures = qn(PaymentFailure._meta.db_table)
    subscriptions = qn(MirrorSubscription._meta.db_table)
    ended = ", ".join(["%s"] * len(ENDED_STATUSES))  # the partial index's list
    adapt = connection.ops.adapt_datetimefield_value
    sql = (
        f"WITH f AS (SELECT subscription_id, "  # noqa: S608 - identifiers are ours, values bound
        f"MAX(CASE WHEN recovered_at IS NOT NULL THEN 1 ELSE 0 END) AS recovered, "
        f"MIN(CASE WHEN recovered_at IS NULL THEN failed_at END) AS first_unrecovered "
        f"FROM {failures} WHERE workspace_id = %s AND failed_at >= %s AND failed_at < %s "
        f"AND subscription_id <> '' GROUP BY subscription_id), "
        f"churned AS (SELECT s.stripe_id, s.customer_id FROM f JOIN {subscriptions} s "
        f"ON s.workspace_id = %s AND s.stripe_id = f.subscription_id "
        f"WHERE s.status IN ({ended}) AND COALESCE(s.ended_at, s.canceled_at) IS NOT NULL "
        f"AND f.first_unrecovered <= COALESCE(s.ended_at, s.canceled_at)) "
    )
    params = [
        workspace.pk,
        adapt(month.start),
        adapt(month.end),
        workspace.pk,
        *sorted(ENDED_STATUSES),
    ]
    return sql, params


def _failure_mrr(workspace: Workspace, month: Month) -> tuple[int, list[dict[str, Any]]]:
    """Churned accounts, and Σ unit amount × quantity per (currency, interval) group of the
    failed subscriptions' items — at risk, retained (recovered, not churned), churned — in
    integers; converted to a month and to the base currency in Python (Decimal)."""
    with_tables, params = _failure_mrr_sql(workspace, month)
    items = connection.ops.quote_name(MirrorSubscriptionItem._meta.db_table)
    gross = "COALESCE(i.unit_amount, 0) * i.quantity"
    columns = "currency, recurring_interval, recurring_interval_count, unit_amount, quantity"
    if connection.vendor == "postgresql":
        # One index probe per failed subscription (a fenced LATERAL: the planner would
        # otherwise hash every item of the workspace to join a few thousand).
        joined = (
            f"f CROSS JOIN LATERAL (SELECT {columns} FROM {items} "  # noqa: S608 - ours
            f"WHERE workspace_id = %s AND subscription_id = f.subscription_id OFFSET 0) i"
        )
    else:
        joined = (
            f"f JOIN {items} i ON i.workspace_id = %s AND i.subscription_id = f.subscription_id"
        )
    # One round trip: a first row (tag 0) with the churned accounts, then the groups.
    sql = (
        with_tables  # noqa: S608 - ours
        + "SELECT 0, NULL, NULL, NULL, COUNT(DISTINCT customer_id), NULL, NULL FROM churned "  # noqa: S608 - ours
        "UNION ALL "
        f"SELECT 1, i.currency, i.recurring_interval, i.recurring_interval_count, "
        f"SUM({gross}), "
        f"SUM(CASE WHEN f.recovered = 1 AND c.stripe_id IS NULL THEN {gross} END), "
        f"SUM(CASE WHEN c.stripe_id IS NOT NULL THEN {gross} END) "
        f"FROM {joined} "
        f"LEFT JOIN churned c ON c.stripe_id = f.subscription_id "
        f"GROUP BY i.currency, i.recurring_interval, i.recurring_interval_count"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [*params, workspace.pk])
        rows = cursor.fetchall()
    accounts = next((int(row[4] or 0) for row in rows if row[0] == 0), 0)
    names = ("currency", "recurring_interval", "recurring_interval_count")
    amounts = [
        {
            **dict(zip(names, row[1:4], strict=True)),
            **{
                k: None if v is None else int(v)
                for k, v in zip(("at_risk", "retained", "churned"), row[4:], strict=True)
            },
        }
        for row in rows
        if row[0] == 1
    ]
    return accounts, amounts


def failure_trend(*, workspace: Workspace, month: Month) -> list[dict[str, Any]]:
    first = month.shift(-(TREND_MONTHS - 1))
    rows = {
        Month.of(r["month"]): r
        for r in failures_between(workspace, first.start, month.end)
        .annotate(month=TruncMonth("failed_at"))
        .values("month")
        .annotate(
            failures=Count("failed_at"),
            recovered=Count("failed_at", filter=Q(recovered_at__isnull=False)),
        )
        .order_by()
    }
    trend = []
    for offset in range(TREND_MONTHS):
        m = first.shift(offset)
        r = rows.get(m, {"failures": 0, "recovered": 0})
        trend.append(
            {
                "month": m.key,
                "label": m.short_label,
                "failures": r["failures"],
                "recovered": r["recovered"],
                "recovery_rate_pct": pct(r["recovered"], r["failures"], 0),
            }
        )
    return trend
