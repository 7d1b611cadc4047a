"""The simulation's machinery every sandbox call shares.

The lock and the clock (the workspace's ``SandboxControl`` row), exactly-once writes
(the first result of each idempotency key, kept in ``SandboxIdempotency``), and the
simulated objects themselves: read from the mirror tables, written through the
``store`` port the services layer registers (``ports``). Write results carry no
``changes`` (``base.NO_CHANGES``): the stored objects already are the new state.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar

from django.db import transaction
from django.db.models import Model
from django.utils import timezone

from ...errors import (
    Conflict,
    PreconditionFailed,
    ProviderError,
    ProviderUnavailable,
    ValidationFailed,
)
from ...models import (
    MirrorBalanceTransaction,
    MirrorCharge,
    MirrorCustomer,
    MirrorDiscount,
    MirrorInvoice,
    MirrorPaymentMethod,
    MirrorPrice,
    MirrorProduct,
    MirrorRefund,
    MirrorSubscription,
    MirrorSubscriptionItem,
    SandboxControl,
    SandboxIdempotency,
    Workspace,
)
from ...money import Money
from ...subscriptions import is_addon_product, is_live
from ..base import BillingProvider
from ..rules import subscription_items
from . import objects
from .codec import decode, encode, request_hash
from .control import sandbox_control_get, sandbox_now
from .items import plan_item
from .ports import store_object

T = TypeVar("T")
Obj = dict[str, Any]

SANDBOX_HOST = objects.SANDBOX_HOST

_RESOURCES: dict[str, type[Model]] = {
    "customer": MirrorCustomer,
    "subscription": MirrorSubscription,
    "subscription_item": MirrorSubscriptionItem,
    "invoice": MirrorInvoice,
    "charge": MirrorCharge,
    "refund": MirrorRefund,
    "payment_method": MirrorPaymentMethod,
    "price": MirrorPrice,
    "product": MirrorProduct,
    "customer_balance_transaction": MirrorBalanceTransaction,
    "balance_transaction": MirrorBalanceTransaction,
    "discount": MirrorDiscount,
}


def _resource_model(resource: str) -> type[Model]:
    name = resource.strip().lower()
    model = _RESOURCES.get(name) or _RESOURCES.get(name.removesuffix("s"))
    if model is None:
        raise ValidationFailed(f"Unknown resource {resource!r}.", code="unknown_resource")
    return model


def _missing(kind: str, object_id: str) -> ProviderError:
    """Stripe's 404 for an unknown id, as the Stripe provider translates it."""
    return ProviderError(
        f"No such {kind}: '{object_id}'",
        code="invalid_request",
        status=404,
        details={"provider": "sandbox", "provider_code": "resource_missing"},
        provider_code="resource_missing",
    )


def _money(amount: int, currency: str) -> Money:
    return Money(int(amount), currency.upper())


def _card_expired(pm: Obj | None, now: datetime) -> bool:
    card = (pm or {}).get("card") or {}
    if not card:
        return False
    return (int(card["exp_year"]), int(card["exp_month"])) < (now.year, now.month)


