"""``POST /freshdesk/session/`` (shared secret via the FDK proxy) and ``POST /freshdesk/panel/``.

The request template sends the secret as ``Authorization: BillingDeskSecret <secret>``
(freshdesk_app/config/requests.json); no other header or scheme is read.
"""

from __future__ import annotations

import json

import pytest
from django.contrib.auth.models import User
from django.urls import reverse

from billing_app.models import AgentMembership, RoleMappingRule
from helpdesk_connectors.freshdesk.connector import SECRET_SCHEME
from helpdesk_connectors.models import Installation
from tests.helpdesk_support import (
    FRESHDESK_DOMAIN,
    FRESHDESK_SECRET,
)

from .conftest import (
    FRESHDESK_BASE,
    FRESHDESK_DEVICE_SECRET,
    freshdesk_device_enroll,
)

SESSION = "/freshdesk/session/"
PANEL = "/freshdesk/panel/"


def _post(client, body, secret=FRESHDESK_SECRET, **headers):
    if secret is not None:
        headers["HTTP_AUTHORIZATION"] = f"{SECRET_SCHEME} {secret}"
    return client.post(
        SESSION,
        data=body if isinstance(body, str | bytes) else json.dumps(body),
        content_type="application/json",
        **headers,
    )


def _body(**overrides):
    body = {
        "agent_id": 43000123,
        "domain": FRESHDESK_DOMAIN,
        "ticket_id": 812,
        "requester_email": "ap@acme.example",
        "device_credential": FRESHDESK_DEVICE_SECRET,
    }
    body.update(overrides)
    return body


@pytest.fixture(autouse=True)
def _enrolled(request):
    """Agent 43000123 enrolled this browser (issue 17) wherever a Freshdesk installation exists;
    tests/helpdesk_connectors/test_freshdesk_devices.py covers enrollment itself."""
    if "freshdesk_installation" in request.fixturenames:
        request.getfixturevalue("freshdesk_device")


def _nothing_created():
    return not User.objects.filter(username__startswith="freshdesk:").exists() and not (
        AgentMembership.objects.filter(user__username__startswith="freshdesk:").exists()
    )


def test_paths_match_the_app_package():
    assert reverse("freshdesk-session") == SESSION
    assert reverse("freshdesk-panel") == PANEL


def test_valid_secret_returns_a_session_for_the_agent(
    client, http, freshdesk_installation, freshdesk_agent_api
):
    freshdesk_agent_api(43000123)

    response = _post(client, _body())

    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"token", "expires_at", "expires_in"}
    # the app frame counts the lifetime on its own clock: APP_SESSION_TTL_SECONDS (900 s)
    assert 890 <= body["expires_in"] <= 900
    membership = AgentMembership.objects.get(user__username="freshdesk:acme:43000123")
    assert membership.display_name == "Maria Lopez"
    assert membership.role == "l1"
    me = client.get("/api/v1/me/", HTTP_AUTHORIZATION=f"Bearer {body['token']}")
    assert me.status_code == 200
    # the agent was read with the installation's API key (basic auth KEY:X)
    agent_call = next(c for c in http.calls if "/api/v2/agents/" in c.request.url)
    assert agent_call.request.headers["Authorization"] == "Basic ZmRBcGlLZXkxMjM6WA=="


def test_role_from_freshdesk_custom_role_name(
    client, workspace, freshdesk_installation, freshdesk_agent_api
):
    RoleMappingRule.objects.create(
        workspace=workspace,
        connector="freshdesk",
        match_type="custom_role",
        value="Billing Team",
        role="specialist",
    )
    freshdesk_agent_api(43000123, role_ids=[43000002, 43000077])
    assert _post(client, _body()).status_code == 200
    assert (
        AgentMembership.objects.get(user__username="freshdesk:acme:43000123").role == "specialist"
    )


CASES = {
    "wrong shared secret": (dict(secret="not-the-secret"), _body(), "bad_secret"),
    "missing shared secret": (dict(secret=None), _body(), "bad_secret"),
    "secret as a bearer token": (
        dict(secret=None, HTTP_AUTHORIZATION=f"Bearer {FRESHDESK_SECRET}"),
        _body(),
        "bad_secret",
    ),
    "secret without a scheme": (
        dict(secret=None, HTTP_AUTHORIZATION=FRESHDESK_SECRET),
        _body(),
        "bad_secret",
    ),
    "secret with trailing words": (
        dict(secret=f"{FRESHDESK_SECRET} {FRESHDESK_SECRET}"),
        _body(),
        "bad_secret",
    ),
    # the header of the first package is no longer read (no such package could be installed:
    # its iparams failed FDK validation), so it cannot stand in for the Authorization header
    "secret in the retired X-Billing-Desk-Secret header": (
        dict(secret=None, HTTP_X_BILLING_DESK_SECRET=FRESHDESK_SECRET),
        _body(),
        "bad_secret",
    ),
    "secret of the right length but wrong": (
        dict(secret="x" * len(FRESHDESK_SECRET)),
        _body(),
        "bad_secret",
    ),
    "unknown installation": (dict(), _body(domain="other.freshdesk.com"), "unknown_installation"),
    "no domain": (dict(), _body(domain=None), "bad_domain"),
    "domain with a path": (dict(), _body(domain="acme.freshdesk.com/x"), "bad_domain"),
    "no agent id": (dict(), _body(agent_id=None), "bad_agent_id"),
    "agent id not a number": (dict(), _body(agent_id="1 OR 1=1"), "bad_agent_id"),
    "body not an object": (dict(), "[1, 2]", "bad_request"),
}


