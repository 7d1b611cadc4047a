"""Creating workspaces and linking helpdesk installations to them.

Used by ``manage.py create_workspace`` / ``add_installation``, the Django admin and
the demo seed. Every function validates everything before it writes and runs in a
transaction, so bad input changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from helpdesk_connectors.models import Installation

from ..errors import Conflict, ValidationFailed
from ..models import Workspace, WorkspaceInstallation
from ..money import is_known_currency
from ..providers import sandbox_enabled
from ..roles import workspace_roles_provision


@dataclass(frozen=True)
class Problem:
    field: str
    code: str
    message: str


def _raise_problems(problems: list[Problem], summary: str) -> None:
    if not problems:
        return
    details: dict[str, list[str]] = {}
    for problem in problems:
        details.setdefault(problem.field, []).append(problem.message)
    message = " ".join(p.message for p in problems) if len(problems) > 1 else problems[0].message
    raise ValidationFailed(message or summary, code=problems[0].code, details=details)


def _validated(instance, *, exclude: list[str] | None = None) -> None:
    try:
        instance.full_clean(exclude=exclude)
    except ValidationError as exc:
        details = exc.message_dict
        message = " ".join(
            f"{field}: {' '.join(messages)}" if field != "__all__" else " ".join(messages)
            for field, messages in details.items()
        )
        raise ValidationFailed(message, details=details) from exc


def workspace_settings_problems(
    *,
    base_currency: str,
    provider: str,
    stripe_secret_key: str = "",
    stripe_webhook_secret: str = "",
) -> list[Problem]:
    """What is wrong with a workspace's billing settings (shared by the service and the admin)."""
    problems: list[Problem] = []
    if not is_known_currency(base_currency):
        problems.append(
            Problem(
                "base_currency",
                "unknown_currency",
                f"Unknown currency {base_currency!r}: use an ISO 4217 code such as USD or EUR.",
            )
        )
    if provider not in Workspace.Provider.values:
        problems.append(
            Problem(
                "provider",
                "unknown_provider",
                f"Unknown billing provider {provider!r}: use one of "
                f"{', '.join(Workspace.Provider.values)}.",
            )
        )
    elif provider == Workspace.Provider.SANDBOX and not sandbox_enabled():
        problems.append(
            Problem(
                "provider",
                "sandbox_disabled",
                "The sandbox (simulated billing, no money moves) is disabled in this deployment: "
                "use stripe. Only the demo and the tests enable it "
                "(BILLING_DESK_SANDBOX_ENABLED).",
            )
        )
    if stripe_secret_key.startswith("pk_"):
        problems.append(
            Problem(
                "stripe_secret_key",
                "invalid_stripe_key",
                "That is a publishable key (pk_…); Billing Desk needs the secret key (sk_…) "
                "or a restricted key (rk_…).",
            )
        )
    elif stripe_secret_key and not stripe_secret_key.startswith(("sk_", "rk_")):
        problems.append(
            Problem(
                "stripe_secret_key",
                "invalid_stripe_key",
                "A Stripe secret key starts with sk_ (or rk_ for a restricted key).",
            )
        )
    elif provider == Workspace.Provider.STRIPE and not stripe_secret_key:
        problems.append(
            Problem(
                "stripe_secret_key",
                "stripe_key_required",
                "A Stripe workspace needs a secret key (sk_… or a restricted rk_… key).",
            )
        )
    if stripe_webhook_secret and not stripe_webhook_secret.startswith("whsec_"):
        problems.append(
            Problem(
                "stripe_webhook_secret",
                "invalid_webhook_secret",
                "A Stripe webhook signing secret starts with whsec_.",
            )
        )
    return problems


