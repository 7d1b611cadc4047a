"""``manage.py sandbox_payment --workspace SLUG --invoice ID [--decline CODE]`` — a sandbox payment attempt.

For the demo and for trying the payment-failure workflow by hand: the sandbox
charges the open invoice once, failing with the decline code given (or
succeeding without one), and Billing Desk records the failure — or the
recovery — exactly as it does from Stripe's webhooks. Three failures in a row
send the suspension warning and open the CSM outreach.
"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from billing_app.errors import BillingDeskError
from billing_app.models import PaymentFailure, Workspace
from billing_app.providers.sandbox.payments import DECLINES, sandbox_payment_attempt

from ._errors import command_error


class Command(BaseCommand):
    help = (
        "Attempt to collect an open sandbox invoice now: --decline CODE makes the attempt "
        f"fail ({', '.join(DECLINES)}); without it the payment succeeds."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--workspace", required=True, help="A sandbox workspace's slug.")
        parser.add_argument("--invoice", required=True, help="The open invoice, e.g. in_sbx_…")
        parser.add_argument(
            "--decline", choices=sorted(DECLINES), help="Fail with this decline code."
        )

    def handle(self, *args, **options) -> None:
        workspace = Workspace.objects.filter(slug=options["workspace"]).first()
        if workspace is None:
            raise CommandError(f"No workspace {options['workspace']!r}. Nothing was changed.")
        try:
            charge = sandbox_payment_attempt(
                workspace=workspace, invoice_id=options["invoice"], decline_code=options["decline"]
            )
        except BillingDeskError as exc:
            raise command_error(exc) from exc
        if charge["status"] == "succeeded":
            self.stdout.write(f"Paid: charge {charge['id']}.")
            return
        failure = PaymentFailure.objects.get(workspace=workspace, charge_id=charge["id"])
        self.stdout.write(
            f"Failed: charge {charge['id']} — {failure.reason}, attempt {failure.attempt_count}, "
            f"{failure.consecutive_count} in a row"
            + (" (suspension warning sent)." if failure.suspension_warning_sent_at else ".")
        )
