"""``manage.py seed_demo`` — the demo's sandbox workspace, admin user and billing customers."""

from __future__ import annotations

from datetime import UTC, date, datetime, time

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from billing_app.demo.history import demo_history_seed
from billing_app.demo.seed import ACME, demo_seed
from billing_app.errors import BillingDeskError
from billing_app.models import MirrorCustomer
from billing_app.selectors.context import customer_context

from ._errors import command_error


def _as_of(value: str) -> datetime:
    try:
        day = date.fromisoformat(value)
    except ValueError:
        raise CommandError(f"--as-of must be a date such as 2026-01-15, not {value!r}.") from None
    return datetime.combine(day, time(12, 0), tzinfo=UTC)


class Command(BaseCommand):
    help = (
        "Create (or reset) the sandbox workspace 'acme' with its demo installation, a superuser "
        "'admin' with a freshly generated password (printed), and the sandbox billing customers: "
        "the brief's Acme Corp and one customer per playbook scenario. Safe to run again: the "
        "seeded customers are reset, nothing is duplicated. Dates are relative to today; "
        "--as-of 2026-01-15 reproduces the brief's own dates and freezes the sandbox clock."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--as-of",
            type=_as_of,
            default=None,
            help="Seed as of this date (YYYY-MM-DD, noon UTC) and freeze the sandbox clock on it.",
        )
        parser.add_argument(
            "--no-history",
            action="store_true",
            help="Skip the dashboard history (tickets, past actions, approvals, provider calls).",
        )

    def handle(self, *args, **options) -> None:
        # Issue 12: run against production it reset a real superuser's password and wrote
        # a simulated workspace. The demo runs with DEBUG on (`make demo`); production never.
        if not settings.DEBUG:
            raise CommandError(
                "seed_demo only runs with DEBUG on (DJANGO_DEBUG=1, as `make demo` sets it): it "
                "creates a sandbox workspace and an admin user, which production must never "
                "have. Nothing was changed."
            )
        try:
            summary = demo_seed(as_of=options["as_of"])
            history = (
                None
                if options["no_history"]
                else demo_history_seed(workspace=summary.workspace, as_of=options["as_of"])
            )
        except BillingDeskError as exc:
            raise command_error(exc) from exc
        out = self.stdout
        verb = "Created" if summary.created_workspace else "Reset"
        out.write(
            self.style.SUCCESS(
                f"{verb} sandbox workspace {summary.workspace.slug!r} ({summary.workspace.name}), "
                f"as of {summary.as_of:%Y-%m-%d %H:%M} UTC"
                + (" — sandbox clock frozen" if summary.clock_frozen else "")
            )
        )
        out.write("Customers:")
        for customer in summary.customers.values():
            out.write(
                f"  {customer.id:<24} {customer.name:<26} {customer.email:<40} {customer.scenario}"
            )
        acme = MirrorCustomer.objects.get(workspace=summary.workspace, stripe_id=ACME)
        value = customer_context(workspace=summary.workspace, customer=acme)["lifetime_value"]
        out.write(
            f"Acme Corp: lifetime revenue {value['total_revenue']['display']} over "
            f"{value['months_active']} months, MRR {value['mrr']['display']}, "
            f"ARR {value['arr']['display']}."
        )
        if history is not None:
            out.write(
                "Dashboard history: "
                + ("seeded" if history.created else "already present")
                + " — see /dashboard/"
            )
        out.write("")
        out.write(f"Admin:     {summary.admin_url}")
        out.write(f"  username {summary.admin_username}")
        if summary.admin_password is None:
            out.write(
                f"  user {summary.admin_username!r} already exists and was not created by "
                "seed_demo: its password was left unchanged"
            )
        else:
            out.write(f"  password {summary.admin_password}   (new on every run)")
        out.write(f"Demo:      {summary.demo_url}")
