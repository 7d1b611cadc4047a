"""The demo's sandbox workspace and billing customers (``manage.py seed_demo``).

Idempotent: re-running resets the seeded customers' billing objects to the
seeded state (same ids, nothing duplicated), keeps Billing Desk's own records
(actions, approvals, pins), and generates a new admin password — and a new password
for the VP approver "vp", whose second factor it removes so that signing in shows the
enrolment (issue 17). Dates are
relative to the seeding moment so the demo always looks current;
``as_of=2026-01-15`` reproduces the product brief's own dates and freezes the
sandbox clock on that day.

The customers live one module each in ``billing_app.demo.customers``: the brief's
Acme Corp (its BILLING CONTEXT screen, figure for figure — see ``customers/acme.py``),
then one customer per playbook scenario (the requesters of the demo page's tickets)
and the reading edge cases: a failed payment on an expired card (Northwind Traders),
a duplicate charge three minutes apart yesterday (Globex), an overcharge after a
mid-cycle seat increase (Initech), a trial ending in three days (Umbrella Labs), an
EU company asking for a tax invoice with no VAT id or street address on file, billed
in EUR with 19% VAT (Hooli GmbH), a refund request for an annual plan bought by
mistake (Vandelay Industries), three refunds in 90 days (Wayne Services), a JPY
customer (Sakura Trading), and one billing email shared by two customers (Stark
Industries and Stark Retail).

A service: it writes through ``services`` (workspaces, mirror, payment failures,
refresh) and is called by the ``seed_demo`` command; no service imports it.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from django.conf import settings
from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone

from helpdesk_connectors.models import Installation

from ..catalog import Role
from ..errors import Conflict
from ..models import (
    MirrorBalanceTransaction,
    MirrorCharge,
    MirrorCustomer,
    MirrorDiscount,
    MirrorInvoice,
    MirrorInvoiceLine,
    MirrorPaymentMethod,
    MirrorRefund,
    MirrorSubscription,
    MirrorSubscriptionItem,
    SandboxControl,
    SandboxIdempotency,
    Workspace,
)
from ..roles import agent_role_assign
from ..services.mirror import mirror_upsert
from ..services.payment_failures import payment_failures_sync
from ..services.refresh import provider_health_record
from ..services.two_factor import second_factor_reset
from ..services.workspaces import installation_add, workspace_create
from .builders import DemoObjects, Obj, SeededCustomer
from .card_prompts import demo_card_prompts_seed
from .customers import SEEDED_CUSTOMERS, customers_build
from .customers.acme import ACME
from .widget_seed import demo_widget_seed

WORKSPACE_SLUG = "acme"
DEMO_WORKSPACE_SLUG = WORKSPACE_SLUG
WORKSPACE_NAME = "Acme Billing"
DEMO_DOMAIN = "demo.billing-desk.local"
ADMIN_USERNAME = "admin"
# Marks the admin user the seed created: only that user's password is ever reset.
ADMIN_EMAIL = "admin@billing-desk.local"
# The demo's VP approver (issue 17): signs in at /accounts/login/ and, having no second
# factor (every seed run removes it), enrols an authenticator app right there.
APPROVER_USERNAME = "vp"
APPROVER_EMAIL = "vp@billing-desk.local"


@dataclass
class SeedSummary:
    workspace: Workspace
    created_workspace: bool
    admin_username: str
    # None when "admin" is an existing user the seed did not create (left untouched).
    admin_password: str | None
    admin_url: str
    demo_url: str
    as_of: datetime
    clock_frozen: bool
    # Keyed by scenario: acme, failed-payment, duplicate-charge, overcharge, trialing,
    # tax-invoice, refund-request, refund-pattern, jpy, several-matches-active/-canceled.
    customers: dict[str, SeededCustomer] = field(default_factory=dict)
    # Refunds that exist in the seeded history (tests tell them from new ones).
    refund_ids: list[str] = field(default_factory=list)
    acme_last_charge_id: str = ""
    approver_username: str = APPROVER_USERNAME
    # None when "vp" is an existing user the seed did not create (left untouched).
    approver_password: str | None = None

    @property
    def acme_id(self) -> str:
        return ACME


class DemoSeeder(DemoObjects):
    """Every seeded customer's objects as of a moment (no database): ``DemoSeeder(as_of).build()``."""

    def build(self) -> list[Obj]:
        customers_build(self)
        return self.all_objects()