@transaction.atomic
def workspace_provision(*, workspace: Workspace) -> None:
    """Role groups with their guardian permissions, the default matrix and ticket categories.

    Idempotent: used for new workspaces (the service and the admin) and to repair one.
    """
    from .policy import policy_copy_defaults
    from .tickets import ticket_category_rules_seed  # dashboard categories (issue 8)

    workspace_roles_provision(workspace=workspace)
    policy_copy_defaults(workspace=workspace)
    ticket_category_rules_seed(workspace=workspace)


@transaction.atomic
def workspace_create(
    *,
    slug: str,
    name: str,
    provider: str,
    base_currency: str = "USD",
    stripe_secret_key: str = "",
    stripe_webhook_secret: str = "",
) -> Workspace:
    """A new workspace with its role groups provisioned and the default permission matrix copied in.

    ``provider`` has no default: which system moves the money is always an explicit choice.
    """
    slug, name = slug.strip(), name.strip()
    base_currency = base_currency.strip().upper()
    stripe_secret_key, stripe_webhook_secret = (
        stripe_secret_key.strip(),
        stripe_webhook_secret.strip(),
    )
    if Workspace.objects.filter(slug=slug).exists():
        raise Conflict(f"A workspace with slug {slug!r} already exists.", code="workspace_exists")
    workspace = Workspace(
        slug=slug,
        name=name,
        base_currency=base_currency,
        provider=provider,
        stripe_secret_key=stripe_secret_key,
        stripe_webhook_secret=stripe_webhook_secret,
    )
    problems = workspace_settings_problems(
        base_currency=base_currency,
        provider=provider,
        stripe_secret_key=stripe_secret_key,
        stripe_webhook_secret=stripe_webhook_secret,
    )
    # Field checks too, so one run names everything that is wrong.
    try:
        workspace.full_clean(exclude=[p.field for p in problems])
    except ValidationError as exc:
        problems += [
            Problem(field, "invalid", f"{field}: {message}" if field != "__all__" else message)
            for field, messages in exc.message_dict.items()
            for message in messages
        ]
    _raise_problems(problems, "Invalid workspace settings.")
    try:
        with transaction.atomic():
            workspace.save()
    except IntegrityError as exc:  # a concurrent create with the same slug won
        raise Conflict(
            f"A workspace with slug {slug!r} already exists.", code="workspace_exists"
        ) from exc
    workspace_provision(workspace=workspace)
    return workspace


def domain_normalize(domain: str) -> str:
    """``https://Acme.Zendesk.com/`` → ``acme.zendesk.com`` (the host only)."""
    host = domain.strip().lower()
    for scheme in ("https://", "http://"):
        host = host.removeprefix(scheme)
    return host.split("/", 1)[0].rstrip(".")


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
    """A helpdesk installation linked to ``workspace``, checked by ``Installation.clean``.

    Zendesk needs its app id (to fetch the app's public key) or the key itself;
    Freshdesk needs the shared secret its request template sends.
    """
    if connector not in Installation.Connector.values:
        raise ValidationFailed(
            f"Unknown helpdesk connector {connector!r}: use one of "
            f"{', '.join(Installation.Connector.values)}.",
            code="unknown_connector",
            details={"connector": ["Unknown connector."]},
        )
    domain = domain_normalize(domain)
    if Installation.objects.filter(connector=connector, domain=domain).exists():
        raise Conflict(
            f"A {connector} installation for {domain} already exists.", code="installation_exists"
        )
    installation = Installation(
        connector=connector,
        domain=domain,
        installation_id=installation_id.strip(),
        app_id=app_id.strip(),
        public_key=public_key.strip(),
        shared_secret=shared_secret.strip(),
        api_email=api_email.strip(),
        api_token=api_token.strip(),
        oauth_token=oauth_token.strip(),
    )
    _validated(installation)
    try:
        with transaction.atomic():
            installation.save()
    except IntegrityError as exc:
        raise Conflict(
            f"A {connector} installation for {domain} already exists.", code="installation_exists"
        ) from exc
    WorkspaceInstallation.objects.create(workspace=workspace, installation=installation)
    return installation
