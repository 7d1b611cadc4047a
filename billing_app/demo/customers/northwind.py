"""Northwind Traders — failed payment: the card expired last month; two failed attempts on an open invoice.

Its billing history in the sandbox and its ticket on the demo page.
"""

from __future__ import annotations

from datetime import timedelta

from dateutil.relativedelta import relativedelta

from ...providers.sandbox import objects as o
from ..builders import DemoObjects
from ..scenario import Scenario, ask

CUSTOMER_IDS = ("cus_sbx_northwind",)

TICKET = Scenario(
    key="failed-payment",
    label="Payment failed (expired card)",
    number="1002",
    subject="My payment failed",
    requester_name="Priya Nair",
    requester_email="ap@northwind.example",
    organization="Northwind Traders",
    tags=("billing", "payment_failed"),
    messages=ask(
        "Priya Nair",
        "Hello, we got an email saying this month's payment failed. I think the card on "
        "file expired. How do I fix this without losing access?",
    ),
)


def build(s: DemoObjects) -> None:
    """Failed payment: the card expired last month; two failed attempts on an open invoice."""
    a, cid = s.as_of, "cus_sbx_northwind"
    card = s.card(cid, "mastercard", "4444", a - relativedelta(months=1), "Northwind Traders")
    cust = s.customer(
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
    anchors = s.anchors(current, 7)
    sub_id = "sub_sbx_northwind"
    s.monthly(
        customer=cust,
        sub_id=sub_id,
        price=s.catalog.pro,
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
        description=o.recurring_line_description(s.catalog.pro, 1),
        period_start=current,
        period_end=current + relativedelta(months=1),
        price=s.catalog.pro,
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
    s.put(
        cust,
        card,
        invoice,
        *failures,
        o.subscription(
            id=sub_id,
            customer_id=cid,
            currency="usd",
            items=[
                s.item(
                    sub_id, s.catalog.pro, 1, current, current + relativedelta(months=1), anchors[0]
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
