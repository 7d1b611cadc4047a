"""The provider contract suite's harness: one fixture per billing provider.

Every test in this package takes ``harness`` and runs once per provider in
``HARNESSES``. A harness is the provider under test (built for a workspace of its
kind), the contract account (``world.world_build``) loaded into it, and the two
things a test cannot ask through the provider interface:

* ``advance(to)`` — let billing time pass to ``to``, as a Stripe test clock does
  (period ends, scheduled downgrades, renewal invoices, failed charges and the
  events they send, delivered to Billing Desk);
* ``failures()`` — the payment-failure records Billing Desk holds for the workspace.

**Adding a provider** is one builder function here, added to ``HARNESSES``: build the
workspace, load ``world.objects`` into the provider's account, and say how time
advances. A provider is not done until every test of this suite passes for it.

A case the sandbox does not meet yet is marked ``@gap("sandbox", "...")``: for that
provider only the test is ``xfail(strict=True)``, so the mark must go as soon as the
sandbox is fixed (a strict xfail that passes fails the run).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pytest
from django.utils import timezone

from billing_app.models import PaymentFailure, Workspace
from billing_app.providers import provider_class
from billing_app.providers.base import BillingProvider
from billing_app.providers.stripe.client import StripeHttpClient
from billing_app.services.mirror import mirror_upsert
from tests.billing_app.stripe_support import make_stripe_workspace, webhook_poster

from .fake_stripe import FakeStripe
from .world import World, world_build


@dataclass
class Harness:
    """One provider under the contract, with its account loaded."""

    name: str
    workspace: Workspace
    provider: BillingProvider
    world: World
    advance_to: Callable[[datetime], None]
    extras: dict[str, Any] = field(default_factory=dict)

    @property
    def now(self) -> datetime:
        return self.world.now

    def advance(self, to: datetime) -> None:
        self.advance_to(to)

    def retrieve(self, kind: str, object_id: str) -> dict[str, Any]:
        return self.provider.retrieve_object(kind, object_id)

    def failures(self) -> list[PaymentFailure]:
        return list(PaymentFailure.objects.filter(workspace=self.workspace).order_by("pk"))


def sandbox_harness(*, make_workspace: Any, world: World, **_: Any) -> Harness:
    """The sandbox: its account *is* the mirror, its clock is frozen at ``world.now``."""
    from billing_app.providers.sandbox.control import sandbox_control_set

    workspace = make_workspace("contract-sandbox", provider="sandbox")
    sandbox_control_set(workspace=workspace, clock=world.now)
    for obj in world.objects:
        mirror_upsert(workspace=workspace, obj=obj)
    provider = provider_class("sandbox")(workspace)

    def advance(to: datetime) -> None:
        provider.advance(to=to)  # type: ignore[attr-defined]

    return Harness("sandbox", workspace, provider, world, advance)


def stripe_harness(
    *, make_workspace: Any, world: World, http: Any, client: Any, on_commit: Any, **_: Any
) -> Harness:
    """Stripe through ``responses``: a stateful fake answering as Stripe would; the mirror
    holds the account as a backfill would have stored it; time passing is delivered as
    Stripe's signed webhooks."""
    workspace = make_stripe_workspace(make_workspace, slug="contract-stripe")
    fake = FakeStripe(http, now=world.now)
    fake.load(world.objects)
    for obj in world.objects:
        mirror_upsert(workspace=workspace, obj=obj, read_at=world.now)
    provider = provider_class("stripe")(workspace)

    def advance(to: datetime) -> None:
        fake.events.clear()
        fake.advance(to)
        events, fake.events = list(fake.events), []
        deliver = webhook_poster(client, workspace, on_commit)
        for event in events:
            deliver(event)

    return Harness("stripe", workspace, provider, world, advance, {"fake": fake})


# One builder per provider: the whole of what adding a provider to the contract takes.
HARNESSES: dict[str, Callable[..., Harness]] = {
    "sandbox": sandbox_harness,
    "stripe": stripe_harness,
}


@pytest.fixture(autouse=True)
def _no_backoff(monkeypatch):
    monkeypatch.setattr(StripeHttpClient, "backoff_scale", 0.0)


@pytest.fixture
def world() -> World:
    return world_build(timezone.now())


@pytest.fixture(params=sorted(HARNESSES))
def harness(
    request, make_workspace, world, http, client, django_capture_on_commit_callbacks
) -> Harness:
    return HARNESSES[request.param](
        make_workspace=make_workspace,
        world=world,
        http=http,
        client=client,
        on_commit=django_capture_on_commit_callbacks,
    )


def gap(provider: str, reason: str) -> pytest.MarkDecorator:
    """Mark a case ``provider`` does not meet yet: strict xfail for that provider only."""
    return pytest.mark.contract_gap(provider=provider, reason=reason)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        callspec = getattr(item, "callspec", None)
        if callspec is None:
            continue
        for mark in item.iter_markers("contract_gap"):
            if callspec.params.get("harness") == mark.kwargs["provider"]:
                item.add_marker(
                    pytest.mark.xfail(
                        strict=True,
                        reason=f"{mark.kwargs['provider']} gap: {mark.kwargs['reason']}",
                    )
                )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "contract_gap(provider, reason): a contract case a provider does not meet yet"
    )
