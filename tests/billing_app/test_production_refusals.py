"""Production refuses what is not production (issue 12): providers and settings.

The sandbox simulates billing, so a workspace on it "refunds" without moving money;
``get_provider`` serves it only where the demo or the tests enable it, and any key it
does not know is an error. Settings without their secrets refuse to import with DEBUG
off, so gunicorn does not start (checked in a subprocess with a controlled environment).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from billing_app.models import Workspace
from billing_app.providers import ProviderNotConfigured, get_provider
from billing_app.services.workspaces import workspace_create

ROOT = Path(__file__).resolve().parents[2]


# -- the providers registry -----------------------------------------------------------------


def test_get_provider_serves_the_sandbox_where_it_is_enabled(workspace):
    assert get_provider(workspace).key == "sandbox"


def test_get_provider_refuses_the_sandbox_where_it_is_disabled(workspace, settings):
    # given a deployment without the sandbox
    settings.BILLING_DESK_SANDBOX_ENABLED = False

    # when a sandbox workspace asks for its provider, then nothing is served
    with pytest.raises(ProviderNotConfigured) as error:
        get_provider(workspace)
    assert error.value.code == "provider_not_configured"
    assert "sandbox" in str(error.value) and "disabled" in str(error.value)


@pytest.mark.parametrize("key", ["braintree", "", "Stripe"])
def test_get_provider_refuses_an_unknown_key_instead_of_the_sandbox(workspace, key):
    # given a workspace row naming a provider nobody registered (an old row, a typo)
    Workspace.objects.filter(pk=workspace.pk).update(provider=key)
    workspace.refresh_from_db()

    with pytest.raises(ProviderNotConfigured, match="Unknown billing provider"):
        get_provider(workspace)


def test_get_provider_refuses_a_key_missing_from_the_registry(db, settings):
    workspace = workspace_create(
        slug="real", name="Real", provider="stripe", stripe_secret_key="sk_test_123"
    )
    settings.BILLING_PROVIDERS = {}
    with pytest.raises(ProviderNotConfigured, match="Unknown billing provider 'stripe'"):
        get_provider(workspace)


def test_workspace_create_has_no_default_provider(db):
    with pytest.raises(TypeError, match="provider"):
        workspace_create(slug="acme", name="Acme")  # type: ignore[call-arg]
    assert not Workspace.objects.exists()


def test_the_model_has_no_default_provider():
    assert not Workspace._meta.get_field("provider").has_default()


# -- settings without secrets ---------------------------------------------------------------

SECRETS = {
    "DJANGO_SECRET_KEY": "a-long-random-production-secret-key-0123456789",
    "BILLING_DESK_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
    "DJANGO_ALLOWED_HOSTS": "billing.example.com",
}


def import_settings(**env: str) -> subprocess.CompletedProcess[str]:
    """``import billing_app.settings`` in a fresh interpreter with only ``env`` (and PATH)."""
    clean = {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(ROOT), **env}
    return subprocess.run(
        [sys.executable, "-c", "import billing_app.settings"],
        cwd=ROOT,
        env=clean,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_production_settings_with_every_secret_import():
    result = import_settings(DJANGO_DEBUG="0", BILLING_DESK_TESTING="0", **SECRETS)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("missing", sorted(SECRETS))
def test_production_settings_without_a_secret_refuse_to_import(missing):
    # given DEBUG off, not under test, and one secret missing
    env = {k: v for k, v in SECRETS.items() if k != missing}

    result = import_settings(DJANGO_DEBUG="0", BILLING_DESK_TESTING="0", **env)

    # then the import raises ImproperlyConfigured naming it (gunicorn would not start)
    assert result.returncode != 0
    assert "django.core.exceptions.ImproperlyConfigured" in result.stderr
    assert missing in result.stderr.strip().splitlines()[-1]


def test_production_settings_name_every_missing_secret_at_once():
    result = import_settings(DJANGO_DEBUG="0", BILLING_DESK_TESTING="0")
    last = result.stderr.strip().splitlines()[-1]
    assert "ImproperlyConfigured" in last
    assert all(name in last for name in SECRETS)


@pytest.mark.parametrize(
    "env",
    [
        {"DJANGO_DEBUG": "1", "BILLING_DESK_DEMO": "1"},  # make demo
        {"BILLING_DESK_TESTING": "1"},  # make test
    ],
)
def test_demo_and_test_settings_import_without_secrets(env):
    result = import_settings(**env)
    assert result.returncode == 0, result.stderr


def test_the_sandbox_is_enabled_only_for_the_demo_and_the_tests():
    code = (
        "import billing_app.settings as s; "
        "print(s.BILLING_DESK_SANDBOX_ENABLED, 'sandbox' in s.BILLING_PROVIDERS)"
    )

    def sandbox(**env: str) -> str:
        clean = {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(ROOT), **env}
        result = subprocess.run(
            [sys.executable, "-c", code], cwd=ROOT, env=clean, capture_output=True, text=True
        )
        assert result.returncode == 0, result.stderr
        return result.stdout.strip()

    assert sandbox(DJANGO_DEBUG="1", BILLING_DESK_DEMO="1") == "True True"
    assert sandbox(BILLING_DESK_TESTING="1") == "True True"
    assert sandbox(DJANGO_DEBUG="1") == "False False"
    assert sandbox(DJANGO_DEBUG="0", BILLING_DESK_TESTING="0", **SECRETS) == "False False"
