"""The billing support dashboard for one workspace and one month (DESIGN.md section 7).

Every figure is an aggregate computed by the database (``aggregate`` /
``values().annotate()`` with filtered ``Count``/``Avg``/``Sum``); Python only
formats the few grouped rows that come back. The number of queries is fixed
(16 for the dashboard) whatever the amount of data. Months are calendar months in UTC;
a record belongs to the month of its creation time (tickets: the helpdesk's
``created_at``; actions, approvals, provider calls: ours; charges: Stripe's).

Definitions (what each figure means):

* **Billing ticket**: a synced helpdesk ticket that a ``TicketCategoryRule``
  put in a billing category.
* **Escalated**: the helpdesk marked the ticket escalated, or an action on the
  ticket needed approval (the permission matrix's ⬆ — DESIGN.md section 3).
* **Resolved without escalation**: solved/closed and not escalated.
* **Resolution time**: from the helpdesk (Zendesk's full-resolution metric,
  else solved − created), averaged over resolved billing tickets.
* **Auto-resolved** (per category): resolved without escalation, and the ticket
  has a succeeded action of that category's kind (``CATEGORY_ACTION_KINDS``)
  taken directly — no approval. ``other_billing`` accepts any kind.
* **Agent actions**: every ``BillingAction`` except those refused as not
  permitted; success rate = succeeded / (succeeded + failed); average time =
  ``duration_ms`` of executed actions; "requiring approval" = decision
  ``approval``; approval time = ``ApprovalRequest`` created → decided.
* **Refunds processed**: succeeded refund actions (``issue_refund``,
  ``refund_duplicate_charge``), amounts in the base currency; the approval
  path breakdown covers every refund request that was not refused outright.
* **Payment failures**: ``PaymentFailure`` rows (one per failed attempt, kept by
  ``services.payment_failures`` from webhooks, the sandbox and the mirror
  backfill) whose ``failed_at`` is in the month; *recovered* when it has a
  ``recovered_at`` (a later payment settled it), *after agent action* when that
  payment followed an agent's action; recovery time = failed → recovered;
  *churned* accounts: customers whose subscription ended after an unrecovered
  failure; *revenue at risk*: the MRR of every subscription with a failure in
  the month; *retained*: the MRR of those that recovered and did not end;
  *churned MRR*: of those that ended. MRR = Σ item unit amount × quantity
  normalised to a month, converted to the base currency with the workspace's
  ``CurrencyRate``s. Payment processing success = mirrored charges succeeded /
  (succeeded + failed).
* **System health**: ``ProviderCall`` rows (``InstrumentedProvider``):
  availability = calls not ``unavailable`` / calls (the uptime figure);
  API success rate = ``ok`` / calls; a component is Operational at ≥ 99.5 %
  availability, Degraded at ≥ 95 %, else Outage, and "No data" without calls.
  Webhook delivery = Stripe events processed or ignored / events finished.
  The provider's status *now* (shown with any month) uses its last 100 calls.
* **Recommendations**: ``recommendations_derive`` below; each rule and its
  threshold is in ``RECOMMENDATION_RULES``.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from decimal import Decimal
from typing import Any

from django.db import connection, transaction
from django.db.models import (
    Avg,
    Case,
    CharField,
    Count,
    DurationField,
    Exists,
    ExpressionWrapper,
    F,
    FloatField,
    Min,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
    Value,
    When,
)
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Coalesce, NullIf, TruncMonth
from django.utils import timezone

from ..catalog import ActionKind, PolicyAction, Role
from ..models import (
    ActionPolicy,
    ApprovalRequest,
    BillingAction,
    CurrencyRate,
    HelpdeskTicket,
    MirrorCharge,
    MirrorSubscription,
    MirrorSubscriptionItem,
    PaymentFailure,
    ProviderCall,
    StripeEvent,
    TicketCategory,
    Workspace,
)
from ..money import exponent, format_money
from .months import Month

RESOLUTION_TARGET_SECONDS = 300  # the brief: "target: <5 minutes"
RESOLVED_STATUSES = ("solved", "closed", "resolved")
TREND_MONTHS = 6

# Which action kinds resolve a ticket of each category (for "auto-resolved").
CATEGORY_ACTION_KINDS: dict[str, tuple[str, ...] | None] = {
    TicketCategory.PAYMENT_FAILED: (
        ActionKind.GENERATE_PAYMENT_LINK,
        ActionKind.EXTEND_GRACE_PERIOD,
        ActionKind.UPDATE_PAYMENT_METHOD,
    ),
    TicketCategory.INVOICE_DISCREPANCY: (
        ActionKind.RESEND_INVOICE,
        ActionKind.APPLY_CREDIT,
        ActionKind.SEND_TAX_INVOICE,
    ),
    TicketCategory.PLAN_CHANGE_REQUEST: (
        ActionKind.CHANGE_PLAN,
        ActionKind.ADJUST_SEATS,
        ActionKind.EXTEND_TRIAL,
        ActionKind.PAUSE_SUBSCRIPTION,
        ActionKind.CANCEL_SUBSCRIPTION,
        ActionKind.APPLY_DISCOUNT,
    ),
    TicketCategory.REFUND_REQUEST: (ActionKind.ISSUE_REFUND, ActionKind.REFUND_DUPLICATE_CHARGE),
    TicketCategory.OVERCHARGE_DISPUTE: (ActionKind.APPLY_CREDIT, ActionKind.ISSUE_REFUND),
    TicketCategory.DUPLICATE_CHARGE: (
        ActionKind.REFUND_DUPLICATE_CHARGE,
        ActionKind.ISSUE_REFUND,
    ),
    TicketCategory.PAYMENT_METHOD_UPDATE: (
        ActionKind.UPDATE_PAYMENT_METHOD,
        ActionKind.GENERATE_PAYMENT_LINK,
    ),
    TicketCategory.TAX_QUESTION: (ActionKind.SEND_TAX_INVOICE, ActionKind.RESEND_INVOICE),
    TicketCategory.OTHER_BILLING: None,  # any kind
}

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
REFUND_KINDS = (ActionKind.ISSUE_REFUND.value, ActionKind.REFUND_DUPLICATE_CHARGE.value)
REFUND_REASON_LABELS: dict[str, str] = {
    "service_outage": "Service outage credit",
    "billing_error": "Billing error",
    "dissatisfaction": "Customer dissatisfaction",
    "duplicate": "Duplicate charge",
    "requested_by_customer": "Requested by customer",
    "fraudulent": "Fraudulent",
    "other": "Other",
}
APPROVAL_PATHS: tuple[tuple[str, str], ...] = (
    ("auto", "Auto-approved (within agent limits)"),
    ("manager", "Manager-approved"),
    ("vp", "VP-approved"),
    ("other_approver", "Approved by another approver"),
    ("denied", "Denied"),
    ("expired", "Expired"),
    ("pending", "Pending"),
)
# Stripe decline / failure codes → the brief's failure reasons.
FAILURE_REASONS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("card_expired", "Card expired", ("expired_card",)),
    ("insufficient_funds", "Insufficient funds", ("insufficient_funds",)),
    (
        "card_declined",
        "Card declined (bank)",
        (
            "card_declined",
            "generic_decline",
            "do_not_honor",
            "call_issuer",
            "transaction_not_allowed",
            "pickup_card",
            "lost_card",
            "stolen_card",
            "restricted_card",
            "fraudulent",
            "card_velocity_exceeded",
            "withdrawal_count_limit_exceeded",
            "not_permitted",
            "revocation_of_authorization",
        ),
    ),
    (
        "card_not_recognized",
        "Card not recognized",
        (
            "incorrect_number",
            "invalid_number",
            "card_not_supported",
            "invalid_account",
            "incorrect_cvc",
            "invalid_cvc",
            "invalid_expiry_month",
            "invalid_expiry_year",
            "incorrect_zip",
            "currency_not_supported",
        ),
    ),
)
# Response-time targets (the brief's "System response times").
RESPONSE_TARGETS: tuple[tuple[str, str, str, int], ...] = (
    ("billing_data_retrieval", "Billing data retrieval", "fetch_customer_bundle", 500),
    ("payment_link_generation", "Payment link generation", "create_payment_link", 500),
    ("refund_processing", "Refund processing", "refund", 3000),
)
# Health components: which provider operations each one stands for (None = all).
HEALTH_COMPONENTS: tuple[tuple[str, str, tuple[str, ...] | None], ...] = (
    ("provider_api", "{provider} API connection", None),
    (
        "invoice_generation",
        "Invoice generation",
        ("resend_invoice", "preview_plan_change", "change_plan", "update_tax_details"),
    ),
    (
        "payment_processing",
        "Payment processing",
        (
            "create_payment_link",
            "payment_method_update_link",
            "apply_credit",
            "extend_grace_period",
        ),
    ),
    ("refund_processing", "Refund processing", ("refund",)),
)
OPERATIONAL_AT = 99.5
RECENT_CALLS = 100
DEGRADED_AT = 95.0

# Each recommendation rule: its threshold and what it says. Documented in docs/dashboard.md.
RECOMMENDATION_RULES: dict[str, dict[str, Any]] = {
    "payment_failure_churn": {
        "when": "accounts churned after payment failures ≥ 3% of payment failures",
        "threshold_pct": 3.0,
        "text": "Reduce payment failure churn: add an automated card update prompt",
    },
    "self_service_refunds": {
        "when": "refunds take ≥ 20% of agent action time, or refund requests are ≥ 10% of billing tickets",
        "time_share_pct": 20.0,
        "ticket_share_pct": 10.0,
        "text": "Create a self-service refund request flow",
    },
    "billing_faq": {
        "when": "a category holds ≥ 10% of billing tickets and < 50% of them are auto-resolved",
        "share_pct": 10.0,
        "auto_resolved_below_pct": 50.0,
        "text": "Add a billing FAQ in-app widget to deflect common billing questions",
    },
    "invoice_preview": {
        "when": "overcharge disputes are ≥ 5% of billing tickets",
        "share_pct": 5.0,
        "text": "Implement invoice preview before plan changes",
    },
    "resolution_time": {
        "when": "average resolution time is above the 5-minute target",
        "text": "Bring billing resolution time back under target",
    },
    "slow_operation": {
        "when": "an operation's average response time is above its target",
        "text": "Speed up slow billing operations",
    },
    "webhook_delivery": {
        "when": "webhook delivery success < 99%",
        "threshold_pct": 99.0,
        "text": "Investigate failing Stripe webhook deliveries",
    },
    "approval_time": {
        "when": "average approval time > 4 hours",
        "threshold_hours": 4.0,
        "text": "Shorten approval turnaround: add approvers or raise agent limits",
    },
}


# --- small helpers -----------------------------------------------------------------------------


def pct(part: float | int | None, whole: float | int | None, digits: int = 1) -> float | None:
    """``part / whole`` in percent, or None when there is nothing to divide by."""
    if not whole or part is None:
        return None
    return round(100.0 * float(part) / float(whole), digits)


def _round(value: float | Decimal | None, digits: int = 1) -> float | None:
    return None if value is None else round(float(value), digits)


def _seconds(value: timedelta | float | None) -> float | None:
    if value is None:
        return None
    if isinstance(value, timedelta):
        return value.total_seconds()
    return float(value) / 1_000_000  # SQLite may hand back microseconds


def plural(count: int, word: str) -> str:
    """``1 account``, ``2 accounts``."""
    return f"{count} {word}{'' if count == 1 else 's'}"


def money(amount: int | float | Decimal | None, currency: str) -> dict[str, Any]:
    value = round(amount or 0)
    return {"amount": value, "currency": currency, "display": format_money(value, currency)}


def short_money(amount: int, currency: str) -> str:
    """``10000, USD`` → ``$100`` (no cents when they are zero)."""
    text = format_money(amount, currency)
    exp = exponent(currency)
    if exp and amount % (10**exp) == 0:
        text = text.replace("." + "0" * exp, "")
    return text


def _status(availability: float | None) -> str:
    if availability is None:
        return "no_data"
    if availability >= OPERATIONAL_AT:
        return "operational"
    if availability >= DEGRADED_AT:
        return "degraded"
    return "outage"


STATUS_LABELS = {
    "operational": "Operational",
    "degraded": "Degraded",
    "outage": "Outage",
    "no_data": "No data",
}


def _rates(workspace: Workspace) -> dict[str, Decimal]:
    return {
        r.currency.upper(): r.rate
        for r in CurrencyRate.objects.filter(workspace=workspace).exclude(
            currency=workspace.base_currency
        )
    }


def to_base(
    amount: Any, currency_field: str, *, workspace: Workspace, rates: dict[str, Decimal]
) -> Case:
    """An expression converting ``amount`` (minor units of ``currency_field``) to base minor units.

    Amounts in a currency without a rate convert to NULL and drop out of sums.
    """
    base = workspace.base_currency.upper()
    whens = [When(**{currency_field: base}, then=ExpressionWrapper(amount, FloatField()))]
    for currency, rate in rates.items():
        factor = float(rate) * 10 ** (exponent(base) - exponent(currency))
        whens.append(
            When(
                **{currency_field: currency},
                then=ExpressionWrapper(amount * Value(factor), FloatField()),
            )
        )
    return Case(*whens, default=Value(None), output_field=FloatField())


def item_monthly_amount(quantity: str | None = "quantity") -> Case:
    """A recurring amount normalised to one month (minor units, float): unit × quantity."""
    gross = Coalesce(F("unit_amount"), Value(0)) * Value(1.0)
    if quantity:
        gross = gross * F(quantity)
    gross = gross / F("recurring_interval_count")
    return Case(
        When(recurring_interval="month", then=gross),
        When(recurring_interval="year", then=gross / Value(12.0)),
        When(recurring_interval="week", then=gross * Value(52.0 / 12.0)),
        When(recurring_interval="day", then=gross * Value(365.0 / 12.0)),
        default=Value(0.0),
        output_field=FloatField(),
    )


def _ticket_action(workspace: Workspace, **filters: Any) -> QuerySet[BillingAction]:
    """Actions on the outer ticket (same workspace and ticket id; same installation when known)."""
    return BillingAction.objects.filter(
        Q(installation_id=OuterRef("installation_id")) | Q(installation__isnull=True),
        workspace=workspace,
        ticket_id=OuterRef("external_id"),
        **filters,
    )


def _month_tickets(workspace: Workspace, month: Month) -> QuerySet[HelpdeskTicket]:
    return HelpdeskTicket.objects.filter(
        workspace=workspace, created_at__gte=month.start, created_at__lt=month.end
    )


def ticket_predicates(workspace: Workspace) -> tuple[Q, Q, Q]:
    """(resolved, escalated, auto-resolved action present) as conditions on a ticket row."""
    resolved = Q(solved_at__isnull=False) | Q(status__in=RESOLVED_STATUSES)
    escalated = Q(escalated=True) | Q(
        Exists(_ticket_action(workspace, decision=BillingAction.Decision.APPROVAL))
    )
    direct_success = {
        "status": BillingAction.Status.SUCCEEDED,
        "decision": BillingAction.Decision.ALLOW,
    }
    auto = Q()
    for category, kinds in CATEGORY_ACTION_KINDS.items():
        extra = {"kind__in": [str(k) for k in kinds]} if kinds else {}
        auto |= Q(category=category) & Q(
            Exists(_ticket_action(workspace, **direct_success, **extra))
        )
    return resolved, escalated, auto


# --- sections ----------------------------------------------------------------------------------


# Each ticket of the month falls in exactly one state; grouping by it evaluates the
# per-ticket EXISTS lookups once per ticket (at most two: escalation, then auto-resolved).
NOT_BILLING, ESCALATED, AUTO_RESOLVED, RESOLVED, OPEN = "n", "e", "a", "r", "o"


def ticket_groups(*, workspace: Workspace, month: Month) -> list[dict[str, Any]]:
    """One query: the month's tickets counted by (category, state), with the sums needed."""
    resolved, escalated, auto = ticket_predicates(workspace)
    state = Case(
        When(is_billing=False, then=Value(NOT_BILLING)),
        When(escalated, then=Value(ESCALATED)),
        When(resolved & auto, then=Value(AUTO_RESOLVED)),
        When(resolved, then=Value(RESOLVED)),
        default=Value(OPEN),
        output_field=CharField(),
    )
    return list(
        _month_tickets(workspace, month)
        .annotate(state=state)
        .values("state", "category")
        .annotate(
            tickets=Count("id"),
            resolved=Count("id", filter=resolved),
            resolution_sum=Sum("resolution_seconds", filter=resolved),
            resolution_n=Count("resolution_seconds", filter=resolved),
            csat_sum=Sum("csat_score"),
            csat_n=Count("csat_score"),
            reopens=Sum("reopens"),
        )
        .order_by()
    )


