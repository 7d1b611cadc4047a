"""The setup commands: create_workspace, add_installation, generate_encryption_key."""

from __future__ import annotations

from io import StringIO

import pytest
from cryptography.fernet import Fernet
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from django.contrib.auth.models import Group
from django.core.management import call_command, load_command_class
from django.core.management.base import CommandError
from guardian.shortcuts import get_perms

from billing_app.catalog import ROLE_CODENAMES, Role
from billing_app.models import ActionPolicy, ApprovalRoute, Workspace, WorkspaceInstallation
from billing_app.roles import workspace_role_groups
from helpdesk_connectors.models import Installation


def run(command: str, /, **options) -> str:
    out = StringIO()
    call_command(command, stdout=out, stderr=StringIO(), **options)
    return out.getvalue()


def counts() -> dict[str, int]:
    return {
        "workspaces": Workspace.objects.count(),
        "groups": Group.objects.count(),
        "cells": ActionPolicy.objects.count(),
        "routes": ApprovalRoute.objects.count(),
        "installations": Installation.objects.count(),
        "links": WorkspaceInstallation.objects.count(),
    }


@pytest.fixture(autouse=True)
def _no_secret_env(monkeypatch):
    for name in (
        "STRIPE_SECRET_KEY",
        "STRIPE_WEBHOOK_SECRET",
        "HELPDESK_SHARED_SECRET",
        "HELPDESK_API_TOKEN",
        "HELPDESK_OAUTH_TOKEN",
    ):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def public_key_pem() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


# -- create_workspace --------------------------------------------------------


def test_create_workspace_sets_up_roles_and_the_matrix(db):
    # when an operator creates a sandbox workspace
    out = run("create_workspace", slug="acme", name="Acme Corp", currency="eur", provider="sandbox")

    # then it exists with its base currency, six role groups and the default matrix
    workspace = Workspace.objects.get(slug="acme")
    assert (workspace.name, workspace.base_currency, workspace.provider) == (
        "Acme Corp",
        "EUR",
        "sandbox",
    )
    groups = workspace_role_groups(workspace)
    assert set(groups) == set(Role)
    for role, group in groups.items():
        assert set(get_perms(group, workspace)) == set(ROLE_CODENAMES[role])
    assert ActionPolicy.objects.filter(workspace=workspace).count() == 14 * 4
    assert ApprovalRoute.objects.filter(workspace=workspace).exists()
    assert "Created workspace 'acme'" in out
    assert "add_installation --workspace acme" in out


def test_create_stripe_workspace_reads_secrets_from_the_environment(db, monkeypatch):
    # given the Stripe secrets in environment variables (not in shell history)
    monkeypatch.setenv("STRIPE_SECRET_KEY", "sk_test_51EnvKey0000abcd")
    monkeypatch.setenv("STRIPE_WEBHOOK_SECRET", "whsec_envsecret1234")

    out = run("create_workspace", slug="acme", name="Acme Corp", provider="stripe")

    # then the workspace holds them, and the output never shows them
    workspace = Workspace.objects.get(slug="acme")
    assert workspace.stripe_secret_key == "sk_test_51EnvKey0000abcd"
    assert workspace.stripe_webhook_secret == "whsec_envsecret1234"
    assert "sk_test_51EnvKey0000abcd" not in out
    assert "whsec_envsecret1234" not in out
    assert "/webhooks/stripe/acme/" in out


def test_create_workspace_options_override_the_environment(db, monkeypatch):
    monkeypatch.setenv("STRIPE_SECRET_KEY", "sk_test_from_env")
    run(
        "create_workspace",
        slug="acme",
        name="Acme",
        provider="stripe",
        stripe_secret_key="rk_test_from_option",
    )
    workspace = Workspace.objects.get(slug="acme")
    assert workspace.stripe_secret_key == "rk_test_from_option"
    assert workspace.stripe_webhook_secret == ""


