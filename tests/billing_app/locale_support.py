"""An API client for an agent whose helpdesk profile names a language (issue 16 tests)."""

from __future__ import annotations

from rest_framework.test import APIClient

from billing_app.catalog import Role
from billing_app.services.identity import agent_sign_in
from helpdesk_connectors.base import AgentProfile, HelpdeskIdentity


def agent_speaking(
    workspace,
    role: Role,
    locale: str,
    *,
    agent_id: str,
    name: str = "",
    connector: str = "",
) -> APIClient:
    """Signed in through the workspace's installation (the ``connector``'s when named), as
    a helpdesk entry would: the profile's ``locale`` is signed into the session. The client's
    ``membership`` is the agent's."""
    links = workspace.installation_links.select_related("installation")
    if connector:
        links = links.filter(installation__connector=connector)
    identity = HelpdeskIdentity(
        installation=links.first().installation,
        agent=AgentProfile(
            agent_id=agent_id,
            name=name or f"Agent {agent_id}",
            email=f"{agent_id}@agents.example",
            helpdesk_role="agent",
            locale=locale,
        ),
    )
    membership, minted = agent_sign_in(identity=identity, workspace=workspace, role_override=role)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {minted.token}")
    client.membership = membership  # type: ignore[attr-defined]
    return client
