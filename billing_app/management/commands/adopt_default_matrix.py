"""``manage.py adopt_default_matrix`` — give a workspace the product's permission matrix."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from billing_app.models import Workspace
from billing_app.services.policy import policy_adopt_defaults, policy_default_differences


class Command(BaseCommand):
    help = (
        "Show how a workspace's permission matrix differs from the product default (the "
        "brief's matrix, DESIGN.md section 3), and with --apply replace the workspace's cells "
        "and approval routes by it. Workspaces keep the matrix they were created with until "
        "an admin runs this or edits the cells in Django admin."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--workspace", required=True, help="The workspace's slug.")
        parser.add_argument(
            "--apply",
            action="store_true",
            help="Replace the workspace's matrix (default: only list the differences).",
        )

    def handle(self, *args, workspace: str, apply: bool, **options) -> None:
        found = Workspace.objects.filter(slug=workspace).first()
        if found is None:
            raise CommandError(f"No workspace {workspace!r}. Nothing was changed.")
        changes = (
            policy_adopt_defaults(workspace=found)
            if apply
            else policy_default_differences(workspace=found)
        )
        if not changes:
            self.stdout.write(f"{found.slug}: the matrix already is the product default.")
            return
        verb = "Changed" if apply else "Would change (run with --apply)"
        self.stdout.write(f"{found.slug}: {verb} {len(changes)} cell(s) or route(s):")
        for line in changes:
            self.stdout.write(f"  {line}")
