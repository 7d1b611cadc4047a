"""StripeProvider against intercepted Stripe HTTP: the exact requests, the results, the mirror."""

from __future__ import annotations

import copy
import time
from datetime import UTC, datetime, timedelta

import pytest
from django.conf import settings
from requests.exceptions import ReadTimeout

from billing_app.errors import (
    Conflict,
    PreconditionFailed,
    ProviderError,
    ProviderUnavailable,
    ValidationFailed,
)
from billing_app.models import (
    MirrorBalanceTransaction,
    MirrorCharge,
    MirrorCustomer,
    MirrorDiscount,
    MirrorInvoice,
    MirrorRefund,
    MirrorSubscription,
    MirrorSubscriptionItem,
)
from billing_app.money import Money
from billing_app.providers.base import TaxIdInput
from billing_app.providers.stripe import StripeProvider
from billing_app.providers.stripe.client import StripeHttpClient
from billing_app.services.mirror import mirror_upsert
from tests.billing_app.stripe_support import (
    SECRET_KEY,
    MirroringProvider,
    StripeMock,
    assert_request,
    listing,
    load,
    make_stripe_workspace,
    params_of,
    stripe_error,
)

KEY = "billing-desk-5b7f1c8e-refund"
CUS = "cus_RbAcmeCorp0001"
SUB = "sub_1RbAcmeEnterprise01"
CH = "ch_3RbAcmePaid0022"
INV = "in_1RbAcmeOpen0023"
NOW = int(time.time())


@pytest.fixture(autouse=True)
def _no_backoff(monkeypatch):
    """Retries happen as in production, without the sleeps between them."""
    monkeypatch.setattr(StripeHttpClient, "backoff_scale", 0.0)


@pytest.fixture
def ws(make_workspace):
    return make_stripe_workspace(make_workspace)


@pytest.fixture
def stripe(http):
    return StripeMock(http)


@pytest.fixture
def provider(ws):
    """The provider as the services call it: each write's changes are then mirrored."""
    return MirroringProvider(StripeProvider(ws))


def recent_charge(**overrides):
    return load("charge", **{"created": NOW - 2 * 86400, **overrides})


def ts(dt: datetime) -> str:
    return str(int(dt.timestamp()))


# --- reads ---------------------------------------------------------------------------------


# The customer bundle (one wave of reads): test_stripe_bundle.py.


def test_find_customers_by_email_also_asks_for_the_lower_cased_address(provider, stripe):
    # given Stripe knows the address only in lower case (its filter is case-sensitive)
    stripe.on("GET", "/v1/customers", listing("/v1/customers"))
    stripe.on(
        "GET",
        "/v1/customers",
        listing(
            "/v1/customers",
            load("customer"),
            load("customer", id="cus_RbGone", deleted=True),
        ),
    )

    # when the requester's address is looked up as typed
    found = provider.find_customers_by_email("  Billing@Acme.example ")

    # then both spellings were asked for, and deleted customers are left out
    asked = sorted(params_of(c)["email"] for c in stripe.calls)
    assert asked == ["Billing@Acme.example", "billing@acme.example"]
    for call, email in zip(stripe.calls, (params_of(c)["email"] for c in stripe.calls)):
        assert_request(call, "GET", "/v1/customers", {"email": email, "limit": "100"})
    assert [c["id"] for c in found] == [CUS]


def test_find_customers_by_email_lower_case_input_is_one_request(provider, stripe):
    stripe.on("GET", "/v1/customers", listing("/v1/customers", load("customer")))

    found = provider.find_customers_by_email("billing@acme.example")

    assert len(stripe.calls) == 1
    assert_request(
        stripe.calls[0], "GET", "/v1/customers", {"email": "billing@acme.example", "limit": "100"}
    )
    assert [c["id"] for c in found] == [CUS]


def test_find_customers_by_email_refuses_a_non_address(provider, stripe):
    with pytest.raises(ValidationFailed) as caught:
        provider.find_customers_by_email("acme corp")
    assert caught.value.code == "invalid_email"
    assert stripe.calls == []


def test_list_objects_pages_with_starting_after(provider, stripe):
    # given a page of two customers with more to come
    stripe.on(
        "GET",
        "/v1/customers",
        listing(
            "/v1/customers",
            load("customer", id="cus_A"),
            load("customer", id="cus_B"),
            has_more=True,
        ),
    )

    # when the page after cus_0 is asked for
    page = provider.list_objects("customers", cursor="cus_0", limit=2)

    # then Stripe was asked with the cursor, and the next cursor is the last id
    assert_request(
        stripe.calls[0],
        "GET",
        "/v1/customers",
        {
            "limit": "2",
            "starting_after": "cus_0",
            "expand[0]": "data.tax_ids",
            "expand[1]": "data.discount.source.coupon",
        },
    )
    assert [o["id"] for o in page.objects] == ["cus_A", "cus_B"]
    assert page.has_more is True
    assert page.next_cursor == "cus_B"


@pytest.mark.parametrize(
    ("resource", "path", "params"),
    [
        ("products", "/v1/products", {"limit": "100"}),
        ("prices", "/v1/prices", {"limit": "100"}),
        (
            "subscriptions",
            "/v1/subscriptions",
            {"limit": "100", "status": "all", "expand[0]": "data.discounts.source.coupon"},
        ),
        ("invoices", "/v1/invoices", {"limit": "100", "expand[0]": "data.payments"}),
        ("charges", "/v1/charges", {"limit": "100", "expand[0]": "data.refunds"}),
        ("refunds", "/v1/refunds", {"limit": "100"}),
        (
            f"customers/{CUS}/payment_methods",
            f"/v1/customers/{CUS}/payment_methods",
            {"limit": "100", "type": "card"},
        ),
        (
            f"customers/{CUS}/balance_transactions",
            f"/v1/customers/{CUS}/balance_transactions",
            {"limit": "100"},
        ),
    ],
)
def test_list_objects_first_page_of_each_resource(provider, stripe, resource, path, params):
    stripe.on("GET", path, listing(path))

    page = provider.list_objects(resource, cursor=None)

    assert_request(stripe.calls[0], "GET", path, params)
    assert page.objects == [] and page.has_more is False and page.next_cursor is None


@pytest.mark.parametrize("resource", ["coupons", "customers/cus_1/sources", "../v1/balance"])
def test_list_objects_refuses_unknown_resources(provider, stripe, resource):
    with pytest.raises(ValidationFailed):
        provider.list_objects(resource, cursor=None)
    assert stripe.calls == []


@pytest.mark.parametrize(
    ("resource", "object_id", "path", "params"),
    [
        (
            "customer",
            CUS,
            f"/v1/customers/{CUS}",
            {"expand[0]": "tax_ids", "expand[1]": "discount.source.coupon"},
        ),
        ("subscription", SUB, f"/v1/subscriptions/{SUB}", {"expand[0]": "discounts.source.coupon"}),
        ("invoice", INV, f"/v1/invoices/{INV}", {"expand[0]": "payments"}),
        ("charge", CH, f"/v1/charges/{CH}", {"expand[0]": "refunds"}),
        ("refund", "re_1", "/v1/refunds/re_1", {}),
        ("payment_method", "pm_1", "/v1/payment_methods/pm_1", {}),
        ("price", "price_1", "/v1/prices/price_1", {}),
        ("product", "prod_1", "/v1/products/prod_1", {}),
        ("dispute", "dp_1", "/v1/disputes/dp_1", {}),
        ("payment_intent", "pi_1", "/v1/payment_intents/pi_1", {"expand[0]": "latest_charge"}),
        ("subscription_schedule", "sub_sched_1", "/v1/subscription_schedules/sub_sched_1", {}),
    ],
)
def test_retrieve_object_reads_the_current_state(
    provider, stripe, resource, object_id, path, params
):
    stripe.on("GET", path, {"id": object_id, "object": resource})

    obj = provider.retrieve_object(resource, object_id)

    assert_request(stripe.calls[0], "GET", path, params)
    assert obj == {"id": object_id, "object": resource}


