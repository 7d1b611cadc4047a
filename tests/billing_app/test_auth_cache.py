"""App session checks from a versioned cache entry: no query when warm, never a stale yes.

Tests run inside one transaction that never commits, so ``committed()`` stands for a
commit: the writes in its block get their ``on_commit`` bumps when it ends, as they
would in production when the writer's transaction commits.
"""

from __future__ import annotations

import logging
import os
import pickle
import uuid
from io import StringIO

import pytest
from cryptography.fernet import Fernet
from django.contrib.auth.models import User
from django.core.cache import cache, caches
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from guardian.shortcuts import assign_perm, remove_perm
from rest_framework.test import APIClient

from billing_app.catalog import Role
from billing_app.models import AgentMembership, Workspace, WorkspaceInstallation
from billing_app.roles import (
    agent_membership_remove,
    agent_role_assign,
    workspace_mapping_changed,
    workspace_role_groups,
)
from billing_app.services import auth_cache
from billing_app.services.identity import session_mint
from billing_app.services.workspaces import workspace_provision
from helpdesk_connectors import session_cache, sessions
from helpdesk_connectors.authentication import authenticate_token
from helpdesk_connectors.models import Installation
from helpdesk_connectors.services import installation_update

ME = "/api/v1/me/"
CHEAP = "/api/v1/vocabulary/"  # no query of its own: every query is authentication's
UNREACHABLE = {
    "default": {
        "BACKEND": "billing_app.cache.ResilientRedisCache",
        "LOCATION": "redis://127.0.0.1:1/0",  # nothing listens on port 1: refused at once
    }
}
# What an app session check reads: any query naming these tables is authentication's.
AUTH_TABLES = (
    "helpdesk_connectors_installation",
    "billing_app_agentmembership",
    "billing_app_workspaceinstallation",
    "auth_user",
    "auth_permission",
    "guardian_",
)


def auth_queries(queries: CaptureQueriesContext) -> list[str]:
    """Read it before the next request: the test client's ``request_started`` clears the log."""
    return [q["sql"] for q in queries.captured_queries if any(t in q["sql"] for t in AUTH_TABLES)]


def tables(queries: CaptureQueriesContext) -> list[str]:
    """Each query by the table of its outermost FROM, for pinning the exact list."""
    return [_main_table(q["sql"]) for q in queries.captured_queries]


def _main_table(sql: str) -> str:
    depth = 0
    for index, char in enumerate(sql):
        depth += {"(": 1, ")": -1}.get(char, 0)
        if depth == 0 and sql.startswith(" FROM ", index):
            return sql[index + 6 :].split(" ", 1)[0].strip('"`')
    return sql


@pytest.fixture
def committed(django_capture_on_commit_callbacks):
    return lambda: django_capture_on_commit_callbacks(execute=True)


@pytest.fixture(params=["on", "off"])
def mode(request, settings):
    """The app session cache on (LocMem, or the Redis of ``REDIS_URL``) or off."""
    if request.param == "on":
        settings.APP_SESSION_CACHE_SECONDS = 120
        if not os.environ.get("REDIS_URL"):
            settings.CACHES = {
                "default": {
                    "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
                    "LOCATION": "auth-cache-tests",
                }
            }
    else:
        settings.APP_SESSION_CACHE_SECONDS = 0
    cache.clear()
    yield request.param
    cache.clear()


@pytest.fixture
def on(settings):
    settings.APP_SESSION_CACHE_SECONDS = 120
    if not os.environ.get("REDIS_URL"):
        settings.CACHES = {
            "default": {
                "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
                "LOCATION": "auth-cache-tests",
            }
        }
    cache.clear()
    yield "on"
    cache.clear()


@pytest.fixture
def acme(make_workspace, committed):
    with committed():
        return make_workspace("acme")


@pytest.fixture
def agent(sign_in, committed):
    """``agent(workspace, role)`` → an API client with a fresh token (its sign-in committed)."""

    def make(workspace, role=Role.L2, agent_id=None):
        with committed():
            membership, token = sign_in(workspace, role, agent_id)
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
        client.membership, client.token = membership, token
        return client

    return make


