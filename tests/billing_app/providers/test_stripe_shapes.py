"""Every field Billing Desk reads from a Stripe object exists in Stripe's own example of it.

The fields are not listed by hand: the reads are *recorded*. Stripe's example
objects (``../shared/stripe/fixtures3.json``, Stripe's ``openapi/fixtures3.json``)
are wrapped in dicts that log each key looked up, then

* every mirror mapper (``services.mirror.MAPPERS``) and ``mirror_upsert`` itself run
  over them;
* every ``StripeProvider`` method runs with Stripe (intercepted) answering with
  them, so each field the provider reads from a response is logged;
* every webhook refresher runs over the matching event object.

Each logged path must exist in Stripe's example of that resource (following
expansions: an expandable id or an includable list is checked against the
expanded resource's own example), and where both Stripe's example and the
project's fixture (``tests/fixtures/stripe``) hold a value there, the JSON types
must agree. Fallbacks for fields older API versions had are listed with why.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from billing_app.money import Money
from billing_app.providers.base import TaxIdInput
from billing_app.providers.stripe import client as client_module
from billing_app.providers.stripe import readers
from billing_app.providers.stripe.client import StripeHttpClient
from billing_app.providers.stripe.provider import StripeProvider
from billing_app.services import mirror as mirror_module
from billing_app.services import webhooks as webhooks_module
from tests.billing_app.stripe_support import FIXTURES, StripeMock, listing, make_stripe_workspace

STRIPE_FIXTURES = Path(__file__).resolve().parents[3] / "../shared/stripe/fixtures3.json"

pytestmark = pytest.mark.skipif(
    not STRIPE_FIXTURES.exists(),
    reason=(
        f"Stripe's example objects are not at {STRIPE_FIXTURES} (a checkout without the "
        "sibling shared/ directory): shape conformance cannot be checked here."
    ),
)

# Fields read only as fallbacks for payloads of older API versions; absent in this version.
LEGACY = {
    ("charge", "invoice"): "Charge.invoice was removed in 2025-03-31.basil (now invoice.payments).",
    ("invoice", "payment_intent"): "Invoice.payment_intent was replaced by invoice.payments.",
    ("invoice", "charge"): "Invoice.charge was replaced by invoice.payments.",
    ("invoice", "tax"): "Invoice.tax was replaced by total_taxes (null in Stripe's example).",
    ("discount", "coupon"): "Discount.coupon moved to source.coupon in 2025-09-30.clover.",
    ("line_item", "price"): "Line items carry pricing.price_details in this version.",
    ("line_item", "proration"): "Line item proration moved to parent.*_details.proration.",
    ("line_item", "subscription_item"): "Moved to parent.subscription_item_details.",
}
# Present in real objects of this version but missing from Stripe's example object.
EXAMPLE_GAPS = {
    ("line_item", "pricing.price_details"): (
        "Stripe's example sets pricing.type to 'price_details' but omits the hash that type names."
    ),
    ("event", "data.previous_attributes"): "Only sent with *.updated events.",
    ("invoice_payment", "payment.payment_intent"): (
        "Stripe's example has payment.type 'payment_intent' but omits the id that type names."
    ),
    ("invoice_payment", "payment.charge"): "Present when payment.type is 'charge'.",
}
# Includable lists: absent unless expanded, each element an object of another resource.
INCLUDABLE = {("customer", "tax_ids"): "tax_id", ("invoice", "payments"): "invoice_payment"}
# Expandable references (id or null in the example) and lists of them.
EXPANDABLE = {
    ("discount", ("source", "coupon")): "coupon",
    ("customer", ("discount", "source", "coupon")): "coupon",
    ("subscription", ("discounts", "[]")): "discount",
    ("subscription", ("latest_invoice",)): "invoice",
    ("subscription", ("items", "data", "[]", "price", "product")): "product",
    ("charge", ("refunds", "data", "[]")): "refund",
    ("payment_intent", ("latest_charge",)): "charge",
}
# The project's fixture for each resource, for the type comparison.
PROJECT = {
    "customer": "customer",
    "subscription": "subscription",
    "subscription_item": None,
    "price": "price_enterprise_pro",
    "product": "product",
    "invoice": "invoice",
    "line_item": None,
    "charge": "charge",
    "refund": "refund",
    "payment_method": "payment_method",
    "customer_balance_transaction": "customer_balance_transaction",
    "coupon": "coupon",
    "discount": "discount",
    "checkout.session": "checkout_session",
    "billing_portal.session": "billing_portal_session",
    "subscription_schedule": "subscription_schedule",
    "tax_id": "tax_id",
    "balance": "balance",
    "dispute": "dispute",
    "payment_intent": "payment_intent",
}
MISSING = object()
UNVERIFIABLE = object()


def stripe_examples() -> dict[str, Any]:
    return json.loads(STRIPE_FIXTURES.read_text())["resources"]


# --- recording reads -------------------------------------------------------------------------


class Log:
    def __init__(self):
        self.paths: set[tuple[str, tuple[str, ...]]] = set()

    def record(self, resource: str, path: tuple[str, ...]) -> None:
        self.paths.add((resource, path))


def wrap(value: Any, resource: str, path: tuple[str, ...], log: Log) -> Any:
    if isinstance(value, dict) and not isinstance(value, Rec):
        if resource == "list" and path[-2:] == ("data", "[]") and value.get("object"):
            return Rec(value, str(value["object"]), (), log)  # an element of a list response
        return Rec(value, resource, path, log)
    if isinstance(value, list) and not isinstance(value, RecList):
        return RecList(value, resource, path, log)
    return value


class Rec(dict):
    """A Stripe object that logs each key read (``get``, ``[]``, ``in``)."""

    def __init__(self, data, resource, path, log):
        super().__init__(data)
        self._resource, self._path, self._log = resource, path, log

    def _read(self, key):
        self._log.record(self._resource, (*self._path, key))

    def get(self, key, default=None):
        self._read(key)
        if dict.__contains__(self, key):
            return wrap(dict.__getitem__(self, key), self._resource, (*self._path, key), self._log)
        return default

    def __getitem__(self, key):
        self._read(key)
        return wrap(dict.__getitem__(self, key), self._resource, (*self._path, key), self._log)

    def __contains__(self, key):
        self._read(key)
        return dict.__contains__(self, key)


class RecList(list):
    def __init__(self, data, resource, path, log):
        super().__init__(data)
        self._resource, self._path, self._log = resource, path, log

    def _wrap(self, value):
        return wrap(value, self._resource, (*self._path, "[]"), self._log)

    def __iter__(self):
        return (self._wrap(v) for v in list.__iter__(self))

    def __getitem__(self, index):
        value = list.__getitem__(self, index)
        if isinstance(index, slice):
            return [self._wrap(v) for v in value]
        return self._wrap(value)


# --- resolving a path in an example ----------------------------------------------------------


def resolve(examples: dict[str, Any], resource: str, path: tuple[str, ...]) -> Any:
    node: Any = examples.get(resource, MISSING)
    if node is MISSING:
        return MISSING
    for i, key in enumerate(path):
        prefix = path[:i]
        target = EXPANDABLE.get((resource, (*prefix, key)))
        if not prefix and (resource, key) in INCLUDABLE and key not in node:
            rest = path[i + 1 :]
            if rest[:2] == ("data", "[]"):
                return resolve(examples, INCLUDABLE[(resource, key)], rest[2:])
            if not rest or rest[0] in {"object", "data", "has_more", "url"}:
                return UNVERIFIABLE  # the list wrapper itself: absent unless expanded
            return MISSING
        if key == "[]":
            if not isinstance(node, list):
                return MISSING
            if not node:
                if target:
                    return resolve(examples, target, path[i + 1 :])
                return UNVERIFIABLE
            node = node[0]
            continue
        if not isinstance(node, dict):
            return UNVERIFIABLE if node is None else MISSING
        if key not in node:
            return MISSING
        node = node[key]
        if target and (node is None or isinstance(node, str)) and path[i + 1 :]:
            return resolve(examples, target, path[i + 1 :])
    return node


def json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


# --- running everything that reads Stripe objects --------------------------------------------


@pytest.fixture
def examples():
    return stripe_examples()


@pytest.fixture(autouse=True)
def _no_backoff(monkeypatch):
    monkeypatch.setattr(StripeHttpClient, "backoff_scale", 0.0)


def example(examples, name, **changes):
    """Stripe's example object, with values changed only to steer the code down its main path."""
    obj = json.loads(json.dumps(examples[name]))
    obj.update(changes)
    return obj


