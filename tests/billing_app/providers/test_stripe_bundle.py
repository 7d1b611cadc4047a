"""The customer bundle is one wave of Stripe reads (issue 15).

Which requests are sent and with which expansions, that they are all in flight at once
(none waits for another's answer), that the content is the same as the two-round-trip
bundle it replaced (so the mirror stores the same rows), and that a slow, failed or
timed-out read in the wave behaves as before.
"""

from __future__ import annotations

import json
import threading
from dataclasses import asdict
from datetime import UTC, datetime
from urllib.parse import urlsplit

import pytest
from django.conf import settings
from django.utils import timezone
from requests.exceptions import ReadTimeout
from responses import matchers

from billing_app.errors import ProviderError, ProviderUnavailable
from billing_app.models import (
    MirrorBalanceTransaction,
    MirrorCharge,
    MirrorCustomer,
    MirrorDiscount,
    MirrorInvoice,
    MirrorInvoiceLine,
    MirrorPaymentMethod,
    MirrorPrice,
    MirrorProduct,
    MirrorRefund,
    MirrorSubscription,
    MirrorSubscriptionItem,
    SyncState,
)
from billing_app.providers.base import CustomerBundle
from billing_app.providers.stripe import StripeProvider
from billing_app.providers.stripe import readers as r
from billing_app.providers.stripe.client import StripeHttpClient
from billing_app.providers.stripe.core import (
    CHARGE_EXPAND,
    CUSTOMER_EXPAND,
    INVOICE_EXPAND,
    PLAN_CHANGE_EXPAND,
    SUBSCRIPTION_EXPAND,
)
from billing_app.providers.stripe.reads import BUNDLE_LIMIT, LIST_RESOURCES
from billing_app.services.mirror import mirror_upsert
from billing_app.services.refresh import customer_bundle_store
from tests.billing_app.stripe_support import (
    API,
    StripeMock,
    assert_request,
    listing,
    load,
    make_stripe_workspace,
    params_of,
)

from .contract.fake_stripe import FakeStripe
from .contract.world import ACME, BETA, GAMMA, PROD_ADDON, world_build

CUS = "cus_RbAcmeCorp0001"
# The products of the subscription fixture's four items.
SUBSCRIBED = [
    "prod_RbEnterprisePro",
    "prod_RbAdvAnalytics",
    "prod_RbPrioritySupport",
    "prod_RbApiExtraPack",
]
UNRELATED = "prod_RbLegacyStarter"

# The wave: every request's parameters follow from the customer id alone.
WAVE = {
    f"/v1/customers/{CUS}": {"expand[0]": "tax_ids", "expand[1]": "discount.source.coupon"},
    "/v1/subscriptions": {
        "customer": CUS,
        "limit": "100",
        "status": "all",
        "expand[0]": "data.discounts.source.coupon",
    },
    "/v1/invoices": {"customer": CUS, "limit": "100", "expand[0]": "data.payments"},
    "/v1/charges": {"customer": CUS, "limit": "100", "expand[0]": "data.refunds"},
    f"/v1/customers/{CUS}/payment_methods": {"type": "card", "limit": "100"},
    f"/v1/customers/{CUS}/balance_transactions": {"limit": "100"},
}
CATALOG_PAGE = {"/v1/products": {"limit": "100"}}


@pytest.fixture(autouse=True)
def _no_backoff(monkeypatch):
    monkeypatch.setattr(StripeHttpClient, "backoff_scale", 0.0)


@pytest.fixture
def ws(make_workspace):
    return make_stripe_workspace(make_workspace)


@pytest.fixture
def stripe(http):
    return StripeMock(http)


@pytest.fixture
def provider(ws):
    return StripeProvider(ws)


def product(product_id: str) -> dict:
    obj = load("product", id=product_id)
    obj["name"] = product_id.removeprefix("prod_Rb")
    return obj


