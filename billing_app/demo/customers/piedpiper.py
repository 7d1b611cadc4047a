"""Pied Piper — paused: payment collection paused for three weeks, invoices voided meanwhile.

Its billing history in the sandbox and its ticket on the demo page: the panel shows the
pause (badge, resume date, behaviour, no renewal line) and offers Resume.
"""

from __future__ import annotations

from datetime import timedelta

from dateutil.relativedelta import relativedelta

from ...providers.sandbox import objects as o
from ..builders import DemoObjects
from ..scenario import Scenario, ask

CUSTOMER_IDS = ("cus_sbx_piedpiper",)

TICKET = Scenario(
    key="paused",
    label="Paused subscription: start again early",
    number="1012",
    subject="Can we restart before our pause ends?",
    requester_name="Monica Hall",
    requester_email="monica@piedpiper.example",
    organization="Pied Piper",
    tags=("billing", "pause"),
    messages=ask(
        "Monica Hall",
        "We paused our subscription for a few weeks, but the team is back early. "
        "Can you turn billing back on now?",
    ),
)


def build(s: DemoObjects) -> None:
    """Paused: collection paused until three weeks from now (invoices voided meanwhile)."""
    a, cid = s.as_of, "cus_sbx_piedpiper"
    card = s.card(cid, "visa", "4242", a + relativedelta(years=2), "Pied Piper")
    cust = s.customer(
        "paused",
        "Paused: payment collection paused for three weeks",
        id=cid,
        name="Pied Piper",
        email="monica@piedpiper.example",
        created=a - relativedelta(months=4, days=2),
        currency="usd",
        address=o.address("5230 Newell Road", "Palo Alto", "CA", "94303", "US"),
        default_payment_method=card,
        invoice_prefix="PPR",
    )
    current = a - timedelta(days=9)
    anchors = s.anchors(current, 4)
    sub_id = "sub_sbx_piedpiper"
    results = s.monthly(
        customer=cust,
        sub_id=sub_id,
        price=s.catalog.team,
        qty=1,
        anchors=anchors,
        pm=card,
        prefix="PPR",
    )
    paused_at = a - timedelta(days=2)
    s.put(
        cust,
        card,
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
            pause_collection={
                "behavior": "void",
                "resumes_at": o.unix(paused_at + timedelta(days=23)),
            },
        ),
    )
