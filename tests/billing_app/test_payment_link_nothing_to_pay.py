"""A payment link for a customer who owes nothing is refused in words (issue 14, point 9)."""

from __future__ import annotations

import pytest

from billing_app.catalog import Role
from billing_app.models import BillingAction

from .context_support import forget_provider_health, seed_brief_day


@pytest.fixture
def seeded(db, settings):
    yield seed_brief_day(settings)
    forget_provider_health()


def _link(agent, customer_id: str, key: str, params: dict | None = None):
    return agent.post(
        "/api/v1/actions/",
        {
            "kind": "generate_payment_link",
            "customer_id": customer_id,
            "ticket_id": "1001",
            "params": params or {},
            "idempotency_key": key,
        },
        format="json",
    )


def test_no_open_amount_no_link_and_a_sentence_that_says_why(seeded, api_as):
    # given Acme Corp: every invoice paid, an outstanding balance of $0.00
    agent = api_as(seeded.workspace, Role.L1)

    response = _link(agent, "cus_sbx_acme", "zero-link")

    # then nothing is made, and the refusal says so in words, with what to do instead
    assert response.status_code == 422, response.content
    error = response.json()["error"]
    assert error["code"] == "nothing_to_pay"
    assert error["message"].startswith(
        "Acme Corp has no open invoice and no balance due: there is nothing to pay"
    )
    assert "Update payment method" in error["message"]
    assert not BillingAction.objects.filter(status="succeeded", kind="generate_payment_link")


def test_a_customer_with_an_open_invoice_gets_the_link(seeded, api_as):
    # given Northwind: a failed payment, its invoice open
    agent = api_as(seeded.workspace, Role.L1)

    response = _link(agent, "cus_sbx_northwind", "open-link")

    assert response.status_code == 201, response.content
    assert response.json()["status"] == "succeeded"
