"""Edits outside the mirror that move customers' contexts: their snapshots go stale.

Imported once by ``BillingAppConfig.ready``. The mirror's writers, actions and
approvals call ``context_cache.customer_context_invalidate`` themselves; these are the
edits made in admin or by other code that no write path sees:

* a **workspace's settings** saved (refund-pattern and duplicate windows, base
  currency, the provider…) → every context of the workspace;
* an **agent renamed** (actions and approvals show their actor's name) → every context
  of each workspace the agent belongs to;
* the **sandbox's clock or switch** set (the figures are computed for its ``now``; a
  clock set back would make a snapshot built for a later instant look valid);
* a **payment failure record** saved (the context's payment-failure and suspension
  alerts read them) → that customer.

Workspace-wide changes raise ``Workspace.context_generation`` (one ``UPDATE``) and bump
the Redis accelerator's workspace version; product and price changes are handled
where they are mirrored (``services.mirror``).
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.db.models.signals import post_save, pre_save
from django.dispatch import receiver

from ..models import AgentMembership, PaymentFailure, SandboxControl, Workspace
from .context_cache import customer_context_invalidate

# Workspace fields that no context shows: saving only these moves nothing.
_WORKSPACE_QUIET = frozenset(
    {
        "role_mapping_version",
        "context_generation",
        "updated_at",
        "stripe_secret_key",
        "stripe_webhook_secret",
        "is_active",
    }
)
_NAME_FIELDS = ("first_name", "last_name", "username")


def _quiet(update_fields: Any, quiet: frozenset[str]) -> bool:
    return update_fields is not None and set(update_fields) <= quiet


@receiver(post_save, sender=Workspace, dispatch_uid="snapshot_workspace_saved")
def _workspace_saved(sender: Any, instance: Workspace, created: bool, **kwargs: Any) -> None:
    if created or _quiet(kwargs.get("update_fields"), _WORKSPACE_QUIET):
        return
    customer_context_invalidate(workspace_id=instance.pk)
    # The raise is an UPDATE behind this instance's back: a second save() of the same
    # instance must not write the old generation back.
    instance.context_generation = (
        Workspace.objects.filter(pk=instance.pk)
        .values_list("context_generation", flat=True)
        .first()
        or instance.context_generation
    )


@receiver(pre_save, sender=get_user_model(), dispatch_uid="snapshot_user_names_before")
def _user_names_before(sender: Any, instance: Any, **kwargs: Any) -> None:
    """Remember the names as stored, to tell a rename from a sign-in's ``last_login``."""
    update_fields = kwargs.get("update_fields")
    if instance.pk is None or (
        update_fields is not None and not set(update_fields) & set(_NAME_FIELDS)
    ):
        instance._snapshot_names = None
        return
    stored = sender._default_manager.filter(pk=instance.pk).values_list(*_NAME_FIELDS).first()
    instance._snapshot_names = stored


@receiver(post_save, sender=get_user_model(), dispatch_uid="snapshot_user_renamed")
def _user_renamed(sender: Any, instance: Any, created: bool, **kwargs: Any) -> None:
    before = getattr(instance, "_snapshot_names", None)
    if created or before is None:
        return
    if tuple(getattr(instance, name) for name in _NAME_FIELDS) == tuple(before):
        return
    workspace_ids = AgentMembership.objects.filter(user_id=instance.pk).values_list(
        "workspace_id", flat=True
    )
    for workspace_id in sorted(set(workspace_ids)):
        customer_context_invalidate(workspace_id=workspace_id)


@receiver(post_save, sender=SandboxControl, dispatch_uid="snapshot_sandbox_control")
def _sandbox_control_saved(sender: Any, instance: SandboxControl, **kwargs: Any) -> None:
    customer_context_invalidate(workspace_id=instance.workspace_id)


@receiver(post_save, sender=PaymentFailure, dispatch_uid="snapshot_payment_failure")
def _payment_failure_saved(sender: Any, instance: PaymentFailure, **kwargs: Any) -> None:
    customer_context_invalidate(
        workspace_id=instance.workspace_id, customer_id=instance.customer_id
    )
