"""The billing context, computed from the mirror: the brief's Acme screen and the reading edge cases."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.utils import timezone

from billing_app.catalog import Role
from billing_app.errors import NotFound, ProviderUnavailable
from billing_app.models import (
    BillingAction,
    MirrorCharge,
    MirrorCustomer,
    MirrorInvoice,
    MirrorSubscription,
)
from billing_app.money import Money
from billing_app.providers.sandbox import SandboxProvider
from billing_app.providers.sandbox import objects as o
from billing_app.providers.sandbox.control import sandbox_control_set
from billing_app.selectors.context import customer_context
from billing_app.selectors.customers import customer_matches
from billing_app.services.customers import customer_link_pin
from billing_app.services.mirror import mirror_upsert
from billing_app.services.refresh import customer_mirror_ensure

from .context_support import (
    AS_OF,
    acme_refund_awaiting_approval_under_monitoring,
    forget_provider_health,
    seed_brief_day,
)


@pytest.fixture
def seeded(db, settings):
    return seed_brief_day(settings)


@pytest.fixture(autouse=True)
def _forget_provider_health(db):
    yield
    forget_provider_health()


def context_of(workspace, customer_id, **kwargs):
    customer = MirrorCustomer.objects.get(workspace=workspace, stripe_id=customer_id)
    return customer_context(workspace=workspace, customer=customer, **kwargs)


def usd(amount):
    return Money(amount, "USD").to_dict()


# --- the brief's BILLING CONTEXT screen, field by field ---------------------------------


def test_acme_matches_the_brief_screen(seeded):
    # given the sandbox seeded as of the brief's day
    # when the panel asks for Acme Corp's context
    ctx = context_of(seeded.workspace, "cus_sbx_acme")
    account, status, subscription = ctx["account"], ctx["payment_status"], ctx["subscription"]

    # then — BILLING CONTEXT — Customer: Acme Corp
    assert ctx["customer"]["name"] == "Acme Corp"
    assert (ctx["customer"]["currency"], ctx["customer"]["currency_exponent"]) == ("USD", 2)
    # ACCOUNT BILLING
    assert account["plan"]["display"] == "Enterprise Pro ($2,400/month)"
    assert account["plan"]["name"] == "Enterprise Pro"
    assert account["plan"]["price"] == usd(240_000)
    assert account["billing_cycle"] == "Monthly"
    assert account["renews_at"] == "2026-01-28"
    assert account["payment_method"]["display"] == "Visa ending 4242"
    assert account["payment_method"]["expires"] == "03/2027"
    assert account["payment_method"]["expired"] is False
    assert account["billing_email"] == "billing@acme.example"
    assert account["billing_address"] == "123 Enterprise Way, San Francisco, CA"
    # PAYMENT STATUS
    assert status["last_payment"]["amount"] == usd(240_000)
    assert status["last_payment"]["amount"]["display"] == "$2,400.00"
    assert status["last_payment"]["date"] == "2026-01-01"
    assert status["last_payment"]["status"] == "succeeded"
    assert status["last_payment"]["succeeded"] is True
    assert status["next_invoice"]["amount"]["display"] == "$2,400.00"
    assert status["next_invoice"]["date"] == "2026-01-28"
    assert status["outstanding_balance"]["display"] == "$0.00"
    assert status["failures_12m"] == 0
    # PAYMENT HISTORY (Last 6 Months)
    rows = [
        (r["date"], r["amount"]["display"], r["status_label"], r["method"], r["invoice_number"])
        for r in ctx["payment_history"]["items"]
    ]
    assert rows == [
        ("2026-01-01", "$2,400.00", "Paid", "Visa 4242", "INV-2026-01"),
        ("2025-12-01", "$2,400.00", "Paid", "Visa 4242", "INV-2025-12"),
        ("2025-11-01", "$2,400.00", "Paid", "Visa 4242", "INV-2025-11"),
        ("2025-10-01", "$2,400.00", "Paid", "Visa 4242", "INV-2025-10"),
        ("2025-09-01", "$2,400.00", "Paid", "Visa 4242", "INV-2025-09"),
        ("2025-08-01", "$2,400.00", "Paid", "Visa 4242", "INV-2025-08"),
    ]
    assert ctx["payment_history"]["next_cursor"]
    # CREDITS & ADJUSTMENTS
    assert ctx["credits"]["available"]["display"] == "$0.00"
    assert ctx["credits"]["applied_this_cycle"]["display"] == "$0.00"
    assert ctx["credits"]["pending"] == []
    # SUBSCRIPTION DETAILS
    assert subscription["start_date"] == "2024-03-15"
    assert subscription["contract_end"] == "2026-03-15"
    assert subscription["contract_term"] == "annual"
    assert subscription["auto_renew"] is True
    assert subscription["seats"]["used"] == 45
    assert subscription["seats"]["total"] == 50
    assert subscription["seats"]["utilization_pct"] == 90
    assert [(a["name"], a["display"]) for a in subscription["addons"]] == [
        ("Advanced Analytics", "$500/month"),
        ("Priority Support", "$300/month"),
        ("API Extra Pack", "$200/month"),
    ]
    assert [a["price"]["amount"] for a in subscription["addons"]] == [50_000, 30_000, 20_000]
    # LIFETIME VALUE
    assert ctx["lifetime_value"]["total_revenue"]["display"] == "$136,800.00"
    assert ctx["lifetime_value"]["months_active"] == 22
    assert ctx["lifetime_value"]["mrr"]["display"] == "$3,400.00"
    assert ctx["lifetime_value"]["arr"]["display"] == "$40,800.00"
    assert ctx["churn_risk"]["label"] == "Low"
    assert ctx["churn_risk"]["reasons"] == ["on-time payments", "high usage"]
    # and nothing to alert about
    assert ctx["alerts"] == []
    assert ctx["provider_status"] == "ok"


def test_acme_lifetime_revenue_is_the_documented_invoice_history(seeded):
    paid = MirrorInvoice.objects.filter(customer_id="cus_sbx_acme", status="paid").order_by(
        "created"
    )
    amounts = [(i.number, i.amount_paid) for i in paid]

    assert amounts[0] == ("INV-2024-03", 10_080_000)  # year one, 175 seats prepaid
    assert amounts[1] == ("INV-2025-03", 1_200_000)  # add-ons, annual, on the anniversary
    assert [a for _, a in amounts[2:]] == [240_000] * 10  # INV-2025-04 … INV-2026-01
    assert sum(a for _, a in amounts) == 13_680_000


def test_older_payments_page_after_the_first_six_months(seeded):
    from billing_app.selectors.payments import customer_payments

    first = customer_payments(workspace=seeded.workspace, customer_id="cus_sbx_acme")
    second = customer_payments(
        workspace=seeded.workspace, customer_id="cus_sbx_acme", cursor=first["next_cursor"]
    )

    assert [r["invoice_number"] for r in second["items"]] == [
        "INV-2025-07",
        "INV-2025-06",
        "INV-2025-05",
        "INV-2025-04",
        "INV-2025-03",
        "INV-2024-03",
    ]
    assert second["items"][-1]["method"] == "Bank account 6789"
    assert second["next_cursor"] is None


# --- reading edge cases (DESIGN.md section 10) ------------------------------------------


def test_no_billing_customer(seeded):
    # a customer id the sandbox does not know is a 404, and nothing is mirrored
    with pytest.raises(NotFound):
        customer_mirror_ensure(workspace=seeded.workspace, customer_id="cus_unknown")
    assert not MirrorCustomer.objects.filter(stripe_id="cus_unknown").exists()
    assert (
        customer_matches(workspace=seeded.workspace, email="nobody@nowhere.example")["matches"]
        == []
    )


def test_several_customers_for_one_email_come_back_to_pick_from(seeded):
    result = customer_matches(workspace=seeded.workspace, email="BILLING@stark.example")

    assert [
        (m["name"], m["plan"]["display"] if m["plan"] else None) for m in result["matches"]
    ] == [
        ("Stark Industries", "Pro ($149/month)"),
        ("Stark Retail", "Starter ($49/month)"),
    ]
    assert [m["plan"]["status"] for m in result["matches"]] == ["active", "canceled"]
    assert all(m["created"] and m["email"] == "billing@stark.example" for m in result["matches"])
    assert result["pinned_customer_id"] is None


def test_requester_email_differs_from_billing_email_through_a_pin(seeded):
    # given the ticket's requester writes from a personal address
    requester = "dana.whitfield@acme-corp.example"
    assert customer_matches(workspace=seeded.workspace, email=requester)["matches"] == []

    # when an agent pins it to Acme Corp
    customer_link_pin(
        workspace=seeded.workspace, customer_id="cus_sbx_acme", user=None, email=requester.upper()
    )

    # then the lookup finds Acme, pinned
    result = customer_matches(workspace=seeded.workspace, email=requester)
    assert [(m["id"], m["pinned"], m["matched_by"]) for m in result["matches"]] == [
        ("cus_sbx_acme", True, ["pinned_email"])
    ]
    assert result["pinned_customer_id"] == "cus_sbx_acme"


def test_helpdesk_organization_maps_to_customer_via_metadata(seeded):
    result = customer_matches(workspace=seeded.workspace, organization_id="org-acme")
    assert [(m["id"], m["matched_by"]) for m in result["matches"]] == [
        ("cus_sbx_acme", ["organization"])
    ]


def test_customer_without_subscription(seeded):
    workspace = seeded.workspace
    mirror_upsert(
        workspace=workspace,
        obj=o.customer(
            id="cus_sbx_nosub",
            name="Lone Buyer",
            email="lone@example.com",
            created=AS_OF,
            currency="usd",
        ),
    )

    ctx = context_of(workspace, "cus_sbx_nosub")

    assert ctx["subscription"] is None and ctx["subscriptions"] == []
    assert ctx["account"]["plan"] is None and ctx["account"]["renews_at"] is None
    assert ctx["payment_status"]["next_invoice"] is None
    assert ctx["payment_status"]["last_payment"] is None
    assert ctx["lifetime_value"] == {
        "total_revenue": usd(0),
        "months_active": 0,
        "mrr": usd(0),
        "arr": usd(0),
    }
    assert ctx["churn_risk"]["label"] == "Low"


def test_several_subscriptions_primary_is_the_biggest_plan(seeded):
    # given Acme has a second, smaller plan subscription on top of the two it has
    workspace = seeded.workspace
    plan = MirrorSubscription.objects.get(stripe_id="sub_sbx_acme_plan")
    team = MirrorSubscription.objects.get(stripe_id="sub_sbx_globex").data["items"]["data"][0][
        "price"
    ]
    item = o.subscription_item(
        id="si_sbx_acme_side",
        subscription_id="sub_sbx_acme_side",
        price=team,
        quantity=1,
        created=AS_OF,
        period_start=AS_OF - timedelta(days=5),
        period_end=AS_OF + timedelta(days=26),
    )
    mirror_upsert(
        workspace=workspace,
        obj=o.subscription(
            id="sub_sbx_acme_side",
            customer_id="cus_sbx_acme",
            currency="usd",
            items=[item],
            created=AS_OF,
            start_date=AS_OF - timedelta(days=5),
            billing_cycle_anchor=AS_OF,
        ),
    )

    ctx = context_of(workspace, "cus_sbx_acme")

    assert ctx["subscription"]["id"] == plan.stripe_id
    assert {s["id"] for s in ctx["subscriptions"]} == {
        "sub_sbx_acme_plan",
        "sub_sbx_acme_addons",
        "sub_sbx_acme_side",
    }
    assert ctx["lifetime_value"]["mrr"] == usd(340_000 + 29_900)
    assert ctx["payment_status"]["next_invoice"]["date"] == "2026-01-28"
    # and the customer list names the same plan, not the newer, smaller one
    matches = customer_matches(workspace=workspace, email=ctx["customer"]["email"])["matches"]
    (acme,) = [m for m in matches if m["id"] == "cus_sbx_acme"]
    assert acme["plan"]["subscription_id"] == plan.stripe_id


def test_a_per_seat_plan_beside_a_bigger_add_on_is_the_plan(seeded):
    # given a subscription of 3 seats at $20 and a $300/month add-on (the add-on is worth more)
    workspace = seeded.workspace
    seats = o.product(id="prod_sbx_seats", name="Team Seats", created=AS_OF)
    support = o.product(
        id="prod_sbx_support", name="Premium Support", created=AS_OF, metadata={"addon": "true"}
    )
    mirror_upsert(
        workspace=workspace,
        obj=o.customer(
            id="cus_sbx_seats",
            name="Seat Co",
            email="seats@example.com",
            created=AS_OF,
            currency="usd",
        ),
    )
    items = [
        o.subscription_item(
            id=f"si_sbx_seats_{n}",
            subscription_id="sub_sbx_seats",
            price=o.price(
                id=f"price_sbx_seats_{n}",
                product=product,
                unit_amount=unit,
                currency="usd",
                created=AS_OF,
            ),
            quantity=quantity,
            created=AS_OF,
            period_start=AS_OF - timedelta(days=5),
            period_end=AS_OF + timedelta(days=26),
        )
        for n, product, unit, quantity in ((1, seats, 2_000, 3), (2, support, 30_000, 1))
    ]
    mirror_upsert(
        workspace=workspace,
        obj=o.subscription(
            id="sub_sbx_seats",
            customer_id="cus_sbx_seats",
            currency="usd",
            items=items,
            created=AS_OF,
            start_date=AS_OF - timedelta(days=5),
            billing_cycle_anchor=AS_OF,
        ),
    )

    # when the panel reads the context
    ctx = context_of(workspace, "cus_sbx_seats")

    # then the plan is the seats, counted on their item, and the support is an add-on
    sub = ctx["subscription"]
    assert (sub["plan"]["name"], sub["plan"]["item_id"]) == ("Team Seats", "si_sbx_seats_1")
    assert sub["plan"]["display"] == "Team Seats ($60/month)"
    assert (sub["seats"]["total"], sub["seats"]["item_id"]) == (3, "si_sbx_seats_1")
    assert [(a["name"], a["price"]) for a in sub["addons"]] == [("Premium Support", usd(30_000))]
    assert ctx["lifetime_value"]["mrr"] == usd(6_000 + 30_000)


def test_churn_risk_is_a_pure_function_of_the_facts():
    # given facts built in memory (no database: this test may not query one)
    from billing_app.models import Workspace
    from billing_app.selectors.context import Catalog, CustomerFacts
    from billing_app.selectors.context.churn import churn_risk
    from billing_app.selectors.context.facts import CreditFacts

    now = AS_OF
    workspace = Workspace(refund_pattern_count=3, refund_pattern_days=90)
    failed = [
        MirrorCharge(stripe_id=f"ch_{n}", status="failed", created=now - timedelta(days=n))
        for n in (2, 9)
    ]
    facts = CustomerFacts(
        workspace=workspace,
        customer=MirrorCustomer(stripe_id="cus_x"),
        currency="USD",
        now=now,
        real_now=now,
        revenue=50_000,
        first_paid=None,
        outstanding=0,
        refund_count=3,
        monitoring_until=None,
        subs=[{"id": "sub_x", "status": "past_due"}],
        catalog=Catalog(workspace, []),
        discounts={},
        pending_prices={},
        primary={"id": "sub_x", "status": "past_due"},
        payment_method=None,
        charges=failed,
        last_charge=failed[0],
        open_invoices=[],
        balance_transactions=CreditFacts(grants=[]),
        actions=[],
    )

    # when churn risk is computed, with an expired card and 40% of the seats used
    risk = churn_risk(facts, seat_utilization=40, payment_method={"expired": True})

    # then every signal counts: 2 + 3 + 2 + 2 + 1 points
    assert risk == {
        "level": "high",
        "label": "High",
        "score": 10,
        "reasons": [
            "2 failed payments in 90 days",
            "subscription past due",
            "low seat utilization (40%)",
            "refund pattern (3 refunds in 90 days)",
            "card on file expired",
        ],
    }


def test_trialing_subscription(seeded):
    ctx = context_of(seeded.workspace, "cus_sbx_umbrella")

    sub = ctx["subscription"]
    assert (sub["status"], sub["trial_end"]) == ("trialing", "2026-01-18")
    assert ctx["payment_status"]["next_invoice"] == {
        "amount": usd(29_900),
        "date": "2026-01-18",
        "subscription_ids": ["sub_sbx_umbrella"],
    }
    assert ctx["lifetime_value"]["mrr"] == usd(0)  # a trial is not revenue yet
    assert ctx["account"]["payment_method"] is None
    assert ctx["churn_risk"]["reasons"] == ["trial ending without a payment method"]


def test_past_due_subscription_with_a_failed_payment(seeded):
    ctx = context_of(seeded.workspace, "cus_sbx_northwind")

    assert ctx["subscription"]["status"] == "past_due"
    assert ctx["payment_status"]["outstanding_balance"] == usd(14_900)
    assert ctx["payment_status"]["failures_12m"] == 2
    assert ctx["payment_status"]["last_payment"]["status"] == "failed"
    assert ctx["account"]["payment_method"]["expired"] is True
    alert = next(a for a in ctx["alerts"] if a["type"] == "payment_failed")
    assert alert["severity"] == "danger"
    assert alert["data"]["invoice_id"] == "in_sbx_northwind_07"
    assert (alert["data"]["failure_code"], alert["data"]["attempt_count"]) == ("expired_card", 2)
    assert alert["data"]["suspension_warning"] is False
    assert (
        alert["data"]["hosted_invoice_url"]
        == "https://sandbox.billing-desk.invalid/i/in_sbx_northwind_07"
    )
    assert ctx["payment_history"]["items"][0]["status"] == "failed"
    assert ctx["churn_risk"]["label"] == "High"
    assert ctx["churn_risk"]["reasons"] == [
        "2 failed payments in 90 days",
        "subscription past due",
        "card on file expired",
    ]


def test_three_consecutive_failures_warn_of_suspension(seeded):
    workspace = seeded.workspace
    first = MirrorCharge.objects.get(stripe_id="ch_sbx_northwind_07_attempt1").data
    mirror_upsert(
        workspace=workspace,
        obj={**first, "id": "ch_sbx_northwind_07_attempt3", "created": int(AS_OF.timestamp()) - 60},
    )

    alert = next(
        a
        for a in context_of(workspace, "cus_sbx_northwind")["alerts"]
        if a["type"] == "payment_failed"
    )

    assert alert["data"]["consecutive_failures"] == 3
    assert alert["data"]["suspension_warning"] is True
    assert "suspension warning" in alert["message"]


def test_canceled_subscription(seeded):
    ctx = context_of(seeded.workspace, "cus_sbx_stark_retail")

    assert ctx["subscription"]["status"] == "canceled"
    assert ctx["subscription"]["auto_renew"] is False
    assert ctx["account"]["renews_at"] is None
    assert ctx["lifetime_value"]["mrr"] == usd(0)
    assert ctx["lifetime_value"]["months_active"] == 4
    assert ctx["churn_risk"]["reasons"] == ["no active subscription"]


def test_paused_and_cancel_at_period_end_subscriptions(seeded):
    sandbox = SandboxProvider(seeded.workspace)
    sandbox.pause_subscription(
        subscription_id="sub_sbx_acme_plan",
        behavior="void",
        resumes_at=AS_OF + timedelta(days=30),
        idempotency_key="p",
    )

    paused = context_of(seeded.workspace, "cus_sbx_acme")
    assert paused["subscription"]["pause_collection"] == {
        "behavior": "void",
        "resumes_at": "2026-02-14",
    }
    assert paused["lifetime_value"]["mrr"] == usd(100_000)  # the add-ons still bill
    assert "collection paused" in paused["churn_risk"]["reasons"]

    sandbox.cancel_subscription(
        subscription_id="sub_sbx_globex",
        at_period_end=True,
        reason="too_expensive",
        comment="",
        idempotency_key="c",
    )
    ending = context_of(seeded.workspace, "cus_sbx_globex")
    assert ending["subscription"]["cancel_at_period_end"] is True
    assert ending["subscription"]["auto_renew"] is False
    assert ending["account"]["ends_at"] == ending["subscription"]["current_period_end"]
    assert ending["payment_status"]["next_invoice"] is None
    assert ending["churn_risk"]["label"] == "High"


def test_pending_downgrade_shows_and_sets_the_next_invoice(seeded):
    SandboxProvider(seeded.workspace).change_plan(
        subscription_id="sub_sbx_acme_plan",
        new_price_id="price_sbx_business__monthly",
        proration_date=None,
        idempotency_key="d",
    )

    ctx = context_of(seeded.workspace, "cus_sbx_acme")

    assert ctx["subscription"]["pending_change"]["name"] == "Business"
    assert ctx["subscription"]["pending_change"]["effective_date"] == "2026-01-28"
    assert ctx["payment_status"]["next_invoice"]["amount"] == usd(150_000)
    assert "recent downgrade" in ctx["churn_risk"]["reasons"]


def test_zero_decimal_yen(seeded):
    ctx = context_of(seeded.workspace, "cus_sbx_sakura")

    assert ctx["customer"]["currency"] == "JPY"
    assert ctx["customer"]["currency_exponent"] == 0  # the panel's money inputs: whole yen
    assert ctx["account"]["plan"]["display"] == "Standard (¥49,800/month)"
    assert ctx["lifetime_value"]["mrr"] == {
        "amount": 49_800,
        "currency": "JPY",
        "exponent": 0,
        "display": "¥49,800",
    }
    assert ctx["lifetime_value"]["arr"]["amount"] == 597_600
    assert ctx["lifetime_value"]["total_revenue"] == {
        "amount": 249_000,
        "currency": "JPY",
        "exponent": 0,
        "display": "¥249,000",
    }
    assert ctx["payment_history"]["items"][0]["method"] == "JCB 0505"


def test_euro_customer_with_vat(seeded):
    ctx = context_of(seeded.workspace, "cus_sbx_hooli")

    assert ctx["customer"]["currency"] == "EUR"
    assert ctx["customer"]["tax_ids"] == []
    assert ctx["customer"]["address_display"] == "Berlin, DE"
    assert ctx["payment_history"]["items"][0]["amount"] == {
        "amount": 117_810,
        "currency": "EUR",
        "exponent": 2,
        "display": "€1,178.10",
    }
    assert ctx["lifetime_value"]["mrr"]["display"] == "€990.00"  # before VAT
    assert ctx["lifetime_value"]["total_revenue"]["amount"] == 4 * 117_810


def test_partially_and_fully_refunded_charges(seeded):
    ctx = context_of(seeded.workspace, "cus_sbx_wayne")

    rows = [
        (r["status"], r["refunded"]["amount"], r["refundable"]["amount"])
        for r in ctx["payment_history"]["items"][:3]
    ]
    assert rows == [
        ("partially_refunded", 3_000, 11_900),
        ("partially_refunded", 5_000, 9_900),
        ("refunded", 14_900, 0),
    ]
    assert ctx["churn_risk"]["label"] == "Medium"
    assert ctx["churn_risk"]["reasons"] == ["refund pattern (3 refunds in 90 days)"]


def test_disputed_charge(seeded):
    charge = MirrorCharge.objects.get(stripe_id="ch_sbx_acme_2026_01")
    mirror_upsert(workspace=seeded.workspace, obj={**charge.data, "disputed": True})

    ctx = context_of(seeded.workspace, "cus_sbx_acme")

    row = ctx["payment_history"]["items"][0]
    assert (row["status"], row["disputed"], row["refundable"]["amount"]) == ("disputed", True, 0)
    assert ctx["churn_risk"]["reasons"] == ["disputed charge"]
    assert ctx["churn_risk"]["label"] == "Medium"


def test_prepaid_balance_credits_available_applied_and_pending(seeded):
    sandbox = SandboxProvider(seeded.workspace)
    # given two credits granted, then part of them consumed by a proration invoice this cycle
    # (a seat change waits for the next invoice, as on Stripe; its prorations are invoiced now)
    sandbox.apply_credit(
        customer_id="cus_sbx_acme",
        amount=Money(5_000, "USD"),
        description="Outage",
        idempotency_key="c1",
    )
    sandbox.apply_credit(
        customer_id="cus_sbx_acme",
        amount=Money(10_000, "USD"),
        description="Goodwill",
        idempotency_key="c2",
    )
    sandbox.adjust_seats(
        subscription_id="sub_sbx_acme_plan",
        item_id="si_sbx_acme_plan_seats",
        quantity=51,
        idempotency_key="s",
    )
    sandbox.invoice_pending_items(subscription_id="sub_sbx_acme_plan", idempotency_key="i")
    # the proration lines, each rounded: 51 seats for the rest of the period less 50
    remaining = 1_080_000 / 2_678_400
    extra_seat = round(51 * 4_800 * remaining) - round(50 * 4_800 * remaining)

    ctx = context_of(seeded.workspace, "cus_sbx_acme")

    assert extra_seat == 1_936
    assert ctx["credits"]["available"] == usd(15_000 - extra_seat)
    assert ctx["credits"]["applied_this_cycle"] == usd(extra_seat)
    # the available credit is made of what is left of the two grants …
    assert [(p["description"], p["amount"]["amount"]) for p in ctx["credits"]["on_balance"]] == [
        ("Goodwill", 10_000),
        ("Outage", 5_000 - extra_seat),
    ]
    # … and none of it is "pending": it is on the balance already (issue 14)
    assert ctx["credits"]["pending"] == []
    assert ctx["payment_status"]["outstanding_balance"] == usd(0)


def test_pending_credits_are_the_ones_not_on_the_balance_yet(seeded):
    # given a credit on Acme's balance, and two credits asked for: one awaiting a
    # Manager's approval, one sent to the billing system with no answer yet
    workspace = seeded.workspace
    SandboxProvider(workspace).apply_credit(
        customer_id="cus_sbx_acme",
        amount=Money(5_000, "USD"),
        description="Outage",
        idempotency_key="c1",
    )
    agent = User.objects.create(username="l1-agent")
    for n, (status, amount, description) in enumerate(
        (
            (BillingAction.Status.PENDING_APPROVAL, 60_000, "Service credit"),
            (BillingAction.Status.OUTCOME_UNKNOWN, 2_500, ""),
            (BillingAction.Status.SUCCEEDED, 5_000, "Outage"),  # the one on the balance
            (BillingAction.Status.DENIED, 9_000, "Refused"),
        )
    ):
        BillingAction.objects.create(
            workspace=workspace,
            actor=agent,
            actor_role=Role.L1,
            customer_id="cus_sbx_acme",
            kind="apply_credit",
            params={"description": description} if description else {},
            amount=amount,
            currency="USD",
            status=status,
            decision="approval" if n != 1 else "allow",
            idempotency_key=f"credit-{n}",
            request_fingerprint=f"credit-{n}",
        )

    credits = context_of(workspace, "cus_sbx_acme")["credits"]

    # then available is the balance, and pending only the two not on it — each once
    assert credits["available"] == usd(5_000)
    assert [c["amount"]["amount"] for c in credits["on_balance"]] == [5_000]
    assert sorted((c["amount"]["amount"], c["description"]) for c in credits["pending"]) == [
        (2_500, "Confirming with Stripe"),
        (60_000, "Service credit (pending approval)"),
    ]


def test_tax_exempt_and_deleted_customers(seeded):
    workspace = seeded.workspace
    acme = MirrorCustomer.objects.get(stripe_id="cus_sbx_acme")
    mirror_upsert(workspace=workspace, obj={**acme.data, "tax_exempt": "exempt"})
    assert context_of(workspace, "cus_sbx_acme")["customer"]["tax_exempt"] == "exempt"

    mirror_upsert(
        workspace=workspace, obj={"id": "cus_sbx_stark_ind", "object": "customer", "deleted": True}
    )
    ctx = context_of(workspace, "cus_sbx_stark_ind")
    assert ctx["customer"]["deleted"] is True
    assert [
        m["id"]
        for m in customer_matches(workspace=workspace, email="billing@stark.example")["matches"]
    ] == ["cus_sbx_stark_retail"]


# --- Billing Desk's own records ---------------------------------------------------------


def test_duplicate_charge_alert(seeded):
    ctx = context_of(seeded.workspace, "cus_sbx_globex")

    alert = next(a for a in ctx["alerts"] if a["type"] == "duplicate_charge")
    assert alert["data"]["duplicate_charge_id"] == "ch_sbx_globex_duplicate"
    assert alert["data"]["minutes_apart"] == 3
    assert alert["data"]["refundable"] == usd(29_900)


def test_duplicate_window_follows_the_workspace_setting(seeded):
    workspace = seeded.workspace
    workspace.duplicate_window_hours = 1
    duplicate = MirrorCharge.objects.get(stripe_id="ch_sbx_globex_duplicate")
    mirror_upsert(
        workspace=workspace, obj={**duplicate.data, "created": duplicate.data["created"] + 2 * 3600}
    )

    assert not [
        a
        for a in context_of(workspace, "cus_sbx_globex")["alerts"]
        if a["type"] == "duplicate_charge"
    ]


def test_pending_approvals_recent_actions_and_monitoring(seeded, sign_in):
    workspace = seeded.workspace
    membership, _ = sign_in(workspace, Role.L1, agent_id="77")
    acme_refund_awaiting_approval_under_monitoring(workspace, membership.user)

    ctx = context_of(workspace, "cus_sbx_acme")

    [approval] = ctx["pending_approvals"]
    assert (approval["kind"], approval["amount"], approval["required_roles"]) == (
        "issue_refund",
        usd(15_000),
        ["manager"],
    )
    assert approval["requested_by"] == "L1 Agent 77"
    assert [(a["kind"], a["status"]) for a in ctx["recent_actions"]] == [
        ("issue_refund", "pending_approval")
    ]
    assert (
        ctx["customer"]["monitoring_until"]
        == (timezone.now() + timedelta(days=30)).date().isoformat()
    )
    assert {a["type"] for a in ctx["alerts"]} == {"pending_approval", "payment_monitoring"}


def test_provider_down_keeps_the_mirrored_data_with_a_banner(seeded):
    sandbox_control_set(workspace=seeded.workspace, down=True, reason="drill")

    state = customer_mirror_ensure(workspace=seeded.workspace, customer_id="cus_sbx_acme")
    ctx = customer_context(
        workspace=seeded.workspace, customer=state.customer, provider_status=state.provider_status
    )

    assert ctx["provider_status"] == "unavailable"
    assert ctx["alerts"][0]["type"] == "provider_down"
    assert ctx["lifetime_value"]["total_revenue"]["display"] == "$136,800.00"
    with pytest.raises(ProviderUnavailable):
        customer_mirror_ensure(workspace=seeded.workspace, customer_id="cus_not_mirrored")
