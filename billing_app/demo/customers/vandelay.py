"""Vandelay Industries — refund request: an annual plan bought by mistake three days ago (only a month was needed).

Its billing history in the sandbox and its ticket on the demo page.
"""

from __future__ import annotations

from datetime import timedelta

from dateutil.relativedelta import relativedelta

from ...providers.sandbox import objects as o
from ..builders import DemoObjects
from ..scenario import Scenario, ask

CUSTOMER_IDS = ("cus_sbx_vandelay",)

TICKET = Scenario(
    key="refund-request",
    label="Refund request",
    number="1007",
    subject="Requesting a refund",
    requester_name="Alex Chen",
    requester_email="alex@vandelay.example",
    organization="Vandelay Industries",
    tags=("billing", "refund"),
    messages=ask(
        "Alex Chen",
        "We signed up for the annual plan by mistake — we only needed one month. "
        "Can we get a refund for the difference?",
    ),
)


def build(s: DemoObjects) -> None:
    """Refund request: an annual plan bought by mistake three days ago (only a month was needed)."""
    a, cid = s.as_of, "cus_sbx_vandelay"
    card = s.card(cid, "visa", "5556", a + relativedelta(years=3), "Vandelay Industries")
    cust = s.customer(
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
    months = s.anchors(a - relativedelta(months=1, days=3), 2)
    monthly = s.monthly(
        customer=cust,
        sub_id=sub_id,
        price=s.catalog.pro,
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
        amount=int(s.catalog.pro_annual["unit_amount"]),
        currency="usd",
        description=o.recurring_line_description(s.catalog.pro_annual, 1),
        period_start=switched,
        period_end=year_end,
        price=s.catalog.pro_annual,
        quantity=1,
        subscription_id=sub_id,
        subscription_item_id="si_sbx_vandelay_pro__annual",
    )
    s.paid_invoice(
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
    s.put(
        cust,
        card,
        o.subscription(
            id=sub_id,
            customer_id=cid,
            currency="usd",
            items=[s.item(sub_id, s.catalog.pro_annual, 1, switched, year_end, months[0])],
            created=months[0],
            start_date=months[0],
            billing_cycle_anchor=switched,
            default_payment_method=card["id"],
            latest_invoice=invoice_id,
        ),
    )
    _ = monthly