def test_retrieve_object_refuses_unknown_types(provider, stripe):
    with pytest.raises(ValidationFailed):
        provider.retrieve_object("account", "acct_1")
    assert stripe.calls == []


def test_each_workspace_uses_its_own_secret_key(make_workspace, stripe):
    # given two workspaces connected to two Stripe accounts
    first = make_stripe_workspace(make_workspace, "first-co")
    other_key = "sk_test_51OtherCompanyKey000000000000000000000000"
    second = make_stripe_workspace(make_workspace, "second-co", stripe_secret_key=other_key)
    stripe.on("GET", f"/v1/customers/{CUS}", load("customer"))

    # when each reads a customer
    StripeProvider(first).retrieve_object("customer", CUS)
    StripeProvider(second).retrieve_object("customer", CUS)

    # then each request carried its own workspace's key
    keys = [c.request.headers["Authorization"] for c in stripe.calls]
    assert keys == [f"Bearer {SECRET_KEY}", f"Bearer {other_key}"]


def test_a_workspace_without_a_key_is_refused_before_any_request(make_workspace, stripe):
    ws = make_stripe_workspace(make_workspace, "keyless")
    ws.stripe_secret_key = ""
    with pytest.raises(ProviderError) as caught:
        StripeProvider(ws)
    assert caught.value.code == "provider_not_configured"
    assert stripe.calls == []


# --- writes ----------------------------------------------------------------------------------


def test_payment_link_for_a_given_open_invoice_is_its_hosted_page(provider, stripe):
    stripe.on("GET", f"/v1/invoices/{INV}", load("invoice"))

    link = provider.create_payment_link(customer_id=CUS, invoice_id=INV, idempotency_key=KEY)

    assert len(stripe.calls) == 1
    assert_request(stripe.calls[0], "GET", f"/v1/invoices/{INV}", {})
    assert link.kind == "hosted_invoice"
    assert link.url == load("invoice")["hosted_invoice_url"]
    assert link.object_id == INV


def test_payment_link_picks_the_oldest_open_invoice(provider, stripe):
    older = load("invoice", id="in_older", created=load("invoice")["created"] - 30 * 86400)
    stripe.on("GET", "/v1/invoices", listing("/v1/invoices", load("invoice"), older))

    link = provider.create_payment_link(customer_id=CUS, invoice_id=None, idempotency_key=KEY)

    assert_request(
        stripe.calls[0],
        "GET",
        "/v1/invoices",
        {"customer": CUS, "status": "open", "limit": "10"},
    )
    assert len(stripe.calls) == 1
    assert link.object_id == "in_older"


def test_payment_link_without_an_open_invoice_is_a_setup_checkout(provider, stripe):
    # given nothing is owed on an invoice
    stripe.on("GET", "/v1/invoices", listing("/v1/invoices"))
    stripe.on("GET", f"/v1/customers/{CUS}", load("customer"))
    stripe.on("POST", "/v1/checkout/sessions", load("checkout_session"))

    # when a payment link is asked for
    link = provider.create_payment_link(customer_id=CUS, invoice_id=None, idempotency_key=KEY)

    # then a Checkout Session saves a card for the next attempt, with our idempotency key
    assert_request(
        stripe.requests_to("POST", "/v1/checkout/sessions")[0],
        "POST",
        "/v1/checkout/sessions",
        {
            "mode": "setup",
            "customer": CUS,
            "currency": "usd",
            "metadata[billing_desk]": "payment_link",
        },
        idempotency_key=KEY,
    )
    assert link.kind == "checkout"
    assert link.url.startswith("https://checkout.stripe.com/")
    assert link.expires_at == datetime.fromtimestamp(load("checkout_session")["expires_at"], UTC)


def test_payment_link_refuses_another_customers_invoice(provider, stripe):
    stripe.on("GET", f"/v1/invoices/{INV}", load("invoice", customer="cus_Other"))

    with pytest.raises(ValidationFailed) as caught:
        provider.create_payment_link(customer_id=CUS, invoice_id=INV, idempotency_key=KEY)

    assert caught.value.code == "invoice_not_for_customer"
    assert len(stripe.calls) == 1


def test_payment_link_refuses_a_paid_invoice(provider, stripe):
    stripe.on("GET", f"/v1/invoices/{INV}", load("invoice", status="paid"))

    with pytest.raises(PreconditionFailed) as caught:
        provider.create_payment_link(customer_id=CUS, invoice_id=INV, idempotency_key=KEY)

    assert caught.value.code == "invoice_not_open"


def test_resend_invoice_emails_a_send_invoice_invoice(provider, stripe, ws):
    stripe.on("GET", f"/v1/invoices/{INV}", load("invoice"))
    stripe.on("POST", f"/v1/invoices/{INV}/send", load("invoice"))

    sent = provider.resend_invoice(invoice_id=INV, idempotency_key=KEY)

    assert_request(
        stripe.requests_to("POST", f"/v1/invoices/{INV}/send")[0],
        "POST",
        f"/v1/invoices/{INV}/send",
        {},
        idempotency_key=KEY,
    )
    assert sent.method == "email"
    assert sent.invoice_pdf.endswith("/pdf")
    assert MirrorInvoice.objects.get(workspace=ws, stripe_id=INV).status == "open"


def test_resend_invoice_of_an_automatically_charged_invoice_returns_the_link(provider, stripe):
    stripe.on(
        "GET", f"/v1/invoices/{INV}", load("invoice", collection_method="charge_automatically")
    )

    sent = provider.resend_invoice(invoice_id=INV, idempotency_key=KEY)

    assert [c.request.method for c in stripe.calls] == ["GET"]
    assert sent.method == "link"
    assert sent.hosted_invoice_url == load("invoice")["hosted_invoice_url"]


def test_resend_invoice_refuses_a_draft(provider, stripe):
    stripe.on("GET", f"/v1/invoices/{INV}", load("invoice", status="draft"))
    with pytest.raises(PreconditionFailed):
        provider.resend_invoice(invoice_id=INV, idempotency_key=KEY)
    assert len(stripe.calls) == 1


def test_apply_credit_is_a_negative_balance_transaction(provider, stripe, ws):
    # given the customer is mirrored with no balance
    mirror_upsert(workspace=ws, obj=load("customer"))
    stripe.on(
        "POST",
        f"/v1/customers/{CUS}/balance_transactions",
        load("customer_balance_transaction"),
    )

    # when a $50 credit is applied
    credit = provider.apply_credit(
        customer_id=CUS, amount=Money(5000, "USD"), description="Goodwill", idempotency_key=KEY
    )

    # then Stripe got a negative adjustment under our idempotency key
    assert_request(
        stripe.calls[0],
        "POST",
        f"/v1/customers/{CUS}/balance_transactions",
        {"amount": "-5000", "currency": "usd", "description": "Goodwill"},
        idempotency_key=KEY,
    )
    assert credit.transaction_id == "cbtxn_1RbAcmeCredit0001"
    assert credit.amount == Money(5000, "USD")
    assert credit.ending_balance == Money(-5000, "USD")
    # and the mirror shows the transaction and the credit held
    assert MirrorBalanceTransaction.objects.filter(workspace=ws, amount=-5000).exists()
    assert MirrorCustomer.objects.get(workspace=ws, stripe_id=CUS).balance == -5000


def test_apply_credit_refuses_a_non_positive_amount(provider, stripe):
    with pytest.raises(ValidationFailed):
        provider.apply_credit(
            customer_id=CUS, amount=Money(0, "USD"), description="", idempotency_key=KEY
        )
    assert stripe.calls == []


