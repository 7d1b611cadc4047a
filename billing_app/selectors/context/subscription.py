"""The subscriptions block: which subscription is primary, what each one sells, what comes next.

* **Primary subscription** — among the subscriptions billing now (the rulebook's
  ``BILLING_STATUSES``: active, trialing, past_due, unpaid), the one whose plan item
  is worth most per month (the plan item is the rulebook's ``plan_item``: the largest
  monthly item whose product is not marked ``metadata.addon = "true"``). Add-ons are
  the primary's other items plus the items of billing subscriptions that hold only
  add-on products (add-ons billed on their own cycle, e.g. yearly on the contract
  anniversary).
* **Next invoice** — the earliest renewal (or trial end) among the subscriptions that
  will renew, and what the ones renewing that day will bill together. What one
  subscription's next invoice bills is the one rule of ``billing_app.invoice_rules``
  (Stripe's upcoming invoice: the items due, a scheduled price change, the running
  discounts — a ``once`` coupon until an invoice consumes it, percentages and
  amounts off — and the subscription's exclusive tax rates), shared with the
  overcharge investigation's ``selectors.breakdown.next_invoice``.

Pure functions over the mirrored Stripe-shaped JSON; the products come from ``Catalog``.

Only an annual contract's end moves with the clock (to the next anniversary of the
start, noted for the ``horizon``). The dates the provider acts upon — renewals, trial
ends, scheduled cancellations, a pause's end — are shown as the mirror holds them and
never compared with now: what happens on them reaches the context as the provider's
webhooks (a write), not as time passing.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from dateutil.relativedelta import relativedelta
from django.utils.translation import gettext, gettext_noop

from ...invoice_rules import (
    RenewalItem,
    ScheduledPrice,
    discount_view_from_stripe,
    exclusive_tax_rate,
    next_invoice_amounts,
    renewal_at,
    renews,
)
from ...money import money_json, short_money
from ...subscriptions import (
    is_billing,
    monthly_amount,
    period_amount,
    price_view_from_stripe,
    seats_used,
)
from ...vocabulary import PAUSE_BEHAVIORS
from .horizon import horizon_note
from .products import Catalog, interval_text, interval_words, period_words, sub_items
from .shapes import Obj, day, minor_units, ts
from .subscription_state import (
    SubscriptionFacts,
    applicable_kinds,
    date_words,
    state_label,
    subscription_state,
)

# Which billing subscription is primary when two are worth the same: the healthiest first.
STATUS_ORDER = {"active": 0, "past_due": 1, "unpaid": 2, "trialing": 3, "paused": 4}
# States in which the subscription does not renew on its own (no "renews …" line).
STOPPED_STATES = frozenset({"paused", "ending", "canceled"})
CYCLE_LABEL = {
    "day": gettext_noop("Daily"),
    "week": gettext_noop("Weekly"),
    "month": gettext_noop("Monthly"),
    "year": gettext_noop("Annual"),
}
# Stripe's subscription statuses as the panel labels them (in English; read translated).
STATUS_LABELS = {
    "active": gettext_noop("Active"),
    "trialing": gettext_noop("Trialing"),
    "past_due": gettext_noop("Past due"),
    "unpaid": gettext_noop("Unpaid"),
    "canceled": gettext_noop("Canceled"),
    "incomplete": gettext_noop("Incomplete"),
    "incomplete_expired": gettext_noop("Incomplete expired"),
    "paused": gettext_noop("Paused"),
}


def status_label(status: str) -> str:
    """A Stripe subscription status in words (``past_due`` → ``Past due``)."""
    label = STATUS_LABELS.get(status)
    return gettext(label) if label else status.replace("_", " ").capitalize()


def per_period(amount: str, interval: str) -> str:
    """``$1,050/month``: an amount for each period (``interval`` already in words)."""
    return gettext("%(amount)s/%(interval)s") % {"amount": amount, "interval": interval}


# --- periods and discounts ------------------------------------------------------------


def _period_bound(sub: Obj, key: str) -> int | None:
    """The earliest ``key`` among the items (Stripe moved periods onto items), else the sub's."""
    bounds = [int(i[key]) for i in sub_items(sub) if i.get(key)]
    return min(bounds) if bounds else sub.get(key)


