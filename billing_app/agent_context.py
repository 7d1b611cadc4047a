"""Who an API caller is: the agent, their workspace and role (``request.auth``), and what
guardian lets them do there.

Below services and selectors alike, so that read-side code (``selectors.agent``) can
take an ``AgentContext`` without importing services. ``services.identity`` signs agents
in and builds the context; it re-exports ``AgentContext``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.contrib.auth.models import User

from helpdesk_connectors.models import Installation

from .catalog import Role
from .models import AgentMembership, Workspace


@dataclass(frozen=True)
class AgentContext:
    """``request.auth`` for the API: who is calling, in which workspace, with which role."""

    user: User
    workspace: Workspace
    membership: AgentMembership
    installation: Installation | None
    role: Role
    # The agent's guardian codenames on the workspace. The app session resolver passes
    # them from its versioned cache entry (services.auth_cache), exact and current;
    # otherwise the first ``may`` asks guardian and keeps the answer for this context
    # (one request).
    perms: frozenset[str] | None = field(default=None, compare=False)
    # Set only when the context acts for a customer (a self-service refund request): the
    # workspace's self-service refund limit, in base-currency minor units. ``action_decide``
    # sends a refund above it (or one it cannot value) to approval, whatever the role's cell.
    self_service_limit: int | None = None

    def may(self, codename: str) -> bool:
        """Whether this agent holds ``codename`` on their workspace (guardian)."""
        return codename in agent_workspace_perms(context=self)


def agent_workspace_perms(*, context: AgentContext) -> frozenset[str]:
    perms = context.perms
    if perms is None:
        from guardian.shortcuts import get_perms

        perms = frozenset(get_perms(context.user, context.workspace))
        object.__setattr__(context, "perms", perms)
    return perms


__all__ = ["AgentContext", "agent_workspace_perms"]