def warm(client, mode: str) -> None:
    """One request builds the entry; with the cache on, the next spends no query on it."""
    assert client.get(CHEAP).status_code == 200
    with CaptureQueriesContext(connection) as queries:
        assert client.get(CHEAP).status_code == 200
    assert len(queries) == (0 if mode == "on" else 2), tables(queries)


def installation_of(workspace: Workspace) -> Installation:
    return WorkspaceInstallation.objects.get(workspace=workspace).installation


# ---------------------------------------------------------------------------- query counts


def test_a_warm_request_spends_no_query_on_authentication(on, acme, agent):
    # given an agent whose first request built the entry
    client = agent(acme)
    assert client.get(CHEAP).status_code == 200

    # when they call again (an endpoint with no query of its own, then ones with their own)
    with CaptureQueriesContext(connection) as queries:
        assert client.get(CHEAP).status_code == 200
    cheap = tables(queries)  # now: the next request clears the connection's query log
    with CaptureQueriesContext(connection) as queries:
        assert client.get(ME).status_code == 200
    me = tables(queries)
    with CaptureQueriesContext(connection) as queries:  # view_billing, then a missing action
        assert client.get(f"/api/v1/actions/{uuid.uuid4()}/").status_code == 404
    permitted = tables(queries)

    # then neither authentication nor any permission check reads the database: only the views'
    assert cheap == []
    assert me == ["billing_app_actionpolicy", "billing_app_approvalroute"]
    assert permitted == ["billing_app_billingaction"]


def test_a_cold_request_reads_installation_grant_and_permissions_once(on, acme, agent):
    # given a fresh sign-in (nothing cached for it yet)
    client = agent(acme)

    # when its first request arrives
    with CaptureQueriesContext(connection) as queries:
        assert client.get(CHEAP).status_code == 200

    # then: the installation, the membership (with workspace, user and link), guardian's two
    assert tables(queries) == [
        "helpdesk_connectors_installation",
        "billing_app_agentmembership",
        "auth_permission",
        "auth_permission",
    ]


def test_with_the_cache_off_every_request_reads_the_database_as_before(settings, acme, agent):
    settings.APP_SESSION_CACHE_SECONDS = 0
    client = agent(acme)

    for _ in range(2):
        with CaptureQueriesContext(connection) as queries:
            assert client.get(CHEAP).status_code == 200
        assert tables(queries) == [
            "helpdesk_connectors_installation",
            "billing_app_agentmembership",
        ]


def test_permission_checks_of_a_request_ask_guardian_once_with_the_cache_off(settings, acme, agent):
    # given the cache off: permissions are read when first asked, then kept for the request
    settings.APP_SESSION_CACHE_SECONDS = 0
    client = agent(acme)

    with CaptureQueriesContext(connection) as queries:
        assert client.get(f"/api/v1/actions/{uuid.uuid4()}/").status_code == 404

    assert [t for t in tables(queries) if t == "auth_permission"] == ["auth_permission"] * 2


# ---------------------------------------------------------------------------- refusals


def _revoke_membership(world):
    agent_membership_remove(membership=AgentMembership.objects.get(pk=world.membership.pk))


def _deactivate_user(world):
    user = User.objects.get(pk=world.membership.user_id)
    user.is_active = False
    user.save()


def _delete_user(world):
    User.objects.get(pk=world.membership.user_id).delete()


def _deactivate_workspace(world):
    workspace = Workspace.objects.get(pk=world.workspace.pk)
    workspace.is_active = False
    workspace.save()


def _deactivate_workspace_by_update(world):
    # a QuerySet.update() sends no signal: its caller bumps, as every such path does
    Workspace.objects.filter(pk=world.workspace.pk).update(is_active=False)
    auth_cache.workspace_changed(world.workspace.pk)