def period_end(sub: Obj) -> int | None:
    return _period_bound(sub, "current_period_end")


def period_start(sub: Obj) -> int | None:
    return _period_bound(sub, "current_period_start")


def is_paused(sub: Obj) -> bool:
    return bool(sub.get("pause_collection"))


def discount_of(sub: Obj, discounts: dict[str, Obj]) -> Obj | None:
    """The subscription's discount still in force (expanded, else the mirrored one)."""
    for ref in sub.get("discounts") or []:
        obj = ref if isinstance(ref, dict) else discounts.get(str(ref))
        if obj and not obj.get("deleted"):
            return obj
    return None


def coupon_of(discount: Obj | None) -> Obj:
    if not discount:
        return {}
    source = discount.get("source") or {}
    coupon = (
        source.get("coupon") if isinstance(source.get("coupon"), dict) else discount.get("coupon")
    )
    return coupon if isinstance(coupon, dict) else {}


def _discount_running(discount: Obj | None, at: datetime) -> bool:
    if not discount:
        return False
    end = ts(discount.get("end"))
    return end is None or end > at


def percent_factor(discount: Obj | None, at: datetime) -> Decimal:
    """The share of recurring revenue left after a percentage discount running at ``at``."""
    if not _discount_running(discount, at):
        return Decimal(1)
    coupon = coupon_of(discount)
    if coupon.get("duration") == "once" or coupon.get("percent_off") is None:
        return Decimal(1)
    return 1 - Decimal(str(coupon["percent_off"])) / 100


# --- the primary subscription ------------------------------------------------------------


def primary_subscription(subs: list[Obj], catalog: Catalog) -> Obj | None:
    """The subscription the panel leads with (see the module docstring)."""
    with_plan = [
        s for s in subs if is_billing(s.get("status")) and catalog.plan_item(s) is not None
    ]
    if with_plan:
        return max(
            with_plan,
            key=lambda s: (
                -STATUS_ORDER.get(str(s.get("status")), 9),
                monthly_amount(catalog.view(catalog.plan_item(s) or {})),
            ),
        )
    if subs:
        return next((s for s in subs if catalog.plan_item(s) is not None), subs[0])
    return None


def addon_entry(item: Obj, catalog: Catalog, currency: str) -> Obj:
    view = catalog.view(item)
    price = item.get("price") or {}
    monthly = minor_units(monthly_amount(view))
    return {
        "item_id": item.get("id"),
        "name": catalog.name(price),
        "price": money_json(monthly, currency),
        "interval": "month",
        "display": per_period(short_money(monthly, currency), period_words("month")),
        "billed_price": money_json(period_amount(view), currency),
        "billed_interval": interval_text(price),
        "quantity": view.quantity,
        "price_id": price.get("id"),
    }


def subscription_blocks(
    subs: list[Obj],
    *,
    primary: Obj | None,
    catalog: Catalog,
    discounts: dict[str, Obj],
    pending_prices: dict[str, Obj],
    currency: str,
    now: datetime,
) -> tuple[Obj | None, list[Obj]]:
    """The primary subscription's block and every subscription's (billing ones first)."""
    # Billing subscriptions of add-ons only show their items as the primary's add-ons.
    extra_addons = [
        addon_entry(i, catalog, str(s.get("currency") or currency).upper())
        for s in subs
        if is_billing(s.get("status")) and catalog.plan_item(s) is None
        for i in sub_items(s)
    ]

    def block(sub: Obj) -> Obj:
        return subscription_block(
            sub,
            catalog=catalog,
            discounts=discounts,
            pending_prices=pending_prices,
            extra_addons=extra_addons if sub is primary else [],
            now=now,
        )

    primary_block = block(primary) if primary is not None else None
    ordered = sorted(subs, key=lambda s: (not is_billing(s.get("status")), s is not primary))
    return primary_block, [
        primary_block if primary_block is not None and s is primary else block(s) for s in ordered
    ]


