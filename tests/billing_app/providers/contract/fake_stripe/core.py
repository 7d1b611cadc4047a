"""The fake's state, its dispatch of requests (with Stripe's idempotency keys) and expansions
(at most four levels deep, as Stripe)."""

from __future__ import annotations

import copy
import itertools
import json
import re
from collections.abc import Callable
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from tests.billing_app.stripe_support import API

from .wire import Answer, Obj, StripeRefusal, listing, missing, nest

LIVE = {"active", "trialing", "past_due", "unpaid", "paused"}
# Stripe expands at most four levels: ``data.items.data.price.product`` is refused.
MAX_EXPAND_LEVELS = 4


class FakeCore:
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
        too_deep = [path for path in expand if len(path.split(".")) > MAX_EXPAND_LEVELS]
        if too_deep:  # as Stripe: the whole request is refused (``data`` counts as a level)
            return 400, StripeRefusal(
                400,
                "invalid_request_error",
                f"You cannot expand more than 4 levels of a property. Property: {too_deep[0]}",
                code="property_expansion_max_depth",
                param="expand",
            ).body()
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
