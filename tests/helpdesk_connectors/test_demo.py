"""The demo connector: ``POST /demo/session/`` only in demo mode, with a role switcher."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.urls import reverse

from billing_app.models import AgentMembership

SESSION = "/demo/session/"


@pytest.fixture
def demo_on(settings):
    settings.DEMO_MODE = True


def test_paths():
    assert reverse("demo-session") == SESSION
    assert reverse("demo-panel") == "/demo/panel/"


def test_404_unless_demo_mode(client, workspace, settings):
    settings.DEMO_MODE = False
    response = client.post(
        SESSION, {"role": "l1", "workspace": "acme"}, content_type="application/json"
    )
    assert response.status_code == 404
    assert client.get(SESSION).status_code == 404
    assert not User.objects.filter(username__startswith="demo:").exists()


def test_404_in_production_even_with_demo_mode(client, workspace, settings):
    settings.DEMO_MODE, settings.DEBUG, settings.TESTING = True, False, False
    response = client.post(
        SESSION, {"role": "l1", "workspace": "acme"}, content_type="application/json"
    )
    assert response.status_code == 404


@pytest.mark.parametrize("role", ["l1", "l2", "manager", "specialist"])
def test_session_for_each_role(role, client, workspace, demo_on):
    response = client.post(
        SESSION, {"role": role, "workspace": "acme"}, content_type="application/json"
    )
    assert response.status_code == 200
    token = response.json()["token"]
    membership = AgentMembership.objects.get(user__username=f"demo:acme:demo-{role}")
    assert membership.role == role
    me = client.get("/api/v1/me/", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert me.json()["role"]["key"] == role


def test_each_role_is_its_own_demo_agent(client, workspace, demo_on):
    # switching roles signs in another demo agent; each keeps exactly its own role
    for role in ("l1", "manager", "l1"):
        client.post(SESSION, {"role": role, "workspace": "acme"}, content_type="application/json")
    memberships = AgentMembership.objects.filter(user__username__startswith="demo:acme:")
    assert sorted(m.role for m in memberships) == ["l1", "manager"]
    assert all(m.role_version == 1 for m in memberships)


@pytest.mark.parametrize(
    "body, code",
    [
        ({"role": "vp", "workspace": "acme"}, "bad_role"),
        ({"role": "admin", "workspace": "acme"}, "bad_role"),
        ({"role": "l1", "workspace": "nope"}, "unknown_installation"),
        ({"role": "l1", "workspace": "../x"}, "bad_workspace"),
        ({"role": "l1"}, "bad_workspace"),
        ([], "bad_request"),
    ],
)
def test_bad_requests_are_refused_without_side_effects(body, code, client, workspace, demo_on):
    response = client.post(SESSION, body, content_type="application/json")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == code
    assert not User.objects.filter(username__startswith="demo:").exists()


def test_malformed_json_is_refused(client, workspace, demo_on):
    response = client.post(SESSION, "{", content_type="application/json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "malformed_request"


def test_demo_panel_is_framed_by_self_only(client, workspace, demo_on, panel_template):
    token = client.post(
        SESSION, {"role": "l2", "workspace": "acme"}, content_type="application/json"
    ).json()["token"]
    response = client.post("/demo/panel/", {"token": token, "ticket_id": "DEMO-1"})
    assert response.status_code == 200
    assert response["Content-Security-Policy"].endswith("frame-ancestors 'self'")
    assert "script-src 'self'" in response["Content-Security-Policy"]
    assert response.context["connector"] == "demo"
    assert response.context["ticket_id"] == "DEMO-1"
