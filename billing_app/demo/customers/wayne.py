"""Wayne Services — refund pattern: three refunds within 90 days (one full, two partial).

Its billing history in the sandbox and its ticket on the demo page.
"""

from __future__ import annotations

from datetime import timedelta

from dateutil.relativedelta import relativedelta

from ...providers.sandbox import objects as o
from ..builders import DemoObjects
from ..scenario import Scenario, ask

CUSTOMER_IDS = ("cus_sbx_wayne",)

TICKET = Scenario(
    key="refund-pattern",
    label="Refund pattern (Manager review)",
    number="1008",
    subject="Another refund, please",
    requester_name="Bruce Kane",
    requester_email="ops@wayne-services.example",
    organization="Wayne Services",
    tags=("billing", "refund"),
    messages=ask(
        "Bruce Kane",
        "The service was down again last week. Please refund this month's charge too.",
    ),
)


def build(s: DemoObjects) -> None:
    """Refund pattern: three refunds within 90 days (one full, two partial)."""
    a, cid = s.as_of, "cus_sbx_wayne"
    card = s.card(cid, "visa", "0077", a + relativedelta(years=2), "Wayne Services")
    cust = s.customer(
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
    anchors = s.anchors(current, 6)
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
            description=o.recurring_line_description(s.catalog.pro, 1),
            period_start=start,
            period_end=end,
            price=s.catalog.pro,
            quantity=1,
            subscription_id=sub_id,
            subscription_item_id="si_sbx_wayne_pro__monthly",
        )
        s.paid_invoice(
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
    s.put(
        cust,
        card,
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
            default_payment_method=card["id"],
            latest_invoice=latest,
        ),
    )