def run_mirror_mappers(examples, log):
    for object_type, (_model, mapper) in mirror_module.MAPPERS.items():
        mapper(wrap(examples[object_type], object_type, (), log))
    # A paid invoice with its payments included (expand[]=payments).
    paid = example(
        examples,
        "invoice",
        payments={"object": "list", "data": [examples["invoice_payment"]], "has_more": False},
    )
    mirror_module.MAPPERS["invoice"][1](wrap(paid, "invoice", (), log))


def run_mirror_upsert(examples, log, ws):
    for name in ("customer", "subscription", "invoice", "charge", "deleted_customer"):
        obj = examples[name]
        resource = "customer" if name == "deleted_customer" else name
        mirror_module.mirror_upsert(workspace=ws, obj=wrap(obj, resource, (), log))


def run_provider(examples, log, ws, stripe, monkeypatch):
    """Every provider method, with Stripe answering its own example objects."""
    plain = client_module._plain
    monkeypatch.setattr(
        client_module,
        "_plain",
        lambda obj: wrap(plain(obj), str(plain(obj).get("object")), (), log),
    )
    provider = StripeProvider(ws)
    now = int(time.time())
    sub = example(examples, "subscription", status="active", schedule=None)
    sub_id, item_id = sub["id"], sub["items"]["data"][0]["id"]
    cus = example(examples, "customer")
    cus_id = cus["id"]
    price = example(examples, "price", id="price_target", product="prod_target")
    cheaper = example(
        examples, "price", id="price_cheaper", product="prod_target", unit_amount=1000
    )
    invoice_open = example(
        examples,
        "invoice",
        status="open",
        collection_method="send_invoice",
        hosted_invoice_url="https://invoice.stripe.com/i/x",
        customer=cus_id,
    )
    invoice_open["parent"]["subscription_details"]["subscription"] = sub_id
    inv_id = invoice_open["id"]
    charge = example(
        examples, "charge", amount_captured=100, status="succeeded", created=now, customer=cus_id
    )
    ch_id = charge["id"]
    key = "shape-check"

    def answer(method, path, body):
        stripe.on(method, path, body)

    # reads
    answer("GET", f"/v1/customers/{cus_id}", cus)
    answer("GET", "/v1/subscriptions", listing("/v1/subscriptions", sub))
    answer("GET", "/v1/invoices", listing("/v1/invoices", invoice_open))
    answer("GET", "/v1/charges", listing("/v1/charges", charge))
    answer(
        "GET",
        f"/v1/customers/{cus_id}/payment_methods",
        listing("/v1/x", examples["payment_method"]),
    )
    answer(
        "GET",
        f"/v1/customers/{cus_id}/balance_transactions",
        listing("/v1/x", examples["customer_balance_transaction"]),
    )
    answer("GET", "/v1/products", listing("/v1/products", examples["product"]))
    provider.fetch_customer_bundle(cus_id)
    answer("GET", "/v1/customers", listing("/v1/customers", cus))
    provider.find_customers_by_email("jenny@example.com")
    provider.list_objects("customers", cursor=None)
    intent = example(examples, "payment_intent")
    answer("GET", f"/v1/payment_intents/{intent['id']}", intent)
    provider.retrieve_object("payment_intent", intent["id"])

    # writes, in the order their answers are registered
    answer("GET", f"/v1/invoices/{inv_id}", invoice_open)
    provider.create_payment_link(customer_id=cus_id, invoice_id=inv_id, idempotency_key=key)
    stripe.http.reset()
    answer("GET", "/v1/invoices", listing("/v1/invoices"))
    answer("GET", f"/v1/customers/{cus_id}", cus)
    answer("POST", "/v1/checkout/sessions", examples["checkout.session"])
    provider.create_payment_link(customer_id=cus_id, invoice_id=None, idempotency_key=key)
    answer("GET", f"/v1/invoices/{inv_id}", invoice_open)
    answer("POST", f"/v1/invoices/{inv_id}/send", invoice_open)
    provider.resend_invoice(invoice_id=inv_id, idempotency_key=key)
    answer(
        "POST",
        f"/v1/customers/{cus_id}/balance_transactions",
        examples["customer_balance_transaction"],
    )
    provider.apply_credit(
        customer_id=cus_id, amount=Money(500, "USD"), description="x", idempotency_key=key
    )
    answer("GET", f"/v1/charges/{ch_id}", charge)
    answer("POST", "/v1/refunds", examples["refund"])
    provider.refund(
        charge_id=ch_id, amount=Money(50, "USD"), reason="duplicate", idempotency_key=key
    )
    stripe.http.reset()
    trialing = example(examples, "subscription", status="trialing", trial_end=now + 86400)
    answer("GET", f"/v1/subscriptions/{sub_id}", trialing)
    answer("POST", f"/v1/subscriptions/{sub_id}", trialing)
    provider.extend_trial(
        subscription_id=sub_id,
        trial_end=datetime.fromtimestamp(now + 9 * 86400, UTC),
        idempotency_key=key,
    )
    stripe.http.reset()
    answer("GET", f"/v1/subscriptions/{sub_id}", sub)
    answer("POST", f"/v1/subscriptions/{sub_id}", sub)
    provider.pause_subscription(
        subscription_id=sub_id, behavior="void", resumes_at=None, idempotency_key=key
    )
    # A plan change reads the subscription with its items' products expanded (add-ons).
    stripe.http.reset()
    expanded = json.loads(json.dumps(sub))
    for item in expanded["items"]["data"]:
        item["price"]["product"] = example(examples, "product")
    answer("GET", f"/v1/subscriptions/{sub_id}", expanded)
    answer("POST", f"/v1/subscriptions/{sub_id}", sub)
    answer("GET", "/v1/prices/price_target", price)
    answer("POST", "/v1/invoices/create_preview", examples["invoice"])
    provider.preview_plan_change(subscription_id=sub_id, new_price_id="price_target")
    provider.change_plan(
        subscription_id=sub_id,
        new_price_id="price_target",
        proration_date=None,
        idempotency_key=key,
    )
    answer("GET", "/v1/prices/price_cheaper", cheaper)
    answer("POST", "/v1/subscription_schedules", examples["subscription_schedule"])
    answer(
        "POST",
        f"/v1/subscription_schedules/{examples['subscription_schedule']['id']}",
        examples["subscription_schedule"],
    )
    provider.change_plan(
        subscription_id=sub_id,
        new_price_id="price_cheaper",
        proration_date=None,
        idempotency_key=key,
    )
    provider.cancel_subscription(
        subscription_id=sub_id, at_period_end=True, reason="other", comment="", idempotency_key=key
    )
    answer("POST", "/v1/billing_portal/sessions", examples["billing_portal.session"])
    provider.payment_method_update_link(
        customer_id=cus_id, return_url="https://x.example/", idempotency_key=key
    )
    provider.adjust_seats(subscription_id=sub_id, item_id=item_id, quantity=2, idempotency_key=key)
    answer("POST", "/v1/coupons", examples["coupon"])
    provider.apply_discount(
        subscription_id=sub_id,
        percent_off=10,
        duration="once",
        duration_in_months=None,
        idempotency_key=key,
    )
    answer("GET", f"/v1/invoices/{inv_id}", invoice_open)
    answer("POST", f"/v1/invoices/{inv_id}", invoice_open)
    provider.extend_grace_period(
        subscription_id=sub_id,
        invoice_id=inv_id,
        until=datetime.fromtimestamp(now + 7 * 86400, UTC),
        idempotency_key=key,
    )
    answer("GET", f"/v1/customers/{cus_id}", cus)
    answer("POST", f"/v1/customers/{cus_id}", cus)
    answer("POST", f"/v1/customers/{cus_id}/tax_ids", examples["tax_id"])
    provider.update_tax_details(
        customer_id=cus_id,
        tax_id=TaxIdInput(type="eu_vat", value="DE123456789"),
        address={"line1": "1 Main St", "country": "DE"},
        idempotency_key=key,
    )
    answer("GET", "/v1/balance", examples["balance"])
    assert provider.ping() is True
    return provider


