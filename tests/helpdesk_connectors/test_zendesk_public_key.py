"""The Zendesk app's public key: raw PEM or the API's JSON forms, fetched or configured, RSA only."""

from __future__ import annotations

import json
from io import StringIO

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from django.core.management import call_command
from django.core.management.base import CommandError

from helpdesk_connectors.models import Installation
from helpdesk_connectors.zendesk.keys import PublicKeyError, public_key_load, public_key_pem
from tests.helpdesk_support import (
    ZENDESK_APP_ID,
)

from .conftest import (
    ZENDESK_BASE,
)

SIDEBAR = "/zendesk/sidebar/"
KEY_URL = f"{ZENDESK_BASE}/api/v2/apps/{ZENDESK_APP_ID}/public_key.pem"


def _spki(public_key) -> str:
    return public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()


@pytest.fixture(scope="module")
def ec_public_pem() -> str:
    return _spki(ec.generate_private_key(ec.SECP256R1()).public_key())


@pytest.fixture(scope="module")
def short_rsa_public_pem() -> str:
    return _spki(rsa.generate_private_key(public_exponent=65537, key_size=1024).public_key())


# The forms the key arrives in: the endpoint's PEM text, and the JSON forms of its answer.
FORMS = {
    "raw PEM": lambda pem: pem,
    "raw PEM with CRLF and blank lines": lambda pem: "\r\n" + pem.replace("\n", "\r\n") + "\r\n",
    "JSON-quoted string": lambda pem: json.dumps(pem),
    "JSON object with public_key": lambda pem: json.dumps({"public_key": pem}),
}


def _garbage(pem: str, ec_pem: str, short_pem: str, private_pem: str) -> dict[str, str]:
    body = pem.splitlines()[1:-1]
    return {
        "empty": "",
        "whitespace": "  \n ",
        "plain text": "not a key",
        "HTML error page": "<html><body>Not found</body></html>",
        "PEM header only": "-----BEGIN PUBLIC KEY-----\n-----END PUBLIC KEY-----\n",
        "broken base64 inside": "-----BEGIN PUBLIC KEY-----\nnot really\n-----END PUBLIC KEY-----\n",
        "truncated PEM": pem[: len(pem) // 2],
        "base64 without armour": "".join(body),
        "two keys": pem + pem,
        "text around the key": f"key:\n{pem}",
        "a certificate label": pem.replace("PUBLIC KEY", "CERTIFICATE"),
        "a private key": private_pem,
        "an EC key": ec_pem,
        "a 1024-bit RSA key": short_pem,
        "JSON object with another member": json.dumps({"public_key": pem, "id": 1}),
        "JSON object under another name": json.dumps({"key": pem}),
        "JSON object with a non-string key": json.dumps({"public_key": {"pem": pem}}),
        "JSON list": json.dumps([pem]),
        "JSON number": "42",
        "JSON string of garbage": json.dumps("not a key"),
        "JSON string of an EC key": json.dumps(ec_pem),
        "invalid JSON": '{"public_key": ',
    }


@pytest.fixture(scope="module")
def garbage(rsa_key, public_pem, ec_public_pem, short_rsa_public_pem) -> dict[str, str]:
    private_pem = rsa_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    return _garbage(public_pem, ec_public_pem, short_rsa_public_pem, private_pem)


GARBAGE_NAMES = list(_garbage("-\nx\n-", "", "", ""))


# --- the reader ------------------------------------------------------------------------------


@pytest.mark.parametrize("form", FORMS)
def test_each_documented_form_gives_the_same_canonical_pem(form, public_pem, rsa_key):
    text = FORMS[form](public_pem)
    assert public_key_pem(text) == public_pem
    assert public_key_pem(text.encode()) == public_pem  # a file's bytes read the same
    assert public_key_load(text).public_numbers() == rsa_key.public_key().public_numbers()


def test_pkcs1_rsa_public_key_is_read_and_stored_as_spki(rsa_key, public_pem):
    pkcs1 = (
        rsa_key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.PKCS1)
        .decode()
    )
    assert pkcs1.startswith("-----BEGIN RSA PUBLIC KEY-----")
    assert public_key_pem(pkcs1) == public_pem


@pytest.mark.parametrize("name", GARBAGE_NAMES)
def test_anything_else_is_refused(name, garbage):
    with pytest.raises(PublicKeyError) as error:
        public_key_pem(garbage[name])
    assert str(error.value)  # a message an admin can act on


# --- fetched from Zendesk ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("form", "content_type"),
    [
        ("raw PEM", "application/x-pem-file"),
        ("JSON-quoted string", "application/json"),
        ("JSON object with public_key", "application/json"),
    ],
)
def test_fetched_key_in_each_form_verifies_tokens_and_is_stored_as_pem(
    form,
    content_type,
    client,
    http,
    zendesk_installation,
    zendesk_token,
    zendesk_agent_api,
    public_pem,
    panel_template,
):
    # given an installation that knows only its app id, and Zendesk answering in this form
    Installation.objects.filter(pk=zendesk_installation.pk).update(public_key="")
    http.get(KEY_URL, body=FORMS[form](public_pem), content_type=content_type)
    zendesk_agent_api(35436)

    # when the agent opens a ticket
    response = client.post(SIDEBAR, {"token": zendesk_token()})

    # then the token verifies with that key, kept in the row as plain PEM
    assert response.status_code == 200
    zendesk_installation.refresh_from_db()
    assert zendesk_installation.public_key == public_pem
    assert zendesk_installation.public_key_fetched_at is not None


