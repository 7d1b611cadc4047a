"""Tax invoices: tax ids validated per type, the details shown, corrected and resent, the PDF link."""

from __future__ import annotations

import time

import pytest

from billing_app.catalog import Role
from billing_app.errors import ValidationFailed
from billing_app.models import BillingAction, MirrorCustomer
from billing_app.providers.stripe.client import StripeHttpClient
from billing_app.services.mirror import mirror_upsert
from billing_app.services.tax import billing_address_validate, tax_id_normalize, tax_id_types

from .context_support import seed_brief_day
from .stripe_support import StripeMock, load, make_stripe_workspace, params_of

HOOLI, HOOLI_INVOICE = "cus_sbx_hooli", "in_sbx_hooli_04"


@pytest.mark.parametrize(
    ("tax_type", "given", "canonical"),
    [
        ("eu_vat", "de 123 456 789", "DE123456789"),
        ("eu_vat", "FR40303265045", "FR40303265045"),
        ("eu_vat", "NL 8047.43.270 B01", "NL804743270B01"),
        ("gb_vat", "GB 980 7806 84", "GB980780684"),
        ("au_abn", "51 824 753 556", "51824753556"),
        ("us_ein", "123456789", "12-3456789"),
        ("ca_bn", "123 456 789", "123456789"),
        ("ca_gst_hst", "123456789 RT 0002", "123456789RT0002"),
        ("in_gst", "27aapfu0939f1zv", "27AAPFU0939F1ZV"),
        ("ch_vat", "che116281710mwst", "CHE-116.281.710 MWST"),
        ("no_vat", "974 760 673 MVA", "974760673MVA"),
        ("jp_cn", "7000012050002", "7000012050002"),
        ("nz_gst", "49-091-850", "49091850"),
        ("za_vat", "4123456789", "4123456789"),
        ("sg_gst", "m12345678x", "M12345678X"),
        ("ae_trn", "100123456700003", "100123456700003"),
        ("mx_rfc", "abc010203ab9", "ABC010203AB9"),
    ],
)
def test_valid_tax_ids_come_back_in_stripes_canonical_form(tax_type, given, canonical):
    assert tax_id_normalize(tax_type=tax_type, value=given) == canonical


@pytest.mark.parametrize(
    ("tax_type", "given"),
    [
        ("eu_vat", "XX123456789"),  # no such member state
        ("eu_vat", "DE12345678"),  # Germany has nine digits
        ("gb_vat", "GB123456789"),  # HMRC's check digits fail
        ("au_abn", "12345678901"),  # the ABN checksum fails
        ("us_ein", "00-1234567"),  # no EIN starts with 00
        ("ca_gst_hst", "123456789"),  # the RT program account is missing
        ("in_gst", "22AAAAA0000A1Z5"),  # the GSTIN check character is wrong
        ("ch_vat", "CHE-123.456.789 MWST"),  # the UID check digit is wrong
        ("no_vat", "123456789MVA"),  # the organisation number's check digit is wrong
        ("jp_cn", "1234567890123"),  # the corporate number's check digit is wrong
        ("za_vat", "5123456789"),  # South African VAT numbers start with 4
        ("mx_rfc", "ABC01020"),
        ("eu_vat", ""),
    ],
)
def test_malformed_tax_ids_are_refused_per_type(tax_type, given):
    with pytest.raises(ValidationFailed) as refused:
        tax_id_normalize(tax_type=tax_type, value=given)
    assert refused.value.code == "invalid_tax_id"
    assert refused.value.details["field"] == "value"
    assert refused.value.details["example"]


def test_an_unvalidated_type_is_unsupported_not_passed_through():
    with pytest.raises(ValidationFailed) as refused:
        tax_id_normalize(tax_type="br_cnpj", value="11.222.333/0001-81")
    assert refused.value.code == "unsupported_tax_id_type"
    assert "eu_vat" in refused.value.details["supported"]
    assert {t["type"] for t in tax_id_types()} == set(refused.value.details["supported"])


