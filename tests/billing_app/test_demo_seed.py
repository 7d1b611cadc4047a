"""``manage.py seed_demo``: the demo workspace, admin and sandbox customers — idempotent."""

from __future__ import annotations

import re
from datetime import timedelta
from io import StringIO

import pytest
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command
from django.utils import timezone

from billing_app.models import (
    HelpdeskTicket,
    MirrorCharge,
    MirrorCustomer,
    MirrorInvoice,
    MirrorRefund,
    SandboxControl,
    Workspace,
)
from billing_app.money import Money
from billing_app.providers.sandbox import SandboxProvider
from helpdesk_connectors.models import Installation

from .context_support import AS_OF


@pytest.fixture(autouse=True)
def _fast_passwords(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.DEBUG = True  # seed_demo runs only with DEBUG on, as `make demo` runs it


def counts():
    return [
        m.objects.count()
        for m in (
            Workspace,
            Installation,
            User,
            MirrorCustomer,
            MirrorInvoice,
            MirrorCharge,
            MirrorRefund,
        )
    ]


def seed(*args):
    out = StringIO()
    call_command("seed_demo", *args, stdout=out)
    return out.getvalue()


def test_seed_demo_creates_the_workspace_admin_and_customers_and_prints_the_password(db):
    output = seed("--as-of", "2026-01-15")

    workspace = Workspace.objects.get(slug="acme")
    assert (workspace.name, workspace.base_currency, workspace.provider) == (
        "Acme Billing",
        "USD",
        "sandbox",
    )
    assert Installation.objects.get(connector="demo").domain == "demo.billing-desk.local"
    password = re.search(r"Password:\s+(\S+)", output).group(1)
    admin = User.objects.get(username="admin")
    assert admin.is_superuser and admin.check_password(password)
    assert "http://127.0.0.1:8000/admin/" in output
    assert (
        "Acme Corp: lifetime revenue $136,800.00 over 22 months, MRR $3,400.00, ARR $40,800.00."
        in output
    )
    assert (
        MirrorCustomer.objects.filter(workspace=workspace, stripe_id__startswith="cus_sbx_").count()
        == 13
    )
    assert SandboxControl.objects.get(workspace=workspace).clock == AS_OF
    # the dashboard's history is seeded too, so /dashboard/ is populated
    assert "Dashboard history: seeded" in output
    assert HelpdeskTicket.objects.filter(workspace=workspace).exists()


def test_the_urls_use_the_host_and_port_make_demo_passes(db, monkeypatch):
    # given `make demo HOST=0.0.0.0 PORT=9000` (the Makefile passes both to seed_demo)
    monkeypatch.delenv("BILLING_DESK_PUBLIC_URL", raising=False)
    monkeypatch.setenv("HOST", "0.0.0.0")
    monkeypatch.setenv("PORT", "9000")

    output = seed("--as-of", "2026-01-15", "--no-history")

    # then every address is on port 9000 (a server on every interface is reached locally)
    assert "http://127.0.0.1:9000/demo/" in output
    assert "http://127.0.0.1:9000/admin/" in output
    assert "http://127.0.0.1:9000/reports/monthly/2026-01/" in output
    assert ":8000" not in output


def test_the_admin_sign_in_is_the_last_block_of_the_output(db, caplog):
    output = seed("--as-of", "2026-01-15")

    # then the output ends with a framed block: the addresses, the username, the password
    lines = output.rstrip("\n").splitlines()
    assert set(lines[-1]) == {"="}
    start = len(lines) - 1 - lines[::-1].index(lines[-1], 1)
    block = lines[start + 1 : -1]
    assert block[0] == "Billing Desk demo is ready"
    assert [line.split(":")[0].strip() for line in block[1:]] == [
        "Demo",
        "Dashboard",
        "Report",
        "Admin",
        "Username",
        "Password",
        "Approvals",
        "Approver",
        "Password",
        "2nd factor",
    ]
    password = block[6].split()[1]
    assert User.objects.get(username="admin").check_password(password)
    # the VP approver signs in with their own password and enrols a second factor (issue 17)
    assert User.objects.get(username="vp").check_password(block[9].split()[1])
    # and the seeding's INFO log lines (hundreds: failure warnings, outbox tasks) are held back
    assert not [r for r in caplog.records if r.levelname == "INFO"]


def test_no_history_seeds_only_the_panel_customers(db):
    output = seed("--as-of", "2026-01-15", "--no-history")

    workspace = Workspace.objects.get(slug="acme")
    assert MirrorCustomer.objects.filter(workspace=workspace).count() == 13
    assert not HelpdeskTicket.objects.filter(workspace=workspace).exists()
    assert "Dashboard history" not in output


def test_running_it_again_duplicates_nothing_and_resets_the_customers(db):
    # given a seeded demo in which an agent refunded part of Acme's last payment
    seed("--as-of", "2026-01-15")
    first_password = User.objects.get(username="admin").password
    before = counts()
    workspace = Workspace.objects.get(slug="acme")
    SandboxProvider(workspace).refund(
        charge_id="ch_sbx_acme_2026_01",
        amount=Money(10_000, "USD"),
        reason="requested_by_customer",
        idempotency_key="demo-1",
    )

    # when the seed runs again
    seed("--as-of", "2026-01-15")

    # then nothing is duplicated, the refund is gone, and the admin has a new password
    assert counts() == before
    assert MirrorCharge.objects.get(stripe_id="ch_sbx_acme_2026_01").amount_refunded == 0
    assert User.objects.get(username="admin").password != first_password


def test_without_as_of_the_history_ends_today_on_real_time(db):
    seed()

    workspace = Workspace.objects.get(slug="acme")
    assert SandboxControl.objects.get(workspace=workspace).clock is None
    last = MirrorCharge.objects.filter(customer_id="cus_sbx_acme").order_by("-created").first()
    assert timezone.now() - timedelta(days=32) < last.created < timezone.now()


def test_a_bad_date_is_refused_and_nothing_is_created(db):
    with pytest.raises(CommandError, match="--as-of must be a date"):
        seed("--as-of", "15/01/2026")
    assert not Workspace.objects.exists()


def test_it_refuses_to_write_into_a_stripe_workspace(db, make_workspace):
    from .stripe_support import make_stripe_workspace

    make_stripe_workspace(make_workspace, slug="acme")

    with pytest.raises(CommandError, match="sandbox"):
        seed()
    assert not MirrorCustomer.objects.exists()


# -- production refusals (issue 12) ---------------------------------------------------------


def test_it_refuses_to_run_with_debug_off_and_changes_nothing(db, settings):
    # given production settings (DEBUG off)
    settings.DEBUG = False
    before = counts()

    # when seed_demo runs, then it refuses with a clear message and nothing is created
    with pytest.raises(CommandError, match="only runs with DEBUG on"):
        seed("--as-of", "2026-01-15")
    assert counts() == before


def test_it_never_resets_the_password_of_a_real_superuser_named_admin(db):
    # given a superuser "admin" made by a person, not by the seed
    User.objects.create_superuser("admin", "ops@acme.example", "the-real-password")

    # when the seed runs
    output = seed("--as-of", "2026-01-15", "--no-history")

    # then that user keeps its password and e-mail, and the output says so
    admin = User.objects.get(username="admin")
    assert admin.check_password("the-real-password")
    assert admin.email == "ops@acme.example"
    assert "was left unchanged" in output
    assert not re.search(r"^\s+password \S+", output, re.MULTILINE)
