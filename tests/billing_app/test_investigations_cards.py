"""The evidence the panel's investigation cards add to the existing endpoints.

Given the demo sandbox as ``seed_demo --as-of 2026-01-15`` leaves it, each scenario's
customer gets the fields its card shows: the duplicate pair's root cause, the tax
invoice's jurisdiction and missing fields in words, the refund eligibility (window,
refundable amount, pattern) and the plan change's "what's included" and follow-up.
The root cause's three outcomes are also checked on hand-made charges.
"""

from __future__ import annotations

import pytest

from billing_app.catalog import Role
from billing_app.models import BillingAction, MirrorRefund
from billing_app.playbook import onboarding_follow_up
from billing_app.selectors.breakdown.invoice import breakdown_error_check
from billing_app.selectors.duplicates import duplicate_root_cause
from billing_app.selectors.tax import missing_words

from .context_support import AS_OF, seed_brief_day


@pytest.fixture
def ws(db, settings):
    return seed_brief_day(settings).workspace


def get(client, path):
    response = client.get(f"/api/v1/{path}")
    assert response.status_code == 200, response.json()
    return response.json()


# --- 1. charged twice: the root cause -----------------------------------------------------------


def charge(**kw):
    base = {
        "payment_intent_id": "pi_1",
        "invoice_id": "in_1",
        "invoice_number": "INV-1",
        "method": "Visa 4242",
    }
    return base | kw


def test_root_cause_for_globex_is_a_gateway_retry(ws, api_as):
    (pair,) = get(api_as(ws, Role.L1), "customers/cus_sbx_globex/duplicates/")["pairs"]

    cause = pair["root_cause_detail"]
    assert cause["kind"] == "gateway_retry"
    assert cause["label"] == "Payment gateway retry"
    assert cause["evidence"] == [
        "The second charge was a new payment attempt on the same card (Visa 1881) and paid "
        "no invoice."
    ]
    assert pair["root_cause"] == (
        "Likely a payment gateway retry: the second charge was a new payment attempt on the "
        "same card (Visa 1881) and paid no invoice."
    )


def test_one_payment_attempt_charged_twice_is_a_gateway_retry():
    cause = duplicate_root_cause(charge(), charge(invoice_id=None), same_card=True)
    assert cause["kind"] == "gateway_retry"
    assert cause["evidence"] == ["Both charges belong to the same payment attempt."]


def test_two_attempts_for_the_same_invoice_on_one_card_is_an_issuer_duplicate():
    cause = duplicate_root_cause(charge(), charge(payment_intent_id="pi_2"), same_card=True)
    assert cause["kind"] == "issuer_duplicate"
    assert cause["label"] == "Duplicate authorisation by the card issuer"


def test_charges_paying_different_invoices_are_separate_charges():
    cause = duplicate_root_cause(
        charge(),
        charge(payment_intent_id="pi_2", invoice_id="in_2", invoice_number="INV-2"),
        same_card=True,
    )
    assert cause["kind"] == "separate_charges"
    assert cause["evidence"] == ["Each charge paid its own invoice (INV-1 and INV-2)."]
    assert cause["advice"].startswith("Check with the customer before refunding")


def test_charges_on_different_cards_are_separate_charges():
    cause = duplicate_root_cause(
        charge(), charge(payment_intent_id="pi_2", invoice_id=None), same_card=False
    )
    assert cause["kind"] == "separate_charges"


# --- 6. tax invoice: jurisdiction and missing fields in words ------------------------------------


def test_tax_details_for_hooli_name_the_jurisdiction_and_what_is_missing(ws, api_as):
    body = get(api_as(ws, Role.L1), "customers/cus_sbx_hooli/tax/")

    assert body["missing"] == ["line1", "postal_code", "tax_id"]
    assert body["missing_labels"] == [
        "street address",
        "postal code",
        "tax ID (such as a VAT number)",
    ]
    assert body["missing_display"] == (
        "Missing: street address, postal code and tax ID (such as a VAT number)."
    )
    jurisdiction = body["jurisdiction"]
    assert (jurisdiction["country"], jurisdiction["treatment"]) == ("DE", "Taxed")
    assert [r["display"] for r in jurisdiction["tax_rates"]] == ["VAT Germany 19%"]