def run_refreshers(examples, log, provider, stripe):
    """Each webhook refresher over Stripe's example of its event's object."""
    objects = {
        "customer.subscription.updated": "subscription",
        "customer.discount.created": "discount",
        "customer.tax_id.created": "tax_id",
        "customer.updated": "customer",
        "invoice.paid": "invoice",
        "charge.dispute.created": "dispute",
        "charge.refunded": "charge",
        "payment_intent.payment_failed": "payment_intent",
        "refund.updated": "refund",
        "payment_method.attached": "payment_method",
        "product.updated": "product",
        "price.updated": "price",
    }
    rereads = {
        "subscriptions": "subscription",
        "customers": "customer",
        "invoices": "invoice",
        "charges": "charge",
        "payment_intents": "payment_intent",
        "refunds": "refund",
        "payment_methods": "payment_method",
        "products": "product",
        "prices": "price",
    }
    stripe.http.reset()
    for path, resource in rereads.items():
        stripe.on("GET", f"/v1/{path}/{examples[resource]['id']}", examples[resource])
    stripe.on("GET", "/v1/customers/cus_QXg1o8vcGmoR32", examples["customer"])
    stripe.on("GET", "/v1/charges/ch_1PgafuB7WZ01zgkWXYmPNZs8", examples["charge"])
    for event_type, resource in objects.items():
        obj = examples[resource]
        if resource == "invoice":
            obj = {**obj, "id": "in_1Pgc6tB7WZ01zgkWu9fdqL6I"}
        refresher = webhooks_module.webhook_refresher_for(event_type)
        assert refresher is not None, event_type
        refresher(provider, wrap(obj, resource, (), log))
    readers.event_object(wrap(examples["event"], "event", (), log))
    readers.event_previous_attributes(wrap(examples["event"], "event", (), log))