def test_refund_checks_the_charge_then_refunds_and_mirrors(provider, stripe, ws):
    # given a recent succeeded charge of $3,400 with nothing refunded yet
    stripe.on("GET", f"/v1/charges/{CH}", recent_charge())
    stripe.on("POST", "/v1/refunds", load("refund"))
    refunded = recent_charge(amount_refunded=50000)
    refunded["refunds"]["data"] = [load("refund")]
    stripe.on("GET", f"/v1/charges/{CH}", refunded)

    # when $500 is refunded at the customer's request
    result = provider.refund(
        charge_id=CH,
        amount=Money(50000, "USD"),
        reason="requested_by_customer",
        idempotency_key=KEY,
        metadata={"billing_desk_action": "a-1", "ticket_id": "4821"},
    )

    # then the refund request is exactly this, with our idempotency key
    assert [(c.request.method, c.request.url.split("?")[0]) for c in stripe.calls] == [
        ("GET", f"https://api.stripe.com/v1/charges/{CH}"),
        ("POST", "https://api.stripe.com/v1/refunds"),
        ("GET", f"https://api.stripe.com/v1/charges/{CH}"),
    ]
    assert_request(
        stripe.calls[1],
        "POST",
        "/v1/refunds",
        {
            "charge": CH,
            "amount": "50000",
            "reason": "requested_by_customer",
            "metadata[billing_desk_action]": "a-1",
            "metadata[ticket_id]": "4821",
        },
        idempotency_key=KEY,
    )
    assert result.refund_id == "re_3RbAcmeRefund0001"
    assert result.amount == Money(50000, "USD")
    assert result.status == "succeeded"
    # and the mirror holds the refund (with its customer) and the charge's new state
    refund = MirrorRefund.objects.get(workspace=ws, stripe_id="re_3RbAcmeRefund0001")
    assert refund.customer_id == CUS
    assert MirrorCharge.objects.get(workspace=ws, stripe_id=CH).amount_refunded == 50000


@pytest.mark.parametrize(
    ("charge", "amount", "code"),
    [
        ({"amount_refunded": 300000}, 50000, "exceeds_refundable"),
        ({"amount_refunded": 340000, "refunded": True}, 100, "already_refunded"),
        ({"disputed": True}, 100, "charge_disputed"),
        ({"status": "failed"}, 100, "charge_not_refundable"),
        ({"created": NOW - 200 * 86400}, 100, "refund_window_passed"),
        ({"currency": "eur"}, 100, "currency_mismatch"),
    ],
)
def test_refund_preconditions_refuse_before_any_money_moves(provider, stripe, charge, amount, code):
    stripe.on("GET", f"/v1/charges/{CH}", recent_charge(**charge))

    with pytest.raises(PreconditionFailed) as caught:
        provider.refund(
            charge_id=CH, amount=Money(amount, "USD"), reason="duplicate", idempotency_key=KEY
        )

    assert caught.value.code == code
    assert stripe.requests_to("POST", "/v1/refunds") == []


def test_refund_refuses_a_reason_outside_stripes_enum(provider, stripe):
    with pytest.raises(ValidationFailed) as caught:
        provider.refund(charge_id=CH, amount=Money(100, "USD"), reason="angry", idempotency_key=KEY)
    assert caught.value.code == "invalid_refund_reason"
    assert stripe.calls == []


def trialing(**overrides):
    return load("subscription", **{"status": "trialing", "trial_end": NOW + 3 * 86400, **overrides})


def test_extend_trial_sets_trial_end(provider, stripe, ws):
    new_end = datetime.now(UTC).replace(microsecond=0) + timedelta(days=10)
    stripe.on("GET", f"/v1/subscriptions/{SUB}", trialing())
    stripe.on("POST", f"/v1/subscriptions/{SUB}", trialing(trial_end=int(new_end.timestamp())))

    result = provider.extend_trial(subscription_id=SUB, trial_end=new_end, idempotency_key=KEY)

    assert_request(
        stripe.calls[1],
        "POST",
        f"/v1/subscriptions/{SUB}",
        {"trial_end": ts(new_end), "proration_behavior": "none"},
        idempotency_key=KEY,
    )
    assert result.trial_end == new_end
    assert MirrorSubscription.objects.get(workspace=ws, stripe_id=SUB).trial_end == new_end


def test_extend_trial_refuses_a_subscription_that_is_not_trialing(provider, stripe):
    stripe.on("GET", f"/v1/subscriptions/{SUB}", load("subscription"))
    with pytest.raises(PreconditionFailed) as caught:
        provider.extend_trial(
            subscription_id=SUB,
            trial_end=datetime.now(UTC) + timedelta(days=3),
            idempotency_key=KEY,
        )
    assert caught.value.code == "not_trialing"
    assert len(stripe.calls) == 1


def test_extend_trial_refuses_an_earlier_end(provider, stripe):
    stripe.on("GET", f"/v1/subscriptions/{SUB}", trialing())
    with pytest.raises(ValidationFailed):
        provider.extend_trial(
            subscription_id=SUB,
            trial_end=datetime.now(UTC) + timedelta(days=1),
            idempotency_key=KEY,
        )
    assert len(stripe.calls) == 1


def test_pause_sets_pause_collection(provider, stripe, ws):
    resumes = datetime.now(UTC).replace(microsecond=0) + timedelta(days=30)
    pause = {"behavior": "void", "resumes_at": int(resumes.timestamp())}
    stripe.on("GET", f"/v1/subscriptions/{SUB}", load("subscription"))
    stripe.on("POST", f"/v1/subscriptions/{SUB}", load("subscription", pause_collection=pause))

    result = provider.pause_subscription(
        subscription_id=SUB, behavior="void", resumes_at=resumes, idempotency_key=KEY
    )

    assert_request(
        stripe.calls[1],
        "POST",
        f"/v1/subscriptions/{SUB}",
        {"pause_collection[behavior]": "void", "pause_collection[resumes_at]": ts(resumes)},
        idempotency_key=KEY,
    )
    assert result.pause_collection == pause
    assert MirrorSubscription.objects.get(workspace=ws, stripe_id=SUB).pause_collection == pause


@pytest.mark.parametrize(
    ("behavior", "resumes_days"), [("stop", None), ("void", -1)], ids=["behavior", "past"]
)
def test_pause_refuses_bad_input(provider, stripe, behavior, resumes_days):
    resumes = None if resumes_days is None else datetime.now(UTC) + timedelta(days=resumes_days)
    with pytest.raises(ValidationFailed):
        provider.pause_subscription(
            subscription_id=SUB, behavior=behavior, resumes_at=resumes, idempotency_key=KEY
        )
    assert stripe.calls == []


def test_pause_refuses_a_canceled_subscription(provider, stripe):
    stripe.on("GET", f"/v1/subscriptions/{SUB}", load("subscription", status="canceled"))
    with pytest.raises(PreconditionFailed):
        provider.pause_subscription(
            subscription_id=SUB, behavior="void", resumes_at=None, idempotency_key=KEY
        )
    assert len(stripe.calls) == 1


PREVIEW_AT = datetime(2026, 4, 14, tzinfo=UTC)


def test_preview_upgrade_asks_stripe_for_the_proration(provider, stripe):
    # given Acme on Enterprise Pro and the Enterprise Plus price
    stripe.on("GET", f"/v1/subscriptions/{SUB}", load("subscription"))
    stripe.on("GET", "/v1/prices/price_1RbEnterprisePlus", load("price_enterprise_plus"))
    stripe.on("POST", "/v1/invoices/create_preview", load("invoice_preview"))

    # when the change is previewed as of 14 April
    preview = provider.preview_plan_change(
        subscription_id=SUB, new_price_id="price_1RbEnterprisePlus", at=PREVIEW_AT
    )

    # then Stripe previews swapping the plan item with the proration pinned to that date
    call = stripe.requests_to("POST", "/v1/invoices/create_preview")[0]
    assert_request(
        call,
        "POST",
        "/v1/invoices/create_preview",
        {
            "subscription": SUB,
            "subscription_details[items][0][id]": "si_RbAcmePlan01",
            "subscription_details[items][0][price]": "price_1RbEnterprisePlus",
            "subscription_details[proration_date]": ts(PREVIEW_AT),
            "subscription_details[proration_behavior]": "always_invoice",
        },
    )
    assert call.request.headers["Idempotency-Key"] != KEY  # a preview is not our write
    # and the preview carries only the proration lines, their sum due now, the new amount
    assert preview.direction == "upgrade"
    assert preview.current_price_id == "price_1RbEnterprisePro"
    assert [line.amount.amount for line in preview.lines] == [-112000, 140000]
    assert preview.amount_due_now == Money(28000, "USD")
    assert preview.new_recurring_amount == Money(50 * 6000 + 50000 + 30000 + 20000, "USD")
    assert preview.proration_date == PREVIEW_AT
    assert preview.effective_date == PREVIEW_AT


