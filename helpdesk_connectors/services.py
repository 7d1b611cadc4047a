"""Write side of the connector package: changing an installation safely."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.db.models import F

from .models import Installation

# Changing any of these ends every app session of the installation.
SESSION_BOUND_FIELDS = frozenset(
    {
        "domain",
        "installation_id",
        "app_id",
        "public_key",
        "shared_secret",
        "api_email",
        "api_token",
        "oauth_token",
        "is_active",
    }
)
EDITABLE_FIELDS = SESSION_BOUND_FIELDS | {"public_key_fetched_at"}


@transaction.atomic
def installation_update(*, installation: Installation, **changes: Any) -> Installation:
    """Apply ``changes``; bump ``version`` when verification material or credentials changed.

    The version bump is explicit (admins see it); tokens are also bound to a
    fingerprint of the same fields (``sessions.installation_fingerprint``), so a
    change made any other way still ends the sessions.
    """
    unknown = set(changes) - EDITABLE_FIELDS
    if unknown:
        raise ValueError(f"not editable: {', '.join(sorted(unknown))}")
    locked = Installation.objects.select_for_update().get(pk=installation.pk)
    changed = [name for name, value in changes.items() if getattr(locked, name) != value]
    if not changed:
        return locked
    for name in changed:
        setattr(locked, name, changes[name])
    update_fields = [*changed, "updated_at"]
    if SESSION_BOUND_FIELDS.intersection(changed):
        locked.version = F("version") + 1
        update_fields.append("version")
    locked.full_clean(exclude=["version"])
    locked.save(update_fields=update_fields)
    locked.refresh_from_db()
    return locked
