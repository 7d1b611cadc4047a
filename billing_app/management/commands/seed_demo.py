"""``manage.py seed_demo`` — the demo's sandbox workspace, admin user and billing customers."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, time

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from billing_app.demo.history import demo_history_seed
from billing_app.demo.seed import ACME, demo_seed
from billing_app.errors import BillingDeskError
from billing_app.models import MirrorCustomer
from billing_app.selectors.context import customer_context
from billing_app.selectors.months import Month

from ._errors import command_error


def _as_of(value: str) -> datetime:
    try:
        day = date.fromisoformat(value)
    except ValueError:
        raise CommandError(f"--as-of must be a date such as 2026-01-15, not {value!r}.") from None
    return datetime.combine(day, time(12, 0), tzinfo=UTC)


# Where ``runserver`` listens when nothing says otherwise (the Makefile's defaults).
DEFAULT_HOST, DEFAULT_PORT = "127.0.0.1", "8000"


def demo_base_url() -> str:
    """The demo's address as it will be served.

    ``BILLING_DESK_PUBLIC_URL`` when it is set; else ``http://$HOST:$PORT`` from the
    environment ``make demo`` passes (``make demo PORT=9000``); a server listening on
    every interface (``0.0.0.0``, ``::``) is reached on 127.0.0.1.
    """
    public = os.environ.get("BILLING_DESK_PUBLIC_URL", "").strip().rstrip("/")
    if public:
        return public
    host = os.environ.get("HOST", "").strip() or DEFAULT_HOST
    port = os.environ.get("PORT", "").strip() or DEFAULT_PORT
    if host in ("0.0.0.0", "::", "[::]"):  # noqa: S104 - a listening address, not a bind
        host = DEFAULT_HOST
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"http://{host}:{port}"


@contextmanager
def _quiet(verbosity: int) -> Iterator[None]:
    """Hold back the INFO log lines seeding writes (hundreds: payment-failure warnings,
    outbox tasks) unless ``-v 2``; warnings and errors still show."""
    if verbosity >= 2:
        yield
        return
    logging.disable(logging.INFO)
    try:
        yield
    finally:
        logging.disable(logging.NOTSET)


class Command(BaseCommand):
    help = (
        "Create (or reset) the sandbox workspace 'acme' with its demo installation, a superuser "
        "'admin' with a freshly generated password (printed), and the sandbox billing customers: "
        "the brief's Acme Corp and one customer per playbook scenario, and a VP approver 'vp' "
        "(new password, no second factor: the first sign-in shows the enrolment). Safe to run "
        "again: the seeded customers are reset, nothing is duplicated. Dates are relative to today; "
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
        base = demo_base_url()
        try:
            with _quiet(int(options.get("verbosity", 1))):
                summary = demo_seed(as_of=options["as_of"], base_url=base)
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
        month = Month.of(summary.as_of)
        if history is not None:
            out.write(
                "Dashboard history: "
                + ("seeded" if history.created else "already present")
                + f" — the dashboard opens on {month.label}"
            )
        # The block to read last: where the demo is and how to sign in.
        lines = [
            "Billing Desk demo is ready",
            f"  Demo:       {summary.demo_url}",
            f"  Dashboard:  {base}/dashboard/",
            f"  Report:     {base}/reports/monthly/{month.key}/",
            f"  Admin:      {summary.admin_url}",
            f"  Username:   {summary.admin_username}",
        ]
        if summary.admin_password is None:
            lines += [
                f"  User {summary.admin_username!r} already exists and was not created by",
                "  seed_demo: its password was left unchanged.",
            ]
        else:
            lines.append(f"  Password:   {summary.admin_password}   (new on every run)")
        # Issue 17: approvers and staff confirm each sign-in with a second factor.
        lines += [
            f"  Approvals:  {base}/approvals/",
            f"  Approver:   {summary.approver_username} (VP Approver)",
        ]
        if summary.approver_password is None:
            lines.append(
                f"  User {summary.approver_username!r} already exists and was not created by "
                "seed_demo: left unchanged."
            )
        else:
            lines.append(f"  Password:   {summary.approver_password}   (new on every run)")
        lines.append(
            "  2nd factor: set up at the first sign-in of admin and vp (authenticator app QR code)"
        )
        rule = "=" * max(len(line) for line in lines)
        out.write("")
        out.write(rule)
        for line in lines:
            out.write(line)
        out.write(rule)
