"""Umbrella Labs — trialing: the trial ends in three days; no payment method yet.

Its billing history in the sandbox and its ticket on the demo page.
"""

from __future__ import annotations

from datetime import timedelta

from ...providers.sandbox import objects as o
from ..builders import DemoObjects
from ..scenario import Scenario, ask

CUSTOMER_IDS = ("cus_sbx_umbrella",)

TICKET = Scenario(
    key="trialing",
    label="Trial extension request",
    number="1005",
    subject="Could we get a few more trial days?",
    requester_name="Sam Okafor",
    requester_email="sam@umbrella.example",
    organization="Umbrella Labs",
    tags=("billing", "trial"),
    messages=ask(
        "Sam Okafor",
        "We're still evaluating with two teams and our trial ends soon. "
        "Could you extend it by a week?",
    ),
)


def build(s: DemoObjects) -> None:
    """Trialing: the trial ends in three days; no payment method yet."""
    a, cid = s.as_of, "cus_sbx_umbrella"
    trial_start, trial_end = a - timedelta(days=11), a + timedelta(days=3)
    cust = s.customer(
        "trialing",
        "Trialing: trial ends in 3 days, no card on file",
        id=cid,
        name="Umbrella Labs",
        email="sam@umbrella.example",
        created=trial_start - timedelta(hours=2),
        currency="usd",
        address=o.address("1 Raccoon Plaza", "Chicago", "IL", "60601", "US"),
        invoice_prefix="UMB",
    )
    sub_id = "sub_sbx_umbrella"
    invoice_id = "in_sbx_umbrella_trial"
    line = o.line_item(
        id="il_sbx_umbrella_trial",
        invoice_id=invoice_id,
        amount=0,
        currency="usd",
        description="Trial period for Team",
        period_start=trial_start,
        period_end=trial_end,
        price=s.catalog.team,
        quantity=1,
        subscription_id=sub_id,
        subscription_item_id="si_sbx_umbrella_team__monthly",
    )
    invoice = o.invoice(
        id=invoice_id,
        customer=cust,
        number="UMB-0001",
        created=trial_start,
        lines=[line],
        status="paid",
        period_start=trial_start,
        period_end=trial_start,
        subscription_id=sub_id,
        billing_reason="subscription_create",
        paid_at=trial_start,
    )
    s.put(
        cust,
        invoice,
        o.subscription(
            id=sub_id,
            customer_id=cid,
            currency="usd",
            items=[s.item(sub_id, s.catalog.team, 1, trial_start, trial_end, trial_start)],
            created=trial_start,
            start_date=trial_start,
            billing_cycle_anchor=trial_end,
            status="trialing",
            trial_start=trial_start,
            trial_end=trial_end,
            latest_invoice=invoice_id,
        ),
    )
