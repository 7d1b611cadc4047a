"""``manage.py sync_billing --workspace SLUG`` — backfill the mirror from the billing provider."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from billing_app.errors import BillingDeskError
from billing_app.models import Workspace
from billing_app.services.sync import SYNC_RESOURCES, billing_sync


class Command(BaseCommand):
    help = (
        "Copy a workspace's billing objects (products, prices, customers, subscriptions, "
        "invoices, charges, refunds, then each customer's payment methods and balance "
        "transactions) into the local mirror. Resumable: each page is committed with its "
        "cursor, so a run stopped by Stripe being unavailable (or by Ctrl-C) continues "
        "where it stopped when run again. --restart starts over."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--workspace", required=True, help="The workspace's slug, e.g. acme.")
        parser.add_argument(
            "--resource",
            action="append",
            choices=SYNC_RESOURCES,
            help="Only this resource (repeatable). Default: all, in dependency order.",
        )
        parser.add_argument(
            "--restart",
            action="store_true",
            help="Forget the saved cursors of the chosen resources and sync them from the start.",
        )
        parser.add_argument(
            "--no-progress", action="store_true", help="No progress bar (for logs and cron)."
        )

    def handle(self, *args, **options) -> None:
        workspace = Workspace.objects.filter(slug=options["workspace"]).first()
        if workspace is None:
            raise CommandError(f"No workspace with slug {options['workspace']!r}.")
        bars: dict[str, tqdm] = {}

        def progress(resource: str, count: int) -> None:
            bar = bars.get(resource)
            if bar is None:
                bar = bars[resource] = tqdm(
                    desc=resource,
                    unit=" objects",
                    file=self.stderr,
                    disable=options["no_progress"],
                    leave=True,
                )
            bar.update(count)

        try:
            report = billing_sync(
                workspace=workspace,
                resources=options["resource"],
                restart=options["restart"],
                progress=progress,
            )
        except BillingDeskError as exc:
            raise CommandError(exc.message) from exc
        finally:
            for bar in bars.values():
                bar.close()
        for resource in report.completed:
            if resource in report.synced:
                self.stdout.write(f"{resource}: {report.synced[resource]} objects mirrored")
            else:
                self.stdout.write(f"{resource}: already complete (--restart to sync again)")
        if report.interrupted:
            raise CommandError(
                f"Stopped at {report.interrupted}: {report.error} What was stored is kept; "
                "run the same command again to resume from there."
            )
        self.stdout.write(self.style.SUCCESS(f"{workspace.slug}: sync complete."))
