"""A billing account for action tests: Stripe-shaped objects written into the mirror.

Shapes follow Stripe's objects at the pinned API version (subscription items
carry their period, invoices name their subscription under ``parent``, charges
carry ``payment_method_details``); amounts are minor units, currencies lower
case as Stripe writes them. Every timestamp is relative to ``now`` so refund
windows and trials behave the same on any day.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.utils import timezone

from billing_app.services.mirror import mirror_upsert

_seq = itertools.count(1)
Obj = dict[str, Any]


def unix(value: datetime) -> int:
    return int(value.timestamp())


def stripe_list(data: list[Obj], url: str) -> Obj:
    return {"object": "list", "data": data, "has_more": False, "url": url}


def product(id: str, name: str, now: datetime, features: tuple[str, ...] = ()) -> Obj:
    return {
        "id": id,
        "object": "product",
        "active": True,
        "created": unix(now - timedelta(days=900)),
        "default_price": None,
        "description": None,
        "images": [],
        "livemode": False,
        "marketing_features": [{"name": f} for f in features],
        "metadata": {},
        "name": name,
        "tax_code": None,
        "type": "service",
        "unit_label": None,
        "updated": unix(now - timedelta(days=900)),
        "url": None,
    }


def price(
    id: str,
    product_id: str,
    unit_amount: int,
    now: datetime,
    *,
    currency: str = "usd",
    interval: str | None = "month",
    active: bool = True,
    nickname: str | None = None,
) -> Obj:
    return {
        "id": id,
        "object": "price",
        "active": active,
        "billing_scheme": "per_unit",
        "created": unix(now - timedelta(days=900)),
        "currency": currency,
        "livemode": False,
        "lookup_key": None,
        "metadata": {},
        "nickname": nickname,
        "product": product_id,
        "recurring": (
            {
                "interval": interval,
                "interval_count": 1,
                "meter": None,
                "usage_type": "licensed",
                "trial_period_days": None,
            }
            if interval
            else None
        ),
        "tax_behavior": "unspecified",
        "tiers_mode": None,
        "transform_quantity": None,
        "type": "recurring" if interval else "one_time",
        "unit_amount": unit_amount,
        "unit_amount_decimal": str(unit_amount),
    }


def customer(id: str, name: str, email: str, now: datetime, *, currency: str = "usd") -> Obj:
    return {
        "id": id,
        "object": "customer",
        "address": {
            "city": "San Francisco",
            "country": "US",
            "line1": "123 Enterprise Way",
            "line2": None,
            "postal_code": "94105",
            "state": "CA",
        },
        "balance": 0,
        "created": unix(now - timedelta(days=620)),
        "currency": currency,
        "default_source": None,
        "delinquent": False,
        "description": None,
        "email": email,
        "invoice_prefix": id[-6:].upper(),
        "invoice_settings": {
            "custom_fields": None,
            "default_payment_method": None,
            "footer": None,
            "rendering_options": None,
        },
        "livemode": False,
        "metadata": {},
        "name": name,
        "phone": None,
        "preferred_locales": [],
        "shipping": None,
        "tax_exempt": "none",
        "tax_ids": stripe_list([], f"/v1/customers/{id}/tax_ids"),
        "test_clock": None,
    }


def item(
    id: str, sub_id: str, price_obj: Obj, quantity: int, start: datetime, end: datetime
) -> Obj:
    return {
        "id": id,
        "object": "subscription_item",
        "created": unix(start - timedelta(days=300)),
        "current_period_start": unix(start),
        "current_period_end": unix(end),
        "discounts": [],
        "metadata": {},
        "price": price_obj,
        "quantity": quantity,
        "subscription": sub_id,
        "tax_rates": [],
    }


def subscription(
    id: str,
    customer_id: str,
    items: list[Obj],
    now: datetime,
    *,
    status: str = "active",
    trial_end: datetime | None = None,
    metadata: dict[str, str] | None = None,
    currency: str = "usd",
) -> Obj:
    return {
        "id": id,
        "object": "subscription",
        "application": None,
        "billing_cycle_anchor": items[0]["current_period_start"],
        "cancel_at": None,
        "cancel_at_period_end": False,
        "canceled_at": None,
        "cancellation_details": {"comment": None, "feedback": None, "reason": None},
        "collection_method": "charge_automatically",
        "created": unix(now - timedelta(days=600)),
        "currency": currency,
        "customer": customer_id,
        "days_until_due": None,
        "default_payment_method": None,
        "description": None,
        "discounts": [],
        "ended_at": None,
        "items": stripe_list(items, f"/v1/subscription_items?subscription={id}"),
        "latest_invoice": None,
        "livemode": False,
        "metadata": metadata or {},
        "pause_collection": None,
        "schedule": None,
        "start_date": unix(now - timedelta(days=600)),
        "status": status,
        "test_clock": None,
        "trial_end": unix(trial_end) if trial_end else None,
        "trial_start": unix(now - timedelta(days=10)) if trial_end else None,
    }


def charge(
    id: str,
    customer_id: str,
    amount: int,
    created: datetime,
    *,
    status: str = "succeeded",
    invoice_id: str | None = None,
    disputed: bool = False,
    amount_refunded: int = 0,
    failure_code: str | None = None,
    currency: str = "usd",
) -> Obj:
    succeeded = status == "succeeded"
    return {
        "id": id,
        "object": "charge",
        "amount": amount,
        "amount_captured": amount if succeeded else 0,
        "amount_refunded": amount_refunded,
        "balance_transaction": f"txn_{id[3:]}" if succeeded else None,
        "billing_details": {"email": None, "name": "Acme Corp", "phone": None},
        "captured": succeeded,
        "created": unix(created),
        "currency": currency,
        "customer": customer_id,
        "description": "Subscription update",
        "disputed": disputed,
        "failure_code": failure_code,
        "failure_message": "Your card has expired." if failure_code == "expired_card" else None,
        "invoice": invoice_id,
        "livemode": False,
        "metadata": {},
        "outcome": {
            "network_status": "approved_by_network" if succeeded else "declined_by_network",
            "reason": failure_code,
            "risk_level": "normal",
            "seller_message": "Payment complete."
            if succeeded
            else "The bank declined the payment.",
            "type": "authorized" if succeeded else "issuer_declined",
        },
        "paid": succeeded,
        "payment_intent": f"pi_{id[3:]}",
        "payment_method": "pm_acme_visa",
        "payment_method_details": {
            "card": {"brand": "visa", "exp_month": 3, "exp_year": 2027, "last4": "4242"},
            "type": "card",
        },
        "refunded": amount_refunded >= amount and succeeded,
        "refunds": stripe_list([], f"/v1/charges/{id}/refunds"),
        "status": status,
    }


def invoice(
    id: str,
    customer_id: str,
    sub_id: str,
    amount: int,
    created: datetime,
    *,
    status: str,
    charge_id: str | None = None,
    attempt_count: int = 0,
    lines: list[Obj] | None = None,
    number: str = "",
) -> Obj:
    paid = status == "paid"
    return {
        "id": id,
        "object": "invoice",
        "amount_due": amount,
        "amount_paid": amount if paid else 0,
        "amount_remaining": 0 if paid else amount,
        "attempt_count": attempt_count,
        "billing_reason": "subscription_cycle",
        "collection_method": "charge_automatically",
        "created": unix(created),
        "currency": "usd",
        "customer": customer_id,
        "hosted_invoice_url": f"https://invoice.stripe.com/i/acct_test/{id}",
        "invoice_pdf": f"https://pay.stripe.com/invoice/acct_test/{id}/pdf",
        "lines": stripe_list(lines or [], f"/v1/invoices/{id}/lines"),
        "livemode": False,
        "next_payment_attempt": None,
        "number": number or f"INV-{id[-4:].upper()}",
        "parent": {
            "quote_details": None,
            "subscription_details": {"metadata": {}, "subscription": sub_id},
            "type": "subscription_details",
        },
        "payments": stripe_list(
            [
                {
                    "id": f"inpay_{id[3:]}",
                    "object": "invoice_payment",
                    "payment": {"charge": charge_id, "type": "charge"},
                    "status": "paid" if paid else "open",
                }
            ]
            if charge_id
            else [],
            f"/v1/invoice_payments?invoice={id}",
        ),
        "period_end": unix(created),
        "period_start": unix(created - timedelta(days=30)),
        "starting_balance": 0,
        "status": status,
        "status_transitions": {"paid_at": unix(created) if paid else None},
        "subtotal": amount,
        "total": amount,
        "total_discount_amounts": [],
        "total_taxes": [],
    }


def line(
    id: str, invoice_id: str, amount: int, start: datetime, end: datetime, price_id: str
) -> Obj:
    return {
        "id": id,
        "object": "line_item",
        "amount": amount,
        "currency": "usd",
        "description": "50 × Enterprise Pro (at $48.00 / month)",
        "discount_amounts": [],
        "invoice": invoice_id,
        "livemode": False,
        "metadata": {},
        "parent": {
            "subscription_item_details": {"proration": False, "subscription_item": "si_acme_plan"},
            "type": "subscription_item_details",
        },
        "period": {"end": unix(end), "start": unix(start)},
        "pricing": {
            "price_details": {"price": price_id, "product": "prod_pro"},
            "type": "price_details",
        },
        "quantity": 50,
        "taxes": [],
    }


@dataclass
class Account:
    """Ids of the seeded account, for readable tests."""

    now: datetime
    customer: str = "cus_acme"
    other_customer: str = "cus_other"
    trial_customer: str = "cus_trial"
    subscription: str = "sub_acme"
    trial_subscription: str = "sub_trial"
    other_subscription: str = "sub_other"
    plan_item: str = "si_acme_plan"
    paid_charge: str = "ch_acme_paid"
    failed_charge: str = "ch_acme_failed"
    dup_first: str = "ch_acme_dup1"
    dup_second: str = "ch_acme_dup2"
    old_charge: str = "ch_acme_old"
    disputed_charge: str = "ch_acme_disputed"
    other_charge: str = "ch_other_paid"
    paid_invoice: str = "in_acme_paid"
    open_invoice: str = "in_acme_open"
    other_invoice: str = "in_other_open"
    upgrade_price: str = "price_ultimate_seat"
    downgrade_price: str = "price_business_seat"
    current_price: str = "price_pro_seat"
    eur_price: str = "price_pro_seat_eur"
    archived_price: str = "price_legacy_seat"
    one_time_price: str = "price_onboarding"


def account_seed(workspace: Any, now: datetime | None = None) -> Account:
    """Acme Corp (45 of 50 seats, add-ons, a paid and a failed invoice, a duplicate pair, an
    old and a disputed charge), a trialing customer and another customer, in the mirror."""
    now = now or timezone.now()
    acc = Account(now=now)
    start, end = now - timedelta(days=10), now + timedelta(days=20)

    def put(obj: Obj) -> None:
        mirror_upsert(workspace=workspace, obj=obj)

    products = [
        product("prod_pro", "Enterprise Pro", now, ("SSO", "Audit log")),
        product("prod_ultimate", "Enterprise Ultimate", now, ("SSO", "Audit log", "Sandbox orgs")),
        product("prod_business", "Business", now),
        product("prod_analytics", "Advanced Analytics", now),
        product("prod_support", "Priority Support", now),
        product("prod_api", "API Extra Pack", now),
        product("prod_onboarding", "Onboarding", now),
    ]
    for p in products:
        put(p)
    prices = {
        "price_pro_seat": price("price_pro_seat", "prod_pro", 4800, now),
        "price_ultimate_seat": price("price_ultimate_seat", "prod_ultimate", 7200, now),
        "price_business_seat": price("price_business_seat", "prod_business", 3000, now),
        "price_pro_seat_eur": price("price_pro_seat_eur", "prod_pro", 4400, now, currency="eur"),
        "price_legacy_seat": price("price_legacy_seat", "prod_pro", 3900, now, active=False),
        "price_onboarding": price("price_onboarding", "prod_onboarding", 90000, now, interval=None),
        "price_analytics": price("price_analytics", "prod_analytics", 50000, now),
        "price_support": price("price_support", "prod_support", 30000, now),
        "price_api": price("price_api", "prod_api", 20000, now),
    }
    for p in prices.values():
        put(p)

    put(customer("cus_acme", "Acme Corp", "billing@acme.example", now))
    put(customer("cus_trial", "Trial Co", "ops@trial.example", now))
    put(customer("cus_other", "Other Inc", "ap@other.example", now))

    put(
        subscription(
            "sub_acme",
            "cus_acme",
            [
                item("si_acme_plan", "sub_acme", prices["price_pro_seat"], 50, start, end),
                item("si_acme_analytics", "sub_acme", prices["price_analytics"], 1, start, end),
                item("si_acme_support", "sub_acme", prices["price_support"], 1, start, end),
                item("si_acme_api", "sub_acme", prices["price_api"], 1, start, end),
            ],
            now,
            metadata={"seats_used": "45"},
        )
    )
    put(
        subscription(
            "sub_trial",
            "cus_trial",
            [item("si_trial_plan", "sub_trial", prices["price_pro_seat"], 10, start, end)],
            now,
            status="trialing",
            trial_end=now + timedelta(days=4),
        )
    )
    put(
        subscription(
            "sub_other",
            "cus_other",
            [item("si_other_plan", "sub_other", prices["price_pro_seat"], 5, start, end)],
            now,
        )
    )

    put(
        charge(
            "ch_acme_paid", "cus_acme", 340000, now - timedelta(days=10), invoice_id="in_acme_paid"
        )
    )
    put(
        charge(
            "ch_acme_failed",
            "cus_acme",
            340000,
            now - timedelta(hours=5),
            status="failed",
            invoice_id="in_acme_open",
            failure_code="expired_card",
        )
    )
    put(charge("ch_acme_dup1", "cus_acme", 4900, now - timedelta(days=1)))
    put(charge("ch_acme_dup2", "cus_acme", 4900, now - timedelta(days=1) + timedelta(hours=2)))
    put(charge("ch_acme_old", "cus_acme", 240000, now - timedelta(days=200)))
    put(charge("ch_acme_disputed", "cus_acme", 12000, now - timedelta(days=3), disputed=True))
    put(charge("ch_other_paid", "cus_other", 24000, now - timedelta(days=2)))

    month_start = now - timedelta(days=40)
    put(
        invoice(
            "in_acme_paid",
            "cus_acme",
            "sub_acme",
            340000,
            now - timedelta(days=10),
            status="paid",
            charge_id="ch_acme_paid",
            lines=[
                line(
                    "il_acme_paid_plan",
                    "in_acme_paid",
                    240000,
                    month_start,
                    month_start + timedelta(days=30),
                    "price_pro_seat",
                )
            ],
        )
    )
    put(
        invoice(
            "in_acme_open",
            "cus_acme",
            "sub_acme",
            340000,
            now - timedelta(hours=6),
            status="open",
            charge_id="ch_acme_failed",
            attempt_count=1,
        )
    )
    put(
        invoice(
            "in_other_open", "cus_other", "sub_other", 24000, now - timedelta(days=1), status="open"
        )
    )
    put(invoice("in_acme_draft", "cus_acme", "sub_acme", 1000, now, status="draft"))
    return acc


def addon_account_seed(workspace: Any, now: datetime | None = None) -> None:
    """Add-on Co: a per-seat plan item (3 × $20.00 a month) and a $300.00 a month add-on
    item whose product says ``addon: "true"`` — the add-on is the larger item, so only the
    add-on flag tells the plan item apart."""
    now = now or timezone.now()
    start, end = now - timedelta(days=10), now + timedelta(days=20)

    def put(obj: Obj) -> None:
        mirror_upsert(workspace=workspace, obj=obj)

    put(product("prod_team", "Team", now))
    platform = product("prod_platform", "Platform Add-on", now)
    platform["metadata"] = {"addon": "true"}
    put(platform)
    seat = price("price_team_seat", "prod_team", 2000, now)
    addon = price("price_platform", "prod_platform", 30000, now)
    put(seat)
    put(addon)
    put(customer("cus_addon", "Add-on Co", "billing@addon.example", now))
    put(
        subscription(
            "sub_addon",
            "cus_addon",
            [
                item("si_addon_plan", "sub_addon", seat, 3, start, end),
                item("si_addon_platform", "sub_addon", addon, 1, start, end),
            ],
            now,
        )
    )


def next_key(prefix: str = "key") -> str:
    return f"{prefix}-{next(_seq)}"


class ProviderSpy:
    """Wraps whatever provider ``get_provider`` returns: records every call, can fail some.

    ``fail(method, *exceptions)`` makes the next calls of ``method`` raise those
    exceptions, in order, before reaching the real provider (so nothing happens
    there), then calls go through again.
    """

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.failures: dict[str, list[BaseException]] = {}

    def fail(self, method: str, *exceptions: BaseException) -> None:
        self.failures.setdefault(method, []).extend(exceptions)

    def writes(self, method: str | None = None) -> list[tuple[str, dict[str, Any]]]:
        return [
            (name, kwargs)
            for name, kwargs in self.calls
            if "idempotency_key" in kwargs and (method is None or name == method)
        ]

    def wrap(self, inner: Any) -> Any:
        spy = self

        class Wrapped:
            def __getattr__(self, name: str) -> Any:
                attr = getattr(inner, name)
                if name.startswith("_") or not callable(attr):
                    return attr

                def call(*args: Any, **kwargs: Any) -> Any:
                    spy.calls.append((name, kwargs))
                    pending = spy.failures.get(name)
                    if pending:
                        raise pending.pop(0)
                    return attr(*args, **kwargs)

                return call

        return Wrapped()