def test_nothing_missing_reads_as_nothing():
    assert missing_words([]) == ""
    assert missing_words(["city"]) == "Missing: city."


# --- 4. refund: eligibility, window, pattern ------------------------------------------------------


def test_refund_eligibility_for_vandelay(ws, api_as):
    body = get(api_as(ws, Role.L1), "customers/cus_sbx_vandelay/refund-eligibility/")

    assert body["window_days"] == 180
    latest = body["charges"][0]
    assert latest["eligible"] is True
    assert latest["refundable"]["display"] == "$1,490.00"
    assert latest["invoice_number"] == "VDL-0003"
    assert (latest["days_left"], latest["window_display"]) == (177, "177 of 180 days left")
    assert body["pattern"] == {
        "refunds": 0,
        "threshold": 3,
        "days": 90,
        "reached": False,
        "display": "0 refunds in the last 90 days (a refund pattern starts at 3).",
    }
    assert body["summary"] == (
        "Eligible: $1,490.00 can be refunded on the payment of Jan 12, 2026 "
        "(177 of 180 days left in the refund window)."
    )
    assert body["action"] == {
        "kind": "issue_refund",
        "label": "Refund",
        "params": {"charge_id": latest["charge_id"], "amount": 149_000, "currency": "USD"},
    }


def test_refund_eligibility_counts_the_pattern_and_refunds_in_flight(ws, api_as):
    agent = api_as(ws, Role.L1)
    first = get(agent, "customers/cus_sbx_vandelay/refund-eligibility/")["charges"][0]
    for n in range(3):
        MirrorRefund.objects.create(
            workspace=ws,
            stripe_id=f"re_test_{n}",
            charge_id=first["charge_id"],
            customer_id="cus_sbx_vandelay",
            amount=100,
            currency="usd",
            status="succeeded",
            created=AS_OF,
            data={},
        )

    body = get(agent, "customers/cus_sbx_vandelay/refund-eligibility/")

    assert body["pattern"]["reached"] is True
    assert body["pattern"]["display"].startswith("3 refunds in the last 90 days — a refund pattern")
    # what the mirror has not refunded yet is less by what our refunds took
    assert body["charges"][0]["refundable"]["amount"] == 149_000 - 300


def test_a_payment_outside_the_window_says_why(ws, api_as):
    ws.refund_window_days = 2
    ws.save(update_fields=["refund_window_days"])

    body = get(api_as(ws, Role.L1), "customers/cus_sbx_vandelay/refund-eligibility/")

    assert body["eligible"] is False
    assert body["action"] is None
    assert body["charges"][0]["reason"] == "Made 3 days ago, outside the 2-day refund window."
    assert body["denied_charge_id"] == body["charges"][0]["charge_id"]


def test_refund_eligibility_of_another_tenant_is_404(ws, api_as):
    response = api_as(ws, Role.L1).get("/api/v1/customers/cus_nobody/refund-eligibility/")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "customer_not_found"


# --- 3. plan change: what's included, direction, follow-up ------------------------------------------


def test_plan_change_options_for_hooli_say_what_is_included(ws, api_as):
    body = get(api_as(ws, Role.L1), "customers/cus_sbx_hooli/plan-change/")

    assert body["current"]["name"] == "Growth"
    assert body["current"]["features"] == ["Unlimited projects", "EU data residency"]
    (plus,) = body["options"]
    assert (plus["name"], plus["direction"], plus["difference"]) == (
        "Growth Plus",
        "upgrade",
        "+€500.00 monthly",
    )
    assert plus["features"] == ["Everything in Growth", "Advanced reporting", "Priority support"]
    assert plus["follow_up"]["message"].startswith(
        "Now that you're on Growth Plus, would a short onboarding call"
    )
    assert body["latest_change"] is None


