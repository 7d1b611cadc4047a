"""Logs carry ids, not PII or secrets — also when things fail (DESIGN.md 9)."""

from __future__ import annotations

import logging

import pytest

from billing_app.catalog import Role
from tests.billing_app.stripe_support import SECRET_KEY, WEBHOOK_SECRET, listing, load

from .conftest import CH, CUS, NOW, fail, refund_body

EMAIL = "billing@acme-corp.example"


@pytest.fixture
def everything_logged(caplog):
    caplog.set_level(logging.DEBUG)
    return caplog


def test_a_day_of_panel_work_logs_no_email_address_token_or_secret(
    ws, stripe, api_as, everything_logged
):
    # given Stripe answering some calls and failing others
    customer = load("customer", email=EMAIL)
    stripe.on("GET", "/v1/customers", listing("/v1/customers", customer))
    stripe.on("GET", f"/v1/charges/{CH}", load("charge", created=NOW - 2 * 86400))
    fail(stripe, "POST", "/v1/refunds", "server_error_500")
    agent = api_as(ws, Role.MANAGER)
    token = agent._credentials["HTTP_AUTHORIZATION"].split()[1]

    # when an agent looks the requester up by e-mail, opens the panel and a refund fails
    agent.get("/api/v1/customers/lookup/", {"email": EMAIL.upper()})
    agent.get(f"/api/v1/customers/{CUS}/context/")
    agent.post("/api/v1/actions/", refund_body(), format="json")

    # then something was logged, and none of it is personal data or a credential
    text = "\n".join(r.getMessage() for r in everything_logged.records)
    assert text
    for secret in (EMAIL, EMAIL.upper(), "acme-corp.example", token, SECRET_KEY, WEBHOOK_SECRET):
        assert secret not in text
