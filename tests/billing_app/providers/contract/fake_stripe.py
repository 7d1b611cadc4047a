"""A small stateful Stripe on ``responses`` callbacks, for the provider contract suite.

It answers the requests ``StripeProvider`` sends with what Stripe would do to the
account it holds — objects in Stripe's shapes (the world's, built from the project's
Stripe fixtures), and Stripe's semantics for the parameters the provider chooses:

* ``proration_behavior=always_invoice`` invoices the proration at once (and charges
  the card); ``create_prorations`` leaves it pending for the next invoice; ``none``
  prorates nothing; proration is by seconds of the current period;
* a subscription schedule's next phase applies at the end of the current one, then
  the schedule releases the subscription; ``cancel_at_period_end`` ends it then;
* ``pause_collection`` is set or cleared (``""``); metadata merges;
* idempotency keys replay the first answer, and refuse other parameters;
* tax ids are validated per type; expansions are honoured where the provider asks.

``advance(to)`` is Stripe's side of a test clock: every period end up to ``to`` is
applied (schedules, cancellations, renewal invoices with the pending prorations,
charged to the card — an expired card declines), and the events Stripe would send are
queued in ``events`` for the harness to deliver as signed webhooks.
"""

from __future__ import annotations

import copy
import itertools
import json
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from dateutil.relativedelta import relativedelta

from tests.billing_app.stripe_support import API

Obj = dict[str, Any]
Answer = tuple[int, Obj]

LIVE = {"active", "trialing", "past_due", "unpaid", "paused"}
TAX_ID_PATTERNS = {
    "eu_vat": re.compile(r"^[A-Z]{2}[0-9A-Z]{8,12}$"),
    "gb_vat": re.compile(r"^GB([0-9]{9}|[0-9]{12})$"),
    "us_ein": re.compile(r"^[0-9]{2}-?[0-9]{7}$"),
}


class StripeRefusal(Exception):
    def __init__(self, status: int, type_: str, message: str, *, code: str = "", param: str = ""):
        super().__init__(message)
        self.status, self.type, self.code, self.param = status, type_, code, param

    def body(self) -> Obj:
        error: Obj = {"type": self.type, "message": str(self)}
        if self.code:
            error["code"] = self.code
        if self.param:
            error["param"] = self.param
        return {"error": error}


def missing(kind: str, object_id: str) -> StripeRefusal:
    return StripeRefusal(
        404,
        "invalid_request_error",
        f"No such {kind}: '{object_id}'",
        code="resource_missing",
        param="id",
    )


def nest(pairs: list[tuple[str, str]]) -> Obj:
    """Stripe's form encoding (``items[0][price]=…``) back into nested dicts and lists."""
    root: Obj = {}
    for key, value in pairs:
        parts = re.findall(r"[^\[\]]+", key)
        node = root
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value

    def listify(value: Any) -> Any:
        if isinstance(value, dict):
            value = {k: listify(v) for k, v in value.items()}
            if value and all(k.isdigit() for k in value):
                return [value[k] for k in sorted(value, key=int)]
        return value

    return listify(root)


def to_int(value: Any) -> int | None:
    return None if value in (None, "") else int(value)


def truthy(value: Any) -> bool:
    return str(value).lower() == "true"


def listing(url: str, objects: list[Obj], params: Obj) -> Obj:
    limit = int(params.get("limit") or 10)
    after = params.get("starting_after")
    if after:
        ids = [o["id"] for o in objects]
        objects = objects[ids.index(after) + 1 :] if after in ids else []
    return {
        "object": "list",
        "data": objects[:limit],
        "has_more": len(objects) > limit,
        "url": url,
    }


