"""Stark Industries and Stark Retail — one billing email, two customers: the agent picks and pins.

Their billing history in the sandbox and its ticket on the demo page.
"""

from __future__ import annotations

from datetime import timedelta

from dateutil.relativedelta import relativedelta

from ...providers.sandbox import objects as o
from ..builders import DemoObjects
from ..scenario import Scenario, ask

CUSTOMER_IDS = ("cus_sbx_stark_ind", "cus_sbx_stark_retail")

TICKET = Scenario(
    key="several-matches",
    label="Two accounts on one email",
    number="1010",
    subject="Which account am I paying for?",
    requester_name="Pepper Potts",
    requester_email="billing@stark.example",
    organization="",
    tags=("billing",),
    messages=ask(
        "Pepper Potts",
        "We have two companies with you and both use this email. "
        "Can you check the payment method on the active one?",
    ),
)


def build(s: DemoObjects) -> None:
    """One billing email, two customers: the agent picks and pins."""
    a = s.as_of
    email = "billing@stark.example"
    ind = "cus_sbx_stark_ind"
    card = s.card(ind, "visa", "9995", a + relativedelta(years=1), "Stark Industries")
    industries = s.customer(
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
    anchors = s.anchors(current, 3)
    sub_id = "sub_sbx_stark_ind"
    results = s.monthly(
        customer=industries,
        sub_id=sub_id,
        price=s.catalog.pro,
        qty=1,
        anchors=anchors,
        pm=card,
        prefix="STI",
    )
    s.put(
        industries,
        card,
        o.subscription(
            id=sub_id,
            customer_id=ind,
            currency="usd",
            items=[
                s.item(
                    sub_id, s.catalog.pro, 1, current, current + relativedelta(months=1), anchors[0]
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
    imp_card = s.card(imp, "visa", "3184", a + relativedelta(months=8), "Stark Retail")
    imports = s.customer(
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
    old_anchors = s.anchors(ended - relativedelta(months=1), 4)
    old_sub = "sub_sbx_stark_retail"
    s.monthly(
        customer=imports,
        sub_id=old_sub,
        price=s.catalog.starter,
        qty=1,
        anchors=old_anchors,
        pm=imp_card,
        prefix="STR",
    )
    s.put(
        imports,
        imp_card,
        o.subscription(
            id=old_sub,
            customer_id=imp,
            currency="usd",
            items=[s.item(old_sub, s.catalog.starter, 1, old_anchors[-1], ended, started)],
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
