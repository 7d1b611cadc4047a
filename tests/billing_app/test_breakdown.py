"""Overcharge investigation: an invoice taken apart, each difference from the usual explained."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta

import pytest
import responses
from dateutil.relativedelta import relativedelta

from billing_app.catalog import Role
from billing_app.providers.sandbox import objects as o
from billing_app.providers.stripe.client import StripeHttpClient
from billing_app.selectors.breakdown import invoice_breakdown
from billing_app.services.mirror import mirror_upsert

from .context_support import seed_brief_day
from .stripe_support import API, event, load, make_stripe_workspace, sign

INITECH, INITECH_INVOICE = "cus_sbx_initech", "in_sbx_initech_04"


@pytest.fixture
def seeded(db, settings):
    return seed_brief_day(settings)


def url(customer_id, invoice_id):
    return f"/api/v1/customers/{customer_id}/invoices/{invoice_id}/breakdown/"


def amounts(items):
    return [(d["kind"], d["amount"]["amount"]) for d in items]


# --- the demo's overcharge: 20 → 35 seats mid-cycle ---------------------------------------------


def test_the_initech_invoice_is_explained_line_by_line(seeded, api_as):
    response = api_as(seeded.workspace, Role.L1).get(url(INITECH, INITECH_INVOICE))

    assert response.status_code == 200
    body = response.json()
    invoice = body["invoice"]
    assert (invoice["number"], invoice["total"]["display"], invoice["charged"]["display"]) == (
        "INI-0004",
        "$1,323.99",
        "$1,323.99",
    )
    assert [(line["kind"], line["amount"]["amount"]) for line in body["lines"]] == [
        ("proration", -36_532),
        ("proration", 63_931),
        ("seats", 105_000),
    ]
    assert body["components"]["plan"]["amount"] == 105_000
    assert body["components"]["proration"]["amount"] == 27_399
    # the usual invoice, and the differences adding up to the change
    assert (body["usual"]["invoice_number"], body["usual"]["amount"]["amount"]) == (
        "INI-0003",
        60_000,
    )
    assert body["difference"]["amount"] == 72_399
    assert amounts(body["differences"]) == [("proration", 27_399), ("seats", 45_000)]
    assert sum(a for _, a in amounts(body["differences"])) == body["difference"]["amount"]
    proration = body["differences"][0]
    assert (proration["from_quantity"], proration["to_quantity"], proration["days"]) == (20, 35, 19)
    # in plain words, and the next invoice
    assert body["explanation"] == (
        "seats were increased from 20 to 35 on December 22, 2025: the 19 days left of that "
        "billing period were charged for 35 seats ($639.31) less the unused time already paid "
        "for 20 ($365.32), $273.99 in total; and the monthly charge for 35 seats is $1,050.00 "
        "instead of $600.00 for 20"
    )
    assert body["next_invoice"]["date"] == "2026-02-10"
    assert body["next_invoice"]["total"]["display"] == "$1,050.00"
    assert body["message"]["breakdown"] == (
        "35 × Business $1,050.00; prorated seat change 20 → 35 from December 22, 2025 $273.99"
    )
    assert body["actions"] == [
        {
            "kind": "apply_credit",
            "label": "Credit a genuine billing error",
            "params": {"invoice_id": INITECH_INVOICE, "currency": "USD"},
        }
    ]


def test_a_regular_invoice_with_vat_is_the_usual_amount(seeded):
    body = invoice_breakdown(
        workspace=seeded.workspace, customer_id="cus_sbx_hooli", invoice_id="in_sbx_hooli_04"
    )

    assert body["differences"] == []
    assert body["explanation"] == "it is your usual monthly charge, the same as invoice HOO-0003"
    assert body["components"]["tax"]["display"] == "€188.10"
    assert body["message"]["breakdown"] == "Growth €990.00; tax €188.10"
    # the next invoice carries the same 19 % VAT
    assert (
        body["next_invoice"]["subtotal"]["display"],
        body["next_invoice"]["tax"]["display"],
    ) == (
        "€990.00",
        "€188.10",
    )
    assert body["next_invoice"]["total"]["display"] == "€1,178.10"


def test_a_switch_to_annual_billing_is_named(seeded):
    body = invoice_breakdown(
        workspace=seeded.workspace,
        customer_id="cus_sbx_vandelay",
        invoice_id="in_sbx_vandelay_annual",
    )

    assert amounts(body["differences"]) == [("price_change", 149_000 - 14_900)]
    assert body["explanation"] == "Pro is billed $1,490.00 yearly instead of $149.00 monthly"


# --- add-on, one-time item, discount and credit ------------------------------------------------


@pytest.fixture
def team_customer(workspace):
    """A Team customer whose new invoice adds an add-on, a one-time item, a 10% discount, a credit."""
    now = datetime(2026, 3, 1, tzinfo=UTC)
    team_product = o.product(id="prod_t_team", name="Team", created=now - timedelta(days=400))
    support = o.product(
        id="prod_t_support", name="Priority Support", created=now, metadata={"addon": "true"}
    )
    team = o.price(
        id="price_t_team", product=team_product, unit_amount=29_900, currency="usd", created=now
    )
    addon = o.price(
        id="price_t_support", product=support, unit_amount=5_000, currency="usd", created=now
    )
    customer = o.customer(
        id="cus_t_1",
        name="Team Co",
        email="ap@team.example",
        created=now - timedelta(days=90),
        currency="usd",
    )
    for obj in (team_product, support, team, addon, customer):
        mirror_upsert(workspace=workspace, obj=obj)
    sub = "sub_t_1"

    def line(invoice_id, n, price, amount, start, *, item=True, description=None):
        return o.line_item(
            id=f"il_{invoice_id}_{n}",
            invoice_id=invoice_id,
            amount=amount,
            currency="usd",
            description=description
            or f"1 × {price['product']['name']} (at ${amount / 100:.2f} / month)",
            period_start=start,
            period_end=start + relativedelta(months=1),
            price=price if item else None,
            subscription_id=sub,
            subscription_item_id=f"si_{price['id']}" if item else None,
        )

    before = now - relativedelta(months=1)
    mirror_upsert(
        workspace=workspace,
        obj=o.invoice(
            id="in_t_01",
            customer=customer,
            number="TEAM-0001",
            created=before,
            lines=[line("in_t_01", 1, team, 29_900, before)],
            status="paid",
            paid_at=before,
            period_start=before,
            period_end=before,
            subscription_id=sub,
        ),
    )
    coupon = o.coupon(
        id="co_t_10", percent_off=10.0, duration="once", duration_in_months=None, created=now
    )
    discount = o.discount(
        id="di_t_10", coupon=coupon, customer_id="cus_t_1", subscription_id=sub, start=now, end=None
    )
    mirror_upsert(
        workspace=workspace,
        obj=o.invoice(
            id="in_t_02",
            customer=customer,
            number="TEAM-0002",
            created=now,
            lines=[
                line("in_t_02", 1, team, 29_900, now),
                line("in_t_02", 2, addon, 5_000, now),
                line("in_t_02", 3, team, 10_000, now, item=False, description="Onboarding session"),
            ],
            status="open",
            period_start=now,
            period_end=now,
            subscription_id=sub,
            starting_balance=-5_000,
            discount=discount,
        ),
    )
    return customer


def test_addon_one_time_item_discount_and_credit_are_each_explained(workspace, team_customer):
    body = invoice_breakdown(workspace=workspace, customer_id="cus_t_1", invoice_id="in_t_02")

    assert [line["kind"] for line in body["lines"]] == ["plan", "addon", "one_time"]
    assert amounts(body["differences"]) == [
        ("addon_added", 5_000),
        ("one_time", 10_000),
        ("discount", -4_490),
        ("credit_applied", -5_000),
    ]
    # the total's change is explained to the cent; the credit lowers what is charged
    assert body["difference"]["amount"] == 40_410 - 29_900
    assert sum(a for k, a in amounts(body["differences"]) if k != "credit_applied") == 10_510
    assert body["invoice"]["credit_applied"]["amount"] == 5_000
    assert body["invoice"]["charged"]["display"] == "$354.10"
    assert body["explanation"] == (
        "Priority Support was added ($50.00 monthly); a one-time charge: Onboarding session "
        "($100.00); a discount of $44.90 applies; and $50.00 of account credit was applied, "
        "lowering the amount charged"
    )
    assert body["message"]["breakdown"] == (
        "Team $299.00; Priority Support $50.00; Onboarding session $100.00; discount -$44.90; "
        "account credit -$50.00"
    )


# --- who may look ------------------------------------------------------------------------------


def test_breakdown_refuses_strangers_and_other_customers_invoices(
    seeded, api_as, make_workspace, client
):
    ws = seeded.workspace
    assert client.get(url(INITECH, INITECH_INVOICE)).status_code == 401
    stranger = api_as(make_workspace("umbrella-corp"), Role.MANAGER).get(
        url(INITECH, INITECH_INVOICE)
    )
    assert (stranger.status_code, stranger.json()["error"]["code"]) == (404, "customer_not_found")
    wrong = api_as(ws, Role.L1).get(url("cus_sbx_globex", INITECH_INVOICE))
    assert (wrong.status_code, wrong.json()["error"]["code"]) == (404, "invoice_not_found")


# --- on Stripe ---------------------------------------------------------------------------------


def test_a_stripe_invoice_delivered_by_webhook_is_broken_down(
    make_workspace, http, client, api_as, monkeypatch, django_capture_on_commit_callbacks
):
    monkeypatch.setattr(StripeHttpClient, "backoff_scale", 0.0)
    ws = make_stripe_workspace(make_workspace)
    mirror_upsert(workspace=ws, obj=load("customer"))
    for product_id, name in (
        ("prod_RbAdvAnalytics", "Advanced Analytics"),
        ("prod_RbPrioritySupport", "Priority Support"),
        ("prod_RbApiExtraPack", "API Extra Pack"),
    ):
        mirror_upsert(
            workspace=ws,
            obj={**load("product"), "id": product_id, "name": name, "metadata": {"addon": "true"}},
        )
    invoice = load("invoice")
    http.upsert(responses.GET, f"{API}/v1/invoices/{invoice['id']}", json=invoice)
    body = json.dumps(
        event("evt_1Finalized", "invoice.finalized", invoice, created=int(time.time()))
    )
    with django_capture_on_commit_callbacks(execute=True):
        assert (
            client.post(
                f"/webhooks/stripe/{ws.slug}/",
                data=body,
                content_type="application/json",
                HTTP_STRIPE_SIGNATURE=sign(body),
            ).status_code
            == 200
        )

    response = api_as(ws, Role.L1).get(url("cus_RbAcmeCorp0001", invoice["id"]))

    assert response.status_code == 200
    data = response.json()
    assert [line["kind"] for line in data["lines"]] == ["seats", "addon", "addon", "addon"]
    assert data["components"]["plan"]["display"] == "$2,400.00"
    assert data["components"]["addons"]["display"] == "$1,000.00"
    assert data["invoice"]["charged"]["display"] == "$3,400.00"
    assert data["usual"] is None
    assert data["message"]["breakdown"] == (
        "50 × Enterprise Pro $2,400.00; Advanced Analytics $500.00; Priority Support $300.00; "
        "API Extra Pack $200.00"
    )


def test_a_genuine_error_is_credited_with_the_suggested_action(seeded, api_as):
    agent = api_as(seeded.workspace, Role.L2)
    suggested = agent.get(url(INITECH, INITECH_INVOICE)).json()["actions"][0]

    response = agent.post(
        "/api/v1/actions/",
        {
            "kind": suggested["kind"],
            "customer_id": INITECH,
            "ticket_id": "IN-1",
            "params": {
                **suggested["params"],
                "amount": 5_000,
                "description": "Seat proration error",
            },
            "idempotency_key": "initech-credit",
        },
        format="json",
    )

    assert response.status_code == 201, response.json()
    assert response.json()["status"] == "succeeded"
    context = agent.get(f"/api/v1/customers/{INITECH}/context/").json()
    assert context["credits"]["available"]["display"] == "$50.00"
