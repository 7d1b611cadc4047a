"""The context's alerts, most urgent first.

A failed payment (an open invoice with failed attempts, or the latest charge failed
within 30 days; three consecutive failures add the suspension warning), duplicate
charges (two succeeded charges of the same amount within the workspace's
``duplicate_window_hours``, in the last 90 days, the later one not refunded), pending
approvals, payment monitoring (after a duplicate charge), and the provider being
unavailable. ``selectors.failures.failure_alerts_extend`` then adds what Billing
Desk's failure records know (the actions that resolve a failure, the escalation).

Time changes two of them without a write (``horizon``): the failed payment alert of
a charge leaves with the charge's 30 days, a duplicate pair with its earlier charge's
90 days. The approvals' expiry and the monitoring's end are noted where they are read
(``actions.pending_approvals``, ``facts``).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.utils.translation import gettext, ngettext, pgettext

from ...models import MirrorCharge, MirrorInvoice
from ...money import format_money, money_json
from ...vocabulary import DeclineCode, action_label, decline, in_sentence, role_label
from ..duplicates import duplicate_charge_pairs
from ..failures import SUSPENSION_THRESHOLD, failure_alerts_extend
from ..mirror_freshness import customer_data_as_of
from .facts import CustomerFacts
from .horizon import horizon_note, window_exit
from .shapes import Obj, day, iso, shown_day, shown_moment

RECENT_FAILURE_DAYS = 30
DUPLICATE_DAYS = 90
GENERIC_FAILURE = "Payment failed"  # the vocabulary's words for a failure without a known code


def _decline_of(charge: MirrorCharge | None) -> DeclineCode:
    if charge is None:
        return decline()
    return decline(
        decline_code=charge.decline_code,
        failure_code=charge.failure_code,
        message=charge.failure_message,
    )


def failure_reason(charge: MirrorCharge | None) -> str:
    """The decline in an agent's words (``billing_app.vocabulary``), in the active language."""
    return _decline_of(charge).agent_text


def _roles_text(roles: list[str]) -> str:
    """``["manager", "vp"]`` → ``Manager or VP Approver`` (in the active language)."""
    labels = [role_label(str(r)) for r in roles or ()]
    if not labels:
        return ""
    text = labels[0]
    for label in labels[1:]:
        text = pgettext("approver roles", "%(first)s or %(second)s") % {
            "first": text,
            "second": label,
        }
    return text


def _provider_down(facts: CustomerFacts) -> Obj:
    as_of = customer_data_as_of(customer=facts.customer)
    if as_of:
        message = gettext(
            "The billing provider is not answering; showing mirrored data as of %(moment)s. "
            "Actions are unavailable until it recovers."
        ) % {"moment": shown_moment(as_of)}
    else:
        message = gettext(
            "The billing provider is not answering; showing mirrored data. "
            "Actions are unavailable until it recovers."
        )
    return {
        "type": "provider_down",
        "severity": "warning",
        "message": message,
        "data": {"as_of": iso(as_of)},
    }


def _recent_failure(facts: CustomerFacts) -> MirrorCharge | None:
    """The latest charge, when it failed within the last 30 days."""
    last = facts.last_charge
    window = timedelta(days=RECENT_FAILURE_DAYS)
    if last and last.status == "failed" and last.created and last.created >= facts.now - window:
        return last
    return None


def _invoice_charge(facts: CustomerFacts, invoice: MirrorInvoice | None) -> MirrorCharge | None:
    """The failed charge of the failing invoice (its payment intent's), among the 12 months'."""
    if invoice is None:
        return None
    return next(
        (c for c in facts.failed_charges if c.payment_intent_id == invoice.payment_intent_id),
        None,
    )


def _failure_message(
    amount: str, found: DeclineCode, attempts: int, next_attempt: datetime | None, consecutive: int
) -> str:
    if found.detail:  # "Payment failed (code words)"
        message = gettext("Payment of %(amount)s failed (%(reason)s)") % {
            "amount": amount,
            "reason": found.detail,
        }
    elif found.agent_words == GENERIC_FAILURE and not found.code:
        message = gettext("Payment of %(amount)s failed") % {"amount": amount}
    else:
        message = gettext("Payment of %(amount)s failed (%(reason)s)") % {
            "amount": amount,
            "reason": in_sentence(found.agent_text),
        }
    parts = [
        ngettext("%(message)s — %(count)d attempt.", "%(message)s — %(count)d attempts.", attempts)
        % {"message": message, "count": attempts}
    ]
    if next_attempt:
        parts.append(gettext("Next retry on %(date)s.") % {"date": shown_day(next_attempt)})
    if consecutive >= SUSPENSION_THRESHOLD:
        parts.append(
            gettext(
                "Three consecutive failures: send the account suspension warning; "
                "CSM outreach follows."
            )
        )
    return " ".join(parts)


