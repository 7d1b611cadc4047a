"""App session tokens: short-lived, bound to user + workspace + installation + role versions."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core import signing

from billing_app.catalog import Role
from billing_app.models import Workspace
from billing_app.roles import workspace_mapping_changed
from helpdesk_connectors import sessions
from helpdesk_connectors.models import Installation
from helpdesk_connectors.services import installation_update

ME = "/api/v1/me/"


def _me(client, token):
    return client.get(ME, HTTP_AUTHORIZATION=f"Bearer {token}")


def _assert_rejected(response):
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == 'Bearer realm="billing-desk"'
    assert response.json()["error"]["code"] == "not_authenticated"


def test_a_fresh_token_works_and_expires_at_matches_the_ttl(workspace, sign_in, client, settings):
    membership, token = sign_in(workspace, Role.L2)
    assert _me(client, token).status_code == 200
    claims = sessions.verify(token)
    assert claims.user_id == membership.user_id
    assert claims.grant["w"] == workspace.pk
    assert claims.installation_fingerprint
    assert claims.expires_at - claims.issued_at == timedelta(
        seconds=settings.APP_SESSION_TTL_SECONDS
    )


def test_replayed_token_after_role_change_is_rejected(workspace, sign_in, client):
    _membership, token = sign_in(workspace, Role.L1, agent_id="77")
    sign_in(workspace, Role.MANAGER, agent_id="77")
    _assert_rejected(_me(client, token))


def test_token_rejected_after_role_mapping_changes(workspace, sign_in, client):
    _membership, token = sign_in(workspace, Role.L2)
    workspace_mapping_changed(workspace=workspace)
    _assert_rejected(_me(client, token))


def test_token_rejected_after_installation_version_bump(workspace, sign_in, client):
    _membership, token = sign_in(workspace, Role.L2)
    Installation.objects.get(connector="demo", domain="acme.demo.local").bump_version()
    _assert_rejected(_me(client, token))


def test_token_rejected_after_credentials_change_by_any_path(workspace, sign_in, client):
    # given a session, when the installation's API token is changed without the service
    _membership, token = sign_in(workspace, Role.L2)
    installation = Installation.objects.get(connector="demo", domain="acme.demo.local")
    installation.api_token = "rotated"
    installation.save()
    # then the fingerprint no longer matches
    _assert_rejected(_me(client, token))


def test_installation_update_bumps_version_only_for_session_bound_fields(workspace):
    installation = Installation.objects.get(connector="demo", domain="acme.demo.local")
    before = installation.version
    same = installation_update(installation=installation, api_token=installation.api_token)
    assert same.version == before
    changed = installation_update(installation=installation, api_token="new-token")
    assert changed.version == before + 1
    assert changed.api_token == "new-token"
    with pytest.raises(ValueError):
        installation_update(installation=installation, version=99)


def test_token_rejected_when_installation_deactivated(workspace, sign_in, client):
    _membership, token = sign_in(workspace, Role.L2)
    Installation.objects.filter(connector="demo").update(is_active=False)
    _assert_rejected(_me(client, token))


def test_token_rejected_when_workspace_deactivated(workspace, sign_in, client):
    _membership, token = sign_in(workspace, Role.L2)
    Workspace.objects.filter(pk=workspace.pk).update(is_active=False)
    _assert_rejected(_me(client, token))


def test_token_rejected_when_user_deactivated(workspace, sign_in, client):
    membership, token = sign_in(workspace, Role.L2)
    membership.user.is_active = False
    membership.user.save()
    _assert_rejected(_me(client, token))


def test_expired_token_is_rejected(workspace, sign_in, client, settings):
    _membership, token = sign_in(workspace, Role.L2)
    settings.APP_SESSION_TTL_SECONDS = -1
    _assert_rejected(_me(client, token))


def test_tampered_and_foreign_tokens_are_rejected(workspace, sign_in, client):
    _membership, token = sign_in(workspace, Role.L2)
    _assert_rejected(_me(client, token[:-2] + ("AA" if not token.endswith("AA") else "BB")))
    # signed with the right key but another salt (e.g. a Django signed cookie value)
    _assert_rejected(_me(client, signing.dumps({"u": 1, "g": {}}, salt="other")))
    _assert_rejected(_me(client, "x" * 5000))


def test_token_of_workspace_a_is_useless_in_workspace_b(make_workspace, sign_in, client):
    a = make_workspace("alpha")
    make_workspace("beta")
    membership, token = sign_in(a, Role.MANAGER)
    assert _me(client, token).status_code == 200
    # moving the installation to another workspace ends the session
    from billing_app.models import WorkspaceInstallation

    beta = Workspace.objects.get(slug="beta")
    WorkspaceInstallation.objects.filter(installation=membership.installation).update(
        workspace=beta
    )
    _assert_rejected(_me(client, token))


@pytest.mark.parametrize("header", ["Bearer", "Bearer a b", "Bearer \xff"])
def test_malformed_authorization_headers_are_401(db, client, header):
    response = client.get(ME, HTTP_AUTHORIZATION=header)
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_no_credentials_is_401_not_403(db, client):
    response = client.get(ME)
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")
