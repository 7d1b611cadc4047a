"""Soylent — ending: set to cancel at the end of its period; the customer changed their mind.

Its billing history in the sandbox and its ticket on the demo page: the panel shows when
it ends (badge, end date, no renewal line) and offers "Keep subscription".
"""

from __future__ import annotations

from datetime import timedelta

from dateutil.relativedelta import relativedelta

from ...providers.sandbox import objects as o
from ..builders import DemoObjects
from ..scenario import Scenario, ask

CUSTOMER_IDS = ("cus_sbx_soylent",)

TICKET = Scenario(
    key="ending",
    label="Cancelled at period end: keep it after all",
    number="1013",
    subject="Please don't cancel us after all",
    requester_name="Sol Roth",
    requester_email="sol@soylent.example",
    organization="Soylent",
    tags=("billing", "cancellation"),
    messages=ask(
        "Sol Roth",
        "Last week we asked to cancel at the end of the month. The budget came through: "
        "can we keep our subscription as it is?",
    ),
)


def build(s: DemoObjects) -> None:
    """Ending: set to cancel at the period end, twelve days from now."""
    a, cid = s.as_of, "cus_sbx_soylent"
    card = s.card(cid, "mastercard", "5454", a + relativedelta(years=1), "Soylent")
    cust = s.customer(
        "ending",
        "Ending: set to cancel at the end of the period",
        id=cid,
        name="Soylent",
        email="sol@soylent.example",
        created=a - relativedelta(months=7, days=20),
        currency="usd",
        address=o.address("1 Green Street", "New York", "NY", "10013", "US"),
        default_payment_method=card,
        invoice_prefix="SOY",
    )
    current = a - timedelta(days=19)
    anchors = s.anchors(current, 7)
    sub_id = "sub_sbx_soylent"
    results = s.monthly(
        customer=cust,
        sub_id=sub_id,
        price=s.catalog.pro,
        qty=1,
        anchors=anchors,
        pm=card,
        prefix="SOY",
    )
    period_end = current + relativedelta(months=1)
    asked = a - timedelta(days=6)
    s.put(
        cust,
        card,
        o.subscription(
            id=sub_id,
            customer_id=cid,
            currency="usd",
            items=[s.item(sub_id, s.catalog.pro, 1, current, period_end, anchors[0])],
            created=anchors[0],
            start_date=anchors[0],
            billing_cycle_anchor=anchors[0],
            default_payment_method=card["id"],
            latest_invoice=results[-1][0]["id"],
            cancel_at_period_end=True,
            cancel_at=period_end,
            canceled_at=asked,
            cancellation_details={
                "comment": "Budget cut",
                "feedback": "too_expensive",
                "reason": "cancellation_requested",
            },
        ),
    )
