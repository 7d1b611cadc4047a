"""Contract: the customer's tax details — tax ids (validated) and billing address."""

from __future__ import annotations

import pytest

from billing_app.errors import BillingDeskError
from billing_app.providers.base import TaxIdInput

from .world import ACME

KEY = "contract-tax-details"


def update(harness, tax_id=None, address=None, key=KEY):
    return harness.provider.update_tax_details(
        customer_id=ACME, tax_id=tax_id, address=address, idempotency_key=key
    )


def test_a_tax_id_and_an_address_are_stored(harness):
    result = update(
        harness,
        TaxIdInput(type="eu_vat", value="DE123456789"),
        {"line1": "Unter den Linden 1", "city": "Berlin", "postal_code": "10117", "country": "de"},
    )
    assert [(t["type"], t["value"]) for t in result.tax_ids] == [("eu_vat", "DE123456789")]
    assert (result.address["country"], result.address["city"]) == ("DE", "Berlin")
    customer = harness.retrieve("customer", ACME)
    assert customer["address"]["country"] == "DE"


def test_the_same_tax_id_twice_is_stored_once(harness):
    update(harness, TaxIdInput(type="eu_vat", value="DE123456789"), key=KEY + "-1")
    again = update(harness, TaxIdInput(type="eu_vat", value="DE 123 456 789"), key=KEY + "-2")
    assert [t["value"] for t in again.tax_ids] == ["DE123456789"]


@pytest.mark.parametrize(
    ("tax_id", "address", "code"),
    [
        (None, None, "nothing_to_update"),
        (TaxIdInput(type="eu_vat", value="  "), None, "invalid_tax_id"),
        (TaxIdInput(type="eu_vat", value="DE12"), None, "invalid_tax_id"),
        (None, {"planet": "Mars"}, "invalid_address"),
        (None, {"country": "Germany"}, "invalid_address"),
    ],
)
def test_tax_details_that_are_refused(harness, tax_id, address, code):
    with pytest.raises(BillingDeskError) as refused:
        update(harness, tax_id, address)
    assert refused.value.code == code
    assert refused.value.status == 400
    assert update(harness, None, {"city": "Berlin"}, key=KEY + "-after").tax_ids == []