def test_preview_downgrade_takes_effect_at_period_end_without_proration(provider, stripe):
    stripe.on("GET", f"/v1/subscriptions/{SUB}", load("subscription"))
    stripe.on("GET", "/v1/prices/price_1RbTeam", load("price_team"))

    preview = provider.preview_plan_change(subscription_id=SUB, new_price_id="price_1RbTeam")

    assert stripe.requests_to("POST", "/v1/invoices/create_preview") == []
    assert preview.direction == "downgrade"
    assert preview.lines == []
    assert preview.amount_due_now == Money(0, "USD")
    assert preview.new_recurring_amount == Money(50 * 3000 + 100000, "USD")
    period_end = load("subscription")["items"]["data"][0]["current_period_end"]
    assert preview.effective_date == datetime.fromtimestamp(period_end, UTC)
    assert preview.proration_date is None


@pytest.mark.parametrize(
    ("price", "code"),
    [
        ({"id": "price_1RbEnterprisePro"}, "same_price"),
        ({"active": False}, "price_inactive"),
        ({"currency": "eur"}, "currency_mismatch"),
        ({"type": "one_time", "recurring": None}, "price_not_recurring"),
    ],
)
def test_plan_change_refuses_an_unsuitable_price(provider, stripe, price, code):
    target = load("price_enterprise_plus", **price)
    stripe.on("GET", f"/v1/subscriptions/{SUB}", load("subscription"))
    stripe.on("GET", "/v1/prices/price_1RbEnterprisePlus", target)
    stripe.on("GET", "/v1/prices/price_1RbEnterprisePro", target)

    with pytest.raises(PreconditionFailed) as caught:
        provider.change_plan(
            subscription_id=SUB,
            new_price_id=target["id"],
            proration_date=None,
            idempotency_key=KEY,
        )

    assert caught.value.code == code
    assert [c.request.method for c in stripe.calls] == ["GET", "GET"]


def test_upgrade_swaps_the_item_price_and_invoices_the_proration_now(provider, stripe, ws):
    # given the upgrade was previewed with a pinned proration date
    upgraded = load("subscription")
    upgraded["items"]["data"][0]["price"] = load("price_enterprise_plus")
    upgraded["latest_invoice"] = load("invoice", id="in_1RbAcmeProration", status="paid")
    stripe.on("GET", f"/v1/subscriptions/{SUB}", load("subscription"))
    stripe.on("GET", "/v1/prices/price_1RbEnterprisePlus", load("price_enterprise_plus"))
    stripe.on("POST", f"/v1/subscriptions/{SUB}", upgraded)

    # when the upgrade is executed
    result = provider.change_plan(
        subscription_id=SUB,
        new_price_id="price_1RbEnterprisePlus",
        proration_date=PREVIEW_AT,
        idempotency_key=KEY,
    )

    # then the item's price is swapped, prorations invoiced at once at the previewed date
    assert_request(
        stripe.requests_to("POST", f"/v1/subscriptions/{SUB}")[0],
        "POST",
        f"/v1/subscriptions/{SUB}",
        {
            "items[0][id]": "si_RbAcmePlan01",
            "items[0][price]": "price_1RbEnterprisePlus",
            "proration_behavior": "always_invoice",
            "proration_date": ts(PREVIEW_AT),
            "expand[0]": "latest_invoice",
        },
        idempotency_key=KEY,
    )
    assert result.direction == "upgrade"
    assert result.invoice_id == "in_1RbAcmeProration"
    # and the mirror shows the new plan and the proration invoice
    item = MirrorSubscriptionItem.objects.get(workspace=ws, stripe_id="si_RbAcmePlan01")
    assert item.price_id == "price_1RbEnterprisePlus"
    assert MirrorInvoice.objects.filter(workspace=ws, stripe_id="in_1RbAcmeProration").exists()
    sub = MirrorSubscription.objects.get(workspace=ws, stripe_id=SUB)
    assert sub.latest_invoice_id == "in_1RbAcmeProration"


def test_a_change_to_another_product_swaps_the_plan_item_not_a_larger_add_on(provider, stripe):
    # given a per-seat plan item (3 × $20) and a $300/month add-on whose product says so
    subscription = load("subscription")
    plan, addon = (
        copy.deepcopy(subscription["items"]["data"][0]),
        copy.deepcopy(subscription["items"]["data"][0]),
    )
    plan.update(id="si_Seats", quantity=3)
    plan["price"].update(id="price_Seats20", unit_amount=2000, product=load("product"))
    addon.update(id="si_Support", quantity=1)
    addon["price"].update(
        id="price_Support300",
        unit_amount=30000,
        product=load("product", id="prod_Support", metadata={"addon": "true"}),
    )
    subscription["items"]["data"] = [plan, addon]
    business = load("price_enterprise_plus", id="price_Business30", product="prod_Business")
    business["unit_amount"] = 3000
    stripe.on("GET", f"/v1/subscriptions/{SUB}", subscription)
    stripe.on("GET", "/v1/prices/price_Business30", business)
    stripe.on("POST", f"/v1/subscriptions/{SUB}", load("subscription"))

    # when the plan changes to a price of another product
    result = provider.change_plan(
        subscription_id=SUB,
        new_price_id="price_Business30",
        proration_date=PREVIEW_AT,
        idempotency_key=KEY,
    )

    # then the subscription was read with its products expanded and the seat item changed
    assert params_of(stripe.requests_to("GET", f"/v1/subscriptions/{SUB}")[0]) == {
        "expand[0]": "items.data.price.product"
    }
    sent = params_of(stripe.requests_to("POST", f"/v1/subscriptions/{SUB}")[0])
    assert (sent["items[0][id]"], sent["items[0][price]"]) == ("si_Seats", "price_Business30")
    assert "items[1][id]" not in sent
    assert result.direction == "upgrade"


