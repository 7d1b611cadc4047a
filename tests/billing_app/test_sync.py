"""``manage.py sync_billing``: the backfill pages through Stripe, resumably."""

from __future__ import annotations

import io

import pytest
from django.core.management import CommandError, call_command

from billing_app.models import (
    MirrorBalanceTransaction,
    MirrorCharge,
    MirrorCustomer,
    MirrorInvoice,
    MirrorPaymentMethod,
    MirrorPrice,
    MirrorProduct,
    MirrorRefund,
    MirrorSubscription,
    MirrorSubscriptionItem,
    SyncState,
)
from billing_app.providers.stripe.client import StripeHttpClient
from billing_app.services.mirror import mirror_upsert
from billing_app.services.sync import SYNC_RESOURCES
from tests.billing_app.stripe_support import (
    StripeMock,
    listing,
    load,
    make_stripe_workspace,
    params_of,
    stripe_error,
)

CUS = "cus_RbAcmeCorp0001"
CUS2 = "cus_RbBetaExpired01"


@pytest.fixture(autouse=True)
def _no_backoff(monkeypatch):
    monkeypatch.setattr(StripeHttpClient, "backoff_scale", 0.0)


@pytest.fixture
def ws(make_workspace):
    return make_stripe_workspace(make_workspace)


@pytest.fixture
def stripe(http):
    return StripeMock(http)


