"""The billing context: everything the panel shows about one customer, read from the mirror.

``customer_context`` returns the JSON shape of ``docs/api.md``. It never calls the
billing provider (``services.refresh.customer_mirror_ensure`` decides about
fetching and refreshing first) and costs a bounded number of queries whatever the
length of the customer's history (about ten; see ``tests/billing_app/test_context.py``).

How the figures are computed:

* **Primary subscription** — among live subscriptions (active, trialing,
  past_due, unpaid), the one whose plan item is worth most per month; the
  plan item is a subscription's largest item whose product is not marked
  ``metadata.addon = "true"``. Add-ons are the primary's other items plus the
  items of live subscriptions that hold only add-on products (add-ons billed on
  their own cycle, e.g. yearly on the contract anniversary).
* **Lifetime value** — total revenue is the sum of ``amount_paid`` over paid
  invoices; months active run from the first paid invoice or the earliest
  subscription start, whichever is first, to now (or to when the last
  subscription ended). MRR sums the live (active / past_due, not paused)
  subscriptions' items normalised to a month — yearly ÷ 12, weekly × 52 ÷ 12,
  daily × 365 ÷ 12, divided by ``interval_count`` — less percentage discounts
  still running; trials are not revenue yet. ARR = 12 × MRR.
* **Credits** — available is the credit the customer holds (−balance when the
  balance is negative); applied this cycle sums the balance applied to invoices
  since the primary subscription's current period began; pending lists the
  granted credits not yet consumed, oldest consumed first.
* **Churn risk** — points per signal: payment failed in the last 90 days (2),
  subscription past due (3), cancellation scheduled (4), no live subscription
  left (4), collection paused (2), seat utilisation under 50% (2), a disputed
  charge in 12 months (3), a downgrade scheduled or made in 90 days (2), a
  refund pattern — the workspace's ``refund_pattern_count`` refunds within
  ``refund_pattern_days`` (2), card on file expired (1), trial ending within 7
  days with no payment method (1). 0–1 point is Low, 2–3 Medium, 4 or more
  High. The reasons are the signals found; with none, the positive signals
  that hold ("on-time payments": paid invoices and no failure in 12 months;
  "high usage": seat utilisation of 80% or more).
* **Alerts** — a failed payment (an open invoice with failed attempts, or the
  latest charge failed within 30 days; three consecutive failures add the
  suspension warning), duplicate charges (two succeeded charges of the same
  amount within the workspace's ``duplicate_window_hours``, in the last 90
  days, the later one not refunded), pending approvals, payment monitoring
  (after a duplicate charge), and the provider being unavailable.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from dateutil.relativedelta import relativedelta
from django.db.models import Count, Exists, OuterRef, Q, Subquery, Sum
from django.utils import timezone

from ..models import (
    ApprovalRequest,
    BillingAction,
    CustomerFlag,
    MirrorBalanceTransaction,
    MirrorCharge,
    MirrorCustomer,
    MirrorDiscount,
    MirrorInvoice,
    MirrorPaymentMethod,
    MirrorPrice,
    MirrorProduct,
    MirrorRefund,
    MirrorSubscription,
    SandboxControl,
    Workspace,
)
from ..money import format_money, to_decimal
from .failures import failure_alerts_extend
from .mirror_freshness import customer_data_as_of as mirror_data_as_of
from .payments import card_brand_label, charge_method_label, money, payment_history_page

Obj = dict[str, Any]

LIVE = frozenset({"active", "trialing", "past_due", "unpaid"})
REVENUE = frozenset({"active", "past_due", "unpaid"})
STATUS_ORDER = {"active": 0, "past_due": 1, "unpaid": 2, "trialing": 3, "paused": 4}
INTERVAL_MONTHLY_FACTOR = {
    "day": Decimal(365) / 12,
    "week": Decimal(52) / 12,
    "month": Decimal(1),
    "year": Decimal(1) / 12,
}
CYCLE_LABEL = {"day": "Daily", "week": "Weekly", "month": "Monthly", "year": "Annual"}
FAILURE_LABELS = {
    "expired_card": "card expired",
    "insufficient_funds": "insufficient funds",
    "card_declined": "card declined by the bank",
    "generic_decline": "card declined by the bank",
    "do_not_honor": "card declined by the bank",
    "incorrect_number": "card not recognized",
    "invalid_number": "card not recognized",
    "processing_error": "payment processing error",
}
RECENT_ACTIONS = 10
CHURN_LEVELS = (("low", "Low"), ("medium", "Medium"), ("high", "High"))


# --- small helpers -------------------------------------------------------------------


def business_now(*, workspace: Workspace) -> datetime:
    """Now, for billing arithmetic: a sandbox workspace may run on a frozen clock."""
    if workspace.provider == Workspace.Provider.SANDBOX:
        clock = (
            SandboxControl.objects.filter(workspace=workspace)
            .values_list("clock", flat=True)
            .first()
        )
        if clock:
            return clock
    return timezone.now()


def _ts(value: Any) -> datetime | None:
    return datetime.fromtimestamp(int(value), tz=UTC) if value else None


def _day(value: datetime | date | None) -> str | None:
    if value is None:
        return None
    return (value.date() if isinstance(value, datetime) else value).isoformat()


def _round(value: Decimal) -> int:
    return int(value.quantize(Decimal(1), rounding=ROUND_HALF_EVEN))


def short_money(amount: int, currency: str) -> str:
    """``$2,400`` for whole amounts, ``$2,400.50`` otherwise (people-facing plan prices)."""
    text = format_money(amount, currency)
    if to_decimal(amount, currency) == to_decimal(amount, currency).to_integral_value():
        for zeros in (".00", ".000"):
            if zeros in text:
                return text.replace(zeros, "", 1)
    return text


def monthly_factor(price: Obj) -> Decimal:
    recurring = price.get("recurring") or {}
    factor = INTERVAL_MONTHLY_FACTOR.get(recurring.get("interval") or "month", Decimal(1))
    return factor / int(recurring.get("interval_count") or 1)


def _interval(price: Obj) -> str:
    recurring = price.get("recurring") or {}
    count = int(recurring.get("interval_count") or 1)
    interval = recurring.get("interval") or "month"
    return f"{count} {interval}s" if count > 1 else interval


def _product_id(price: Obj) -> str:
    product = price.get("product")
    return str(product.get("id") or "") if isinstance(product, dict) else str(product or "")


class Catalog:
    """Product names and add-on flags, from expanded prices or the mirrored products."""

    def __init__(self, workspace: Workspace, subscriptions: Iterable[Obj]):
        self.products: dict[str, Obj] = {}
        missing: set[str] = set()
        for sub in subscriptions:
            for item in _items(sub):
                product = (item.get("price") or {}).get("product")
                if isinstance(product, dict):
                    self.products[str(product.get("id"))] = product
                elif product:
                    missing.add(str(product))
        missing -= set(self.products)
        if missing:
            for row in MirrorProduct.objects.filter(workspace=workspace, stripe_id__in=missing):
                self.products[row.stripe_id] = {
                    "id": row.stripe_id,
                    "name": row.name,
                    "metadata": row.metadata,
                }

    def name(self, price: Obj) -> str:
        product = self.products.get(_product_id(price)) or {}
        return str(product.get("name") or price.get("nickname") or _product_id(price) or "Plan")

    def is_addon(self, price: Obj) -> bool:
        product = self.products.get(_product_id(price)) or {}
        return (product.get("metadata") or {}).get("addon") == "true"


def _items(sub: Obj) -> list[Obj]:
    return list((sub.get("items") or {}).get("data") or [])


def _item_amount(item: Obj) -> int:
    price = item.get("price") or {}
    return int(price.get("unit_amount") or 0) * int(item.get("quantity") or 0)


def _item_monthly(item: Obj) -> Decimal:
    return Decimal(_item_amount(item)) * monthly_factor(item.get("price") or {})


def plan_item(sub: Obj, catalog: Catalog) -> Obj | None:
    items = _items(sub)
    candidates = [i for i in items if not catalog.is_addon(i.get("price") or {})]
    if not candidates:
        return None
    return max(candidates, key=_item_monthly)


def _discount_of(sub: Obj, discounts: dict[str, Obj]) -> Obj | None:
    for ref in sub.get("discounts") or []:
        obj = ref if isinstance(ref, dict) else discounts.get(str(ref))
        if obj and not obj.get("deleted"):
            return obj
    return None


def _coupon(discount: Obj | None) -> Obj:
    if not discount:
        return {}
    source = discount.get("source") or {}
    coupon = (
        source.get("coupon") if isinstance(source.get("coupon"), dict) else discount.get("coupon")
    )
    return coupon if isinstance(coupon, dict) else {}


def _discount_active(discount: Obj | None, at: datetime) -> bool:
    if not discount:
        return False
    end = _ts(discount.get("end"))
    return end is None or end > at


def _percent_factor(discount: Obj | None, at: datetime) -> Decimal:
    if not _discount_active(discount, at):
        return Decimal(1)
    coupon = _coupon(discount)
    if coupon.get("duration") == "once" or coupon.get("percent_off") is None:
        return Decimal(1)
    return 1 - Decimal(str(coupon["percent_off"])) / 100


def _next_invoice_factor(sub: Obj, discounts: dict[str, Obj], when: datetime) -> Decimal:
    """The share of the next invoice left after the subscription's percentage discount.

    A ``once`` coupon still applies when it was added during the current period
    (no invoice has consumed it yet).
    """
    discount = _discount_of(sub, discounts)
    coupon = _coupon(discount)
    if not discount or coupon.get("percent_off") is None or not _discount_active(discount, when):
        return Decimal(1)
    if coupon.get("duration") == "once":
        start, period_start = discount.get("start"), _period_start(sub)
        if not start or not period_start or int(start) < int(period_start):
            return Decimal(1)
    return 1 - Decimal(str(coupon["percent_off"])) / 100


def _paused(sub: Obj) -> bool:
    return bool(sub.get("pause_collection"))


def _address_display(address: Obj) -> str:
    parts = [address.get(k) for k in ("line1", "line2", "city", "state")]
    country = address.get("country")
    if country and country != "US":
        parts.append(country)
    return ", ".join(str(p) for p in parts if p)


def _full_address(address: Obj) -> Obj:
    return {
        k: address.get(k) or ""
        for k in ("line1", "line2", "city", "state", "postal_code", "country")
    }


# --- blocks --------------------------------------------------------------------------


def _payment_method_block(pm: Obj | None, now: datetime) -> Obj | None:
    if not pm:
        return None
    if pm.get("type") == "card":
        card = pm.get("card") or {}
        brand = str(card.get("brand") or "card")
        label = card_brand_label(brand)
        exp_month, exp_year = card.get("exp_month"), card.get("exp_year")
        expired = bool(exp_year) and (int(exp_year), int(exp_month or 0)) < (now.year, now.month)
        return {
            "id": pm.get("id"),
            "type": "card",
            "brand": brand,
            "last4": card.get("last4"),
            "exp_month": exp_month,
            "exp_year": exp_year,
            "display": f"{label} ending {card.get('last4')}",
            "expires": f"{int(exp_month):02d}/{exp_year}" if exp_month and exp_year else None,
            "expired": expired,
        }
    kind = str(pm.get("type") or "")
    details = pm.get(kind) or {}
    return {
        "id": pm.get("id"),
        "type": kind,
        "brand": details.get("bank_name") or kind,
        "last4": details.get("last4"),
        "exp_month": None,
        "exp_year": None,
        "display": f"Bank account ending {details.get('last4')}" if details.get("last4") else kind,
        "expires": None,
        "expired": False,
    }


def _contract_end(sub: Obj, now: datetime) -> str | None:
    meta = sub.get("metadata") or {}
    if meta.get("contract_end"):
        return str(meta["contract_end"])[:10]
    start = _ts(sub.get("start_date"))
    term = meta.get("contract_term")
    if start is None or term not in {"annual", "monthly"}:
        return None
    if term == "monthly":
        return _day(_ts(_period_end(sub)))
    years = max(1, relativedelta(now, start).years + 1)
    return _day(start + relativedelta(years=years))


def _period_end(sub: Obj) -> int | None:
    ends = [i.get("current_period_end") for i in _items(sub) if i.get("current_period_end")]
    return min(ends) if ends else sub.get("current_period_end")


def _period_start(sub: Obj) -> int | None:
    starts = [i.get("current_period_start") for i in _items(sub) if i.get("current_period_start")]
    return min(starts) if starts else sub.get("current_period_start")


def _addon_entry(item: Obj, catalog: Catalog, currency: str) -> Obj:
    price = item.get("price") or {}
    monthly = _round(_item_monthly(item))
    billed = _item_amount(item)
    return {
        "item_id": item.get("id"),
        "name": catalog.name(price),
        "price": money(monthly, currency),
        "interval": "month",
        "display": f"{short_money(monthly, currency)}/month",
        "billed_price": money(billed, currency),
        "billed_interval": _interval(price),
        "quantity": int(item.get("quantity") or 0),
        "price_id": price.get("id"),
    }


def _subscription_block(
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
    item = plan_item(sub, catalog)
    price = (item or {}).get("price") or {}
    status = str(sub.get("status") or "")
    live = status in LIVE
    plan = None
    seats = None
    if item is not None:
        amount = _item_amount(item)
        interval = _interval(price)
        plan = {
            "name": catalog.name(price),
            "price": money(amount, currency),
            "unit_amount": money(int(price.get("unit_amount") or 0), currency),
            "quantity": int(item.get("quantity") or 0),
            "interval": interval,
            "display": f"{catalog.name(price)} ({short_money(amount, currency)}/{interval})",
            "price_id": price.get("id"),
            "item_id": item.get("id"),
        }
        total = int(item.get("quantity") or 0)
        used_raw = meta.get("seats_used")
        used = int(used_raw) if str(used_raw or "").isdigit() else None
        if total > 1 or used is not None:  # a flat plan (quantity 1) has no seats to show
            seats = {
                "used": used,
                "total": total,
                "utilization_pct": round(used * 100 / total)
                if used is not None and total
                else None,
                "item_id": item.get("id"),
            }
    own_addons = [
        _addon_entry(i, catalog, currency)
        for i in _items(sub)
        if item is None or i.get("id") != item.get("id")
    ]
    discount = _discount_of(sub, discounts)
    coupon = _coupon(discount)
    pending = None
    if meta.get("pending_price_id"):
        target = pending_prices.get(str(meta["pending_price_id"])) or {}
        pending = {
            "price_id": meta["pending_price_id"],
            "name": catalog.name(target) if target else "",
            "effective_date": _day(_ts(meta.get("pending_change_at"))),
            "schedule_id": sub.get("schedule"),
        }
    pause = sub.get("pause_collection")
    auto_renew = (
        live
        and not sub.get("cancel_at_period_end")
        and not sub.get("cancel_at")
        and meta.get("auto_renew") != "false"
    )
    return {
        "id": sub.get("id"),
        "status": status,
        "status_label": status.replace("_", " ").capitalize(),
        "start_date": _day(_ts(sub.get("start_date"))),
        "contract_end": _contract_end(sub, now),
        "contract_term": meta.get("contract_term") or None,
        "auto_renew": bool(auto_renew),
        "plan": plan,
        "billing_cycle": CYCLE_LABEL.get(
            ((price or (_items(sub) or [{}])[0].get("price") or {}).get("recurring") or {}).get(
                "interval"
            )
            or "",
            "",
        ),
        "seats": seats,
        "addons": own_addons + extra_addons,
        "trial_end": _day(_ts(sub.get("trial_end"))),
        "pause_collection": {
            "behavior": pause.get("behavior"),
            "resumes_at": _day(_ts(pause.get("resumes_at"))),
        }
        if pause
        else None,
        "cancel_at_period_end": bool(sub.get("cancel_at_period_end")),
        "cancel_at": _day(_ts(sub.get("cancel_at"))),
        "canceled_at": _day(_ts(sub.get("canceled_at"))),
        "ended_at": _day(_ts(sub.get("ended_at"))),
        "current_period_start": _day(_ts(_period_start(sub))),
        "current_period_end": _day(_ts(_period_end(sub))),
        "price_id": price.get("id"),
        "collection_method": sub.get("collection_method") or "charge_automatically",
        "discount": {
            "id": discount.get("id"),
            "coupon_id": coupon.get("id"),
            "name": coupon.get("name"),
            "percent_off": coupon.get("percent_off"),
            "duration": coupon.get("duration"),
            "duration_in_months": coupon.get("duration_in_months"),
            "end": _day(_ts(discount.get("end"))),
        }
        if discount
        else None,
        "pending_change": pending,
        "grace_period_until": _day(_ts(meta.get("grace_period_until"))),
        "currency": currency,
    }


def _next_invoice(
    subs: list[Obj], discounts: dict[str, Obj], pending_prices: dict[str, Obj], currency: str
) -> Obj | None:
    candidates: list[tuple[int, int, str]] = []
    for sub in subs:
        if sub.get("status") not in LIVE or sub.get("cancel_at_period_end") or sub.get("cancel_at"):
            continue
        pause = sub.get("pause_collection") or {}
        if pause.get("behavior") == "void":
            continue
        when = sub.get("trial_end") if sub.get("status") == "trialing" else _period_end(sub)
        if not when:
            continue
        meta = sub.get("metadata") or {}
        total = Decimal(0)
        for item in _items(sub):
            amount = _item_amount(item)
            if meta.get("pending_item_id") == item.get("id") and meta.get("pending_price_id"):
                target = pending_prices.get(str(meta["pending_price_id"]))
                if target:
                    amount = int(target.get("unit_amount") or 0) * int(item.get("quantity") or 0)
            total += amount
        total *= _next_invoice_factor(sub, discounts, _ts(when) or timezone.now())
        candidates.append((int(when), _round(total), str(sub.get("id"))))
    if not candidates:
        return None
    earliest = min(c[0] for c in candidates)
    due = [c for c in candidates if c[0] == earliest]
    return {
        "amount": money(sum(c[1] for c in due), currency),
        "date": _day(_ts(earliest)),
        "subscription_ids": [c[2] for c in due],
    }


def _mrr(subs: list[Obj], discounts: dict[str, Obj], now: datetime) -> int:
    total = Decimal(0)
    for sub in subs:
        if sub.get("status") not in REVENUE or _paused(sub):
            continue
        factor = _percent_factor(_discount_of(sub, discounts), now)
        total += sum((_item_monthly(i) for i in _items(sub)), Decimal(0)) * factor
    return _round(total)


def _months_between(start: datetime, end: datetime) -> int:
    delta = relativedelta(end, start)
    return max(0, delta.years * 12 + delta.months)


def _credits(
    customer: MirrorCustomer,
    txns: list[MirrorBalanceTransaction],
    period_start: datetime | None,
    currency: str,
) -> Obj:
    available = -customer.balance if customer.balance < 0 else 0
    applied = sum(
        t.amount
        for t in txns
        if t.type == "applied_to_invoice"
        and t.amount > 0
        and period_start is not None
        and t.created
        and t.created >= period_start
    )
    pending: list[Obj] = []
    remaining = available
    grants = sorted(
        (t for t in txns if t.amount < 0 and t.type != "applied_to_invoice"),
        key=lambda t: (t.created or timezone.now(), t.stripe_id),
        reverse=True,
    )
    for grant in grants:  # newest first: older credits were consumed first
        if remaining <= 0:
            break
        left = min(-grant.amount, remaining)
        remaining -= left
        pending.append(
            {
                "id": grant.stripe_id,
                "amount": money(left, grant.currency or currency),
                "granted": money(-grant.amount, grant.currency or currency),
                "description": grant.description,
                "date": _day(grant.created),
            }
        )
    return {
        "available": money(available, currency),
        "applied_this_cycle": money(applied, currency),
        "pending": pending,
    }


def _failure_label(charge: MirrorCharge) -> str:
    code = charge.decline_code or charge.failure_code
    return FAILURE_LABELS.get(code, FAILURE_LABELS.get(charge.failure_code, code.replace("_", " ")))


def _duplicates(charges: list[MirrorCharge], window_hours: int, now: datetime) -> list[Obj]:
    pairs: list[Obj] = []
    succeeded = sorted(
        (
            c
            for c in charges
            if c.status == "succeeded" and c.created and c.created >= now - timedelta(days=90)
        ),
        key=lambda c: c.created,
    )
    window = timedelta(hours=window_hours)
    for index, later in enumerate(succeeded):
        if later.amount_refunded >= later.amount_captured > 0:
            continue
        for earlier in reversed(succeeded[:index]):
            if later.created - earlier.created > window:
                break
            if earlier.amount == later.amount and earlier.currency == later.currency:
                minutes = int((later.created - earlier.created).total_seconds() // 60)
                pairs.append(
                    {
                        "charge_ids": [earlier.stripe_id, later.stripe_id],
                        "duplicate_charge_id": later.stripe_id,
                        "amount": money(later.amount, later.currency),
                        "minutes_apart": minutes,
                        "refundable": money(
                            later.amount_captured - later.amount_refunded, later.currency
                        ),
                    }
                )
                break
    return pairs


def _actor_name(action: BillingAction) -> str:
    user = action.actor
    return user.get_full_name() or user.get_username()


def _action_amount(action: BillingAction) -> Obj | None:
    if action.amount is None or not action.currency:
        return None
    return money(action.amount, action.currency)


# --- the context ---------------------------------------------------------------------


def customer_context(
    *,
    workspace: Workspace,
    customer: MirrorCustomer,
    stale: bool = False,
    refreshing: bool = False,
    provider_status: str = "ok",
    now: datetime | None = None,
) -> Obj:
    """The panel's whole context for ``customer`` (a mirrored customer of ``workspace``)."""
    now = now or business_now(workspace=workspace)
    real_now = timezone.now()
    cid = customer.stripe_id
    data = customer.data or {}
    currency = (customer.currency or workspace.base_currency or "USD").upper()

    # 1. Aggregates, in one query.
    invoices = MirrorInvoice.objects.filter(
        workspace_id=OuterRef("workspace_id"), customer_id=OuterRef("stripe_id")
    )
    pattern_since = now - timedelta(days=workspace.refund_pattern_days)
    customer_charges = MirrorCharge.objects.filter(
        workspace_id=workspace.pk, customer_id=cid
    ).values("stripe_id")
    refunds = (
        MirrorRefund.objects.filter(workspace_id=workspace.pk, created__gte=pattern_since)
        .filter(Q(customer_id=cid) | Q(charge_id__in=customer_charges))
        .exclude(status__in=["failed", "canceled"])
    )
    facts = (
        MirrorCustomer.objects.filter(pk=customer.pk)
        .annotate(
            lifetime=Subquery(
                invoices.filter(status="paid")
                .values("customer_id")
                .annotate(s=Sum("amount_paid"))
                .values("s")[:1]
            ),
            first_paid=Subquery(
                invoices.filter(status="paid", amount_paid__gt=0)
                .order_by("created")
                .values("created")[:1]
            ),
            outstanding=Subquery(
                invoices.filter(status="open")
                .values("customer_id")
                .annotate(s=Sum("amount_remaining"))
                .values("s")[:1]
            ),
            has_txns=Exists(
                MirrorBalanceTransaction.objects.filter(
                    workspace_id=OuterRef("workspace_id"), customer_id=OuterRef("stripe_id")
                )
            ),
            refund_count=Subquery(
                refunds.values("workspace_id").annotate(c=Count("id")).values("c")[:1]
            ),
            monitoring_until=Subquery(
                CustomerFlag.objects.filter(
                    workspace_id=OuterRef("workspace_id"),
                    customer_id=OuterRef("stripe_id"),
                    kind=CustomerFlag.Kind.PAYMENT_MONITORING,
                    active_until__gt=now,  # the clock the flag was set on (a sandbox may be frozen)
                ).values("active_until")[:1]
            ),
        )
        .values(
            "lifetime", "first_paid", "outstanding", "has_txns", "refund_count", "monitoring_until"
        )
        .get()
    )

    # 2. Subscriptions (items and their prices are embedded in the data).
    sub_rows = list(
        MirrorSubscription.objects.filter(workspace=workspace, customer_id=cid).order_by(
            "-created", "-id"
        )
    )
    subs = [dict(r.data or {}) for r in sub_rows if r.data]
    catalog = Catalog(workspace, subs)
    discount_ids = {str(d) for s in subs for d in (s.get("discounts") or []) if isinstance(d, str)}
    discounts: dict[str, Obj] = {}
    if discount_ids:
        discounts = {
            r.stripe_id: {**(r.data or {}), "deleted": not r.active}
            for r in MirrorDiscount.objects.filter(workspace=workspace, stripe_id__in=discount_ids)
        }
    pending_ids = {str((s.get("metadata") or {}).get("pending_price_id")) for s in subs} - {
        "None",
        "",
    }
    pending_prices: dict[str, Obj] = {}
    if pending_ids:
        pending_prices = {
            r.stripe_id: dict(r.data or {})
            for r in MirrorPrice.objects.filter(workspace=workspace, stripe_id__in=pending_ids)
        }

    live = [s for s in subs if s.get("status") in LIVE]
    with_plan = [s for s in live if plan_item(s, catalog) is not None]
    addon_only = [s for s in live if plan_item(s, catalog) is None]
    primary = None
    if with_plan:
        primary = max(
            with_plan,
            key=lambda s: (
                -STATUS_ORDER.get(str(s.get("status")), 9),
                _item_monthly(plan_item(s, catalog) or {}),
            ),
        )
    elif subs:
        primary = next((s for s in subs if plan_item(s, catalog) is not None), subs[0])
    extra_addons = [
        _addon_entry(i, catalog, str(s.get("currency") or currency).upper())
        for s in addon_only
        for i in _items(s)
    ]

    def block(sub: Obj) -> Obj:
        return _subscription_block(
            sub,
            catalog=catalog,
            discounts=discounts,
            pending_prices=pending_prices,
            extra_addons=extra_addons if sub is primary else [],
            now=now,
        )

    primary_block = block(primary) if primary is not None else None
    ordered = sorted(subs, key=lambda s: (s.get("status") not in LIVE, s is not primary))
    sub_blocks = [primary_block if s is primary else block(s) for s in ordered]

    # 3. Payment method: expanded on the customer, else the mirrored row.
    pm_ref = (data.get("invoice_settings") or {}).get("default_payment_method") or (
        primary or {}
    ).get("default_payment_method")
    pm: Obj | None = pm_ref if isinstance(pm_ref, dict) else None
    if pm is None and pm_ref:
        row = MirrorPaymentMethod.objects.filter(workspace=workspace, stripe_id=pm_ref).first()
        pm = dict(row.data) if row is not None and row.data else None
    pm_block = _payment_method_block(pm, now)

    # 4. Charges of the last 12 months; open invoices.
    charges = list(
        MirrorCharge.objects.filter(
            workspace=workspace, customer_id=cid, created__gte=now - timedelta(days=365)
        ).order_by("-created", "-stripe_id")[:500]
    )
    last_charge = charges[0] if charges else None
    if last_charge is None:
        last_charge = (
            MirrorCharge.objects.filter(workspace=workspace, customer_id=cid)
            .order_by("-created")
            .first()
        )
    open_invoices = list(
        MirrorInvoice.objects.filter(workspace=workspace, customer_id=cid, status="open").order_by(
            "-created"
        )[:20]
    )
    failed = [c for c in charges if c.status == "failed"]
    failures_90 = [c for c in failed if c.created and c.created >= now - timedelta(days=90)]
    disputed = [c for c in charges if c.disputed]
    consecutive = 0
    for charge in charges:
        if charge.status == "succeeded":
            break
        if charge.status == "failed":
            consecutive += 1

    # 5. Credits.
    txns: list[MirrorBalanceTransaction] = []
    if facts["has_txns"]:
        txns = list(
            MirrorBalanceTransaction.objects.filter(workspace=workspace, customer_id=cid).order_by(
                "-created"
            )
        )
    period_start = _ts(_period_start(primary)) if primary else None
    credits = _credits(customer, txns, period_start, currency)

    # 6. Billing Desk's own records: approvals and recent actions, in one query.
    actions = list(
        BillingAction.objects.filter(workspace=workspace, customer_id=cid)
        .filter(
            Q(status=BillingAction.Status.PENDING_APPROVAL)
            | Q(created_at__gte=real_now - timedelta(days=90))
        )
        .select_related("actor", "approval")
        .order_by("-created_at")[:100]
    )
    pending_approvals = []
    for action in actions:
        approval = (
            getattr(action, "approval", None)
            if action.status == BillingAction.Status.PENDING_APPROVAL
            else None
        )
        if (
            approval is None
            or approval.status != ApprovalRequest.Status.PENDING
            or approval.expires_at <= real_now
        ):
            continue
        pending_approvals.append(
            {
                "id": approval.pk,
                "action_id": str(action.pk),
                "kind": action.kind,
                "amount": _action_amount(action),
                "requested_by": _actor_name(action),
                "required_roles": list(approval.required_roles or []),
                "reason": approval.reason,
                "expires_at": approval.expires_at.isoformat(),
                "created_at": approval.created_at.isoformat(),
            }
        )
    recent_actions = [
        {
            "id": str(a.pk),
            "kind": a.kind,
            "status": a.status,
            "amount": _action_amount(a),
            "actor": _actor_name(a),
            "created_at": a.created_at.isoformat(),
            "ticket_id": a.ticket_id,
            "provider_object_id": a.provider_object_id,
        }
        for a in actions[:RECENT_ACTIONS]
    ]
    recent_downgrade = any(
        a.kind == "change_plan"
        and a.status == BillingAction.Status.SUCCEEDED
        and (a.result or {}).get("direction") == "downgrade"
        for a in actions
    ) or any((s.get("metadata") or {}).get("pending_price_id") for s in live)

    # 7. Payment history, first page.
    history = payment_history_page(workspace=workspace, customer_id=cid, now=now)

    # --- lifetime value ---
    lifetime = int(facts["lifetime"] or 0)
    starts = [t for t in (_ts(s.get("start_date")) for s in subs) if t] + (
        [facts["first_paid"]] if facts["first_paid"] else []
    )
    months_active = 0
    if starts:
        end = now
        if not live and subs:
            ended = [t for t in (_ts(s.get("ended_at") or s.get("canceled_at")) for s in subs) if t]
            end = max(ended) if ended else now
        months_active = _months_between(min(starts), min(end, now))
    mrr = _mrr(subs, discounts, now)

    # --- seats and churn ---
    seats = (primary_block or {}).get("seats") or {}
    utilization = seats.get("utilization_pct")
    paid_invoices = lifetime > 0
    factors: list[tuple[int, str]] = []
    if failures_90:
        n = len(failures_90)
        factors.append((2, f"{n} failed payment{'s' if n != 1 else ''} in 90 days"))
    if any(s.get("status") in {"past_due", "unpaid"} for s in live):
        factors.append((3, "subscription past due"))
    if any(s.get("cancel_at_period_end") or s.get("cancel_at") for s in live):
        factors.append((4, "cancellation scheduled"))
    if subs and not live:
        factors.append((4, "no active subscription"))
    if any(_paused(s) for s in live):
        factors.append((2, "collection paused"))
    if utilization is not None and utilization < 50:
        factors.append((2, f"low seat utilization ({utilization}%)"))
    if disputed:
        factors.append((3, "disputed charge"))
    if recent_downgrade:
        factors.append((2, "recent downgrade"))
    refund_count = int(facts["refund_count"] or 0)
    if refund_count >= workspace.refund_pattern_count:
        factors.append(
            (2, f"refund pattern ({refund_count} refunds in {workspace.refund_pattern_days} days)")
        )
    if pm_block and pm_block["expired"]:
        factors.append((1, "card on file expired"))
    if primary and primary.get("status") == "trialing" and pm_block is None:
        trial_end = _ts(primary.get("trial_end"))
        if trial_end and trial_end - now <= timedelta(days=7):
            factors.append((1, "trial ending without a payment method"))
    score = sum(p for p, _ in factors)
    level = 0 if score <= 1 else 1 if score <= 3 else 2
    reasons = [r for _, r in factors]
    if not reasons:
        if paid_invoices and not failed:
            reasons.append("on-time payments")
        if utilization is not None and utilization >= 80:
            reasons.append("high usage")
        if not reasons:
            reasons.append("no risk signals")

    # --- alerts ---
    alerts: list[Obj] = []
    if provider_status != "ok":
        alerts.append(
            {
                "type": "provider_down",
                "severity": "warning",
                "message": "The billing provider is not answering; showing mirrored data"
                + (
                    f" as of {customer_data_as_of(customer).strftime('%Y-%m-%d %H:%M UTC')}"
                    if customer_data_as_of(customer)
                    else ""
                )
                + ". Actions are unavailable until it recovers.",
                "data": {"as_of": _iso(customer_data_as_of(customer))},
            }
        )
    failing_invoice = next((i for i in open_invoices if i.attempt_count > 0), None)
    recent_failure = (
        last_charge
        if last_charge
        and last_charge.status == "failed"
        and last_charge.created
        and last_charge.created >= now - timedelta(days=30)
        else None
    )
    if failing_invoice is not None or recent_failure is not None:
        charge = recent_failure or next(
            (
                c
                for c in failed
                if failing_invoice and c.payment_intent_id == failing_invoice.payment_intent_id
            ),
            None,
        )
        amount = failing_invoice.amount_remaining if failing_invoice else recent_failure.amount  # type: ignore[union-attr]
        amount_currency = failing_invoice.currency if failing_invoice else recent_failure.currency  # type: ignore[union-attr]
        reason = _failure_label(charge) if charge else "payment failed"
        attempts = failing_invoice.attempt_count if failing_invoice else consecutive
        next_attempt = failing_invoice.next_payment_attempt if failing_invoice else None
        message = f"Payment of {format_money(amount, amount_currency)} failed ({reason})"
        message += f" — {attempts} attempt{'s' if attempts != 1 else ''}."
        if next_attempt:
            message += f" Next retry on {_day(next_attempt)}."
        if consecutive >= 3:
            message += " Three consecutive failures: send the account suspension warning; CSM outreach follows."
        alerts.append(
            {
                "type": "payment_failed",
                "severity": "danger",
                "message": message,
                "data": {
                    "invoice_id": failing_invoice.stripe_id if failing_invoice else None,
                    "charge_id": charge.stripe_id if charge else None,
                    "amount": money(amount, amount_currency),
                    "failure_code": charge.failure_code if charge else "",
                    "decline_code": charge.decline_code if charge else "",
                    "failure_message": charge.failure_message if charge else "",
                    "reason": reason,
                    "attempt_count": attempts,
                    "next_payment_attempt": _iso(next_attempt),
                    "consecutive_failures": consecutive,
                    "suspension_warning": consecutive >= 3,
                    "hosted_invoice_url": failing_invoice.hosted_invoice_url or None
                    if failing_invoice
                    else None,
                },
            }
        )
    for pair in _duplicates(charges, workspace.duplicate_window_hours, now):
        alerts.append(
            {
                "type": "duplicate_charge",
                "severity": "warning",
                "message": f"Possible duplicate charge: two charges of {pair['amount']['display']} "
                f"{pair['minutes_apart']} minutes apart.",
                "data": pair,
            }
        )
    for approval in pending_approvals:
        amount_text = f" of {approval['amount']['display']}" if approval["amount"] else ""
        alerts.append(
            {
                "type": "pending_approval",
                "severity": "info",
                "message": f"{approval['kind'].replace('_', ' ').capitalize()}{amount_text} awaits "
                f"approval by {' or '.join(r.replace('_', ' ').title() for r in approval['required_roles']) or 'an approver'}.",
                "data": {"approval_id": approval["id"], "action_id": approval["action_id"]},
            }
        )
    monitoring_until = facts["monitoring_until"]
    if monitoring_until:
        alerts.append(
            {
                "type": "payment_monitoring",
                "severity": "info",
                "message": f"Payment monitoring is on until {_day(monitoring_until)} after a duplicate charge.",
                "data": {"until": _day(monitoring_until)},
            }
        )

    failure_alerts_extend(
        workspace=workspace, customer_id=cid, alerts=alerts, charges=charges, now=now
    )

    # --- payment status ---
    last_payment = None
    if last_charge is not None:
        last_payment = {
            "amount": money(last_charge.amount, last_charge.currency),
            "date": _day(last_charge.created),
            "status": last_charge.status,
            "succeeded": last_charge.status == "succeeded",
            "charge_id": last_charge.stripe_id,
            "method": charge_method_label(last_charge),
            "failure_code": last_charge.failure_code,
            "failure_message": last_charge.failure_message,
        }
    outstanding = int(facts["outstanding"] or 0) + max(0, customer.balance)
    next_invoice = _next_invoice(live, discounts, pending_prices, currency)

    address = customer.address or {}
    plan = (primary_block or {}).get("plan")
    as_of = customer_data_as_of(customer)
    return {
        "customer": {
            "id": cid,
            "name": customer.name,
            "email": customer.email,
            "address": _full_address(address),
            "address_display": _address_display(address),
            "currency": currency,
            "tax_exempt": customer.tax_exempt,
            "tax_ids": list(customer.tax_ids or []),
            "deleted": customer.deleted,
            "delinquent": customer.delinquent,
            "created": _day(customer.created),
            "monitoring_until": _day(monitoring_until),
        },
        "as_of": _iso(as_of),
        "stale": stale,
        "refreshing": refreshing,
        "provider_status": provider_status,
        "now": now.isoformat(),
        "account": {
            "plan": {
                "name": plan["name"],
                "price": plan["price"],
                "interval": plan["interval"],
                "display": plan["display"],
            }
            if plan
            else None,
            "billing_cycle": (primary_block or {}).get("billing_cycle") or None,
            "renews_at": (primary_block or {}).get("current_period_end")
            if primary_block and primary_block["auto_renew"]
            else None,
            "ends_at": (primary_block or {}).get("cancel_at"),
            "payment_method": pm_block,
            "billing_email": customer.email,
            "billing_address": _address_display(address),
        },
        "payment_status": {
            "last_payment": last_payment,
            "next_invoice": next_invoice,
            "outstanding_balance": money(outstanding, currency),
            "failures_12m": len(failed),
        },
        "payment_history": history,
        "credits": credits,
        "subscription": primary_block,
        "subscriptions": sub_blocks,
        "lifetime_value": {
            "total_revenue": money(lifetime, currency),
            "months_active": months_active,
            "mrr": money(mrr, currency),
            "arr": money(12 * mrr, currency),
        },
        "churn_risk": {
            "level": CHURN_LEVELS[level][0],
            "label": CHURN_LEVELS[level][1],
            "score": score,
            "reasons": reasons,
        },
        "alerts": alerts,
        "pending_approvals": pending_approvals,
        "recent_actions": recent_actions,
    }


def customer_data_as_of(customer: MirrorCustomer) -> datetime | None:
    """When the data was *read* from the provider (``selectors.mirror_freshness``), not written."""
    return mirror_data_as_of(customer=customer)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None


__all__ = ["business_now", "customer_context", "monthly_factor", "plan_item"]
