"""Role names, permission codenames and guardian provisioning.

Roles are Django groups per workspace (``acme · Manager``). What a role group may
do in a workspace is carried by django-guardian object permissions on that
Workspace, so holding a role in workspace A grants nothing in workspace B.
Membership is assigned in exactly one place: ``agent_role_assign``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import Group, Permission, User
from django.contrib.contenttypes.models import ContentType
from django.db import router, transaction
from django.db.models import F, Q, signals
from guardian.utils import get_group_obj_perms_model

from .catalog import ROLE_CODENAMES, Role
from .models import AgentMembership, RoleMappingRule, Workspace


def role_group_name(workspace: Workspace, role: Role) -> str:
    return f"{workspace.slug} · {role.label}"


@transaction.atomic
def workspace_roles_provision(*, workspace: Workspace) -> dict[Role, Group]:
    """Create the workspace's role groups and give each exactly its codenames. Idempotent.

    A fixed handful of statements whatever the matrix: the groups, the permissions and
    the rows guardian reads (its group object permission model) are read and written in
    bulk, not one ``assign_perm`` per codename (sixty-odd round trips per workspace).
    """
    groups = workspace_role_groups(workspace)
    if len(groups) != len(Role):
        Group.objects.bulk_create(
            [Group(name=role_group_name(workspace, role)) for role in Role if role not in groups],
            ignore_conflicts=True,
        )
        groups = workspace_role_groups(workspace)

    model: Any = get_group_obj_perms_model(workspace)  # guardian's model, typed as Model
    content_type = ContentType.objects.get_for_model(Workspace)
    object_pk = str(workspace.pk)
    # Only the workspace's own permissions, as guardian's get_perms reads them.
    rows = model.objects.filter(
        content_type=content_type,
        object_pk=object_pk,
        group__in=groups.values(),
        permission__content_type=content_type,
    )
    held = set(rows.values_list("group_id", "permission__codename"))
    wanted = {(groups[role].pk, codename) for role in Role for codename in ROLE_CODENAMES[role]}
    if wanted - held:
        permissions = dict(
            Permission.objects.filter(
                content_type=content_type, codename__in={c for _, c in wanted}
            ).values_list("codename", "pk")
        )
        grants = [
            model(
                group_id=group_id,
                permission_id=permissions[codename],
                content_type=content_type,
                object_pk=object_pk,
            )
            for group_id, codename in sorted(wanted - held)
        ]
        # bulk_create sends no signals; send the ones per-row saves would, so every
        # receiver sees the grants (the app session cache ends the workspace's cached
        # grants: pending before the write, fresh after the commit — auth_signals).
        using = router.db_for_write(model)
        for grant in grants:
            signals.pre_save.send(
                sender=model, instance=grant, raw=False, using=using, update_fields=None
            )
        model.objects.bulk_create(grants, ignore_conflicts=True)
        for grant in grants:
            signals.post_save.send(
                sender=model,
                instance=grant,
                created=True,
                raw=False,
                using=using,
                update_fields=None,
            )
    stale = held - wanted
    if stale:
        match = Q()
        for group_id, codename in stale:
            match |= Q(group_id=group_id, permission__codename=codename)
        rows.filter(match).delete()  # per-row delete signals end the cached grants
    return groups


def workspace_role_groups(workspace: Workspace) -> dict[Role, Group]:
    names = {role_group_name(workspace, role): role for role in Role}
    return {names[g.name]: g for g in Group.objects.filter(name__in=names)}


@transaction.atomic
def agent_role_assign(
    *, user: User, workspace: Workspace, role: Role, source: str, defaults: dict | None = None
) -> AgentMembership:
    """Put ``user`` in exactly one role group of ``workspace`` and record it on the membership.

    The membership's ``role_version`` is bumped when the role changes, so app
    session tokens issued under the old role stop working.
    """
    groups = workspace_role_groups(workspace)
    if len(groups) != len(Role):
        groups = workspace_roles_provision(workspace=workspace)
    membership, created = AgentMembership.objects.select_for_update().get_or_create(
        workspace=workspace,
        user=user,
        defaults={"role": role.value, "role_source": source, **(defaults or {})},
    )
    user.groups.remove(*[g for r, g in groups.items() if r != role])
    user.groups.add(groups[role])
    if not created:
        changes: dict = {**(defaults or {}), "role_source": source}
        if membership.role != role.value:
            changes["role"] = role.value
            changes["role_version"] = F("role_version") + 1
        for name, value in changes.items():
            setattr(membership, name, value)
        # save(), not update(): the app session cache's signals see the change (auth_signals).
        membership.save(update_fields=list(changes))
        membership.refresh_from_db()
    return membership


@transaction.atomic
def agent_membership_remove(*, membership: AgentMembership) -> None:
    """Take the user out of every role group of the membership's workspace, then drop it.

    Deleting the row alone would leave the group membership — and with it the
    guardian permissions — in place.
    """
    groups = workspace_role_groups(membership.workspace)
    membership.user.groups.remove(*groups.values())
    AgentMembership.objects.filter(pk=membership.pk).delete()


@dataclass(frozen=True)
class AgentFacts:
    """What the helpdesk's API says about an agent, as role mapping rules match it."""

    connector: str
    agent_id: str
    helpdesk_role: str = ""
    custom_role_id: str = ""
    role_ids: Sequence[str] = ()
    group_ids: Sequence[str] = ()
    group_names: Sequence[str] = ()


