"""``manage.py rollups_rebuild``: recompute the dashboard's daily roll-ups from raw records."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from billing_app.models import Workspace
from billing_app.services.rollups import rollups_rebuild


class Command(BaseCommand):
    help = (
        "Recompute a workspace's dashboard roll-ups (tickets, actions, approvals, provider "
        "calls) from its raw records. Run it after an upgrade that added roll-ups (records "
        "written by the old code while the new one started are counted), and after changing "
        "the credit limits of the permission matrix (credits are banded by the limits in force "
        "when they were written). Run it when the workspace's agents are quiet: a write that "
        "commits during the rebuild may be counted from the rows read before it."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        target = parser.add_mutually_exclusive_group(required=True)
        target.add_argument("--workspace", help="The workspace's slug.")
        target.add_argument("--all", action="store_true", help="Every active workspace.")

    def handle(self, *args, **options) -> None:
        if options["all"]:
            workspaces = list(Workspace.objects.filter(is_active=True).order_by("slug"))
        else:
            workspace = Workspace.objects.filter(slug=options["workspace"]).first()
            if workspace is None:
                raise CommandError(f"No workspace with slug {options['workspace']!r}.")
            workspaces = [workspace]
        for workspace in workspaces:
            with transaction.atomic():
                count = rollups_rebuild(workspace=workspace)
            self.stdout.write(f"{workspace.slug}: rolled up {count} records.")
