"""Bump the app session cache's versions when anything a grant check reads changes.

``services.auth_cache`` serves an agent's grant from a versioned cache entry; these
receivers make every change that matters end that entry — before the write (a pending
version, so nothing is served or stored while it is in flight) and again after the
commit (``helpdesk_connectors.session_cache.scopes_changed``):

* a workspace saved or deleted (settings, ``is_active``, ``role_mapping_version``);
* a role mapping rule saved or deleted;
* a membership created, saved or deleted (role, role version, names);
* a workspace-installation link created, moved or deleted, and an installation
  deleted (memberships that named it lose it);
* a user saved or deleted (``is_active``, names, superuser), and a user's groups changed
  from either side (``user.groups`` or ``group.user_set``);
* a guardian object permission on a workspace granted or removed, to a user or a
  group (role provisioning goes through these: ``roles.workspace_roles_provision``).

Writes through ``QuerySet.update()`` send no signal: such paths call
``auth_cache.*_changed`` next to the update (or save with ``update_fields``, as
``roles`` does). ``bulk_create`` sends none either: role provisioning writes guardian's
rows in bulk and sends their ``pre_save``/``post_save`` itself, so the receivers below
see every grant.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import Group, User
from django.contrib.contenttypes.models import ContentType
from django.db.models import signals
from django.dispatch import receiver
from guardian.utils import get_group_obj_perms_model, get_user_obj_perms_model

from helpdesk_connectors.models import Installation

from ..models import AgentMembership, RoleMappingRule, Workspace, WorkspaceInstallation
from . import auth_cache

SAVE_OR_DELETE = (signals.pre_save, signals.post_save, signals.pre_delete, signals.post_delete)
PRE = (signals.pre_save, signals.pre_delete)


def _previous(sender: Any, instance: Any, update_fields: Any, fields: set[str]) -> Any:
    """The stored row of an instance about to be saved, if the save may move ``fields``."""
    if instance.pk is None or instance._state.adding:
        return None
    if update_fields is not None and not fields.intersection(update_fields):
        return None
    return sender._default_manager.filter(pk=instance.pk).values(*fields).first()


@receiver(SAVE_OR_DELETE, sender=Workspace, dispatch_uid="auth-workspace")
def _workspace(sender: Any, instance: Workspace, using: str, **_: Any) -> None:
    if instance.pk is not None:
        auth_cache.workspace_changed(instance.pk, using=using)


@receiver(SAVE_OR_DELETE, sender=RoleMappingRule, dispatch_uid="auth-role-rule")
def _role_rule(sender: Any, instance: RoleMappingRule, using: str, **_: Any) -> None:
    if instance.workspace_id is not None:
        auth_cache.workspace_changed(instance.workspace_id, using=using)


@receiver(SAVE_OR_DELETE, sender=AgentMembership, dispatch_uid="auth-membership")
def _membership(
    sender: Any, instance: AgentMembership, using: str, signal: Any, **kwargs: Any
) -> None:
    scopes = set()
    if instance.workspace_id is not None and instance.user_id is not None:
        scopes.add(auth_cache.member_scope(instance.workspace_id, instance.user_id))
    if signal is signals.pre_save:  # moved to another workspace or user: end the old pair too
        before = _previous(sender, instance, kwargs.get("update_fields"), {"workspace", "user"})
        if before is not None:
            scopes.add(auth_cache.member_scope(before["workspace"], before["user"]))
    auth_cache.scopes_changed(scopes, using=using)


@receiver(SAVE_OR_DELETE, sender=WorkspaceInstallation, dispatch_uid="auth-link")
def _link(
    sender: Any, instance: WorkspaceInstallation, using: str, signal: Any, **kwargs: Any
) -> None:
    scopes = set()
    if instance.installation_id is not None:
        scopes.add(auth_cache.link_scope(instance.installation_id))
    if signal is signals.pre_save:
        before = _previous(sender, instance, kwargs.get("update_fields"), {"installation"})
        if before is not None:
            scopes.add(auth_cache.link_scope(before["installation"]))
    auth_cache.scopes_changed(scopes, using=using)


@receiver(signals.pre_delete, sender=Installation, dispatch_uid="auth-installation")
def _installation_deleted(sender: Any, instance: Installation, using: str, **_: Any) -> None:
    """Memberships that name the installation lose it (``SET_NULL`` is an update: no signal)."""
    workspaces = (
        AgentMembership.objects.using(using)
        .filter(installation_id=instance.pk)
        .values_list("workspace_id", flat=True)
        .distinct()
    )
    auth_cache.scopes_changed(
        [auth_cache.link_scope(instance.pk), *map(auth_cache.workspace_scope, workspaces)],
        using=using,
    )


@receiver(SAVE_OR_DELETE, sender=User, dispatch_uid="auth-user")
def _user(sender: Any, instance: User, using: str, **_: Any) -> None:
    if instance.pk is not None:
        auth_cache.user_changed(instance.pk, using=using)


@receiver(signals.m2m_changed, sender=User.groups.through, dispatch_uid="auth-user-groups")
def _user_groups(
    sender: Any, instance: Any, action: str, reverse: bool, pk_set: Any, using: str, **_: Any
) -> None:
    if not reverse:  # user.groups.add/remove/clear
        auth_cache.user_changed(instance.pk, using=using)
        return
    if pk_set is None and isinstance(instance, Group):  # group.user_set.clear(): who is in it
        pk_set = set(instance.user_set.using(using).values_list("pk", flat=True))
    auth_cache.scopes_changed(map(auth_cache.user_scope, pk_set or ()), using=using)


def _object_permission(sender: Any, instance: Any, using: str, **_: Any) -> None:
    """A guardian permission on a workspace, for a user or a group."""
    workspace_type = ContentType.objects.db_manager(using).get_for_model(Workspace)
    if instance.content_type_id == workspace_type.pk and instance.object_pk:
        try:
            workspace_id = int(instance.object_pk)
        except (TypeError, ValueError):
            return
        auth_cache.workspace_changed(workspace_id, using=using)


for _signal in SAVE_OR_DELETE:
    _signal.connect(
        _object_permission, sender=get_user_obj_perms_model(), dispatch_uid="auth-user-perm"
    )
    _signal.connect(
        _object_permission, sender=get_group_obj_perms_model(), dispatch_uid="auth-group-perm"
    )