def _avg(total: float | None, count: int) -> float | None:
    return None if not count or total is None else float(total) / count


def _sum(rows: Iterable[dict[str, Any]], name: str) -> int:
    return sum(r[name] or 0 for r in rows)


def ticket_metrics(*, groups: list[dict[str, Any]]) -> dict[str, Any]:
    billing = [g for g in groups if g["state"] != NOT_BILLING]
    count, total = _sum(billing, "tickets"), _sum(groups, "tickets")
    escalated = _sum([g for g in billing if g["state"] == ESCALATED], "tickets")
    clean = _sum([g for g in billing if g["state"] in (AUTO_RESOLVED, RESOLVED)], "tickets")
    avg_resolution = _round(_avg(_sum(billing, "resolution_sum"), _sum(billing, "resolution_n")))
    return {
        "total": total,
        "billing": count,
        "billing_share_pct": pct(count, total),
        "resolved_without_escalation": clean,
        "resolved_without_escalation_pct": pct(clean, count),
        "escalated": escalated,
        "escalated_pct": pct(escalated, count),
        "unresolved": count - _sum(billing, "resolved"),
        "reopens": _sum(billing, "reopens"),
        "avg_resolution_seconds": avg_resolution,
        "avg_resolution_minutes": _round(avg_resolution / 60) if avg_resolution else None,
        "resolution_target_seconds": RESOLUTION_TARGET_SECONDS,
        "resolution_within_target": (
            None if avg_resolution is None else avg_resolution < RESOLUTION_TARGET_SECONDS
        ),
        "csat": _round(_avg(_sum(billing, "csat_sum"), _sum(billing, "csat_n"))),
        "csat_responses": _sum(billing, "csat_n"),
    }


