"""InstrumentedProvider: every provider call recorded, results and exceptions unchanged."""

from __future__ import annotations

import pytest
from django.db import DatabaseError, connection, transaction
from django.test import override_settings

from billing_app.errors import PreconditionFailed, ProviderError, ProviderUnavailable
from billing_app.models import ProviderCall
from billing_app.providers import get_provider
from billing_app.providers.base import BillingProvider, LinkResult
from billing_app.providers.instrumented import (
    OPERATIONS,
    InstrumentedProvider,
    provider_call_side_connection_close,
)

LINK = LinkResult(
    url="https://invoice.stripe.com/i/acct_1/test", kind="hosted_invoice", object_id="in_1"
)


def _not_used(self, *args, **kwargs):  # pragma: no cover - never called
    raise AssertionError("not part of this test")


class ScriptedProvider(
    type(
        "_Stubs",
        (BillingProvider,),
        {name: _not_used for name in BillingProvider.__abstractmethods__},
    )
):
    """A provider whose calls answer from a script: a value to return or an error to raise."""

    key = "scripted"

    def __init__(self, workspace, script):
        super().__init__(workspace)
        self.script = script

    def _answer(self):
        answer = self.script.pop(0)
        if isinstance(answer, BaseException):
            raise answer
        return answer

    def create_payment_link(self, *, customer_id, invoice_id, idempotency_key):
        return self._answer()

    def refund(self, *, charge_id, amount, reason, idempotency_key, metadata=None):
        return self._answer()

    def ping(self):
        return self._answer()

    def helper_not_in_the_interface(self):
        return "plain"


def wrapped(workspace, *script):
    return InstrumentedProvider(ScriptedProvider(workspace, list(script)))


def test_a_successful_call_is_recorded_and_its_result_returned_as_is(workspace):
    provider = wrapped(workspace, LINK)

    result = provider.create_payment_link(customer_id="cus_1", invoice_id=None, idempotency_key="k")

    assert result is LINK
    call = ProviderCall.objects.get()
    assert (call.workspace, call.provider, call.operation, call.outcome, call.error_code) == (
        workspace,
        "scripted",
        "create_payment_link",
        "ok",
        "",
    )
    assert call.duration_ms >= 0


@pytest.mark.parametrize(
    ("error", "outcome", "code"),
    [
        (
            ProviderUnavailable("Stripe timed out", provider_code="timeout"),
            "unavailable",
            "timeout",
        ),
        (
            ProviderError("Your card was declined.", decline_code="insufficient_funds"),
            "error",
            "insufficient_funds",
        ),
        (
            PreconditionFailed("Nothing left to refund.", code="nothing_refundable"),
            "error",
            "nothing_refundable",
        ),
        (RuntimeError("bug"), "error", "RuntimeError"),
    ],
)
def test_a_failed_call_is_recorded_and_the_same_exception_raised(workspace, error, outcome, code):
    provider = wrapped(workspace, error)

    with pytest.raises(type(error)) as raised:
        provider.refund(charge_id="ch_1", amount=None, reason="duplicate", idempotency_key="k")

    assert raised.value is error
    call = ProviderCall.objects.get()
    assert (call.operation, call.outcome, call.error_code) == ("refund", outcome, code)


def test_only_interface_methods_are_recorded(workspace):
    provider = wrapped(workspace)

    assert provider.helper_not_in_the_interface() == "plain"
    assert provider.workspace == workspace
    assert provider.script == []
    assert isinstance(provider, BillingProvider)
    assert "helper_not_in_the_interface" not in OPERATIONS
    assert {"fetch_customer_bundle", "refund", "create_payment_link", "ping"} <= OPERATIONS
    assert not ProviderCall.objects.exists()


def test_the_billing_clock_is_not_a_provider_call(workspace):
    # given a wrapped provider
    provider = wrapped(workspace)

    # when its clock is read
    now = provider.now()

    # then it answers the billing system's time and nothing is recorded
    assert now.tzinfo is not None
    assert {"now", "clock_now"}.isdisjoint(OPERATIONS)
    assert {"resume_subscription", "undo_cancellation"} <= OPERATIONS
    assert not ProviderCall.objects.exists()


def test_get_provider_wraps_the_workspace_provider(workspace):
    provider = get_provider(workspace)

    assert isinstance(provider, InstrumentedProvider)
    assert provider.inner.__class__.__name__ == "SandboxProvider"
    provider.ping()
    assert ProviderCall.objects.filter(workspace=workspace, operation="ping").count() == 1


def test_a_recording_failure_never_reaches_the_caller(workspace, monkeypatch):
    provider = wrapped(workspace, True)

    def broken(*args, **kwargs):
        raise DatabaseError("disk full")

    monkeypatch.setattr(ProviderCall.objects, "create", broken)

    assert provider.ping() is True


def test_inside_a_transaction_the_record_commits_with_it(workspace):
    provider = wrapped(workspace, True)

    with transaction.atomic():
        provider.ping()

    assert ProviderCall.objects.filter(operation="ping").count() == 1


def test_a_broken_caller_transaction_is_left_alone(workspace):
    provider = wrapped(workspace, True)

    with transaction.atomic():
        transaction.set_rollback(True)
        assert provider.ping() is True  # no TransactionManagementError escapes

    assert not ProviderCall.objects.exists()


@pytest.mark.postgres
@pytest.mark.skipif(
    connection.vendor != "postgresql", reason="needs PostgreSQL: a second connection to the same DB"
)
@override_settings(PROVIDER_CALLS_SIDE_CONNECTION=True)
def test_on_postgres_a_failed_call_survives_the_callers_rollback(transactional_db, make_workspace):
    # given a committed workspace and a caller that rolls back after the provider failed
    workspace = make_workspace("side-conn")
    provider = wrapped(workspace, ProviderUnavailable("Stripe is down"))
    try:
        with pytest.raises(ProviderUnavailable), transaction.atomic():
            provider.refund(charge_id="ch_1", amount=None, reason="duplicate", idempotency_key="k")

        # then the call was recorded on the side connection, outside the rolled-back transaction
        call = ProviderCall.objects.get(workspace=workspace)
        assert (call.operation, call.outcome) == ("refund", "unavailable")
    finally:
        provider_call_side_connection_close()