def _ensure_workspace() -> tuple[Workspace, bool]:
    workspace = Workspace.objects.filter(slug=WORKSPACE_SLUG).first()
    if workspace is None:
        return (
            workspace_create(
                slug=WORKSPACE_SLUG,
                name=WORKSPACE_NAME,
                base_currency="USD",
                provider=Workspace.Provider.SANDBOX,
            ),
            True,
        )
    if workspace.provider != Workspace.Provider.SANDBOX:
        raise Conflict(
            f"Workspace {WORKSPACE_SLUG!r} uses {workspace.provider}; the demo seed only writes to "
            "a sandbox workspace.",
            code="not_a_sandbox_workspace",
        )
    return workspace, False


def _ensure_installation(workspace: Workspace) -> None:
    existing = Installation.objects.filter(connector="demo", domain=DEMO_DOMAIN).first()
    if existing is None:
        installation_add(workspace=workspace, connector="demo", domain=DEMO_DOMAIN)
        return
    link = getattr(existing, "workspace_link", None)
    if link is None or link.workspace_id != workspace.pk:
        raise Conflict(
            f"The demo installation {DEMO_DOMAIN} belongs to another workspace.",
            code="installation_exists",
        )


def _ensure_admin(password: str) -> bool:
    """Create the demo admin, or reset its password; ``False`` if "admin" is someone else's.

    Issue 12: the seed reset a real superuser's password. An existing "admin" that does
    not carry the seed's e-mail address was made by a person (``createsuperuser``), so
    neither its password nor its flags are touched.
    """
    user, created = User.objects.get_or_create(
        username=ADMIN_USERNAME, defaults={"email": ADMIN_EMAIL}
    )
    if not created and user.email != ADMIN_EMAIL:
        return False
    user.is_staff = True
    user.is_superuser = True
    user.is_active = True
    user.set_password(password)
    user.save()
    return True


def _ensure_approver(workspace: Workspace, password: str) -> bool:
    """The demo VP approver with a new password and no second factor, so that signing in
    shows the enrolment; ``False`` (nothing touched) if "vp" is someone else's account."""
    user, created = User.objects.get_or_create(
        username=APPROVER_USERNAME,
        defaults={"email": APPROVER_EMAIL, "first_name": "Vera", "last_name": "Park"},
    )
    if not created and user.email != APPROVER_EMAIL:
        return False
    user.is_active = True
    user.set_password(password)
    user.save()
    agent_role_assign(
        user=user,
        workspace=workspace,
        role=Role.VP,
        source="demo seed: VP approver",
        defaults={"display_name": "Vera Park", "email": APPROVER_EMAIL},
    )
    second_factor_reset(user=user)
    return True


def _reset_customers(workspace: Workspace, customer_ids: Iterable[str]) -> None:
    ids = list(customer_ids)
    sub_ids = list(
        MirrorSubscription.objects.filter(workspace=workspace, customer_id__in=ids).values_list(
            "stripe_id", flat=True
        )
    )
    invoice_ids = list(
        MirrorInvoice.objects.filter(workspace=workspace, customer_id__in=ids).values_list(
            "stripe_id", flat=True
        )
    )
    MirrorInvoiceLine.objects.filter(workspace=workspace, invoice_id__in=invoice_ids).delete()
    MirrorInvoice.objects.filter(workspace=workspace, stripe_id__in=invoice_ids).delete()
    MirrorSubscriptionItem.objects.filter(workspace=workspace, subscription_id__in=sub_ids).delete()
    MirrorSubscription.objects.filter(workspace=workspace, stripe_id__in=sub_ids).delete()
    charge_ids = list(
        MirrorCharge.objects.filter(workspace=workspace, customer_id__in=ids).values_list(
            "stripe_id", flat=True
        )
    )
    MirrorRefund.objects.filter(workspace=workspace, charge_id__in=charge_ids).delete()
    for model in (
        MirrorRefund,
        MirrorCharge,
        MirrorPaymentMethod,
        MirrorBalanceTransaction,
        MirrorDiscount,
    ):
        model.objects.filter(workspace=workspace, customer_id__in=ids).delete()
    MirrorCustomer.objects.filter(workspace=workspace, stripe_id__in=ids).delete()


