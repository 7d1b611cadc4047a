"""``POST /zendesk/sidebar/``: the signed-URL JWT, verified tenant-first, then the panel."""

from __future__ import annotations

import base64
import json
import time

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from django.contrib.auth.models import User
from django.urls import reverse

from billing_app.models import AgentMembership, RoleMappingRule
from helpdesk_connectors.models import Installation
from tests.helpdesk_support import (
    ZENDESK_APP_ID,
)

from .conftest import (
    ZENDESK_BASE,
    zendesk_claims,
)

SIDEBAR = "/zendesk/sidebar/"


def _nothing_created():
    return not User.objects.filter(username__startswith="zendesk:").exists() and not (
        AgentMembership.objects.filter(user__username__startswith="zendesk:").exists()
    )


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def test_sidebar_path_is_the_manifest_path():
    assert reverse("zendesk-sidebar") == SIDEBAR


def test_valid_token_renders_the_panel_with_a_session(
    client, zendesk_installation, zendesk_token, zendesk_agent_api, panel_template
):
    # given a signed token for agent 35436 of acme.zendesk.com, and Zendesk's API about them
    zendesk_agent_api(35436)

    # when Zendesk posts it to the sidebar URL (with ZAF's query parameters)
    response = client.post(
        f"{SIDEBAR}?origin={ZENDESK_BASE}&app_guid=abc-123",
        {"token": zendesk_token(), "ticket_id": "4711"},
    )

    # then the panel renders with an app session token for that agent
    assert response.status_code == 200
    context = response.context
    assert context["connector"] == "zendesk"
    assert context["helpdesk_origin"] == ZENDESK_BASE
    assert context["ticket_id"] == "4711"
    assert context["app_token"] and context["app_token_expires_at"]
    membership = AgentMembership.objects.get(user__username="zendesk:acme:35436")
    assert membership.role == "l1"  # no mapping rule: the workspace default
    assert membership.installation == zendesk_installation
    # and the token works on the API
    me = client.get("/api/v1/me/", HTTP_AUTHORIZATION=f"Bearer {context['app_token']}")
    assert me.status_code == 200
    # and only the installation's Zendesk may frame it
    assert response["Content-Security-Policy"].endswith(f"frame-ancestors {ZENDESK_BASE}")
    assert "script-src 'self'" in response["Content-Security-Policy"]
    assert "X-Frame-Options" not in response
    assert response["Cache-Control"] == "no-store"


def test_numeric_subject_is_accepted(
    client, zendesk_installation, zendesk_token, zendesk_agent_api, panel_template
):
    zendesk_agent_api(35436)
    response = client.post(SIDEBAR, {"token": zendesk_token(sub="35436")})
    assert response.status_code == 200
    assert User.objects.filter(username="zendesk:acme:35436").exists()


def test_role_comes_from_the_zendesk_api_through_mapping_rules(
    client, workspace, zendesk_installation, zendesk_token, zendesk_agent_api, panel_template
):
    # given a rule mapping the Zendesk group "Billing" to Billing Specialist
    RoleMappingRule.objects.create(
        workspace=workspace, match_type="group", value="Billing", role="specialist"
    )
    zendesk_agent_api(35436, groups=[(360000111, "Support"), (360000222, "Billing")])

    response = client.post(SIDEBAR, {"token": zendesk_token()})

    assert response.status_code == 200
    assert AgentMembership.objects.get(user__username="zendesk:acme:35436").role == "specialist"


def test_public_key_is_fetched_once_when_not_configured(
    client, http, zendesk_installation, zendesk_token, zendesk_agent_api, public_pem, panel_template
):
    # given an installation that knows only its app id
    Installation.objects.filter(pk=zendesk_installation.pk).update(public_key="")
    http.get(
        f"{ZENDESK_BASE}/api/v2/apps/{ZENDESK_APP_ID}/public_key.pem",
        body=public_pem,
        content_type="application/x-pem-file",
    )
    zendesk_agent_api(35436)

    # when two entries arrive
    first = client.post(SIDEBAR, {"token": zendesk_token()})
    second = client.post(SIDEBAR, {"token": zendesk_token()})

    # then both verify, the key is cached in the row and fetched once
    assert first.status_code == second.status_code == 200
    zendesk_installation.refresh_from_db()
    assert zendesk_installation.public_key.strip() == public_pem.strip()
    assert zendesk_installation.public_key_fetched_at is not None
    fetches = [c for c in http.calls if c.request.url.endswith("public_key.pem")]
    assert len(fetches) == 1
    assert fetches[0].request.headers["Authorization"].startswith("Basic ")


