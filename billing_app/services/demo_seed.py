"""The demo's sandbox workspace and billing customers (``manage.py seed_demo``).

Idempotent: re-running resets the seeded customers' billing objects to the
seeded state (same ids, nothing duplicated), keeps Billing Desk's own records
(actions, approvals, pins), and generates a new admin password. Dates are
relative to the seeding moment so the demo always looks current;
``as_of=2026-01-15`` reproduces the product brief's own dates and freezes the
sandbox clock on that day.

Acme Corp — the brief's BILLING CONTEXT screen
==============================================

The brief's figures cannot all come from one monthly subscription: six paid
invoices of $2,400 in the last six months and a next invoice of $2,400, yet an
MRR of $3,400 (the $2,400 plan plus $1,000 of add-ons) and $136,800 of revenue
over 22 months. The history below makes every figure true at once:

* **Year one** (start = as_of − 22 months; 2024-03-15): a prepaid annual
  contract, Enterprise Pro for 175 seats at $576/seat/year — one invoice
  ``INV-2024-03`` of **$100,800.00**, paid by bank transfer (ACH) three days later.
* **Renewal** (start + 12 months; 2025-03-15): Acme right-sized to 50 seats,
  moved the plan to monthly invoicing and bought the three add-ons on an annual
  term of their own, billed on the contract anniversary: Advanced Analytics
  $6,000/year, Priority Support $3,600/year, API Extra Pack $2,400/year — one
  invoice ``INV-2025-03`` of **$12,000.00**, paid by Visa. (Add-ons billed yearly
  are why they never appear in the monthly history, and why the next invoice is
  the plan's $2,400 alone.)
* **Monthly plan invoices**: the billing cycle is anchored on the 28th (Acme's
  month-end close; the 13 days from the anniversary to the first 28th were not
  charged — the anchor moved with ``proration_behavior=none``). Each invoice
  (50 × Enterprise Pro at $48.00 / month = **$2,400.00**, net-30,
  ``collection_method=send_invoice``) is finalized on the 28th and paid with
  the Visa on the 1st, Acme's accounts-payable run, and numbered for that month:
  ``INV-2025-04`` … ``INV-2026-01`` — ten invoices, **$24,000.00**.

Revenue: 100,800 + 12,000 + 10 × 2,400 = **$136,800.00**; months active: 22
(from the start date); MRR: 50 × $48 + $12,000 / 12 = **$3,400**; ARR
**$40,800**; contract end: the next anniversary (2026-03-15, annual, auto-renew
on); renews on the 28th (2026-01-28) with a next invoice of $2,400; Visa 4242
expiring 14 months after as_of (03/2027); seats 45 of 50 (subscription
metadata ``seats_used``); no failures, no credits; churn risk Low (on-time
payments, high usage).

The other customers, one per playbook scenario (the requesters of the demo
page's tickets) and the reading edge cases: a failed payment on an expired card
(Northwind Traders), a duplicate charge three minutes apart yesterday (Globex),
an overcharge after a mid-cycle seat increase (Initech), a trial ending in three
days (Umbrella Labs), an EU company asking for a tax invoice with no VAT id or
street address on file, billed in EUR with 19% VAT (Hooli GmbH), a refund request
for an annual plan bought by mistake (Vandelay Industries), three refunds in 90
days (Wayne Services), a JPY customer (Sakura Trading), and one billing email
shared by two customers (Stark Industries and Stark Retail).
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from dateutil.relativedelta import relativedelta
from django.conf import settings
from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone

from helpdesk_connectors.models import Installation

from ..errors import Conflict
from ..models import (
    MirrorBalanceTransaction,
    MirrorCharge,
    MirrorCustomer,
    MirrorDiscount,
    MirrorInvoice,
    MirrorInvoiceLine,
    MirrorPaymentMethod,
    MirrorRefund,
    MirrorSubscription,
    MirrorSubscriptionItem,
    SandboxControl,
    SandboxIdempotency,
    Workspace,
)
from ..providers.sandbox import objects as o
from ..providers.sandbox.proration import prorate, proration_date_label
from .mirror import mirror_upsert
from .workspaces import installation_add, workspace_create

Obj = dict[str, Any]

WORKSPACE_SLUG = "acme"
DEMO_WORKSPACE_SLUG = WORKSPACE_SLUG
WORKSPACE_NAME = "Acme Billing"
DEMO_DOMAIN = "demo.billing-desk.local"
ADMIN_USERNAME = "admin"
# Marks the admin user the seed created: only that user's password is ever reset.
ADMIN_EMAIL = "admin@billing-desk.local"

ACME = "cus_sbx_acme"
SEEDED_CUSTOMERS = (
    ACME,
    "cus_sbx_northwind",
    "cus_sbx_globex",
    "cus_sbx_initech",
    "cus_sbx_umbrella",
    "cus_sbx_hooli",
    "cus_sbx_vandelay",
    "cus_sbx_wayne",
    "cus_sbx_sakura",
    "cus_sbx_stark_ind",
    "cus_sbx_stark_retail",
)


@dataclass
class SeededCustomer:
    id: str
    name: str
    email: str
    scenario: str


@dataclass
class SeedSummary:
    workspace: Workspace
    created_workspace: bool
    admin_username: str
    # None when "admin" is an existing user the seed did not create (left untouched).
    admin_password: str | None
    admin_url: str
    demo_url: str
    as_of: datetime
    clock_frozen: bool
    # Keyed by scenario: acme, failed-payment, duplicate-charge, overcharge, trialing,
    # tax-invoice, refund-request, refund-pattern, jpy, several-matches-active/-canceled.
    customers: dict[str, SeededCustomer] = field(default_factory=dict)
    # Refunds that exist in the seeded history (tests tell them from new ones).
    refund_ids: list[str] = field(default_factory=list)
    acme_last_charge_id: str = ""

    @property
    def acme_id(self) -> str:
        return ACME


class _Catalog:
    """The sandbox's products and prices (upserted, never duplicated)."""

    def __init__(self, created: datetime):
        self.created = created
        self.products: dict[str, Obj] = {}
        self.prices: dict[str, Obj] = {}

    def price(
        self,
        key: str,
        name: str,
        amount: int,
        currency: str = "usd",
        interval: str | None = "month",
        addon: bool = False,
    ) -> Obj:
        product_id = f"prod_sbx_{key.split('__')[0]}"
        product = self.products.get(product_id) or o.product(
            id=product_id,
            name=name,
            created=self.created,
            metadata={"addon": "true"} if addon else {},
        )
        self.products[product_id] = product
        price = o.price(
            id=f"price_sbx_{key}",
            product=product,
            unit_amount=amount,
            currency=currency,
            created=self.created,
            interval=interval,
            nickname=name,
        )
        self.prices[price["id"]] = price
        return price


