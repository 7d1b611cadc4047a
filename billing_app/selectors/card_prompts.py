"""Who should get a card-update prompt today (the daily scan's read side).

Two reasons, each naming the card the prompt is about and the *window* that makes it
once-only (``CardPrompt``'s unique key is workspace, customer, card, window):

* **expiring** — a live, automatically charged subscription whose card (the
  subscription's default payment method, else the customer's) expires within the
  workspace's ``card_prompt_window_days``: the card is valid to the end of its expiry
  month. Window ``exp-YYYY-MM``: one prompt per card and expiry, however many scans.
  Read from the expiring cards (few) to the subscriptions they pay, in chunks.
* **failed** — the customer's latest open payment failure, recent (``FAILED_LOOKBACK``),
  for a card reason (``PaymentFailure.reason_category`` other than ``other``: expired,
  declined, not recognised, insufficient funds — a new card helps with each), when the
  failed charge's card is known and is still the one its scope is charged (else the
  customer replaced it since). Window ``fail-<invoice>`` (else the charge): one prompt per
  failed invoice and card, whatever the number of retries that fail on it.

Each candidate names its scope, ``subscription_id``: the subscription whose card it is
(blank for a failure outside a subscription). A card with a failed payment gets only the
failure's prompt. ``card_prompt_obsolete`` re-checks a queued prompt when it is sent.

Customers who unsubscribed are left out here and checked again when the email is sent.
Reads the mirror only; the writes are ``services.card_prompts.scan``.
"""

from __future__ import annotations

import calendar
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from django.db.models import Q