class FakeStripe:
    def __init__(self, http: Any, *, now: datetime):
        self.clock = int(now.timestamp())
        self.objects: dict[str, Obj] = {}
        self.pending: list[Obj] = []  # pending invoice items (prorations for the next invoice)
        self.events: list[Obj] = []
        self.keys: dict[str, tuple[str, Answer]] = {}
        self._ids = itertools.count(1)
        self.routes: list[tuple[str, re.Pattern[str], Callable[..., Obj]]] = []
        self._route_table()
        for method in ("GET", "POST", "DELETE"):
            http.add_callback(method, re.compile(re.escape(API) + r"/v1/.*"), callback=self._answer)

    # --- state ---------------------------------------------------------------------------------
    def load(self, objects: list[Obj]) -> None:
        for obj in objects:
            self.objects[obj["id"]] = copy.deepcopy(obj)
            if obj.get("object") == "subscription":
                for item in obj["items"]["data"]:
                    self.objects[obj["id"]]["_item_prices"] = None  # prices re-read from the store

    def of(self, kind: str) -> list[Obj]:
        return [o for o in self.objects.values() if o.get("object") == kind]

    def get(self, kind: str, object_id: str) -> Obj:
        obj = self.objects.get(object_id)
        if obj is None or obj.get("object") != kind:
            raise missing(kind, object_id)
        return obj

    def new_id(self, prefix: str) -> str:
        return f"{prefix}_Fake{next(self._ids):06d}"

    def event(self, type_: str, obj: Obj) -> None:
        self.events.append(
            {
                "id": self.new_id("evt"),
                "object": "event",
                "api_version": None,
                "created": self.clock,
                "data": {"object": copy.deepcopy(obj)},
                "livemode": False,
                "pending_webhooks": 1,
                "request": {"id": None, "idempotency_key": None},
                "type": type_,
            }
        )

    # --- dispatch ------------------------------------------------------------------------------
    def _route(self, method: str, pattern: str, handler: Callable[..., Obj]) -> None:
        self.routes.append((method, re.compile(f"^{pattern}$"), handler))

    def _answer(self, request: Any) -> tuple[int, dict[str, str], str]:
        url = urlsplit(request.url)
        pairs = parse_qsl(url.query, keep_blank_values=True)
        body = request.body
        if body:
            pairs += parse_qsl(
                body.decode() if isinstance(body, bytes) else body, keep_blank_values=True
            )
        params = nest(pairs)
        key = request.headers.get("Idempotency-Key")
        fingerprint = json.dumps([request.method, url.path, sorted(pairs)])
        if key and request.method == "POST" and key in self.keys:
            first, answer = self.keys[key]
            if first != fingerprint:
                refusal = StripeRefusal(
                    400,
                    "idempotency_error",
                    "Keys for idempotent requests can only be used with the same parameters "
                    "they were first used with.",
                )
                return refusal.status, {}, json.dumps(refusal.body())
            return answer[0], {"Idempotent-Replayed": "true"}, json.dumps(answer[1])
        answer = self._dispatch(request.method, url.path, params)
        if key and request.method == "POST" and answer[0] < 500:
            self.keys[key] = (fingerprint, answer)
        return answer[0], {}, json.dumps(answer[1])

    def _dispatch(self, method: str, path: str, params: Obj) -> Answer:
        expand = list(params.pop("expand", []) or [])
        for route_method, pattern, handler in self.routes:
            match = pattern.match(path)
            if route_method == method and match:
                try:
                    return 200, handler(params, expand, *match.groups())
                except StripeRefusal as refusal:
                    return refusal.status, refusal.body()
        return 404, StripeRefusal(
            404, "invalid_request_error", f"Unrecognized request URL ({method}: {path})"
        ).body()

    def _route_table(self) -> None:
        r = self._route
        r("GET", r"/v1/customers", self.customers_list)
        r("GET", r"/v1/customers/([^/]+)", self.customer_retrieve)
        r("POST", r"/v1/customers/([^/]+)", self.customer_update)
        r("POST", r"/v1/customers/([^/]+)/tax_ids", self.tax_id_create)
        r("GET", r"/v1/customers/([^/]+)/payment_methods", self.customer_payment_methods)
        r("GET", r"/v1/customers/([^/]+)/balance_transactions", self.balance_transactions)
        r("POST", r"/v1/customers/([^/]+)/balance_transactions", self.balance_transaction_create)
        r("GET", r"/v1/subscriptions", self.subscriptions_list)
        r("GET", r"/v1/subscriptions/([^/]+)", self.subscription_retrieve)
        r("POST", r"/v1/subscriptions/([^/]+)", self.subscription_update)
        r("DELETE", r"/v1/subscriptions/([^/]+)", self.subscription_cancel)
        r("POST", r"/v1/subscription_schedules", self.schedule_create)
        r("GET", r"/v1/subscription_schedules/([^/]+)", self.schedule_retrieve)
        r("POST", r"/v1/subscription_schedules/([^/]+)", self.schedule_update)
        r("POST", r"/v1/invoices/create_preview", self.invoice_preview)
        r("GET", r"/v1/invoices", self.invoices_list)
        r("GET", r"/v1/invoices/([^/]+)", self.invoice_retrieve)
        r("POST", r"/v1/invoices/([^/]+)/send", self.invoice_send)
        r("POST", r"/v1/invoices/([^/]+)", self.invoice_update)
        r("GET", r"/v1/charges", self.charges_list)
        r("GET", r"/v1/charges/([^/]+)", self.charge_retrieve)
        r("GET", r"/v1/payment_intents/([^/]+)", self.payment_intent_retrieve)
        r("GET", r"/v1/payment_methods/([^/]+)", self.payment_method_retrieve)
        r("GET", r"/v1/refunds", self.refunds_list)
        r("GET", r"/v1/refunds/([^/]+)", self.refund_retrieve)
        r("POST", r"/v1/refunds", self.refund_create)
        r("GET", r"/v1/products", self.products_list)
        r("GET", r"/v1/products/([^/]+)", lambda p, e, i: copy.deepcopy(self.get("product", i)))
        r("GET", r"/v1/prices", lambda p, e: listing("/v1/prices", self.of("price"), p))
        r("GET", r"/v1/prices/([^/]+)", lambda p, e, i: copy.deepcopy(self.get("price", i)))
        r("POST", r"/v1/coupons", self.coupon_create)
        r("POST", r"/v1/checkout/sessions", self.checkout_session_create)
        r("POST", r"/v1/billing_portal/sessions", self.portal_session_create)
        r(
            "GET",
            r"/v1/balance",
            lambda p, e: {"object": "balance", "available": [], "pending": [], "livemode": False},
        )

    # --- rendering (expansions) ---------------------------------------------------------------
    def render(self, obj: Obj, expand: list[str]) -> Obj:
        kind = obj.get("object")
        out = {k: copy.deepcopy(v) for k, v in obj.items() if not k.startswith("_")}
        if kind == "customer":
            if not any(e.endswith("tax_ids") for e in expand):
                out.pop("tax_ids", None)
        elif kind == "subscription":
            for item in out["items"]["data"]:
                price = copy.deepcopy(self.objects.get(item["price"]["id"], item["price"]))
                if any(e.endswith("items.data.price.product") for e in expand):
                    price["product"] = copy.deepcopy(self.objects[price["product"]])
                item["price"] = price
            if any(e.endswith("latest_invoice") for e in expand) and out.get("latest_invoice"):
                out["latest_invoice"] = self.render(self.objects[out["latest_invoice"]], [])
            out["discounts"] = [
                self.render(self.objects[d], [])
                if any(e.startswith("discounts") or ".discounts" in e for e in expand)
                else d
                for d in out.get("discounts") or []
            ]
        elif kind == "charge":
            refunds = [self.render(o, []) for o in self.of("refund") if o["charge"] == obj["id"]]
            out["refunds"] = {
                "object": "list",
                "data": refunds,
                "has_more": False,
                "total_count": len(refunds),
                "url": f"/v1/charges/{obj['id']}/refunds",
            }
        return out

    # --- customers ----------------------------------------------------------------------------
    def customers_list(self, params: Obj, expand: list[str]) -> Obj:
        found = [
            self.render(c, expand)
            for c in self.of("customer")
            if not params.get("email") or c.get("email") == params["email"]
        ]
        return listing("/v1/customers", found, params)

    def customer_retrieve(self, params: Obj, expand: list[str], customer_id: str) -> Obj:
        return self.render(self.get("customer", customer_id), expand)

    def customer_update(self, params: Obj, expand: list[str], customer_id: str) -> Obj:
        customer = self.get("customer", customer_id)
        if "address" in params:
            customer["address"] = {**(customer.get("address") or {}), **params["address"]}
        self.event("customer.updated", self.render(customer, ["tax_ids"]))
        return self.render(customer, expand)

    def tax_id_create(self, params: Obj, expand: list[str], customer_id: str) -> Obj:
        customer = self.get("customer", customer_id)
        tax_type, value = params.get("type", ""), params.get("value", "")
        pattern = TAX_ID_PATTERNS.get(tax_type)
        if pattern is None or not pattern.match(value.replace(" ", "").upper()):
            raise StripeRefusal(
                400,
                "invalid_request_error",
                f"Invalid value for {tax_type}.",
                code="tax_id_invalid",
                param="value",
            )
        tax_id = {
            "id": self.new_id("txi"),
            "object": "tax_id",
            "country": value[:2].upper(),
            "created": self.clock,
            "customer": customer_id,
            "livemode": False,
            "owner": {"customer": customer_id, "type": "customer"},
            "type": tax_type,
            "value": value,
            "verification": {"status": "pending", "verified_address": None, "verified_name": None},
        }
        customer["tax_ids"]["data"].append(tax_id)
        return tax_id

    def customer_payment_methods(self, params: Obj, expand: list[str], customer_id: str) -> Obj:
        found = [
            copy.deepcopy(p) for p in self.of("payment_method") if p["customer"] == customer_id
        ]
        return listing(f"/v1/customers/{customer_id}/payment_methods", found, params)

    def balance_transactions(self, params: Obj, expand: list[str], customer_id: str) -> Obj:
        found = [
            copy.deepcopy(t)
            for t in reversed(self.of("customer_balance_transaction"))
            if t["customer"] == customer_id
        ]
        return listing(f"/v1/customers/{customer_id}/balance_transactions", found, params)

    def balance_transaction_create(self, params: Obj, expand: list[str], customer_id: str) -> Obj:
        customer = self.get("customer", customer_id)
        amount = int(params["amount"])
        if params.get("currency", "").lower() != customer.get("currency"):
            raise StripeRefusal(
                400, "invalid_request_error", "Currency mismatch.", param="currency"
            )
        customer["balance"] = int(customer.get("balance") or 0) + amount
        txn = {
            "id": self.new_id("cbtxn"),
            "object": "customer_balance_transaction",
            "amount": amount,
            "checkout_session": None,
            "created": self.clock,
            "credit_note": None,
            "currency": customer["currency"],
            "customer": customer_id,
            "customer_account": None,
            "description": params.get("description"),
            "ending_balance": customer["balance"],
            "invoice": None,
            "livemode": False,
            "metadata": params.get("metadata") or {},
            "type": "adjustment",
        }
        self.objects[txn["id"]] = txn
        return copy.deepcopy(txn)

    # --- subscriptions ------------------------------------------------------------------------
    def subscriptions_list(self, params: Obj, expand: list[str]) -> Obj:
        found = [
            self.render(s, expand)
            for s in self.of("subscription")
            if (not params.get("customer") or s["customer"] == params["customer"])
            and (params.get("status") == "all" or s["status"] != "canceled")
        ]
        return listing("/v1/subscriptions", found, params)

    def subscription_retrieve(self, params: Obj, expand: list[str], sub_id: str) -> Obj:
        return self.render(self.get("subscription", sub_id), expand)

    def _period(self, sub: Obj) -> tuple[int, int]:
        item = sub["items"]["data"][0]
        return int(item["current_period_start"]), int(item["current_period_end"])

    def _prorate(self, amount: int, sub: Obj, at: int) -> int:
        start, end = self._period(sub)
        fraction = Decimal(max(min(end - at, end - start), 0)) / Decimal(end - start)
        return int((Decimal(amount) * fraction).quantize(Decimal(1), rounding=ROUND_HALF_EVEN))

    def _proration_lines(self, sub: Obj, changes: list[Obj], at: int) -> list[Obj]:
        """Credit the unused time of each changed item, charge the remaining time of its new state."""
        lines = []
        start, end = self._period(sub)
        for change in changes:
            item = next((i for i in sub["items"]["data"] if i["id"] == change.get("id")), None)
            if item is None:
                raise StripeRefusal(400, "invalid_request_error", "No such item.", param="items")
            old_price = self.objects[item["price"]["id"]]
            new_price = self.get("price", change.get("price") or old_price["id"])
            old_qty = int(item["quantity"])
            new_qty = int(change.get("quantity") or old_qty)
            for price, qty, sign, text in (
                (old_price, old_qty, -1, "Unused time on"),
                (new_price, new_qty, 1, "Remaining time on"),
            ):
                amount = sign * self._prorate(int(price["unit_amount"]) * qty, sub, at)
                lines.append(
                    self._line(
                        sub,
                        item["id"],
                        price,
                        qty,
                        amount,
                        f"{text} {qty} × {price['id']}",
                        at,
                        end,
                        proration=True,
                    )
                )
        return lines

    def _line(
        self,
        sub: Obj,
        item_id: str,
        price: Obj,
        qty: int,
        amount: int,
        text: str,
        start: int,
        end: int,
        *,
        proration: bool,
    ) -> Obj:
        return {
            "id": self.new_id("il"),
            "object": "line_item",
            "amount": amount,
            "currency": price["currency"],
            "description": text,
            "discount_amounts": [],
            "discountable": not proration,
            "discounts": [],
            "invoice": None,
            "livemode": False,
            "metadata": {},
            "parent": {
                "invoice_item_details": None,
                "subscription_item_details": {
                    "invoice_item": None,
                    "proration": proration,
                    "proration_details": {"credited_items": None},
                    "subscription": sub["id"],
                    "subscription_item": item_id,
                },
                "type": "subscription_item_details",
            },
            "period": {"end": end, "start": start},
            "pretax_credit_amounts": [],
            "pricing": {
                "price_details": {"price": price["id"], "product": price["product"]},
                "type": "price_details",
                "unit_amount_decimal": str(price["unit_amount"]),
            },
            "quantity": qty,
            "subtotal": amount,
            "taxes": [],
        }

    def _apply_items(self, sub: Obj, changes: list[Obj]) -> None:
        for change in changes:
            for item in sub["items"]["data"]:
                if item["id"] == change.get("id"):
                    if change.get("price"):
                        item["price"] = copy.deepcopy(self.get("price", change["price"]))
                    if change.get("quantity"):
                        item["quantity"] = int(change["quantity"])

    def subscription_update(self, params: Obj, expand: list[str], sub_id: str) -> Obj:
        sub = self.get("subscription", sub_id)
        if sub["status"] in {"canceled", "incomplete_expired"}:
            raise StripeRefusal(400, "invalid_request_error", "This subscription is canceled.")
        if "metadata" in params:
            merged = {**(sub.get("metadata") or {}), **params["metadata"]}
            sub["metadata"] = {k: v for k, v in merged.items() if v != ""}
        if "trial_end" in params:
            sub["trial_end"] = to_int(params["trial_end"])
        if "pause_collection" in params:
            pause = params["pause_collection"]
            sub["pause_collection"] = (
                None
                if pause == ""
                else {"behavior": pause["behavior"], "resumes_at": to_int(pause.get("resumes_at"))}
            )
        if "cancel_at_period_end" in params:
            canceling = truthy(params["cancel_at_period_end"])
            sub["cancel_at_period_end"] = canceling
            sub["cancel_at"] = self._period(sub)[1] if canceling else None
            sub["canceled_at"] = self.clock if canceling else None
        if "cancellation_details" in params:
            sub["cancellation_details"] = {
                **sub["cancellation_details"],
                **params["cancellation_details"],
            }
        if "discounts" in params:
            sub["discounts"] = [self._discount(sub, entry) for entry in params["discounts"]]
        if "items" in params:
            behavior = params.get("proration_behavior", "create_prorations")
            at = to_int(params.get("proration_date")) or self.clock
            lines = self._proration_lines(sub, params["items"], at) if behavior != "none" else []
            self._apply_items(sub, params["items"])
            if behavior == "always_invoice":
                invoice = self._invoice(sub, lines, billing_reason="subscription_update")
                sub["latest_invoice"] = invoice["id"]
            elif behavior == "create_prorations":
                self.pending.extend(lines)
        self.event("customer.subscription.updated", self.render(sub, []))
        return self.render(sub, expand)

    def _discount(self, sub: Obj, entry: Obj) -> str:
        if entry.get("discount"):
            return entry["discount"]
        coupon = self.get("coupon", entry["coupon"])
        discount = {
            "id": self.new_id("di"),
            "object": "discount",
            "checkout_session": None,
            "customer": sub["customer"],
            "end": None,
            "invoice": None,
            "invoice_item": None,
            "promotion_code": None,
            "source": {"coupon": copy.deepcopy(coupon), "type": "coupon"},
            "start": self.clock,
            "subscription": sub["id"],
            "subscription_item": None,
        }
        self.objects[discount["id"]] = discount
        return discount["id"]

    def subscription_cancel(self, params: Obj, expand: list[str], sub_id: str) -> Obj:
        sub = self.get("subscription", sub_id)
        if sub["status"] == "canceled":
            raise StripeRefusal(400, "invalid_request_error", "Already canceled.")
        sub.update(
            status="canceled",
            canceled_at=self.clock,
            ended_at=self.clock,
            cancel_at_period_end=False,
        )
        if "cancellation_details" in params:
            sub["cancellation_details"] = {
                **sub["cancellation_details"],
                **params["cancellation_details"],
            }
        self.event("customer.subscription.deleted", self.render(sub, []))
        return self.render(sub, expand)

    # --- schedules ----------------------------------------------------------------------------
    def schedule_create(self, params: Obj, expand: list[str]) -> Obj:
        sub = self.get("subscription", params["from_subscription"])
        start, end = self._period(sub)
        schedule = {
            "id": self.new_id("sub_sched"),
            "object": "subscription_schedule",
            "canceled_at": None,
            "completed_at": None,
            "created": self.clock,
            "current_phase": {"end_date": end, "start_date": start},
            "customer": sub["customer"],
            "end_behavior": "release",
            "livemode": False,
            "metadata": {},
            "phases": [
                {
                    "start_date": start,
                    "end_date": end,
                    "items": [
                        {"price": i["price"]["id"], "quantity": i["quantity"]}
                        for i in sub["items"]["data"]
                    ],
                }
            ],
            "released_at": None,
            "released_subscription": None,
            "status": "active",
            "subscription": sub["id"],
            "test_clock": None,
        }
        self.objects[schedule["id"]] = schedule
        sub["schedule"] = schedule["id"]
        return copy.deepcopy(schedule)

    def schedule_retrieve(self, params: Obj, expand: list[str], schedule_id: str) -> Obj:
        return copy.deepcopy(self.get("subscription_schedule", schedule_id))

    def schedule_update(self, params: Obj, expand: list[str], schedule_id: str) -> Obj:
        schedule = self.get("subscription_schedule", schedule_id)
        if "metadata" in params:
            schedule["metadata"] = {**schedule["metadata"], **params["metadata"]}
        if "end_behavior" in params:
            schedule["end_behavior"] = params["end_behavior"]
        if "phases" in params:
            phases = []
            for phase in params["phases"]:
                phases.append(
                    {
                        "start_date": to_int(phase.get("start_date")),
                        "end_date": to_int(phase.get("end_date")),
                        "items": [
                            {"price": i["price"], "quantity": int(i.get("quantity") or 1)}
                            for i in phase["items"]
                        ],
                    }
                )
            schedule["phases"] = phases
        return copy.deepcopy(schedule)

    # --- invoices -----------------------------------------------------------------------------
    def invoices_list(self, params: Obj, expand: list[str]) -> Obj:
        found = [
            self.render(i, expand)
            for i in sorted(self.of("invoice"), key=lambda i: -int(i["created"]))
            if (not params.get("customer") or i["customer"] == params["customer"])
            and (not params.get("status") or i["status"] == params["status"])
        ]
        return listing("/v1/invoices", found, params)

    def invoice_retrieve(self, params: Obj, expand: list[str], invoice_id: str) -> Obj:
        return self.render(self.get("invoice", invoice_id), expand)

    def invoice_send(self, params: Obj, expand: list[str], invoice_id: str) -> Obj:
        invoice = self.get("invoice", invoice_id)
        if invoice["status"] != "open" or invoice["collection_method"] != "send_invoice":
            raise StripeRefusal(
                400, "invalid_request_error", "Only open send_invoice invoices can be sent."
            )
        return self.render(invoice, expand)

    def invoice_update(self, params: Obj, expand: list[str], invoice_id: str) -> Obj:
        invoice = self.get("invoice", invoice_id)
        if "due_date" in params:
            invoice["due_date"] = to_int(params["due_date"])
        return self.render(invoice, expand)

    def invoice_preview(self, params: Obj, expand: list[str]) -> Obj:
        sub = copy.deepcopy(self.get("subscription", params["subscription"]))
        details = params.get("subscription_details") or {}
        at = to_int(details.get("proration_date")) or self.clock
        lines = self._proration_lines(sub, details.get("items") or [], at)
        return self._invoice_shape(sub, lines, invoice_id="upcoming_in", billing_reason="upcoming")

    def _invoice_shape(
        self, sub: Obj, lines: list[Obj], *, invoice_id: str, billing_reason: str
    ) -> Obj:
        total = sum(int(line["amount"]) for line in lines)
        for line in lines:
            line["invoice"] = invoice_id
        return {
            "id": invoice_id,
            "object": "invoice",
            "amount_due": max(total, 0),
            "amount_paid": 0,
            "amount_remaining": max(total, 0),
            "attempt_count": 0,
            "billing_reason": billing_reason,
            "collection_method": sub["collection_method"],
            "created": self.clock,
            "currency": sub["currency"],
            "customer": sub["customer"],
            "discounts": [],
            "due_date": None,
            "ending_balance": 0,
            "hosted_invoice_url": f"https://invoice.stripe.com/i/acct_test/{invoice_id}",
            "invoice_pdf": f"https://pay.stripe.com/invoice/{invoice_id}/pdf",
            "lines": {
                "object": "list",
                "data": lines,
                "has_more": False,
                "total_count": len(lines),
                "url": f"/v1/invoices/{invoice_id}/lines",
            },
            "livemode": False,
            "metadata": {},
            "next_payment_attempt": None,
            "number": None,
            "parent": {
                "quote_details": None,
                "subscription_details": {"metadata": {}, "subscription": sub["id"]},
                "type": "subscription_details",
            },
            "payments": {
                "object": "list",
                "data": [],
                "has_more": False,
                "total_count": 0,
                "url": f"/v1/invoices/{invoice_id}/payments",
            },
            "period_end": self.clock,
            "period_start": self.clock,
            "starting_balance": 0,
            "status": "draft",
            "status_transitions": {
                "finalized_at": None,
                "marked_uncollectible_at": None,
                "paid_at": None,
                "voided_at": None,
            },
            "subtotal": total,
            "total": total,
            "total_discount_amounts": [],
            "total_taxes": [],
        }

    def _invoice(self, sub: Obj, lines: list[Obj], *, billing_reason: str) -> Obj:
        """Finalize an invoice of ``lines`` and collect it as Stripe does (balance, then card)."""
        invoice = self._invoice_shape(
            sub, lines, invoice_id=self.new_id("in"), billing_reason=billing_reason
        )
        customer = self.objects[sub["customer"]]
        discounted = invoice["total"]
        for discount_id in sub.get("discounts") or []:
            coupon = self.objects[discount_id]["source"]["coupon"]
            cut = int(
                (Decimal(discounted) * Decimal(str(coupon["percent_off"] or 0)) / 100).quantize(
                    Decimal(1)
                )
            )
            invoice["total_discount_amounts"].append({"amount": cut, "discount": discount_id})
            discounted -= cut
        invoice["total"] = discounted
        balance = int(customer.get("balance") or 0)
        applied = max(balance, -discounted) if balance < 0 else 0
        invoice.update(starting_balance=balance, ending_balance=balance - applied)
        customer["balance"] = balance - applied
        due = max(discounted + applied, 0)
        invoice.update(
            amount_due=due, amount_remaining=due, status="open", number=invoice["id"][-6:]
        )
        invoice["status_transitions"]["finalized_at"] = self.clock
        self.objects[invoice["id"]] = invoice
        if due == 0:
            invoice.update(status="paid", amount_remaining=0)
            invoice["status_transitions"]["paid_at"] = self.clock
        elif sub["collection_method"] == "charge_automatically":
            self._collect(invoice, sub)
        self.event("invoice.finalized", invoice)
        return invoice

    def _collect(self, invoice: Obj, sub: Obj) -> None:
        customer = self.objects[invoice["customer"]]
        pm_id = (
            sub.get("default_payment_method")
            or customer["invoice_settings"]["default_payment_method"]
        )
        pm = self.objects.get(pm_id or "")
        at = datetime.fromtimestamp(self.clock, tz=UTC)
        expired = pm is None or (int(pm["card"]["exp_year"]), int(pm["card"]["exp_month"])) < (
            at.year,
            at.month,
        )
        charge_id = self.new_id("ch")
        intent = f"pi_{charge_id[3:]}"
        charge = {
            "id": charge_id,
            "object": "charge",
            "amount": invoice["amount_due"],
            "amount_captured": 0 if expired else invoice["amount_due"],
            "amount_refunded": 0,
            "captured": not expired,
            "created": self.clock,
            "currency": invoice["currency"],
            "customer": invoice["customer"],
            "description": "Subscription update",
            "disputed": False,
            "failure_code": "expired_card" if expired else None,
            "failure_message": "Your card has expired." if expired else None,
            "livemode": False,
            "metadata": {},
            "outcome": {
                "network_status": "declined_by_network" if expired else "approved_by_network",
                "reason": "expired_card" if expired else None,
                "risk_level": "normal",
                "seller_message": "The bank returned the decline code `expired_card`."
                if expired
                else "Payment complete.",
                "type": "issuer_declined" if expired else "authorized",
            },
            "paid": not expired,
            "payment_intent": intent,
            "payment_method": pm_id,
            "payment_method_details": {
                "card": {**(pm or {}).get("card", {}), "network": "visa"},
                "type": "card",
            },
            "refunded": False,
            "status": "failed" if expired else "succeeded",
        }
        self.objects[charge_id] = charge
        invoice["attempt_count"] = int(invoice.get("attempt_count") or 0) + 1
        invoice["payments"]["data"].append(
            {
                "id": self.new_id("inpay"),
                "object": "invoice_payment",
                "amount_paid": None if expired else invoice["amount_due"],
                "amount_requested": invoice["amount_due"],
                "created": self.clock,
                "currency": invoice["currency"],
                "invoice": invoice["id"],
                "is_default": True,
                "livemode": False,
                "payment": {"payment_intent": intent, "type": "payment_intent"},
                "status": "open" if expired else "paid",
                "status_transitions": {
                    "canceled_at": None,
                    "paid_at": None if expired else self.clock,
                },
            }
        )
        if expired:
            invoice["next_payment_attempt"] = self.clock + 3 * 86_400
            sub["status"] = "past_due"
            customer["delinquent"] = True
            self.event("charge.failed", self.render(charge, []))
            self.event("invoice.payment_failed", self.render(invoice, []))
        else:
            invoice.update(status="paid", amount_paid=invoice["amount_due"], amount_remaining=0)
            invoice["status_transitions"]["paid_at"] = self.clock
            self.event("charge.succeeded", self.render(charge, []))
            self.event("invoice.paid", self.render(invoice, []))

    # --- payments -----------------------------------------------------------------------------
    def charges_list(self, params: Obj, expand: list[str]) -> Obj:
        found = [
            self.render(c, expand)
            for c in sorted(self.of("charge"), key=lambda c: -int(c["created"]))
            if not params.get("customer") or c["customer"] == params["customer"]
        ]
        return listing("/v1/charges", found, params)

    def charge_retrieve(self, params: Obj, expand: list[str], charge_id: str) -> Obj:
        return self.render(self.get("charge", charge_id), expand)

    def payment_intent_retrieve(self, params: Obj, expand: list[str], intent_id: str) -> Obj:
        charge = next((c for c in self.of("charge") if c.get("payment_intent") == intent_id), None)
        if charge is None:
            raise missing("payment_intent", intent_id)
        failed = charge["status"] == "failed"
        return {
            "id": intent_id,
            "object": "payment_intent",
            "amount": charge["amount"],
            "amount_received": 0 if failed else charge["amount"],
            "created": charge["created"],
            "currency": charge["currency"],
            "customer": charge["customer"],
            "last_payment_error": {
                "code": charge["failure_code"],
                "decline_code": charge["outcome"]["reason"],
                "message": charge["failure_message"],
                "type": "card_error",
            }
            if failed
            else None,
            "latest_charge": self.render(charge, []) if "latest_charge" in expand else charge["id"],
            "livemode": False,
            "metadata": {},
            "payment_method": charge["payment_method"],
            "status": "requires_payment_method" if failed else "succeeded",
        }

    def payment_method_retrieve(self, params: Obj, expand: list[str], pm_id: str) -> Obj:
        return copy.deepcopy(self.get("payment_method", pm_id))

    def refunds_list(self, params: Obj, expand: list[str]) -> Obj:
        found = [
            copy.deepcopy(r)
            for r in reversed(self.of("refund"))
            if not params.get("charge") or r["charge"] == params["charge"]
        ]
        return listing("/v1/refunds", found, params)

    def refund_retrieve(self, params: Obj, expand: list[str], refund_id: str) -> Obj:
        return copy.deepcopy(self.get("refund", refund_id))

    def refund_create(self, params: Obj, expand: list[str]) -> Obj:
        charge = self.get("charge", params["charge"])
        amount = int(params.get("amount") or charge["amount_captured"] - charge["amount_refunded"])
        if charge["status"] != "succeeded":
            raise StripeRefusal(
                400,
                "invalid_request_error",
                "Charge was not successful.",
                code="charge_not_refundable",
            )
        if amount > charge["amount_captured"] - charge["amount_refunded"]:
            raise StripeRefusal(
                400,
                "invalid_request_error",
                "Refund exceeds the charge.",
                code="amount_too_large",
                param="amount",
            )
        charge["amount_refunded"] += amount
        charge["refunded"] = charge["amount_refunded"] >= charge["amount_captured"]
        refund = {
            "id": self.new_id("re"),
            "object": "refund",
            "amount": amount,
            "balance_transaction": None,
            "charge": charge["id"],
            "created": self.clock,
            "currency": charge["currency"],
            "destination_details": None,
            "metadata": params.get("metadata") or {},
            "payment_intent": charge["payment_intent"],
            "payment_method": charge["payment_method"],
            "reason": params.get("reason"),
            "receipt_number": None,
            "source_transfer_reversal": None,
            "status": "succeeded",
            "transfer_reversal": None,
        }
        self.objects[refund["id"]] = refund
        self.event("charge.refunded", self.render(charge, []))
        return copy.deepcopy(refund)

    # --- catalog and hosted pages -------------------------------------------------------------
    def products_list(self, params: Obj, expand: list[str]) -> Obj:
        ids = params.get("ids") or []
        found = [copy.deepcopy(p) for p in self.of("product") if not ids or p["id"] in ids]
        return listing("/v1/products", found, params)

    def coupon_create(self, params: Obj, expand: list[str]) -> Obj:
        coupon = {
            "id": self.new_id("co"),
            "object": "coupon",
            "amount_off": None,
            "created": self.clock,
            "currency": None,
            "duration": params["duration"],
            "duration_in_months": to_int(params.get("duration_in_months")),
            "livemode": False,
            "max_redemptions": None,
            "metadata": params.get("metadata") or {},
            "name": params.get("name"),
            "percent_off": float(params["percent_off"]),
            "redeem_by": None,
            "times_redeemed": 0,
            "valid": True,
        }
        self.objects[coupon["id"]] = coupon
        return copy.deepcopy(coupon)

    def checkout_session_create(self, params: Obj, expand: list[str]) -> Obj:
        session_id = self.new_id("cs_test")
        return {
            "id": session_id,
            "object": "checkout.session",
            "customer": params.get("customer"),
            "currency": params.get("currency"),
            "expires_at": self.clock + 86_400,
            "livemode": False,
            "metadata": params.get("metadata") or {},
            "mode": params.get("mode"),
            "status": "open",
            "url": f"https://checkout.stripe.com/c/pay/{session_id}",
        }

    def portal_session_create(self, params: Obj, expand: list[str]) -> Obj:
        session_id = self.new_id("bps")
        return {
            "id": session_id,
            "object": "billing_portal.session",
            "created": self.clock,
            "customer": params.get("customer"),
            "flow": {"type": (params.get("flow_data") or {}).get("type")},
            "livemode": False,
            "return_url": params.get("return_url"),
            "url": f"https://billing.stripe.com/p/session/{session_id}",
        }

    # --- the test clock -----------------------------------------------------------------------
    def advance(self, to: datetime) -> None:
        """Apply every period end up to ``to``, as Stripe does while a test clock advances."""
        target = int(to.timestamp())
        for sub in sorted(self.of("subscription"), key=lambda s: s["id"]):
            while sub["status"] in LIVE and self._period(sub)[1] <= target:
                self._period_end(sub)
        self.clock = target

    def _period_end(self, sub: Obj) -> None:
        start, boundary = self._period(sub)
        self.clock = boundary
        if sub.get("cancel_at_period_end"):
            sub.update(status="canceled", ended_at=boundary, cancel_at_period_end=False)
            self.event("customer.subscription.deleted", self.render(sub, []))
            return
        schedule = self.objects.get(sub.get("schedule") or "")
        if (
            schedule
            and len(schedule["phases"]) > 1
            and (schedule["phases"][0]["end_date"] or 0) <= boundary
        ):
            for item, planned in zip(
                sub["items"]["data"], schedule["phases"][1]["items"], strict=False
            ):
                item["price"] = copy.deepcopy(self.get("price", planned["price"]))
                item["quantity"] = planned["quantity"]
            schedule.update(
                status="released", released_at=boundary, released_subscription=sub["id"]
            )
            sub["schedule"] = None
        if sub["status"] == "trialing":
            sub["status"] = "active"
        price = self.objects[sub["items"]["data"][0]["price"]["id"]]
        interval = (price.get("recurring") or {}).get("interval", "month")
        step = relativedelta(years=1) if interval == "year" else relativedelta(months=1)
        new_end = int((datetime.fromtimestamp(boundary, tz=UTC) + step).timestamp())
        for item in sub["items"]["data"]:
            item["current_period_start"], item["current_period_end"] = boundary, new_end
        lines = [
            self._line(
                sub,
                item["id"],
                item["price"],
                int(item["quantity"]),
                int(item["price"]["unit_amount"]) * int(item["quantity"]),
                f"{item['quantity']} × {item['price']['id']}",
                boundary,
                new_end,
                proration=False,
            )
            for item in sub["items"]["data"]
        ]
        pending = [
            line
            for line in self.pending
            if line["parent"]["subscription_item_details"]["subscription"] == sub["id"]
        ]
        self.pending = [line for line in self.pending if line not in pending]
        invoice = self._invoice(sub, lines + pending, billing_reason="subscription_cycle")
        sub["latest_invoice"] = invoice["id"]
        self.event("customer.subscription.updated", self.render(sub, []))

    def time(self) -> datetime:
        return datetime.fromtimestamp(self.clock, tz=UTC) + timedelta(0)
