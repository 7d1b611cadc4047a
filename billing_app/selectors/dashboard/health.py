"""System health: provider availability per component, webhook delivery, response times.

Provider calls come from the daily roll-ups (``provider_call_groups``); webhook events,
the provider's last 100 calls and mirrored charges are read from their tables."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.db.models import Count, Min, Q, Subquery
from django.utils.translation import gettext, gettext_noop

from ...models import AuditVerification, MirrorCharge, ProviderCall, StripeEvent, Workspace
from ...vocabulary import Labels
from ..months import Month
from .shared import PROVIDER_CALL_FAMILY, SEP, MonthRollups, pct, round_or_none

# Response-time targets (the brief's "System response times"); labels in English, read in
# the active language when the figures are built (so are the components' below).
RESPONSE_TARGETS: tuple[tuple[str, str, str, int], ...] = (
    (
        "billing_data_retrieval",
        gettext_noop("Billing data retrieval"),
        "fetch_customer_bundle",
        500,
    ),
    (
        "payment_link_generation",
        gettext_noop("Payment link generation"),
        "create_payment_link",
        500,
    ),
    ("refund_processing", gettext_noop("Refund processing"), "refund", 3000),
)
# Health components: which provider operations each one stands for (None = all).
HEALTH_COMPONENTS: tuple[tuple[str, str, tuple[str, ...] | None], ...] = (
    ("provider_api", gettext_noop("{provider} API connection"), None),
    (
        "invoice_generation",
        gettext_noop("Invoice generation"),
        ("resend_invoice", "preview_plan_change", "change_plan", "update_tax_details"),
    ),
    (
        "payment_processing",
        gettext_noop("Payment processing"),
        (
            "create_payment_link",
            "payment_method_update_link",
            "apply_credit",
            "extend_grace_period",
        ),
    ),
    ("refund_processing", gettext_noop("Refund processing"), ("refund",)),
)
OPERATIONAL_AT = 99.5
RECENT_CALLS = 100
DEGRADED_AT = 95.0


def _status(availability: float | None) -> str:
    if availability is None:
        return "no_data"
    if availability >= OPERATIONAL_AT:
        return "operational"
    if availability >= DEGRADED_AT:
        return "degraded"
    return "outage"


STATUS_LABELS: Labels = Labels(
    {
        "operational": gettext_noop("Operational"),
        "degraded": gettext_noop("Degraded"),
        "outage": gettext_noop("Outage"),
        "no_data": gettext_noop("No data"),
    }
)


def provider_call_groups(rollups: MonthRollups) -> dict[str, dict[str, Any]]:
    """The month's provider calls per operation, from the daily roll-ups (family ``call``,
    key ``operation|outcome``, Σ duration in ``m1``; kept by the call recorder)."""
    ops: dict[str, dict[str, Any]] = {}
    for key, m in rollups.rows(PROVIDER_CALL_FAMILY).items():
        operation, outcome = key.rsplit(SEP, 1)
        r = ops.setdefault(operation, {"calls": 0, "ok": 0, "unavailable": 0, "ms": 0})
        r["calls"] += m["count"]
        r["ms"] += m["m1"]
        if outcome == ProviderCall.Outcome.OK:
            r["ok"] += m["count"]
        elif outcome == ProviderCall.Outcome.UNAVAILABLE:
            r["unavailable"] += m["count"]
    for r in ops.values():
        r["avg_ms"] = r["ms"] / r["calls"] if r["calls"] else None
    return ops


def health_metrics(*, workspace: Workspace, month: Month, rollups: MonthRollups) -> dict[str, Any]:
    ops = provider_call_groups(rollups)
    provider_label = (
        "Stripe" if workspace.provider == Workspace.Provider.STRIPE else gettext("Sandbox")
    )

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
                "label": gettext(label).format(provider=provider_label),
                "status": status,
                "status_label": STATUS_LABELS[status],
                "availability_pct": availability,
                "calls": calls,
            }
        )
    events = StripeEvent.objects.filter(
        workspace=workspace, received_at__gte=month.start, received_at__lt=month.end
    ).aggregate(
        # Counting ``status`` (never null), not ``id``: the month's events are then read
        # from the covering index alone (``stripe_event_recv_status_idx`` includes ``status``).
        total=Count("status"),
        delivered=Count("status", filter=Q(status__in=["processed", "ignored"])),
        failed=Count("status", filter=Q(status="failed")),
        pending=Count("status", filter=Q(status="received")),
    )
    finished = events["delivered"] + events["failed"]
    webhook_rate = pct(events["delivered"], finished, 2)
    webhook_status = _status(webhook_rate)
    components.append(
        {
            "key": "webhook_delivery",
            "label": gettext("Webhook delivery"),
            "status": webhook_status,
            "status_label": STATUS_LABELS[webhook_status],
            "availability_pct": webhook_rate,
            "calls": events["total"],
        }
    )
    response_times = []
    for key, label, operation, target in RESPONSE_TARGETS:
        r = ops.get(operation)
        avg = round_or_none(r["avg_ms"], 0) if r else None
        response_times.append(
            {
                "key": key,
                "label": gettext(label),
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
        # ``status``, not ``id``: an index-only scan of ``mirror_charge_status_idx``.
        succeeded=Count("status", filter=Q(status="succeeded")),
        failed=Count("status", filter=Q(status="failed")),
    )
    return {
        "provider": provider_label,
        "audit": audit_health(workspace=workspace),
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
                "avg_ms": round_or_none(r["avg_ms"], 0),
            }
            for name, r in sorted(ops.items())
        ],
    }


def audit_health(*, workspace: Workspace) -> dict[str, Any]:
    """The last ``verify_audit`` run over the workspace's audit chain (docs/audit.md)."""
    last = (
        AuditVerification.objects.filter(workspace=workspace)
        .order_by("-verified_at", "-pk")
        .values("verified_at", "ok", "entries", "first_bad")
        .first()
    )
    if last is None:
        return {
            "status": "no_data",
            "label": gettext("Audit trail not verified yet"),
            "verified_at": None,
            "entries": 0,
            "first_bad": "",
        }
    return {
        "status": "operational" if last["ok"] else "outage",
        "label": gettext("Audit trail verified") if last["ok"] else gettext("Audit trail broken"),
        "verified_at": last["verified_at"].isoformat(),
        "entries": last["entries"],
        "first_bad": last["first_bad"],
    }