def category_metrics(*, groups: list[dict[str, Any]], billing_total: int) -> list[dict]:
    result = []
    for category in TicketCategory:
        rows = [g for g in groups if g["category"] == category.value and g["state"] != NOT_BILLING]
        tickets = _sum(rows, "tickets")
        avg = _avg(_sum(rows, "resolution_sum"), _sum(rows, "resolution_n"))
        auto = _sum([g for g in rows if g["state"] == AUTO_RESOLVED], "tickets")
        result.append(
            {
                "key": category.value,
                "label": category.label,
                "tickets": tickets,
                "share_pct": pct(tickets, billing_total),
                "avg_resolution_seconds": _round(avg),
                "avg_resolution_minutes": _round(avg / 60) if avg is not None else None,
                "auto_resolved": auto,
                "auto_resolved_pct": pct(auto, tickets, 0),
            }
        )
    order = [c.value for c in TicketCategory]
    result.sort(
        key=lambda c: (
            c["key"] == TicketCategory.OTHER_BILLING,
            -c["tickets"],
            order.index(c["key"]),
        )
    )
    return result


def _credit_bands(workspace: Workspace) -> tuple[int, int]:
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


def _month_actions(workspace: Workspace, month: Month) -> QuerySet[BillingAction]:
    return BillingAction.objects.filter(
        workspace=workspace, created_at__gte=month.start, created_at__lt=month.end
    ).exclude(status=BillingAction.Status.NOT_PERMITTED)