# --- one subscription -----------------------------------------------------------------------


def _plan_block(item: Obj, catalog: Catalog, currency: str) -> Obj:
    price = item.get("price") or {}
    view = catalog.view(item)
    amount = period_amount(view)
    interval = interval_text(price)
    name = catalog.name(price)
    return {
        "name": name,
        "price": money_json(amount, currency),
        "unit_amount": money_json(view.price.unit_amount or 0, currency),
        "quantity": view.quantity,
        "interval": interval,
        "display": gettext("%(name)s (%(price)s)")
        % {"name": name, "price": per_period(short_money(amount, currency), interval_words(price))},
        "price_id": price.get("id"),
        "item_id": item.get("id"),
    }


def _seats_block(item: Obj, catalog: Catalog, meta: Obj) -> Obj | None:
    total = catalog.view(item).quantity
    used = seats_used(item.get("metadata"), meta)
    if total <= 1 and used is None:  # a flat plan (quantity 1) has no seats to show
        return None
    return {
        "used": used,
        "total": total,
        "utilization_pct": round(used * 100 / total) if used is not None and total else None,
        "item_id": item.get("id"),
    }


def _discount_block(discount: Obj | None) -> Obj | None:
    if not discount:
        return None
    coupon = coupon_of(discount)
    return {
        "id": discount.get("id"),
        "coupon_id": coupon.get("id"),
        "name": coupon.get("name"),
        "percent_off": coupon.get("percent_off"),
        "duration": coupon.get("duration"),
        "duration_in_months": coupon.get("duration_in_months"),
        "end": day(ts(discount.get("end"))),
    }


def _pending_change(sub: Obj, catalog: Catalog, pending_prices: dict[str, Obj]) -> Obj | None:
    meta = sub.get("metadata") or {}
    if not meta.get("pending_price_id"):
        return None
    target = pending_prices.get(str(meta["pending_price_id"])) or {}
    return {
        "price_id": meta["pending_price_id"],
        "name": catalog.name(target) if target else "",
        "effective_date": day(ts(meta.get("pending_change_at"))),
        "schedule_id": sub.get("schedule"),
    }


def _contract_end(sub: Obj, now: datetime) -> str | None:
    meta = sub.get("metadata") or {}
    if meta.get("contract_end"):
        return str(meta["contract_end"])[:10]
    start = ts(sub.get("start_date"))
    term = meta.get("contract_term")
    if start is None or term not in {"annual", "monthly"}:
        return None
    if term == "monthly":
        return day(ts(period_end(sub)))
    years = max(1, relativedelta(now, start).years + 1)
    end = start + relativedelta(years=years)
    horizon_note(end)  # on the anniversary, the contract runs to the next one
    return day(end)


def _billing_cycle(sub: Obj, price: Obj) -> str:
    """The plan's interval (else the first item's) as the panel labels it."""
    shown = price or (sub_items(sub) or [{}])[0].get("price") or {}
    label = CYCLE_LABEL.get((shown.get("recurring") or {}).get("interval") or "")
    return gettext(label) if label else ""


def subscription_facts(sub: Obj) -> SubscriptionFacts:
    """What the state rule (``subscription_state``) reads of a Stripe-shaped subscription."""
    pause = sub.get("pause_collection") or {}
    ends = ts(sub.get("cancel_at")) or (
        ts(period_end(sub)) if sub.get("cancel_at_period_end") else None
    )
    return SubscriptionFacts(
        status=str(sub.get("status") or ""),
        paused=bool(pause),
        resumes_at=ts(pause.get("resumes_at")),
        cancel_at_period_end=bool(sub.get("cancel_at_period_end")),
        cancel_at=ends,
        ended_at=ts(sub.get("ended_at")) or ts(sub.get("canceled_at")),
        trial_end=ts(sub.get("trial_end")),
    )