def _delete_workspace(world):
    Workspace.objects.get(pk=world.workspace.pk).delete()


def _deactivate_installation(world):
    installation_update(installation=installation_of(world.workspace), is_active=False)


def _rotate_credentials(world):
    installation_update(installation=installation_of(world.workspace), api_token="rotated")


def _rotate_credentials_without_version(world):
    installation = installation_of(world.workspace)
    installation.shared_secret = "another-shared-secret"
    installation.save()


def _bump_installation_version(world):
    installation_of(world.workspace).bump_version()  # QuerySet.update() + explicit bump


def _delete_installation(world):
    installation_of(world.workspace).delete()


def _change_role(world):
    membership = AgentMembership.objects.get(pk=world.membership.pk)
    agent_role_assign(
        user=membership.user, workspace=membership.workspace, role=Role.L1, source="t"
    )


def _change_role_mapping(world):
    workspace_mapping_changed(workspace=Workspace.objects.get(pk=world.workspace.pk))


def _unlink_installation(world):
    WorkspaceInstallation.objects.filter(workspace=world.workspace).delete()


def _move_installation(world):
    link = WorkspaceInstallation.objects.get(workspace=world.workspace)
    link.workspace = world.other
    link.save()


REFUSALS = [
    _revoke_membership,
    _deactivate_user,
    _delete_user,
    _deactivate_workspace,
    _deactivate_workspace_by_update,
    _delete_workspace,
    _deactivate_installation,
    _rotate_credentials,
    _rotate_credentials_without_version,
    _bump_installation_version,
    _delete_installation,
    _change_role,
    _change_role_mapping,
    _unlink_installation,
    _move_installation,
]


class World:
    def __init__(self, workspace, other, client):
        self.workspace, self.other, self.client = workspace, other, client
        self.membership = client.membership


@pytest.mark.parametrize("change", REFUSALS, ids=lambda f: f.__name__.strip("_"))
def test_a_change_refuses_the_token_on_the_very_next_request(
    mode, make_workspace, agent, committed, change
):
    # given an agent whose entry is warm (cache on) or who is checked in the database (off)
    with committed():
        acme, globex = make_workspace("acme"), make_workspace("globex")
    client = agent(acme)
    warm(client, mode)

    # when the change commits
    with committed():
        change(World(acme, globex, client))

    # then the very next request is refused, and so is the one after
    assert client.get(CHEAP).status_code == 401
    assert client.get(ME).status_code == 401


def _remove_group_perm(world, group, user):
    remove_perm("billing_app.view_billing", group, world.workspace)


def _user_leaves_group(world, group, user):
    user.groups.remove(group)


def _group_drops_user(world, group, user):
    group.user_set.remove(user)


def _group_cleared(world, group, user):
    group.user_set.clear()


def _user_groups_cleared(world, group, user):
    user.groups.clear()


@pytest.mark.parametrize(
    "change",
    [
        _remove_group_perm,
        _user_leaves_group,
        _group_drops_user,
        _group_cleared,
        _user_groups_cleared,
    ],
    ids=lambda f: f.__name__.strip("_"),
)
def test_a_guardian_change_is_seen_on_the_very_next_request(mode, acme, agent, committed, change):
    # given an L2 agent who may view billing (a missing action is a 404, not a 403)
    client = agent(acme, Role.L2)
    warm(client, mode)
    detail = f"/api/v1/actions/{uuid.uuid4()}/"
    assert client.get(detail).status_code == 404
    user = User.objects.get(pk=client.membership.user_id)
    group = workspace_role_groups(acme)[Role.L2]

    # when their role group loses view_billing on the workspace, or they leave the group
    with committed():
        change(World(acme, None, client), group, user)

    # then the next request may not view billing
    assert client.get(detail).status_code == 403

    # and a permission granted to the user directly is seen as promptly
    with committed():
        assign_perm("billing_app.view_billing", user, acme)
    assert client.get(detail).status_code == 404


