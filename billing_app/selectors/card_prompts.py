"""Who should get a card-update prompt today (the daily scan's read side).

Two reasons, each naming the card the prompt is about and the *window* that makes it
once-only (``CardPrompt``'s unique key is workspace, customer, card, window):

* **expiring** — a live, automatically charged subscription whose card (the
  subscription's default payment method, else the customer's) expires within the
  workspace's ``card_prompt_window_days``: the card is valid to the end of its expiry
  month. Window ``exp-YYYY-MM``: one prompt per card and expiry, however many scans.
* **failed** — the customer's latest open payment failure, recent (``FAILED_LOOKBACK``),
  for a card reason (``PaymentFailure.reason_category`` other than ``other``: expired,
  declined, not recognised, insufficient funds — a new card helps with each). Window
  ``fail-<invoice>`` (else the charge): one prompt per failed invoice and card, whatever
  the number of retries that fail on it.

Customers who unsubscribed are left out here and checked again when the email is sent.
Reads the mirror only; the writes are ``services.card_prompts.scan``.
"""

from __future__ import annotations

import calendar
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db.models import Q

from ..models import (
    CustomerOptOut,
    MirrorCharge,
    MirrorCustomer,
    MirrorPaymentMethod,
    MirrorSubscription,
    PaymentFailure,
    Workspace,
)
from ..subscriptions import BILLING_STATUSES

# A failure older than this gets no prompt (the first scan after enabling prompts does
# not mail every customer who ever had a declined card).
FAILED_LOOKBACK = timedelta(days=14)
CARD_FAILURE_CATEGORIES = (
    PaymentFailure.ReasonCategory.CARD_EXPIRED,
    PaymentFailure.ReasonCategory.CARD_DECLINED,
    PaymentFailure.ReasonCategory.CARD_NOT_RECOGNIZED,
    PaymentFailure.ReasonCategory.INSUFFICIENT_FUNDS,
)
BATCH = 500


@dataclass(frozen=True)
class PromptCandidate:
    customer_id: str
    payment_method_id: str
    reason: str  # CardPrompt.Reason
    window: str
    failure_id: int | None = None


def card_expires_at(exp_year: int, exp_month: int) -> datetime:
    """The first moment a card with this expiry no longer works (the next month's start)."""
    last_day = calendar.monthrange(exp_year, exp_month)[1]
    return datetime(exp_year, exp_month, last_day, tzinfo=UTC) + timedelta(days=1)


def _months(start: datetime, end: datetime) -> list[tuple[int, int]]:
    months, year, month = [], start.year, start.month
    while (year, month) <= (end.year, end.month):
        months.append((year, month))
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return months


def _opted_out(workspace: Workspace) -> set[str]:
    return set(
        CustomerOptOut.objects.filter(workspace=workspace).values_list("customer_id", flat=True)
    )


def _expiring(workspace: Workspace, now: datetime, skip: set[str]) -> Iterator[PromptCandidate]:
    horizon = now + timedelta(days=workspace.card_prompt_window_days)
    months = Q()
    for year, month in _months(now, horizon):
        months |= Q(card_exp_year=year, card_exp_month=month)
    cards = {
        pm["stripe_id"]: pm
        for pm in MirrorPaymentMethod.objects.filter(workspace=workspace, type="card")
        .filter(months)
        .values("stripe_id", "customer_id", "card_exp_year", "card_exp_month")
    }
    if not cards:
        return
    live = (
        MirrorSubscription.objects.filter(
            workspace=workspace,
            status__in=BILLING_STATUSES,
            collection_method="charge_automatically",
            cancel_at_period_end=False,
        )
        .order_by("customer_id")
        .values_list("customer_id", "default_payment_method_id")
    )
    by_customer: dict[str, set[str]] = {}
    for customer_id, pm_id in live.iterator(chunk_size=BATCH):
        by_customer.setdefault(customer_id, set()).add(pm_id)
    defaults = dict(
        MirrorCustomer.objects.filter(
            workspace=workspace, deleted=False, stripe_id__in=list(by_customer)
        ).values_list("stripe_id", "default_payment_method_id")
    )
    for customer_id in sorted(by_customer):
        if customer_id in skip or customer_id not in defaults:
            continue
        charged = {pm or defaults[customer_id] for pm in by_customer[customer_id]}
        for pm_id in sorted(charged):
            card = cards.get(pm_id)
            if card is None or card["customer_id"] not in ("", customer_id):
                continue
            exp_year, exp_month = card["card_exp_year"], card["card_exp_month"]
            if not (exp_year and exp_month):
                continue
            expires = card_expires_at(exp_year, exp_month)
            if now < expires <= horizon:
                yield PromptCandidate(
                    customer_id=customer_id,
                    payment_method_id=pm_id,
                    reason="expiring",
                    window=f"exp-{exp_year:04d}-{exp_month:02d}",
                )


def _failed(workspace: Workspace, now: datetime, skip: set[str]) -> Iterator[PromptCandidate]:
    recent = (
        PaymentFailure.objects.filter(workspace=workspace, failed_at__gte=now - FAILED_LOOKBACK)
        .order_by("customer_id", "-failed_at", "-id")
        .values(
            "id",
            "customer_id",
            "invoice_id",
            "charge_id",
            "attempt_key",
            "reason_category",
            "recovered_at",
        )
    )
    latest: dict[str, Any] = {}
    for row in recent.iterator(chunk_size=BATCH):
        latest.setdefault(row["customer_id"], row)  # the customer's latest failure only
    wanted = {
        cid: row
        for cid, row in latest.items()
        if cid not in skip
        and row["recovered_at"] is None
        and row["reason_category"] in CARD_FAILURE_CATEGORIES
    }
    if not wanted:
        return
    charge_cards = dict(
        MirrorCharge.objects.filter(
            workspace=workspace, stripe_id__in=[r["charge_id"] for r in wanted.values()]
        ).values_list("stripe_id", "payment_method_id")
    )
    defaults = dict(
        MirrorCustomer.objects.filter(
            workspace=workspace, deleted=False, stripe_id__in=list(wanted)
        ).values_list("stripe_id", "default_payment_method_id")
    )
    for customer_id in sorted(wanted):
        if customer_id not in defaults:
            continue
        row = wanted[customer_id]
        pm_id = charge_cards.get(row["charge_id"]) or defaults[customer_id]
        if not pm_id:
            continue
        yield PromptCandidate(
            customer_id=customer_id,
            payment_method_id=pm_id,
            reason="failed",
            window=f"fail-{row['invoice_id'] or row['charge_id'] or row['attempt_key']}"[:255],
            failure_id=row["id"],
        )


def card_prompt_candidates(*, workspace: Workspace, now: datetime) -> list[PromptCandidate]:
    """Every prompt the scan should make now (existing prompts are the writer's business)."""
    skip = _opted_out(workspace)
    return [*_failed(workspace, now, skip), *_expiring(workspace, now, skip)]


def card_prompt_facts(*, workspace: Workspace, customer_id: str, payment_method_id: str) -> dict:
    """What the email says: the customer's name, email and language tags, and the card."""
    customer = (
        MirrorCustomer.objects.filter(workspace=workspace, stripe_id=customer_id, deleted=False)
        .values("name", "email", "data")
        .first()
    )
    card = (
        MirrorPaymentMethod.objects.filter(workspace=workspace, stripe_id=payment_method_id)
        .values("card_brand", "card_last4", "card_exp_month", "card_exp_year")
        .first()
    )
    return {"customer": customer, "card": card}
