"""Acme Corp — the brief's BILLING CONTEXT screen, figure for figure.

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

Its ticket on the demo page asks what the renewal will charge.
"""

from __future__ import annotations

from datetime import timedelta

from dateutil.relativedelta import relativedelta

from ...providers.sandbox import objects as o
from ..builders import DemoObjects, Obj
from ..scenario import Scenario, ask

ACME = "cus_sbx_acme"
CUSTOMER_IDS = (ACME,)

TICKET = Scenario(
    key="acme",
    label="Acme Corp — renewal question",
    number="1001",
    subject="Confirming our Enterprise Pro renewal",
    requester_name="Dana Whitfield",
    requester_email="billing@acme.example",
    organization="Acme Corp",
    tags=("billing", "renewal"),
    messages=ask(
        "Dana Whitfield",
        "Hi team,\n\nWe're planning next quarter's budget. Can you confirm what we'll be "
        "charged at the renewal on the 28th, and whether our three add-ons are included?\n\n"
        "Thanks,\nDana — Acme Corp finance",
    ),
)


def build(s: DemoObjects) -> None:
    a = s.as_of
    start = a - relativedelta(months=22)
    renewal = start + relativedelta(months=12)
    card_exp = a + relativedelta(months=14)
    last = a.replace(day=28, hour=0, minute=0, second=0, microsecond=0)
    if last >= a:
        last -= relativedelta(months=1)
    month_anchors = s.anchors(last, 10)
    visa = s.card(ACME, "visa", "4242", card_exp, "Acme Corp")
    bank = o.bank_payment_method(
        id="pm_sbx_acme_bank_6789",
        customer_id=ACME,
        created=start - timedelta(days=10),
        last4="6789",
        bank_name="STRIPE TEST BANK",
        name="Acme Corp",
    )
    cust = s.customer(
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
        description=o.recurring_line_description(s.catalog.enterprise_annual, 175),
        period_start=start,
        period_end=renewal,
        price=s.catalog.enterprise_annual,
        quantity=175,
        subscription_id=plan_sub,
        subscription_item_id="si_sbx_acme_plan_seats",
    )
    s.paid_invoice(
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
    addon_prices = (s.catalog.analytics, s.catalog.support, s.catalog.api_pack)
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
            subscription_item_id=s.item(addon_sub, price, 1, renewal, renewal, renewal)["id"],
        )
        for n, price in enumerate(addon_prices)
    ]
    s.paid_invoice(
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
            description=o.recurring_line_description(s.catalog.enterprise, 50),
            period_start=anchor,
            period_end=end,
            price=s.catalog.enterprise,
            quantity=50,
            subscription_id=plan_sub,
            subscription_item_id="si_sbx_acme_plan_seats",
        )
        _, charge = s.paid_invoice(
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
    s.acme_last_charge_id = charge["id"] if charge else ""
    period_end = last + relativedelta(months=1)
    plan_item = o.subscription_item(
        id="si_sbx_acme_plan_seats",
        subscription_id=plan_sub,
        price=s.catalog.enterprise,
        quantity=50,
        created=start,
        period_start=last,
        period_end=period_end,
    )
    s.put(
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
                s.item(addon_sub, price, 1, renewal, renewal + relativedelta(years=1), renewal)
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