def test_a_permission_restored_by_provisioning_is_seen_on_the_very_next_request(
    mode, acme, agent, committed
):
    # given an L2 agent whose role group lost view_billing, seen by a request (cached)
    client = agent(acme, Role.L2)
    warm(client, mode)
    detail = f"/api/v1/actions/{uuid.uuid4()}/"
    with committed():
        remove_perm("billing_app.view_billing", workspace_role_groups(acme)[Role.L2], acme)
    assert client.get(detail).status_code == 403
    assert client.get(detail).status_code == 403

    # when an admin repairs the workspace (provisioning writes guardian's rows in bulk)
    with committed():
        workspace_provision(workspace=acme)

    # then the next request sees the restored permission
    assert client.get(detail).status_code == 404


def test_names_and_settings_are_current_on_the_next_request(mode, acme, agent, committed):
    # given a warm agent
    client = agent(acme, Role.L2, agent_id="ada")
    warm(client, mode)

    # when the workspace's settings and the agent's name change (a fresh sign-in renames)
    with committed():
        workspace = Workspace.objects.get(pk=acme.pk)
        workspace.base_currency = "EUR"
        workspace.name = "Acme Europe"
        workspace.save()
        membership = AgentMembership.objects.get(pk=client.membership.pk)
        agent_role_assign(
            user=membership.user,
            workspace=workspace,
            role=Role.L2,
            source="t",
            defaults={"display_name": "Ada Lovelace"},
        )

    # then the same token's next answer has them
    body = client.get(ME).json()
    assert body["workspace"]["base_currency"] == "EUR"
    assert body["workspace"]["name"] == "Acme Europe"
    assert body["agent"]["name"] == "Ada Lovelace"


def test_the_cached_rows_are_complete_and_equal_to_the_database(on, acme, agent, committed):
    # given a workspace with settings away from their defaults, a renamed user, a warm agent
    with committed():
        workspace = Workspace.objects.get(pk=acme.pk)
        workspace.refund_window_days, workspace.refund_pattern_count = 30, 5
        workspace.stripe_secret_key, workspace.stripe_webhook_secret = "sk_test_1", "whsec_1"
        workspace.csm_group = "CSM"
        workspace.save()
    client = agent(acme)
    with committed():
        user = User.objects.get(pk=client.membership.user_id)
        user.first_name, user.last_name = "Grace", "Hopper"
        user.save()
    authenticate_token(client.token)

    # when the token is checked from the entry
    with CaptureQueriesContext(connection) as queries:
        user, context = authenticate_token(client.token)
        rows = [context.workspace, context.membership, context.user]
        cached = [
            {
                f.attname: getattr(obj, f.attname)
                for f in type(obj)._meta.concrete_fields
                if f.attname not in obj.get_deferred_fields()
            }
            for obj in rows
        ]
        assert context.membership.workspace is context.workspace
        assert context.membership.user is context.user is user
    assert len(queries) == 0

    # then every column is the database's; the password hash and the workspace's context
    # generation are not cached (they load on access, current)
    assert context.user.get_deferred_fields() == {"password"}
    assert context.workspace.get_deferred_fields() == {"context_generation"}
    assert context.membership.get_deferred_fields() == set()
    for obj, values in zip(rows, cached, strict=True):
        fresh = type(obj).objects.get(pk=obj.pk)
        assert values == {name: getattr(fresh, name) for name in values}
        assert {f.attname: getattr(obj, f.attname) for f in type(obj)._meta.concrete_fields} == {
            f.attname: getattr(fresh, f.attname) for f in type(obj)._meta.concrete_fields
        }
    assert context.workspace.stripe_secret_key == "sk_test_1"


def test_the_context_generation_is_read_current(on, acme, agent):
    # given a warm agent, when a workspace-wide change raises the context generation (UPDATE)
    client = agent(acme)
    warm(client, "on")
    before = Workspace.objects.get(pk=acme.pk).context_generation
    Workspace.objects.filter(pk=acme.pk).update(context_generation=before + 1)

    # then the next request's workspace has it (it is not cached)
    _user, context = authenticate_token(client.token)
    assert context.workspace.context_generation == before + 1


