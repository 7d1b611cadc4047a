"""From a verified helpdesk identity to an agent in a workspace, and back from a token."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone
from guardian.shortcuts import get_perms

from helpdesk_connectors import session_cache, sessions
from helpdesk_connectors.base import HelpdeskIdentity
from helpdesk_connectors.models import Installation

from ..agent_context import AgentContext
from ..catalog import Role
from ..errors import NotFound
from ..locales import language_normalise
from ..models import AgentMembership, Workspace, WorkspaceInstallation
from ..roles import AgentFacts, agent_role_assign, role_resolve, workspace_perms_known
from . import auth_cache


def workspace_for_installation(installation: Installation) -> Workspace:
    link = (
        WorkspaceInstallation.objects.select_related("workspace")
        .filter(installation=installation)
        .first()
    )
    if link is None or not link.workspace.is_active:
        raise NotFound(
            "This helpdesk installation is not linked to an active workspace.",
            code="unknown_installation",
        )
    return link.workspace


@transaction.atomic
def agent_sign_in(
    *,
    identity: HelpdeskIdentity,
    workspace: Workspace | None = None,
    role_override: Role | None = None,
) -> tuple[AgentMembership, sessions.MintedSession]:
    """Create or update the agent's user and membership, resolve their role, mint a session.

    The role comes from the helpdesk's API (``identity.agent``, read server-side)
    through the workspace's mapping rules; ``role_override`` is for the demo
    connector only.
    """
    workspace = workspace or workspace_for_installation(identity.installation)
    role_override = Role(role_override) if role_override is not None else None
    agent = identity.agent
    user, _ = User.objects.get_or_create(username=identity.username[:150])
    name_parts = agent.name.split(" ", 1)
    user.first_name, user.last_name = (
        name_parts[0][:150],
        (name_parts[1] if len(name_parts) > 1 else "")[:150],
    )
    user.email = agent.email
    user.set_unusable_password()
    user.save()
    if role_override is not None:
        role, source = role_override, "demo role switcher"
    else:
        facts = AgentFacts(
            connector=identity.installation.connector,
            agent_id=agent.agent_id,
            helpdesk_role=agent.helpdesk_role,
            custom_role_id=agent.custom_role_id,
            role_ids=agent.role_ids,
            group_ids=agent.group_ids,
            group_names=agent.group_names,
        )
        role, source = role_resolve(
            rules=workspace.role_rules.all(), facts=facts, default=Role(workspace.default_role)
        )
    membership = agent_role_assign(
        user=user,
        workspace=workspace,
        role=role,
        source=source,
        defaults={
            "installation": identity.installation if identity.installation.pk else None,
            "helpdesk_user_id": agent.agent_id,
            "display_name": agent.name,
            "email": agent.email,
            "last_seen_at": timezone.now(),
        },
    )
    # The agent's language from their helpdesk profile, signed into the session (issue 16):
    # one we have a catalog for, else the default.
    minted = session_mint(
        membership=membership,
        installation=identity.installation,
        language=language_normalise(agent.locale),
    )
    return membership, minted


def session_mint(
    *, membership: AgentMembership, installation: Installation | None, language: str = ""
) -> sessions.MintedSession:
    """A token for the membership; ``language`` a ``settings.LANGUAGES`` code or "" (default)."""
    grant = {
        "w": membership.workspace_id,
        "r": membership.role,
        "rv": membership.role_version,
        "mv": membership.workspace.role_mapping_version,
    }
    return sessions.mint(
        user_id=membership.user_id,
        installation_id=installation.pk if installation else None,
        installation_version=installation.version if installation else None,
        grant=grant,
        language=language,
    )


def app_session_resolve(
    *, claims: sessions.SessionClaims, installation: Installation | None
) -> tuple[User, AgentContext] | None:
    """The settings' ``APP_SESSION_RESOLVER``: re-check a token's grant.

    From the agent's versioned cache entry when it is current and says yes (no query,
    ``services.auth_cache``); otherwise from the database, which decides and, when
    the cache is up, refreshes the entry with the agent's guardian permissions.
    """
    grant: dict[str, Any] = claims.grant
    workspace_id = grant.get("w")
    if not isinstance(workspace_id, int | str):  # a grant without its workspace names none
        return None
    installation_id = installation.pk if installation is not None else None
    found = (
        auth_cache.grant_lookup(
            user_id=claims.user_id, workspace_id=workspace_id, installation_id=installation_id
        )
        if isinstance(workspace_id, int) and not isinstance(workspace_id, bool)
        else session_cache.Lookup()  # tokens we mint name an int; anything else: the database
    )
    facts = auth_cache.grant_facts(found.entry) if found.entry is not None else None
    cached = (
        auth_cache.grant_unpack(found.entry)
        if facts is not None and _grant_holds(facts, grant=grant, installation=installation)
        else None
    )
    if cached is not None:  # None: a miss, or a secret the keys no longer decrypt
        return _agent(
            user=cached.user,
            workspace=cached.workspace,
            membership=cached.membership,
            installation=installation,
            perms=cached.perms,
        )
    memberships = AgentMembership.objects.select_related("workspace", "user").filter(
        user_id=claims.user_id, workspace_id=workspace_id
    )
    if installation is not None:  # the link is checked in the same query
        memberships = memberships.annotate(
            installation_linked=Exists(
                WorkspaceInstallation.objects.filter(
                    installation=installation, workspace_id=OuterRef("workspace_id")
                )
            )
        )
    membership = memberships.first()
    if membership is None:
        return None
    linked = bool(membership.installation_linked) if installation is not None else None  # type: ignore[attr-defined]
    perms = None
    if found.versions is not None:  # the cache is up: read the permissions once, keep both
        perms = frozenset(get_perms(membership.user, membership.workspace))
        auth_cache.grant_store(
            found,
            membership=membership,
            installation_id=installation_id,
            linked=linked,
            perms=perms,
        )
    facts = {
        "user_active": membership.user.is_active,
        "workspace_active": membership.workspace.is_active,
        "role": membership.role,
        "role_version": membership.role_version,
        "mapping_version": membership.workspace.role_mapping_version,
        "linked": linked,
    }
    if not _grant_holds(facts, grant=grant, installation=installation):
        return None
    return _agent(
        user=membership.user,
        workspace=membership.workspace,
        membership=membership,
        installation=installation,
        perms=perms,
    )


def _grant_holds(
    facts: dict[str, Any], *, grant: dict[str, Any], installation: Installation | None
) -> bool:
    """The one rule, for cached and database facts alike."""
    return (
        facts["user_active"] is True
        and facts["workspace_active"] is True
        and facts["role"] == grant.get("r")
        and facts["role_version"] == grant.get("rv")
        and facts["mapping_version"] == grant.get("mv")
        and (installation is None or facts["linked"] is True)
    )


def _agent(
    *,
    user: User,
    workspace: Workspace,
    membership: AgentMembership,
    installation: Installation | None,
    perms: frozenset[str] | None,
) -> tuple[User, AgentContext]:
    if perms is not None:
        workspace_perms_known(user=user, workspace=workspace, perms=perms)
    context = AgentContext(
        user=user,
        workspace=workspace,
        membership=membership,
        installation=installation,
        role=Role(membership.role),
        perms=perms,
    )
    return user, context
