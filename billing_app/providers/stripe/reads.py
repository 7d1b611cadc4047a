"""Stripe reads: what the panel shows about a customer, the backfill's pages, and the
current state of one object (webhook processing re-reads instead of trusting order).

Reads only return objects; their callers (the refresh service, the webhook processor,
the backfill) decide what to store.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

from ...errors import ValidationFailed
from ..arguments import customer_id_check, email_check, page_limit_check
from ..base import MIRRORED_RETRIEVABLE, CustomerBundle, Page, StripeObject
from . import readers as r
from .core import CHARGE_EXPAND, CUSTOMER_EXPAND, INVOICE_EXPAND, SUBSCRIPTION_EXPAND, StripeCore

Obj = dict[str, Any]

# Top-level resources the backfill pages through, with their list parameters.
LIST_RESOURCES: dict[str, dict[str, Any]] = {
    "products": {},
    "prices": {},
    "customers": {"expand": ["data.tax_ids", "data.discount.source.coupon"]},
    "subscriptions": {"status": "all", "expand": ["data.discounts.source.coupon"]},
    "invoices": {"expand": ["data.payments"]},
    "charges": {"expand": ["data.refunds"]},
    "refunds": {},
}
# Resources listed per customer: ``customers/<id>/<name>``.
CUSTOMER_LIST_RESOURCES = frozenset({"payment_methods", "balance_transactions"})
RETRIEVABLE = MIRRORED_RETRIEVABLE | {"payment_intent", "dispute", "subscription_schedule"}
BUNDLE_LIMIT = 100


class StripeReads(StripeCore):
    def fetch_customer_bundle(self, customer_id: str) -> CustomerBundle:
        """Every read in one concurrent wave: no request waits for another's answer.

        Refunds come embedded in the charges (``expand=data.refunds``): Stripe cannot
        list refunds by customer. Prices come embedded in the subscription items. Their
        products cannot be expanded there: ``data.items.data.price.product`` is five
        levels and Stripe refuses more than four (``property_expansion_max_depth``). So
        while the mirror does not hold the catalog (its products backfill has not
        completed), a page of the catalog rides in the same wave and the subscribed
        products are taken from it; once it does, the products come from the mirror.
        A second round trip is left only for a product found in neither (a catalog
        larger than a page, a product created since the backfill).
        """
        customer_id_check(customer_id)
        api = self.api
        listing = {"customer": customer_id, "limit": BUNDLE_LIMIT}
        calls: dict[str, Callable[[], Obj]] = {
            "customer": lambda: api.customer_retrieve(customer_id, expand=CUSTOMER_EXPAND),
            "subscriptions": lambda: api.subscriptions_list(
                {**listing, "status": "all", "expand": [f"data.{e}" for e in SUBSCRIPTION_EXPAND]}
            ),
            "invoices": lambda: api.invoices_list(
                {**listing, "expand": [f"data.{e}" for e in INVOICE_EXPAND]}
            ),
            "charges": lambda: api.charges_list(
                {**listing, "expand": [f"data.{e}" for e in CHARGE_EXPAND]}
            ),
            "payment_methods": lambda: api.customer_payment_methods_list(
                customer_id, {"type": "card", "limit": BUNDLE_LIMIT}
            ),
            "balance_transactions": lambda: api.customer_balance_transactions_list(
                customer_id, {"limit": BUNDLE_LIMIT}
            ),
        }
        if not self._catalog_mirrored():
            calls["catalog"] = lambda: api.products_list({"limit": BUNDLE_LIMIT})
        results = self._concurrently(calls)
        subscriptions = r.page_read(results["subscriptions"]).objects
        charges = r.page_read(results["charges"]).objects
        prices: dict[str, Obj] = {}
        for subscription in subscriptions:
            for item in r.subscription_items(subscription):
                price = item.get("price")
                if isinstance(price, dict) and price.get("id"):
                    prices[price["id"]] = price
        wanted = {r.ref(p.get("product")) for p in prices.values()} - {""}
        needed = wanted - self._mirrored_products(wanted)
        products = [
            product
            for product in r.page_read(results.get("catalog") or {}).objects
            if product.get("id") in needed
        ]
        unlisted = sorted(needed - {p["id"] for p in products})
        if unlisted:
            products += r.page_read(
                api.products_list({"ids": unlisted, "limit": BUNDLE_LIMIT})
            ).objects
        return CustomerBundle(
            customer=results["customer"],
            subscriptions=subscriptions,
            invoices=r.page_read(results["invoices"]).objects,
            charges=charges,
            refunds=[
                refund
                for charge in charges
                for refund in ((charge.get("refunds") or {}).get("data") or [])
            ],
            payment_methods=r.page_read(results["payment_methods"]).objects,
            balance_transactions=r.page_read(results["balance_transactions"]).objects,
            prices=list(prices.values()),
            products=products,
        )

    def _catalog_mirrored(self) -> bool:
        """Whether the backfill has stored the whole catalog (``product.*`` webhooks keep it
        current after that): the bundle then reads no catalog page from Stripe."""
        from ...models import SyncState

        return SyncState.objects.filter(
            workspace_id=self.workspace.pk, resource="products", completed=True
        ).exists()

    def _mirrored_products(self, product_ids: set[str]) -> set[str]:
        """Products the mirror already holds (backfill, ``product.*`` webhooks, earlier
        bundles): not part of the bundle, as before."""
        from ...models import MirrorProduct

        if not product_ids:
            return set()
        return set(
            MirrorProduct.objects.filter(
                workspace_id=self.workspace.pk, stripe_id__in=product_ids
            ).values_list("stripe_id", flat=True)
        )

    def find_customers_by_email(self, email: str) -> list[StripeObject]:
        """Stripe's ``email`` filter is exact and case-sensitive: ask for the address as
        given and in lower case (how most systems store it), at once, and merge."""
        given = email_check(email)
        variants = list(dict.fromkeys([given, given.lower()]))
        api = self.api
        results = self._concurrently(
            {
                variant: partial(api.customers_list, {"email": variant, "limit": BUNDLE_LIMIT})
                for variant in variants
            }
        )
        found: dict[str, Obj] = {}
        for variant in variants:
            for customer in r.page_read(results[variant]).objects:
                if not customer.get("deleted"):
                    found.setdefault(customer["id"], customer)
        return list(found.values())

    def list_objects(self, resource: str, *, cursor: str | None, limit: int = 100) -> Page:
        """A page of ``products``, ``prices``, ``customers``, ``subscriptions``, ``invoices``,
        ``charges``, ``refunds`` or ``customers/<id>/payment_methods|balance_transactions``."""
        page_limit_check(limit)
        paging: dict[str, Any] = {"limit": limit}
        if cursor:
            paging["starting_after"] = cursor
        if resource in LIST_RESOURCES:
            fn = getattr(self.api, f"{resource}_list")
            return r.page_read(fn({**LIST_RESOURCES[resource], **paging}))
        parts = resource.split("/")
        if len(parts) == 3 and parts[0] == "customers" and parts[2] in CUSTOMER_LIST_RESOURCES:
            customer_id = parts[1]
            if parts[2] == "payment_methods":
                return r.page_read(
                    self.api.customer_payment_methods_list(customer_id, {"type": "card", **paging})
                )
            return r.page_read(self.api.customer_balance_transactions_list(customer_id, paging))
        raise ValidationFailed(f"Unknown resource {resource!r}.", code="unknown_resource")

    def retrieve_object(self, resource: str, object_id: str) -> StripeObject:
        """The current state of one object, by its Stripe object type (``event.data.object.object``)."""
        if resource not in RETRIEVABLE or not object_id:
            raise ValidationFailed(
                f"Cannot retrieve {resource!r} objects.", code="unknown_resource"
            )
        api = self.api
        match resource:
            case "customer":
                return api.customer_retrieve(object_id, expand=CUSTOMER_EXPAND)
            case "subscription":
                return api.subscription_retrieve(object_id, expand=SUBSCRIPTION_EXPAND)
            case "invoice":
                return api.invoice_retrieve(object_id, expand=INVOICE_EXPAND)
            case "charge":
                return api.charge_retrieve(object_id, expand=CHARGE_EXPAND)
            case "payment_intent":
                return api.payment_intent_retrieve(object_id, expand=["latest_charge"])
            case "subscription_schedule":
                return api.subscription_schedule_retrieve(object_id)
            case _:
                return getattr(api, f"{resource}_retrieve")(object_id)