def _state_detail(state: str, facts: SubscriptionFacts, sub: Obj) -> str:
    """The state in one sentence for the agent (dates in words; no codes)."""
    if state == "canceled":
        cancelled = ts(sub.get("canceled_at"))
        ended = ts(sub.get("ended_at")) or cancelled
        if ended and cancelled and ended.date() != cancelled.date():
            return gettext(
                "Cancelled on %(cancelled)s; ended on %(ended)s. "
                "It no longer bills and cannot be changed."
            ) % {"cancelled": date_words(cancelled), "ended": date_words(ended)}
        if cancelled:
            return gettext("Cancelled on %(date)s. It no longer bills and cannot be changed.") % {
                "date": date_words(cancelled)
            }
        return gettext("Cancelled. It no longer bills and cannot be changed.")
    if state == "paused" and not facts.paused:  # Stripe's own ``paused`` status
        return gettext("Paused by Stripe: the trial ended without a payment method on file.")
    if state == "paused":
        behavior = str((sub.get("pause_collection") or {}).get("behavior") or "")
        if facts.resumes_at:
            said = gettext("Payment collection is paused until %(date)s.") % {
                "date": date_words(facts.resumes_at)
            }
        else:
            said = gettext("Payment collection is paused until someone resumes it.")
        how = PAUSE_BEHAVIORS.get(behavior)
        return f"{said} {how}." if how else said
    if state == "ending":
        if facts.cancel_at:
            return gettext(
                "Set to cancel: it ends on %(date)s and does not renew. "
                "The customer keeps access until then."
            ) % {"date": date_words(facts.cancel_at)}
        return gettext(
            "Set to cancel: it ends and does not renew. The customer keeps access until then."
        )
    if state == "trialing" and facts.trial_end:
        return gettext("In a trial until %(date)s; the first invoice comes then.") % {
            "date": date_words(facts.trial_end)
        }
    if state == "past_due":
        return gettext("A renewal payment failed; Stripe is retrying it.")
    if state == "unpaid":
        return gettext("Renewal payments failed and Stripe stopped retrying; invoices stay open.")
    return ""


def _applicable(facts: SubscriptionFacts, seats: Obj | None) -> list[str]:
    """The subscription actions its state allows; seats only where seats are counted."""
    kinds = applicable_kinds(facts)
    return [k for k in kinds if k != "adjust_seats" or seats is not None]


def subscription_block(
    sub: Obj,
    *,
    catalog: Catalog,
    discounts: dict[str, Obj],
    pending_prices: dict[str, Obj],
    extra_addons: list[Obj],
    now: datetime,
) -> Obj:
    currency = str(sub.get("currency") or "usd").upper()
    meta = sub.get("metadata") or {}
    item = catalog.plan_item(sub)
    price = (item or {}).get("price") or {}
    status = str(sub.get("status") or "")
    own_addons = [
        addon_entry(i, catalog, currency)
        for i in sub_items(sub)
        if item is None or i.get("id") != item.get("id")
    ]
    pause = sub.get("pause_collection")
    auto_renew = (
        is_billing(status)
        and not sub.get("cancel_at_period_end")
        and not sub.get("cancel_at")
        and meta.get("auto_renew") != "false"
    )
    facts = subscription_facts(sub)
    state = subscription_state(facts)
    seats = _seats_block(item, catalog, meta) if item is not None else None
    renewal = ts(period_end(sub))
    return {
        "id": sub.get("id"),
        "status": status,
        "status_label": status_label(status),
        "state": state,
        "state_label": state_label(state),
        "state_detail": _state_detail(state, facts, sub),
        # The "renews …" date: none for a paused, ending or cancelled subscription.
        "renews_at": day(renewal) if auto_renew and state not in STOPPED_STATES else None,
        "ends_at": day(facts.cancel_at) if state == "ending" else None,
        "applicable_kinds": _applicable(facts, seats),
        "start_date": day(ts(sub.get("start_date"))),
        "contract_end": _contract_end(sub, now),
        "contract_term": meta.get("contract_term") or None,
        "auto_renew": bool(auto_renew),
        "plan": _plan_block(item, catalog, currency) if item is not None else None,
        "billing_cycle": _billing_cycle(sub, price),
        "seats": seats,
        "addons": own_addons + extra_addons,
        "trial_end": day(ts(sub.get("trial_end"))),
        "pause_collection": {
            "behavior": pause.get("behavior"),
            "resumes_at": day(ts(pause.get("resumes_at"))),
        }
        if pause
        else None,
        "cancel_at_period_end": bool(sub.get("cancel_at_period_end")),
        "cancel_at": day(ts(sub.get("cancel_at"))),
        "canceled_at": day(ts(sub.get("canceled_at"))),
        "ended_at": day(ts(sub.get("ended_at"))),
        "current_period_start": day(ts(period_start(sub))),
        "current_period_end": day(ts(period_end(sub))),
        "price_id": price.get("id"),
        "collection_method": sub.get("collection_method") or "charge_automatically",
        "discount": _discount_block(discount_of(sub, discounts)),
        "pending_change": _pending_change(sub, catalog, pending_prices),
        "grace_period_until": day(ts(meta.get("grace_period_until"))),
        "currency": currency,
    }