def test_no_secret_is_cached_in_plaintext(on, make_workspace, agent, committed):
    # given a workspace and an installation with secrets, and a warm agent
    with committed():
        workspace = make_workspace("acme", stripe_secret_key="sk_test_plainsecret")
        installation = installation_of(workspace)
        installation.api_token = "hd-api-plainsecret"
        installation.shared_secret = "hd-shared-plainsecret"
        installation.oauth_token = "hd-oauth-plainsecret"
        installation.save()
    client = agent(workspace)
    client.get(CHEAP)
    _user, context = authenticate_token(client.token)

    # then neither entry holds a secret's plaintext
    keys = [
        session_cache.entry_key("installation", installation.pk),
        auth_cache.grant_key(
            user_id=context.user.pk, workspace_id=workspace.pk, installation_id=installation.pk
        ),
    ]
    stored = [cache.get(key) for key in keys]
    assert all(stored)
    raw = pickle.dumps(stored)
    for secret in (b"plainsecret",):
        assert secret not in raw
    # and the installation's secrets load from the database when read (one query)
    assert {
        "api_token",
        "shared_secret",
        "oauth_token",
    } <= context.installation.get_deferred_fields()
    with CaptureQueriesContext(connection) as queries:
        assert context.installation.api_token == "hd-api-plainsecret"
    assert len(queries) == 1


# ---------------------------------------------------------------------------- isolation


def test_an_entry_answers_only_for_its_own_user_workspace_and_installation(
    on, make_workspace, agent, committed
):
    # given one user who is an agent of two workspaces, and a colleague; every entry warm
    with committed():
        alpha, beta = make_workspace("alpha"), make_workspace("beta")
    in_alpha = agent(alpha, Role.L2)
    other = agent(alpha, Role.L2)
    with committed():
        in_beta_membership = agent_role_assign(
            user=in_alpha.membership.user,
            workspace=beta,
            role=Role.MANAGER,
            source="t",
            defaults={"installation": installation_of(beta)},
        )
    in_beta = APIClient()
    in_beta.credentials(
        HTTP_AUTHORIZATION="Bearer "
        + session_mint(membership=in_beta_membership, installation=installation_of(beta)).token
    )
    for client in (in_alpha, in_beta, other):
        warm(client, "on")

    # then each token is answered with its own workspace, role and user
    assert in_alpha.get(ME).json()["workspace"]["slug"] == "alpha"
    assert in_beta.get(ME).json()["workspace"]["slug"] == "beta"
    assert in_beta.get(ME).json()["role"]["key"] == "manager"
    assert other.get(ME).json()["agent"]["id"] == other.membership.user_id

    # when beta is deactivated, the same user's alpha entry and the colleague's still serve
    with committed():
        beta.is_active = False
        beta.save()
    assert in_beta.get(CHEAP).status_code == 401
    for client in (in_alpha, other):
        with CaptureQueriesContext(connection) as queries:
            assert client.get(CHEAP).status_code == 200
        assert len(queries) == 0


def test_a_grant_naming_another_workspace_is_checked_in_the_database(
    on, make_workspace, agent, committed
):
    # given an agent of alpha whose entry is warm, and beta where they have no membership
    with committed():
        alpha, beta = make_workspace("alpha"), make_workspace("beta")
    client = agent(alpha, Role.MANAGER)
    warm(client, "on")
    membership = client.membership

    # when a token (validly signed) names beta with alpha's installation and role versions
    beta_grant = {
        "w": beta.pk,
        "r": membership.role,
        "rv": membership.role_version,
        "mv": beta.role_mapping_version,
    }
    installation = installation_of(alpha)
    forged = sessions.mint(
        user_id=membership.user_id,
        installation_id=installation.pk,
        installation_version=installation.version,
        grant=beta_grant,
    ).token

    # then it is refused: alpha's entry is not beta's
    response = APIClient().get(CHEAP, HTTP_AUTHORIZATION=f"Bearer {forged}")
    assert response.status_code == 401