@transaction.atomic
def demo_seed(
    *,
    as_of: datetime | None = None,
    admin_password: str | None = None,
    base_url: str | None = None,
) -> SeedSummary:
    """Create or reset the demo workspace, its demo installation, the admin user and the customers.

    ``as_of`` (aware) dates the history and freezes the sandbox clock on it;
    without it the history ends now and the sandbox runs on real time. (Not the
    workspace's billing clock: the seed is what sets that clock.)
    """
    frozen = as_of is not None
    moment = (as_of or timezone.now()).astimezone(UTC)
    workspace, created = _ensure_workspace()
    _ensure_installation(workspace)
    chosen = admin_password or secrets.token_urlsafe(12)
    password: str | None = chosen if _ensure_admin(chosen) else None
    approver_chosen = secrets.token_urlsafe(12)
    approver_password = approver_chosen if _ensure_approver(workspace, approver_chosen) else None
    SandboxControl.objects.update_or_create(
        workspace=workspace,
        defaults={"down": False, "down_reason": "", "clock": moment if frozen else None},
    )
    SandboxIdempotency.objects.filter(workspace=workspace).delete()
    _reset_customers(workspace, SEEDED_CUSTOMERS)
    seeder = DemoSeeder(moment)
    for obj in seeder.build():
        mirror_upsert(workspace=workspace, obj=obj)
    MirrorCustomer.objects.filter(workspace=workspace, stripe_id__in=SEEDED_CUSTOMERS).update(
        bundle_synced_at=timezone.now()
    )
    # Issue 7: the failure records, as the payment-failure workflow keeps them.
    payment_failures_sync(workspace=workspace, customer_ids=SEEDED_CUSTOMERS, reset=True)
    provider_health_record(workspace_id=workspace.pk, available=True)
    # Issue 18: the billing help widget on the demo's sample product page (/demo/widget/).
    demo_widget_seed(workspace=workspace)
    # Issue 18: card-update prompts on (``manage.py card_prompts`` sends Northwind's).
    demo_card_prompts_seed(workspace=workspace)
    base = (base_url or settings.PUBLIC_BASE_URL).rstrip("/")
    return SeedSummary(
        workspace=workspace,
        created_workspace=created,
        admin_username=ADMIN_USERNAME,
        admin_password=password,
        admin_url=f"{base}/admin/",
        demo_url=f"{base}/demo/",
        as_of=moment,
        clock_frozen=frozen,
        customers=seeder.customers,
        refund_ids=[
            r["id"]
            for obj in seeder.objects
            if obj.get("object") == "charge"
            for r in (obj.get("refunds") or {}).get("data") or []
        ],
        acme_last_charge_id=seeder.acme_last_charge_id,
        approver_password=approver_password,
    )


__all__ = [
    "ACME",
    "ADMIN_EMAIL",
    "ADMIN_USERNAME",
    "APPROVER_EMAIL",
    "APPROVER_USERNAME",
    "DEMO_DOMAIN",
    "DEMO_WORKSPACE_SLUG",
    "SEEDED_CUSTOMERS",
    "WORKSPACE_NAME",
    "WORKSPACE_SLUG",
    "DemoSeeder",
    "SeedSummary",
    "SeededCustomer",
    "demo_seed",
]
