"""The one billing account every provider in the contract suite starts from.

Stripe-shaped objects (built from the project's Stripe fixtures, ``tests/fixtures/stripe``,
which follow Stripe's own examples), dated around ``now`` so a test reads in days:
a period that started 10 days ago and ends in 20, a charge made 2 days ago.

Acme (``ACME``) holds the add-on case of issue 13: subscription ``SUB`` with a per-seat
plan item (3 × $20/month on the Pro product) and a $300/month add-on item whose
product carries ``metadata.addon = "true"``. Beta (``BETA``) pays by a card that has
expired by the next renewal, so its renewal fails.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from tests.billing_app.stripe_support import load as load_fixture

Obj = dict[str, Any]
DAY = 86_400

ACME = "cus_ContractAcme01"
BETA = "cus_ContractBeta01"
GAMMA = "cus_ContractGamma1"  # no open invoice: a payment link is a Checkout
ACME_EMAIL = "billing@acme-contract.example"
PM_ACME = "pm_ContractAcmeVisa"
PM_BETA = "pm_ContractBetaExpired"

PROD_PRO = "prod_ContractPro"
PROD_BUSINESS = "prod_ContractBusiness"
PROD_ADDON = "prod_ContractPrioritySupport"

PRICE_PRO = "price_ContractPro20"  # $20 / seat / month: Acme's plan
PRICE_PRO_25 = "price_ContractPro25"  # the same product, dearer: an upgrade
PRICE_PRO_15 = "price_ContractPro15"  # the same product, cheaper: a downgrade
PRICE_PRO_YEARLY = "price_ContractPro240y"  # $240 / seat / year: an interval change
PRICE_BUSINESS = "price_ContractBusiness30"  # another product, $30 / seat / month
PRICE_ADDON = "price_ContractSupport300"  # the add-on, $300 / month
PRICE_ARCHIVED = "price_ContractProOld"
PRICE_ONE_TIME = "price_ContractSetupFee"
PRICE_EUR = "price_ContractProEur"
PRICE_TIERED = "price_ContractProTiered"

SUB = "sub_ContractAcme01"
SI_PLAN = "si_ContractAcmePlan"
SI_ADDON = "si_ContractAcmeAddon"
SUB_TRIAL = "sub_ContractAcmeTrial"
SI_TRIAL = "si_ContractAcmeTrial"
SUB_CANCELED = "sub_ContractAcmeOld"
SI_CANCELED = "si_ContractAcmeOld"
SUB_ADDON_ONLY = "sub_ContractAcmeAddonOnly"
SI_ADDON_ONLY = "si_ContractAcmeAddonOnly"
SUB_BETA = "sub_ContractBeta01"
SI_BETA = "si_ContractBetaPlan"

INV_OPEN = "in_ContractAcmeOpen"  # open, sent by email (send_invoice)
INV_PAID = "in_ContractAcmePaid"
INV_DRAFT = "in_ContractAcmeDraft"
INV_BETA = "in_ContractBetaPaid"
CH_PAID = "ch_ContractAcmePaid"  # $360, two days ago
CH_FAILED = "ch_ContractAcmeFailed"
CH_DISPUTED = "ch_ContractAcmeDisputed"
CH_OLD = "ch_ContractAcmeOld"  # past the refund window
CH_BETA = "ch_ContractBetaPaid"


@dataclass(frozen=True)
class World:
    now: datetime
    period_start: int
    period_end: int
    objects: list[Obj] = field(default_factory=list)

    def get(self, object_id: str) -> Obj:
        return copy.deepcopy(next(o for o in self.objects if o["id"] == object_id))


def load(fixture: str, **fields: Any) -> Obj:
    """A project Stripe fixture with fields replaced (``name`` included)."""
    obj = load_fixture(fixture)
    obj.update(copy.deepcopy(fields))
    return obj


def unix(value: datetime) -> int:
    return int(value.timestamp())


def _product(product_id: str, name: str, *, addon: bool = False) -> Obj:
    return load(
        "product",
        id=product_id,
        name=name,
        default_price=None,
        metadata={"addon": "true"} if addon else {},
    )


def _price(
    price_id: str,
    product: str,
    unit_amount: int | None,
    *,
    interval: str | None = "month",
    currency: str = "usd",
    active: bool = True,
) -> Obj:
    price = load(
        "price_team",
        id=price_id,
        product=product,
        unit_amount=unit_amount,
        unit_amount_decimal=str(unit_amount) if unit_amount is not None else None,
        currency=currency,
        active=active,
        lookup_key=None,
        nickname=price_id,
        metadata={},
    )
    if interval is None:
        price.update(type="one_time", recurring=None)
    else:
        price["recurring"] = {**(price.get("recurring") or {}), "interval": interval}
        price["recurring"]["interval_count"] = 1
        price["type"] = "recurring"
    if unit_amount is None:
        price.update(billing_scheme="tiered", tiers_mode="graduated")
    return price


def _item(item_id: str, sub_id: str, price: Obj, quantity: int, start: int, end: int) -> Obj:
    return {
        "id": item_id,
        "object": "subscription_item",
        "created": start,
        "current_period_start": start,
        "current_period_end": end,
        "discounts": [],
        "metadata": {},
        "price": copy.deepcopy(price),
        "quantity": quantity,
        "subscription": sub_id,
        "tax_rates": [],
        "billing_thresholds": None,
    }


def _subscription(
    sub_id: str, customer: str, items: list[Obj], start: int, *, status: str = "active", **extra
) -> Obj:
    subscription = load(
        "subscription",
        id=sub_id,
        customer=customer,
        status=status,
        start_date=start,
        created=start,
        # The cycle is set at the period end (the first period was a partial one, as when a
        # subscription is created with a later billing_cycle_anchor): renewals fall a
        # calendar month apart from there, whatever month the world is built in.
        billing_cycle_anchor=items[0]["current_period_end"],
        collection_method="charge_automatically",
        currency="usd",
        discounts=[],
        latest_invoice=None,
        schedule=None,
        pause_collection=None,
        cancel_at=None,
        cancel_at_period_end=False,
        canceled_at=None,
        ended_at=None,
        trial_start=None,
        trial_end=None,
        default_payment_method=None,
        metadata={},
        cancellation_details={"comment": None, "feedback": None, "reason": None},
    )
    subscription["items"] = {
        "object": "list",
        "data": items,
        "has_more": False,
        "total_count": len(items),
        "url": f"/v1/subscription_items?subscription={sub_id}",
    }
    subscription.update(extra)
    return subscription


def _customer(customer_id: str, name: str, email: str, pm: str | None) -> Obj:
    return load(
        "customer",
        id=customer_id,
        name=name,
        email=email,
        description=name,
        balance=0,
        currency="usd",
        delinquent=False,
        discount=None,
        metadata={},
        invoice_prefix=customer_id[-6:].upper(),
        invoice_settings={
            "custom_fields": None,
            "default_payment_method": pm,
            "footer": None,
            "rendering_options": None,
        },
        tax_ids={
            "object": "list",
            "data": [],
            "has_more": False,
            "url": f"/v1/customers/{customer_id}/tax_ids",
        },
    )


def _card(pm_id: str, customer: str, *, exp_month: int, exp_year: int, last4: str) -> Obj:
    pm = load("payment_method", id=pm_id, customer=customer)
    pm["card"] = {**pm["card"], "exp_month": exp_month, "exp_year": exp_year, "last4": last4}
    pm["card"]["fingerprint"] = f"fp{pm_id}"
    return pm


def _line(invoice_id: str, sub_id: str, item: Obj, start: int, end: int) -> Obj:
    price = item["price"]
    amount = int(price["unit_amount"]) * int(item["quantity"])
    return {
        "id": f"il_{invoice_id}_{item['id']}",
        "object": "line_item",
        "amount": amount,
        "currency": "usd",
        "description": f"{item['quantity']} × {price['id']}",
        "discount_amounts": [],
        "discountable": True,
        "discounts": [],
        "invoice": invoice_id,
        "livemode": False,
        "metadata": {},
        "parent": {
            "invoice_item_details": None,
            "subscription_item_details": {
                "invoice_item": None,
                "proration": False,
                "proration_details": {"credited_items": None},
                "subscription": sub_id,
                "subscription_item": item["id"],
            },
            "type": "subscription_item_details",
        },
        "period": {"end": end, "start": start},
        "pretax_credit_amounts": [],
        "pricing": {
            "price_details": {"price": price["id"], "product": price["product"]},
            "type": "price_details",
            "unit_amount_decimal": str(price["unit_amount"]),
        },
        "quantity": item["quantity"],
        "subtotal": amount,
        "taxes": [],
    }


def _invoice(
    invoice_id: str,
    customer: str,
    sub_id: str,
    items: list[Obj],
    start: int,
    end: int,
    *,
    status: str,
    collection: str = "charge_automatically",
    charge: str | None = None,
    due_date: int | None = None,
) -> Obj:
    lines = [_line(invoice_id, sub_id, item, start, end) for item in items]
    total = sum(line["amount"] for line in lines)
    paid = status == "paid"
    invoice = load(
        "invoice",
        id=invoice_id,
        customer=customer,
        status=status,
        collection_method=collection,
        billing_reason="subscription_cycle",
        created=start,
        effective_at=start if status != "draft" else None,
        period_start=start,
        period_end=start,
        amount_due=total,
        amount_paid=total if paid else 0,
        amount_remaining=0 if paid else total,
        subtotal=total,
        subtotal_excluding_tax=total,
        total=total,
        total_excluding_tax=total,
        starting_balance=0,
        ending_balance=0 if status != "draft" else None,
        attempt_count=1 if paid else 0,
        attempted=paid,
        due_date=due_date,
        next_payment_attempt=None,
        number=None if status == "draft" else f"{customer[-6:].upper()}-{invoice_id[-4:]}",
        hosted_invoice_url=None
        if status == "draft"
        else f"https://invoice.stripe.com/i/acct_test/{invoice_id}",
        invoice_pdf=None
        if status == "draft"
        else f"https://pay.stripe.com/invoice/{invoice_id}/pdf",
        discounts=[],
        total_discount_amounts=[],
        total_taxes=[],
        customer_tax_ids=[],
    )
    invoice["parent"] = {
        "quote_details": None,
        "subscription_details": {"metadata": {}, "subscription": sub_id},
        "type": "subscription_details",
    }
    invoice["status_transitions"] = {
        "finalized_at": start if status != "draft" else None,
        "marked_uncollectible_at": None,
        "paid_at": start + 3600 if paid else None,
        "voided_at": None,
    }
    invoice["lines"] = {
        "object": "list",
        "data": lines,
        "has_more": False,
        "total_count": len(lines),
        "url": f"/v1/invoices/{invoice_id}/lines",
    }
    payments = []
    if charge:
        payments.append(
            {
                "id": f"inpay_{invoice_id}",
                "object": "invoice_payment",
                "amount_paid": total if paid else None,
                "amount_requested": total,
                "created": start,
                "currency": "usd",
                "invoice": invoice_id,
                "is_default": True,
                "livemode": False,
                "payment": {"payment_intent": f"pi_{charge[3:]}", "type": "payment_intent"},
                "status": "paid" if paid else "open",
                "status_transitions": {
                    "canceled_at": None,
                    "paid_at": start + 3600 if paid else None,
                },
            }
        )
    invoice["payments"] = {
        "object": "list",
        "data": payments,
        "has_more": False,
        "total_count": len(payments),
        "url": f"/v1/invoices/{invoice_id}/payments",
    }
    return invoice


def _charge(
    charge_id: str,
    customer: str,
    pm: str,
    amount: int,
    created: int,
    *,
    status: str = "succeeded",
    disputed: bool = False,
    currency: str = "usd",
) -> Obj:
    failed = status == "failed"
    charge = load(
        "charge",
        id=charge_id,
        customer=customer,
        amount=amount,
        amount_captured=0 if failed else amount,
        amount_refunded=0,
        refunded=False,
        captured=not failed,
        paid=not failed,
        status=status,
        disputed=disputed,
        created=created,
        currency=currency,
        payment_intent=f"pi_{charge_id[3:]}",
        payment_method=pm,
        failure_code="card_declined" if failed else None,
        failure_message="Your card was declined." if failed else None,
        balance_transaction=None if failed else f"txn_{charge_id[3:]}",
    )
    charge["outcome"] = {
        **charge["outcome"],
        "type": "issuer_declined" if failed else "authorized",
        "reason": "generic_decline" if failed else None,
        "network_status": "declined_by_network" if failed else "approved_by_network",
        "seller_message": "The bank did not return any further details with this decline."
        if failed
        else "Payment complete.",
    }
    charge["refunds"] = {
        "object": "list",
        "data": [],
        "has_more": False,
        "total_count": 0,
        "url": f"/v1/charges/{charge_id}/refunds",
    }
    return charge


def world_build(now: datetime) -> World:
    """The contract account at ``now`` (whole seconds, UTC)."""
    now = now.astimezone(UTC).replace(microsecond=0)
    start = unix(now - timedelta(days=10))
    end = unix(now + timedelta(days=20))
    past = unix(now - timedelta(days=40))
    future_card = now + timedelta(days=400)
    expired_by_renewal = now + timedelta(days=20) - timedelta(days=35)

    products = [
        _product(PROD_PRO, "Pro"),
        _product(PROD_BUSINESS, "Business"),
        _product(PROD_ADDON, "Priority Support", addon=True),
    ]
    prices = {
        PRICE_PRO: _price(PRICE_PRO, PROD_PRO, 2000),
        PRICE_PRO_25: _price(PRICE_PRO_25, PROD_PRO, 2500),
        PRICE_PRO_15: _price(PRICE_PRO_15, PROD_PRO, 1500),
        PRICE_PRO_YEARLY: _price(PRICE_PRO_YEARLY, PROD_PRO, 24000, interval="year"),
        PRICE_BUSINESS: _price(PRICE_BUSINESS, PROD_BUSINESS, 3000),
        PRICE_ADDON: _price(PRICE_ADDON, PROD_ADDON, 30000),
        PRICE_ARCHIVED: _price(PRICE_ARCHIVED, PROD_PRO, 1800, active=False),
        PRICE_ONE_TIME: _price(PRICE_ONE_TIME, PROD_PRO, 5000, interval=None),
        PRICE_EUR: _price(PRICE_EUR, PROD_PRO, 2200, currency="eur"),
        PRICE_TIERED: _price(PRICE_TIERED, PROD_PRO, None),
    }
    customers = [
        _customer(ACME, "Acme Contract", ACME_EMAIL, PM_ACME),
        _customer(BETA, "Beta Contract", "ap@beta-contract.example", PM_BETA),
        _customer(GAMMA, "Gamma Contract", "ap@gamma-contract.example", None),
    ]
    cards = [
        _card(PM_ACME, ACME, exp_month=future_card.month, exp_year=future_card.year, last4="4242"),
        _card(
            PM_BETA,
            BETA,
            exp_month=expired_by_renewal.month,
            exp_year=expired_by_renewal.year,
            last4="0341",
        ),
    ]
    plan = _item(SI_PLAN, SUB, prices[PRICE_PRO], 3, start, end)
    addon = _item(SI_ADDON, SUB, prices[PRICE_ADDON], 1, start, end)
    trial_item = _item(SI_TRIAL, SUB_TRIAL, prices[PRICE_PRO], 1, start, end)
    old_item = _item(SI_CANCELED, SUB_CANCELED, prices[PRICE_PRO], 2, past, start)
    addon_only = _item(SI_ADDON_ONLY, SUB_ADDON_ONLY, prices[PRICE_ADDON], 1, start, end)
    beta_item = _item(SI_BETA, SUB_BETA, prices[PRICE_PRO], 2, start, end)
    subscriptions = [
        _subscription(SUB, ACME, [plan, addon], past, latest_invoice=INV_PAID),
        _subscription(
            SUB_TRIAL,
            ACME,
            [trial_item],
            start,
            status="trialing",
            trial_start=start,
            trial_end=unix(now + timedelta(days=5)),
        ),
        _subscription(
            SUB_CANCELED,
            ACME,
            [old_item],
            past,
            status="canceled",
            canceled_at=start,
            ended_at=start,
        ),
        _subscription(SUB_ADDON_ONLY, ACME, [addon_only], start),
        _subscription(SUB_BETA, BETA, [beta_item], past, latest_invoice=INV_BETA),
    ]
    invoices = [
        _invoice(
            INV_OPEN,
            ACME,
            SUB,
            [plan],
            start - DAY,
            end,
            status="open",
            collection="send_invoice",
            due_date=unix(now + timedelta(days=4)),
        ),
        _invoice(INV_PAID, ACME, SUB, [plan, addon], start, end, status="paid", charge=CH_PAID),
        _invoice(INV_DRAFT, ACME, SUB, [plan], start, end, status="draft"),
        _invoice(INV_BETA, BETA, SUB_BETA, [beta_item], start, end, status="paid", charge=CH_BETA),
    ]
    two_days_ago = unix(now - timedelta(days=2))
    charges = [
        _charge(CH_PAID, ACME, PM_ACME, 36000, two_days_ago),
        _charge(CH_FAILED, ACME, PM_ACME, 6000, two_days_ago, status="failed"),
        _charge(CH_DISPUTED, ACME, PM_ACME, 6000, two_days_ago, disputed=True),
        _charge(CH_OLD, ACME, PM_ACME, 6000, unix(now - timedelta(days=400))),
        _charge(CH_BETA, BETA, PM_BETA, 4000, two_days_ago),
    ]
    return World(
        now=now,
        period_start=start,
        period_end=end,
        objects=[
            *products,
            *prices.values(),
            *customers,
            *cards,
            *subscriptions,
            *invoices,
            *charges,
        ],
    )
