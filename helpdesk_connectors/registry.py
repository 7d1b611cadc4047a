"""Connectors by key, loaded from ``settings.HELPDESK_CONNECTORS`` (key → dotted path)."""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING

from django.conf import settings
from django.utils.module_loading import import_string

from .base import HelpdeskConnector, NotRegistered

if TYPE_CHECKING:
    from .models import Installation


@cache
def _load(key: str, dotted_path: str) -> HelpdeskConnector:
    cls = import_string(dotted_path)
    if not issubclass(cls, HelpdeskConnector) or cls.key != key:
        raise NotRegistered(f"{dotted_path} is not a HelpdeskConnector with key {key!r}")
    return cls()


def get_connector(key: str) -> HelpdeskConnector:
    try:
        dotted_path = settings.HELPDESK_CONNECTORS[key]
    except KeyError:
        raise NotRegistered(key) from None
    return _load(key, dotted_path)


def registered_keys() -> list[str]:
    return list(settings.HELPDESK_CONNECTORS)


def connector_for(installation: Installation) -> HelpdeskConnector:
    """The connector that serves ``installation`` (``NotRegistered`` if it is not configured)."""
    return get_connector(installation.connector)
