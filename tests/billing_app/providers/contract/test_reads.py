"""Contract: what every provider reads back — the bundle, email search, pages, single objects."""

from __future__ import annotations

import pytest

from billing_app.errors import BillingDeskError

from .world import (
    ACME,
    ACME_EMAIL,
    CH_PAID,
    INV_OPEN,
    PM_ACME,
    PRICE_ADDON,
    PRICE_PRO,
    SI_ADDON,
    SI_PLAN,
    SUB,
    SUB_CANCELED,
)


def ids(objects):
    return {o["id"] for o in objects}


def test_the_customer_bundle_holds_the_whole_account(harness):
    # when Acme's bundle is fetched
    bundle = harness.provider.fetch_customer_bundle(ACME)

    # then it holds the customer and everything the panel shows about them
    assert bundle.customer["id"] == ACME
    assert {SUB, SUB_CANCELED} <= ids(bundle.subscriptions)
    subscription = next(s for s in bundle.subscriptions if s["id"] == SUB)
    assert [(i["id"], i["price"]["id"], i["quantity"]) for i in subscription["items"]["data"]] == [
        (SI_PLAN, PRICE_PRO, 3),
        (SI_ADDON, PRICE_ADDON, 1),
    ]
    assert INV_OPEN in ids(bundle.invoices)
    assert CH_PAID in ids(bundle.charges)
    assert PM_ACME in ids(bundle.payment_methods)
    assert {PRICE_PRO, PRICE_ADDON} <= ids(bundle.prices)


def test_an_unknown_customer_is_not_found(harness):
    with pytest.raises(BillingDeskError) as refused:
        harness.provider.fetch_customer_bundle("cus_DoesNotExist")
    assert refused.value.status == 404


def test_customers_are_found_by_email_whatever_its_case(harness):
    found = harness.provider.find_customers_by_email(
        ACME_EMAIL.upper().replace("BILLING", "billing")
    )
    assert [c["id"] for c in found] == [ACME]
    assert harness.provider.find_customers_by_email("nobody@nowhere.example") == []


def test_an_email_without_at_sign_is_refused(harness):
    with pytest.raises(BillingDeskError) as refused:
        harness.provider.find_customers_by_email("not-an-email")
    assert refused.value.code == "invalid_email"


def test_resources_are_listed_page_by_page(harness):
    # when customers are listed one per page
    first = harness.provider.list_objects("customers", cursor=None, limit=1)
    second = harness.provider.list_objects("customers", cursor=first.next_cursor, limit=1)

    # then the pages follow each other without overlap
    assert len(first.objects) == 1 and first.has_more and first.next_cursor
    assert len(second.objects) == 1
    assert first.objects[0]["id"] != second.objects[0]["id"]


@pytest.mark.parametrize(
    ("resource", "limit", "code"),
    [("spaceships", 10, "unknown_resource"), ("customers", 0, "invalid_limit")],
)
def test_bad_listings_are_refused(harness, resource, limit, code):
    with pytest.raises(BillingDeskError) as refused:
        harness.provider.list_objects(resource, cursor=None, limit=limit)
    assert refused.value.code == code


def test_one_object_is_read_in_its_current_state(harness):
    subscription = harness.retrieve("subscription", SUB)
    assert (subscription["object"], subscription["id"], subscription["status"]) == (
        "subscription",
        SUB,
        "active",
    )
    assert harness.retrieve("charge", CH_PAID)["amount"] == 36000
    assert harness.retrieve("customer", ACME)["email"] == ACME_EMAIL


def test_an_unknown_object_type_is_refused(harness):
    with pytest.raises(BillingDeskError) as refused:
        harness.retrieve("spaceship", "x_1")
    assert refused.value.code == "unknown_resource"


def test_ping_says_the_provider_answers(harness):
    assert harness.provider.ping() is True


def test_now_is_the_billing_clock(harness):
    # the provider's clock is the account's (the sandbox's is frozen at the world's now)
    assert abs((harness.provider.now() - harness.now).total_seconds()) < 60
    # and the same time is read without building a provider (``billing_app.clock``)
    clock = type(harness.provider).clock_now(harness.workspace)
    assert abs((clock - harness.provider.now()).total_seconds()) < 60
