"""System checks name every missing production setting (``billing.E00x``)."""

from __future__ import annotations

import copy

import pytest
from cryptography.fernet import Fernet
from django.conf import settings
from django.core.checks import run_checks
from django.test import override_settings

from billing_app.checks import encryption_keys_valid, production_providers, production_settings

POSTGRES = copy.deepcopy(settings.DATABASES)
POSTGRES["default"]["ENGINE"] = "django.db.backends.postgresql"

# A complete production configuration: DEBUG off, not under test, every secret set.
PRODUCTION = {
    "DEBUG": False,
    "TESTING": False,
    "SECRET_KEY": "a-long-random-production-secret-key-0123456789",
    "FIELD_ENCRYPTION_KEYS": [Fernet.generate_key().decode()],
    "ALLOWED_HOSTS": ["billing.example.com"],
    "DATABASES": POSTGRES,
    "REDIS_URL": "redis://127.0.0.1:6379/0",
    "DEMO_MODE": False,
    "PUBLIC_BASE_URL": "https://billing.example.com",
}
MISSING = {
    "billing.E001": {"SECRET_KEY": ""},
    "billing.E002": {"FIELD_ENCRYPTION_KEYS": []},
    "billing.E003": {"ALLOWED_HOSTS": []},
    "billing.E004": {
        "DATABASES": settings.DATABASES
        | {"default": {**settings.DATABASES["default"], "ENGINE": "django.db.backends.sqlite3"}}
    },
    "billing.E005": {"REDIS_URL": ""},
    "billing.E006": {"DEMO_MODE": True},
    "billing.W001": {"PUBLIC_BASE_URL": "http://billing.example.com"},
}
NOTHING_SET = {key: value for changes in MISSING.values() for key, value in changes.items()}

pytestmark = pytest.mark.filterwarnings("ignore:Overriding setting DATABASES")


def ids(messages) -> set[str]:
    return {m.id for m in messages}


def test_a_complete_production_configuration_passes():
    with override_settings(**PRODUCTION):
        assert production_settings(None) == []
        assert encryption_keys_valid(None) == []


@pytest.mark.parametrize("check_id", sorted(MISSING))
def test_each_missing_production_setting_is_named(check_id):
    # given production with exactly one setting missing
    with override_settings(**{**PRODUCTION, **MISSING[check_id]}):
        messages = production_settings(None)

    # then exactly that check fires, naming the environment variable to set
    assert ids(messages) == {check_id}
    assert any(
        word in messages[0].msg
        for word in ("DJANGO_", "BILLING_DESK_", "DATABASE_URL", "REDIS_URL")
    )


def test_every_missing_setting_is_named_at_once():
    with override_settings(**{**PRODUCTION, **NOTHING_SET}):
        assert ids(production_settings(None)) == set(MISSING)
        # and Django's own check run reports them (they are registered)
        assert set(MISSING) <= ids(run_checks(tags=["security"]))


@pytest.mark.parametrize("flag", ["DEBUG", "TESTING"])
def test_no_production_check_fires_in_debug_or_under_test(flag):
    with override_settings(**{**PRODUCTION, **NOTHING_SET, flag: True}):
        assert production_settings(None) == []
        assert not {i for i in ids(run_checks(tags=["security"])) if i.startswith("billing.")}


@pytest.mark.parametrize("debug", [True, False])
def test_a_malformed_encryption_key_is_an_error_in_every_mode(debug):
    good = Fernet.generate_key().decode()
    with override_settings(FIELD_ENCRYPTION_KEYS=[good, "not-a-fernet-key"], DEBUG=debug):
        messages = encryption_keys_valid(None)
    assert ids(messages) == {"billing.E007"}
    assert "key #2" in messages[0].msg


# -- the sandbox in production (issue 12) ---------------------------------------------------

STRIPE_ONLY = {"stripe": "billing_app.providers.stripe.provider.StripeProvider"}


def test_the_sandbox_enabled_with_debug_off_is_refused():
    # given production with the sandbox switched on (or left in the registry)
    for extra in (
        {"BILLING_DESK_SANDBOX_ENABLED": True},
        {
            "BILLING_DESK_SANDBOX_ENABLED": False,
            "BILLING_PROVIDERS": STRIPE_ONLY
            | {"sandbox": "billing_app.providers.sandbox.provider.SandboxProvider"},
        },
    ):
        with override_settings(**PRODUCTION, **extra):
            # then billing.E010 says so, also through Django's check run
            assert ids(production_providers(None)) == {"billing.E010"}
            assert "billing.E010" in ids(run_checks(tags=["security"]))


def test_a_sandbox_workspace_in_production_is_refused(make_workspace):
    # given a sandbox workspace (made while the tests enable the sandbox) and a stripe one
    make_workspace("demo-left-over")
    make_workspace(
        "real", provider="stripe", stripe_secret_key="sk_test_123", stripe_webhook_secret=""
    )

    # when the deployment runs as production without the sandbox
    with override_settings(
        **PRODUCTION, BILLING_DESK_SANDBOX_ENABLED=False, BILLING_PROVIDERS=STRIPE_ONLY
    ):
        messages = production_providers(None)

    # then billing.E011 names the sandbox workspace, not the stripe one
    assert ids(messages) == {"billing.E011"}
    assert "demo-left-over (sandbox)" in messages[0].msg
    assert "real" not in messages[0].msg.replace("demo-left-over", "")


def test_production_with_only_stripe_workspaces_passes(make_workspace):
    make_workspace(
        "real", provider="stripe", stripe_secret_key="sk_test_123", stripe_webhook_secret=""
    )
    with override_settings(
        **PRODUCTION, BILLING_DESK_SANDBOX_ENABLED=False, BILLING_PROVIDERS=STRIPE_ONLY
    ):
        assert production_providers(None) == []


@pytest.mark.parametrize("flag", ["DEBUG", "TESTING"])
def test_the_sandbox_is_allowed_in_debug_or_under_test(flag):
    with override_settings(**{**PRODUCTION, "BILLING_DESK_SANDBOX_ENABLED": True, flag: True}):
        assert production_providers(None) == []
