"""``GET /demo/``: the demo host page (demo mode only)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from billing_app.demo.seed import DemoSeeder
from billing_app.demo.tickets import ALL_SCENARIOS, SCENARIOS


@pytest.fixture
def demo_on(settings):
    settings.DEMO_MODE = True
    return settings


def test_demo_page_is_404_outside_demo_mode(db, client, settings, workspace):
    # given demo mode off
    settings.DEMO_MODE = False

    # when anyone asks for the demo
    response = client.get("/demo/")

    # then the route does not exist
    assert response.status_code == 404


def test_demo_page_shows_the_ticket_the_role_switcher_and_the_panel_frame(
    client, demo_on, workspace
):
    # when the demo page is opened for a Manager on the duplicate-charge ticket
    response = client.get("/demo/?role=manager&scenario=duplicate-charge")

    # then it shows that ticket with the panel framed beside it, opened through the demo entry
    assert response.status_code == 200
    body = response.content.decode()
    scenario = next(s for s in SCENARIOS if s.key == "duplicate-charge")
    assert scenario.subject in body
    assert f'data-requester-email="{scenario.requester_email}"' in body
    assert 'id="panel-frame"' in body
    assert 'action="/demo/panel/"' in body and 'target="panel-frame"' in body
    assert f'data-workspace="{workspace.slug}"' in body and 'data-role="manager"' in body
    for label in ("L1 Agent", "L2 Agent", "Manager", "Billing Specialist"):
        assert label in body
    for s in ALL_SCENARIOS:
        assert f'value="{s.key}"' in body
    # and no app session token sits in the page (the frame gets one by POST)
    assert 'name="token" value=""' in body


def test_demo_page_is_strict_about_scripts_and_framing(client, demo_on, workspace):
    response = client.get("/demo/")
    csp = response["Content-Security-Policy"]
    assert "script-src 'self'" in csp
    assert "frame-ancestors 'none'" in csp
    assert response["X-Frame-Options"] == "DENY"
    assert "no-store" in response["Cache-Control"] or "max-age=0" in response["Cache-Control"]


def test_unknown_role_and_scenario_fall_back_to_l1_on_the_first_ticket(client, demo_on, workspace):
    response = client.get("/demo/?role=admin&scenario=<script>")
    body = response.content.decode()
    assert response.status_code == 200
    assert 'data-role="l1"' in body
    assert f'data-ticket-id="{SCENARIOS[0].number}"' in body
    assert "<script>" not in body.split("</head>")[1].replace('<script type="module"', "")


def test_demo_page_without_sandbox_data_says_how_to_seed_it(db, client, demo_on):
    response = client.get("/demo/")
    assert response.status_code == 503
    assert "seed_demo" in response.content.decode()


def test_demo_page_without_sandbox_data_stays_a_page_for_a_browser(db, client, demo_on):
    # given a browser asking for the page before the demo was seeded
    response = client.get("/demo/", HTTP_ACCEPT="text/html,application/xhtml+xml")

    # then it keeps the HTML page that says how to seed it, not the JSON envelope
    assert response.status_code == 503
    assert response["Content-Type"].startswith("text/html")
    assert "seed_demo" in response.content.decode()


def test_demo_page_answers_only_get(client, demo_on, workspace):
    assert client.post("/demo/").status_code == 405


def test_every_ticket_but_the_last_is_from_a_seeded_customer():
    # given the customers the seed builds (no database needed)
    seeded = DemoSeeder(datetime(2026, 1, 15, 12, tzinfo=UTC))
    seeded.build()
    emails = {customer.email for customer in seeded.customers.values()}

    # then each scenario's requester is one of them, and the last ticket's is none
    assert all(s.requester_email in emails for s in ALL_SCENARIOS[:-1])
    assert ALL_SCENARIOS[-1].key == "no-account"
    assert ALL_SCENARIOS[-1].requester_email not in emails