def test_downgrade_is_scheduled_for_the_period_end(provider, stripe, ws):
    # given Acme downgrades from Enterprise Pro to Team
    subscription = load("subscription")
    schedule = load("subscription_schedule")
    stripe.on("GET", f"/v1/subscriptions/{SUB}", subscription)
    stripe.on("GET", "/v1/prices/price_1RbTeam", load("price_team"))
    stripe.on("POST", "/v1/subscription_schedules", schedule)
    stripe.on("POST", f"/v1/subscription_schedules/{schedule['id']}", schedule)
    stripe.on("GET", f"/v1/subscriptions/{SUB}", load("subscription", schedule=schedule["id"]))

    # when the change is executed
    result = provider.change_plan(
        subscription_id=SUB, new_price_id="price_1RbTeam", proration_date=None, idempotency_key=KEY
    )

    # then a schedule is made from the subscription, and its phases switch at period end
    period_start = subscription["items"]["data"][0]["current_period_start"]
    period_end = subscription["items"]["data"][0]["current_period_end"]
    assert_request(
        stripe.requests_to("POST", "/v1/subscription_schedules")[0],
        "POST",
        "/v1/subscription_schedules",
        {"from_subscription": SUB},
        idempotency_key=f"{KEY}:schedule",
    )
    current = {
        "phases[0][items][0][price]": "price_1RbEnterprisePro",
        "phases[0][items][0][quantity]": "50",
        "phases[0][items][1][price]": "price_1RbAdvAnalytics",
        "phases[0][items][1][quantity]": "1",
        "phases[0][items][2][price]": "price_1RbPrioritySupport",
        "phases[0][items][2][quantity]": "1",
        "phases[0][items][3][price]": "price_1RbApiExtraPack",
        "phases[0][items][3][quantity]": "1",
        "phases[0][start_date]": str(period_start),
        "phases[0][end_date]": str(period_end),
    }
    following = {
        "phases[1][items][0][price]": "price_1RbTeam",
        "phases[1][items][0][quantity]": "50",
        "phases[1][items][1][price]": "price_1RbAdvAnalytics",
        "phases[1][items][1][quantity]": "1",
        "phases[1][items][2][price]": "price_1RbPrioritySupport",
        "phases[1][items][2][quantity]": "1",
        "phases[1][items][3][price]": "price_1RbApiExtraPack",
        "phases[1][items][3][quantity]": "1",
        "phases[1][duration][interval]": "month",
        "phases[1][duration][interval_count]": "1",
    }
    assert_request(
        stripe.requests_to("POST", f"/v1/subscription_schedules/{schedule['id']}")[0],
        "POST",
        f"/v1/subscription_schedules/{schedule['id']}",
        {"end_behavior": "release", "proration_behavior": "none", **current, **following},
        idempotency_key=f"{KEY}:phases",
    )
    assert stripe.requests_to("POST", f"/v1/subscriptions/{SUB}") == []  # nothing changes now
    assert result.direction == "downgrade"
    assert result.schedule_id == schedule["id"]
    assert result.effective_date == datetime.fromtimestamp(period_end, UTC)
    assert MirrorSubscription.objects.get(workspace=ws, stripe_id=SUB).schedule_id == schedule["id"]


def test_downgrade_reuses_an_existing_schedule(provider, stripe):
    schedule = load("subscription_schedule")
    stripe.on("GET", f"/v1/subscriptions/{SUB}", load("subscription", schedule=schedule["id"]))
    stripe.on("GET", "/v1/prices/price_1RbTeam", load("price_team"))
    stripe.on("GET", f"/v1/subscription_schedules/{schedule['id']}", schedule)
    stripe.on("POST", f"/v1/subscription_schedules/{schedule['id']}", schedule)

    provider.change_plan(
        subscription_id=SUB, new_price_id="price_1RbTeam", proration_date=None, idempotency_key=KEY
    )

    assert stripe.requests_to("POST", "/v1/subscription_schedules") == []
    assert len(stripe.requests_to("POST", f"/v1/subscription_schedules/{schedule['id']}")) == 1


def test_cancel_at_period_end_records_the_reason(provider, stripe, ws):
    stripe.on("GET", f"/v1/subscriptions/{SUB}", load("subscription"))
    stripe.on("POST", f"/v1/subscriptions/{SUB}", load("subscription", cancel_at_period_end=True))

    result = provider.cancel_subscription(
        subscription_id=SUB,
        at_period_end=True,
        reason="too_expensive",
        comment="Budget cut for 2027",
        idempotency_key=KEY,
    )

    assert_request(
        stripe.calls[1],
        "POST",
        f"/v1/subscriptions/{SUB}",
        {
            "cancel_at_period_end": "true",
            "cancellation_details[feedback]": "too_expensive",
            "cancellation_details[comment]": "Budget cut for 2027",
        },
        idempotency_key=KEY,
    )
    assert result.cancel_at_period_end is True
    assert MirrorSubscription.objects.get(workspace=ws, stripe_id=SUB).cancel_at_period_end


def test_force_cancel_deletes_the_subscription_now(provider, stripe, ws):
    canceled = load("subscription", status="canceled", canceled_at=NOW, ended_at=NOW)
    stripe.on("GET", f"/v1/subscriptions/{SUB}", load("subscription"))
    stripe.on("DELETE", f"/v1/subscriptions/{SUB}", canceled)

    result = provider.cancel_subscription(
        subscription_id=SUB,
        at_period_end=False,
        reason="legal_hold",
        comment="Chargeback fraud ring",
        idempotency_key=KEY,
    )

    assert_request(
        stripe.calls[1],
        "DELETE",
        f"/v1/subscriptions/{SUB}",
        {
            "cancellation_details[feedback]": "other",
            "cancellation_details[comment]": "legal_hold: Chargeback fraud ring",
        },
        idempotency_key=KEY,
    )
    assert result.status == "canceled"
    assert MirrorSubscription.objects.get(workspace=ws, stripe_id=SUB).status == "canceled"


def test_cancel_refuses_an_already_canceled_subscription(provider, stripe):
    stripe.on("GET", f"/v1/subscriptions/{SUB}", load("subscription", status="canceled"))
    with pytest.raises(PreconditionFailed) as caught:
        provider.cancel_subscription(
            subscription_id=SUB, at_period_end=True, reason="other", comment="", idempotency_key=KEY
        )
    assert caught.value.code == "already_canceled"
    assert len(stripe.calls) == 1


def test_payment_method_update_link_is_a_portal_flow(provider, stripe):
    stripe.on("POST", "/v1/billing_portal/sessions", load("billing_portal_session"))

    link = provider.payment_method_update_link(
        customer_id=CUS,
        return_url="https://acme.zendesk.com/agent/tickets/4821",
        idempotency_key=KEY,
    )

    assert_request(
        stripe.calls[0],
        "POST",
        "/v1/billing_portal/sessions",
        {
            "customer": CUS,
            "return_url": "https://acme.zendesk.com/agent/tickets/4821",
            "flow_data[type]": "payment_method_update",
        },
        idempotency_key=KEY,
    )
    assert link.kind == "billing_portal"
    assert link.url.startswith("https://billing.stripe.com/")


def test_payment_method_update_link_refuses_a_non_url(provider, stripe):
    with pytest.raises(ValidationFailed):
        provider.payment_method_update_link(
            customer_id=CUS, return_url="javascript:alert(1)", idempotency_key=KEY
        )
    assert stripe.calls == []


def test_adjust_seats_changes_the_item_quantity_with_prorations(provider, stripe, ws):
    more = load("subscription")
    more["items"]["data"][0]["quantity"] = 55
    stripe.on("GET", f"/v1/subscriptions/{SUB}", load("subscription"))
    stripe.on("POST", f"/v1/subscriptions/{SUB}", more)

    result = provider.adjust_seats(
        subscription_id=SUB, item_id="si_RbAcmePlan01", quantity=55, idempotency_key=KEY
    )

    assert_request(
        stripe.calls[1],
        "POST",
        f"/v1/subscriptions/{SUB}",
        {
            "items[0][id]": "si_RbAcmePlan01",
            "items[0][quantity]": "55",
            "proration_behavior": "create_prorations",
        },
        idempotency_key=KEY,
    )
    assert result.quantity == 55
    assert (
        MirrorSubscriptionItem.objects.get(workspace=ws, stripe_id="si_RbAcmePlan01").quantity == 55
    )


def test_adjust_seats_refuses_an_item_of_another_subscription(provider, stripe):
    stripe.on("GET", f"/v1/subscriptions/{SUB}", load("subscription"))
    with pytest.raises(ValidationFailed) as caught:
        provider.adjust_seats(
            subscription_id=SUB, item_id="si_Other", quantity=3, idempotency_key=KEY
        )
    assert caught.value.code == "item_not_in_subscription"
    assert len(stripe.calls) == 1


@pytest.mark.parametrize("quantity", [0, -2, True])
def test_adjust_seats_refuses_a_bad_quantity(provider, stripe, quantity):
    with pytest.raises(ValidationFailed):
        provider.adjust_seats(
            subscription_id=SUB, item_id="si_RbAcmePlan01", quantity=quantity, idempotency_key=KEY
        )
    assert stripe.calls == []