@pytest.mark.parametrize("name", ["plain text", "HTML error page", "an EC key", "JSON list"])
def test_fetched_garbage_is_refused_and_not_stored(
    name, client, http, zendesk_installation, zendesk_token, garbage
):
    Installation.objects.filter(pk=zendesk_installation.pk).update(public_key="")
    http.get(KEY_URL, body=garbage[name], content_type="text/plain")

    response = client.post(SIDEBAR, {"token": zendesk_token()})

    assert response.status_code == 401
    assert 'error="public_key_unavailable"' in response["WWW-Authenticate"]
    zendesk_installation.refresh_from_db()
    assert zendesk_installation.public_key == ""
    assert zendesk_installation.public_key_fetched_at is None


# --- configured in the installation ------------------------------------------------------------


@pytest.mark.parametrize("form", FORMS)
def test_configured_key_in_each_form_verifies_tokens(
    form,
    client,
    http,
    zendesk_installation,
    zendesk_token,
    zendesk_agent_api,
    public_pem,
    panel_template,
):
    # given the key stored as an admin pasted it (no fetch is needed)
    Installation.objects.filter(pk=zendesk_installation.pk).update(
        public_key=FORMS[form](public_pem)
    )
    zendesk_agent_api(35436)

    response = client.post(SIDEBAR, {"token": zendesk_token()})

    assert response.status_code == 200
    assert not [c for c in http.calls if c.request.url == KEY_URL]


@pytest.mark.parametrize("name", ["broken base64 inside", "an EC key", "a 1024-bit RSA key"])
def test_configured_garbage_is_refused(name, client, zendesk_installation, zendesk_token, garbage):
    Installation.objects.filter(pk=zendesk_installation.pk).update(public_key=garbage[name])

    response = client.post(SIDEBAR, {"token": zendesk_token()})

    assert response.status_code == 401
    assert 'error="installation_not_configured"' in response["WWW-Authenticate"]


# --- add_installation --public-key-file ----------------------------------------------------


def _add(**options) -> str:
    out = StringIO()
    call_command(
        "add_installation",
        workspace="acme",
        connector="zendesk",
        domain="acme.zendesk.com",
        stdout=out,
        stderr=StringIO(),
        **options,
    )
    return out.getvalue()


@pytest.mark.parametrize("form", FORMS)
def test_public_key_file_in_each_form_is_stored_as_pem(form, workspace, tmp_path, public_pem):
    # given the key saved from the API as it came
    key_file = tmp_path / "zendesk-key.pem"
    key_file.write_text(FORMS[form](public_pem))

    _add(public_key_file=str(key_file), installation_id="360001234")

    installation = Installation.objects.get(connector="zendesk")
    assert installation.public_key == public_pem.strip()  # the service strips the text


@pytest.mark.parametrize("name", GARBAGE_NAMES)
def test_public_key_file_with_anything_else_is_refused_and_nothing_changes(
    name, workspace, tmp_path, garbage
):
    key_file = tmp_path / "zendesk-key.pem"
    key_file.write_text(garbage[name])

    with pytest.raises(CommandError) as error:
        _add(public_key_file=str(key_file), app_id="818181")

    assert "holds no usable key" in str(error.value) or "empty" in str(error.value)
    assert "Nothing was changed." in str(error.value)
    assert not Installation.objects.exclude(connector="demo").exists()


@pytest.mark.parametrize(
    ("make_path", "message"),
    [
        (lambda tmp: tmp / "missing.pem", "Cannot read the public key file"),
        (lambda tmp: tmp, "Cannot read the public key file"),  # a folder
    ],
)
def test_unreadable_public_key_file_is_refused(make_path, message, workspace, tmp_path):
    with pytest.raises(CommandError, match=message):
        _add(public_key_file=str(make_path(tmp_path)), app_id="818181")
    assert not Installation.objects.exclude(connector="demo").exists()


def test_binary_public_key_file_is_refused(workspace, tmp_path):
    key_file = tmp_path / "key.der"
    key_file.write_bytes(b"\x30\x82\x01\x22\xff\xfe\x00")
    with pytest.raises(CommandError, match="not UTF-8"):
        _add(public_key_file=str(key_file), app_id="818181")
    assert not Installation.objects.exclude(connector="demo").exists()


def test_huge_public_key_file_is_refused(workspace, tmp_path):
    key_file = tmp_path / "huge.pem"
    key_file.write_text("A" * 100_000)
    with pytest.raises(CommandError, match="too large"):
        _add(public_key_file=str(key_file), app_id="818181")
    assert not Installation.objects.exclude(connector="demo").exists()


def test_public_key_file_is_for_zendesk_only(workspace, tmp_path, public_pem):
    key_file = tmp_path / "key.pem"
    key_file.write_text(public_pem)
    with pytest.raises(CommandError, match="for Zendesk installations"):
        call_command(
            "add_installation",
            workspace="acme",
            connector="freshdesk",
            domain="acme.freshdesk.com",
            shared_secret="fd-shared-secret-4f9b2c61d0e8a7",
            public_key_file=str(key_file),
            stdout=StringIO(),
        )
    assert not Installation.objects.exclude(connector="demo").exists()