def test_addresses_are_checked_for_country_and_postal_code():
    assert billing_address_validate(
        {"line1": " Unter den Linden 1 ", "postal_code": "10117", "country": "de"}
    ) == {
        "line1": "Unter den Linden 1",
        "postal_code": "10117",
        "country": "DE",
    }
    for address, code in (
        ({"postal_code": "1011", "country": "DE"}, "invalid_postal_code"),
        ({"country": "Germany"}, "invalid_address"),
        ({"street": "x", "country": "DE"}, "invalid_address"),
    ):
        with pytest.raises(ValidationFailed) as refused:
            billing_address_validate(address)
        assert refused.value.code == code


# --- on the sandbox: Hooli asks for a tax invoice -------------------------------------------------


@pytest.fixture
def seeded(db, settings):
    return seed_brief_day(settings)


def tax_invoice_body(**params):
    return {
        "kind": "send_tax_invoice",
        "customer_id": HOOLI,
        "ticket_id": "HO-1",
        "params": {"invoice_id": HOOLI_INVOICE, **params},
        "idempotency_key": "hooli-tax-1",
    }


def test_hooli_tax_details_show_what_the_invoice_lacks(seeded, api_as):
    response = api_as(seeded.workspace, Role.L1).get(f"/api/v1/customers/{HOOLI}/tax/")

    assert response.status_code == 200
    body = response.json()
    assert (body["name"], body["tax_exempt"], body["tax_ids"]) == ("Hooli GmbH", "none", [])
    assert body["address"]["city"] == "Berlin" and body["address"]["country"] == "DE"
    assert body["missing"] == ["line1", "postal_code", "tax_id"]
    latest = body["invoices"][0]
    assert (latest["id"], latest["number"], latest["period"]) == (
        HOOLI_INVOICE,
        "HOO-0004",
        "January 6, 2026 – February 6, 2026",
    )
    assert latest["tax"]["display"] == "€188.10"
    assert latest["invoice_pdf"] == "https://sandbox.billing-desk.invalid/i/in_sbx_hooli_04/pdf"
    assert {
        "type": "eu_vat",
        "label": "EU VAT number",
        "example": "a country prefix and number, e.g. DE123456789",
    } in body["supported_tax_id_types"]


def test_correcting_the_details_and_resending_gives_the_pdf_link(seeded, api_as):
    ws = seeded.workspace
    agent = api_as(ws, Role.L1)

    response = agent.post(
        "/api/v1/actions/",
        tax_invoice_body(
            tax_id={"type": "eu_vat", "value": "de 811 907 980"},
            address={
                "line1": "Unter den Linden 1",
                "postal_code": "10117",
                "city": "Berlin",
                "country": "de",
            },
        ),
        format="json",
    )

    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["status"] == "succeeded"
    assert (
        body["result"]["invoice_pdf"]
        == "https://sandbox.billing-desk.invalid/i/in_sbx_hooli_04/pdf"
    )
    # Hooli prefers German (Stripe preferred_locales ["de-DE"], issue 16)
    assert body["customer_message"] == (
        "Ich habe Ihre Rechnung mit Steuerausweis für 6. Januar 2026 – 6. Februar 2026 erstellt. "
        "Sie können sie hier herunterladen: "
        "https://sandbox.billing-desk.invalid/i/in_sbx_hooli_04/pdf. Wenn Sie sie in einem "
        "bestimmten Format benötigen, lassen Sie es mich wissen."
    )
    details = agent.get(f"/api/v1/customers/{HOOLI}/tax/").json()
    assert details["missing"] == []
    assert [(t["type"], t["value"]) for t in details["tax_ids"]] == [("eu_vat", "DE811907980")]
    assert details["address_display"] == "Unter den Linden 1, 10117, Berlin, DE"


