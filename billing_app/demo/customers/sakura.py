"""Sakura Trading KK — zero-decimal currency: JPY amounts are whole yen.

Its billing history in the sandbox and its ticket on the demo page.
"""

from __future__ import annotations

from datetime import timedelta

from dateutil.relativedelta import relativedelta

from ...providers.sandbox import objects as o
from ..builders import DemoObjects
from ..scenario import Scenario, ask

CUSTOMER_IDS = ("cus_sbx_sakura",)

TICKET = Scenario(
    key="jpy",
    label="Yen customer (zero-decimal currency)",
    number="1009",
    subject="請求書について / About our invoice",
    requester_name="Yuki Tanaka",
    requester_email="keiri@sakura-trading.example",
    organization="Sakura Trading KK",
    tags=("billing",),
    messages=ask(
        "Yuki Tanaka",
        "Hello, could you tell us the amount and date of our next invoice? "
        "We were also promised a small credit for the onboarding delay.",
    ),
)


def build(s: DemoObjects) -> None:
    """Zero-decimal currency: JPY amounts are whole yen."""
    a, cid = s.as_of, "cus_sbx_sakura"
    card = s.card(
        cid, "jcb", "0505", a + relativedelta(years=2, months=2), "Sakura Trading KK", "JP"
    )
    cust = s.customer(
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
    anchors = s.anchors(current, 5)
    sub_id = "sub_sbx_sakura"
    results = s.monthly(
        customer=cust,
        sub_id=sub_id,
        price=s.catalog.standard_jpy,
        qty=1,
        anchors=anchors,
        pm=card,
        prefix="SAK",
    )
    s.put(
        cust,
        card,
        o.subscription(
            id=sub_id,
            customer_id=cid,
            currency="jpy",
            items=[
                s.item(
                    sub_id,
                    s.catalog.standard_jpy,
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
