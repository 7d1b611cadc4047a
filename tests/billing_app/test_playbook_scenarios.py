"""The brief's six playbook messages for the demo customers, filled with their figures.

Each expected text is the brief's "Customer communication" wording with the
placeholders filled from the seeded sandbox (``seed_demo --as-of 2026-01-15``);
the workspace's own wording (``PlaybookTemplate``, edited in admin) replaces it
for the panel and for the actions that resolve a scenario.
"""

from __future__ import annotations

import pytest
from django.urls import reverse

from billing_app.catalog import Role
from billing_app.models import BillingAction, MirrorCharge, PlaybookTemplate

from .context_support import seed_brief_day

BRIEF_DUPLICATE = (
    "We found a duplicate charge of {amount}. We've issued an immediate refund. "
    "It will appear on your statement within 5-7 business days."
)


@pytest.fixture
def seeded(db, settings):
    return seed_brief_day(settings)


@pytest.fixture
def ws(seeded):
    return seeded.workspace


def message(client, customer_id, scenario, **query):
    response = client.get(f"/api/v1/customers/{customer_id}/playbook/{scenario}/", query)
    assert response.status_code == 200, response.json()
    return response.json()


def act(client, kind, customer_id, params, key, ticket="T-1"):
    response = client.post(
        "/api/v1/actions/",
        {
            "kind": kind,
            "customer_id": customer_id,
            "ticket_id": ticket,
            "params": params,
            "idempotency_key": key,
        },
        format="json",
    )
    assert response.status_code == 201, response.json()
    return response.json()


# --- 1. "I was charged twice" — Globex --------------------------------------------------------


def test_charged_twice_for_globex(ws, api_as):
    agent = api_as(ws, Role.L1)

    body = message(agent, "cus_sbx_globex", "charged_twice")

    assert body["message"] == BRIEF_DUPLICATE.format(amount="$299.00")
    assert body["title"] == 'Scenario 1: "I was charged twice"'
    assert (body["source"], body["data"]) == ("default", {"amount": "$299.00"})
    assert body["related"]["charge_ids"] == ["ch_sbx_globex_05", "ch_sbx_globex_duplicate"]

    # and once refunded, the message is the action's, the same
    done = act(
        api_as(ws, Role.MANAGER),
        "refund_duplicate_charge",
        "cus_sbx_globex",
        {"charge_ids": ["ch_sbx_globex_05", "ch_sbx_globex_duplicate"]},
        "gx-dup",
    )
    assert done["customer_message"] == BRIEF_DUPLICATE.format(amount="$299.00")
    assert message(agent, "cus_sbx_globex", "charged_twice")["message"] == done["customer_message"]


# --- 2. "My payment failed" — Northwind ---------------------------------------------------------


def test_payment_failed_for_northwind_with_link_and_grace_period(ws, api_as):
    agent = api_as(ws, Role.L1)
    link = "https://sandbox.billing-desk.invalid/i/in_sbx_northwind_07"

    before = message(agent, "cus_sbx_northwind", "payment_failed")
    assert before["message"] == (
        "Your payment of $149.00 failed due to an expired card. Please update your payment "
        f"method using this link: {link}."
    )

    # when the agent sends the payment link and gives a week's grace
    sent = act(
        agent,
        "generate_payment_link",
        "cus_sbx_northwind",
        {"invoice_id": "in_sbx_northwind_07"},
        "nw-link",
    )
    grace = act(
        agent,
        "extend_grace_period",
        "cus_sbx_northwind",
        {"subscription_id": "sub_sbx_northwind", "days": 7, "invoice_id": "in_sbx_northwind_07"},
        "nw-grace",
    )

    expected = (
        "Your payment of $149.00 failed due to an expired card. Please update your payment "
        f"method using this link: {link}. Your account will remain active for 7 days while you update."
    )
    assert sent["result"]["url"] == link
    assert grace["customer_message"] == expected
    after = message(agent, "cus_sbx_northwind", "payment_failed")
    assert after["message"] == expected
    assert after["data"]["days"] == "7"
    assert after["related"]["link_action_id"] == sent["id"]


# --- 3. "I want to change my plan" — Hooli upgrades --------------------------------------------


def test_plan_change_for_hooli(ws, api_as):
    manager = api_as(ws, Role.L2)

    done = act(
        manager,
        "change_plan",
        "cus_sbx_hooli",
        {"subscription_id": "sub_sbx_hooli", "price_id": "price_sbx_growth_plus__eur_monthly"},
        "hooli-upgrade",
    )

    # Hooli's Stripe preferred_locales is ["de-DE"]: its messages are German (issue 16),
    # money and dates too; the plan's features are the catalogue's own words.
    expected = (
        "Ihr Tarif wurde von Growth auf Growth Plus umgestellt. Ihr neuer Betrag (monatlich) ist "
        "1.490,00\xa0€ (gültig ab 15. Januar 2026). Das ist enthalten: Everything in Growth, "
        "Advanced reporting, Priority support"
    )
    assert done["status"] == "succeeded"
    assert done["customer_message"] == expected
    assert message(manager, "cus_sbx_hooli", "plan_change")["message"] == expected


