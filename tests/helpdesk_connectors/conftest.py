"""Fixtures for the connector tests: RSA keys, installations, signed Zendesk tokens, API payloads.

Helpdesk API bodies below are shaped like the real APIs' answers (Zendesk Support
API v2, Freshdesk API v2) so the clients are tested against what they will read.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from django.core.cache import cache

from tests.helpdesk_support import (
    FRESHDESK_DOMAIN,
    ZENDESK_DOMAIN,
    ZENDESK_INSTALLATION_ID,
    freshdesk_installation_add,
    zendesk_installation_add,
)

ZENDESK_BASE = f"https://{ZENDESK_DOMAIN}"
FRESHDESK_BASE = f"https://{FRESHDESK_DOMAIN}"
# The device credential the app frame of agent 43000123 keeps after enrolling (issue 17).
FRESHDESK_DEVICE_SECRET = "dc-43000123-4Kq0sYb2mN7vR1xT9wE3uZ6pL8aH5jC0dF2gB4nM6kQ"
PANEL_TEMPLATE = (
    "PANEL token={{ app_token }} connector={{ connector }} origin={{ helpdesk_origin }} "
    "ticket={{ ticket_id }} email={{ requester_email }}"
)


@pytest.fixture(autouse=True)
def _clear_cache():
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def panel_template(settings, tmp_path):
    """A stand-in ``panel/panel.html`` so entry tests do not depend on the panel's markup."""
    (tmp_path / "panel").mkdir()
    (tmp_path / "panel" / "panel.html").write_text(PANEL_TEMPLATE)
    templates = [dict(t) for t in settings.TEMPLATES]
    templates[0] = {**templates[0], "DIRS": [tmp_path]}
    settings.TEMPLATES = templates
    return tmp_path


def _pem_public(key: rsa.RSAPrivateKey) -> str:
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


@pytest.fixture(scope="session")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="session")
def other_rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="session")
def public_pem(rsa_key) -> str:
    return _pem_public(rsa_key)


@pytest.fixture
def zendesk_installation(workspace, public_pem):
    return zendesk_installation_add(workspace, public_key=public_pem)


@pytest.fixture
def freshdesk_installation(workspace):
    return freshdesk_installation_add(workspace)


def freshdesk_device_enroll(
    installation, agent_id=43000123, secret=FRESHDESK_DEVICE_SECRET, email="maria@acme.example"
):
    """What an agent's enrollment leaves behind: a device credential (only its digest stored),
    bound to the email Freshdesk held for the agent then (``freshdesk_agent``'s by default)."""
    from helpdesk_connectors.freshdesk.devices import digest, email_digest
    from helpdesk_connectors.models import DeviceCredential

    DeviceCredential.objects.create(
        installation=installation,
        agent_id=str(agent_id),
        digest=digest(secret),
        email_digest=email_digest(email),
    )
    return secret


@pytest.fixture
def freshdesk_device(freshdesk_installation):
    """Agent 43000123 enrolled this browser: the secret to send as ``device_credential``."""
    return freshdesk_device_enroll(freshdesk_installation)


def zendesk_claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    claims = {
        "iss": ZENDESK_DOMAIN,
        "aud": f"{ZENDESK_BASE}/api/v2/apps/installations/{ZENDESK_INSTALLATION_ID}.json",
        "sub": f"{ZENDESK_BASE}/api/v2/users/35436.json",
        "iat": now,
        "exp": now + 300,
        "qsh": "d3c1f5b9e1a2",
        "context": {"product": "support", "location": "ticket_sidebar"},
    }
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not None}


@pytest.fixture
def zendesk_token(rsa_key):
    # Each token is single use (issue 12): a distinct jti keeps two tokens minted in one
    # second distinct, as two page loads are. ``jti=None`` mints one without it.
    def make(key=None, algorithm: str = "RS256", **overrides: Any) -> str:
        overrides.setdefault("jti", uuid.uuid4().hex)
        return jwt.encode(zendesk_claims(**overrides), key or rsa_key, algorithm=algorithm)

    return make


def zendesk_user(user_id: int = 35436, **overrides: Any) -> dict[str, Any]:
    user = {
        "id": user_id,
        "url": f"{ZENDESK_BASE}/api/v2/users/{user_id}.json",
        "name": "Johnny Agent",
        "email": "johnny@acme.example",
        "created_at": "2024-03-15T09:12:44Z",
        "updated_at": "2026-11-20T16:02:11Z",
        "time_zone": "Pacific Time (US & Canada)",
        "iana_time_zone": "America/Los_Angeles",
        "phone": None,
        "shared_phone_number": None,
        "photo": None,
        "locale_id": 1,
        "locale": "en-US",
        "organization_id": None,
        "role": "agent",
        "verified": True,
        "external_id": None,
        "tags": [],
        "alias": "",
        "active": True,
        "shared": False,
        "shared_agent": False,
        "last_login_at": "2026-11-27T08:01:02Z",
        "two_factor_auth_enabled": None,
        "signature": "",
        "details": "",
        "notes": "",
        "role_type": None,
        "custom_role_id": None,
        "moderator": False,
        "ticket_restriction": None,
        "only_private_comments": False,
        "restricted_agent": False,
        "suspended": False,
        "default_group_id": 360000111,
        "report_csv": False,
        "user_fields": {},
    }
    user.update(overrides)
    return {"user": user}