def test_a_token_of_another_installation_is_not_answered_by_this_ones_entry(
    on, make_workspace, agent, committed
):
    # given alpha's agent (entry warm) and a second installation linked to beta
    with committed():
        alpha, beta = make_workspace("alpha"), make_workspace("beta")
    client = agent(alpha, Role.L2)
    warm(client, "on")
    membership = AgentMembership.objects.select_related("workspace").get(pk=client.membership.pk)

    # when a token for alpha's grant comes through beta's installation
    token = session_mint(membership=membership, installation=installation_of(beta)).token

    # then the link is checked (in the database) and refused
    response = APIClient().get(CHEAP, HTTP_AUTHORIZATION=f"Bearer {token}")
    assert response.status_code == 401


# ---------------------------------------------------------------------------- races, failures


def test_an_entry_built_from_a_read_that_raced_a_change_is_never_served(on, acme, agent, committed):
    # given a request that read the versions, then the membership (role L2) ...
    client = agent(acme, Role.L2)
    user_id, installation = client.membership.user_id, installation_of(acme)
    found = auth_cache.grant_lookup(
        user_id=user_id, workspace_id=acme.pk, installation_id=installation.pk
    )
    assert found.versions is not None
    stale = AgentMembership.objects.select_related("workspace", "user").get(pk=client.membership.pk)

    # ... while the membership is revoked and commits, before that request stores its entry
    with committed():
        agent_membership_remove(membership=AgentMembership.objects.get(pk=stale.pk))
    auth_cache.grant_store(
        found, membership=stale, installation_id=installation.pk, linked=True, perms=frozenset()
    )

    # then the stale entry is not served: the token is refused
    assert client.get(CHEAP).status_code == 401


def test_nothing_is_served_or_stored_while_a_change_is_in_flight(on, acme, agent):
    # given a warm agent
    client = agent(acme, Role.L2)
    warm(client, "on")

    # when their role changes in a transaction that has not committed yet
    membership = AgentMembership.objects.get(pk=client.membership.pk)
    agent_role_assign(user=membership.user, workspace=acme, role=Role.MANAGER, source="t")
    found = auth_cache.grant_lookup(
        user_id=membership.user_id, workspace_id=acme.pk, installation_id=installation_of(acme).pk
    )

    # then the scope reads as pending: no entry, no versions to store one under
    assert found.entry is None and found.versions is None
    with CaptureQueriesContext(connection) as queries:
        assert client.get(CHEAP).status_code == 401  # the database (this transaction) decides
    assert auth_queries(queries)


def test_a_failed_after_commit_bump_leaves_the_scope_uncached_not_stale(
    on, acme, agent, committed, monkeypatch
):
    # given a warm agent, and a cache that accepts the pending mark but fails the final bump
    client = agent(acme, Role.L2)
    warm(client, "on")

    def failing_settle(owner):
        def change(current):
            raise ConnectionError("redis went away")

        return change

    monkeypatch.setattr(session_cache, "_end", failing_settle)

    # when the user is deactivated and commits
    with committed():
        _deactivate_user(World(acme, None, client))

    # then the next requests are refused (the scope stays pending: the database decides)
    assert client.get(CHEAP).status_code == 401
    assert client.get(CHEAP).status_code == 401


@pytest.fixture
def fresh_warning(monkeypatch):
    monkeypatch.setattr(session_cache, "_last_warning", -1e9)