@pytest.mark.parametrize("case", list(CASES), ids=list(CASES))
def test_rejected_session_requests_are_401_and_create_nothing(
    case, client, http, freshdesk_installation, freshdesk_agent_api
):
    freshdesk_agent_api(43000123)
    kwargs, body, code = CASES[case]

    response = _post(client, body, **kwargs)

    assert response.status_code == 401
    assert response.json()["error"]["code"] == code
    assert response["WWW-Authenticate"].startswith("BillingDeskSecret")
    assert _nothing_created()
    if code in {"bad_secret", "unknown_installation", "bad_domain"}:
        assert not http.calls  # nothing asked of Freshdesk before the secret matched


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ("{not json", 400, "malformed_request"),
        (b'{"domain": "\xff"}', 400, "malformed_request"),
        ("[" * 4000, 400, "nesting_too_deep"),
        ('{"pad": "' + "x" * 5000 + '"}', 413, "body_too_large"),
    ],
    ids=["malformed", "not-utf8", "4000-nested", "over-4kB"],
)
def test_unreadable_bodies_are_400_or_413_and_create_nothing(
    body, status, code, client, http, freshdesk_installation
):
    # given a body that is not JSON, nests 4,000 deep or is too large, with the right secret
    # when it is posted to the session entry
    response = _post(client, body)

    # then it is refused in the error envelope, before Freshdesk is asked anything
    assert response.status_code == status, response.content
    assert response.json()["error"]["code"] == code
    assert _nothing_created()
    assert not http.calls


def test_unknown_agent_is_refused(client, http, freshdesk_installation):
    # an agent enrolled once and deleted in Freshdesk since: the credential does not outlive them
    secret = freshdesk_device_enroll(freshdesk_installation, 43000999, "dc-of-a-deleted-agent")
    http.get(f"{FRESHDESK_BASE}/api/v2/agents/43000999", json={"code": "access_denied"}, status=404)
    response = _post(client, _body(agent_id=43000999, device_credential=secret))
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unknown_agent"
    assert _nothing_created()


def test_deactivated_agent_is_refused(client, freshdesk_installation, freshdesk_agent_api):
    freshdesk_agent_api(43000123, contact={"active": False})
    response = _post(client, _body())
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "agent_inactive"
    assert _nothing_created()


def test_freshdesk_api_down_is_503_and_grants_nothing(client, http, freshdesk_installation):
    http.get(f"{FRESHDESK_BASE}/api/v2/agents/43000123", body="upstream error", status=502)
    response = _post(client, _body())
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "helpdesk_unavailable"
    assert _nothing_created()


def test_scheme_is_case_insensitive(client, freshdesk_installation, freshdesk_agent_api):
    freshdesk_agent_api(43000123)
    response = _post(
        client, _body(), secret=None, HTTP_AUTHORIZATION=f"billingdesksecret {FRESHDESK_SECRET}"
    )
    assert response.status_code == 200


def test_without_a_server_api_key_the_agent_cannot_be_read(
    client, http, freshdesk_installation, freshdesk_agent_api
):
    # the app sends no API key any more: the server's own key (add_installation --api-token)
    # is the only one used, so without it nothing is granted
    Installation.objects.filter(pk=freshdesk_installation.pk).update(api_token="")
    freshdesk_agent_api(43000123)
    response = _post(client, _body(), HTTP_X_BILLING_DESK_API_KEY="iparamKey")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "helpdesk_credentials_missing"
    assert not http.calls
    assert _nothing_created()


def test_inactive_installation_is_unknown(client, freshdesk_installation):
    Installation.objects.filter(pk=freshdesk_installation.pk).update(is_active=False)
    response = _post(client, _body())
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unknown_installation"


def test_get_is_not_allowed(client):
    assert client.get(SESSION).status_code == 405


# --- the panel page ----------------------------------------------------------------------------


def test_panel_page_renders_for_a_valid_session(
    client, freshdesk_installation, freshdesk_agent_api, panel_template
):
    freshdesk_agent_api(43000123)
    token = _post(client, _body()).json()["token"]

    response = client.post(
        PANEL, {"token": token, "ticket_id": "812", "requester_email": "ap@acme.example"}
    )

    assert response.status_code == 200
    assert response.context["connector"] == "freshdesk"
    assert response.context["ticket_id"] == "812"
    assert response.context["requester_email"] == "ap@acme.example"
    assert response.context["helpdesk_origin"] == FRESHDESK_BASE
    csp = response["Content-Security-Policy"]
    assert csp.endswith(f"; frame-ancestors {FRESHDESK_BASE} https://d3h0owdjgzys62.cloudfront.net")
    assert "script-src 'self'" in csp and "object-src 'none'" in csp
    assert "X-Frame-Options" not in response


def test_one_session_serves_every_ticket_of_the_installation(
    client, freshdesk_installation, freshdesk_agent_api, panel_template
):
    # the app frame keeps one session per agent across tickets (Freshworks' proxy allows 50
    # calls a minute per app and account): a token minted on ticket 812 opens ticket 990
    freshdesk_agent_api(43000123)
    token = _post(client, _body(ticket_id=812)).json()["token"]

    for ticket_id in ["990", "991"]:
        response = client.post(
            PANEL, {"token": token, "ticket_id": ticket_id, "requester_email": "b@acme.example"}
        )
        assert response.status_code == 200
        assert response.context["ticket_id"] == ticket_id


def test_panel_page_refuses_a_bad_token(client, freshdesk_installation, panel_template):
    response = client.post(PANEL, {"token": "forged"})
    assert response.status_code == 401
    assert 'error="invalid_session"' in response["WWW-Authenticate"]


def test_panel_page_refuses_a_session_of_another_helpdesk(
    client, workspace, sign_in, panel_template
):
    _membership, demo_token = sign_in(workspace, "l2")  # a demo-installation session
    response = client.post(PANEL, {"token": demo_token})
    assert response.status_code == 401