def zendesk_group(group_id: int, name: str) -> dict[str, Any]:
    return {
        "url": f"{ZENDESK_BASE}/api/v2/groups/{group_id}.json",
        "id": group_id,
        "is_public": True,
        "name": name,
        "description": "",
        "default": False,
        "deleted": False,
        "created_at": "2024-01-09T10:00:00Z",
        "updated_at": "2025-06-01T10:00:00Z",
    }


def zendesk_memberships(user_id: int, groups: list[tuple[int, str]]) -> dict[str, Any]:
    return {
        "group_memberships": [
            {
                "url": f"{ZENDESK_BASE}/api/v2/group_memberships/{9000 + i}.json",
                "id": 9000 + i,
                "user_id": user_id,
                "group_id": gid,
                "default": i == 0,
                "created_at": "2024-03-15T09:12:44Z",
                "updated_at": "2024-03-15T09:12:44Z",
            }
            for i, (gid, _name) in enumerate(groups)
        ],
        "groups": [zendesk_group(gid, name) for gid, name in groups],
        "next_page": None,
        "previous_page": None,
        "count": len(groups),
    }


@pytest.fixture
def zendesk_agent_api(http):
    """Register Zendesk's answers for one agent: user + group memberships (groups sideloaded)."""

    def register(user_id: int = 35436, groups=((360000111, "Support"),), **user: Any):
        http.get(f"{ZENDESK_BASE}/api/v2/users/{user_id}.json", json=zendesk_user(user_id, **user))
        http.get(
            f"{ZENDESK_BASE}/api/v2/users/{user_id}/group_memberships.json",
            json=zendesk_memberships(user_id, list(groups)),
        )

    return register


def freshdesk_agent(agent_id: int = 43000123, **overrides: Any) -> dict[str, Any]:
    contact = {
        "active": True,
        "email": "maria@acme.example",
        "job_title": "Support Engineer",
        "language": "en",
        "last_login_at": "2026-11-27T08:10:11Z",
        "mobile": None,
        "name": "Maria Lopez",
        "phone": None,
        "time_zone": "Eastern Time (US & Canada)",
        "created_at": "2024-02-01T10:00:00Z",
        "updated_at": "2026-11-27T08:10:11Z",
    }
    contact.update(overrides.pop("contact", {}))
    agent = {
        "available": True,
        "occasional": False,
        "id": agent_id,
        "ticket_scope": 1,
        "signature": None,
        "created_at": "2024-02-01T10:00:00Z",
        "updated_at": "2026-11-27T08:10:11Z",
        "last_active_at": "2026-11-27T08:10:11Z",
        "available_since": None,
        "type": "support_agent",
        "contact": contact,
        "group_ids": [43000500],
        "role_ids": [43000002],
        "skill_ids": [],
        "focus_mode": True,
    }
    agent.update(overrides)
    return agent


FRESHDESK_ROLES = [
    {
        "id": 43000001,
        "name": "Account Administrator",
        "description": "Has complete control over the help desk and the organisation.",
        "default": True,
        "created_at": "2024-01-01T00:00:00Z",
        "updated_at": "2024-01-01T00:00:00Z",
    },
    {
        "id": 43000002,
        "name": "Agent",
        "description": "Can log, view, reply, update and resolve tickets.",
        "default": True,
        "created_at": "2024-01-01T00:00:00Z",
        "updated_at": "2024-01-01T00:00:00Z",
    },
    {
        "id": 43000003,
        "name": "Supervisor",
        "description": "Can perform all agent related activities and access reports.",
        "default": True,
        "created_at": "2024-01-01T00:00:00Z",
        "updated_at": "2024-01-01T00:00:00Z",
    },
    {
        "id": 43000077,
        "name": "Billing Team",
        "description": "Custom role for the billing desk.",
        "default": False,
        "created_at": "2025-05-01T00:00:00Z",
        "updated_at": "2025-05-01T00:00:00Z",
    },
]


def freshdesk_group(group_id: int, name: str) -> dict[str, Any]:
    return {
        "id": group_id,
        "name": name,
        "description": f"{name} team",
        "escalate_to": None,
        "unassigned_for": "30m",
        "business_hour_id": None,
        "group_type": "support_agent_group",
        "auto_ticket_assign": 0,
        "created_at": "2024-01-01T00:00:00Z",
        "updated_at": "2024-01-01T00:00:00Z",
        "agent_ids": [],
    }


@pytest.fixture
def freshdesk_agent_api(http):
    def register(agent_id: int = 43000123, groups=((43000500, "Billing"),), **agent: Any):
        agent.setdefault("group_ids", [gid for gid, _ in groups])
        http.get(
            f"{FRESHDESK_BASE}/api/v2/agents/{agent_id}", json=freshdesk_agent(agent_id, **agent)
        )
        http.get(f"{FRESHDESK_BASE}/api/v2/roles", json=FRESHDESK_ROLES)
        http.get(
            f"{FRESHDESK_BASE}/api/v2/groups",
            json=[freshdesk_group(gid, name) for gid, name in groups],
        )

    return register