@pytest.fixture
def recorded(examples, make_workspace, http, monkeypatch):
    log = Log()
    ws = make_stripe_workspace(make_workspace)
    stripe = StripeMock(http)
    run_mirror_mappers(examples, log)
    run_mirror_upsert(examples, log, ws)
    provider = run_provider(examples, log, ws, stripe, monkeypatch)
    run_refreshers(examples, log, provider, stripe)
    return log.paths


def _allowed(resource: str, path: tuple[str, ...]) -> bool:
    dotted = ".".join(p for p in path if p != "[]")
    if resource == "invoice" and path[:3] == ("payments", "data", "[]"):
        resource, dotted = "invoice_payment", ".".join(p for p in path[3:] if p != "[]")
    for table in (LEGACY, EXAMPLE_GAPS):
        for (res, field), _reason in table.items():
            if res == resource and (dotted == field or dotted.startswith(field + ".")):
                return True
    return False


def test_the_recording_covers_what_billing_desk_reads(recorded):
    # A sanity check on the recorder: the fields the panel relies on were seen.
    for expected in [
        ("charge", ("amount_captured",)),
        ("charge", ("amount_refunded",)),
        ("charge", ("disputed",)),
        ("invoice", ("hosted_invoice_url",)),
        ("invoice", ("parent", "subscription_details", "subscription")),
        ("invoice", ("lines", "data", "[]", "parent", "subscription_item_details", "proration")),
        ("subscription", ("items", "data", "[]", "current_period_end")),
        ("subscription", ("items", "data", "[]", "price", "recurring", "interval")),
        ("subscription", ("items", "data", "[]", "price", "product", "metadata")),
        ("discount", ("source", "coupon")),
        ("checkout.session", ("url",)),
        ("billing_portal.session", ("url",)),
        ("subscription_schedule", ("current_phase", "start_date")),
        ("customer_balance_transaction", ("ending_balance",)),
        ("coupon", ("percent_off",)),
        ("dispute", ("charge",)),
        ("payment_intent", ("latest_charge",)),
        ("tax_id", ("owner",)),
    ]:
        assert expected in recorded, expected


