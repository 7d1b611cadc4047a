"""Hooli GmbH — tax invoice request: a German company billed in EUR with 19% VAT, no VAT id and no street address on file.

Its billing history in the sandbox and its ticket on the demo page.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from dateutil.relativedelta import relativedelta

from ...providers.sandbox import objects as o
from ..builders import DemoObjects
from ..scenario import Scenario, ask

CUSTOMER_IDS = ("cus_sbx_hooli",)

TICKET = Scenario(
    key="tax-invoice",
    label="Tax invoice request",
    number="1006",
    subject="We need a tax invoice with our VAT number",
    requester_name="Jonas Weber",
    requester_email="buchhaltung@hooli.example",
    organization="Hooli GmbH",
    tags=("billing", "tax_invoice"),
    messages=ask(
        "Jonas Weber",
        "Guten Tag, for our accounting we need last month's invoice as a proper tax "
        "invoice showing our VAT number DE123456789 and our Berlin address.",
    ),
)


def build(s: DemoObjects) -> None:
    """Tax invoice request: a German company billed in EUR with 19% VAT, no VAT id and no street address on file."""
    a, cid = s.as_of, "cus_sbx_hooli"
    card = s.card(
        cid,
        "visa",
        "3220",
        a + relativedelta(years=1, months=8),
        "Hooli GmbH",
        "DE",
    )
    cust = s.customer(
        "tax-invoice",
        "Tax invoice: EU company (EUR, 19% VAT), no VAT id or street address on file",
        id=cid,
        name="Hooli GmbH",
        email="buchhaltung@hooli.example",
        created=a - relativedelta(months=4, days=3),
        currency="eur",
        address=o.address(city="Berlin", country="DE"),
        default_payment_method=card,
        invoice_prefix="HOO",
    )
    # Stripe's customer languages, most preferred first: messages to Hooli are written in
    # German whatever the agent's language (the mirror keeps the whole object).
    cust["preferred_locales"] = ["de-DE"]
    current = a - timedelta(days=9)
    anchors = s.anchors(current, 4)
    sub_id = "sub_sbx_hooli"
    # Germany's VAT on the subscription, as in Stripe: its renewals (and the panel's next
    # invoice) add 19 % like the invoices below.
    vat = o.tax_rate(
        id="txr_sbx_de_vat_19",
        percentage=Decimal(19),
        created=anchors[0],
        country="DE",
        description="VAT Germany",
    )
    results = s.monthly(
        customer=cust,
        sub_id=sub_id,
        price=s.catalog.growth_eur,
        qty=1,
        anchors=anchors,
        pm=card,
        prefix="HOO",
        tax_rate_percent=Decimal(vat["percentage"]),
    )
    s.put(
        cust,
        card,
        o.subscription(
            id=sub_id,
            customer_id=cid,
            currency="eur",
            items=[
                s.item(
                    sub_id,
                    s.catalog.growth_eur,
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
            default_tax_rates=[vat],
        ),
    )