def test_sandbox_workspace_ignores_stripe_environment_variables(db, monkeypatch):
    monkeypatch.setenv("STRIPE_SECRET_KEY", "sk_live_do_not_store")
    run("create_workspace", slug="demo-co", name="Demo Co", provider="sandbox")
    assert Workspace.objects.get(slug="demo-co").stripe_secret_key == ""


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"currency": "XYZ"}, "Unknown currency 'XYZ'"),
        ({"currency": "dollars"}, "Unknown currency 'DOLLARS'"),
        ({"slug": "Bad_Slug"}, "slug: Lower-case letters, digits and dashes."),
        ({"slug": "a"}, "slug:"),
        ({"slug": "acme-"}, "slug:"),
        ({"name": "  "}, "name:"),
        ({"provider": "stripe"}, "--provider stripe needs the Stripe secret key"),
        ({"provider": "braintree"}, "Unknown billing provider 'braintree'"),
        (
            {"provider": "stripe", "stripe_secret_key": "pk_test_123"},
            "That is a publishable key",
        ),
        ({"provider": "stripe", "stripe_secret_key": "hello"}, "starts with sk_"),
        (
            {"provider": "stripe", "stripe_secret_key": "sk_test_1", "stripe_webhook_secret": "x"},
            "starts with whsec_",
        ),
        ({"stripe_secret_key": "sk_test_1"}, "only used with --provider stripe"),
    ],
)
def test_create_workspace_refuses_bad_input_and_changes_nothing(db, options, message):
    before = counts()
    options = {"slug": "acme", "name": "Acme Corp", "provider": "sandbox", **options}

    with pytest.raises(CommandError) as error:
        run("create_workspace", **options)

    assert message in str(error.value)
    assert "Nothing was changed." in str(error.value)
    assert counts() == before


def test_create_workspace_names_every_problem_at_once(db):
    with pytest.raises(CommandError) as error:
        run("create_workspace", slug="Bad_Slug", name="X", currency="XYZ", provider="sandbox")
    assert "Unknown currency 'XYZ'" in str(error.value)
    assert "slug:" in str(error.value)


def test_create_workspace_refuses_a_duplicate_slug(db):
    run("create_workspace", slug="acme", name="Acme Corp", provider="sandbox")
    before = counts()

    with pytest.raises(CommandError, match="slug 'acme' already exists"):
        run("create_workspace", slug="acme", name="Another Acme", provider="sandbox")

    assert counts() == before
    assert Workspace.objects.get(slug="acme").name == "Acme Corp"


def test_create_workspace_requires_an_explicit_provider(db):
    # when an operator leaves the provider out, then nothing defaults to the sandbox
    before = counts()
    with pytest.raises(CommandError, match="--provider"):
        call_command("create_workspace", slug="acme", name="Acme Corp")
    assert counts() == before


def test_create_workspace_refuses_the_sandbox_where_it_is_disabled(db, settings):
    settings.BILLING_DESK_SANDBOX_ENABLED = False
    before = counts()
    with pytest.raises(CommandError, match="sandbox .* is disabled"):
        run("create_workspace", slug="acme", name="Acme Corp", provider="sandbox")
    assert counts() == before


def test_create_workspace_requires_slug_and_name(db):
    with pytest.raises(CommandError, match="--slug"):
        call_command("create_workspace", name="Acme")


# -- add_installation --------------------------------------------------------


@pytest.fixture
def acme(db):
    run("create_workspace", slug="acme", name="Acme Corp", provider="sandbox")
    return Workspace.objects.get(slug="acme")


def test_add_zendesk_installation_with_app_id(acme):
    out = run(
        "add_installation",
        workspace="acme",
        connector="zendesk",
        domain="https://Acme.Zendesk.com/",
        installation_id="360000123",
        app_id="987654",
        api_email="billing-bot@acme.example",
        api_token="zd-api-token-secret",
    )

    installation = Installation.objects.get(connector="zendesk")
    assert installation.domain == "acme.zendesk.com"
    assert (installation.installation_id, installation.app_id) == ("360000123", "987654")
    assert installation.api_token == "zd-api-token-secret"
    assert installation.workspace_link.workspace == acme
    assert "zd-api-token-secret" not in out
    assert "/zendesk/sidebar/" in out


def test_add_zendesk_installation_with_a_public_key_file(acme, tmp_path, public_key_pem):
    key_file = tmp_path / "zendesk.pem"
    key_file.write_text(public_key_pem)

    out = run(
        "add_installation",
        workspace="acme",
        connector="zendesk",
        domain="acme.zendesk.com",
        public_key_file=str(key_file),
    )

    installation = Installation.objects.get(connector="zendesk")
    assert installation.public_key == public_key_pem.strip()
    assert "No API credentials" in out


