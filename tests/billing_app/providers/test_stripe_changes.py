"""Providers return what they changed; the calling service writes it into the mirror.

The Stripe provider never touches the mirror (it sits below the services): a write's
result carries ``changes`` — the Stripe objects it changed, stamped with when the
request that returned them was sent — and ``services.mirror.mirror_provider_changes``
stores them, in order against re-reads, never raising.
"""

from __future__ import annotations

import dataclasses
import logging

import pytest

from billing_app.models import MirrorBalanceTransaction, MirrorCharge, MirrorCustomer, MirrorRefund
from billing_app.money import Money
from billing_app.providers.base import NO_CHANGES, RefundResult, changes_of
from billing_app.providers.stripe import StripeProvider
from billing_app.providers.stripe.client import StripeHttpClient
from billing_app.services import mirror as mirror_module
from billing_app.services.mirror import mirror_provider_changes, mirror_upsert
from tests.billing_app.providers.contract.fake_stripe import FakeStripe
from tests.billing_app.providers.contract.world import ACME, CH_PAID, world_build
from tests.billing_app.stripe_support import make_stripe_workspace

KEY = "contract-changes"


@pytest.fixture(autouse=True)
def _no_backoff(monkeypatch):
    monkeypatch.setattr(StripeHttpClient, "backoff_scale", 0.0)


@pytest.fixture
def account(make_workspace, http):
    from django.utils import timezone

    world = world_build(timezone.now())
    workspace = make_stripe_workspace(make_workspace, slug="changes-stripe")
    FakeStripe(http, now=world.now).load(world.objects)
    for obj in world.objects:
        mirror_upsert(workspace=workspace, obj=obj, read_at=world.now)
    return workspace, StripeProvider(workspace)


def test_a_refund_changes_nothing_in_the_mirror_until_the_service_stores_it(account):
    workspace, provider = account

    # when Stripe refunds $100 of the charge
    result = provider.refund(
        charge_id=CH_PAID, amount=Money(10_000, "USD"), reason="duplicate", idempotency_key=KEY
    )

    # then the result carries the refund and the charge's new state, stamped with a read time
    changes = changes_of(result)
    assert [o["object"] for o in changes.objects] == ["refund", "charge"]
    assert changes.read_at is not None
    assert not MirrorRefund.objects.filter(workspace=workspace).exists()
    assert MirrorCharge.objects.get(workspace=workspace, stripe_id=CH_PAID).amount_refunded == 0

    # and once the service stores them, the mirror shows the refund
    assert mirror_provider_changes(workspace=workspace, result=result) == 2
    assert MirrorRefund.objects.get(workspace=workspace).customer_id == ACME
    assert (
        MirrorCharge.objects.get(workspace=workspace, stripe_id=CH_PAID).amount_refunded == 10_000
    )


def test_changes_are_not_part_of_the_result_an_action_records(account):
    _, provider = account
    result = provider.refund(
        charge_id=CH_PAID, amount=Money(10_000, "USD"), reason="duplicate", idempotency_key=KEY
    )

    # the result's fields (what BillingAction.result holds) are the same as before
    assert [f.name for f in dataclasses.fields(RefundResult)] == [
        "refund_id",
        "charge_id",
        "amount",
        "status",
        "reason",
    ]
    assert result == dataclasses.replace(result)  # equality ignores the changes
    assert changes_of(dataclasses.replace(result)) is NO_CHANGES


def test_a_credit_carries_the_customers_new_balance(account):
    workspace, provider = account

    result = provider.apply_credit(
        customer_id=ACME, amount=Money(2500, "USD"), description="Sorry", idempotency_key=KEY
    )
    mirror_provider_changes(workspace=workspace, result=result)

    assert MirrorBalanceTransaction.objects.get(workspace=workspace).amount == -2500
    assert MirrorCustomer.objects.get(workspace=workspace, stripe_id=ACME).balance == -2500


def test_a_mirror_failure_is_logged_never_raised(account, monkeypatch, caplog):
    workspace, provider = account
    result = provider.refund(
        charge_id=CH_PAID, amount=Money(10_000, "USD"), reason="duplicate", idempotency_key=KEY
    )

    def broken(**kwargs):
        raise RuntimeError("database gone")

    monkeypatch.setattr(mirror_module, "mirror_upsert", broken)
    with caplog.at_level(logging.ERROR):
        assert mirror_provider_changes(workspace=workspace, result=result) == 0
    assert "mirror upsert failed after a provider write" in caplog.text


def test_anything_without_changes_stores_nothing(account):
    workspace, _ = account
    assert mirror_provider_changes(workspace=workspace, result=None) == 0
    assert mirror_provider_changes(workspace=workspace, result={"not": "a result"}) == 0