class _Seeder:
    def __init__(self, as_of: datetime):
        self.as_of = as_of
        self.objects: list[Obj] = []
        self.catalog = _Catalog(as_of - relativedelta(years=3))
        self.customers: dict[str, SeededCustomer] = {}
        self.acme_last_charge_id = ""
        c = self.catalog
        self.starter = c.price("starter__monthly", "Starter", 4900)
        self.pro = c.price("pro__monthly", "Pro", 14900)
        self.pro_annual = c.price("pro__annual", "Pro", 149000, interval="year")
        self.team = c.price("team__monthly", "Team", 29900)
        self.business = c.price("business__monthly", "Business", 3000)
        self.enterprise = c.price("enterprise_pro__monthly", "Enterprise Pro", 4800)
        self.enterprise_annual = c.price(
            "enterprise_pro__annual", "Enterprise Pro", 57600, interval="year"
        )
        self.enterprise_plus = c.price("enterprise_plus__monthly", "Enterprise Plus", 6400)
        self.analytics = c.price(
            "advanced_analytics__annual", "Advanced Analytics", 600000, interval="year", addon=True
        )
        self.support = c.price(
            "priority_support__annual", "Priority Support", 360000, interval="year", addon=True
        )
        self.api_pack = c.price(
            "api_extra_pack__annual", "API Extra Pack", 240000, interval="year", addon=True
        )
        self.growth_eur = c.price("growth__eur_monthly", "Growth", 99000, currency="eur")
        self.growth_plus_eur = c.price(
            "growth_plus__eur_monthly", "Growth Plus", 149000, currency="eur"
        )
        self.standard_jpy = c.price("standard__jpy_monthly", "Standard", 49800, currency="jpy")
        self.premium_jpy = c.price("premium__jpy_monthly", "Premium", 98000, currency="jpy")

    # --- building blocks ---

    def put(self, *objs: Obj) -> None:
        self.objects.extend(objs)

    def customer(self, key: str, scenario: str, **kwargs: Any) -> Obj:
        obj = o.customer(**kwargs)
        self.customers[key] = SeededCustomer(obj["id"], obj["name"], obj["email"], scenario)
        return obj

    def card(
        self,
        customer_id: str,
        brand: str,
        last4: str,
        exp: datetime,
        name: str,
        country: str = "US",
    ) -> Obj:
        return o.card_payment_method(
            id=f"pm_sbx_{customer_id.removeprefix('cus_sbx_')}_{brand}_{last4}",
            customer_id=customer_id,
            created=self.as_of - relativedelta(years=2),
            brand=brand,
            last4=last4,
            exp_month=exp.month,
            exp_year=exp.year,
            name=name,
            country=country,
        )

    @staticmethod
    def item(
        sub_id: str, price: Obj, qty: int, start: datetime, end: datetime, created: datetime
    ) -> Obj:
        return o.subscription_item(
            id=f"si_sbx_{sub_id.removeprefix('sub_sbx_')}_{price['id'].removeprefix('price_sbx_')}",
            subscription_id=sub_id,
            price=price,
            quantity=qty,
            created=created,
            period_start=start,
            period_end=end,
        )

    def paid_invoice(
        self,
        *,
        id: str,
        customer: Obj,
        number: str,
        created: datetime,
        paid_at: datetime,
        lines: list[Obj],
        pm: Obj,
        subscription_id: str | None,
        period_start: datetime,
        period_end: datetime,
        collection_method: str = "charge_automatically",
        billing_reason: str = "subscription_cycle",
        due_date: datetime | None = None,
        tax_rate_percent: Decimal | None = None,
        refunds: Iterable[tuple[str, int, datetime, str]] = (),
        disputed: bool = False,
    ) -> tuple[Obj, Obj | None]:
        """A finalized, paid invoice and the charge that paid it (none for a zero total)."""
        pi = id.replace("in_", "pi_", 1)
        charge_id = id.replace("in_", "ch_", 1)
        for line in lines:
            line["invoice"] = id
        zero = sum(int(line["amount"]) for line in lines) == 0
        invoice = o.invoice(
            id=id,
            customer=customer,
            number=number,
            created=created,
            lines=lines,
            status="paid",
            period_start=period_start,
            period_end=period_end,
            subscription_id=subscription_id,
            collection_method=collection_method,
            billing_reason=billing_reason,
            due_date=due_date,
            paid_at=paid_at,
            payment_intent=None if zero else pi,
            attempt_count=0 if zero else 1,
            tax_rate_percent=tax_rate_percent,
            tax_rate_id="txr_sbx_de_vat_19" if tax_rate_percent is not None else None,
            default_payment_method=pm["id"],
        )
        if zero:
            self.put(invoice)
            return invoice, None
        refund_objs = [
            o.refund(
                id=refund_id,
                charge_id=charge_id,
                payment_intent=pi,
                amount=amount,
                currency=invoice["currency"],
                created=when,
                reason="requested_by_customer",
                metadata={"billing_desk_reason": reason},
            )
            for refund_id, amount, when, reason in refunds
        ]
        charge = o.charge(
            id=charge_id,
            customer_id=customer["id"],
            amount=invoice["amount_paid"],
            currency=invoice["currency"],
            created=paid_at,
            payment_method=pm,
            payment_intent=pi,
            description=f"Payment for Invoice {number}",
            refunds=refund_objs,
            disputed=disputed,
            receipt_email=customer["email"],
        )
        self.put(invoice, charge)
        return invoice, charge

    def monthly(
        self,
        *,
        customer: Obj,
        sub_id: str,
        price: Obj,
        qty: int,
        anchors: list[datetime],
        pm: Obj,
        prefix: str,
        first_number: int = 1,
        paid_after: timedelta = timedelta(minutes=55),
        tax_rate_percent: Decimal | None = None,
    ) -> list[tuple[Obj, Obj | None]]:
        """A paid invoice per anchor (each the start of a monthly period), oldest first."""
        results = []
        for n, start in enumerate(anchors):
            end = start + relativedelta(months=1)
            invoice_id = f"in_sbx_{customer['id'].removeprefix('cus_sbx_')}_{n + 1:02d}"
            line = o.line_item(
                id=invoice_id.replace("in_", "il_", 1),
                invoice_id=invoice_id,
                amount=int(price["unit_amount"]) * qty,
                currency=price["currency"],
                description=o.recurring_line_description(price, qty),
                period_start=start,
                period_end=end,
                price=price,
                quantity=qty,
                subscription_id=sub_id,
                subscription_item_id=self.item(sub_id, price, qty, start, end, start)["id"],
            )
            results.append(
                self.paid_invoice(
                    id=invoice_id,
                    customer=customer,
                    number=f"{prefix}-{first_number + n:04d}",
                    created=start,
                    paid_at=start + paid_after,
                    lines=[line],
                    pm=pm,
                    subscription_id=sub_id,
                    period_start=start,
                    period_end=end,
                    billing_reason="subscription_create" if n == 0 else "subscription_cycle",
                    tax_rate_percent=tax_rate_percent,
                )
            )
        return results

    @staticmethod
    def anchors(last: datetime, count: int) -> list[datetime]:
        return [last - relativedelta(months=k) for k in range(count - 1, -1, -1)]

    # --- the customers ---

    def acme(self) -> None:
        a = self.as_of
        start = a - relativedelta(months=22)
        renewal = start + relativedelta(months=12)
        card_exp = a + relativedelta(months=14)
        last = a.replace(day=28, hour=0, minute=0, second=0, microsecond=0)
        if last >= a:
            last -= relativedelta(months=1)
        month_anchors = self.anchors(last, 10)
        visa = self.card(ACME, "visa", "4242", card_exp, "Acme Corp")
        bank = o.bank_payment_method(
            id="pm_sbx_acme_bank_6789",
            customer_id=ACME,
            created=start - timedelta(days=10),
            last4="6789",
            bank_name="STRIPE TEST BANK",
            name="Acme Corp",
        )
        cust = self.customer(
            "acme",
            "Brief's sample: Enterprise Pro, 45/50 seats, three add-ons, Low churn risk",
            id=ACME,
            name="Acme Corp",
            email="billing@acme.example",
            created=start - timedelta(days=10),
            currency="usd",
            address=o.address("123 Enterprise Way", "San Francisco", "CA", "94105", "US"),
            default_payment_method=visa,
            metadata={"helpdesk_organization_id": "org-acme"},
            phone="+1 415 555 0100",
            invoice_prefix="INV",
        )
        cust["next_invoice_sequence"] = 13
        plan_sub = "sub_sbx_acme_plan"
        addon_sub = "sub_sbx_acme_addons"
        # Year one: prepaid annual contract, 175 seats.
        year_one_line = o.line_item(
            id="il_sbx_acme_2024_annual",
            invoice_id="in_sbx_acme_year_one",
            amount=175 * 57600,
            currency="usd",
            description=o.recurring_line_description(self.enterprise_annual, 175),
            period_start=start,
            period_end=renewal,
            price=self.enterprise_annual,
            quantity=175,
            subscription_id=plan_sub,
            subscription_item_id="si_sbx_acme_plan_seats",
        )
        self.paid_invoice(
            id="in_sbx_acme_year_one",
            customer=cust,
            number=f"INV-{start:%Y-%m}",
            created=start,
            paid_at=start + timedelta(days=3),
            lines=[year_one_line],
            pm=bank,
            subscription_id=plan_sub,
            period_start=start,
            period_end=renewal,
            collection_method="send_invoice",
            billing_reason="subscription_create",
            due_date=start + timedelta(days=30),
        )
        # Renewal: add-ons on an annual term of their own.
        addon_prices = (self.analytics, self.support, self.api_pack)
        addon_lines = [
            o.line_item(
                id=f"il_sbx_acme_addons_{n}",
                invoice_id="in_sbx_acme_addons_y2",
                amount=int(price["unit_amount"]),
                currency="usd",
                description=o.recurring_line_description(price, 1),
                period_start=renewal,
                period_end=renewal + relativedelta(years=1),
                price=price,
                quantity=1,
                subscription_id=addon_sub,
                subscription_item_id=self.item(addon_sub, price, 1, renewal, renewal, renewal)[
                    "id"
                ],
            )
            for n, price in enumerate(addon_prices)
        ]
        self.paid_invoice(
            id="in_sbx_acme_addons_y2",
            customer=cust,
            number=f"INV-{renewal:%Y-%m}",
            created=renewal,
            paid_at=renewal + timedelta(days=1),
            lines=addon_lines,
            pm=visa,
            subscription_id=addon_sub,
            period_start=renewal,
            period_end=renewal + relativedelta(years=1),
            collection_method="send_invoice",
            billing_reason="subscription_create",
            due_date=renewal + timedelta(days=30),
        )
        # Monthly plan invoices: finalized on the 28th, paid on the 1st.
        latest = ""
        charge: Obj | None = None
        for anchor in month_anchors:
            end = anchor + relativedelta(months=1)
            pay_day = (anchor + relativedelta(months=1)).replace(day=1, hour=9)
            paid_at = min(pay_day, a - timedelta(minutes=1))
            invoice_id = f"in_sbx_acme_{end:%Y_%m}"
            latest = invoice_id
            line = o.line_item(
                id=invoice_id.replace("in_", "il_", 1),
                invoice_id=invoice_id,
                amount=50 * 4800,
                currency="usd",
                description=o.recurring_line_description(self.enterprise, 50),
                period_start=anchor,
                period_end=end,
                price=self.enterprise,
                quantity=50,
                subscription_id=plan_sub,
                subscription_item_id="si_sbx_acme_plan_seats",
            )
            _, charge = self.paid_invoice(
                id=invoice_id,
                customer=cust,
                number=f"INV-{end:%Y-%m}",
                created=anchor,
                paid_at=paid_at,
                lines=[line],
                pm=visa,
                subscription_id=plan_sub,
                period_start=anchor,
                period_end=end,
                collection_method="send_invoice",
                due_date=anchor + timedelta(days=30),
            )
        self.acme_last_charge_id = charge["id"] if charge else ""
        period_end = last + relativedelta(months=1)
        plan_item = o.subscription_item(
            id="si_sbx_acme_plan_seats",
            subscription_id=plan_sub,
            price=self.enterprise,
            quantity=50,
            created=start,
            period_start=last,
            period_end=period_end,
        )
        self.put(
            cust,
            visa,
            bank,
            o.subscription(
                id=plan_sub,
                customer_id=ACME,
                currency="usd",
                items=[plan_item],
                created=start,
                start_date=start,
                billing_cycle_anchor=month_anchors[0],
                collection_method="send_invoice",
                days_until_due=30,
                default_payment_method=visa["id"],
                latest_invoice=latest,
                metadata={"contract_term": "annual", "seats_used": "45"},
            ),
            o.subscription(
                id=addon_sub,
                customer_id=ACME,
                currency="usd",
                items=[
                    self.item(
                        addon_sub, price, 1, renewal, renewal + relativedelta(years=1), renewal
                    )
                    for price in addon_prices
                ],
                created=renewal,
                start_date=renewal,
                billing_cycle_anchor=renewal,
                collection_method="send_invoice",
                days_until_due=30,
                default_payment_method=visa["id"],
                latest_invoice="in_sbx_acme_addons_y2",
                metadata={"contract_term": "annual"},
            ),
        )

    def northwind(self) -> None:
        """Failed payment: the card expired last month; two failed attempts on an open invoice."""
        a, cid = self.as_of, "cus_sbx_northwind"
        card = self.card(
            cid, "mastercard", "4444", a - relativedelta(months=1), "Northwind Traders"
        )
        cust = self.customer(
            "failed-payment",
            "Failed payment: expired card, 2 failed attempts, open invoice",
            id=cid,
            name="Northwind Traders",
            email="ap@northwind.example",
            created=a - relativedelta(months=7, days=5),
            currency="usd",
            address=o.address("2200 Pike Street", "Seattle", "WA", "98101", "US"),
            default_payment_method=card,
            delinquent=True,
            invoice_prefix="NWT",
        )
        current = a - timedelta(days=3)
        anchors = self.anchors(current, 7)
        sub_id = "sub_sbx_northwind"
        self.monthly(
            customer=cust,
            sub_id=sub_id,
            price=self.pro,
            qty=1,
            anchors=anchors[:-1],
            pm=card,
            prefix="NWT",
        )
        invoice_id = "in_sbx_northwind_07"
        pi = "pi_sbx_northwind_07"
        line = o.line_item(
            id="il_sbx_northwind_07",
            invoice_id=invoice_id,
            amount=14900,
            currency="usd",
            description=o.recurring_line_description(self.pro, 1),
            period_start=current,
            period_end=current + relativedelta(months=1),
            price=self.pro,
            quantity=1,
            subscription_id=sub_id,
            subscription_item_id="si_sbx_northwind_pro__monthly",
        )
        attempts = [current + timedelta(hours=1), a - timedelta(days=1)]
        invoice = o.invoice(
            id=invoice_id,
            customer=cust,
            number="NWT-0007",
            created=current,
            lines=[line],
            status="open",
            period_start=current,
            period_end=current + relativedelta(months=1),
            subscription_id=sub_id,
            payment_intent=pi,
            attempt_count=2,
            next_payment_attempt=a + timedelta(days=2),
            default_payment_method=card["id"],
        )
        failures = [
            o.charge(
                id=f"ch_sbx_northwind_07_attempt{n + 1}",
                customer_id=cid,
                amount=14900,
                currency="usd",
                created=when,
                payment_method=card,
                payment_intent=pi,
                description="Payment for Invoice NWT-0007",
                failure_code="expired_card",
            )
            for n, when in enumerate(attempts)
        ]
        self.put(
            cust,
            card,
            invoice,
            *failures,
            o.subscription(
                id=sub_id,
                customer_id=cid,
                currency="usd",
                items=[
                    self.item(
                        sub_id, self.pro, 1, current, current + relativedelta(months=1), anchors[0]
                    )
                ],
                created=anchors[0],
                start_date=anchors[0],
                billing_cycle_anchor=anchors[0],
                status="past_due",
                default_payment_method=card["id"],
                latest_invoice=invoice_id,
            ),
        )

    def globex(self) -> None:
        """Duplicate charge: the latest invoice's payment went through twice, three minutes apart."""
        a, cid = self.as_of, "cus_sbx_globex"
        card = self.card(cid, "visa", "1881", a + relativedelta(years=2), "Globex")
        cust = self.customer(
            "duplicate-charge",
            "Duplicate charge: two identical charges 3 minutes apart",
            id=cid,
            name="Globex",
            email="finance@globex.example",
            created=a - relativedelta(months=5),
            currency="usd",
            address=o.address("500 Corporate Blvd", "Cypress Creek", "OR", "97401", "US"),
            default_payment_method=card,
            invoice_prefix="GLX",
        )
        current = a - timedelta(hours=20)
        anchors = self.anchors(current, 5)
        sub_id = "sub_sbx_globex"
        results = self.monthly(
            customer=cust,
            sub_id=sub_id,
            price=self.team,
            qty=1,
            anchors=anchors,
            pm=card,
            prefix="GLX",
            paid_after=timedelta(minutes=2),
        )
        _, first_charge = results[-1]
        assert first_charge is not None
        duplicate = o.charge(
            id="ch_sbx_globex_duplicate",
            customer_id=cid,
            amount=first_charge["amount"],
            currency="usd",
            created=_ts(first_charge["created"]) + timedelta(minutes=3),
            payment_method=card,
            payment_intent="pi_sbx_globex_retry",
            description="Team subscription payment (gateway retry)",
            receipt_email=cust["email"],
        )
        self.put(
            cust,
            card,
            duplicate,
            o.subscription(
                id=sub_id,
                customer_id=cid,
                currency="usd",
                items=[
                    self.item(
                        sub_id, self.team, 1, current, current + relativedelta(months=1), anchors[0]
                    )
                ],
                created=anchors[0],
                start_date=anchors[0],
                billing_cycle_anchor=anchors[0],
                default_payment_method=card["id"],
                latest_invoice=results[-1][0]["id"],
            ),
        )

    def initech(self) -> None:
        """Overcharge: 20 → 35 seats mid-cycle; the proration landed on the latest invoice."""
        a, cid = self.as_of, "cus_sbx_initech"
        card = self.card(cid, "amex", "8431", a + relativedelta(years=1, months=4), "Initech")
        cust = self.customer(
            "overcharge",
            "Overcharge: mid-cycle seat increase 20 → 35, proration on the last invoice",
            id=cid,
            name="Initech",
            email="accounts@initech.example",
            created=a - relativedelta(months=4, days=10),
            currency="usd",
            address=o.address("4120 Freidrich Lane", "Austin", "TX", "78744", "US"),
            default_payment_method=card,
            invoice_prefix="INI",
        )
        current = a - timedelta(days=5)
        anchors = self.anchors(current, 4)
        sub_id = "sub_sbx_initech"
        self.monthly(
            customer=cust,
            sub_id=sub_id,
            price=self.business,
            qty=20,
            anchors=anchors[:-1],
            pm=card,
            prefix="INI",
        )
        previous_start, previous_end = anchors[-2], current
        change = previous_start + timedelta(days=12, hours=3)
        item_id = "si_sbx_initech_business__monthly"
        invoice_id = "in_sbx_initech_04"
        label = proration_date_label(change)
        credit = -prorate(
            20 * 3000, period_start=previous_start, period_end=previous_end, at=change
        )
        debit = prorate(35 * 3000, period_start=previous_start, period_end=previous_end, at=change)
        common = {
            "invoice_id": invoice_id,
            "currency": "usd",
            "price": self.business,
            "subscription_id": sub_id,
            "subscription_item_id": item_id,
        }
        lines = [
            o.line_item(
                id="il_sbx_initech_04_unused",
                amount=credit,
                description=f"Unused time on 20 × Business after {label}",
                period_start=change,
                period_end=previous_end,
                quantity=20,
                proration=True,
                **common,
            ),
            o.line_item(
                id="il_sbx_initech_04_remaining",
                amount=debit,
                description=f"Remaining time on 35 × Business after {label}",
                period_start=change,
                period_end=previous_end,
                quantity=35,
                proration=True,
                **common,
            ),
            o.line_item(
                id="il_sbx_initech_04_cycle",
                amount=35 * 3000,
                description=o.recurring_line_description(self.business, 35),
                period_start=current,
                period_end=current + relativedelta(months=1),
                quantity=35,
                **common,
            ),
        ]
        self.paid_invoice(
            id=invoice_id,
            customer=cust,
            number="INI-0004",
            created=current,
            paid_at=current + timedelta(minutes=55),
            lines=lines,
            pm=card,
            subscription_id=sub_id,
            period_start=previous_start,
            period_end=current + relativedelta(months=1),
        )
        self.put(
            cust,
            card,
            o.subscription(
                id=sub_id,
                customer_id=cid,
                currency="usd",
                items=[
                    self.item(
                        sub_id,
                        self.business,
                        35,
                        current,
                        current + relativedelta(months=1),
                        anchors[0],
                    )
                ],
                created=anchors[0],
                start_date=anchors[0],
                billing_cycle_anchor=anchors[0],
                default_payment_method=card["id"],
                latest_invoice=invoice_id,
                metadata={"seats_used": "33"},
            ),
        )

    def umbrella(self) -> None:
        """Trialing: the trial ends in three days; no payment method yet."""
        a, cid = self.as_of, "cus_sbx_umbrella"
        trial_start, trial_end = a - timedelta(days=11), a + timedelta(days=3)
        cust = self.customer(
            "trialing",
            "Trialing: trial ends in 3 days, no card on file",
            id=cid,
            name="Umbrella Labs",
            email="sam@umbrella.example",
            created=trial_start - timedelta(hours=2),
            currency="usd",
            address=o.address("1 Raccoon Plaza", "Chicago", "IL", "60601", "US"),
            invoice_prefix="UMB",
        )
        sub_id = "sub_sbx_umbrella"
        invoice_id = "in_sbx_umbrella_trial"
        line = o.line_item(
            id="il_sbx_umbrella_trial",
            invoice_id=invoice_id,
            amount=0,
            currency="usd",
            description="Trial period for Team",
            period_start=trial_start,
            period_end=trial_end,
            price=self.team,
            quantity=1,
            subscription_id=sub_id,
            subscription_item_id="si_sbx_umbrella_team__monthly",
        )
        invoice = o.invoice(
            id=invoice_id,
            customer=cust,
            number="UMB-0001",
            created=trial_start,
            lines=[line],
            status="paid",
            period_start=trial_start,
            period_end=trial_start,
            subscription_id=sub_id,
            billing_reason="subscription_create",
            paid_at=trial_start,
        )
        self.put(
            cust,
            invoice,
            o.subscription(
                id=sub_id,
                customer_id=cid,
                currency="usd",
                items=[self.item(sub_id, self.team, 1, trial_start, trial_end, trial_start)],
                created=trial_start,
                start_date=trial_start,
                billing_cycle_anchor=trial_end,
                status="trialing",
                trial_start=trial_start,
                trial_end=trial_end,
                latest_invoice=invoice_id,
            ),
        )

    def hooli(self) -> None:
        """Tax invoice request: a German company billed in EUR with 19% VAT, no VAT id and no street address on file."""
        a, cid = self.as_of, "cus_sbx_hooli"
        card = self.card(
            cid,
            "visa",
            "3220",
            a + relativedelta(years=1, months=8),
            "Hooli GmbH",
            "DE",
        )
        cust = self.customer(
            "tax-invoice",
            "Tax invoice: EU company (EUR, 19% VAT), no VAT id or street address on file",
            id=cid,
            name="Hooli GmbH",
            email="buchhaltung@hooli.example",
            created=a - relativedelta(months=4, days=3),
            currency="eur",
            address=o.address(city="Berlin", country="DE"),
            default_payment_method=card,
            invoice_prefix="HOO",
        )
        current = a - timedelta(days=9)
        anchors = self.anchors(current, 4)
        sub_id = "sub_sbx_hooli"
        results = self.monthly(
            customer=cust,
            sub_id=sub_id,
            price=self.growth_eur,
            qty=1,
            anchors=anchors,
            pm=card,
            prefix="HOO",
            tax_rate_percent=Decimal(19),
        )
        self.put(
            cust,
            card,
            o.subscription(
                id=sub_id,
                customer_id=cid,
                currency="eur",
                items=[
                    self.item(
                        sub_id,
                        self.growth_eur,
                        1,
                        current,
                        current + relativedelta(months=1),
                        anchors[0],
                    )
                ],
                created=anchors[0],
                start_date=anchors[0],
                billing_cycle_anchor=anchors[0],
                default_payment_method=card["id"],
                latest_invoice=results[-1][0]["id"],
            ),
        )

    def vandelay(self) -> None:
        """Refund request: an annual plan bought by mistake three days ago (only a month was needed)."""
        a, cid = self.as_of, "cus_sbx_vandelay"
        card = self.card(cid, "visa", "5556", a + relativedelta(years=3), "Vandelay Industries")
        cust = self.customer(
            "refund-request",
            "Refund request: an annual plan paid 3 days ago by mistake",
            id=cid,
            name="Vandelay Industries",
            email="alex@vandelay.example",
            created=a - relativedelta(months=2, days=3),
            currency="usd",
            address=o.address("129 West 81st Street", "New York", "NY", "10024", "US"),
            default_payment_method=card,
            invoice_prefix="VDL",
        )
        sub_id = "sub_sbx_vandelay"
        months = self.anchors(a - relativedelta(months=1, days=3), 2)
        monthly = self.monthly(
            customer=cust,
            sub_id=sub_id,
            price=self.pro,
            qty=1,
            anchors=months,
            pm=card,
            prefix="VDL",
        )
        switched = a - timedelta(days=3)
        year_end = switched + relativedelta(years=1)
        invoice_id = "in_sbx_vandelay_annual"
        line = o.line_item(
            id="il_sbx_vandelay_annual",
            invoice_id=invoice_id,
            amount=int(self.pro_annual["unit_amount"]),
            currency="usd",
            description=o.recurring_line_description(self.pro_annual, 1),
            period_start=switched,
            period_end=year_end,
            price=self.pro_annual,
            quantity=1,
            subscription_id=sub_id,
            subscription_item_id="si_sbx_vandelay_pro__annual",
        )
        self.paid_invoice(
            id=invoice_id,
            customer=cust,
            number="VDL-0003",
            created=switched,
            paid_at=switched + timedelta(minutes=2),
            lines=[line],
            pm=card,
            subscription_id=sub_id,
            period_start=switched,
            period_end=year_end,
            billing_reason="subscription_update",
        )
        self.put(
            cust,
            card,
            o.subscription(
                id=sub_id,
                customer_id=cid,
                currency="usd",
                items=[self.item(sub_id, self.pro_annual, 1, switched, year_end, months[0])],
                created=months[0],
                start_date=months[0],
                billing_cycle_anchor=switched,
                default_payment_method=card["id"],
                latest_invoice=invoice_id,
            ),
        )
        _ = monthly

    def wayne(self) -> None:
        """Refund pattern: three refunds within 90 days (one full, two partial)."""
        a, cid = self.as_of, "cus_sbx_wayne"
        card = self.card(cid, "visa", "0077", a + relativedelta(years=2), "Wayne Services")
        cust = self.customer(
            "refund-pattern",
            "Refund pattern: 3 refunds in the last 90 days",
            id=cid,
            name="Wayne Services",
            email="ops@wayne-services.example",
            created=a - relativedelta(months=6, days=1),
            currency="usd",
            address=o.address("1007 Mountain Drive", "Gotham", "NJ", "07001", "US"),
            default_payment_method=card,
            invoice_prefix="WAY",
        )
        current = a - timedelta(days=12)
        anchors = self.anchors(current, 6)
        sub_id = "sub_sbx_wayne"
        refunds = {
            3: [("re_sbx_wayne_1", 14900, anchors[3] + timedelta(days=4), "service_outage")],
            4: [("re_sbx_wayne_2", 5000, anchors[4] + timedelta(days=6), "billing_error")],
            5: [("re_sbx_wayne_3", 3000, current + timedelta(days=2), "customer_dissatisfaction")],
        }
        latest = ""
        for n, start in enumerate(anchors):
            end = start + relativedelta(months=1)
            invoice_id = f"in_sbx_wayne_{n + 1:02d}"
            latest = invoice_id
            line = o.line_item(
                id=invoice_id.replace("in_", "il_", 1),
                invoice_id=invoice_id,
                amount=14900,
                currency="usd",
                description=o.recurring_line_description(self.pro, 1),
                period_start=start,
                period_end=end,
                price=self.pro,
                quantity=1,
                subscription_id=sub_id,
                subscription_item_id="si_sbx_wayne_pro__monthly",
            )
            self.paid_invoice(
                id=invoice_id,
                customer=cust,
                number=f"WAY-{n + 1:04d}",
                created=start,
                paid_at=start + timedelta(minutes=55),
                lines=[line],
                pm=card,
                subscription_id=sub_id,
                period_start=start,
                period_end=end,
                refunds=refunds.get(n, []),
            )
        self.put(
            cust,
            card,
            o.subscription(
                id=sub_id,
                customer_id=cid,
                currency="usd",
                items=[
                    self.item(
                        sub_id, self.pro, 1, current, current + relativedelta(months=1), anchors[0]
                    )
                ],
                created=anchors[0],
                start_date=anchors[0],
                billing_cycle_anchor=anchors[0],
                default_payment_method=card["id"],
                latest_invoice=latest,
            ),
        )

    def sakura(self) -> None:
        """Zero-decimal currency: JPY amounts are whole yen."""
        a, cid = self.as_of, "cus_sbx_sakura"
        card = self.card(
            cid, "jcb", "0505", a + relativedelta(years=2, months=2), "Sakura Trading KK", "JP"
        )
        cust = self.customer(
            "jpy",
            "JPY (zero-decimal) customer",
            id=cid,
            name="Sakura Trading KK",
            email="keiri@sakura-trading.example",
            created=a - relativedelta(months=5, days=4),
            currency="jpy",
            address=o.address("1-1 Marunouchi", "Chiyoda-ku", "Tokyo", "100-0005", "JP"),
            default_payment_method=card,
            invoice_prefix="SAK",
        )
        current = a - timedelta(days=20)
        anchors = self.anchors(current, 5)
        sub_id = "sub_sbx_sakura"
        results = self.monthly(
            customer=cust,
            sub_id=sub_id,
            price=self.standard_jpy,
            qty=1,
            anchors=anchors,
            pm=card,
            prefix="SAK",
        )
        self.put(
            cust,
            card,
            o.subscription(
                id=sub_id,
                customer_id=cid,
                currency="jpy",
                items=[
                    self.item(
                        sub_id,
                        self.standard_jpy,
                        1,
                        current,
                        current + relativedelta(months=1),
                        anchors[0],
                    )
                ],
                created=anchors[0],
                start_date=anchors[0],
                billing_cycle_anchor=anchors[0],
                default_payment_method=card["id"],
                latest_invoice=results[-1][0]["id"],
            ),
        )

    def stark(self) -> None:
        """One billing email, two customers: the agent picks and pins."""
        a = self.as_of
        email = "billing@stark.example"
        ind = "cus_sbx_stark_ind"
        card = self.card(ind, "visa", "9995", a + relativedelta(years=1), "Stark Industries")
        industries = self.customer(
            "several-matches-active",
            "Several matches for one email (active)",
            id=ind,
            name="Stark Industries",
            email=email,
            created=a - relativedelta(months=3, days=6),
            currency="usd",
            address=o.address("200 Park Avenue", "New York", "NY", "10166", "US"),
            default_payment_method=card,
            invoice_prefix="STI",
        )
        current = a - timedelta(days=15)
        anchors = self.anchors(current, 3)
        sub_id = "sub_sbx_stark_ind"
        results = self.monthly(
            customer=industries,
            sub_id=sub_id,
            price=self.pro,
            qty=1,
            anchors=anchors,
            pm=card,
            prefix="STI",
        )
        self.put(
            industries,
            card,
            o.subscription(
                id=sub_id,
                customer_id=ind,
                currency="usd",
                items=[
                    self.item(
                        sub_id, self.pro, 1, current, current + relativedelta(months=1), anchors[0]
                    )
                ],
                created=anchors[0],
                start_date=anchors[0],
                billing_cycle_anchor=anchors[0],
                default_payment_method=card["id"],
                latest_invoice=results[-1][0]["id"],
            ),
        )
        imp = "cus_sbx_stark_retail"
        imp_card = self.card(imp, "visa", "3184", a + relativedelta(months=8), "Stark Retail")
        imports = self.customer(
            "several-matches-canceled",
            "Several matches for one email (canceled last year)",
            id=imp,
            name="Stark Retail",
            email=email,
            created=a - relativedelta(months=16),
            currency="usd",
            address=o.address("200 Park Avenue", "New York", "NY", "10166", "US"),
            default_payment_method=imp_card,
            invoice_prefix="STR",
        )
        started = a - relativedelta(months=16)
        ended = started + relativedelta(months=4)
        old_anchors = self.anchors(ended - relativedelta(months=1), 4)
        old_sub = "sub_sbx_stark_retail"
        self.monthly(
            customer=imports,
            sub_id=old_sub,
            price=self.starter,
            qty=1,
            anchors=old_anchors,
            pm=imp_card,
            prefix="STR",
        )
        self.put(
            imports,
            imp_card,
            o.subscription(
                id=old_sub,
                customer_id=imp,
                currency="usd",
                items=[self.item(old_sub, self.starter, 1, old_anchors[-1], ended, started)],
                created=started,
                start_date=started,
                billing_cycle_anchor=started,
                status="canceled",
                default_payment_method=imp_card["id"],
                canceled_at=ended - timedelta(days=10),
                ended_at=ended,
                cancellation_details={
                    "comment": "Merged into Stark Industries",
                    "feedback": "other",
                    "reason": "cancellation_requested",
                },
            ),
        )

    def build(self) -> list[Obj]:
        self.acme()
        self.northwind()
        self.globex()
        self.initech()
        self.umbrella()
        self.hooli()
        self.vandelay()
        self.wayne()
        self.sakura()
        self.stark()
        return [*self.catalog.products.values(), *self.catalog.prices.values(), *self.objects]


