"""Reading payment failures: a customer's failure history, and the panel's failure alerts.

``customer_failures`` is ``GET customers/{id}/failures/``: every recorded failure
(newest first) with its reason in plain words, attempt, next retry, recovery and
escalation, plus a summary (open now, consecutive, recovery rate and time).

``failure_alerts_extend`` is called by ``selectors.context`` with the alerts it
built from the mirror and the charges it already loaded; it adds what Billing
Desk's own records know — the actions that resolve a failure (payment link,
grace period), the suspension warning and CSM outreach, both charges of a
duplicate pair with the "refund duplicate" action — in one query.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from django.db.models import Avg, Count, F, Q
from django.utils.translation import gettext, ngettext

from ..catalog import ActionKind
from ..errors import NotFound
from ..models import MirrorCharge, MirrorCustomer, PaymentFailure, Workspace
from ..money import format_money, money_json
from ..vocabulary import action_label, decline
from .payments import charge_method_label

Obj = dict[str, Any]

DEFAULT_GRACE_DAYS = 7
# Consecutive failures that bring the account suspension warning (DESIGN.md 6): the rule for
# the recording (``services.payment_failures``) and the panel's alerts (``selectors.context``).
SUSPENSION_THRESHOLD = 3


def _iso(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None


def _day(value: datetime | None) -> str | None:
    return value.date().isoformat() if value else None


def failure_reason_text(failure: PaymentFailure) -> str:
    """The failure's reason in the active language.

    The row stores English words (``PaymentFailure.reason``), which for a decline known
    only by its code are a filled template ("Payment failed (expired token)") that no
    catalog entry matches. So the words are derived again from the decline or failure
    code the row keeps, in the active language ("Zahlung fehlgeschlagen (expired token)");
    a row without a code has its stored English words translated, or shown as stored
    (Stripe's own message) when the catalog has none.
    """
    if failure.decline_code or failure.failure_code:
        return decline(
            decline_code=failure.decline_code,
            failure_code=failure.failure_code,
            message=failure.failure_message,
        ).agent_text
    return gettext(failure.reason) if failure.reason else ""


def failure_row(failure: PaymentFailure) -> Obj:
    """One failure as the API and the panel show it."""
    seconds = int(failure.time_to_recover.total_seconds()) if failure.time_to_recover else None
    return {
        "id": failure.pk,
        "customer_id": failure.customer_id,
        "subscription_id": failure.subscription_id or None,
        "invoice_id": failure.invoice_id or None,
        "payment_intent_id": failure.payment_intent_id or None,
        "charge_id": failure.charge_id or None,
        "amount": money_json(failure.amount, failure.currency),
        "decline_code": failure.decline_code,
        "failure_code": failure.failure_code,
        "failure_message": failure.failure_message,
        "reason": failure_reason_text(failure),
        "reason_category": failure.reason_category,
        "attempt_count": failure.attempt_count,
        "next_retry_at": _iso(failure.next_retry_at),
        "failed_at": _iso(failure.failed_at),
        "status": "open" if failure.recovered_at is None else "recovered",
        "recovered_at": _iso(failure.recovered_at),
        "recovered_by": failure.recovered_by or None,
        "recovered_via": failure.recovered_via or None,
        "recovery_action_id": str(failure.recovery_action_id)
        if failure.recovery_action_id
        else None,
        "time_to_recover_seconds": seconds,
        "consecutive_count": failure.consecutive_count,
        "suspension_warning_sent_at": _iso(failure.suspension_warning_sent_at),
        "suspension_note": failure.suspension_note_status,
        "csm_outreach": {
            "status": failure.csm_outreach_status,
            "at": _iso(failure.csm_outreach_at),
            "ref": failure.csm_outreach_ref or None,
        },
        "source": failure.source,
    }


def _streak_open(failures: list[PaymentFailure]) -> list[PaymentFailure]:
    """The open failures of the most recently failing scope (subscription or one-off)."""
    open_ = [f for f in failures if f.recovered_at is None]
    if not open_:
        return []
    latest = max(open_, key=lambda f: (f.failed_at, f.pk))
    return [f for f in open_ if f.subscription_id == latest.subscription_id]


def customer_failures(*, workspace: Workspace, customer_id: str, limit: int = 100) -> Obj:
    """The customer's recorded payment failures, newest first, with a summary. Two queries."""
    if not MirrorCustomer.objects.filter(workspace=workspace, stripe_id=customer_id).exists():
        raise NotFound(gettext("No such billing customer."), code="customer_not_found")
    rows = list(
        PaymentFailure.objects.filter(workspace=workspace, customer_id=customer_id).order_by(
            "-failed_at", "-id"
        )[:limit]
    )
    stats = PaymentFailure.objects.filter(workspace=workspace, customer_id=customer_id).aggregate(
        total=Count("id"),
        recovered=Count("id", filter=Q(recovered_at__isnull=False)),
        by_agent=Count("id", filter=Q(recovered_by=PaymentFailure.RecoveredBy.AGENT_ACTION)),
        avg=Avg(F("time_to_recover"), filter=Q(recovered_at__isnull=False)),
    )
    streak = _streak_open(rows)
    latest = max(streak, key=lambda f: (f.failed_at, f.pk)) if streak else None
    avg = stats["avg"]
    return {
        "customer_id": customer_id,
        "summary": {
            "total": stats["total"],
            "open": sum(1 for f in rows if f.recovered_at is None),
            "recovered": stats["recovered"],
            "recovered_after_agent_action": stats["by_agent"],
            "recovery_rate_pct": round(stats["recovered"] * 100 / stats["total"])
            if stats["total"]
            else None,
            "avg_time_to_recover_seconds": int(avg.total_seconds()) if avg else None,
            "consecutive_failures": max((f.consecutive_count for f in streak), default=0),
            "suspension_warning": any(f.suspension_warning_sent_at for f in streak),
            "latest_open_failure_id": latest.pk if latest else None,
        },
        "items": [failure_row(f) for f in rows],
    }


# --- the panel's alerts ----------------------------------------------------------------------


def _charge_summary(charge: MirrorCharge) -> Obj:
    return {
        "id": charge.stripe_id,
        "amount": money_json(charge.amount, charge.currency),
        "created": _iso(charge.created),
        "status": charge.status,
        "method": charge_method_label(charge),
        "description": charge.description,
        "payment_intent_id": charge.payment_intent_id or None,
        "refunded": money_json(charge.amount_refunded, charge.currency),
    }


def _resolve_actions(*, invoice_id: str | None, subscription_id: str | None) -> list[Obj]:
    """What resolves a failed payment: a payment link, and a grace period on the subscription."""
    actions: list[Obj] = [
        {
            "kind": ActionKind.GENERATE_PAYMENT_LINK.value,
            "label": gettext("Send payment link"),
            "params": {"invoice_id": invoice_id} if invoice_id else {},
        }
    ]
    if subscription_id:
        params: Obj = {"subscription_id": subscription_id, "days": DEFAULT_GRACE_DAYS}
        if invoice_id:
            params["invoice_id"] = invoice_id
        actions.append(
            {
                "kind": ActionKind.EXTEND_GRACE_PERIOD.value,
                "label": action_label(ActionKind.EXTEND_GRACE_PERIOD),
                "params": params,
            }
        )
    return actions


def failure_alerts_extend(
    *,
    workspace: Workspace,
    customer_id: str,
    alerts: list[Obj],
    charges: Iterable[MirrorCharge],
    now: datetime,
) -> list[Obj]:
    """Add Billing Desk's records to the context's alerts (in place; also returned).

    * ``payment_failed``: ``failure_id``, ``failed_at``, ``subscription_id``, the
      reason in plain words, the streak's consecutive count, and ``actions`` —
      a payment link for the failed invoice and a grace-period extension.
    * ``suspension_warning`` (added): the open streak reached 3 consecutive
      failures; when the warning went out and where the CSM outreach stands.
    * ``duplicate_charge``: ``charges`` (both, earlier first) and the
      ``refund_duplicate_charge`` action refunding the later one.
    * ``payment_monitoring``: its ``until`` date, unchanged.

    At most one query (the customer's open and recent failures, skipped when no
    charge of the 12 months loaded by the context failed); the charges are the
    ones the context already loaded.
    """
    charges = list(charges)
    failing = any(c.status == "failed" for c in charges) or any(
        a.get("type") == "payment_failed" for a in alerts
    )
    # A customer without a failed payment in 12 months has no failure records to read.
    recent = (
        list(
            PaymentFailure.objects.filter(workspace=workspace, customer_id=customer_id)
            .filter(Q(recovered_at__isnull=True) | Q(failed_at__gte=now - timedelta(days=30)))
            .order_by("-failed_at", "-id")[:50]
        )
        if failing
        else []
    )
    streak = _streak_open(recent)
    latest = max(streak, key=lambda f: (f.failed_at, f.pk)) if streak else None
    by_charge = {c.stripe_id: c for c in charges}

    for alert in alerts:
        data = alert.setdefault("data", {})
        if alert.get("type") == "payment_failed":
            charge = by_charge.get(data.get("charge_id") or "")
            if charge is not None:
                data["reason"] = decline(
                    decline_code=charge.decline_code,
                    failure_code=charge.failure_code,
                    message=charge.failure_message,
                ).agent_text
            match = None
            if latest is not None:
                match = next(
                    (
                        f
                        for f in streak
                        if (data.get("charge_id") and f.charge_id == data["charge_id"])
                        or (data.get("invoice_id") and f.invoice_id == data["invoice_id"])
                    ),
                    latest,
                )
            if match is not None:
                data["failure_id"] = match.pk
                data["failed_at"] = _iso(match.failed_at)
                data["reason"] = failure_reason_text(match)
                data["reason_category"] = match.reason_category
                data["consecutive_failures"] = max(
                    int(data.get("consecutive_failures") or 0),
                    max(f.consecutive_count for f in streak),
                )
                data["suspension_warning"] = bool(data.get("suspension_warning")) or any(
                    f.suspension_warning_sent_at for f in streak
                )
                if not data.get("subscription_id"):
                    data["subscription_id"] = match.subscription_id or None
            data["actions"] = _resolve_actions(
                invoice_id=data.get("invoice_id"), subscription_id=data.get("subscription_id")
            )
        elif alert.get("type") == "duplicate_charge":
            ids = list(data.get("charge_ids") or [])
            data["charges"] = [_charge_summary(by_charge[i]) for i in ids if i in by_charge]
            data["action"] = {
                "kind": ActionKind.REFUND_DUPLICATE_CHARGE.value,
                "label": gettext("Refund duplicate"),
                "params": {"charge_ids": ids},
                "refund_charge_id": data.get("duplicate_charge_id"),
            }

    warned = next((f for f in streak if f.suspension_warning_sent_at), None)
    if warned is not None:
        consecutive = max(f.consecutive_count for f in streak)
        outreach_words: dict[str, str] = {
            PaymentFailure.OutreachStatus.TICKET: gettext(
                "a ticket was opened for the CSM group (%(ref)s)"
            )
            % {"ref": warned.csm_outreach_ref},
            PaymentFailure.OutreachStatus.NOTE: gettext(
                "the CSM group was asked on the latest ticket"
            ),
            PaymentFailure.OutreachStatus.PENDING: gettext("CSM outreach is being requested"),
            PaymentFailure.OutreachStatus.FAILED: gettext(
                "CSM outreach could not be requested yet"
            ),
            PaymentFailure.OutreachStatus.NO_CHANNEL: gettext(
                "no helpdesk channel reaches the CSM group"
            ),
        }
        outreach = outreach_words.get(warned.csm_outreach_status, "")
        message = ngettext(
            "Account suspension warning: %(count)d consecutive payment failure",
            "Account suspension warning: %(count)d consecutive payment failures",
            consecutive,
        ) % {"count": consecutive}
        if latest:
            message = gettext("%(message)s (latest %(amount)s, %(reason)s)") % {
                "message": message,
                "amount": format_money(latest.amount, latest.currency),
                "reason": failure_reason_text(latest),
            }
        message = (
            gettext("%(message)s; %(outreach)s.") % {"message": message, "outreach": outreach}
            if outreach
            else message + "."
        )
        alerts.append(
            {
                "type": "suspension_warning",
                "severity": "danger",
                "message": message,
                "data": {
                    "failure_id": warned.pk,
                    "consecutive_failures": consecutive,
                    "warned_at": _iso(warned.suspension_warning_sent_at),
                    "subscription_id": warned.subscription_id or None,
                    "note": warned.suspension_note_status,
                    "csm_outreach": {
                        "status": warned.csm_outreach_status,
                        "at": _iso(warned.csm_outreach_at),
                        "ref": warned.csm_outreach_ref or None,
                    },
                },
            }
        )
    return alerts


__all__ = [
    "DEFAULT_GRACE_DAYS",
    "SUSPENSION_THRESHOLD",
    "customer_failures",
    "failure_alerts_extend",
    "failure_reason_text",
    "failure_row",
]
