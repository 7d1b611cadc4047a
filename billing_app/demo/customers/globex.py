"""Globex — duplicate charge: the latest invoice's payment went through twice, three minutes apart.

Its billing history in the sandbox and its ticket on the demo page.
"""

from __future__ import annotations

from datetime import timedelta

from dateutil.relativedelta import relativedelta

from ...providers.sandbox import objects as o
from ..builders import DemoObjects, ts
from ..scenario import Scenario, ask

CUSTOMER_IDS = ("cus_sbx_globex",)

TICKET = Scenario(
    key="duplicate-charge",
    label="Charged twice",
    number="1003",
    subject="I was charged twice",
    requester_name="Marco Rossi",
    requester_email="finance@globex.example",
    organization="Globex",
    tags=("billing", "duplicate_charge"),
    messages=ask(
        "Marco Rossi",
        "Our card statement shows two identical charges from you yesterday. "
        "Please refund the second one.",
    ),
)


def build(s: DemoObjects) -> None:
    """Duplicate charge: the latest invoice's payment went through twice, three minutes apart."""
    a, cid = s.as_of, "cus_sbx_globex"
    card = s.card(cid, "visa", "1881", a + relativedelta(years=2), "Globex")
    cust = s.customer(
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
    anchors = s.anchors(current, 5)
    sub_id = "sub_sbx_globex"
    results = s.monthly(
        customer=cust,
        sub_id=sub_id,
        price=s.catalog.team,
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
        created=ts(first_charge["created"]) + timedelta(minutes=3),
        payment_method=card,
        payment_intent="pi_sbx_globex_retry",
        description="Team subscription payment (gateway retry)",
        receipt_email=cust["email"],
    )
    s.put(
        cust,
        card,
        duplicate,
        o.subscription(
            id=sub_id,
            customer_id=cid,
            currency="usd",
            items=[
                s.item(
                    sub_id,
                    s.catalog.team,
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