def _direction() -> Coalesce:
    return Coalesce(
        NullIf(KeyTextTransform("direction", "result"), Value("")),
        NullIf(KeyTextTransform("direction", "params"), Value("")),
        Value(""),
        output_field=CharField(),
    )


def action_metrics(*, workspace: Workspace, month: Month) -> dict[str, Any]:
    small, large = _credit_bands(workspace)
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
        for r in _month_actions(workspace, month)
        .annotate(direction=_direction())
        .annotate(label_key=label_key)
        .values("label_key")
        .annotate(
            count=Count("id"),
            succeeded=Count("id", filter=Q(status=BillingAction.Status.SUCCEEDED)),
            failed=Count("id", filter=Q(status=BillingAction.Status.FAILED)),
            avg_ms=Avg("duration_ms", filter=executed),
            time_ms=Sum("duration_ms", filter=executed),
            approval=Count("id", filter=Q(decision=BillingAction.Decision.APPROVAL)),
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
                "avg_seconds": _round(avg_ms / 1000, 2) if avg_ms is not None else None,
                "time_ms": r["time_ms"] or 0,
                "requiring_approval": r["approval"],
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
    avg_approval = _seconds(approvals["avg"])
    return {
        "rows": table,
        "total": total,
        "requiring_approval": needing,
        "requiring_approval_pct": pct(needing, total),
        "approvals_decided": approvals["decided"],
        "avg_approval_seconds": _round(avg_approval),
        "avg_approval_hours": _round(avg_approval / 3600) if avg_approval is not None else None,
        "total_time_ms": sum(r["time_ms"] for r in table),
    }


def refund_metrics(*, workspace: Workspace, month: Month) -> dict[str, Any]:
    currency = workspace.base_currency
    refunds = _month_actions(workspace, month).filter(kind__in=REFUND_KINDS)
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


def _failures(workspace: Workspace, start: Any, end: Any) -> QuerySet[PaymentFailure]:
    return PaymentFailure.objects.filter(
        workspace=workspace, failed_at__gte=start, failed_at__lt=end
    )


def payment_failure_metrics(
    *, workspace: Workspace, month: Month, rates: dict[str, Decimal]
) -> dict[str, Any]:
    currency = workspace.base_currency
    failures = _failures(workspace, month.start, month.end)
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
    labels = [(key, label) for key, label, _ in FAILURE_REASONS] + [("other", "Other")]
    known = {key for key, _ in labels}
    reason_rows["other"] = reason_rows.get("other", 0) + sum(
        n for key, n in reason_rows.items() if key not in known
    )
    reasons = [
        {"key": key, "label": label, "count": reason_rows[key], "pct": pct(reason_rows[key], count)}
        for key, label in labels
        if reason_rows.get(key)
    ]
    reasons.sort(key=lambda r: (r["key"] == "other", -r["count"]))

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
        .filter(ended__isnull=False, status__in=["canceled", "incomplete_expired"])
        .filter(Exists(ended_after_failure))
    )
    churned_ids = churned.values("stripe_id")
    churn = churned.aggregate(accounts=Count("customer_id", distinct=True))
    mrr = to_base(item_monthly_amount(), "currency", workspace=workspace, rates=rates)
    amounts = (
        MirrorSubscriptionItem.objects.filter(workspace=workspace, subscription_id__in=failed_subs)
        .annotate(mrr=mrr)
        .aggregate(
            at_risk=Sum("mrr"),
            retained=Sum(
                "mrr",
                filter=Q(subscription_id__in=recovered_subs) & ~Q(subscription_id__in=churned_ids),
            ),
            churned=Sum("mrr", filter=Q(subscription_id__in=churned_ids)),
        )
    )
    avg_recovery = _seconds(summary["avg_recovery"])
    return {
        "count": count,
        "recovered": summary["recovered"],
        "recovery_rate_pct": pct(summary["recovered"], count, 0),
        "recovered_after_agent_action": summary["by_agent"],
        "agent_recovery_pct": pct(summary["by_agent"], summary["recovered"], 0),
        "avg_recovery_seconds": _round(avg_recovery),
        "avg_recovery_days": _round(avg_recovery / 86400) if avg_recovery is not None else None,
        "reasons": reasons,
        "churned_accounts": churn["accounts"],
        "churn_pct_of_failures": pct(churn["accounts"], count),
        "churned_mrr": money(amounts["churned"], currency),
        "revenue_at_risk_mrr": money(amounts["at_risk"], currency),
        "recovered_mrr": money(amounts["retained"], currency),
        "trend": failure_trend(workspace=workspace, month=month),
    }


