"""Shared fixtures: workspaces, agents with app session tokens, an authenticated API client."""

from __future__ import annotations

import itertools

import pytest
import responses as responses_lib
from django.core.cache import cache
from django.utils import translation
from rest_framework.test import APIClient

from billing_app.catalog import Role
from billing_app.services.identity import agent_sign_in
from billing_app.services.workspaces import installation_add, workspace_create
from helpdesk_connectors.base import AgentProfile, HelpdeskIdentity

_counter = itertools.count(1)


@pytest.fixture(autouse=True)
def _default_language():
    """Each test starts and ends in the default language: a German request in one test (the
    test client runs LocaleMiddleware, which leaves its language active on the thread) never
    changes what the next test renders."""
    translation.deactivate()
    yield
    translation.deactivate()


@pytest.fixture(autouse=True)
def _empty_cache():
    """Each test starts with an empty cache. Rolled-back tests reuse primary keys (and on
    PostgreSQL the sequences restart each run while Redis keeps its keys), so a cache key
    naming ``workspace 1`` from one test (a refresh lock, a rate-limit window, a cached
    session) would otherwise meet the next test's workspace 1."""
    cache.clear()
    yield


@pytest.fixture(autouse=True)
def _no_network():
    """Every test runs inside ``responses``: an HTTP call nobody registered fails loudly."""
    with responses_lib.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


@pytest.fixture
def http(_no_network):
    """The active ``responses`` mock, to register expected helpdesk/Stripe calls."""
    return _no_network


@pytest.fixture
def make_workspace(db):
    def make(slug: str | None = None, **kwargs):
        n = next(_counter)
        slug = slug or f"ws-{n}"
        kwargs.setdefault("name", slug.replace("-", " ").title())
        kwargs.setdefault("provider", "sandbox")  # no model default (issue 12); tests enable it
        workspace = workspace_create(slug=slug, **kwargs)
        installation_add(workspace=workspace, connector="demo", domain=f"{slug}.demo.local")
        return workspace

    return make


@pytest.fixture
def workspace(make_workspace):
    return make_workspace("acme")


@pytest.fixture
def sign_in(db):
    """Sign an agent in to a workspace with a role; returns ``(membership, token)``."""

    def sign(workspace, role: Role | str, agent_id: str | None = None):
        role = Role(role)
        installation = (
            workspace.installation_links.select_related("installation").first().installation
        )
        agent_id = agent_id or f"{role.value}-{next(_counter)}"
        identity = HelpdeskIdentity(
            installation=installation,
            agent=AgentProfile(
                agent_id=agent_id,
                name=f"{role.label} {agent_id}",
                email=f"{agent_id}@agents.example",
                helpdesk_role="agent",
            ),
        )
        membership, minted = agent_sign_in(
            identity=identity, workspace=workspace, role_override=role
        )
        return membership, minted.token

    return sign


@pytest.fixture
def api_as(sign_in):
    """``api_as(workspace, role)`` → an APIClient carrying that agent's bearer token."""

    def client_for(workspace, role, agent_id: str | None = None):
        membership, token = sign_in(workspace, role, agent_id)
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
        client.membership = membership
        return client

    return client_for


@pytest.fixture
def admin_client(client, admin_user):
    """pytest-django's ``admin_client``, with a verified second factor: Django admin asks staff
    for one (issue 17; ``billing_app/admin/two_factor.py``)."""
    from tests.billing_app.two_factor_support import verified_login

    verified_login(client, admin_user)
    return client