# --- the negative matrix: each is 401, nothing created ----------------------------------------


def _hs256_with_public_key(public_pem: str) -> str:
    header = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    payload = _b64(json.dumps(zendesk_claims()).encode())
    import hashlib
    import hmac

    signature = hmac.new(public_pem.encode(), f"{header}.{payload}".encode(), hashlib.sha256)
    return f"{header}.{payload}.{_b64(signature.digest())}"


def _alg_none() -> str:
    header = _b64(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    payload = _b64(json.dumps(zendesk_claims()).encode())
    return f"{header}.{payload}."


def _bad_signature(make) -> str:
    token = make()
    header, payload, signature = token.split(".")
    tampered = _b64(json.dumps(zendesk_claims(sub="1")).encode())
    return f"{header}.{tampered}.{signature}"


CASES = {
    "bad signature": (lambda make, other, pem: _bad_signature(make), "bad_signature"),
    "signed by another key": (lambda make, other, pem: make(key=other), "bad_signature"),
    "alg none": (lambda make, other, pem: _alg_none(), "algorithm_not_allowed"),
    "HS256 with the public key as secret": (
        lambda make, other, pem: _hs256_with_public_key(pem),
        "algorithm_not_allowed",
    ),
    "expired": (
        lambda make, other, pem: make(iat=int(time.time()) - 900, exp=int(time.time()) - 120),
        "token_expired",
    ),
    "not yet valid (nbf)": (
        lambda make, other, pem: make(nbf=int(time.time()) + 600),
        "token_not_yet_valid",
    ),
    "issued in the future": (
        lambda make, other, pem: make(iat=int(time.time()) + 600, exp=int(time.time()) + 900),
        "token_not_yet_valid",
    ),
    "wrong issuer": (lambda make, other, pem: make(iss="evil.zendesk.com"), "unknown_installation"),
    "no issuer": (lambda make, other, pem: make(iss=None), "bad_issuer"),
    "wrong audience": (
        lambda make, other, pem: make(aud=f"{ZENDESK_BASE}/api/v2/apps/installations/999.json"),
        "bad_audience",
    ),
    "missing expiry": (lambda make, other, pem: make(exp=None), "missing_claim"),
    "wrong location": (
        lambda make, other, pem: make(context={"product": "support", "location": "top_bar"}),
        "bad_context",
    ),
    "wrong product": (
        lambda make, other, pem: make(context={"product": "chat", "location": "ticket_sidebar"}),
        "bad_context",
    ),
    "no context": (lambda make, other, pem: make(context=None), "bad_context"),
    "subject of another account": (
        lambda make, other, pem: make(sub="https://evil.zendesk.com/api/v2/users/35436.json"),
        "bad_subject",
    ),
    "malformed token": (lambda make, other, pem: "not.a.jwt", "malformed_token"),
    "garbage": (lambda make, other, pem: "%%%", "malformed_token"),
}


@pytest.mark.parametrize("case", list(CASES), ids=list(CASES))
def test_rejected_tokens_are_401_and_create_nothing(
    case,
    client,
    http,
    zendesk_installation,
    zendesk_token,
    zendesk_agent_api,
    other_rsa_key,
    public_pem,
):
    # given Zendesk would answer for the agent (so only verification can refuse)
    zendesk_agent_api(35436)
    build, code = CASES[case]

    response = client.post(SIDEBAR, {"token": build(zendesk_token, other_rsa_key, public_pem)})

    assert response.status_code == 401
    assert f'error="{code}"' in response["WWW-Authenticate"]
    assert code.encode() in response.content
    assert _nothing_created()
    # no user lookups happened for a token that failed verification
    assert not [c for c in http.calls if "/api/v2/users/" in c.request.url]
    # the error page may be framed by Zendesk (to show the reason), never by others
    assert response["Content-Security-Policy"].endswith("frame-ancestors https://*.zendesk.com")
    assert "script-src 'self'" in response["Content-Security-Policy"]


def test_missing_token_is_401(client, zendesk_installation):
    response = client.post(SIDEBAR, {})
    assert response.status_code == 401
    assert 'error="missing_token"' in response["WWW-Authenticate"]
    assert _nothing_created()


def test_get_is_not_allowed_and_keeps_framing_denied(client):
    response = client.get(SIDEBAR)
    assert response.status_code == 405
    assert response["X-Frame-Options"] == "DENY"


def test_unknown_installation_is_401(client, zendesk_installation, zendesk_token):
    Installation.objects.filter(pk=zendesk_installation.pk).update(is_active=False)
    response = client.post(SIDEBAR, {"token": zendesk_token()})
    assert response.status_code == 401
    assert 'error="unknown_installation"' in response["WWW-Authenticate"]
    assert _nothing_created()


def test_installation_without_installation_id_is_refused(
    client, zendesk_installation, zendesk_token
):
    Installation.objects.filter(pk=zendesk_installation.pk).update(installation_id="")
    response = client.post(SIDEBAR, {"token": zendesk_token()})
    assert response.status_code == 401
    assert 'error="installation_not_configured"' in response["WWW-Authenticate"]


def test_end_user_is_refused(client, zendesk_installation, zendesk_token, zendesk_agent_api):
    zendesk_agent_api(35436, role="end-user")
    response = client.post(SIDEBAR, {"token": zendesk_token()})
    assert response.status_code == 401
    assert 'error="not_an_agent"' in response["WWW-Authenticate"]
    assert _nothing_created()


def test_suspended_agent_is_refused(client, zendesk_installation, zendesk_token, zendesk_agent_api):
    zendesk_agent_api(35436, suspended=True)
    response = client.post(SIDEBAR, {"token": zendesk_token()})
    assert response.status_code == 401
    assert 'error="agent_inactive"' in response["WWW-Authenticate"]
    assert _nothing_created()


def test_zendesk_api_refusal_grants_nothing(client, http, zendesk_installation, zendesk_token):
    # given Zendesk refuses our API credentials
    http.get(
        f"{ZENDESK_BASE}/api/v2/users/35436.json",
        json={"error": "Couldn't authenticate you"},
        status=401,
    )
    response = client.post(SIDEBAR, {"token": zendesk_token()})
    assert response.status_code == 401
    assert 'error="helpdesk_unauthorized"' in response["WWW-Authenticate"]
    assert _nothing_created()


def test_zendesk_api_outage_is_503_with_retry_after(
    client, http, zendesk_installation, zendesk_token
):
    http.get(
        f"{ZENDESK_BASE}/api/v2/users/35436.json",
        json={"error": "TooManyRequests"},
        status=429,
        headers={"Retry-After": "17"},
    )
    response = client.post(SIDEBAR, {"token": zendesk_token()})
    assert response.status_code == 503
    assert response["Retry-After"] == "17"
    assert b"helpdesk_rate_limited" in response.content
    assert _nothing_created()


def test_unlinked_installation_is_refused_without_side_effects(
    client, zendesk_installation, zendesk_token, zendesk_agent_api
):
    # given the installation lost its workspace link
    from billing_app.models import WorkspaceInstallation

    WorkspaceInstallation.objects.filter(installation=zendesk_installation).delete()
    zendesk_agent_api(35436)
    response = client.post(SIDEBAR, {"token": zendesk_token()})
    assert response.status_code == 401
    assert 'error="unknown_installation"' in response["WWW-Authenticate"]
    assert _nothing_created()


def test_public_key_pem_serialisation_roundtrip(rsa_key, public_pem):
    # the fixture's PEM is what Zendesk's public_key.pem endpoint returns: SubjectPublicKeyInfo
    loaded = serialization.load_pem_public_key(public_pem.encode())
    assert loaded.public_numbers() == rsa_key.public_key().public_numbers()
    assert jwt.decode(
        jwt.encode({"a": 1}, rsa_key, algorithm="RS256"), public_pem, algorithms=["RS256"]
    ) == {"a": 1}