def _found(examples, resource, path):
    if resolve(examples, resource, path) is not MISSING:
        return True
    # ``deleted`` is only on deleted objects, which Stripe exemplifies as ``deleted_<type>``.
    return resolve(examples, f"deleted_{resource}", path) is not MISSING


def test_every_field_read_exists_in_stripes_example(recorded, examples):
    missing = sorted(
        f"{resource}.{'.'.join(path)}"
        for resource, path in recorded
        if resource in examples
        and not _found(examples, resource, path)
        and not _allowed(resource, path)
    )
    assert missing == [], f"read but not in Stripe's example objects: {missing}"


def test_legacy_fallbacks_are_really_absent_from_this_api_version(examples):
    # If Stripe's example has one of these again, it is no longer a mere fallback.
    for (resource, field), reason in LEGACY.items():
        assert resolve(examples, resource, tuple(field.split("."))) is MISSING, reason


def test_the_project_fixtures_have_stripes_json_types(recorded, examples):
    mismatches = []
    for resource, path in sorted(recorded):
        name = PROJECT.get(resource)
        if not name:
            continue
        ours_all = {resource: json.loads((FIXTURES / f"{name}.json").read_text())}
        ours = resolve(ours_all, resource, path)
        theirs = resolve(examples, resource, path)
        if ours in (MISSING, UNVERIFIABLE) or theirs in (MISSING, UNVERIFIABLE):
            continue
        if ours is None or theirs is None:
            continue
        if json_type(ours) != json_type(theirs):
            mismatches.append(
                f"{resource}.{'.'.join(path)}: ours {json_type(ours)}, Stripe's {json_type(theirs)}"
            )
    assert mismatches == []


def test_the_project_fixtures_carry_this_versions_fields():
    # The shapes this API version introduced, present in the project's own fixtures.
    invoice = json.loads((FIXTURES / "invoice.json").read_text())
    subscription = json.loads((FIXTURES / "subscription.json").read_text())
    discount = json.loads((FIXTURES / "discount.json").read_text())
    charge = json.loads((FIXTURES / "charge.json").read_text())
    assert invoice["parent"]["subscription_details"]["subscription"] == subscription["id"]
    assert isinstance(invoice["total_taxes"], list)
    assert invoice["lines"]["data"][0]["pricing"]["price_details"]["price"]
    assert all("current_period_end" in i for i in subscription["items"]["data"])
    assert "current_period_end" not in subscription
    assert discount["source"]["coupon"]["percent_off"] == 15.0
    assert "invoice" not in charge