@pytest.mark.parametrize(
    ("tax_id", "code"),
    [
        ({"type": "ch_vat", "value": "CHE-123.456.789 MWST"}, "invalid_tax_id"),
        ({"type": "gb_vat", "value": "GB123456789"}, "invalid_tax_id"),
        ({"type": "br_cnpj", "value": "11222333000181"}, "unsupported_tax_id_type"),
    ],
)
def test_a_bad_tax_id_is_refused_before_anything_changes(seeded, api_as, tax_id, code):
    response = api_as(seeded.workspace, Role.L1).post(
        "/api/v1/actions/", tax_invoice_body(tax_id=tax_id), format="json"
    )

    assert response.status_code == 400
    error = response.json()["error"]
    assert (error["code"], error["details"]["first_code"]) == ("invalid_params", code)
    assert not BillingAction.objects.filter(workspace=seeded.workspace).exists()
    assert MirrorCustomer.objects.get(workspace=seeded.workspace, stripe_id=HOOLI).tax_ids == []


def test_tax_details_refuse_strangers(seeded, api_as, make_workspace, client):
    assert client.get(f"/api/v1/customers/{HOOLI}/tax/").status_code == 401
    stranger = api_as(make_workspace("pied-piper"), Role.MANAGER).get(
        f"/api/v1/customers/{HOOLI}/tax/"
    )
    assert (stranger.status_code, stranger.json()["error"]["code"]) == (404, "customer_not_found")


# --- on Stripe -----------------------------------------------------------------------------------

CUS = "cus_RbAcmeCorp0001"
INVOICE = "in_1RbAcmeOpen0023"


def test_on_stripe_the_vat_id_and_address_are_saved_then_the_invoice_link_returned(
    make_workspace, http, api_as, monkeypatch
):
    monkeypatch.setattr(StripeHttpClient, "backoff_scale", 0.0)
    ws = make_stripe_workspace(make_workspace)
    mirror_upsert(workspace=ws, obj=load("customer"))
    paid = load(
        "invoice",
        status="paid",
        amount_paid=340_000,
        amount_remaining=0,
        created=int(time.time()) - 86400,
    )
    mirror_upsert(workspace=ws, obj=paid)
    stripe = StripeMock(http)
    customer = load("customer")
    moved = {
        **customer,
        "address": {**customer["address"], "line1": "1 Harbor Way", "postal_code": "94107"},
    }
    stripe.on("GET", f"/v1/customers/{CUS}", customer)
    stripe.on("POST", f"/v1/customers/{CUS}", moved)
    stripe.on("POST", f"/v1/customers/{CUS}/tax_ids", load("tax_id"))
    stripe.on("GET", f"/v1/invoices/{INVOICE}", paid)

    response = api_as(ws, Role.L1).post(
        "/api/v1/actions/",
        {
            "kind": "send_tax_invoice",
            "customer_id": CUS,
            "ticket_id": "4823",
            "params": {
                "invoice_id": INVOICE,
                "tax_id": {"type": "eu_vat", "value": "DE 811 907 980"},
                "address": {
                    "line1": "1 Harbor Way",
                    "city": "San Francisco",
                    "state": "CA",
                    "postal_code": "94107",
                    "country": "US",
                },
            },
            "idempotency_key": "acme-tax-1",
        },
        format="json",
    )

    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["status"] == "succeeded", body
    (created,) = stripe.requests_to("POST", f"/v1/customers/{CUS}/tax_ids")
    assert params_of(created) == {"type": "eu_vat", "value": "DE811907980"}
    (updated,) = stripe.requests_to("POST", f"/v1/customers/{CUS}")
    assert params_of(updated)["address[line1]"] == "1 Harbor Way"
    assert body["result"]["invoice_pdf"] == paid["invoice_pdf"]
    assert paid["invoice_pdf"] in body["customer_message"]
    assert body["customer_message"].startswith("I've generated your tax invoice for March 28, 2026")