# --- 4. "I want a refund" — Vandelay, approved and denied ---------------------------------------


def test_refund_approved_for_vandelay(ws, api_as):
    manager = api_as(ws, Role.MANAGER)

    done = act(
        manager,
        "issue_refund",
        "cus_sbx_vandelay",
        {
            "charge_id": "ch_sbx_vandelay_annual",
            "amount": 149_000,
            "currency": "USD",
            "reason": "requested_by_customer",
            "comment": "Your plan is back on monthly billing.",
        },
        "vdl-refund",
    )

    expected = (
        "We've processed your refund of $1,490.00. The credit will appear within 5-7 business "
        "days. Your plan is back on monthly billing."
    )
    assert done["customer_message"] == expected
    for scenario, query in (
        ("refund_approved", {}),
        ("refund", {"variant": "approved"}),
        ("refund", {}),
    ):
        assert message(manager, "cus_sbx_vandelay", scenario, **query)["message"] == expected


def test_refund_denied_names_the_rule_the_charge_fails(ws, api_as):
    agent = api_as(ws, Role.L1)
    old = (
        MirrorCharge.objects.filter(workspace=ws, customer_id="cus_sbx_acme")
        .order_by("created")
        .first()
    )

    body = message(
        agent,
        "cus_sbx_acme",
        "refund",
        variant="denied",
        charge_id=old.stripe_id,
        alternative="a credit on your next invoice",
    )

    assert body["scenario"] == "refund_denied" and body["variant"] == "denied"
    assert body["message"] == (
        "Based on our refund policy, this charge isn't eligible for refund because it was made "
        "more than 180 days ago. However, I can offer a credit on your next invoice."
    )


def test_refund_denied_by_an_approver_gives_their_reason(ws, api_as):
    # given a Specialist asked to refund Vandelay's annual plan (above their $1,000) and the
    # Manager said no
    requested = act(
        api_as(ws, Role.SPECIALIST),
        "issue_refund",
        "cus_sbx_vandelay",
        {
            "charge_id": "ch_sbx_vandelay_annual",
            "amount": 149_000,
            "currency": "USD",
            "reason": "dissatisfaction",
        },
        "vdl-ask",
    )
    assert requested["status"] == "pending_approval"
    approval_id = BillingAction.objects.get(pk=requested["id"]).approval.pk
    denied = api_as(ws, Role.MANAGER).post(
        f"/api/v1/approvals/{approval_id}/deny/",
        {"comment": "the annual plan was used for three days of onboarding"},
        format="json",
    )
    assert denied.status_code == 200, denied.json()

    body = message(api_as(ws, Role.SPECIALIST), "cus_sbx_vandelay", "refund_denied")

    assert body["message"] == (
        "Based on our refund policy, this charge isn't eligible for refund because the annual "
        "plan was used for three days of onboarding."
    )
    assert body["related"]["action_id"] == requested["id"]


# --- 5. "I was overcharged" — Initech -----------------------------------------------------------


def test_overcharged_for_initech(ws, api_as):
    body = message(api_as(ws, Role.L1), "cus_sbx_initech", "overcharge")

    assert body["message"] == (
        "I reviewed your invoice. The $1,323.99 charge includes: 35 × Business $1,050.00; "
        "prorated seat change 20 → 35 from December 22, 2025 $273.99. This is because seats were "
        "increased from 20 to 35 on December 22, 2025: the 19 days left of that billing period were "
        "charged for 35 seats ($639.31) less the unused time already paid for 20 ($365.32), "
        "$273.99 in total; and the monthly charge for 35 seats is $1,050.00 instead of $600.00 for "
        "20. Your next invoice will be $1,050.00."
    )
    assert body["related"] == {"invoice_id": "in_sbx_initech_04"}
    assert (
        message(api_as(ws, Role.L1), "cus_sbx_initech", "overcharged")["message"] == body["message"]
    )


# --- 6. "I need a tax invoice" — Hooli ----------------------------------------------------------