from ..models import (
    CardPrompt,
    CustomerOptOut,
    MirrorCharge,
    MirrorCustomer,
    MirrorInvoice,
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
# An "expiring" email waits while the same card had another prompt this recently (the
# failed-payment email already asked for a new card).
RECENT_PROMPT = timedelta(days=7)
BATCH = 500

T = TypeVar("T")


def _chunks(values: Iterable[T], size: int = BATCH) -> Iterator[list[T]]:
    """``values`` in lists of at most ``size``: no unbounded ``IN (…)``."""
    chunk: list[T] = []
    for value in values:
        chunk.append(value)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


@dataclass(frozen=True)
class PromptCandidate:
    customer_id: str
    payment_method_id: str
    reason: str  # CardPrompt.Reason
    window: str
    failure_id: int | None = None
    # The subscription the card pays ("" when the prompt is about the customer's default only).
    subscription_id: str = ""


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


def _live_subscriptions(workspace: Workspace) -> Any:
    return MirrorSubscription.objects.filter(
        workspace=workspace,
        status__in=BILLING_STATUSES,
        collection_method="charge_automatically",
        cancel_at_period_end=False,
    )


def _customer_defaults(workspace: Workspace, customer_ids: Iterable[str]) -> dict[str, str]:
    """Each live (not deleted) customer's default payment method ("" for none)."""
    defaults: dict[str, str] = {}
    for chunk in _chunks(sorted(set(customer_ids))):
        defaults.update(
            MirrorCustomer.objects.filter(
                workspace=workspace, deleted=False, stripe_id__in=chunk
            ).values_list("stripe_id", "default_payment_method_id")
        )
    return defaults


def _expiring(workspace: Workspace, now: datetime, skip: set[str]) -> Iterator[PromptCandidate]:
    """From the cards expiring within the window (few) to the live subscriptions they pay."""
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
    # (subscription, customer) → the card it is charged: its own, else the customer's default
    charged: dict[tuple[str, str], str] = {}
    own_payers: set[str] = set()
    for chunk in _chunks(sorted(cards)):
        for sub_id, customer_id, pm_id in (
            _live_subscriptions(workspace)
            .filter(default_payment_method_id__in=chunk)
            .values_list("stripe_id", "customer_id", "default_payment_method_id")
        ):
            charged[(sub_id, customer_id)] = pm_id
            own_payers.add(customer_id)
    by_default: dict[str, str] = {}
    for chunk in _chunks(sorted(cards)):
        by_default.update(
            MirrorCustomer.objects.filter(
                workspace=workspace, deleted=False, default_payment_method_id__in=chunk
            ).values_list("stripe_id", "default_payment_method_id")
        )
    for chunk in _chunks(sorted(by_default)):
        for sub_id, customer_id in (
            _live_subscriptions(workspace)
            .filter(customer_id__in=chunk, default_payment_method_id="")
            .values_list("stripe_id", "customer_id")
        ):
            charged[(sub_id, customer_id)] = by_default[customer_id]
    live = set(by_default) | set(_customer_defaults(workspace, own_payers - set(by_default)))
    seen: set[tuple[str, str]] = set()
    for (sub_id, customer_id), pm_id in sorted(charged.items()):
        if customer_id in skip or customer_id not in live or (customer_id, pm_id) in seen:
            continue  # one prompt per card: the first subscription (by id) it pays
        card = cards[pm_id]
        if card["customer_id"] not in ("", customer_id):
            continue
        exp_year, exp_month = card["card_exp_year"], card["card_exp_month"]
        if not (exp_year and exp_month):
            continue
        expires = card_expires_at(exp_year, exp_month)
        if now < expires <= horizon:
            seen.add((customer_id, pm_id))
            yield PromptCandidate(
                customer_id=customer_id,
                payment_method_id=pm_id,
                reason="expiring",
                window=f"exp-{exp_year:04d}-{exp_month:02d}",
                subscription_id=sub_id,
            )


def _scope_cards(
    workspace: Workspace, customer_ids: Iterable[str], subscription_ids: Iterable[str]
) -> tuple[dict[str, str], dict[str, str]]:
    """The customers' defaults and the subscriptions' own cards ("": the customer's)."""
    subscriptions: dict[str, str] = {}
    for chunk in _chunks(sorted({s for s in subscription_ids if s})):
        subscriptions.update(
            MirrorSubscription.objects.filter(workspace=workspace, stripe_id__in=chunk).values_list(
                "stripe_id", "default_payment_method_id"
            )
        )
    return _customer_defaults(workspace, customer_ids), subscriptions


def scope_card(
    *,
    customer_id: str,
    subscription_id: str,
    defaults: dict[str, str],
    subscriptions: dict[str, str],
) -> str:
    """The card charged for a prompt's scope: the subscription's own, else the customer's
    invoice default ("" when none is known)."""
    return subscriptions.get(subscription_id, "") or defaults.get(customer_id, "")


def _failed(workspace: Workspace, now: datetime, skip: set[str]) -> Iterator[PromptCandidate]:
    recent = (
        PaymentFailure.objects.filter(workspace=workspace, failed_at__gte=now - FAILED_LOOKBACK)
        .order_by("customer_id", "-failed_at", "-id")
        .values(
            "id",
            "customer_id",
            "subscription_id",
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
    charge_cards: dict[str, str] = {}
    for chunk in _chunks(sorted({r["charge_id"] for r in wanted.values() if r["charge_id"]})):
        charge_cards.update(
            MirrorCharge.objects.filter(workspace=workspace, stripe_id__in=chunk).values_list(
                "stripe_id", "payment_method_id"
            )
        )
    invoice_subscriptions: dict[str, str] = {}
    for chunk in _chunks(
        sorted(
            {
                r["invoice_id"]
                for r in wanted.values()
                if r["invoice_id"] and not r["subscription_id"]
            }
        )
    ):
        invoice_subscriptions.update(
            MirrorInvoice.objects.filter(workspace=workspace, stripe_id__in=chunk).values_list(
                "stripe_id", "subscription_id"
            )
        )
    scopes = {
        cid: row["subscription_id"] or invoice_subscriptions.get(row["invoice_id"], "")
        for cid, row in wanted.items()
    }
    defaults, subscriptions = _scope_cards(workspace, wanted, scopes.values())
    for customer_id in sorted(wanted):
        if customer_id not in defaults:
            continue
        row = wanted[customer_id]
        pm_id = charge_cards.get(row["charge_id"], "")
        current = scope_card(
            customer_id=customer_id,
            subscription_id=scopes[customer_id],
            defaults=defaults,
            subscriptions=subscriptions,
        )
        # The failed charge's card unknown: nothing to name. Another card charged now: the
        # customer already replaced it since the failure (the retry will use the new one).
        if not pm_id or current != pm_id:
            continue
        yield PromptCandidate(
            customer_id=customer_id,
            payment_method_id=pm_id,
            reason="failed",
            window=f"fail-{row['invoice_id'] or row['charge_id'] or row['attempt_key']}"[:255],
            failure_id=row["id"],
            subscription_id=scopes[customer_id],
        )


def card_prompt_candidates(*, workspace: Workspace, now: datetime) -> list[PromptCandidate]:
    """Every prompt the scan should make now (existing prompts are the writer's business).

    One card, one email: a card with a failed payment gets the failure's prompt, not also
    an "expiring" one the same day.
    """
    skip = _opted_out(workspace)
    failed = list(_failed(workspace, now, skip))
    failing = {(c.customer_id, c.payment_method_id) for c in failed}
    expiring = [
        c
        for c in _expiring(workspace, now, skip)
        if (c.customer_id, c.payment_method_id) not in failing
    ]
    return [*failed, *expiring]


def card_prompts_existing(
    *, workspace: Workspace, candidates: Sequence[PromptCandidate], now: datetime
) -> tuple[set[tuple[str, str, str]], set[tuple[str, str]]]:
    """For the scan, in one query per ``BATCH`` cards: the candidates' prompts that exist
    already (customer, card, window), and the (customer, card) pairs prompted recently —
    queued, or sent within ``RECENT_PROMPT`` of ``now``."""
    keys: set[tuple[str, str, str]] = set()
    recent: set[tuple[str, str]] = set()
    since = now - RECENT_PROMPT
    for chunk in _chunks(sorted({c.payment_method_id for c in candidates})):
        for customer_id, pm_id, window, status, sent_at in CardPrompt.objects.filter(
            workspace=workspace, payment_method_id__in=chunk
        ).values_list("customer_id", "payment_method_id", "window", "status", "sent_at"):
            keys.add((customer_id, pm_id, window))
            if status == CardPrompt.Status.PENDING or (sent_at is not None and sent_at >= since):
                recent.add((customer_id, pm_id))
    return keys, recent


def card_prompt_obsolete(*, prompt: CardPrompt, now: datetime) -> str:
    """Why a queued prompt should no longer be sent (its error code), or "" while it holds.

    * ``card_replaced`` — the scope's card (the subscription's own, else the customer's
      default) is no longer the prompted one;
    * ``subscription_ended`` — an expiring card's subscription ended or is cancelling;
    * ``card_not_expiring`` — an expiring card's expiry changed (renewed) or has passed;
    * ``failure_resolved`` — the failed payment was recovered since;
    * ``recently_prompted`` — an expiring card already got another email within
      ``RECENT_PROMPT``.
    """
    workspace = prompt.workspace
    defaults, subscriptions = _scope_cards(
        workspace, [prompt.customer_id], [prompt.subscription_id]
    )
    if (
        prompt.subscription_id
        and prompt.reason == CardPrompt.Reason.EXPIRING
        and not _live_subscriptions(workspace).filter(stripe_id=prompt.subscription_id).exists()
    ):
        return "subscription_ended"
    current = scope_card(
        customer_id=prompt.customer_id,
        subscription_id=prompt.subscription_id,
        defaults=defaults,
        subscriptions=subscriptions,
    )
    if current != prompt.payment_method_id:
        return "card_replaced"
    if prompt.reason == CardPrompt.Reason.FAILED:
        key = prompt.window.removeprefix("fail-")
        failure = (
            PaymentFailure.objects.filter(workspace=workspace, customer_id=prompt.customer_id)
            .filter(Q(invoice_id=key) | Q(charge_id=key) | Q(attempt_key=key))
            .order_by("-failed_at", "-id")
            .values("recovered_at")
            .first()
        )
        return "failure_resolved" if failure is None or failure["recovered_at"] else ""
    card = (
        MirrorPaymentMethod.objects.filter(workspace=workspace, stripe_id=prompt.payment_method_id)
        .values("card_exp_year", "card_exp_month")
        .first()
    )
    if not card or not (card["card_exp_year"] and card["card_exp_month"]):
        return "card_not_expiring"
    window = f"exp-{card['card_exp_year']:04d}-{card['card_exp_month']:02d}"
    if window != prompt.window or now >= card_expires_at(
        card["card_exp_year"], card["card_exp_month"]
    ):
        return "card_not_expiring"
    if (
        CardPrompt.objects.filter(
            workspace=workspace,
            customer_id=prompt.customer_id,
            payment_method_id=prompt.payment_method_id,
            status=CardPrompt.Status.SENT,
            sent_at__gte=now - RECENT_PROMPT,
        )
        .exclude(pk=prompt.pk)
        .exists()
    ):
        return "recently_prompted"
    return ""


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
