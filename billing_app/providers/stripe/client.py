"""The thin client between Billing Desk and one workspace's Stripe account.

One function per remote call (STYLE.md 3): each takes plain parameters, sends
them through stripe-python's ``StripeClient`` and returns the object Stripe
answered as a plain ``dict`` in Stripe's JSON shape. Stripe's exceptions never
leave it: ``transport.stripe_errors`` turns them into ours. How requests are sent,
retried, and classified as refused / never sent / outcome unknown is
``transport``'s (its names are importable from here too).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote_plus

from stripe import StripeClient

from .transport import (
    NEVER_SENT,
    OUTCOME_UNKNOWN,
    StripeHttpClient,
    _call_clock,
    stripe_call_started,
    stripe_client_build,
    stripe_client_get,
    stripe_error_translate,
    stripe_errors,
    transport_error_kind,
)

Obj = dict[str, Any]


def _plain(obj: Any) -> Obj:
    """A stripe-python object as the JSON dict Stripe sent."""
    if hasattr(obj, "to_dict"):
        return obj.to_dict(recursive=True, for_json=True)
    return dict(obj)


def _id(object_id: str) -> str:
    """An id in a URL path, escaped as stripe-python does (``sanitize_id``)."""
    return quote_plus(object_id)


def _options(idempotency_key: str | None) -> dict[str, Any]:
    return {"idempotency_key": idempotency_key} if idempotency_key else {}


class StripeApi:
    """One workspace's Stripe account. Reads take no key; every write takes an idempotency key."""

    def __init__(self, client: StripeClient):
        self.client = client
        self.v1 = client.v1

    def _call(
        self,
        operation: str,
        fn: Callable[..., Any],
        *args: Any,
        _write: bool = False,
        **kwargs: Any,
    ) -> Obj:
        # Taken before sending: the mirror orders what a request returned by when it was sent.
        _call_clock.started = datetime.now(tz=UTC)
        with stripe_errors(operation, write=_write):
            return _plain(fn(*args, **kwargs))

    def _read(self, operation: str, path: str, params: dict[str, Any] | None = None) -> Obj:
        """A GET answered as the JSON Stripe sent: the same request (parameters, version,
        key, timeout), retries and errors as the typed services, without stripe-python's
        object tree — building it and turning it back into a dict cost ~45 ms of CPU for a
        page of 12 invoices and one of 12 charges, on the panel's first answer."""
        _call_clock.started = datetime.now(tz=UTC)
        with stripe_errors(operation):
            response = self.client.raw_request("get", path, **(params or {}))
        return json.loads(response.body)

    def _write(self, operation: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Obj:
        """A call that may change Stripe: its failures are classified refused / never sent / unknown."""
        return self._call(operation, fn, *args, _write=True, **kwargs)

    # --- customers ---
    def customer_retrieve(self, customer_id: str, *, expand: list[str] | None = None) -> Obj:
        params = {"expand": expand} if expand else {}
        return self._read("customer_retrieve", f"/v1/customers/{_id(customer_id)}", params)

    def customers_list(self, params: dict[str, Any]) -> Obj:
        return self._read("customers_list", "/v1/customers", params)

    def customer_update(self, customer_id: str, params: dict[str, Any], *, key: str) -> Obj:
        return self._write(
            "customer_update",
            self.v1.customers.update,
            customer_id,
            params=params,
            options=_options(key),
        )

    def customer_tax_id_create(self, customer_id: str, params: dict[str, Any], *, key: str) -> Obj:
        return self._write(
            "customer_tax_id_create",
            self.v1.customers.tax_ids.create,
            customer_id,
            params=params,
            options=_options(key),
        )

    def customer_payment_methods_list(self, customer_id: str, params: dict[str, Any]) -> Obj:
        return self._read(
            "customer_payment_methods_list",
            f"/v1/customers/{_id(customer_id)}/payment_methods",
            params,
        )

    def customer_balance_transactions_list(self, customer_id: str, params: dict[str, Any]) -> Obj:
        return self._read(
            "customer_balance_transactions_list",
            f"/v1/customers/{_id(customer_id)}/balance_transactions",
            params,
        )

    def customer_balance_transaction_create(
        self, customer_id: str, params: dict[str, Any], *, key: str
    ) -> Obj:
        return self._write(
            "customer_balance_transaction_create",
            self.v1.customers.balance_transactions.create,
            customer_id,
            params=params,
            options=_options(key),
        )

    # --- subscriptions ---
    def subscriptions_list(self, params: dict[str, Any]) -> Obj:
        return self._read("subscriptions_list", "/v1/subscriptions", params)

    def subscription_retrieve(
        self, subscription_id: str, *, expand: list[str] | None = None
    ) -> Obj:
        params = {"expand": expand} if expand else {}
        return self._call(
            "subscription_retrieve", self.v1.subscriptions.retrieve, subscription_id, params=params
        )

    def subscription_update(self, subscription_id: str, params: dict[str, Any], *, key: str) -> Obj:
        return self._write(
            "subscription_update",
            self.v1.subscriptions.update,
            subscription_id,
            params=params,
            options=_options(key),
        )

    def subscription_cancel(self, subscription_id: str, params: dict[str, Any], *, key: str) -> Obj:
        return self._write(
            "subscription_cancel",
            self.v1.subscriptions.cancel,
            subscription_id,
            params=params,
            options=_options(key),
        )

    def subscription_schedule_create(self, params: dict[str, Any], *, key: str) -> Obj:
        return self._write(
            "subscription_schedule_create",
            self.v1.subscription_schedules.create,
            params=params,
            options=_options(key),
        )

    def subscription_schedule_retrieve(self, schedule_id: str) -> Obj:
        return self._call(
            "subscription_schedule_retrieve", self.v1.subscription_schedules.retrieve, schedule_id
        )

    def subscription_schedule_update(
        self, schedule_id: str, params: dict[str, Any], *, key: str
    ) -> Obj:
        return self._write(
            "subscription_schedule_update",
            self.v1.subscription_schedules.update,
            schedule_id,
            params=params,
            options=_options(key),
        )

    # --- invoices ---
    def invoices_list(self, params: dict[str, Any]) -> Obj:
        return self._read("invoices_list", "/v1/invoices", params)

    def invoice_retrieve(self, invoice_id: str, *, expand: list[str] | None = None) -> Obj:
        params = {"expand": expand} if expand else {}
        return self._call("invoice_retrieve", self.v1.invoices.retrieve, invoice_id, params=params)

    def invoice_send(self, invoice_id: str, *, key: str) -> Obj:
        return self._write(
            "invoice_send", self.v1.invoices.send_invoice, invoice_id, options=_options(key)
        )

    def invoice_update(self, invoice_id: str, params: dict[str, Any], *, key: str) -> Obj:
        return self._write(
            "invoice_update",
            self.v1.invoices.update,
            invoice_id,
            params=params,
            options=_options(key),
        )

    def invoice_create_preview(self, params: dict[str, Any]) -> Obj:
        # A preview moves nothing; stripe-python gives the POST its own random key.
        return self._call("invoice_create_preview", self.v1.invoices.create_preview, params=params)

    # --- payments ---
    def charges_list(self, params: dict[str, Any]) -> Obj:
        return self._read("charges_list", "/v1/charges", params)

    def charge_retrieve(self, charge_id: str, *, expand: list[str] | None = None) -> Obj:
        params = {"expand": expand} if expand else {}
        return self._call("charge_retrieve", self.v1.charges.retrieve, charge_id, params=params)

    def payment_intent_retrieve(
        self, payment_intent_id: str, *, expand: list[str] | None = None
    ) -> Obj:
        params = {"expand": expand} if expand else {}
        return self._call(
            "payment_intent_retrieve",
            self.v1.payment_intents.retrieve,
            payment_intent_id,
            params=params,
        )

    def refunds_list(self, params: dict[str, Any]) -> Obj:
        return self._call("refunds_list", self.v1.refunds.list, params=params)

    def refund_retrieve(self, refund_id: str) -> Obj:
        return self._call("refund_retrieve", self.v1.refunds.retrieve, refund_id)

    def refund_create(self, params: dict[str, Any], *, key: str) -> Obj:
        return self._write(
            "refund_create", self.v1.refunds.create, params=params, options=_options(key)
        )

    def dispute_retrieve(self, dispute_id: str) -> Obj:
        return self._call("dispute_retrieve", self.v1.disputes.retrieve, dispute_id)

    def payment_method_retrieve(self, payment_method_id: str) -> Obj:
        return self._call(
            "payment_method_retrieve", self.v1.payment_methods.retrieve, payment_method_id
        )

    # --- catalog ---
    def products_list(self, params: dict[str, Any]) -> Obj:
        return self._read("products_list", "/v1/products", params)

    def product_retrieve(self, product_id: str) -> Obj:
        return self._call("product_retrieve", self.v1.products.retrieve, product_id)

    def prices_list(self, params: dict[str, Any]) -> Obj:
        return self._call("prices_list", self.v1.prices.list, params=params)

    def price_retrieve(self, price_id: str) -> Obj:
        return self._call("price_retrieve", self.v1.prices.retrieve, price_id)

    def coupon_create(self, params: dict[str, Any], *, key: str) -> Obj:
        return self._write(
            "coupon_create", self.v1.coupons.create, params=params, options=_options(key)
        )

    # --- hosted pages ---
    def checkout_session_create(self, params: dict[str, Any], *, key: str) -> Obj:
        return self._write(
            "checkout_session_create",
            self.v1.checkout.sessions.create,
            params=params,
            options=_options(key),
        )

    def billing_portal_session_create(self, params: dict[str, Any], *, key: str) -> Obj:
        return self._write(
            "billing_portal_session_create",
            self.v1.billing_portal.sessions.create,
            params=params,
            options=_options(key),
        )

    # --- account ---
    def balance_retrieve(self) -> Obj:
        return self._call("balance_retrieve", self.v1.balance.retrieve)


__all__ = [
    "NEVER_SENT",
    "OUTCOME_UNKNOWN",
    "StripeApi",
    "StripeHttpClient",
    "stripe_call_started",
    "stripe_client_build",
    "stripe_client_get",
    "stripe_error_translate",
    "stripe_errors",
    "transport_error_kind",
]