def failure_trend(*, workspace: Workspace, month: Month) -> list[dict[str, Any]]:
    first = month.shift(-(TREND_MONTHS - 1))
    rows = {
        Month.of(r["month"]): r
        for r in _failures(workspace, first.start, month.end)
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


def health_metrics(*, workspace: Workspace, month: Month) -> dict[str, Any]:
    ops = {
        r["operation"]: r
        for r in ProviderCall.objects.filter(
            workspace=workspace, created_at__gte=month.start, created_at__lt=month.end
        )
        .values("operation")
        .annotate(
            calls=Count("id"),
            ok=Count("id", filter=Q(outcome=ProviderCall.Outcome.OK)),
            unavailable=Count("id", filter=Q(outcome=ProviderCall.Outcome.UNAVAILABLE)),
            avg_ms=Avg("duration_ms"),
        )
        .order_by()
    }
    provider_label = "Stripe" if workspace.provider == Workspace.Provider.STRIPE else "Sandbox"

    def totals(names: Iterable[str] | None) -> tuple[int, int, int]:
        chosen = [ops[n] for n in (names if names is not None else ops) if n in ops]
        return (
            sum(r["calls"] for r in chosen),
            sum(r["ok"] for r in chosen),
            sum(r["unavailable"] for r in chosen),
        )

    components = []
    for key, label, names in HEALTH_COMPONENTS:
        calls, _, unavailable = totals(names)
        availability = pct(calls - unavailable, calls, 2)
        status = _status(availability)
        components.append(
            {
                "key": key,
                "label": label.format(provider=provider_label),
                "status": status,
                "status_label": STATUS_LABELS[status],
                "availability_pct": availability,
                "calls": calls,
            }
        )
    events = StripeEvent.objects.filter(
        workspace=workspace, received_at__gte=month.start, received_at__lt=month.end
    ).aggregate(
        total=Count("id"),
        delivered=Count("id", filter=Q(status__in=["processed", "ignored"])),
        failed=Count("id", filter=Q(status="failed")),
        pending=Count("id", filter=Q(status="received")),
    )
    finished = events["delivered"] + events["failed"]
    webhook_rate = pct(events["delivered"], finished, 2)
    webhook_status = _status(webhook_rate)
    components.append(
        {
            "key": "webhook_delivery",
            "label": "Webhook delivery",
            "status": webhook_status,
            "status_label": STATUS_LABELS[webhook_status],
            "availability_pct": webhook_rate,
            "calls": events["total"],
        }
    )
    response_times = []
    for key, label, operation, target in RESPONSE_TARGETS:
        r = ops.get(operation)
        avg = _round(r["avg_ms"], 0) if r else None
        response_times.append(
            {
                "key": key,
                "label": label,
                "operation": operation,
                "calls": r["calls"] if r else 0,
                "avg_ms": avg,
                "target_ms": target,
                "within_target": None if avg is None else avg < target,
            }
        )
    calls, ok, unavailable = totals(None)
    # The provider's status now, whatever month is shown: its last RECENT_CALLS calls.
    latest = ProviderCall.objects.filter(workspace=workspace).order_by("-created_at")
    recent = ProviderCall.objects.filter(
        pk__in=Subquery(latest.values("pk")[:RECENT_CALLS])
    ).aggregate(
        calls=Count("id"),
        unavailable=Count("id", filter=Q(outcome=ProviderCall.Outcome.UNAVAILABLE)),
        since=Min("created_at"),
    )
    recent_availability = pct(recent["calls"] - recent["unavailable"], recent["calls"], 2)
    charges = MirrorCharge.objects.filter(
        workspace=workspace,
        status__in=["succeeded", "failed"],
        created__gte=month.start,
        created__lt=month.end,
    ).aggregate(
        succeeded=Count("id", filter=Q(status="succeeded")),
        failed=Count("id", filter=Q(status="failed")),
    )
    return {
        "provider": provider_label,
        "current": {
            "status": _status(recent_availability),
            "status_label": STATUS_LABELS[_status(recent_availability)],
            "availability_pct": recent_availability,
            "calls": recent["calls"],
            "since": recent["since"].isoformat() if recent["since"] else None,
        },
        "components": components,
        "response_times": response_times,
        "provider_calls": calls,
        "uptime_pct": pct(calls - unavailable, calls, 2),
        "api_success_rate_pct": pct(ok, calls, 2),
        "payment_processing_success_pct": pct(
            charges["succeeded"], charges["succeeded"] + charges["failed"], 1
        ),
        "charges_succeeded": charges["succeeded"],
        "charges_failed": charges["failed"],
        "webhooks": {
            "received": events["total"],
            "delivered": events["delivered"],
            "failed": events["failed"],
            "pending": events["pending"],
            "success_rate_pct": webhook_rate,
        },
        "operations": [
            {
                "operation": name,
                "calls": r["calls"],
                "ok": r["ok"],
                "unavailable": r["unavailable"],
                "avg_ms": _round(r["avg_ms"], 0),
            }
            for name, r in sorted(ops.items())
        ],
    }


# --- recommendations ---------------------------------------------------------------------------


def recommendations_derive(figures: dict[str, Any]) -> list[dict[str, str]]:
    """Recommendations from the month's figures, by the rules of ``RECOMMENDATION_RULES``. Pure."""
    rules = RECOMMENDATION_RULES
    out: list[dict[str, str]] = []

    def add(rule: str, evidence: str) -> None:
        out.append({"rule": rule, "text": rules[rule]["text"], "evidence": evidence})

    failures = figures["payment_failures"]
    churn_pct = failures["churn_pct_of_failures"]
    if churn_pct is not None and churn_pct >= rules["payment_failure_churn"]["threshold_pct"]:
        expired = next((r for r in failures["reasons"] if r["key"] == "card_expired"), None)
        evidence = (
            f"{plural(failures['churned_accounts'], 'account')} churned after payment failures "
            f"({churn_pct}% of {failures['count']} failures, "
            f"{failures['churned_mrr']['display']} MRR)"
        )
        if expired:
            evidence += f"; {expired['pct']}% of failures were expired cards"
        add("payment_failure_churn", evidence)

    actions, tickets = figures["actions"], figures["tickets"]
    refund_time = sum(r["time_ms"] for r in actions["rows"] if r["key"] in REFUND_KINDS)
    time_share = pct(refund_time, actions["total_time_ms"])
    categories = {c["key"]: c for c in figures["categories"]}
    refund_share = categories[TicketCategory.REFUND_REQUEST]["share_pct"]
    rule = rules["self_service_refunds"]
    if (time_share is not None and time_share >= rule["time_share_pct"]) or (
        refund_share is not None and refund_share >= rule["ticket_share_pct"]
    ):
        add(
            "self_service_refunds",
            f"refunds took {time_share if time_share is not None else 0}% of agent action time; "
            f"refund requests were {refund_share if refund_share is not None else 0}% "
            "of billing tickets",
        )

    rule = rules["billing_faq"]
    common = [
        c
        for c in figures["categories"]
        if c["share_pct"] is not None
        and c["share_pct"] >= rule["share_pct"]
        and (c["auto_resolved_pct"] or 0) < rule["auto_resolved_below_pct"]
    ]
    if common:
        add(
            "billing_faq",
            "; ".join(
                f"{c['label']}: {c['share_pct']}% of billing tickets, "
                f"{c['auto_resolved_pct'] or 0:.0f}% auto-resolved"
                for c in common
            ),
        )

    overcharge = categories[TicketCategory.OVERCHARGE_DISPUTE]
    if (
        overcharge["share_pct"] is not None
        and overcharge["share_pct"] >= rules["invoice_preview"]["share_pct"]
    ):
        add(
            "invoice_preview",
            f"{plural(overcharge['tickets'], 'overcharge dispute')} "
            f"({overcharge['share_pct']}% of billing tickets)",
        )

    if tickets["resolution_within_target"] is False:
        add(
            "resolution_time",
            f"average resolution {tickets['avg_resolution_minutes']} min "
            f"against a {RESOLUTION_TARGET_SECONDS // 60}-minute target",
        )

    slow = [r for r in figures["health"]["response_times"] if r["within_target"] is False]
    if slow:
        add(
            "slow_operation",
            "; ".join(
                f"{r['label']}: {r['avg_ms']:.0f} ms avg (target <{r['target_ms']} ms)"
                for r in slow
            ),
        )

    webhooks = figures["health"]["webhooks"]
    rate = webhooks["success_rate_pct"]
    if rate is not None and rate < rules["webhook_delivery"]["threshold_pct"]:
        add(
            "webhook_delivery",
            f"{webhooks['failed']} of {webhooks['delivered'] + webhooks['failed']} "
            f"webhook events failed ({rate}% delivered)",
        )

    hours = actions["avg_approval_hours"]
    if hours is not None and hours > rules["approval_time"]["threshold_hours"]:
        add(
            "approval_time",
            f"approvals took {hours} hours on average over {actions['approvals_decided']} decisions",
        )
    return out


# --- the dashboard -----------------------------------------------------------------------------


class _Session(threading.local):
    active = False


_session = _Session()


@contextmanager
def analytics_session() -> Iterator[None]:
    """One transaction for the month's queries, with two PostgreSQL planner settings.

    Measured with ``bench/dashboard.py`` at 1M tickets: the per-ticket subqueries give
    these aggregates high cost estimates, so PostgreSQL JIT-compiled them (~0.8 s per
    query, longer than running them), and it read the month's tickets through the
    category index in category order (random heap reads, 0.4 s) instead of a bitmap
    scan and a sort (0.27 s). ``set_config(..., true)`` keeps both to this transaction.
    """
    if _session.active:  # the report runs the dashboard inside its own session
        yield
        return
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT set_config('jit', 'off', true),"
                    " set_config('enable_incremental_sort', 'off', true)"
                )
        _session.active = True
        try:
            yield
        finally:
            _session.active = False


