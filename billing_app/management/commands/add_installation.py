"""``manage.py add_installation`` — link a Zendesk or Freshdesk account to a workspace."""

from __future__ import annotations

import os
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from billing_app.errors import BillingDeskError
from billing_app.models import Workspace
from billing_app.services.workspaces import installation_add
from helpdesk_connectors.zendesk.keys import PublicKeyError, public_key_pem

from ._errors import command_error

MAX_KEY_FILE_BYTES = 65_536

CONNECTORS = ("zendesk", "freshdesk")
SECRET_ENV = {
    "shared_secret": "HELPDESK_SHARED_SECRET",
    "api_token": "HELPDESK_API_TOKEN",
    "oauth_token": "HELPDESK_OAUTH_TOKEN",
}


class Command(BaseCommand):
    help = (
        "Link a helpdesk account that installed the Billing Desk app to a workspace. "
        "Zendesk needs --app-id (the app's public key is then fetched from Zendesk) or "
        "--public-key-file; Freshdesk needs --shared-secret (the value of the app's secure "
        "iparam). API credentials are used to read agents' roles and post internal notes. "
        "Secrets may come from HELPDESK_SHARED_SECRET, HELPDESK_API_TOKEN and "
        "HELPDESK_OAUTH_TOKEN instead of options, and are stored encrypted. Bad input is "
        "refused and nothing is created."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--workspace", required=True, help="Slug of an existing workspace.")
        parser.add_argument("--connector", required=True, choices=CONNECTORS, help="The helpdesk.")
        parser.add_argument(
            "--domain",
            required=True,
            help="The helpdesk account's host, e.g. acme.zendesk.com or acme.freshdesk.com.",
        )
        parser.add_argument(
            "--installation-id",
            default="",
            help="The app installation id (Zendesk: checked in the signed URL's audience).",
        )
        parser.add_argument("--app-id", default="", help="Zendesk: the marketplace app id.")
        parser.add_argument(
            "--public-key-file",
            default="",
            help=(
                "Zendesk: a file with the app's RSA public key for signed URLs, as PEM or as "
                "saved from GET /api/v2/apps/{app_id}/public_key.pem (a JSON string or "
                '{"public_key": …}). Checked before anything is stored; use it when the '
                "server cannot fetch the key with the API credentials."
            ),
        )
        parser.add_argument(
            "--shared-secret",
            default=None,
            help="Freshdesk: the secret the request template sends (default: $HELPDESK_SHARED_SECRET).",
        )
        parser.add_argument(
            "--api-email",
            default="",
            help="Zendesk: the agent email an API token belongs to.",
        )
        parser.add_argument(
            "--api-token",
            default=None,
            help="Helpdesk API token / Freshdesk API key (default: $HELPDESK_API_TOKEN).",
        )
        parser.add_argument(
            "--oauth-token",
            default=None,
            help="Helpdesk OAuth access token, instead of an API token (default: $HELPDESK_OAUTH_TOKEN).",
        )

    def handle(self, *args, **options) -> None:
        connector = options["connector"]
        if connector not in CONNECTORS:  # call_command() bypasses argparse choices
            raise CommandError(
                f"Unknown connector {connector!r}: use one of {', '.join(CONNECTORS)}. "
                "Nothing was changed."
            )
        workspace = Workspace.objects.filter(slug=options["workspace"]).first()
        if workspace is None:
            raise CommandError(
                f"No workspace with slug {options['workspace']!r} (create it with "
                "manage.py create_workspace). Nothing was changed."
            )
        secrets = {
            name: options[name] if options[name] is not None else os.environ.get(env, "")
            for name, env in SECRET_ENV.items()
        }
        public_key = ""
        if options["public_key_file"]:
            public_key = _public_key_from_file(Path(options["public_key_file"]), connector)
        try:
            installation = installation_add(
                workspace=workspace,
                connector=connector,
                domain=options["domain"],
                installation_id=options["installation_id"],
                app_id=options["app_id"],
                public_key=public_key,
                api_email=options["api_email"],
                **secrets,
            )
        except BillingDeskError as exc:
            raise command_error(exc) from exc

        self.stdout.write(
            self.style.SUCCESS(
                f"Added {installation.get_connector_display()} installation #{installation.pk} "
                f"for {installation.domain} to workspace {workspace.slug!r}."
            )
        )
        base = settings.PUBLIC_BASE_URL
        if connector == "zendesk":
            self.stdout.write(
                f"The app's signed sidebar location is {base}/zendesk/sidebar/: "
                "`manage.py build_helpdesk_apps --only zendesk` writes the archive to upload."
            )
        else:
            self.stdout.write(
                f"Session endpoint for the app's request template: {base}/freshdesk/session/"
            )
            if len(installation.shared_secret) < 16:
                self.stdout.write(
                    self.style.WARNING(
                        "The shared secret is short: use 32 or more random characters."
                    )
                )
        if not (installation.api_token or installation.oauth_token):
            self.stdout.write(
                self.style.WARNING(
                    "No API credentials: agents' roles cannot be read from the helpdesk (everyone "
                    "gets the workspace's default role) and notes cannot be posted."
                )
            )


def _public_key_from_file(path: Path, connector: str) -> str:
    """The RSA public key in ``path`` as PEM, or a ``CommandError`` saying why not."""
    if connector != "zendesk":
        raise CommandError(
            "--public-key-file is for Zendesk installations (the key that verifies signed URLs). "
            "Nothing was changed."
        )
    try:
        if path.stat().st_size > MAX_KEY_FILE_BYTES:
            raise CommandError(
                f"The public key file {str(path)!r} is too large to be a public key. "
                "Nothing was changed."
            )
        data = path.read_bytes()
    except OSError as exc:
        raise CommandError(
            f"Cannot read the public key file {str(path)!r}: {exc.strerror or exc}. "
            "Nothing was changed."
        ) from exc
    try:
        return public_key_pem(data)
    except PublicKeyError as exc:
        raise CommandError(
            f"The public key file {str(path)!r} holds no usable key. {exc} "
            "Save the answer of GET /api/v2/apps/{app_id}/public_key.pem as it is. "
            "Nothing was changed."
        ) from None
