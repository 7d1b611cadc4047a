"""``manage.py card_prompts`` — run the card-update prompt scan now, preview it, or print a link."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from billing_app.clock import billing_now
from billing_app.models import MirrorCustomer, Workspace
from billing_app.selectors.card_prompts import card_prompt_candidates
from billing_app.services.card_prompts import (
    card_prompts_scan,
    card_prompts_scan_all,
    card_update_url,
)


class Command(BaseCommand):
    help = (
        "Card-update prompts: without options, run the daily scan for every opted-in "
        "workspace now (safe to repeat: one prompt per customer, card and window). "
        "--workspace limits it to one; --dry-run lists who is due without writing; "
        "--link CUSTOMER prints that customer's signed card-update URL (valid 30 days)."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--workspace", help="The workspace's slug, e.g. acme.")
        parser.add_argument("--dry-run", action="store_true", help="List, do not write.")
        parser.add_argument("--link", metavar="CUSTOMER", help="A billing customer id (cus_…).")

    def _workspace(self, slug: str | None) -> Workspace:
        workspace = Workspace.objects.filter(slug=slug).first() if slug else None
        if workspace is None:
            raise CommandError(f"No workspace with slug {slug!r} (use --workspace).")
        return workspace

    def handle(self, *args, **options) -> None:
        if options["link"]:
            workspace = self._workspace(options["workspace"])
            if not MirrorCustomer.objects.filter(
                workspace=workspace, stripe_id=options["link"], deleted=False
            ).exists():
                raise CommandError(f"No customer {options['link']!r} in {workspace.slug}.")
            self.stdout.write(card_update_url(workspace=workspace, customer_id=options["link"]))
            return
        if options["dry_run"]:
            workspace = self._workspace(options["workspace"])
            for c in card_prompt_candidates(workspace=workspace, now=billing_now(workspace)):
                self.stdout.write(f"{c.customer_id}\t{c.reason}\t{c.payment_method_id}\t{c.window}")
            if not workspace.card_prompts_enabled:
                self.stdout.write("(card prompts are off for this workspace: nothing is sent)")
            return
        if options["workspace"]:
            results = [card_prompts_scan(workspace=self._workspace(options["workspace"]))]
        else:
            results = card_prompts_scan_all()
        for r in results:
            self.stdout.write(f"workspace {r.workspace_id}: {r.candidates} due, {r.created} new")
