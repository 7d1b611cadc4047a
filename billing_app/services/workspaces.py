"""Creating workspaces and linking helpdesk installations to them."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import transaction

from helpdesk_connectors.models import Installation

from ..errors import Conflict, ValidationFailed
from ..models import Workspace, WorkspaceInstallation
from ..roles import workspace_roles_provision


def _validated(instance, *, exclude: list[str] | None = None) -> None:  # type: ignore[no-untyped-def]
    try:
        instance.full_clean(exclude=exclude)
    except ValidationError as exc:
        raise ValidationFailed("Invalid values.", details=exc.message_dict) from exc


@transaction.atomic
def workspace_create(
    *,
    slug: str,
    name: str,
    base_currency: str = "USD",
    provider: str = Workspace.Provider.SANDBOX,
    stripe_secret_key: str = "",
    stripe_webhook_secret: str = "",
) -> Workspace:
    """A new workspace with its role groups provisioned and the default permission matrix copied in."""
    from .policy import policy_copy_defaults

    if Workspace.objects.filter(slug=slug).exists():
        raise Conflict(f"A workspace with slug {slug!r} already exists.", code="workspace_exists")
    if provider == Workspace.Provider.STRIPE and not stripe_secret_key.startswith(("sk_", "rk_")):
        raise ValidationFailed(
            "A Stripe workspace needs a secret key (sk_… or a restricted rk_… key).",
            code="stripe_key_required",
        )
    workspace = Workspace(
        slug=slug,
        name=name,
        base_currency=base_currency.upper(),
        provider=provider,
        stripe_secret_key=stripe_secret_key,
        stripe_webhook_secret=stripe_webhook_secret,
    )
    _validated(workspace)
    workspace.save()
    workspace_roles_provision(workspace=workspace)
    policy_copy_defaults(workspace=workspace)
    return workspace


@transaction.atomic
def installation_add(
    *,
    workspace: Workspace,
    connector: str,
    domain: str,
    installation_id: str = "",
    app_id: str = "",
    public_key: str = "",
    shared_secret: str = "",
    api_email: str = "",
    api_token: str = "",
    oauth_token: str = "",
) -> Installation:
    domain = domain.strip().lower().removeprefix("https://").rstrip("/")
    if Installation.objects.filter(connector=connector, domain=domain).exists():
        raise Conflict(
            f"{connector} installation for {domain} already exists.", code="installation_exists"
        )
    installation = Installation(
        connector=connector,
        domain=domain,
        installation_id=installation_id,
        app_id=app_id,
        public_key=public_key,
        shared_secret=shared_secret,
        api_email=api_email,
        api_token=api_token,
        oauth_token=oauth_token,
    )
    _validated(installation)
    installation.save()
    WorkspaceInstallation.objects.create(workspace=workspace, installation=installation)
    return installation
