"""``manage.py create_workspace`` — a new workspace, for deployment scripts."""

from __future__ import annotations

import os

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from billing_app.catalog import Role
from billing_app.errors import BillingDeskError
from billing_app.models import Workspace
from billing_app.roles import role_group_name
from billing_app.services.workspaces import workspace_create

from ._errors import command_error


class Command(BaseCommand):
    help = (
        "Create a workspace (one company using Billing Desk): its role groups with their "
        "permissions and the default permission matrix. With --provider stripe the Stripe "
        "secret key is required; pass it and the webhook signing secret in the environment "
        "variables STRIPE_SECRET_KEY and STRIPE_WEBHOOK_SECRET to keep them out of shell "
        "history (the options override them). Secrets are stored encrypted. Bad input is "
        "refused and nothing is created."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--slug",
            required=True,
            help="Identifier used in URLs, e.g. acme: 3-50 lower-case letters, digits, dashes.",
        )
        parser.add_argument("--name", required=True, help="Display name, e.g. 'Acme Corp'.")
        parser.add_argument(
            "--currency",
            default="USD",
            help="Base currency (ISO 4217, default USD): policy limits are in its minor units.",
        )
        parser.add_argument(
            "--provider",
            required=True,
            # Checked by the service (not argparse) so a wrong value gets the same
            # "Unknown billing provider … Nothing was changed." as every other bad input.
            metavar="{" + ",".join(Workspace.Provider.values) + "}",
            help="Required, no default: stripe (a real Stripe account) or sandbox (simulated "
            "billing, no money moves; only where the demo or tests enable it).",
        )
        parser.add_argument(
            "--stripe-secret-key",
            default=None,
            help="Stripe secret key sk_… or restricted key rk_… (default: $STRIPE_SECRET_KEY).",
        )
        parser.add_argument(
            "--stripe-webhook-secret",
            default=None,
            help="Stripe webhook signing secret whsec_… (default: $STRIPE_WEBHOOK_SECRET).",
        )

    def handle(self, *args, **options) -> None:
        provider = options["provider"]
        secret_key = options["stripe_secret_key"]
        webhook_secret = options["stripe_webhook_secret"]
        if provider == Workspace.Provider.STRIPE:
            secret_key = (
                secret_key if secret_key is not None else os.environ.get("STRIPE_SECRET_KEY", "")
            )
            webhook_secret = (
                webhook_secret
                if webhook_secret is not None
                else os.environ.get("STRIPE_WEBHOOK_SECRET", "")
            )
            if not secret_key:
                raise CommandError(
                    "--provider stripe needs the Stripe secret key: set STRIPE_SECRET_KEY or pass "
                    "--stripe-secret-key. Nothing was changed."
                )
        elif secret_key or webhook_secret:
            raise CommandError(
                "Stripe keys are only used with --provider stripe. Nothing was changed."
            )
        try:
            workspace = workspace_create(
                slug=options["slug"],
                name=options["name"],
                base_currency=options["currency"],
                provider=provider,
                stripe_secret_key=secret_key or "",
                stripe_webhook_secret=webhook_secret or "",
            )
        except BillingDeskError as exc:
            raise command_error(exc) from exc

        self.stdout.write(
            self.style.SUCCESS(
                f"Created workspace {workspace.slug!r} ({workspace.name}): "
                f"{workspace.get_provider_display()}, base currency {workspace.base_currency}."
            )
        )
        groups = ", ".join(role_group_name(workspace, role) for role in Role)
        self.stdout.write(f"Role groups: {groups}.")
        if workspace.provider == Workspace.Provider.STRIPE:
            url = f"{settings.PUBLIC_BASE_URL}/webhooks/stripe/{workspace.slug}/"
            self.stdout.write(f"Stripe webhook endpoint to register: {url}")
            if not workspace.stripe_webhook_secret:
                self.stdout.write(
                    self.style.WARNING(
                        "No webhook signing secret yet: Stripe events are refused until it is "
                        "set in the admin."
                    )
                )
        self.stdout.write(
            f"Next: manage.py add_installation --workspace {workspace.slug} "
            "--connector zendesk|freshdesk --domain …"
        )