def _ts(value: int) -> datetime:
    return datetime.fromtimestamp(value, tz=UTC)


def _ensure_workspace() -> tuple[Workspace, bool]:
    workspace = Workspace.objects.filter(slug=WORKSPACE_SLUG).first()
    if workspace is None:
        return (
            workspace_create(
                slug=WORKSPACE_SLUG,
                name=WORKSPACE_NAME,
                base_currency="USD",
                provider=Workspace.Provider.SANDBOX,
            ),
            True,
        )
    if workspace.provider != Workspace.Provider.SANDBOX:
        raise Conflict(
            f"Workspace {WORKSPACE_SLUG!r} uses {workspace.provider}; the demo seed only writes to "
            "a sandbox workspace.",
            code="not_a_sandbox_workspace",
        )
    return workspace, False


def _ensure_installation(workspace: Workspace) -> None:
    existing = Installation.objects.filter(connector="demo", domain=DEMO_DOMAIN).first()
    if existing is None:
        installation_add(workspace=workspace, connector="demo", domain=DEMO_DOMAIN)
        return
    link = getattr(existing, "workspace_link", None)
    if link is None or link.workspace_id != workspace.pk:
        raise Conflict(
            f"The demo installation {DEMO_DOMAIN} belongs to another workspace.",
            code="installation_exists",
        )