def test_apply_discount_creates_a_coupon_and_sets_it_on_the_subscription(provider, stripe, ws):
    # given a subscription with no discount
    discounted = load("subscription", discounts=[load("discount")])
    stripe.on("GET", f"/v1/subscriptions/{SUB}", load("subscription", discounts=[]))
    stripe.on("POST", "/v1/coupons", load("coupon"))
    stripe.on("POST", f"/v1/subscriptions/{SUB}", discounted)

    # when 15% off for three months is applied
    result = provider.apply_discount(
        subscription_id=SUB,
        percent_off=15,
        duration="repeating",
        duration_in_months=3,
        idempotency_key=KEY,
    )

    # then a coupon is created and set as the subscription's discount, one key per step
    assert_request(
        stripe.requests_to("POST", "/v1/coupons")[0],
        "POST",
        "/v1/coupons",
        {
            "percent_off": "15.0",
            "duration": "repeating",
            "duration_in_months": "3",
            "name": "15% off (Billing Desk)",
            "metadata[billing_desk_subscription]": SUB,
        },
        idempotency_key=f"{KEY}:coupon",
    )
    assert_request(
        stripe.requests_to("POST", f"/v1/subscriptions/{SUB}")[0],
        "POST",
        f"/v1/subscriptions/{SUB}",
        {
            "discounts[0][coupon]": "BDdisc15x3",
            "expand[0]": "discounts.source.coupon",
        },
        idempotency_key=f"{KEY}:apply",
    )
    assert result.coupon_id == "BDdisc15x3"
    assert result.percent_off == 15.0
    assert result.duration_in_months == 3
    # and the mirror lists the subscription's discounts
    applied = MirrorDiscount.objects.get(workspace=ws, stripe_id="di_1RbAcmeDiscount01")
    assert applied.percent_off == 15 and applied.subscription_id == SUB and applied.active


def test_apply_discount_refuses_a_subscription_that_has_one(provider, stripe):
    # given a subscription that already carries a discount (another action's or the customer's)
    existing = load("discount", id="di_Existing01")
    stripe.on("GET", f"/v1/subscriptions/{SUB}", load("subscription", discounts=[existing]))

    # when another is asked for, it is refused before any coupon is created
    with pytest.raises(PreconditionFailed) as refused:
        provider.apply_discount(
            subscription_id=SUB,
            percent_off=10,
            duration="forever",
            duration_in_months=None,
            idempotency_key=KEY,
        )
    assert refused.value.code == "discount_exists"
    assert refused.value.details == {"discount_id": "di_Existing01"}
    assert stripe.requests_to("POST", "/v1/coupons") == []


@pytest.mark.parametrize(
    ("percent", "duration", "months"),
    [(0, "once", None), (101, "once", None), (10, "weekly", None), (10, "repeating", None)],
)
def test_apply_discount_refuses_bad_input(provider, stripe, percent, duration, months):
    with pytest.raises(ValidationFailed):
        provider.apply_discount(
            subscription_id=SUB,
            percent_off=percent,
            duration=duration,
            duration_in_months=months,
            idempotency_key=KEY,
        )
    assert stripe.calls == []


def test_grace_period_marks_the_subscription_and_moves_a_sent_invoices_due_date(
    provider, stripe, ws
):
    until = datetime.now(UTC).replace(microsecond=0) + timedelta(days=7)
    until_unix = str(int(until.timestamp()))
    graced = load("subscription", status="past_due", metadata={"grace_period_until": until_unix})
    stripe.on("GET", f"/v1/subscriptions/{SUB}", load("subscription", status="past_due"))
    stripe.on("GET", f"/v1/invoices/{INV}", load("invoice"))
    stripe.on("POST", f"/v1/subscriptions/{SUB}", graced)
    stripe.on("POST", f"/v1/invoices/{INV}", load("invoice", due_date=int(until.timestamp())))

    result = provider.extend_grace_period(
        subscription_id=SUB, invoice_id=INV, until=until, idempotency_key=KEY
    )

    assert_request(
        stripe.requests_to("POST", f"/v1/subscriptions/{SUB}")[0],
        "POST",
        f"/v1/subscriptions/{SUB}",
        {"metadata[grace_period_until]": until_unix},
        idempotency_key=f"{KEY}:subscription",
    )
    assert_request(
        stripe.requests_to("POST", f"/v1/invoices/{INV}")[0],
        "POST",
        f"/v1/invoices/{INV}",
        {"due_date": ts(until)},
        idempotency_key=f"{KEY}:invoice",
    )
    assert result.status == "past_due"
    assert MirrorSubscription.objects.get(workspace=ws, stripe_id=SUB).metadata == {
        "grace_period_until": until_unix
    }
    assert MirrorInvoice.objects.get(workspace=ws, stripe_id=INV).due_date == until


def test_grace_period_leaves_an_automatically_charged_invoice_alone(provider, stripe):
    until = datetime.now(UTC) + timedelta(days=7)
    stripe.on("GET", f"/v1/subscriptions/{SUB}", load("subscription", status="past_due"))
    stripe.on(
        "GET", f"/v1/invoices/{INV}", load("invoice", collection_method="charge_automatically")
    )
    stripe.on("POST", f"/v1/subscriptions/{SUB}", load("subscription", status="past_due"))

    provider.extend_grace_period(
        subscription_id=SUB, invoice_id=INV, until=until, idempotency_key=KEY
    )

    assert stripe.requests_to("POST", f"/v1/invoices/{INV}") == []
    assert len(stripe.requests_to("POST", f"/v1/subscriptions/{SUB}")) == 1


def test_grace_period_refuses_a_past_date(provider, stripe):
    with pytest.raises(ValidationFailed):
        provider.extend_grace_period(
            subscription_id=SUB,
            invoice_id=None,
            until=datetime.now(UTC) - timedelta(hours=1),
            idempotency_key=KEY,
        )
    assert stripe.calls == []


def test_update_tax_details_sets_the_address_and_adds_the_tax_id(provider, stripe, ws):
    # given a customer without tax ids
    address = {
        "line1": "Friedrichstraße 68",
        "city": "Berlin",
        "postal_code": "10117",
        "country": "de",
    }
    moved = load(
        "customer",
        address={**address, "country": "DE", "line2": None, "state": None},
    )
    stripe.on("GET", f"/v1/customers/{CUS}", load("customer"))
    stripe.on("POST", f"/v1/customers/{CUS}", moved)
    stripe.on("POST", f"/v1/customers/{CUS}/tax_ids", load("tax_id"))

    # when the agent records the VAT number and the Berlin address
    result = provider.update_tax_details(
        customer_id=CUS,
        tax_id=TaxIdInput(type="eu_vat", value="DE811907980"),
        address=address,
        idempotency_key=KEY,
    )

    # then the address and the tax id were sent, each with its own step key
    assert_request(
        stripe.requests_to("POST", f"/v1/customers/{CUS}")[0],
        "POST",
        f"/v1/customers/{CUS}",
        {
            "address[line1]": "Friedrichstraße 68",
            "address[city]": "Berlin",
            "address[postal_code]": "10117",
            "address[country]": "DE",
            "expand[0]": "tax_ids",
            "expand[1]": "discount.source.coupon",
        },
        idempotency_key=f"{KEY}:address",
    )
    assert_request(
        stripe.requests_to("POST", f"/v1/customers/{CUS}/tax_ids")[0],
        "POST",
        f"/v1/customers/{CUS}/tax_ids",
        {"type": "eu_vat", "value": "DE811907980"},
        idempotency_key=f"{KEY}:tax_id",
    )
    assert result.tax_ids == [
        {"id": "txi_1RbAcmeVat0001", "type": "eu_vat", "value": "DE811907980"}
    ]
    assert result.address["city"] == "Berlin"
    mirrored = MirrorCustomer.objects.get(workspace=ws, stripe_id=CUS)
    assert mirrored.tax_ids == result.tax_ids
    assert mirrored.address["country"] == "DE"


