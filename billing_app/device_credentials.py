"""The workspace's ``device_credential_days`` for Freshdesk device credentials (issue 17).

``helpdesk_connectors`` may not import ``billing_app`` (DESIGN.md section 1), so it asks a
registered callable for an installation's credential lifetime; this module is that
callable, registered by ``BillingAppConfig.ready``.
"""

from __future__ import annotations

from helpdesk_connectors.freshdesk import devices
from helpdesk_connectors.models import Installation

from .models import WorkspaceInstallation


def credential_days(installation: Installation) -> int | None:
    link = (
        WorkspaceInstallation.objects.filter(installation_id=installation.pk)
        .select_related("workspace")
        .first()
    )
    return link.workspace.device_credential_days if link is not None else None


def register() -> None:
    devices.set_credential_days_source(credential_days)