def test_after_an_upgrade_the_follow_up_is_proposed(ws, api_as):
    agent = api_as(ws, Role.L2)
    done = agent.post(
        "/api/v1/actions/",
        {
            "kind": "change_plan",
            "customer_id": "cus_sbx_hooli",
            "ticket_id": "T-1",
            "params": {
                "subscription_id": "sub_sbx_hooli",
                "price_id": "price_sbx_growth_plus__eur_monthly",
            },
            "idempotency_key": "hooli-up",
        },
        format="json",
    ).json()
    assert done["status"] == "succeeded", done
    # and the plan-change message now says what is included (in German: Hooli's Stripe
    # preferred_locales is ["de-DE"], issue 16)
    assert done["customer_message"].endswith(
        "Das ist enthalten: Everything in Growth, Advanced reporting, Priority support"
    )

    change = get(agent, "customers/cus_sbx_hooli/plan-change/")["latest_change"]

    assert (change["from_plan"], change["to_plan"], change["direction"]) == (
        "Growth",
        "Growth Plus",
        "upgrade",
    )
    assert change["action_id"] == str(BillingAction.objects.get(pk=done["id"]).pk)
    assert change["follow_up"]["note"] == (
        "Follow-up: schedule an onboarding call with Hooli GmbH for the Growth Plus features "
        "(Everything in Growth, Advanced reporting, Priority support)."
    )


def test_the_follow_up_without_features_drops_the_list():
    follow = onboarding_follow_up(customer="Acme", new_plan="Pro", features=[])
    assert follow["message"] == (
        "Now that you're on Pro, would a short onboarding call help your team get the most out "
        "of it? Reply with a few times that suit you and we'll send an invite."
    )
    assert (
        follow["note"] == "Follow-up: schedule an onboarding call with Acme for the Pro features."
    )


# --- 5. overcharged: a genuine error or an explained invoice -------------------------------------


def test_initechs_invoice_is_explained_so_no_credit_is_prefilled(ws, api_as):
    body = get(
        api_as(ws, Role.L1), "customers/cus_sbx_initech/invoices/in_sbx_initech_04/breakdown/"
    )

    assert body["error_check"]["genuine_error"] is False
    assert body["error_check"]["display"].startswith("Every difference from the usual invoice")
    assert "amount" not in body["actions"][0]["params"]


def test_an_unexplained_amount_is_a_genuine_error_with_the_credit_prefilled():
    other = {"kind": "other", "amount": {"amount": 4_500, "currency": "USD"}}
    seats = {"kind": "seats", "amount": {"amount": 45_000, "currency": "USD"}}

    check = breakdown_error_check([seats, other], "USD")

    assert check["genuine_error"] is True
    assert check["amount"]["display"] == "$45.00"
    assert check["display"].startswith("$45.00 of this invoice is not explained")
    assert breakdown_error_check([seats], "USD")["genuine_error"] is False


# --- the demo host gives the ticket's subject and tags (they choose the card) -------------------


def test_demo_ticket_carries_its_subject_and_tags_for_the_panel(client, settings, ws):
    settings.DEMO_MODE = True

    body = client.get("/demo/?role=l1&scenario=tax-invoice").content.decode()

    assert 'data-subject="We need a tax invoice with our VAT number"' in body
    assert 'data-tags="billing tax_invoice"' in body


# --- the card asks for a message that may not be fillable yet -----------------------------------


def test_a_message_not_ready_is_200_with_what_is_missing_when_asked_if_ready(ws, api_as):
    agent = api_as(ws, Role.L1)
    path = "/api/v1/customers/cus_sbx_acme/playbook/plan_change/"

    plain = agent.get(path)
    asked = agent.get(path, {"if_ready": "true"})

    assert plain.status_code == 422
    assert asked.status_code == 200
    assert asked.json() == {
        "customer_id": "cus_sbx_acme",
        "scenario": "plan_change",
        "ready": False,
        "missing": {
            "code": plain.json()["error"]["code"],
            "message": plain.json()["error"]["message"],
        },
    }


def test_a_ready_message_says_so(ws, api_as):
    body = get(
        api_as(ws, Role.L1), "customers/cus_sbx_globex/playbook/charged_twice/?if_ready=true"
    )

    assert body["ready"] is True
    assert body["message"].startswith("We found a duplicate charge of $299.00.")