def bodies(*, catalog: list[str] | None = None, has_more: bool = False) -> dict[str, dict]:
    """Stripe's answers to the wave, shaped as Stripe sends them with the expansions asked:
    the customer's tax ids, the charges' refunds (``data.refunds``)."""
    charge = load("charge")
    charge["refunds"]["data"] = [load("refund")]
    answers = {
        f"/v1/customers/{CUS}": load("customer"),
        "/v1/subscriptions": listing("/v1/subscriptions", load("subscription")),
        "/v1/invoices": listing("/v1/invoices", load("invoice")),
        "/v1/charges": listing("/v1/charges", charge),
        f"/v1/customers/{CUS}/payment_methods": listing(
            f"/v1/customers/{CUS}/payment_methods", load("payment_method")
        ),
        f"/v1/customers/{CUS}/balance_transactions": listing(
            f"/v1/customers/{CUS}/balance_transactions", load("customer_balance_transaction")
        ),
    }
    if catalog is not None:
        answers["/v1/products"] = listing(
            "/v1/products", *[product(p) for p in catalog], has_more=has_more
        )
    return answers


def register(stripe: StripeMock, answers: dict[str, dict]) -> None:
    for path, body in answers.items():
        if path == "/v1/products":  # the catalog page only: an ``ids`` request is another one
            stripe.http.add(
                "GET",
                API + path,
                json=body,
                match=[matchers.query_param_matcher({"limit": "100"})],
            )
        else:
            stripe.on("GET", path, body)


def sent(stripe: StripeMock) -> dict[str, dict[str, str]]:
    paths = [urlsplit(c.request.url).path for c in stripe.calls]
    assert len(paths) == len(set(paths)), f"a path was requested twice: {paths}"
    return {urlsplit(c.request.url).path: params_of(c) for c in stripe.calls}


def catalog_mirrored(ws, *product_ids: str) -> None:
    """The mirror as the backfill leaves it: its products stored, the products sync done."""
    for product_id in product_ids:
        mirror_upsert(workspace=ws, obj=product(product_id))
    SyncState.objects.create(workspace=ws, resource="products", completed=True)


# --- the requests ------------------------------------------------------------------------------


def test_a_customer_whose_catalog_is_not_mirrored_is_read_in_one_wave(provider, stripe):
    # given Stripe answers the wave; the catalog page also lists a product nobody subscribes to
    register(stripe, bodies(catalog=[*SUBSCRIBED, UNRELATED]))

    # when the bundle is fetched
    bundle = provider.fetch_customer_bundle(CUS)

    # then exactly the wave was sent, each request once with its expansions, and nothing after
    assert sent(stripe) == {**WAVE, **CATALOG_PAGE}
    for call in stripe.calls:
        path = urlsplit(call.request.url).path
        assert_request(call, "GET", path, {**WAVE, **CATALOG_PAGE}[path])
    # and the bundle holds what Stripe returned, the products of the subscribed prices only
    assert bundle.customer["id"] == CUS
    assert [s["id"] for s in bundle.subscriptions] == ["sub_1RbAcmeEnterprise01"]
    assert [i["id"] for i in bundle.invoices] == ["in_1RbAcmeOpen0023"]
    assert [c["id"] for c in bundle.charges] == ["ch_3RbAcmePaid0022"]
    assert [x["id"] for x in bundle.refunds] == ["re_3RbAcmeRefund0001"]
    assert [p["id"] for p in bundle.payment_methods] == ["pm_1RbAcmeVisa4242"]
    assert [t["id"] for t in bundle.balance_transactions] == ["cbtxn_1RbAcmeCredit0001"]
    assert sorted(r.ref(p["product"]) for p in bundle.prices) == sorted(SUBSCRIBED)
    assert [p["id"] for p in bundle.products] == SUBSCRIBED


def test_a_mirrored_catalog_is_not_read_again(ws, provider, stripe):
    # given the backfill stored the catalog
    catalog_mirrored(ws, *SUBSCRIBED)
    register(stripe, bodies())

    # when the bundle is fetched
    bundle = provider.fetch_customer_bundle(CUS)

    # then the six reads of the customer were sent, and no catalog read
    assert sent(stripe) == WAVE
    assert bundle.products == []
    assert len(bundle.prices) == 4


