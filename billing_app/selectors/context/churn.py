"""Churn risk: a pure function of the customer's facts (no database access).

Points per signal: payment failed in the last 90 days (2), subscription past due
(3), cancellation scheduled (4), no live subscription left (4), collection paused
(2), seat utilisation under 50% (2), a disputed charge in 12 months (3), a
downgrade scheduled or made in 90 days (2), a refund pattern — the workspace's
``refund_pattern_count`` refunds within ``refund_pattern_days`` (2), card on file
expired (1), trial ending within 7 days with no payment method (1). 0–1 point is
Low, 2–3 Medium, 4 or more High. The reasons are the signals found; with none, the
positive signals that hold ("on-time payments": paid invoices and no failure in 12
months; "high usage": seat utilisation of 80% or more).

Time moves these signals without a write (``horizon``): the failures of 90 days and of
12 months (``facts``), a downgrade made leaving the 90 days of actions, the oldest
refund of the pattern leaving its window, a trial coming within 7 days of its end, a
card expiring (``payment.payment_method_block``).
"""

from __future__ import annotations

from datetime import timedelta

from django.utils.translation import gettext, gettext_noop, ngettext

from ...models import BillingAction
from .facts import CustomerFacts, action_window_exit
from .horizon import horizon_note, horizon_note_real, window_exit
from .shapes import Obj, ts
from .subscription import is_paused

CHURN_LEVELS = (
    ("low", gettext_noop("Low")),
    ("medium", gettext_noop("Medium")),
    ("high", gettext_noop("High")),
)


def _recent_downgrade(facts: CustomerFacts) -> bool:
    """A plan change down made in the actions read (90 days), or one scheduled."""
    made = [
        a
        for a in facts.actions
        if a.kind == "change_plan"
        and a.status == BillingAction.Status.SUCCEEDED
        and (a.result or {}).get("direction") == "downgrade"
    ]
    scheduled = any((s.get("metadata") or {}).get("pending_price_id") for s in facts.live)
    if made and not scheduled:
        # The signal goes when the last downgrade made leaves the actions read.
        exits = [action_window_exit(a) for a in made]
        horizon_note_real(max((e for e in exits if e is not None), default=None))
    return bool(made) or scheduled


def _trial_ending_unpaid(facts: CustomerFacts, payment_method: Obj | None) -> bool:
    primary = facts.primary
    if not primary or primary.get("status") != "trialing" or payment_method is not None:
        return False
    trial_end = ts(primary.get("trial_end"))
    if trial_end is None:
        return False
    horizon_note(trial_end - timedelta(days=7))  # within 7 days of its end from then on
    return trial_end - facts.now <= timedelta(days=7)


def churn_signals(
    facts: CustomerFacts, *, seat_utilization: int | None, payment_method: Obj | None
) -> list[tuple[int, str]]:
    """The risk signals found, as (points, reason)."""
    live = facts.live
    workspace = facts.workspace
    signals: list[tuple[int, str]] = []
    if facts.failures_90:
        n = len(facts.failures_90)
        signals.append(
            (
                2,
                ngettext(
                    "%(count)d failed payment in 90 days", "%(count)d failed payments in 90 days", n
                )
                % {"count": n},
            )
        )
    if any(s.get("status") in {"past_due", "unpaid"} for s in live):
        signals.append((3, gettext("subscription past due")))
    if any(s.get("cancel_at_period_end") or s.get("cancel_at") for s in live):
        signals.append((4, gettext("cancellation scheduled")))
    if facts.subs and not live:
        signals.append((4, gettext("no active subscription")))
    if any(is_paused(s) for s in live):
        signals.append((2, gettext("collection paused")))
    if seat_utilization is not None and seat_utilization < 50:
        signals.append((2, gettext("low seat utilization (%(pct)d%%)") % {"pct": seat_utilization}))
    if facts.disputed_charges:
        signals.append((3, gettext("disputed charge")))
    if _recent_downgrade(facts):
        signals.append((2, gettext("recent downgrade")))
    if facts.refund_count >= workspace.refund_pattern_count:
        # The count (in the reason) drops when the oldest refund leaves the window.
        horizon_note(
            window_exit(facts.refund_oldest, timedelta(days=workspace.refund_pattern_days))
        )
        signals.append(
            (
                2,
                ngettext(
                    "refund pattern (%(count)d refund in %(days)d days)",
                    "refund pattern (%(count)d refunds in %(days)d days)",
                    facts.refund_count,
                )
                % {"count": facts.refund_count, "days": workspace.refund_pattern_days},
            )
        )
    if payment_method and payment_method["expired"]:
        signals.append((1, gettext("card on file expired")))
    if _trial_ending_unpaid(facts, payment_method):
        signals.append((1, gettext("trial ending without a payment method")))
    return signals


def churn_risk(
    facts: CustomerFacts, *, seat_utilization: int | None, payment_method: Obj | None
) -> Obj:
    """The panel's ``churn_risk`` block; ``payment_method`` is the context's payment method block."""
    signals = churn_signals(facts, seat_utilization=seat_utilization, payment_method=payment_method)
    score = sum(points for points, _ in signals)
    level = 0 if score <= 1 else 1 if score <= 3 else 2
    reasons = [reason for _, reason in signals]
    if not reasons:
        if facts.revenue > 0 and not facts.failed_charges:
            reasons.append(gettext("on-time payments"))
        if seat_utilization is not None and seat_utilization >= 80:
            reasons.append(gettext("high usage"))
        if not reasons:
            reasons.append(gettext("no risk signals"))
    return {
        "level": CHURN_LEVELS[level][0],
        "label": gettext(CHURN_LEVELS[level][1]),
        "score": score,
        "reasons": reasons,
    }
