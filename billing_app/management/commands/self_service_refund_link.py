"""``manage.py self_service_refund_link --workspace SLUG --customer cus_…`` — a refund-request
link for a helpdesk macro or an email template (prints the URL, or JSON with --json)."""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError

from billing_app.errors import BillingDeskError
from billing_app.models import Workspace
from billing_app.services.refund_links import refund_link_create

from ._errors import command_error


class Command(BaseCommand):
    help = (
        "Create a signed self-service refund-request link for one customer and print it. "
        "The link is audited and valid for the workspace's self_service_link_days."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--workspace", required=True, help="The workspace's slug, e.g. acme.")
        parser.add_argument("--customer", required=True, help="The billing customer id (cus_…).")
        parser.add_argument("--ticket", default="", help="The helpdesk ticket it is sent on.")
        parser.add_argument(
            "--source",
            choices=("command", "macro", "email"),
            default="command",
            help="Where the link is sent from (kept with the link; default: command).",
        )
        parser.add_argument("--json", action="store_true", help="Print url and expires_at as JSON.")

    def handle(self, *args, **options) -> None:
        workspace = Workspace.objects.filter(slug=options["workspace"], is_active=True).first()
        if workspace is None:
            raise CommandError(f"No active workspace with slug {options['workspace']!r}.")
        try:
            link, url = refund_link_create(
                workspace=workspace,
                customer_id=options["customer"],
                source=options["source"],
                ticket_id=options["ticket"],
            )
        except BillingDeskError as exc:
            raise command_error(exc) from exc
        if options["json"]:
            payload = {
                "link_id": str(link.pk),
                "url": url,
                "expires_at": link.expires_at.isoformat(),
            }
            self.stdout.write(json.dumps(payload))
        else:
            self.stdout.write(url)
