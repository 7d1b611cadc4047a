"""The billing half of an app session check, from a versioned cache entry.

``services.identity.app_session_resolve`` checks a token's grant — the agent's
membership (role, role version), the workspace (active, role-mapping version), the
user (active) and the installation's link to the workspace — and builds the
``AgentContext`` the views use: complete ``User``, ``Workspace`` and
``AgentMembership`` rows plus the agent's guardian permissions on the workspace.
That used to cost a query per request, and two more for the permissions.

The entry holds exactly those rows and that permission set, keyed by user, workspace
and installation (an entry never answers for another agent, workspace or
installation), and is served only while the versions of every scope it was read
from are current (``helpdesk_connectors.session_cache`` explains the mechanism):

* ``workspace:<id>`` — the workspace row (settings, ``is_active``,
  ``role_mapping_version``, ``context_generation``), its role mapping rules and any
  guardian object permission on it (role groups' or users');
* ``user:<id>`` — the user row and the user's groups;
* ``member:<workspace>:<user>`` — the membership row (role, role version, names);
* ``link:<installation>`` — which workspace the installation is linked to.

``services.auth_signals`` bumps them from model signals; a write that bypasses
``save()`` (``QuerySet.update``) calls the ``*_changed`` functions below itself.

Secrets: the workspace's Stripe keys are kept as the database keeps them — Fernet
ciphertext under ``FIELD_ENCRYPTION_KEYS`` — and decrypted when the entry is read; the
user's password hash is not kept at all (deferred: loaded if something reads it).
``Workspace.context_generation`` is not kept either (``WORKSPACE_UNCACHED``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

from django.contrib.auth.models import User
from django.core.exceptions import ImproperlyConfigured
from django.db import DEFAULT_DB_ALIAS
from django.db.models import Model

from helpdesk_connectors import session_cache
from helpdesk_connectors.fields import EncryptedTextField

from ..models import AgentMembership, Workspace

M = TypeVar("M", bound=Model)

# Workspace columns the entry leaves out (deferred: read from the database if something
# reads them). ``context_generation`` moves with billing data — products, prices, the
# sandbox clock (``services.snapshots``), not with access — and the snapshot read takes it
# in its own query; caching it would end every agent's entry at each such change.
WORKSPACE_UNCACHED = frozenset({"context_generation"})

# ---------------------------------------------------------------------------- scopes


def workspace_scope(workspace_id: int) -> str:
    return f"workspace:{workspace_id}"


def user_scope(user_id: int) -> str:
    return f"user:{user_id}"


def member_scope(workspace_id: int, user_id: int) -> str:
    return f"member:{workspace_id}:{user_id}"


def link_scope(installation_id: int) -> str:
    return f"link:{installation_id}"


def workspace_changed(workspace_id: int, *, using: str = DEFAULT_DB_ALIAS) -> None:
    """Call after ``Workspace.objects.filter(...).update(...)``: every grant of the workspace."""
    session_cache.scopes_changed(workspace_scope(workspace_id), using=using)


def user_changed(user_id: int, *, using: str = DEFAULT_DB_ALIAS) -> None:
    session_cache.scopes_changed(user_scope(user_id), using=using)


def membership_changed(workspace_id: int, user_id: int, *, using: str = DEFAULT_DB_ALIAS) -> None:
    session_cache.scopes_changed(member_scope(workspace_id, user_id), using=using)


def link_changed(installation_id: int, *, using: str = DEFAULT_DB_ALIAS) -> None:
    session_cache.scopes_changed(link_scope(installation_id), using=using)


def scopes_changed(scopes: Iterable[str], *, using: str = DEFAULT_DB_ALIAS) -> None:
    session_cache.scopes_changed(*scopes, using=using)


# ---------------------------------------------------------------------------- entries


@dataclass(frozen=True)
class CachedGrant:
    """An entry's content, rebuilt: the rows as the database would give them."""

    user: User
    workspace: Workspace
    membership: AgentMembership
    linked: bool | None
    perms: frozenset[str]