@pytest.mark.parametrize("mirrored", [False, True], ids=["catalog-page", "catalog-mirrored"])
def test_every_read_of_the_wave_is_in_flight_at_once(ws, provider, http, mirrored):
    # given each read answers only once every read of the wave has been sent
    if mirrored:
        catalog_mirrored(ws, *SUBSCRIBED)
    answers = bodies(catalog=None if mirrored else SUBSCRIBED)
    barrier = threading.Barrier(len(answers), timeout=10)
    for path, body in answers.items():

        def answer(request, body=body):
            barrier.wait()  # broken if any read waited for another's answer
            return 200, {}, json.dumps(body)

        http.add_callback("GET", API + path, callback=answer)

    # when the bundle is fetched
    bundle = provider.fetch_customer_bundle(CUS)

    # then the barrier let every read through together: one round trip
    assert not barrier.broken
    assert len(http.calls) == len(answers) == (6 if mirrored else 7)
    assert [p["id"] for p in bundle.products] == ([] if mirrored else SUBSCRIBED)


def test_every_expansion_is_within_stripes_four_levels():
    # Stripe refuses more than four levels (``property_expansion_max_depth``), which is why
    # the products are not expanded on the subscription list (data.items.data.price.product)
    paths = [
        *CUSTOMER_EXPAND,
        *[f"data.{e}" for e in SUBSCRIPTION_EXPAND + INVOICE_EXPAND + CHARGE_EXPAND],
        *PLAN_CHANGE_EXPAND,
        *[e for params in LIST_RESOURCES.values() for e in params.get("expand", [])],
    ]
    assert paths
    assert all(len(path.split(".")) <= 4 for path in paths), paths


# --- what is left for a second round trip ---------------------------------------------------


def test_a_product_beyond_the_catalog_page_is_asked_for_by_id(provider, stripe):
    # given a catalog larger than one page: the page lacks the API pack's product
    register(stripe, bodies(catalog=SUBSCRIBED[:3], has_more=True))
    stripe.http.add(
        "GET",
        API + "/v1/products",
        json=listing("/v1/products", product("prod_RbApiExtraPack")),
        match=[matchers.query_param_matcher({"ids[0]": "prod_RbApiExtraPack", "limit": "100"})],
    )

    # when the bundle is fetched
    bundle = provider.fetch_customer_bundle(CUS)

    # then that product alone was asked for, after the wave
    products = stripe.requests_to("GET", "/v1/products")
    assert [params_of(c) for c in products] == [
        {"limit": "100"},
        {"ids[0]": "prod_RbApiExtraPack", "limit": "100"},
    ]
    assert len(stripe.calls) == 8
    assert [p["id"] for p in bundle.products] == SUBSCRIBED


def test_a_product_created_since_the_backfill_is_asked_for_by_id(ws, provider, stripe):
    # given the backfill stored the catalog, but not the API pack's product (created since)
    catalog_mirrored(ws, *SUBSCRIBED[:3])
    register(stripe, bodies())
    stripe.http.add(
        "GET",
        API + "/v1/products",
        json=listing("/v1/products", product("prod_RbApiExtraPack")),
        match=[matchers.query_param_matcher({"ids[0]": "prod_RbApiExtraPack", "limit": "100"})],
    )

    # when the bundle is fetched
    bundle = provider.fetch_customer_bundle(CUS)

    # then the wave, then that product by id, as before issue 15
    assert len(stripe.calls) == 7
    assert [p["id"] for p in bundle.products] == ["prod_RbApiExtraPack"]


# --- slow, failed and timed-out reads ------------------------------------------------------


def test_the_bundle_waits_for_the_slowest_read_of_the_wave(provider, http):
    # given the catalog page answers only after the six other reads have answered
    answers = bodies(catalog=SUBSCRIBED)
    others_answered = threading.Event()
    answered: list[str] = []
    lock = threading.Lock()
    for path, body in answers.items():

        def answer(request, path=path, body=body):
            if path == "/v1/products":
                assert others_answered.wait(10)
            else:
                with lock:
                    answered.append(path)
                    if len(answered) == len(answers) - 1:
                        others_answered.set()
            return 200, {}, json.dumps(body)

        http.add_callback("GET", API + path, callback=answer)

    # when the bundle is fetched
    bundle = provider.fetch_customer_bundle(CUS)

    # then it holds the slow read's answer too: nothing is returned half-read
    assert [p["id"] for p in bundle.products] == SUBSCRIBED
    assert len(http.calls) == 7