def _ensure_admin(password: str) -> bool:
    """Create the demo admin, or reset its password; ``False`` if "admin" is someone else's.

    Issue 12: the seed reset a real superuser's password. An existing "admin" that does
    not carry the seed's e-mail address was made by a person (``createsuperuser``), so
    neither its password nor its flags are touched.
    """
    user, created = User.objects.get_or_create(
        username=ADMIN_USERNAME, defaults={"email": ADMIN_EMAIL}
    )
    if not created and user.email != ADMIN_EMAIL:
        return False
    user.is_staff = True
    user.is_superuser = True
    user.is_active = True
    user.set_password(password)
    user.save()
    return True


def _reset_customers(workspace: Workspace, customer_ids: Iterable[str]) -> None:
    ids = list(customer_ids)
    sub_ids = list(
        MirrorSubscription.objects.filter(workspace=workspace, customer_id__in=ids).values_list(
            "stripe_id", flat=True
        )
    )
    invoice_ids = list(
        MirrorInvoice.objects.filter(workspace=workspace, customer_id__in=ids).values_list(
            "stripe_id", flat=True
        )
    )
    MirrorInvoiceLine.objects.filter(workspace=workspace, invoice_id__in=invoice_ids).delete()
    MirrorInvoice.objects.filter(workspace=workspace, stripe_id__in=invoice_ids).delete()
    MirrorSubscriptionItem.objects.filter(workspace=workspace, subscription_id__in=sub_ids).delete()
    MirrorSubscription.objects.filter(workspace=workspace, stripe_id__in=sub_ids).delete()
    charge_ids = list(
        MirrorCharge.objects.filter(workspace=workspace, customer_id__in=ids).values_list(
            "stripe_id", flat=True
        )
    )
    MirrorRefund.objects.filter(workspace=workspace, charge_id__in=charge_ids).delete()
    for model in (
        MirrorRefund,
        MirrorCharge,
        MirrorPaymentMethod,
        MirrorBalanceTransaction,
        MirrorDiscount,
    ):
        model.objects.filter(workspace=workspace, customer_id__in=ids).delete()
    MirrorCustomer.objects.filter(workspace=workspace, stripe_id__in=ids).delete()


