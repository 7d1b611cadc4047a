"""Reads: the customer bundle, search by email, pages for the backfill, one object by id."""

from __future__ import annotations

from typing import Any

from django.db.models import Model

from ...errors import ValidationFailed
from ...models import (
    MirrorBalanceTransaction,
    MirrorCharge,
    MirrorCustomer,
    MirrorInvoice,
    MirrorPaymentMethod,
    MirrorPrice,
    MirrorProduct,
    MirrorRefund,
    MirrorSubscription,
)
from ..base import CustomerBundle, Page, StripeObject
from ..rules import subscription_items
from . import objects
from .state import Obj, SandboxState, _missing, _resource_model


class SandboxReads(SandboxState):
    # --- reads ----------------------------------------------------------------------

    def fetch_customer_bundle(self, customer_id: str) -> CustomerBundle:
        self._read()
        row = self._row(MirrorCustomer, customer_id, "customer")
        if row.deleted:
            return CustomerBundle(
                customer={"id": customer_id, "object": "customer", "deleted": True}
            )
        ws = self.workspace

        def data(model: type[Model], **filters: Any) -> list[Obj]:
            rows = model.objects.filter(workspace=ws, **filters).order_by("-created", "stripe_id")  # type: ignore[attr-defined]
            return [dict(r.data) for r in rows if r.data]

        subscriptions = data(MirrorSubscription, customer_id=customer_id)
        price_ids = {
            objects_id
            for sub in subscriptions
            for item in subscription_items(sub)
            if (objects_id := (item.get("price") or {}).get("id"))
        }
        prices = data(MirrorPrice, stripe_id__in=price_ids)
        product_ids = {objects.price_product_id(p) for p in prices}
        return CustomerBundle(
            customer=dict(row.data),
            subscriptions=subscriptions,
            invoices=data(MirrorInvoice, customer_id=customer_id),
            charges=data(MirrorCharge, customer_id=customer_id),
            refunds=data(MirrorRefund, customer_id=customer_id),
            payment_methods=data(MirrorPaymentMethod, customer_id=customer_id),
            balance_transactions=data(MirrorBalanceTransaction, customer_id=customer_id),
            prices=prices,
            products=data(MirrorProduct, stripe_id__in=product_ids),
        )

    def find_customers_by_email(self, email: str) -> list[StripeObject]:
        if "@" not in (email or ""):
            raise ValidationFailed("A valid email address is required.", code="invalid_email")
        self._read()
        rows = MirrorCustomer.objects.filter(
            workspace=self.workspace, email=email.strip().lower(), deleted=False
        ).order_by("-created")
        return [dict(r.data) for r in rows if r.data]

    def list_objects(self, resource: str, *, cursor: str | None, limit: int = 100) -> Page:
        if not 1 <= limit <= 100:
            raise ValidationFailed("limit must be between 1 and 100.", code="invalid_limit")
        self._read()
        model = _resource_model(resource)
        rows = model.objects.filter(workspace=self.workspace).order_by("stripe_id")  # type: ignore[attr-defined]
        if cursor:
            rows = rows.filter(stripe_id__gt=cursor)
        page = list(rows[: limit + 1])
        has_more = len(page) > limit
        page = page[:limit]
        return Page(
            objects=[dict(r.data) for r in page if r.data],
            has_more=has_more,
            next_cursor=page[-1].stripe_id if has_more and page else None,
        )

    def retrieve_object(self, resource: str, object_id: str) -> StripeObject:
        self._read()
        if resource.strip().lower().removesuffix("s") == "subscription_schedule":
            return self._schedule(object_id)
        model = _resource_model(resource)
        row = self._row(model, object_id, resource.removesuffix("s"))
        if isinstance(row, MirrorCustomer) and row.deleted:
            return {"id": object_id, "object": "customer", "deleted": True}
        return dict(row.data)

    def _schedule(self, schedule_id: str) -> Obj:
        row = MirrorSubscription.objects.filter(
            workspace=self.workspace, schedule_id=schedule_id
        ).first()
        if row is None:
            raise _missing("subscription_schedule", schedule_id)
        sub = dict(row.data)
        item = self._plan_item(sub) or {}
        meta = sub.get("metadata") or {}
        switch_at = int(meta.get("pending_change_at") or 0)
        return {
            "id": schedule_id,
            "object": "subscription_schedule",
            "customer": sub.get("customer"),
            "end_behavior": "release",
            "metadata": {},
            "phases": [
                {
                    "end_date": switch_at,
                    "items": [
                        {
                            "price": (item.get("price") or {}).get("id"),
                            "quantity": item.get("quantity"),
                        }
                    ],
                    "proration_behavior": "none",
                    "start_date": item.get("current_period_start"),
                },
                {
                    "end_date": None,
                    "items": [
                        {"price": meta.get("pending_price_id"), "quantity": item.get("quantity")}
                    ],
                    "proration_behavior": "none",
                    "start_date": switch_at,
                },
            ],
            "status": "active",
            "subscription": sub["id"],
        }