def test_redis_down_falls_back_to_the_database_and_logs_once(
    on, acme, agent, settings, caplog, fresh_warning
):
    # given an agent, and Redis refusing connections
    client = agent(acme, Role.L2)
    settings.CACHES = UNREACHABLE

    # when they make requests
    with caplog.at_level(logging.WARNING, logger="helpdesk_connectors.session_cache"):
        with CaptureQueriesContext(connection) as queries:
            first = client.get(CHEAP)
        read = tables(queries)
        second = client.get(f"/api/v1/actions/{uuid.uuid4()}/")

    # then they are answered from the database, and the outage is logged once
    assert first.status_code == 200 and second.status_code == 404
    assert read == ["helpdesk_connectors_installation", "billing_app_agentmembership"]
    logged = [r for r in caplog.records if r.name == "helpdesk_connectors.session_cache"]
    assert len(logged) == 1

    # and a change is still refused at once
    _deactivate_user(World(acme, None, client))
    assert client.get(CHEAP).status_code == 401


def test_cache_errors_fall_back_to_the_database(on, acme, agent, committed, monkeypatch):
    # given a warm agent, then a cache whose every call raises
    client = agent(acme, Role.L2)
    warm(client, "on")
    backend = caches["default"]

    def broken(*args, **kwargs):
        raise ConnectionError("redis went away")

    for name in ("get", "get_many", "set", "set_many", "add"):
        monkeypatch.setattr(backend, name, broken)

    # when they call: answered from the database
    with CaptureQueriesContext(connection) as queries:
        assert client.get(CHEAP).status_code == 200
        assert tables(queries) == [
            "helpdesk_connectors_installation",
            "billing_app_agentmembership",
        ]

    # and a change (its bump lost with the cache) is refused from the database
    with committed():
        _deactivate_workspace(World(acme, None, client))
    assert client.get(CHEAP).status_code == 401


# ---------------------------------------------------------------------------- overlapping writers


def in_flight(*scopes: str):
    """A change to ``scopes`` in a transaction of its own, not yet committed.

    Its pending mark is written now; the after-commit callback it registered is taken out
    of this test's transaction and returned, to be run when the test says it commits.
    """
    start = len(connection.run_on_commit)
    session_cache.scopes_changed(*scopes)
    callbacks = [callback for _, callback, *_ in connection.run_on_commit[start:]]
    del connection.run_on_commit[start:]
    assert len(callbacks) == 1
    return callbacks[0]


@pytest.mark.parametrize("first_to_settle", ["A", "B"])
def test_a_commit_does_not_end_another_transactions_change_in_flight(
    on, acme, agent, committed, first_to_settle
):
    # given a warm agent, and two transactions changing their user, both in flight
    client = agent(acme, Role.L2)
    warm(client, "on")
    user_id = client.membership.user_id
    settle = {
        "A": in_flight(auth_cache.user_scope(user_id)),
        "B": in_flight(auth_cache.user_scope(user_id)),
    }
    other = "B" if first_to_settle == "A" else "A"

    # when one settles (its after-commit write), and a request reads before the other commits
    settle[first_to_settle]()
    with CaptureQueriesContext(connection) as queries:
        assert client.get(CHEAP).status_code == 200  # the user is still active in the database
    assert auth_queries(queries)  # the scope is still pending: read from the database

    # and the other one's write (the user deactivated) commits, its after-commit write not yet run
    User.objects.filter(pk=user_id).update(is_active=False)

    # then no entry built from the state before it is served
    assert client.get(CHEAP).status_code == 401

    # and once it settles too, the scope is cached again, from the current state
    settle[other]()
    assert client.get(CHEAP).status_code == 401
    with committed():
        User.objects.filter(pk=user_id).update(is_active=True)
        auth_cache.user_changed(user_id)
    warm(client, "on")


def test_a_change_in_flight_whose_commit_never_settles_keeps_the_scope_off(on, acme, agent):
    # given a warm agent, and two changes to their user in flight
    client = agent(acme, Role.L2)
    warm(client, "on")
    user_id = client.membership.user_id
    first = in_flight(auth_cache.user_scope(user_id))
    in_flight(auth_cache.user_scope(user_id))  # its after-commit write will fail (never runs)

    # when the first settles and the second's write commits
    first()
    assert client.get(CHEAP).status_code == 200
    User.objects.filter(pk=user_id).update(is_active=False)

    # then the change is seen at once, and the next requests keep reading the database
    for _ in range(2):
        with CaptureQueriesContext(connection) as queries:
            assert client.get(CHEAP).status_code == 401
        assert auth_queries(queries)


