"""Secrets in the database are ciphertext at rest, plaintext through the model; keys rotate."""

from __future__ import annotations

from io import StringIO

import pytest
from cryptography.fernet import Fernet, InvalidToken
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection, transaction
from django.test import override_settings

from billing_app.models import Workspace
from billing_app.services.workspaces import installation_add, workspace_create
from helpdesk_connectors.fields import PREFIX, decrypt, encrypt
from helpdesk_connectors.models import Installation

OLD_KEY = Fernet.generate_key().decode()
NEW_KEY = Fernet.generate_key().decode()

STRIPE_KEY = "sk_test_51Kx0000000000000000secretXYZ"
WEBHOOK_SECRET = "whsec_0000000000000000000000supersecret"


def raw(table: str, column: str, pk: int) -> str:
    """The value as stored, read with plain SQL — past the model field."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {connection.ops.quote_name(column)} FROM {connection.ops.quote_name(table)} "
            "WHERE id = %s",
            [pk],
        )
        return cursor.fetchone()[0]


def make_stripe_workspace(slug: str = "acme") -> Workspace:
    return workspace_create(
        slug=slug,
        name="Acme Corp",
        provider="stripe",
        stripe_secret_key=STRIPE_KEY,
        stripe_webhook_secret=WEBHOOK_SECRET,
    )


def rotate() -> str:
    out = StringIO()
    call_command("rotate_encryption_keys", stdout=out)
    return out.getvalue()


def test_workspace_stripe_secrets_are_ciphertext_in_the_row(db):
    workspace = make_stripe_workspace()

    stored_key = raw("billing_app_workspace", "stripe_secret_key", workspace.pk)
    stored_hook = raw("billing_app_workspace", "stripe_webhook_secret", workspace.pk)

    # the row holds tokens that do not contain the secret
    for stored, secret in ((stored_key, STRIPE_KEY), (stored_hook, WEBHOOK_SECRET)):
        assert stored.startswith(PREFIX)
        assert secret not in stored
        assert secret[-8:] not in stored
    # and the model reads plaintext back
    fresh = Workspace.objects.get(pk=workspace.pk)
    assert (fresh.stripe_secret_key, fresh.stripe_webhook_secret) == (STRIPE_KEY, WEBHOOK_SECRET)


def test_installation_secrets_are_ciphertext_in_the_row(workspace):
    installation = installation_add(
        workspace=workspace,
        connector="freshdesk",
        domain="acme.freshdesk.com",
        shared_secret="fd-shared-secret-value",
        api_token="fd-api-key-value",
        oauth_token="oauth-access-token-value",
    )
    fresh = Installation.objects.get(pk=installation.pk)
    for column, secret in (
        ("shared_secret", "fd-shared-secret-value"),
        ("api_token", "fd-api-key-value"),
        ("oauth_token", "oauth-access-token-value"),
    ):
        stored = raw("helpdesk_connectors_installation", column, installation.pk)
        assert stored.startswith(PREFIX)
        assert secret not in stored
        assert getattr(fresh, column) == secret
    # a value that is not secret stays readable
    assert (
        raw("helpdesk_connectors_installation", "domain", installation.pk) == "acme.freshdesk.com"
    )


def test_empty_secrets_stay_empty(workspace):
    assert raw("billing_app_workspace", "stripe_secret_key", workspace.pk) == ""
    assert Workspace.objects.get(pk=workspace.pk).stripe_secret_key == ""


def test_the_same_secret_encrypts_differently_each_time():
    with override_settings(FIELD_ENCRYPTION_KEYS=[NEW_KEY]):
        first, second = encrypt("same"), encrypt("same")
        assert first != second
        assert decrypt(first) == decrypt(second) == "same"


def test_a_value_written_under_an_old_key_decrypts_after_a_new_key_is_prepended(db):
    # given a secret written while OLD was the only key
    with override_settings(FIELD_ENCRYPTION_KEYS=[OLD_KEY]):
        workspace = make_stripe_workspace()
    stored = raw("billing_app_workspace", "stripe_secret_key", workspace.pk)

    # when NEW is prepended, then the model still reads it
    with override_settings(FIELD_ENCRYPTION_KEYS=[NEW_KEY, OLD_KEY]):
        assert Workspace.objects.get(pk=workspace.pk).stripe_secret_key == STRIPE_KEY
    # (it really is under OLD: NEW alone cannot read it)
    with pytest.raises(InvalidToken):
        Fernet(NEW_KEY.encode()).decrypt(stored.removeprefix(PREFIX).encode())


def test_rotation_reencrypts_every_secret_under_the_newest_key(db, make_workspace):
    # given secrets of a workspace and an installation written under OLD
    with override_settings(FIELD_ENCRYPTION_KEYS=[OLD_KEY]):
        workspace = make_stripe_workspace()
        installation = installation_add(
            workspace=workspace,
            connector="freshdesk",
            domain="acme.freshdesk.com",
            shared_secret="fd-shared-secret-value",
        )
        version_before = Installation.objects.get(pk=installation.pk).version

    # when NEW is prepended and the rotation runs
    with override_settings(FIELD_ENCRYPTION_KEYS=[NEW_KEY, OLD_KEY]):
        out = rotate()
    assert "Re-encrypted 3 secret(s) in 2 row(s)" in out

    # then NEW alone reads every secret, and OLD reads none
    new, old = Fernet(NEW_KEY.encode()), Fernet(OLD_KEY.encode())
    for table, column, pk in (
        ("billing_app_workspace", "stripe_secret_key", workspace.pk),
        ("billing_app_workspace", "stripe_webhook_secret", workspace.pk),
        ("helpdesk_connectors_installation", "shared_secret", installation.pk),
    ):
        token = raw(table, column, pk).removeprefix(PREFIX).encode()
        assert new.decrypt(token)
        with pytest.raises(InvalidToken):
            old.decrypt(token)
    with override_settings(FIELD_ENCRYPTION_KEYS=[NEW_KEY]):
        assert Workspace.objects.get(pk=workspace.pk).stripe_secret_key == STRIPE_KEY
        fresh = Installation.objects.get(pk=installation.pk)
        assert fresh.shared_secret == "fd-shared-secret-value"
        # rotation is not a configuration change: sessions stay valid
        assert fresh.version == version_before


def test_rotation_dry_run_writes_nothing(db):
    with override_settings(FIELD_ENCRYPTION_KEYS=[OLD_KEY]):
        workspace = make_stripe_workspace()
    before = raw("billing_app_workspace", "stripe_secret_key", workspace.pk)

    with override_settings(FIELD_ENCRYPTION_KEYS=[NEW_KEY, OLD_KEY]):
        out = StringIO()
        call_command("rotate_encryption_keys", "--dry-run", stdout=out)

    assert "Would re-encrypt 2 secret(s) in 1 row(s)" in out.getvalue()
    assert raw("billing_app_workspace", "stripe_secret_key", workspace.pk) == before


def test_rotation_without_the_old_key_fails_and_changes_nothing(db):
    # given two workspaces written under OLD
    with override_settings(FIELD_ENCRYPTION_KEYS=[OLD_KEY]):
        first = make_stripe_workspace("acme")
        second = make_stripe_workspace("globex")
    before = [raw("billing_app_workspace", "stripe_secret_key", w.pk) for w in (first, second)]

    # when OLD was dropped too early, then the model refuses to read the secret
    with override_settings(FIELD_ENCRYPTION_KEYS=[NEW_KEY]):
        with pytest.raises(ImproperlyConfigured, match="not in BILLING_DESK_ENCRYPTION_KEYS"):
            Workspace.objects.get(pk=first.pk)
        # and the rotation stops with a clear message, having rewritten nothing
        with pytest.raises(CommandError) as error:
            rotate()
    assert "billing_app.Workspace #" in str(error.value)
    assert "Nothing was changed." in str(error.value)
    after = [raw("billing_app_workspace", "stripe_secret_key", w.pk) for w in (first, second)]
    assert after == before


def test_a_missing_key_in_production_settings_raises(db):
    # given production settings (DEBUG off, not under test) with no encryption key
    with override_settings(FIELD_ENCRYPTION_KEYS=[], DEBUG=False, TESTING=False):
        # then nothing can be encrypted — no silent fallback key
        with pytest.raises(ImproperlyConfigured, match="BILLING_DESK_ENCRYPTION_KEYS is not set"):
            encrypt("sk_live_123")
        with pytest.raises(ImproperlyConfigured), transaction.atomic():
            Workspace.objects.create(
                slug="prod", name="Prod", provider="stripe", stripe_secret_key="sk_live_123"
            )
        # and the rotation command says so instead of crashing
        with pytest.raises(CommandError, match="BILLING_DESK_ENCRYPTION_KEYS is not set"):
            rotate()
    assert not Workspace.objects.filter(slug="prod").exists()


def test_debug_without_a_key_uses_a_development_key(db):
    with override_settings(FIELD_ENCRYPTION_KEYS=[], DEBUG=True, TESTING=False):
        token = encrypt("dev secret")
        assert decrypt(token) == "dev secret"


def test_a_value_that_is_not_a_token_is_refused():
    with pytest.raises(ValueError, match="not an encrypted token"):
        decrypt("sk_test_plaintext")
