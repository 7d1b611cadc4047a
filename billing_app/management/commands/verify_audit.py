"""``manage.py verify_audit``: walk each workspace's audit chain; exit 1 at the first bad row."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError, CommandParser

from billing_app.models import Workspace
from billing_app.services.audit_verify import audit_verify


class Command(BaseCommand):
    help = (
        "Verify the tamper-evident audit trail (docs/audit.md): each workspace's chain of "
        "audit entries, and each action and approval request against its latest entry. "
        "Names the first row that does not match and exits with status 1; every run is "
        "recorded, and the dashboard's system health shows the last."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--workspace", help="The workspace's slug (default: every workspace).")

    def handle(self, *args, **options) -> None:
        if options.get("workspace"):
            workspace = Workspace.objects.filter(slug=options["workspace"]).first()
            if workspace is None:
                raise CommandError(f"No workspace with slug {options['workspace']!r}.")
            workspaces = [workspace]
        else:
            workspaces = list(Workspace.objects.order_by("slug"))
        broken = []
        for workspace in workspaces:
            result = audit_verify(workspace=workspace)
            if result.ok:
                self.stdout.write(
                    f"{workspace.slug}: ok, {result.entries} entries, "
                    f"head {result.head_seq} {result.head_hash[:16]}"
                )
            else:
                broken.append(f"{workspace.slug} (at {result.first_bad})")
                self.stderr.write(
                    f"{workspace.slug}: BROKEN at {result.first_bad}: {result.reason}"
                )
        if broken:
            raise CommandError(
                f"The audit trail does not verify in {', '.join(broken)}.", returncode=1
            )
