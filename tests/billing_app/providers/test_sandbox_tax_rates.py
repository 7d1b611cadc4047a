"""A subscription's ``default_tax_rates``: the sandbox's renewals bill them as Stripe does,
and the panel's next invoice and the investigation's agree (Hooli, 19 % German VAT)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from billing_app.demo.seed import demo_seed
from billing_app.models import MirrorCustomer, MirrorInvoice, MirrorSubscription
from billing_app.providers.sandbox import sandbox_advance
from billing_app.selectors.breakdown import invoice_breakdown
from billing_app.selectors.context import customer_context

from ..context_support import forget_provider_health

AS_OF = datetime(2026, 1, 15, 12, tzinfo=UTC)
HOOLI, HOOLI_PLAN = "cus_sbx_hooli", "sub_sbx_hooli"
# Hooli's period began nine days before AS_OF; it renews a month later.
HOOLI_RENEWAL = datetime(2026, 2, 6, 12, tzinfo=UTC)


@pytest.fixture
def seeded(db, settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    return demo_seed(as_of=AS_OF)


@pytest.fixture(autouse=True)
def _forget_provider_health(db):
    yield
    forget_provider_health()


def test_hooli_subscription_names_its_vat_rate(seeded):
    sub = MirrorSubscription.objects.get(workspace=seeded.workspace, stripe_id=HOOLI_PLAN)

    [rate] = sub.data["default_tax_rates"]
    assert {k: rate[k] for k in ("id", "object", "percentage", "inclusive", "active")} == {
        "id": "txr_sbx_de_vat_19",
        "object": "tax_rate",
        "percentage": 19,
        "inclusive": False,
        "active": True,
    }
    assert (rate["country"], rate["display_name"], rate["jurisdiction"]) == ("DE", "VAT", "DE")


def test_the_panel_and_the_investigation_quote_the_same_next_invoice(seeded):
    customer = MirrorCustomer.objects.get(workspace=seeded.workspace, stripe_id=HOOLI)
    panel = customer_context(workspace=seeded.workspace, customer=customer)
    investigation = invoice_breakdown(
        workspace=seeded.workspace, customer_id=HOOLI, invoice_id="in_sbx_hooli_04"
    )

    assert panel["payment_status"]["next_invoice"]["amount"]["display"] == "€1,178.10"
    assert investigation["next_invoice"]["total"]["display"] == "€1,178.10"


def test_a_renewal_bills_the_subscription_tax_rate(seeded):
    # when the sandbox clock passes Hooli's period end
    advanced = sandbox_advance(workspace=seeded.workspace, to=HOOLI_RENEWAL + timedelta(hours=1))

    # then the renewal invoice adds 19 % VAT on top, as Stripe does: total = subtotal + tax
    sub = MirrorSubscription.objects.get(workspace=seeded.workspace, stripe_id=HOOLI_PLAN)
    invoice = MirrorInvoice.objects.get(workspace=seeded.workspace, stripe_id=sub.latest_invoice_id)
    assert invoice.stripe_id in advanced.invoice_ids
    assert (invoice.billing_reason, invoice.subtotal, invoice.tax, invoice.total) == (
        "subscription_cycle",
        99_000,
        18_810,
        117_810,
    )
    [tax] = invoice.data["total_taxes"]
    assert (tax["amount"], tax["tax_rate_details"]["tax_rate"], tax["taxable_amount"]) == (
        18_810,
        "txr_sbx_de_vat_19",
        99_000,
    )
