"""The endpoints the panel needs beside the context: plans to change to, the Refresh button,
the vocabulary, and what ``me`` tells the panel about approvals."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.conf import settings
from django.utils import timezone

from billing_app.catalog import Role
from billing_app.demo.seed import ACME, demo_seed
from billing_app.models import MirrorCustomer
from billing_app.services.identity import agent_sign_in
from billing_app.vocabulary import vocabulary_payload
from helpdesk_connectors.base import AgentProfile, HelpdeskIdentity

BRIEF_DAY = datetime(2026, 1, 15, 12, 0, tzinfo=UTC)


@pytest.fixture
def seeded(db):
    return demo_seed(as_of=BRIEF_DAY)


@pytest.fixture
def agent(seeded, make_workspace):
    """``agent(role)`` → an API client of the demo workspace (or ``other=True``: another tenant)."""
    from rest_framework.test import APIClient

    def client_for(role: Role, *, other: bool = False):
        workspace = make_workspace() if other else seeded.workspace
        installation = workspace.installation_links.select_related("installation").first()
        identity = HelpdeskIdentity(
            installation=installation.installation,
            agent=AgentProfile(
                agent_id=f"{role.value}-{workspace.slug}",
                name=f"{role.label}",
                email=f"{role.value}@agents.example",
                helpdesk_role="agent",
            ),
        )
        _m, minted = agent_sign_in(identity=identity, workspace=workspace, role_override=role)
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {minted.token}")
        return client

    return client_for


def test_plans_lists_the_same_interval_plans_priced_for_the_seat_count(agent):
    # given an L2 agent on Acme (50 seats of Enterprise Pro, monthly)
    client = agent(Role.L2)

    # when the panel asks what Acme can change to
    response = client.get(f"/api/v1/customers/{ACME}/plans/")

    # then monthly USD plans come back priced for 50 seats, the current one marked
    assert response.status_code == 200
    body = response.json()
    assert body["subscription_id"] == "sub_sbx_acme_plan"
    assert body["quantity"] == 50
    plans = {p["id"]: p for p in body["plans"]}
    assert plans["price_sbx_enterprise_pro__monthly"]["current"] is True
    plus = plans["price_sbx_enterprise_plus__monthly"]
    assert plus["amount"] == {
        "amount": 320_000,
        "currency": "USD",
        "exponent": 2,
        "display": "$3,200.00",
    }
    assert plus["display"] == "Enterprise Plus ($3,200/month) · $64 × 50 seats"
    assert {p["interval"] for p in body["plans"]} == {"month"}
    assert all(p["amount"]["currency"] == "USD" for p in body["plans"])


def test_plans_leave_out_add_on_products(agent):
    body = agent(Role.L1).get(f"/api/v1/customers/{ACME}/plans/").json()
    names = {p["name"] for p in body["plans"]}
    assert not names & {"Advanced Analytics", "Priority Support", "API Extra Pack"}


def test_plans_of_an_unknown_or_foreign_customer_are_404(agent):
    # given an agent of another workspace
    outsider = agent(Role.MANAGER, other=True)

    # when they ask for Acme's plans, or for a customer that does not exist
    foreign = outsider.get(f"/api/v1/customers/{ACME}/plans/")
    missing = agent(Role.L2).get("/api/v1/customers/cus_nope/plans/")

    # then neither exists for them
    assert foreign.status_code == 404
    assert foreign.json()["error"]["code"] == "customer_not_found"
    assert missing.status_code == 404


def test_plans_need_a_session(client, seeded):
    response = client.get(f"/api/v1/customers/{ACME}/plans/")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "not_authenticated"


def test_refresh_brings_the_mirrored_data_up_to_date(
    agent, seeded, django_capture_on_commit_callbacks
):
    # given Acme's mirror last synced two hours ago
    old = timezone.now() - timedelta(hours=2)
    MirrorCustomer.objects.filter(workspace=seeded.workspace, stripe_id=ACME).update(
        bundle_synced_at=old
    )

    # when the agent presses Refresh (the task is queued after commit, and runs in-process)
    client = agent(Role.L1)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(f"/api/v1/customers/{ACME}/refresh/")

    # then a refresh runs (in-process here) and the data's age is now
    assert response.status_code == 202
    assert response.json() == {"refreshing": True}
    synced = MirrorCustomer.objects.get(workspace=seeded.workspace, stripe_id=ACME).bundle_synced_at
    assert synced > old + timedelta(hours=1)


def test_refresh_of_a_foreign_customer_is_404_and_refreshes_nothing(agent, seeded):
    old = timezone.now() - timedelta(hours=2)
    MirrorCustomer.objects.filter(workspace=seeded.workspace, stripe_id=ACME).update(
        bundle_synced_at=old
    )
    response = agent(Role.MANAGER, other=True).post(f"/api/v1/customers/{ACME}/refresh/")
    assert response.status_code == 404
    synced = MirrorCustomer.objects.get(workspace=seeded.workspace, stripe_id=ACME).bundle_synced_at
    assert synced == old


def test_refresh_answers_only_post(agent):
    assert agent(Role.L1).get(f"/api/v1/customers/{ACME}/refresh/").status_code == 405


@pytest.mark.parametrize(
    ("role", "can_approve"),
    [(Role.L1, False), (Role.L2, False), (Role.MANAGER, True), (Role.SPECIALIST, False)],
)
def test_me_says_who_decides_approvals(agent, role, can_approve):
    assert agent(role).get("/api/v1/me/").json()["can_approve"] is can_approve


def test_me_names_the_approvers_of_each_action_by_size(agent):
    # given a Billing Specialist, who refunds up to $1,000 and asks a Manager above it
    actions = {a["kind"]: a for a in agent(Role.SPECIALIST).get("/api/v1/me/").json()["actions"]}

    # then the refund row carries its approval routes, smallest threshold first
    routes = actions["issue_refund"]["approval_routes"]
    assert routes, "the matrix routes refunds to approvers"
    assert [r["threshold"] for r in routes] == sorted(r["threshold"] for r in routes)
    assert "manager" in routes[0]["roles"]
    assert actions["issue_refund"]["mode"] == "direct"
    assert actions["issue_refund"]["limit"] == 100_000
    assert actions["issue_refund"]["above_limit"] == "request"


def test_vocabulary_is_the_servers_one_table_of_words(workspace, api_as):
    # given any signed-in agent
    client = api_as(workspace, Role.L1)

    # when the panel loads the vocabulary at start
    response = client.get("/api/v1/vocabulary/")

    # then it is billing_app.vocabulary's payload, which the browser may keep a while
    assert response.status_code == 200
    assert response.json() == vocabulary_payload()
    assert response["Cache-Control"] == "private, max-age=300"
    body = response.json()
    assert body["refund_reasons"][0] == ["requested_by_customer", "Requested by customer"]
    assert ["too_expensive", "Too expensive"] in body["cancellation_feedback"]
    assert ["issue_refund", "Issue refund"] in body["action_labels"]
    assert ["specialist", "Billing Specialist"] in body["role_labels"]
    assert body["decline_codes"]["expired_card"] == {
        "category": "card_expired",
        "agent_text": "Card expired",
        "customer_text": "an expired card",
    }


def test_vocabulary_needs_a_session(db, client):
    response = client.get("/api/v1/vocabulary/")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "not_authenticated"


def test_the_panel_scripts_hold_no_copy_of_the_vocabulary():
    # given the panel's JavaScript as served
    scripts = "\n".join(
        path.read_text() for path in sorted((settings.BASE_DIR / "static" / "panel").glob("*.js"))
    )

    # then none of the server's tables is copied into it (labels come from GET vocabulary/)
    copied = [
        text
        for table in ("refund_reasons", "cancellation_feedback", "pause_behaviors", "tax_id_types")
        for _key, text in vocabulary_payload()[table]
        if f'"{text}"' in scripts
    ]
    assert copied == []
    assert "ZERO_DECIMAL" not in scripts and '"JPY' not in scripts
