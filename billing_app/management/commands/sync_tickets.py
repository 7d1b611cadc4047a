"""``manage.py sync_tickets``: export helpdesk tickets for the dashboard, with a progress bar."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from billing_app.models import Workspace
from billing_app.services.tickets import installations_for_ticket_sync, tickets_sync_installation
from helpdesk_connectors.base import ConnectorError


class Command(BaseCommand):
    help = (
        "Export tickets changed since the last run from each helpdesk installation "
        "(Zendesk incremental export, Freshdesk updated_since) and categorise billing tickets. "
        "Resumable: progress is saved after every page."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--workspace", help="Only this workspace's installations (slug).")
        parser.add_argument("--installation", type=int, help="Only this installation (id).")
        parser.add_argument(
            "--max-pages", type=int, default=None, help="Stop after this many pages each."
        )
        parser.add_argument("--no-progress", action="store_true", help="No progress bar.")

    def handle(self, *args, **options) -> None:
        workspace = None
        if options["workspace"]:
            workspace = Workspace.objects.filter(slug=options["workspace"]).first()
            if workspace is None:
                raise CommandError(f"No workspace with slug {options['workspace']!r}.")
        if options["max_pages"] is not None and options["max_pages"] < 1:
            raise CommandError("--max-pages must be at least 1.")
        installations = installations_for_ticket_sync(
            workspace=workspace, installation_id=options["installation"]
        )
        if not installations:
            raise CommandError("No active installation matches; nothing to sync.")
        failures = 0
        for installation in installations:
            with tqdm(
                desc=f"{installation.connector}:{installation.domain}",
                unit=" tickets",
                disable=options["no_progress"],
                file=self.stderr,
            ) as bar:

                def advance(count: int, bar: tqdm = bar) -> None:
                    bar.update(count)

                try:
                    result = tickets_sync_installation(
                        installation=installation,
                        on_page=advance,
                        max_pages=options["max_pages"],
                    )
                except ConnectorError as exc:
                    failures += 1
                    self.stderr.write(f"{installation}: {exc.code}: {exc.message}")
                    continue
            if result.skipped:
                self.stdout.write(f"{installation}: skipped ({result.reason})")
            else:
                self.stdout.write(
                    f"{installation}: {result.tickets} tickets in {result.pages} pages"
                )
        if failures:
            raise CommandError(f"{failures} installation(s) failed; progress so far is saved.")
