"""Helpers shared by the browser tests."""

from __future__ import annotations

from billing_app.catalog import Role
from billing_app.services.identity import AgentContext, agent_sign_in, app_session_resolve
from helpdesk_connectors import sessions
from helpdesk_connectors.base import HelpdeskIdentity
from helpdesk_connectors.demo.connector import demo_agent
from helpdesk_connectors.models import Installation


def demo_sign_in(workspace, role: Role) -> tuple[AgentContext, sessions.MintedSession]:
    """The demo agent of ``role``, signed in as the demo connector signs them in."""
    installation = Installation.objects.get(connector="demo", workspace_link__workspace=workspace)
    identity = HelpdeskIdentity(installation=installation, agent=demo_agent(role.value))
    _membership, minted = agent_sign_in(identity=identity, workspace=workspace, role_override=role)
    _user, context = app_session_resolve(
        claims=sessions.verify(minted.token), installation=installation
    )
    return context, minted


def demo_context(workspace, role: Role) -> AgentContext:
    return demo_sign_in(workspace, role)[0]