def test_update_tax_details_does_not_add_a_tax_id_twice(provider, stripe):
    customer = load("customer")
    customer["tax_ids"]["data"] = [load("tax_id")]
    stripe.on("GET", f"/v1/customers/{CUS}", customer)

    result = provider.update_tax_details(
        customer_id=CUS,
        tax_id=TaxIdInput(type="eu_vat", value="de 811907980"),
        address=None,
        idempotency_key=KEY,
    )

    assert [c.request.method for c in stripe.calls] == ["GET"]
    assert len(result.tax_ids) == 1


@pytest.mark.parametrize(
    ("tax_id", "address"),
    [
        (None, None),
        (None, {"street": "x"}),
        (None, {"country": "Germany"}),
        (TaxIdInput(type="eu_vat", value="  "), None),
    ],
)
def test_update_tax_details_refuses_bad_input(provider, stripe, tax_id, address):
    with pytest.raises(ValidationFailed):
        provider.update_tax_details(
            customer_id=CUS, tax_id=tax_id, address=address, idempotency_key=KEY
        )
    assert stripe.calls == []


def test_ping_reads_the_balance(provider, stripe):
    stripe.on("GET", "/v1/balance", load("balance"))
    assert provider.ping() is True
    assert_request(stripe.calls[0], "GET", "/v1/balance", {})


def test_ping_is_false_when_stripe_fails(provider, stripe):
    stripe.on("GET", "/v1/balance", stripe_error("api_error", "boom"), status=500)
    assert provider.ping() is False


def test_writes_require_an_idempotency_key(provider, stripe):
    with pytest.raises(ValidationFailed) as caught:
        provider.apply_credit(
            customer_id=CUS, amount=Money(100, "USD"), description="", idempotency_key=""
        )
    assert caught.value.code == "idempotency_key_required"
    assert stripe.calls == []


# --- errors: every method, every kind of Stripe failure ---------------------------------------

FUTURE = datetime(2030, 1, 1, tzinfo=UTC)


def _scenario(name, call, target, success, before=(), after=(), key=KEY):
    """``call`` fails at ``target`` (the request the error is served on); ``key`` is the
    Idempotency-Key that request must carry (None for reads)."""
    if target[0] == "GET":
        key = None
    return pytest.param(
        {
            "call": call,
            "target": target,
            "success": success,
            "before": before,
            "after": after,
            "key": key,
        },
        id=name,
    )


SCENARIOS = [
    _scenario(
        "fetch_customer_bundle",
        lambda p: p.fetch_customer_bundle(CUS),
        ("GET", f"/v1/customers/{CUS}"),
        lambda: load("customer"),
        before=(
            ("GET", "/v1/subscriptions", lambda: listing("/v1/subscriptions")),
            ("GET", "/v1/invoices", lambda: listing("/v1/invoices")),
            ("GET", "/v1/charges", lambda: listing("/v1/charges")),
            ("GET", f"/v1/customers/{CUS}/payment_methods", lambda: listing("/v1/x")),
            ("GET", f"/v1/customers/{CUS}/balance_transactions", lambda: listing("/v1/x")),
            ("GET", "/v1/products", lambda: listing("/v1/products")),
        ),
    ),
    _scenario(
        "find_customers_by_email",
        lambda p: p.find_customers_by_email("billing@acme.example"),
        ("GET", "/v1/customers"),
        lambda: listing("/v1/customers", load("customer")),
    ),
    _scenario(
        "list_objects",
        lambda p: p.list_objects("invoices", cursor=None),
        ("GET", "/v1/invoices"),
        lambda: listing("/v1/invoices"),
    ),
    _scenario(
        "retrieve_object",
        lambda p: p.retrieve_object("charge", CH),
        ("GET", f"/v1/charges/{CH}"),
        lambda: recent_charge(),
    ),
    _scenario(
        "create_payment_link",
        lambda p: p.create_payment_link(customer_id=CUS, invoice_id=None, idempotency_key=KEY),
        ("POST", "/v1/checkout/sessions"),
        lambda: load("checkout_session"),
        before=(
            ("GET", "/v1/invoices", lambda: listing("/v1/invoices")),
            ("GET", f"/v1/customers/{CUS}", lambda: load("customer")),
        ),
    ),
    _scenario(
        "resend_invoice",
        lambda p: p.resend_invoice(invoice_id=INV, idempotency_key=KEY),
        ("POST", f"/v1/invoices/{INV}/send"),
        lambda: load("invoice"),
        before=(("GET", f"/v1/invoices/{INV}", lambda: load("invoice")),),
    ),
    _scenario(
        "apply_credit",
        lambda p: p.apply_credit(
            customer_id=CUS, amount=Money(5000, "USD"), description="x", idempotency_key=KEY
        ),
        ("POST", f"/v1/customers/{CUS}/balance_transactions"),
        lambda: load("customer_balance_transaction"),
    ),
    _scenario(
        "refund",
        lambda p: p.refund(
            charge_id=CH, amount=Money(100, "USD"), reason="duplicate", idempotency_key=KEY
        ),
        ("POST", "/v1/refunds"),
        lambda: load("refund"),
        before=(("GET", f"/v1/charges/{CH}", lambda: recent_charge()),),
        after=(("GET", f"/v1/charges/{CH}", lambda: recent_charge()),),
    ),
    _scenario(
        "extend_trial",
        lambda p: p.extend_trial(subscription_id=SUB, trial_end=FUTURE, idempotency_key=KEY),
        ("POST", f"/v1/subscriptions/{SUB}"),
        lambda: trialing(),
        before=(("GET", f"/v1/subscriptions/{SUB}", lambda: trialing()),),
    ),
    _scenario(
        "pause_subscription",
        lambda p: p.pause_subscription(
            subscription_id=SUB, behavior="void", resumes_at=None, idempotency_key=KEY
        ),
        ("POST", f"/v1/subscriptions/{SUB}"),
        lambda: load("subscription"),
        before=(("GET", f"/v1/subscriptions/{SUB}", lambda: load("subscription")),),
    ),
    _scenario(
        "preview_plan_change",
        lambda p: p.preview_plan_change(
            subscription_id=SUB, new_price_id="price_1RbEnterprisePlus", at=PREVIEW_AT
        ),
        ("POST", "/v1/invoices/create_preview"),
        lambda: load("invoice_preview"),
        key=None,
        before=(
            ("GET", f"/v1/subscriptions/{SUB}", lambda: load("subscription")),
            ("GET", "/v1/prices/price_1RbEnterprisePlus", lambda: load("price_enterprise_plus")),
        ),
    ),
    _scenario(
        "change_plan",
        lambda p: p.change_plan(
            subscription_id=SUB,
            new_price_id="price_1RbEnterprisePlus",
            proration_date=PREVIEW_AT,
            idempotency_key=KEY,
        ),
        ("POST", f"/v1/subscriptions/{SUB}"),
        lambda: load("subscription"),
        before=(
            ("GET", f"/v1/subscriptions/{SUB}", lambda: load("subscription")),
            ("GET", "/v1/prices/price_1RbEnterprisePlus", lambda: load("price_enterprise_plus")),
        ),
    ),
    _scenario(
        "cancel_subscription",
        lambda p: p.cancel_subscription(
            subscription_id=SUB,
            at_period_end=False,
            reason="other",
            comment="",
            idempotency_key=KEY,
        ),
        ("DELETE", f"/v1/subscriptions/{SUB}"),
        lambda: load("subscription", status="canceled"),
        before=(("GET", f"/v1/subscriptions/{SUB}", lambda: load("subscription")),),
    ),
    _scenario(
        "payment_method_update_link",
        lambda p: p.payment_method_update_link(
            customer_id=CUS, return_url="https://acme.zendesk.com/", idempotency_key=KEY
        ),
        ("POST", "/v1/billing_portal/sessions"),
        lambda: load("billing_portal_session"),
    ),
    _scenario(
        "adjust_seats",
        lambda p: p.adjust_seats(
            subscription_id=SUB, item_id="si_RbAcmePlan01", quantity=40, idempotency_key=KEY
        ),
        ("POST", f"/v1/subscriptions/{SUB}"),
        lambda: load("subscription"),
        before=(("GET", f"/v1/subscriptions/{SUB}", lambda: load("subscription")),),
    ),
    _scenario(
        "apply_discount",
        lambda p: p.apply_discount(
            subscription_id=SUB,
            percent_off=10,
            duration="once",
            duration_in_months=None,
            idempotency_key=KEY,
        ),
        ("POST", "/v1/coupons"),
        lambda: load("coupon"),
        key=f"{KEY}:coupon",
        before=(("GET", f"/v1/subscriptions/{SUB}", lambda: load("subscription")),),
        after=(("POST", f"/v1/subscriptions/{SUB}", lambda: load("subscription")),),
    ),
    _scenario(
        "extend_grace_period",
        lambda p: p.extend_grace_period(
            subscription_id=SUB, invoice_id=None, until=FUTURE, idempotency_key=KEY
        ),
        ("POST", f"/v1/subscriptions/{SUB}"),
        lambda: load("subscription"),
        key=f"{KEY}:subscription",
        before=(("GET", f"/v1/subscriptions/{SUB}", lambda: load("subscription")),),
    ),
    _scenario(
        "update_tax_details",
        lambda p: p.update_tax_details(
            customer_id=CUS,
            tax_id=TaxIdInput(type="eu_vat", value="DE811907980"),
            address=None,
            idempotency_key=KEY,
        ),
        ("POST", f"/v1/customers/{CUS}/tax_ids"),
        lambda: load("tax_id"),
        key=f"{KEY}:tax_id",
        before=(("GET", f"/v1/customers/{CUS}", lambda: load("customer")),),
    ),
]


