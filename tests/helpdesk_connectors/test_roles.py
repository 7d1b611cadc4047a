"""Role resolution from what the helpdesk API says (never from the frame)."""

from __future__ import annotations

import json

import pytest

from billing_app.models import AgentMembership, RoleMappingRule
from helpdesk_connectors.freshdesk.connector import SECRET_SCHEME
from tests.helpdesk_support import (
    FRESHDESK_DOMAIN,
    FRESHDESK_SECRET,
)

from .conftest import (
    FRESHDESK_BASE,
    FRESHDESK_DEVICE_SECRET,
    ZENDESK_BASE,
)

ZENDESK_RULES = [
    ("helpdesk_role", "admin", "manager"),
    ("custom_role", "360004455", "l2"),
    ("group", "Billing", "specialist"),
    ("group", "360000999", "manager"),
]


@pytest.mark.parametrize(
    "user, groups, expected",
    [
        ({"role": "admin", "role_type": 4}, [(360000111, "Support")], "manager"),
        (
            {"role": "agent", "role_type": 0, "custom_role_id": 360004455},
            [(360000111, "Support")],
            "l2",
        ),
        ({"role": "agent"}, [(360000111, "Support"), (360000222, "Billing")], "specialist"),
        ({"role": "agent"}, [(360000999, "Escalations")], "manager"),
        # custom role beats group: the custom-role rule is more specific
        ({"role": "agent", "custom_role_id": 360004455}, [(360000222, "Billing")], "l2"),
        # no rule matches: the workspace default
        (
            {"role": "agent", "role_type": 1, "custom_role_id": 360009999},
            [(360000111, "Support")],
            "l1",
        ),
    ],
    ids=["admin", "custom-role", "group-name", "group-id", "custom-over-group", "unknown-default"],
)
def test_zendesk_roles(
    user,
    groups,
    expected,
    client,
    workspace,
    zendesk_installation,
    zendesk_token,
    zendesk_agent_api,
    panel_template,
):
    for match_type, value, role in ZENDESK_RULES:
        RoleMappingRule.objects.create(
            workspace=workspace, match_type=match_type, value=value, role=role
        )
    zendesk_agent_api(35436, groups=groups, **user)

    response = client.post("/zendesk/sidebar/", {"token": zendesk_token()})

    assert response.status_code == 200
    assert AgentMembership.objects.get(user__username="zendesk:acme:35436").role == expected


def test_zendesk_default_role_of_the_workspace(
    client, workspace, zendesk_installation, zendesk_token, zendesk_agent_api, panel_template
):
    workspace.default_role = "l2"
    workspace.save()
    zendesk_agent_api(35436)
    assert client.post("/zendesk/sidebar/", {"token": zendesk_token()}).status_code == 200
    assert AgentMembership.objects.get(user__username="zendesk:acme:35436").role == "l2"


def test_zendesk_role_read_with_oauth_bearer(
    client, http, zendesk_installation, zendesk_token, zendesk_agent_api, panel_template
):
    from helpdesk_connectors.models import Installation

    Installation.objects.filter(pk=zendesk_installation.pk).update(oauth_token="oauthAccess")
    zendesk_agent_api(35436)
    assert client.post("/zendesk/sidebar/", {"token": zendesk_token()}).status_code == 200
    user_call = next(c for c in http.calls if c.request.url.endswith("/users/35436.json"))
    assert user_call.request.headers["Authorization"] == "Bearer oauthAccess"
    membership_call = next(c for c in http.calls if "group_memberships" in c.request.url)
    assert "include=groups" in membership_call.request.url


def test_zendesk_role_is_cached_briefly_per_installation_version(
    client, http, zendesk_installation, zendesk_token, zendesk_agent_api, panel_template
):
    zendesk_agent_api(35436)
    client.post("/zendesk/sidebar/", {"token": zendesk_token()})
    client.post("/zendesk/sidebar/", {"token": zendesk_token()})
    assert len([c for c in http.calls if c.request.url.endswith("/users/35436.json")]) == 1
    zendesk_installation.bump_version()
    client.post("/zendesk/sidebar/", {"token": zendesk_token()})
    assert len([c for c in http.calls if c.request.url.endswith("/users/35436.json")]) == 2


