"""Encrypted model fields for secrets stored in the database.

Lives in ``helpdesk_connectors`` because it is the lowest package of ours: billing
may import it, connectors must not import billing. Values are encrypted with
Fernet (AES-128-CBC + HMAC-SHA256) under the keys in
``settings.FIELD_ENCRYPTION_KEYS``; the first key encrypts, every key decrypts, so
keys rotate by prepending a new one and re-saving rows
(``manage.py rotate_encryption_keys``).
"""

from __future__ import annotations

import base64
import hashlib
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import models

PREFIX = "enc1:"


@lru_cache(maxsize=8)
def _fernet(keys: tuple[str, ...], secret_key: str, debug: bool, testing: bool) -> MultiFernet:
    if keys:
        return MultiFernet([Fernet(key.encode()) for key in keys])
    if not (debug or testing):
        raise ImproperlyConfigured(
            "BILLING_DESK_ENCRYPTION_KEYS is not set: secrets cannot be stored in production "
            "without an encryption key (generate one with `python manage.py generate_encryption_key`)."
        )
    # Development and tests only: a key derived from SECRET_KEY.
    derived = base64.urlsafe_b64encode(hashlib.sha256(f"dev-fernet:{secret_key}".encode()).digest())
    return MultiFernet([Fernet(derived)])


def get_fernet() -> MultiFernet:
    return _fernet(
        tuple(settings.FIELD_ENCRYPTION_KEYS),
        settings.SECRET_KEY,
        settings.DEBUG,
        bool(getattr(settings, "TESTING", False)),
    )


def encrypt(value: str) -> str:
    return PREFIX + get_fernet().encrypt(value.encode()).decode()


def decrypt(token: str) -> str:
    if not token.startswith(PREFIX):
        raise ValueError("value is not an encrypted token")
    try:
        return get_fernet().decrypt(token[len(PREFIX) :].encode()).decode()
    except InvalidToken as exc:
        raise ImproperlyConfigured(
            "An encrypted secret could not be decrypted: the encryption key that wrote it is "
            "not in BILLING_DESK_ENCRYPTION_KEYS."
        ) from exc


class EncryptedTextField(models.TextField):
    """A text field stored encrypted; reads return the plaintext. Empty stays empty."""

    def from_db_value(self, value, expression, connection):
        if value in (None, ""):
            return value
        return decrypt(value)

    def get_prep_value(self, value):
        value = super().get_prep_value(value)
        if value in (None, ""):
            return value
        return encrypt(value)