@transaction.atomic
def demo_seed(*, as_of: datetime | None = None, admin_password: str | None = None) -> SeedSummary:
    """Create or reset the demo workspace, its demo installation, the admin user and the customers.

    ``as_of`` (aware) dates the history and freezes the sandbox clock on it;
    without it the history ends now and the sandbox runs on real time.
    """
    frozen = as_of is not None
    moment = (as_of or timezone.now()).astimezone(UTC)
    workspace, created = _ensure_workspace()
    _ensure_installation(workspace)
    password: str | None = admin_password or secrets.token_urlsafe(12)
    if not _ensure_admin(password):
        password = None
    SandboxControl.objects.update_or_create(
        workspace=workspace,
        defaults={"down": False, "down_reason": "", "clock": moment if frozen else None},
    )
    SandboxIdempotency.objects.filter(workspace=workspace).delete()
    _reset_customers(workspace, SEEDED_CUSTOMERS)
    seeder = _Seeder(moment)
    for obj in seeder.build():
        mirror_upsert(workspace=workspace, obj=obj)
    MirrorCustomer.objects.filter(workspace=workspace, stripe_id__in=SEEDED_CUSTOMERS).update(
        bundle_synced_at=timezone.now()
    )
    from .payment_failures import payment_failures_sync  # issue 7: the failure records

    payment_failures_sync(workspace=workspace, customer_ids=SEEDED_CUSTOMERS, reset=True)
    from .refresh import provider_health_record

    provider_health_record(workspace_id=workspace.pk, available=True)
    base = settings.PUBLIC_BASE_URL
    return SeedSummary(
        workspace=workspace,
        created_workspace=created,
        admin_username=ADMIN_USERNAME,
        admin_password=password,
        admin_url=f"{base}/admin/",
        demo_url=f"{base}/demo/",
        as_of=moment,
        clock_frozen=frozen,
        customers=seeder.customers,
        refund_ids=[
            r["id"]
            for obj in seeder.objects
            if obj.get("object") == "charge"
            for r in (obj.get("refunds") or {}).get("data") or []
        ],
        acme_last_charge_id=seeder.acme_last_charge_id,
    )
