"""The tests' Zendesk and Freshdesk installations with API credentials, added in one place."""

from __future__ import annotations

from typing import Any

from billing_app.services.workspaces import installation_add
from helpdesk_connectors.models import Installation

ZENDESK_DOMAIN = "acme.zendesk.com"
ZENDESK_INSTALLATION_ID = "360001234"
ZENDESK_APP_ID = "818181"
FRESHDESK_DOMAIN = "acme.freshdesk.com"
FRESHDESK_SECRET = "fd-shared-secret-4f9b2c61d0e8a7"
FRESHDESK_API_KEY = "fdApiKey123"


def zendesk_installation_add(workspace: Any, **extra: Any) -> Installation:
    """Acme's Zendesk app installation, with an API token (``extra``: e.g. its public key)."""
    return installation_add(
        workspace=workspace,
        connector="zendesk",
        domain=ZENDESK_DOMAIN,
        installation_id=ZENDESK_INSTALLATION_ID,
        app_id=ZENDESK_APP_ID,
        api_email="admin@acme.example",
        api_token="zdApiToken",
        **extra,
    )


def freshdesk_installation_add(workspace: Any) -> Installation:
    """Acme's Freshdesk app installation, with its request-proxy secret and API key."""
    return installation_add(
        workspace=workspace,
        connector="freshdesk",
        domain=FRESHDESK_DOMAIN,
        shared_secret=FRESHDESK_SECRET,
        api_email="admin@acme.example",
        api_token=FRESHDESK_API_KEY,
    )