def test_zendesk_role_change_ends_old_sessions(
    client, http, workspace, zendesk_installation, zendesk_token, zendesk_agent_api, panel_template
):
    # given an agent signed in as L1
    RoleMappingRule.objects.create(
        workspace=workspace, match_type="helpdesk_role", value="admin", role="manager"
    )
    zendesk_agent_api(35436)
    old = client.post("/zendesk/sidebar/", {"token": zendesk_token()}).context["app_token"]
    # when Zendesk makes them an admin and they open a ticket again (after the cache)
    from django.core.cache import cache

    cache.clear()
    http.replace("GET", f"{ZENDESK_BASE}/api/v2/users/35436.json", json={"user": {**_user_admin()}})
    new = client.post("/zendesk/sidebar/", {"token": zendesk_token()}).context["app_token"]
    # then the new token is a Manager's and the old one is refused
    assert (
        client.get("/api/v1/me/", HTTP_AUTHORIZATION=f"Bearer {new}").json()["role"]["key"]
        == "manager"
    )
    assert client.get("/api/v1/me/", HTTP_AUTHORIZATION=f"Bearer {old}").status_code == 401


def _user_admin():
    from .conftest import zendesk_user

    return zendesk_user(35436, role="admin", role_type=4)["user"]


@pytest.fixture(autouse=True)
def _freshdesk_enrolled(request):
    """Agent 43000123 enrolled this browser (issue 17) wherever a Freshdesk installation exists."""
    if "freshdesk_installation" in request.fixturenames:
        request.getfixturevalue("freshdesk_device")


def _fd_post(client):
    body = {"agent_id": 43000123, "domain": FRESHDESK_DOMAIN}
    return client.post(
        "/freshdesk/session/",
        data=json.dumps({**body, "device_credential": FRESHDESK_DEVICE_SECRET}),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"{SECRET_SCHEME} {FRESHDESK_SECRET}",
    )


@pytest.mark.parametrize(
    "role_ids, group_ids, expected",
    [
        ([43000001], [43000500], "manager"),  # Account Administrator
        ([43000002, 43000077], [43000500], "specialist"),  # custom role "Billing Team" by name
        ([43000003], [43000500], "l2"),  # Supervisor
        ([43000002], [43000600], "l2"),  # group "Escalations" by id
        ([43000002], [43000500], "l1"),  # plain Agent in an unmapped group: default
    ],
    ids=["account-admin", "custom-role-name", "supervisor", "group-id", "unknown-default"],
)
def test_freshdesk_roles(
    role_ids, group_ids, expected, client, workspace, freshdesk_installation, freshdesk_agent_api
):
    for match_type, value, role in [
        ("helpdesk_role", "Account Administrator", "manager"),
        ("custom_role", "Billing Team", "specialist"),
        ("helpdesk_role", "Supervisor", "l2"),
        ("group", "43000600", "l2"),
    ]:
        RoleMappingRule.objects.create(
            workspace=workspace,
            connector="freshdesk",
            match_type=match_type,
            value=value,
            role=role,
        )
    freshdesk_agent_api(
        43000123,
        groups=[(43000500, "Billing"), (43000600, "Escalations")],
        role_ids=role_ids,
        group_ids=group_ids,
    )

    assert _fd_post(client).status_code == 200
    assert AgentMembership.objects.get(user__username="freshdesk:acme:43000123").role == expected


def test_freshdesk_rules_of_another_helpdesk_do_not_apply(
    client, workspace, freshdesk_installation, freshdesk_agent_api
):
    RoleMappingRule.objects.create(
        workspace=workspace,
        connector="zendesk",
        match_type="helpdesk_role",
        value="Agent",
        role="manager",
    )
    freshdesk_agent_api(43000123)
    assert _fd_post(client).status_code == 200
    assert AgentMembership.objects.get(user__username="freshdesk:acme:43000123").role == "l1"


def test_freshdesk_roles_api_failure_grants_nothing(client, http, freshdesk_installation):
    from .conftest import freshdesk_agent

    http.get(f"{FRESHDESK_BASE}/api/v2/agents/43000123", json=freshdesk_agent(43000123))
    http.get(
        f"{FRESHDESK_BASE}/api/v2/roles",
        json={"code": "access_denied", "message": "You are not authorized"},
        status=403,
    )
    response = _fd_post(client)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "helpdesk_forbidden"
    assert (
        not AgentMembership.objects.exists()
        or not AgentMembership.objects.filter(user__username__startswith="freshdesk:").exists()
    )
