"""Who an API caller is: the agent, their workspace and role (``request.auth``), and what
guardian lets them do there.

Below services and selectors alike, so that read-side code (``selectors.agent``) can
take an ``AgentContext`` without importing services. ``services.identity`` signs agents
in and builds the context; it re-exports ``AgentContext``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

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

    def may(self, codename: str) -> bool:
        """Whether this agent holds ``codename`` on their workspace (guardian, memoised briefly)."""
        return codename in agent_workspace_perms(context=self)


# Guardian's answer costs two queries; the panel asks on every request. Memoised per
# process under the membership's role and role version (and the workspace's mapping
# version), which every role change bumps, so a changed role is seen on the next
# request. Only a direct edit of a role group's object permissions (role groups are
# provisioned from the catalog, ``roles.workspace_roles_provision``) waits out the TTL
# (``BILLING_DESK_AGENT_PERMS_TTL``, 30 s; 0 — the default under tests — turns it off).
_agent_perms: dict[tuple[int, int, str, int, int], tuple[float, frozenset[str]]] = {}


def agent_workspace_perms(*, context: AgentContext) -> frozenset[str]:
    from django.conf import settings
    from guardian.shortcuts import get_perms

    ttl = float(getattr(settings, "BILLING_DESK_AGENT_PERMS_TTL", 0 if settings.TESTING else 30))
    if ttl <= 0:
        return frozenset(get_perms(context.user, context.workspace))
    membership = context.membership
    key = (
        context.user.pk,
        context.workspace.pk,
        membership.role,
        membership.role_version,
        context.workspace.role_mapping_version,
    )
    now = time.monotonic()
    cached = _agent_perms.get(key)
    if cached is not None and cached[0] > now:
        return cached[1]
    perms = frozenset(get_perms(context.user, context.workspace))
    if len(_agent_perms) > 10_000:
        _agent_perms.clear()
    _agent_perms[key] = (now + ttl, perms)
    return perms


__all__ = ["AgentContext", "agent_workspace_perms"]