def grant_key(*, user_id: int, workspace_id: int, installation_id: int | None) -> str:
    return session_cache.entry_key("grant", workspace_id, user_id, installation_id)


def grant_lookup(
    *, user_id: int, workspace_id: int, installation_id: int | None
) -> session_cache.Lookup:
    """The entry for this agent, workspace and installation (one cache round trip)."""
    scopes = [
        workspace_scope(workspace_id),
        user_scope(user_id),
        member_scope(workspace_id, user_id),
    ]
    if installation_id is not None:
        scopes.append(link_scope(installation_id))
    key = grant_key(user_id=user_id, workspace_id=workspace_id, installation_id=installation_id)
    return session_cache.lookup(key, scopes)


def grant_store(
    found: session_cache.Lookup,
    *,
    membership: AgentMembership,
    installation_id: int | None,
    linked: bool | None,
    perms: frozenset[str],
) -> None:
    """Keep what the database said under the versions ``found`` read before asking it."""
    data = {
        "user": _row(membership.user, skip={"password"}),
        "workspace": _row(membership.workspace, skip=WORKSPACE_UNCACHED),
        "membership": _row(membership),
        "linked": linked,
        "perms": sorted(perms),
    }
    key = grant_key(
        user_id=membership.user_id,
        workspace_id=membership.workspace_id,
        installation_id=installation_id,
    )
    session_cache.store(key, found.versions, data)


def grant_facts(entry: Any) -> dict[str, Any] | None:
    """What the grant check compares, straight from the entry (nothing rebuilt yet)."""
    try:
        return {
            "user_active": entry["user"]["is_active"],
            "workspace_active": entry["workspace"]["is_active"],
            "role": entry["membership"]["role"],
            "role_version": entry["membership"]["role_version"],
            "mapping_version": entry["workspace"]["role_mapping_version"],
            "linked": entry["linked"],
        }
    except (KeyError, TypeError):
        return None


def grant_unpack(entry: dict[str, Any]) -> CachedGrant | None:
    """The entry's rows, or ``None`` (a miss: read the database) if a secret won't decrypt.

    An entry keeps the ciphertext as it was when stored; a key rotation re-encrypts the
    rows (and bumps the workspace), but an entry read in between, or any entry once the
    old key is gone, would otherwise fail the request instead of being read afresh.
    """
    try:
        workspace = _instance(Workspace, entry["workspace"])
    except (ImproperlyConfigured, ValueError):
        return None
    user = _instance(User, entry["user"])
    membership = _instance(AgentMembership, entry["membership"])
    membership.user = user  # the relations the database query selected, without a query
    membership.workspace = workspace
    return CachedGrant(
        user=user,
        workspace=workspace,
        membership=membership,
        linked=entry["linked"],
        perms=frozenset(entry["perms"]),
    )


def _row(instance: Model, *, skip: Iterable[str] = ()) -> dict[str, Any]:
    """The instance's columns by attname; encrypted ones as the database stores them."""
    skipped = set(skip)
    row: dict[str, Any] = {}
    for field in instance._meta.concrete_fields:
        if field.attname in skipped:
            continue
        value = getattr(instance, field.attname)
        if isinstance(field, EncryptedTextField):
            value = field.get_prep_value(value)  # ciphertext (or "")
        row[field.attname] = value
    return row


def _instance(model: type[M], row: dict[str, Any]) -> M:
    """``model`` as loaded from the database; a column the row lacks is deferred."""
    names: list[str] = []
    values: list[Any] = []
    for field in model._meta.concrete_fields:
        if field.attname not in row:
            continue
        value = row[field.attname]
        if isinstance(field, EncryptedTextField):
            value = field.from_db_value(value, None, None)
        names.append(field.attname)
        values.append(value)
    return model.from_db(DEFAULT_DB_ALIAS, names, values)