def _prepare(stripe, scenario, *answers):
    for method, path, body in scenario["before"]:
        stripe.on(method, path, body())
    method, path = scenario["target"]
    for answer in answers:
        stripe.on(method, path, **answer)
    for method_after, path_after, body in scenario["after"]:
        stripe.on(method_after, path_after, body())


def _target_calls(stripe, scenario):
    method, path = scenario["target"]
    return stripe.requests_to(method, path)


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_card_error_is_card_declined_with_the_decline_code(provider, stripe, scenario):
    body = stripe_error(
        "card_error",
        "Your card was declined.",
        code="card_declined",
        decline_code="insufficient_funds",
    )
    _prepare(stripe, scenario, {"body": body, "status": 402})

    with pytest.raises(ProviderError) as caught:
        scenario["call"](provider)

    assert caught.value.code == "card_declined"
    assert caught.value.decline_code == "insufficient_funds"
    assert caught.value.retryable is False
    assert len(_target_calls(stripe, scenario)) == 1  # a decline is never retried


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_invalid_request_is_mapped_with_its_status(provider, stripe, scenario):
    body = stripe_error(
        "invalid_request_error",
        "Invalid integer: abc",
        code="parameter_invalid_integer",
        param="amount",
    )
    _prepare(stripe, scenario, {"body": body, "status": 400})

    with pytest.raises(ProviderError) as caught:
        scenario["call"](provider)

    assert caught.value.code == "invalid_request"
    assert caught.value.status == 400
    assert caught.value.provider_code == "parameter_invalid_integer"
    assert len(_target_calls(stripe, scenario)) == 1


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_429_is_retried_with_the_same_idempotency_key(provider, stripe, scenario):
    # given Stripe rate-limits the first attempt, then answers
    limited = stripe_error("invalid_request_error", "Too many requests", code="rate_limit")
    _prepare(
        stripe,
        scenario,
        {"body": limited, "status": 429},
        {"body": scenario["success"]()},
    )

    # when the method runs
    scenario["call"](provider)

    # then it succeeded on the second attempt, which replayed the same request and key
    calls = _target_calls(stripe, scenario)
    assert len(calls) == 2
    assert params_of(calls[0]) == params_of(calls[1])
    first, second = (c.request.headers.get("Idempotency-Key") for c in calls)
    assert first == second
    if scenario["key"] is not None:
        assert first == scenario["key"]


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_500_after_the_bounded_retries_is_unavailable(provider, stripe, scenario):
    _prepare(
        stripe, scenario, {"body": stripe_error("api_error", "Something went wrong"), "status": 500}
    )

    with pytest.raises(ProviderUnavailable) as caught:
        scenario["call"](provider)

    assert caught.value.retryable is True
    calls = _target_calls(stripe, scenario)
    assert len(calls) == 1 + settings.STRIPE_MAX_NETWORK_RETRIES
    assert len({c.request.headers.get("Idempotency-Key") for c in calls}) == 1


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_timeout_is_retried_then_unavailable(provider, stripe, scenario):
    _prepare(stripe, scenario, {"exc": ReadTimeout("read timed out")})

    with pytest.raises(ProviderUnavailable):
        scenario["call"](provider)

    calls = _target_calls(stripe, scenario)
    assert len(calls) == 1 + settings.STRIPE_MAX_NETWORK_RETRIES
    assert all(c.request.req_kwargs["timeout"] == settings.STRIPE_TIMEOUT_SECONDS for c in calls)
    assert len({c.request.headers.get("Idempotency-Key") for c in calls}) == 1


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_malformed_body_is_unavailable(provider, stripe, scenario):
    _prepare(stripe, scenario, {"raw": "<html>502 Bad Gateway</html>", "status": 200})

    with pytest.raises(ProviderUnavailable):
        scenario["call"](provider)


# --- error mapping details -------------------------------------------------------------------


def credit(provider):
    return provider.apply_credit(
        customer_id=CUS, amount=Money(5000, "USD"), description="x", idempotency_key=KEY
    )


@pytest.mark.parametrize(
    ("status", "body", "error", "code", "http_status"),
    [
        (
            400,
            stripe_error("invalid_request_error", "No such customer"),
            ProviderError,
            "invalid_request",
            422,
        ),
        (
            404,
            stripe_error("invalid_request_error", "No such customer", code="resource_missing"),
            ProviderError,
            "invalid_request",
            404,
        ),
        (
            401,
            stripe_error("invalid_request_error", "Invalid API Key provided"),
            ProviderError,
            "provider_auth",
            502,
        ),
        (
            403,
            stripe_error("invalid_request_error", "This key lacks permission"),
            ProviderError,
            "provider_auth",
            502,
        ),
        (
            400,
            stripe_error(
                "idempotency_error",
                "Keys for idempotent requests can only be used with the same parameters",
            ),
            Conflict,
            "idempotency_conflict",
            409,
        ),
    ],
    ids=["invalid-state", "missing", "auth", "permission", "idempotency"],
)
def test_stripe_errors_map_to_ours(provider, stripe, status, body, error, code, http_status):
    stripe.on("POST", f"/v1/customers/{CUS}/balance_transactions", body, status=status)

    with pytest.raises(error) as caught:
        credit(provider)

    assert caught.value.code == code
    assert caught.value.status == http_status
    assert len(stripe.calls) == 1


def test_429_that_stripe_says_not_to_retry_is_unavailable_at_once(provider, stripe):
    stripe.on(
        "POST",
        f"/v1/customers/{CUS}/balance_transactions",
        stripe_error("invalid_request_error", "Too many requests", code="rate_limit"),
        status=429,
        headers={"Stripe-Should-Retry": "false"},
    )

    with pytest.raises(ProviderUnavailable):
        credit(provider)

    assert len(stripe.calls) == 1


def test_500_then_success_returns_the_replayed_result(provider, stripe):
    stripe.on(
        "POST",
        f"/v1/customers/{CUS}/balance_transactions",
        stripe_error("api_error", "x"),
        status=500,
    )
    stripe.on(
        "POST", f"/v1/customers/{CUS}/balance_transactions", load("customer_balance_transaction")
    )

    result = credit(provider)

    assert result.transaction_id == "cbtxn_1RbAcmeCredit0001"
    assert [c.request.headers["Idempotency-Key"] for c in stripe.calls] == [KEY, KEY]