@pytest.mark.parametrize("failing", ["/v1/charges", "/v1/products"])
def test_a_read_of_the_wave_failing_at_stripe_makes_the_bundle_unavailable(
    provider, stripe, failing
):
    # given one read of the wave fails at Stripe (503 after its retries)
    answers = bodies(catalog=SUBSCRIBED)
    del answers[failing]
    register(stripe, answers)
    stripe.on("GET", failing, {"error": {"type": "api_error", "message": "x"}}, status=503)

    # when / then the bundle is refused as unavailable, not returned half-empty
    with pytest.raises(ProviderUnavailable):
        provider.fetch_customer_bundle(CUS)
    # and the failing read was retried within its bound, every other read sent once
    assert len(stripe.requests_to("GET", failing)) == 1 + settings.STRIPE_MAX_NETWORK_RETRIES
    assert all(len(stripe.requests_to("GET", p)) == 1 for p in answers)


def test_a_read_of_the_wave_timing_out_is_retried_then_unavailable(provider, stripe):
    # given the subscriptions read never answers within the client's timeout
    answers = bodies(catalog=SUBSCRIBED)
    del answers["/v1/subscriptions"]
    register(stripe, answers)
    stripe.on("GET", "/v1/subscriptions", exc=ReadTimeout("read timed out"))

    # when / then the bundle is unavailable after the bounded retries, each with the timeout
    with pytest.raises(ProviderUnavailable):
        provider.fetch_customer_bundle(CUS)
    timed_out = stripe.requests_to("GET", "/v1/subscriptions")
    assert len(timed_out) == 1 + settings.STRIPE_MAX_NETWORK_RETRIES
    assert all(
        c.request.req_kwargs["timeout"] == settings.STRIPE_TIMEOUT_SECONDS for c in stripe.calls
    )


def test_an_unknown_customer_is_not_found_whatever_else_the_wave_answered(provider, stripe):
    # given Stripe does not know the customer (its lists answer empty, the catalog answers)
    answers = bodies(catalog=SUBSCRIBED)
    del answers[f"/v1/customers/{CUS}"]
    register(stripe, answers)
    stripe.on(
        "GET",
        f"/v1/customers/{CUS}",
        {
            "error": {
                "type": "invalid_request_error",
                "code": "resource_missing",
                "message": f"No such customer: '{CUS}'",
            }
        },
        status=404,
    )

    # when / then it is a 404 (the refresh service answers NotFound), not an outage
    with pytest.raises(ProviderError) as refused:
        provider.fetch_customer_bundle(CUS)
    assert refused.value.status == 404
    assert not isinstance(refused.value, ProviderUnavailable)


# --- the same content as the two round trips it replaced ------------------------------------


def bundle_before_issue_15(provider: StripeProvider, customer_id: str) -> CustomerBundle:
    """``fetch_customer_bundle`` as it was before issue 15 (commit 32bba58): six reads at
    once, then the products of the subscribed prices the mirror lacks, by id."""
    api = provider.api
    base = {"customer": customer_id, "limit": BUNDLE_LIMIT}
    results = provider._concurrently(
        {
            "customer": lambda: api.customer_retrieve(customer_id, expand=CUSTOMER_EXPAND),
            "subscriptions": lambda: api.subscriptions_list(
                {**base, "status": "all", "expand": [f"data.{e}" for e in SUBSCRIPTION_EXPAND]}
            ),
            "invoices": lambda: api.invoices_list(
                {**base, "expand": [f"data.{e}" for e in INVOICE_EXPAND]}
            ),
            "charges": lambda: api.charges_list(
                {**base, "expand": [f"data.{e}" for e in CHARGE_EXPAND]}
            ),
            "payment_methods": lambda: api.customer_payment_methods_list(
                customer_id, {"type": "card", "limit": BUNDLE_LIMIT}
            ),
            "balance_transactions": lambda: api.customer_balance_transactions_list(
                customer_id, {"limit": BUNDLE_LIMIT}
            ),
        }
    )
    subscriptions = r.page_read(results["subscriptions"]).objects
    charges = r.page_read(results["charges"]).objects
    prices: dict[str, dict] = {}
    for subscription in subscriptions:
        for item in r.subscription_items(subscription):
            price = item.get("price")
            if isinstance(price, dict) and price.get("id"):
                prices[price["id"]] = price
    wanted = {r.ref(p.get("product")) for p in prices.values()} - {""}
    product_ids = sorted(wanted - provider._mirrored_products(wanted))
    products: list[dict] = []
    if product_ids:
        products = r.page_read(
            api.products_list({"ids": product_ids, "limit": BUNDLE_LIMIT})
        ).objects
    return CustomerBundle(
        customer=results["customer"],
        subscriptions=subscriptions,
        invoices=r.page_read(results["invoices"]).objects,
        charges=charges,
        refunds=[x for c in charges for x in ((c.get("refunds") or {}).get("data") or [])],
        payment_methods=r.page_read(results["payment_methods"]).objects,
        balance_transactions=r.page_read(results["balance_transactions"]).objects,
        prices=list(prices.values()),
        products=products,
    )


