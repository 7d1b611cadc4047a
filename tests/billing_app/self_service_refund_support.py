"""Fixtures shared by the self-service refund tests (a test module names them: ``spy = support.spy``)."""

from __future__ import annotations

import pytest

from billing_app.services.actions import run as actions_run

from .actions_support import ProviderSpy, account_seed


def self_service_limit_set(workspace, amount: int) -> None:
    workspace.self_service_refund_limit = amount
    workspace.save(update_fields=["self_service_refund_limit"])


@pytest.fixture
def spy(monkeypatch):
    """The provider, recorded: ``spy.writes("refund")`` are the refunds it was asked for."""
    spy = ProviderSpy()
    real = actions_run.get_provider
    monkeypatch.setattr(actions_run, "get_provider", lambda ws: spy.wrap(real(ws)))
    return spy


@pytest.fixture
def acme(workspace):
    """Acme's account in the mirror; the self-service limit is the default (0)."""
    account_seed(workspace)
    return workspace


@pytest.fixture
def acme_limited(workspace):
    """Acme with a $100.00 self-service limit: the $49.00 duplicate is refunded at once,
    the $3,400.00 invoice payment goes to agents."""
    account_seed(workspace)
    self_service_limit_set(workspace, 10000)
    return workspace