# --- the next invoice ------------------------------------------------------------------------


def _next_invoice_of(
    sub: Obj, catalog: Catalog, discounts: dict[str, Obj], pending_prices: dict[str, Obj]
) -> tuple[datetime, int] | None:
    """When the subscription's next invoice comes and its total (the one rule,
    ``billing_app.invoice_rules``); ``None`` when it will not renew."""
    items = [RenewalItem(catalog.view(i), ts(i.get("current_period_end"))) for i in sub_items(sub)]
    when = renewal_at(
        status=sub.get("status"),
        trial_end=ts(sub.get("trial_end")),
        item_period_ends=[i.period_end for i in items],
        period_end=ts(sub.get("current_period_end")),
    )
    if when is None or not renews(
        status=sub.get("status"),
        cancel_at_period_end=bool(sub.get("cancel_at_period_end")),
        cancel_at=ts(sub.get("cancel_at")),
        renewal=when,
        pause_behavior=(sub.get("pause_collection") or {}).get("behavior"),
    ):
        return None
    meta = sub.get("metadata") or {}
    target = pending_prices.get(str(meta.get("pending_price_id") or ""))
    scheduled = (
        ScheduledPrice(str(meta["pending_item_id"]), price_view_from_stripe(target))
        if target and meta.get("pending_item_id")
        else None
    )
    refs = [
        ref if isinstance(ref, dict) else discounts.get(str(ref))
        for ref in sub.get("discounts") or []
    ]
    estimate = next_invoice_amounts(
        items=items,
        renews_at=when,
        period_start=ts(period_start(sub)),
        currency=str(sub.get("currency") or ""),
        trialing=sub.get("status") == "trialing",
        discounts=[discount_view_from_stripe(d) for d in refs if d],
        scheduled=scheduled,
        tax_rate=exclusive_tax_rate(sub.get("default_tax_rates") or []),
    )
    return when, estimate.total


def next_invoice(
    subs: list[Obj],
    *,
    catalog: Catalog,
    discounts: dict[str, Obj],
    pending_prices: dict[str, Obj],
    currency: str,
) -> Obj | None:
    """The customer's next invoice: the earliest renewal among the subscriptions and what
    the ones renewing that day will bill together."""
    candidates: list[tuple[datetime, int, str]] = []
    for sub in subs:
        due = _next_invoice_of(sub, catalog, discounts, pending_prices)
        if due is not None:
            candidates.append((due[0], due[1], str(sub.get("id"))))
    if not candidates:
        return None
    earliest = min(c[0] for c in candidates)
    due_now = [c for c in candidates if c[0] == earliest]
    return {
        "amount": money_json(sum(c[1] for c in due_now), currency),
        "date": day(earliest),
        "subscription_ids": [c[2] for c in due_now],
    }