class SandboxState(BillingProvider):
    """What the sandbox's reads and writes stand on (not a provider by itself)."""

    key = "sandbox"

    def __init__(self, workspace: Workspace, *, clock: Callable[[], datetime] | None = None):
        super().__init__(workspace)
        self._clock = clock

    @classmethod
    def clock_now(cls, workspace: Workspace) -> datetime:
        """The simulation's clock: frozen or advanced by the demo and the tests, else real time."""
        return sandbox_now(workspace=workspace)

    # --- infrastructure -------------------------------------------------------------

    def _check_up(self, control: SandboxControl) -> None:
        if control.down:
            raise ProviderUnavailable(
                "The sandbox billing provider is switched off"
                + (f" ({control.down_reason})" if control.down_reason else "")
                + "; nothing was changed.",
                details={"provider": "sandbox"},
                provider_code="sandbox_down",
            )

    def now(self) -> datetime:
        """The simulation's time (not a call: works while the sandbox is switched off)."""
        if self._clock is not None:
            return self._clock()
        return sandbox_now(workspace=self.workspace)

    def _now(self, control: SandboxControl) -> datetime:
        if self._clock is not None:
            return self._clock()
        return control.clock or timezone.now()

    def _read(self) -> datetime:
        control = sandbox_control_get(workspace=self.workspace)
        self._check_up(control)
        return self._now(control)

    def _id(self, prefix: str, key: str, *parts: object) -> str:
        return objects.digest_id(prefix, self.workspace.slug, key, *parts)

    def _write(
        self,
        operation: str,
        idempotency_key: str,
        params: dict[str, Any],
        act: Callable[[datetime], T],
    ) -> T:
        """Run ``act`` once per idempotency key, under the workspace's sandbox lock."""
        if not idempotency_key:
            raise ValidationFailed(
                "An idempotency key is required.", code="idempotency_key_required"
            )
        fingerprint = request_hash(operation, params)
        sandbox_control_get(workspace=self.workspace)
        with transaction.atomic():
            control = SandboxControl.objects.select_for_update().get(workspace=self.workspace)
            self._check_up(control)
            done = SandboxIdempotency.objects.filter(
                workspace=self.workspace, key=idempotency_key
            ).first()
            if done is not None:
                if done.request_hash != fingerprint:
                    raise Conflict(
                        "This idempotency key was already used with other parameters.",
                        code="idempotency_conflict",
                        details={"provider": "sandbox", "operation": done.operation},
                    )
                return decode(done.result)
            result = act(self._now(control))
            SandboxIdempotency.objects.create(
                workspace=self.workspace,
                key=idempotency_key,
                operation=operation,
                request_hash=fingerprint,
                result=encode(result),
            )
            return result

    def _row(self, model: type[Model], object_id: str, kind: str) -> Any:
        row = model.objects.filter(workspace=self.workspace, stripe_id=object_id).first()  # type: ignore[attr-defined]
        if row is None or not row.data:
            raise _missing(kind, object_id)
        return row

    def _get(self, model: type[Model], object_id: str, kind: str) -> Obj:
        return dict(self._row(model, object_id, kind).data)

    def _customer(self, customer_id: str) -> Obj:
        row = self._row(MirrorCustomer, customer_id, "customer")
        if row.deleted:
            raise _missing("customer", customer_id)
        return dict(row.data)

    def _put(self, obj: Obj) -> None:
        store_object(self.workspace, obj)

    def _payment_method_of(self, customer: Obj, subscription: Obj | None = None) -> Obj | None:
        ref = (customer.get("invoice_settings") or {}).get("default_payment_method") or (
            (subscription or {}).get("default_payment_method")
        )
        if isinstance(ref, dict):
            return ref
        if not ref:
            return None
        row = MirrorPaymentMethod.objects.filter(workspace=self.workspace, stripe_id=ref).first()
        return dict(row.data) if row is not None else None

    def _price(self, price_id: str) -> Obj:
        """A price with its product expanded, as subscription items carry it."""
        price = self._get(MirrorPrice, price_id, "price")
        product_ref = price.get("product")
        if isinstance(product_ref, str) and product_ref:
            row = MirrorProduct.objects.filter(
                workspace=self.workspace, stripe_id=product_ref
            ).first()
            if row is not None and row.data:
                price["product"] = dict(row.data)
        return price

    def _addon_products(self, sub: Obj) -> set[str]:
        """The add-on products (``metadata.addon = "true"``) among the subscription's items."""
        refs = {
            ref
            for item in subscription_items(sub)
            if isinstance(ref := (item.get("price") or {}).get("product"), str) and ref
        }
        rows = MirrorProduct.objects.filter(workspace=self.workspace, stripe_id__in=refs)
        return {r.stripe_id for r in rows if is_addon_product(r.data or {})}

    def _plan_item(self, sub: Obj) -> Obj | None:
        """The subscription's plan item, by the rulebook, add-ons known from the catalog."""
        return plan_item(sub, addon_products=self._addon_products(sub))

    def _live_subscription(self, subscription_id: str) -> Obj:
        sub = self._get(MirrorSubscription, subscription_id, "subscription")
        if not is_live(sub.get("status")):
            raise PreconditionFailed(
                f"Subscription {subscription_id} is {sub.get('status')}; it can no longer change.",
                code="subscription_not_active",
                details={"status": sub.get("status")},
            )
        return sub

    def _next_number(self, customer: Obj) -> str:
        """The next invoice number of the customer's prefix, as Stripe numbers them:
        ``PREFIX-NNNN``, unique per prefix and rising. The customer's
        ``next_invoice_sequence`` is advanced past every number its prefix already has in
        this workspace (invoices imported or seeded without moving the sequence: the
        sandbox once issued ``NWT-0001`` a second time)."""
        prefix = str(customer.get("invoice_prefix") or "SBX")
        sequence = max(int(customer.get("next_invoice_sequence") or 1), self._issued(prefix) + 1)
        customer["next_invoice_sequence"] = sequence + 1
        return f"{prefix}-{sequence:04d}"

    def _issued(self, prefix: str) -> int:
        """The highest sequence already used with ``prefix`` (``PREFIX-NNNN``), else 0."""
        numbers = MirrorInvoice.objects.filter(
            workspace=self.workspace, number__startswith=f"{prefix}-"
        ).values_list("number", flat=True)
        used = [int(tail) for n in numbers if (tail := n[len(prefix) + 1 :]).isdigit()]
        return max(used, default=0)