def test_add_freshdesk_installation_reads_secrets_from_the_environment(acme, monkeypatch):
    monkeypatch.setenv("HELPDESK_SHARED_SECRET", "fd-shared-secret-0123456789abcdef")
    monkeypatch.setenv("HELPDESK_API_TOKEN", "fd-api-key")

    out = run(
        "add_installation", workspace="acme", connector="freshdesk", domain="acme.freshdesk.com"
    )

    installation = Installation.objects.get(connector="freshdesk")
    assert installation.shared_secret == "fd-shared-secret-0123456789abcdef"
    assert installation.api_token == "fd-api-key"
    assert "fd-shared-secret" not in out
    assert "/freshdesk/session/" in out


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"workspace": "nope"}, "No workspace with slug 'nope'"),
        ({"connector": "kayako"}, "invalid choice: 'kayako'"),
        ({"connector": "zendesk"}, "Zendesk needs the app id"),
        ({"connector": "zendesk", "app_id": "abc"}, "A Zendesk app id is a number."),
        (
            {"connector": "zendesk", "app_id": "1", "api_token": "t"},
            "used with the agent email",
        ),
        ({"connector": "freshdesk"}, "Freshdesk needs the shared secret"),
        ({"connector": "freshdesk", "shared_secret": "s", "domain": "not a host"}, "host name"),
        ({"connector": "freshdesk", "shared_secret": "s", "domain": "acme_fd.com"}, "host name"),
        ({"public_key_file": "/nonexistent/key.pem", "app_id": "1"}, "Cannot read the public key"),
    ],
)
def test_add_installation_refuses_bad_input_and_changes_nothing(acme, options, message):
    before = counts()
    options = {"workspace": "acme", "connector": "zendesk", "domain": "acme.zendesk.com", **options}

    with pytest.raises(CommandError) as error:
        run("add_installation", **options)

    assert message in str(error.value)
    assert counts() == before


def test_add_installation_refuses_a_key_file_that_is_not_a_public_key(acme, tmp_path):
    key_file = tmp_path / "key.pem"
    key_file.write_text("-----BEGIN PUBLIC KEY-----\nnot really\n-----END PUBLIC KEY-----\n")
    before = counts()

    with pytest.raises(CommandError, match="Not a PEM public key"):
        run(
            "add_installation",
            workspace="acme",
            connector="zendesk",
            domain="acme.zendesk.com",
            public_key_file=str(key_file),
        )
    assert counts() == before


def test_add_installation_refuses_a_domain_already_installed(acme, make_workspace):
    run(
        "add_installation",
        workspace="acme",
        connector="zendesk",
        domain="acme.zendesk.com",
        app_id="1",
    )
    make_workspace("globex")
    before = counts()

    # the same helpdesk account cannot belong to a second workspace
    with pytest.raises(CommandError, match="already exists"):
        run(
            "add_installation",
            workspace="globex",
            connector="zendesk",
            domain="ACME.zendesk.com",
            app_id="1",
        )
    assert counts() == before


# -- key generation and help --------------------------------------------------


def test_generate_encryption_key_prints_a_fresh_fernet_key():
    first = run("generate_encryption_key").strip()
    second = run("generate_encryption_key").strip()
    assert first != second
    token = Fernet(first.encode()).encrypt(b"secret")
    assert Fernet(first.encode()).decrypt(token) == b"secret"


@pytest.mark.parametrize(
    ("name", "mentions"),
    [
        ("create_workspace", ["--slug", "--currency", "STRIPE_SECRET_KEY", "{stripe,sandbox}"]),
        (
            "add_installation",
            ["--public-key-file", "--shared-secret", "{zendesk,freshdesk}", "HELPDESK_API_TOKEN"],
        ),
        ("generate_encryption_key", ["BILLING_DESK_ENCRYPTION_KEYS", "rotate_encryption_keys"]),
        ("rotate_encryption_keys", ["--dry-run", "newest", "nothing is changed"]),
    ],
)
def test_every_command_explains_itself_in_help(name, mentions):
    parser = load_command_class("billing_app", name).create_parser("manage.py", name)
    text = " ".join(parser.format_help().split())
    for mention in mentions:
        assert mention in text, mention
