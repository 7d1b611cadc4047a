"""The Zendesk app's public key (verifies signed-URL tokens): the forms it arrives in, checked.

``GET /api/v2/apps/{app_id}/public_key.pem`` answers with the app's RSA public key.
A copy of Zendesk's Apps API documentation shows that answer as a JSON-quoted
string rather than bare PEM text, so the key is accepted in exactly these forms,
from the API and from a file an admin saved (``add_installation --public-key-file``):

* raw PEM: ``-----BEGIN PUBLIC KEY-----`` … ``-----END PUBLIC KEY-----``
  (SubjectPublicKeyInfo; PKCS#1 ``BEGIN RSA PUBLIC KEY`` is read too);
* a JSON string whose value is that PEM: ``"-----BEGIN PUBLIC KEY-----\\n…"``;
* a JSON object whose one member ``public_key`` is that PEM.

Anything else — other JSON, several keys, a certificate, a private key, a key that is
not RSA or is shorter than 2048 bits — is refused with :class:`PublicKeyError`. The
key is stored as canonical SubjectPublicKeyInfo PEM, whichever form it came in.
"""

from __future__ import annotations

import json
import re

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey

MIN_RSA_BITS = 2048
MAX_KEY_TEXT = 16_384
_PEM_BLOCK = re.compile(
    r"\A-----BEGIN (?P<label>(?:RSA )?PUBLIC KEY)-----\r?\n"
    r"(?P<body>[A-Za-z0-9+/=\r\n]+?)"
    r"-----END (?P=label)-----\Z"
)


class PublicKeyError(ValueError):
    """The text is not the app's RSA public key in a form Zendesk documents."""


def public_key_pem(text: str | bytes) -> str:
    """The RSA public key in ``text`` (raw PEM or a documented JSON form) as canonical PEM."""
    key = public_key_load(text)
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode("ascii")


def public_key_load(text: str | bytes) -> RSAPublicKey:
    """The RSA public key in ``text`` (raw PEM or a documented JSON form), or :class:`PublicKeyError`."""
    pem = _pem_text(text)
    match = _PEM_BLOCK.match(pem)
    if match is None:
        raise PublicKeyError(
            "Not a PEM public key: expected one -----BEGIN PUBLIC KEY----- … "
            "-----END PUBLIC KEY----- block and nothing else."
        )
    try:
        key = serialization.load_pem_public_key(pem.encode("ascii"))
    except (ValueError, TypeError):
        raise PublicKeyError(
            "Not a PEM public key: the key data inside the PEM block is malformed."
        ) from None
    if not isinstance(key, RSAPublicKey):
        raise PublicKeyError(
            "Not an RSA public key: Zendesk signs app tokens with RS256, so the app's key is RSA."
        )
    if key.key_size < MIN_RSA_BITS:
        raise PublicKeyError(
            f"The RSA public key has {key.key_size} bits: at least {MIN_RSA_BITS} are required."
        )
    return key


def _pem_text(text: str | bytes) -> str:
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError:
            raise PublicKeyError("Not a PEM public key: the text is not UTF-8.") from None
    if not isinstance(text, str):
        raise PublicKeyError("Not a PEM public key.")
    if len(text) > MAX_KEY_TEXT:
        raise PublicKeyError("Not a PEM public key: the text is far too long for one key.")
    stripped = text.strip().lstrip("\ufeff")
    if not stripped:
        raise PublicKeyError("The public key is empty.")
    if stripped[0] in '"{':
        try:
            value = json.loads(stripped)
        except ValueError:
            raise PublicKeyError(
                "Not a PEM public key: the text starts like JSON but is not valid JSON."
            ) from None
        if isinstance(value, dict):
            if set(value) != {"public_key"}:
                raise PublicKeyError(
                    'Not a PEM public key: a JSON object must have exactly one member, "public_key".'
                )
            value = value["public_key"]
        if not isinstance(value, str):
            raise PublicKeyError("Not a PEM public key: the JSON value is not a PEM string.")
        stripped = value.strip()
    return stripped.replace("\r\n", "\n")
