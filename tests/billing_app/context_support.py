"""Fixtures shared by the context and customer API tests: the seeded sandbox, a fake Stripe."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from billing_app.errors import ProviderError, ProviderUnavailable
from billing_app.providers.base import BillingProvider, CustomerBundle

from .stripe_support import load

AS_OF = datetime(2026, 1, 15, 12, tzinfo=UTC)


def forget_provider_health() -> None:
    """Provider health lives in the cache keyed by workspace id (ids repeat across tests)."""
    from billing_app.models import Workspace
    from billing_app.services.refresh import provider_health_record

    for workspace_id in Workspace.objects.values_list("pk", flat=True):
        provider_health_record(workspace_id=workspace_id, available=True)


def seed_brief_day(settings):
    """The demo sandbox as ``seed_demo --as-of 2026-01-15`` leaves it (clock frozen on that day)."""
    from billing_app.demo.seed import demo_seed

    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    return demo_seed(as_of=AS_OF)


class FakeStripe(BillingProvider):
    """A provider answering with the project's Stripe-shaped fixtures (no network, no Stripe SDK).

    ``bundles`` maps customer ids to what ``fetch_customer_bundle`` returns; an id
    not in it is Stripe's 404. ``down`` makes every call raise ``ProviderUnavailable``.
    """

    key = "stripe"

    def __init__(self, workspace, *, bundles: dict[str, CustomerBundle], down: bool = False):
        super().__init__(workspace)
        self.bundles = bundles
        self.down = down
        self.calls: list[tuple[str, Any]] = []

    def _answer(self, name: str, arg: Any) -> None:
        self.calls.append((name, arg))
        if self.down:
            raise ProviderUnavailable("Stripe is not answering right now; nothing was changed.")

    def fetch_customer_bundle(self, customer_id: str) -> CustomerBundle:
        self._answer("fetch_customer_bundle", customer_id)
        if customer_id not in self.bundles:
            raise ProviderError(
                f"No such customer: '{customer_id}'",
                code="invalid_request",
                status=404,
                provider_code="resource_missing",
            )
        return self.bundles[customer_id]

    def find_customers_by_email(self, email: str) -> list[dict[str, Any]]:
        self._answer("find_customers_by_email", email)
        return [b.customer for b in self.bundles.values() if b.customer.get("email") == email]

    def ping(self) -> bool:
        return not self.down


def _not_used(*args: Any, **kwargs: Any) -> Any:
    raise AssertionError("the read-side tests make no billing writes")


for _name in BillingProvider.__abstractmethods__ - set(vars(FakeStripe)):
    setattr(FakeStripe, _name, _not_used)
FakeStripe.__abstractmethods__ = frozenset()


def stripe_acme_bundle() -> CustomerBundle:
    """Acme Corp as the project's Stripe fixtures describe it."""
    return CustomerBundle(
        customer=load("customer"),
        subscriptions=[load("subscription")],
        invoices=[load("invoice")],
        charges=[load("charge")],
        payment_methods=[load("payment_method")],
        prices=[load("price_enterprise_pro")],
        products=[load("product")],
    )


def acme_refund_awaiting_approval_under_monitoring(workspace, user):
    """Acme with an L1's $150 refund awaiting a Manager (72 h) and payment monitoring (30 days):
    the context's pending approvals, recent actions and monitoring in one setup."""
    from datetime import timedelta

    from django.utils import timezone

    from billing_app.models import ApprovalRequest, BillingAction, CustomerFlag

    action = BillingAction.objects.create(
        workspace=workspace,
        actor=user,
        actor_role="l1",
        customer_id="cus_sbx_acme",
        kind="issue_refund",
        params={},
        amount=15_000,
        currency="USD",
        status="pending_approval",
        decision="approval",
        idempotency_key="a1",
        request_fingerprint="f",
    )
    ApprovalRequest.objects.create(
        action=action,
        workspace=workspace,
        required_roles=["manager"],
        reason="Refunds need a Manager",
        expires_at=timezone.now() + timedelta(hours=72),
    )
    CustomerFlag.objects.create(
        workspace=workspace,
        customer_id="cus_sbx_acme",
        kind="payment_monitoring",
        active_until=timezone.now() + timedelta(days=30),
    )
    return action