def test_tax_invoice_for_hooli(ws, api_as):
    body = message(
        api_as(ws, Role.L1), "cus_sbx_hooli", "tax_invoice", invoice_id="in_sbx_hooli_03"
    )

    # Hooli prefers German (Stripe preferred_locales ["de-DE"]): the message is German.
    assert body["message"] == (
        "Ich habe Ihre Rechnung mit Steuerausweis für 6. Dezember 2025 – 6. Januar 2026 erstellt. "
        "Sie können sie hier herunterladen: https://sandbox.billing-desk.invalid/i/in_sbx_hooli_03/"
        "pdf. Wenn Sie sie in einem bestimmten Format benötigen, lassen Sie es mich wissen."
    )


# --- the workspace's own wording ----------------------------------------------------------------


def test_workspace_wording_is_used_by_the_panel_and_by_the_action(ws, api_as, admin_user):
    PlaybookTemplate.objects.create(
        workspace=ws,
        scenario="charged_twice",
        body="Sorry! We charged you {amount} twice and refunded the second one today.",
        updated_by=admin_user,
    )
    agent = api_as(ws, Role.L1)

    body = message(agent, "cus_sbx_globex", "charged_twice")
    done = act(
        api_as(ws, Role.MANAGER),
        "refund_duplicate_charge",
        "cus_sbx_globex",
        {"charge_ids": ["ch_sbx_globex_05", "ch_sbx_globex_duplicate"]},
        "gx-dup-own",
    )

    expected = "Sorry! We charged you $299.00 twice and refunded the second one today."
    assert (body["message"], body["source"]) == (expected, "workspace")
    assert done["customer_message"] == expected
    # another workspace keeps the brief's wording, and a deactivated template stops applying
    PlaybookTemplate.objects.filter(workspace=ws).update(is_active=False)
    assert message(agent, "cus_sbx_globex", "charged_twice")["source"] == "default"


def test_admin_edits_a_template_and_refuses_one_it_could_not_fill(ws, admin_client, admin_user):
    add = reverse("admin:billing_app_playbooktemplate_add")
    page = admin_client.get(add)
    assert page.status_code == 200
    assert "We found a duplicate charge of {amount}." in page.content.decode()

    refused = admin_client.post(
        add,
        {
            "workspace": ws.pk,
            "scenario": "refund",
            "variant": "denied",
            "body": "No: {reason}, {amount.__class__}",
            "is_active": "on",
        },
    )
    assert refused.status_code == 200
    assert "Unknown placeholders" in refused.content.decode()
    no_variant = admin_client.post(
        add,
        {"workspace": ws.pk, "scenario": "refund", "variant": "", "body": "ok", "is_active": "on"},
    )
    assert "needs a variant" in no_variant.content.decode()
    assert not PlaybookTemplate.objects.exists()

    saved = admin_client.post(
        add,
        {
            "workspace": ws.pk,
            "scenario": "refund",
            "variant": "denied",
            "body": "We can't refund this one: {reason}.[[ We can offer {alternative}.]]",
            "is_active": "on",
        },
    )
    assert saved.status_code == 302
    template = PlaybookTemplate.objects.get()
    assert (template.scenario, template.variant, template.updated_by) == (
        "refund",
        "denied",
        admin_user,
    )
    old = (
        MirrorCharge.objects.filter(workspace=ws, customer_id="cus_sbx_acme")
        .order_by("created")
        .first()
    )
    from billing_app.selectors.playbook import playbook_message

    text = playbook_message(
        workspace=ws,
        customer_id="cus_sbx_acme",
        scenario="refund_denied",
        params={"charge_id": old.stripe_id},
    )["message"]
    assert text == "We can't refund this one: it was made more than 180 days ago."


# --- refusals -----------------------------------------------------------------------------------


def test_a_scenario_without_its_data_or_unknown_is_refused_with_a_code(
    ws, api_as, make_workspace, client
):
    agent = api_as(ws, Role.L1)

    missing = agent.get("/api/v1/customers/cus_sbx_acme/playbook/payment_failed/")
    unknown = agent.get("/api/v1/customers/cus_sbx_acme/playbook/free_money/")
    bad_variant = agent.get("/api/v1/customers/cus_sbx_acme/playbook/refund/", {"variant": "maybe"})

    assert (missing.status_code, missing.json()["error"]["code"]) == (422, "no_payment_failure")
    assert (unknown.status_code, unknown.json()["error"]["code"]) == (404, "unknown_scenario")
    assert bad_variant.status_code == 400
    assert client.get("/api/v1/customers/cus_sbx_globex/playbook/charged_twice/").status_code == 401
    stranger = api_as(make_workspace("hooli-xyz"), Role.MANAGER).get(
        "/api/v1/customers/cus_sbx_globex/playbook/charged_twice/"
    )
    assert (stranger.status_code, stranger.json()["error"]["code"]) == (404, "customer_not_found")
