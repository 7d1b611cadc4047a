"""Locale tags from the outside world, as the languages Billing Desk speaks (issue 16).

Pure functions, no database. Helpdesks and Stripe name a language with a tag — Zendesk
``user.locale`` (``de``, ``en-US``, ``pt-BR``), Freshdesk ``contact.language`` (``de``,
``en``), Stripe ``Customer.preferred_locales`` (``["de-DE", "en"]``, most preferred first)
— while the catalogs we ship are ``settings.LANGUAGES`` codes (``en``, ``de``).

* ``language_normalise`` — a tag as one of those codes, or ``""`` when we have no
  catalog for it (the caller falls back: the agent's language, then the default).
* ``customer_language`` — the first of a customer's preferred locales we have.
* ``message_language`` — the language of a message to the customer: theirs when Stripe
  names one we have, else the agent's.
* ``snapshot_locale`` — the key of a context snapshot row: ``""`` for
  ``settings.LANGUAGE_CODE`` (the row writers mark), the code otherwise.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from django.conf import settings
from django.utils import translation

# A BCP 47-ish tag: letters, digits, "-" or "_" (``de``, ``de-DE``, ``de_AT``, ``zh-Hant-TW``).
_TAG_RE = re.compile(r"^[A-Za-z]{2,8}(?:[-_][A-Za-z0-9]{1,8})*$")


def language_codes() -> tuple[str, ...]:
    """The languages we have catalogs for (``settings.LANGUAGES``), lower case."""
    return tuple(code.lower() for code, _name in settings.LANGUAGES)


def default_language() -> str:
    return settings.LANGUAGE_CODE.lower()


def language_normalise(value: Any) -> str:
    """``"de"``, ``"de-DE"``, ``"de_AT"``, ``"DE"`` → ``"de"``; ``"en-US"`` → ``"en"``;
    a language we have no catalog for (``"pt-BR"``), ``""``, ``None`` or junk → ``""``.

    An exact match wins (a ``LANGUAGES`` entry like ``pt-br`` would be kept whole), then
    the tag's primary language subtag.
    """
    if not isinstance(value, str):
        return ""
    tag = value.strip()
    if not tag or len(tag) > 35 or not _TAG_RE.match(tag):
        return ""
    tag = tag.replace("_", "-").lower()
    codes = language_codes()
    if tag in codes:
        return tag
    primary = tag.split("-", 1)[0]
    return primary if primary in codes else ""


def language_or_default(value: Any) -> str:
    """``language_normalise``, falling back to ``settings.LANGUAGE_CODE``."""
    return language_normalise(value) or default_language()


def customer_language(preferred_locales: Any) -> str:
    """The first of Stripe's ``preferred_locales`` (most preferred first) we have, else ``""``."""
    if isinstance(preferred_locales, str):
        preferred_locales = [preferred_locales]
    if not isinstance(preferred_locales, Iterable):
        return ""
    for tag in preferred_locales:
        language = language_normalise(tag)
        if language:
            return language
    return ""


def message_language(*, preferred_locales: Any, agent_language: Any = None) -> str:
    """The language of a message to the customer: the customer's preferred one when we have
    it, else the agent's (default: the active language), else ``settings.LANGUAGE_CODE``."""
    if agent_language is None:
        agent_language = translation.get_language()
    return customer_language(preferred_locales) or language_or_default(agent_language)


def snapshot_locale(language: Any = None) -> str:
    """The context snapshot row for ``language`` (default: the active language): ``""`` for
    ``settings.LANGUAGE_CODE`` and for languages we have no catalog for, else the code."""
    if language is None:
        language = translation.get_language()
    code = language_or_default(language)
    return "" if code == default_language() else code


def snapshot_language(locale: str) -> str:
    """The language a snapshot row is built in: ``settings.LANGUAGE_CODE`` for ``""``."""
    return locale or default_language()


__all__ = [
    "customer_language",
    "default_language",
    "language_codes",
    "language_normalise",
    "language_or_default",
    "message_language",
    "snapshot_language",
    "snapshot_locale",
]
