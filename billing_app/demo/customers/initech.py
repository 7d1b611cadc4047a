"""Initech — overcharge: 20 → 35 seats mid-cycle; the proration landed on the latest invoice.

Its billing history in the sandbox and its ticket on the demo page.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from dateutil.relativedelta import relativedelta

from ...proration import prorate, proration_date_label
from ...providers.sandbox import objects as o
from ..builders import DemoObjects
from ..scenario import Scenario, ask

CUSTOMER_IDS = ("cus_sbx_initech",)

TICKET = Scenario(
    key="overcharge",
    label="Invoice higher than usual",
    number="1004",
    subject="Why is this invoice so much higher?",
    requester_name="Lena Fischer",
    requester_email="accounts@initech.example",
    organization="Initech",
    tags=("billing", "overcharge"),
    messages=ask(
        "Lena Fischer",
        "Our latest invoice is higher than our plan price. Nobody here remembers changing "
        "anything. Can you explain the charge?",
    ),
)


def build(s: DemoObjects) -> None:
    """Overcharge: 20 → 35 seats mid-cycle; the proration landed on the latest invoice."""
    a, cid = s.as_of, "cus_sbx_initech"
    card = s.card(cid, "amex", "8431", a + relativedelta(years=1, months=4), "Initech")
    cust = s.customer(
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
    anchors = s.anchors(current, 4)
    sub_id = "sub_sbx_initech"
    s.monthly(
        customer=cust,
        sub_id=sub_id,
        price=s.catalog.business,
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
    credit = -prorate(20 * 3000, period_start=previous_start, period_end=previous_end, at=change)
    debit = prorate(35 * 3000, period_start=previous_start, period_end=previous_end, at=change)
    common: dict[str, Any] = {
        "invoice_id": invoice_id,
        "currency": "usd",
        "price": s.catalog.business,
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
            description=o.recurring_line_description(s.catalog.business, 35),
            period_start=current,
            period_end=current + relativedelta(months=1),
            quantity=35,
            **common,
        ),
    ]
    s.paid_invoice(
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
                    s.catalog.business,
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