_ORDER = {
    RoleMappingRule.MatchType.AGENT: 0,
    RoleMappingRule.MatchType.CUSTOM_ROLE: 1,
    RoleMappingRule.MatchType.GROUP: 2,
    RoleMappingRule.MatchType.HELPDESK_ROLE: 3,
}


def role_resolve(
    *, rules: Iterable[RoleMappingRule], facts: AgentFacts, default: Role
) -> tuple[Role, str]:
    """The agent's Billing Desk role and a human-readable reason. Pure: rules are passed in."""

    def matches(rule: RoleMappingRule) -> bool:
        if rule.connector and rule.connector != facts.connector:
            return False
        value = rule.value.strip().lower()
        if rule.match_type == RoleMappingRule.MatchType.AGENT:
            return value == facts.agent_id.lower()
        if rule.match_type == RoleMappingRule.MatchType.CUSTOM_ROLE:
            return value in {facts.custom_role_id.lower(), *(r.lower() for r in facts.role_ids)} - {
                ""
            }
        if rule.match_type == RoleMappingRule.MatchType.GROUP:
            return value in {
                *(g.lower() for g in facts.group_ids),
                *(g.lower() for g in facts.group_names),
            }
        return value == facts.helpdesk_role.lower() and value != ""

    candidates = sorted(
        (r for r in rules if matches(r)),
        key=lambda r: (_ORDER[RoleMappingRule.MatchType(r.match_type)], r.priority, r.pk or 0),
    )
    if not candidates:
        return default, "workspace default role"
    rule = candidates[0]
    return Role(rule.role), f"rule: {rule.get_match_type_display()} {rule.value!r}"


def workspace_mapping_changed(*, workspace: Workspace) -> None:
    """Invalidate every app session of the workspace after its role mapping changed."""
    # save(), not update(): the app session cache's signals see the change (auth_signals).
    workspace.role_mapping_version = F("role_mapping_version") + 1
    workspace.save(update_fields=["role_mapping_version"])
    workspace.refresh_from_db(fields=["role_mapping_version"])


# The app session resolver knows the agent's guardian permissions on their workspace
# (from its versioned cache entry, services.auth_cache): checks on that request's user
# read them instead of asking guardian again (two queries per check).
_KNOWN_PERMS = "_billing_desk_workspace_perms"


def workspace_perms_known(*, user: User, workspace: Workspace, perms: frozenset[str]) -> None:
    setattr(user, _KNOWN_PERMS, (workspace.pk, perms))


def user_has_workspace_perm(user: User, codename: str, workspace: Workspace) -> bool:
    known = getattr(user, _KNOWN_PERMS, None)
    if known is not None and known[0] == workspace.pk and user.is_active:
        return codename in known[1]
    return user.has_perm(f"billing_app.{codename}", workspace)


def workspace_permission(codename: str) -> Permission:
    return Permission.objects.get(content_type__app_label="billing_app", codename=codename)