def test_an_autocommitted_bump_does_not_end_a_change_in_flight(on, acme, agent):
    # given a change to the user in flight
    client = agent(acme, Role.L2)
    warm(client, "on")
    user_id = client.membership.user_id
    in_flight(auth_cache.user_scope(user_id))

    # when a write outside any transaction bumps the same scope
    connection.in_atomic_block, atomic = False, connection.in_atomic_block
    try:
        auth_cache.user_changed(user_id)
    finally:
        connection.in_atomic_block = atomic

    # then the scope is still pending: nothing is served or stored
    found = auth_cache.grant_lookup(
        user_id=user_id, workspace_id=acme.pk, installation_id=installation_of(acme).pk
    )
    assert found.entry is None and found.versions is None


# ---------------------------------------------------------------------------- key rotation

OLD_KEY = Fernet.generate_key().decode()
NEW_KEY = Fernet.generate_key().decode()


@pytest.fixture
def stripe_agent(settings, make_workspace, agent, committed):
    """A warm agent of a workspace whose Stripe keys were encrypted under ``OLD_KEY``."""
    settings.FIELD_ENCRYPTION_KEYS = [OLD_KEY]
    with committed():
        workspace = make_workspace("rotated", stripe_secret_key="sk_test_rotated_secret")
    client = agent(workspace, Role.L2)
    warm(client, "on")
    return workspace, client


def test_a_key_rotation_ends_the_cached_grants_of_each_workspace(
    on, settings, stripe_agent, agent, committed
):
    workspace, client = stripe_agent
    installation = installation_of(workspace)
    with committed():
        installation.api_token = "helpdesk-api-token"  # a secret the rotation rewrites too
        installation.save()
    client = agent(workspace, Role.L2)  # a token for the installation as it now is
    warm(client, "on")
    grant = auth_cache.grant_key(
        user_id=client.membership.user_id,
        workspace_id=workspace.pk,
        installation_id=installation.pk,
    )
    installation_key = session_cache.entry_key("installation", installation.pk)
    assert cache.get(grant) and cache.get(installation_key)

    # when the keys rotate (the rotation commits), and the old key is removed
    settings.FIELD_ENCRYPTION_KEYS = [NEW_KEY, OLD_KEY]
    with committed():
        call_command("rotate_encryption_keys", stdout=StringIO())
    settings.FIELD_ENCRYPTION_KEYS = [NEW_KEY]

    # then neither the grant nor the installation entry is served any more
    assert (
        auth_cache.grant_lookup(
            user_id=client.membership.user_id,
            workspace_id=workspace.pk,
            installation_id=installation.pk,
        ).entry
        is None
    )
    assert (
        session_cache.lookup(
            installation_key, [session_cache.installation_scope(installation.pk)]
        ).entry
        is None
    )

    # and the next request is answered from the database, under the new key
    with CaptureQueriesContext(connection) as queries:
        assert client.get(ME).status_code == 200
    assert auth_queries(queries)
    assert Workspace.objects.get(pk=workspace.pk).stripe_secret_key == "sk_test_rotated_secret"
    warm(client, "on")  # and cached again, under the new key


def test_a_cached_grant_whose_secret_no_longer_decrypts_is_a_miss(on, settings, stripe_agent):
    workspace, client = stripe_agent

    # given the grant entry still holds the old key's ciphertext (an entry stored between a
    # rotation's update and its bump, say), the row no longer does, and the old key is gone
    Workspace.objects.filter(pk=workspace.pk).update(stripe_secret_key="")
    settings.FIELD_ENCRYPTION_KEYS = [NEW_KEY]

    # then the request reads the database instead of answering 500
    with CaptureQueriesContext(connection) as queries:
        assert client.get(ME).status_code == 200
    assert auth_queries(queries)