def dashboard_build(*, workspace: Workspace, month: Month) -> dict[str, Any]:
    """Every figure of the brief's BILLING SUPPORT DASHBOARD for ``month``."""
    with analytics_session():
        return _dashboard_build(workspace=workspace, month=month)


def _dashboard_build(*, workspace: Workspace, month: Month) -> dict[str, Any]:
    rates = _rates(workspace)
    groups = ticket_groups(workspace=workspace, month=month)
    tickets = ticket_metrics(groups=groups)
    figures: dict[str, Any] = {
        "workspace": {
            "slug": workspace.slug,
            "name": workspace.name,
            "base_currency": workspace.base_currency,
        },
        "month": month.key,
        "month_label": month.label,
        "period": {"start": month.start.isoformat(), "end": month.end.isoformat()},
        "generated_at": timezone.now().isoformat(),
        "tickets": tickets,
        "categories": category_metrics(groups=groups, billing_total=tickets["billing"]),
        "actions": action_metrics(workspace=workspace, month=month),
        "refunds": refund_metrics(workspace=workspace, month=month),
        "payment_failures": payment_failure_metrics(workspace=workspace, month=month, rates=rates),
        "health": health_metrics(workspace=workspace, month=month),
    }
    figures["recommendations"] = recommendations_derive(figures)
    return figures