def _payment_failed(
    facts: CustomerFacts, invoice: MirrorInvoice | None, recent: MirrorCharge | None
) -> Obj:
    charge = recent or _invoice_charge(facts, invoice)
    if invoice is not None:
        amount, currency = invoice.amount_remaining, invoice.currency
        attempts, next_attempt = invoice.attempt_count, invoice.next_payment_attempt
    else:
        assert recent is not None
        amount, currency = recent.amount, recent.currency
        attempts, next_attempt = facts.consecutive_failures, None
    consecutive = facts.consecutive_failures
    found = _decline_of(charge)
    reason = found.agent_text
    return {
        "type": "payment_failed",
        "severity": "danger",
        "message": _failure_message(
            format_money(amount, currency), found, attempts, next_attempt, consecutive
        ),
        "data": {
            "invoice_id": invoice.stripe_id if invoice else None,
            "charge_id": charge.stripe_id if charge else None,
            "amount": money_json(amount, currency),
            "failure_code": charge.failure_code if charge else "",
            "decline_code": charge.decline_code if charge else "",
            "failure_message": charge.failure_message if charge else "",
            "reason": reason,
            "attempt_count": attempts,
            "next_payment_attempt": iso(next_attempt),
            "consecutive_failures": consecutive,
            "suspension_warning": consecutive >= SUSPENSION_THRESHOLD,
            "hosted_invoice_url": (invoice.hosted_invoice_url or None) if invoice else None,
        },
    }


def duplicate_pairs(charges: list[MirrorCharge], window_hours: int, now: datetime) -> list[Obj]:
    """The duplicate pairs (``selectors.duplicates.duplicate_charge_pairs``) among the charges
    of the last 90 days, oldest pair first, as the alert's data."""
    window = timedelta(days=DUPLICATE_DAYS)
    since = now - window
    recent = [c for c in charges if c.created is not None and c.created >= since]
    pairs = duplicate_charge_pairs(recent, window_hours=window_hours)
    # A pair goes when its earlier charge leaves the 90 days (its later charge pairs with
    # the nearest earlier one, and any older one left before); a charge in no pair
    # changes no pair by leaving.
    for earlier, _ in pairs:
        horizon_note(window_exit(earlier.created, window))
    return [
        {
            "charge_ids": [earlier.stripe_id, later.stripe_id],
            "duplicate_charge_id": later.stripe_id,
            "amount": money_json(later.amount, later.currency),
            "minutes_apart": int(
                (later.created - earlier.created).total_seconds() // 60  # type: ignore[operator]
            ),
            "refundable": money_json(
                (later.amount_captured or later.amount) - later.amount_refunded, later.currency
            ),
        }
        for earlier, later in pairs
    ]


def _duplicate_alert(pair: Obj) -> Obj:
    return {
        "type": "duplicate_charge",
        "severity": "warning",
        "message": ngettext(
            "Possible duplicate charge: two charges of %(amount)s %(minutes)d minute apart.",
            "Possible duplicate charge: two charges of %(amount)s %(minutes)d minutes apart.",
            pair["minutes_apart"],
        )
        % {"amount": pair["amount"]["display"], "minutes": pair["minutes_apart"]},
        "data": pair,
    }


def _approval_alert(approval: Obj) -> Obj:
    roles = _roles_text(approval["required_roles"]) or gettext("an approver")
    words = {"action": action_label(approval["kind"]), "roles": roles}
    if approval["amount"]:
        message = gettext("%(action)s of %(amount)s awaits approval by %(roles)s.") % {
            **words,
            "amount": approval["amount"]["display"],
        }
    else:
        message = gettext("%(action)s awaits approval by %(roles)s.") % words
    return {
        "type": "pending_approval",
        "severity": "info",
        "message": message,
        "data": {"approval_id": approval["id"], "action_id": approval["action_id"]},
    }


def _monitoring_alert(until: datetime) -> Obj:
    return {
        "type": "payment_monitoring",
        "severity": "info",
        "message": gettext("Payment monitoring is on until %(date)s after a duplicate charge.")
        % {"date": shown_day(until)},
        "data": {"until": day(until)},
    }


def customer_alerts(
    facts: CustomerFacts, *, provider_status: str, pending_approvals: list[Obj]
) -> list[Obj]:
    alerts: list[Obj] = []
    if provider_status != "ok":
        alerts.append(_provider_down(facts))
    failing_invoice = next((i for i in facts.open_invoices if i.attempt_count > 0), None)
    recent_failure = _recent_failure(facts)
    if recent_failure is not None and (
        failing_invoice is None or _invoice_charge(facts, failing_invoice) is not recent_failure
    ):
        # The alert (or the charge it names) changes when the failure is 30 days old; with a
        # failing invoice naming the same charge, nothing shows differently then.
        horizon_note(window_exit(recent_failure.created, timedelta(days=RECENT_FAILURE_DAYS)))
    if failing_invoice is not None or recent_failure is not None:
        alerts.append(_payment_failed(facts, failing_invoice, recent_failure))
    window = facts.workspace.duplicate_window_hours
    alerts += [_duplicate_alert(p) for p in duplicate_pairs(facts.charges, window, facts.now)]
    alerts += [_approval_alert(a) for a in pending_approvals]
    if facts.monitoring_until:
        alerts.append(_monitoring_alert(facts.monitoring_until))
    failure_alerts_extend(
        workspace=facts.workspace,
        customer_id=facts.customer.stripe_id,
        alerts=alerts,
        charges=facts.charges,
        now=facts.now,
    )
    return alerts