def sync(ws, *args):
    out, err = io.StringIO(), io.StringIO()
    call_command("sync_billing", "--workspace", ws.slug, *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def register_catalog(stripe):
    stripe.on(
        "GET",
        "/v1/products",
        listing("/v1/products", load("product"), load("product", id="prod_RbTeam"), has_more=True),
    )
    stripe.on("GET", "/v1/products", listing("/v1/products", load("product", id="prod_RbAddon")))
    stripe.on(
        "GET",
        "/v1/prices",
        listing("/v1/prices", load("price_enterprise_pro"), load("price_team")),
    )


def register_customers_and_after(stripe):
    stripe.on(
        "GET",
        "/v1/customers",
        listing("/v1/customers", load("customer", id=CUS2, email="ops@beta.example")),
    )
    register_after_customers(stripe)


def register_after_customers(stripe):
    stripe.on("GET", "/v1/subscriptions", listing("/v1/subscriptions", load("subscription")))
    stripe.on("GET", "/v1/invoices", listing("/v1/invoices", load("invoice")))
    stripe.on("GET", "/v1/charges", listing("/v1/charges", load("charge")))
    stripe.on("GET", "/v1/refunds", listing("/v1/refunds", load("refund")))
    for customer in (CUS, CUS2):
        stripe.on(
            "GET",
            f"/v1/customers/{customer}/payment_methods",
            listing("/v1/x", load("payment_method", id=f"pm_{customer}", customer=None)),
        )
        stripe.on(
            "GET",
            f"/v1/customers/{customer}/balance_transactions",
            listing("/v1/x", load("customer_balance_transaction", id=f"cbtxn_{customer}")),
        )


def test_sync_mirrors_every_resource_and_records_completion(ws, stripe):
    # given a Stripe account with two pages of products, two customers and their objects
    register_catalog(stripe)
    stripe.on(
        "GET",
        "/v1/customers",
        listing("/v1/customers", load("customer"), has_more=True),
    )
    register_customers_and_after(stripe)

    # when the backfill runs
    out, err = sync(ws)

    # then every resource is in the mirror
    assert MirrorProduct.objects.filter(workspace=ws).count() == 3
    assert MirrorPrice.objects.filter(workspace=ws).count() == 5  # 2 listed + 4 on items, 1 shared
    assert MirrorCustomer.objects.filter(workspace=ws).count() == 2
    assert MirrorSubscription.objects.filter(workspace=ws).count() == 1
    assert MirrorSubscriptionItem.objects.filter(workspace=ws).count() == 4
    assert MirrorInvoice.objects.filter(workspace=ws).count() == 1
    assert MirrorCharge.objects.filter(workspace=ws).count() == 1
    assert MirrorRefund.objects.filter(workspace=ws).count() == 1
    # and per-customer objects carry their customer even when Stripe's list omits it
    assert set(MirrorPaymentMethod.objects.values_list("customer_id", flat=True)) == {CUS, CUS2}
    assert MirrorBalanceTransaction.objects.filter(workspace=ws).count() == 2
    # and the second product page was asked for after the first page's last id
    product_calls = stripe.requests_to("GET", "/v1/products")
    assert [params_of(c).get("starting_after") for c in product_calls] == [None, "prod_RbTeam"]
    # and every resource is recorded complete, with a progress bar per resource
    states = {s.resource: s for s in SyncState.objects.filter(workspace=ws)}
    assert set(states) == set(SYNC_RESOURCES)
    assert all(s.completed for s in states.values())
    assert states["products"].objects_synced == 3
    assert states["customers"].cursor == CUS2
    assert "customers: 2 objects mirrored" in out
    assert "sync complete" in out
    assert "products" in err and "objects" in err


def test_sync_stops_cleanly_when_stripe_is_down_and_resumes_from_the_cursor(ws, stripe, http):
    # given Stripe fails (after its retries) on the second page of customers
    register_catalog(stripe)
    stripe.on("GET", "/v1/customers", listing("/v1/customers", load("customer"), has_more=True))
    stripe.on("GET", "/v1/customers", stripe_error("api_error", "overloaded"), status=503)

    # when the backfill runs, it stops with a message saying how to resume
    with pytest.raises(CommandError, match="run the same command again to resume"):
        sync(ws)

    # then what was stored stays, and the cursor is the last customer stored
    customers = SyncState.objects.get(workspace=ws, resource="customers")
    assert customers.cursor == CUS and not customers.completed
    assert SyncState.objects.get(workspace=ws, resource="products").completed
    assert list(MirrorCustomer.objects.values_list("stripe_id", flat=True)) == [CUS]
    assert not SyncState.objects.filter(workspace=ws, resource="subscriptions").exists()

    # when Stripe is back and the command is run again
    http.reset()
    register_customers_and_after(stripe)
    out, _ = sync(ws)

    # then it continued after the stored customer and did not redo the products
    resumed = stripe.requests_to("GET", "/v1/customers")
    assert [params_of(c).get("starting_after") for c in resumed] == [CUS]
    assert stripe.requests_to("GET", "/v1/products") == []
    assert "products: already complete" in out
    assert MirrorCustomer.objects.filter(workspace=ws).count() == 2
    assert SyncState.objects.get(workspace=ws, resource="customers").completed


def test_restart_forgets_the_cursor(ws, stripe):
    # given products were fully synced before
    SyncState.objects.create(
        workspace=ws, resource="products", cursor="prod_Old", completed=True, objects_synced=9
    )
    stripe.on("GET", "/v1/products", listing("/v1/products", load("product")))

    # when products are synced again with --restart
    sync(ws, "--resource", "products", "--restart")

    # then they were read from the start and counted afresh
    assert [params_of(c).get("starting_after") for c in stripe.calls] == [None]
    state = SyncState.objects.get(workspace=ws, resource="products")
    assert state.completed and state.objects_synced == 1 and state.cursor == "prod_RbEnterprisePro"


def test_resource_option_limits_the_sync(ws, stripe):
    stripe.on("GET", "/v1/prices", listing("/v1/prices", load("price_team")))

    sync(ws, "--resource", "prices", "--no-progress")

    assert [c.request.url.split("?")[0] for c in stripe.calls] == [
        "https://api.stripe.com/v1/prices"
    ]
    assert list(SyncState.objects.values_list("resource", flat=True)) == ["prices"]


def test_per_customer_resources_resume_after_the_last_customer(ws, stripe):
    # given two mirrored customers, the first one's payment methods already synced
    for customer in (CUS, CUS2):
        mirror_upsert(workspace=ws, obj=load("customer", id=customer))
    SyncState.objects.create(workspace=ws, resource="payment_methods", cursor=CUS)
    stripe.on(
        "GET",
        f"/v1/customers/{CUS2}/payment_methods",
        listing("/v1/x", load("payment_method", id="pm_beta", customer=CUS2)),
    )

    # when payment methods are synced
    sync(ws, "--resource", "payment_methods")

    # then only the second customer was asked for
    assert [c.request.url.split("?")[0] for c in stripe.calls] == [
        f"https://api.stripe.com/v1/customers/{CUS2}/payment_methods"
    ]
    assert SyncState.objects.get(workspace=ws, resource="payment_methods").completed


def test_unknown_workspace_is_refused(db):
    with pytest.raises(CommandError, match="No workspace"):
        call_command("sync_billing", "--workspace", "nope", stdout=io.StringIO())


def test_unknown_resource_is_refused_by_the_parser(ws):
    with pytest.raises(CommandError):
        call_command(
            "sync_billing", "--workspace", ws.slug, "--resource", "coupons", stdout=io.StringIO()
        )


def test_a_sandbox_workspace_syncs_with_the_same_command(make_workspace):
    # given a sandbox workspace with a customer and a card (it lists cards account-wide)
    sandbox = make_workspace("sandbox-sync")
    mirror_upsert(workspace=sandbox, obj=load("customer"))
    mirror_upsert(workspace=sandbox, obj=load("payment_method"))

    # when the backfill runs
    out, _ = sync(sandbox, "--no-progress")

    # then every resource completes
    assert "sync complete" in out
    states = SyncState.objects.filter(workspace=sandbox)
    assert {s.resource for s in states} == set(SYNC_RESOURCES)
    assert all(s.completed for s in states)
    assert states.get(resource="payment_methods").cursor == "pm_1RbAcmeVisa4242"