MIRROR_MODELS = (
    MirrorCustomer,
    MirrorProduct,
    MirrorPrice,
    MirrorSubscription,
    MirrorSubscriptionItem,
    MirrorDiscount,
    MirrorInvoice,
    MirrorInvoiceLine,
    MirrorCharge,
    MirrorRefund,
    MirrorPaymentMethod,
    MirrorBalanceTransaction,
)


def mirror_rows(workspace) -> dict[str, list]:
    return {
        model.__name__: sorted(
            model.objects.filter(workspace=workspace).values_list("stripe_id", "data"),
            key=lambda row: row[0],
        )
        for model in MIRROR_MODELS
    }


@pytest.mark.parametrize("mirrored", ["nothing", "one-product", "catalog"])
def test_the_wave_returns_and_stores_what_the_two_round_trips_did(make_workspace, http, mirrored):
    # given the contract's Stripe account (Stripe-shaped objects, Stripe's list and expansion
    # semantics) and two workspaces connected to it, whose mirrors hold the same catalog
    world = world_build(timezone.now())
    fake = FakeStripe(http, now=world.now)
    fake.load(world.objects)
    old_ws = make_stripe_workspace(make_workspace, slug=f"bundle-old-{mirrored}")
    new_ws = make_stripe_workspace(make_workspace, slug=f"bundle-new-{mirrored}")
    products = [o for o in world.objects if o["object"] == "product"]
    for workspace in (old_ws, new_ws):
        if mirrored == "one-product":
            mirror_upsert(workspace=workspace, obj=world.get(PROD_ADDON))
        if mirrored == "catalog":
            for obj in products:
                mirror_upsert(workspace=workspace, obj=obj)
            SyncState.objects.create(workspace=workspace, resource="products", completed=True)
    read_at = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)

    for customer in (ACME, BETA, GAMMA):
        # when each customer's bundle is read the old way and the new way
        before = bundle_before_issue_15(StripeProvider(old_ws), customer)
        after = StripeProvider(new_ws).fetch_customer_bundle(customer)

        # then the two bundles are identical: the same objects, the same shapes, in order
        assert asdict(after) == asdict(before)
        if customer == ACME:  # the first read: only a mirrored catalog spares its products
            assert before.subscriptions and before.prices
            assert bool(before.products) is (mirrored != "catalog")

        # and storing them leaves the same rows in the mirror
        customer_bundle_store(
            workspace=old_ws, customer_id=customer, bundle=before, read_at=read_at
        )
        customer_bundle_store(workspace=new_ws, customer_id=customer, bundle=after, read_at=read_at)
        assert mirror_rows(new_ws) == mirror_rows(old_ws)


def test_products_expanded_on_the_subscription_list_would_be_refused(make_workspace, http):
    # given the contract's Stripe, which expands as deep as Stripe does and no deeper
    world = world_build(timezone.now())
    FakeStripe(http, now=world.now).load(world.objects)
    api = StripeProvider(make_stripe_workspace(make_workspace)).api

    # when the subscriptions are listed with their products expanded: five levels
    with pytest.raises(ProviderError) as refused:
        api.subscriptions_list({"customer": ACME, "expand": ["data.items.data.price.product"]})

    # then Stripe refuses the whole request; four levels (one subscription) are fine
    assert refused.value.provider_code == "property_expansion_max_depth"
    subscription = api.subscriptions_list({"customer": ACME, "status": "all"})["data"][0]
    expanded = api.subscription_retrieve(subscription["id"], expand=PLAN_CHANGE_EXPAND)
    assert all(isinstance(i["price"]["product"], dict) for i in expanded["items"]["data"])
