"""Everything the context is computed from, loaded from the mirror in a bounded number of queries.

``customer_facts_load`` runs every query of the context but the payment history's
and the failure records' (about ten, whatever the length of the customer's history;
see ``tests/billing_app/test_context.py``) and returns ``CustomerFacts``, which the
blocks — subscriptions, lifetime value, churn risk, alerts — read without touching
the database again.

Bounded by design (issue 15): the build never scans the customer's history. Totals
(lifetime revenue, the outstanding balance, the credit applied this cycle, the refunds
of the pattern window) are SQL aggregates; lists are the newest rows, capped: the
charges of the last 12 months (``CHARGES_MAX``, without their JSON), the open invoices
(``OPEN_INVOICES_MAX``), the credits the customer's balance is made of
(``CREDITS_LISTED_MAX``, read only while the customer holds credit), Billing Desk's
actions (``ACTIONS_MAX``). Subscriptions are all read: the panel lists every one and
months active start at the earliest.

The windows the queries apply (charges of 12 months, refunds of the pattern window,
flags still active, actions of 90 days) note when their answer changes
(``horizon``): rows only leave a window as time passes, at ``window_exit``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import BigIntegerField, Count, F, Min, OuterRef, Q, Subquery, Sum, Value

from ...models import (
    BillingAction,
    CustomerFlag,
    MirrorBalanceTransaction,
    MirrorCharge,
    MirrorCustomer,
    MirrorDiscount,
    MirrorInvoice,
    MirrorPaymentMethod,
    MirrorPrice,
    MirrorRefund,
    MirrorSubscription,
    Workspace,
)
from ...subscriptions import is_billing
from ..payments import charges_light
from .horizon import horizon_note, horizon_note_real, window_exit
from .products import Catalog
from .shapes import Obj, ts
from .subscription import period_start, primary_subscription

# Billing Desk's own actions read with the context: pending approvals and the last 90 days.
ACTIONS_DAYS = 90
ACTIONS_MAX = 100
CHARGES_DAYS = 365
CHARGES_MAX = 500  # of the last 12 months, newest first
OPEN_INVOICES_MAX = 20
# The credits listed as making up the customer's balance (``payment.credits_block``).
CREDITS_LISTED_MAX = 20


def action_window_exit(action: BillingAction) -> datetime | None:
    """When ``action`` leaves the actions read (wall clock), or None if it stays.

    An action pending approval is read whatever its age; any other is read for
    ``ACTIONS_DAYS`` after it was created.
    """
    if action.status == BillingAction.Status.PENDING_APPROVAL:
        return None
    return window_exit(action.created_at, timedelta(days=ACTIONS_DAYS))


@dataclass(frozen=True)
class CreditFacts:
    """What the credits block reads of the customer's balance transactions (never all of them).

    ``grants``: the newest credits granted (negative amounts other than applications to
    invoices), newest first, at most ``CREDITS_LISTED_MAX``, read only while the customer
    holds credit (only then does the block list them). ``applied``: the balance applied
    to invoices since ``period_start`` (the primary subscription's current period), an
    SQL sum.
    """

    grants: list[MirrorBalanceTransaction]
    applied: int = 0
    period_start: datetime | None = None


@dataclass(frozen=True)
class CustomerFacts:
    """A customer's mirrored billing data and Billing Desk's records about them."""

    workspace: Workspace
    customer: MirrorCustomer
    currency: str  # the customer's, else the workspace's base currency (upper case)
    now: datetime  # the billing clock (a sandbox may be frozen)
    real_now: datetime  # wall-clock time: approvals expire in real time
    revenue: int  # amount paid over paid invoices, ever
    first_paid: datetime | None
    outstanding: int  # amount remaining on open invoices
    refund_count: int  # refunds within the workspace's refund_pattern_days
    monitoring_until: datetime | None  # payment monitoring after a duplicate charge
    subs: list[Obj]  # Stripe-shaped, newest first
    catalog: Catalog
    discounts: dict[str, Obj]  # mirrored discounts the subscriptions name by id
    pending_prices: dict[str, Obj]  # the prices of scheduled plan changes
    primary: Obj | None
    payment_method: Obj | None  # the default payment method, Stripe-shaped
    charges: list[MirrorCharge]  # the last 12 months, newest first
    last_charge: MirrorCharge | None
    open_invoices: list[MirrorInvoice]  # newest first
    balance_transactions: CreditFacts  # what the credits block needs, bounded
    actions: list[BillingAction]  # pending approval or of the last 90 days, newest first
    # The oldest refund counted in ``refund_count`` (it leaves the window first).
    refund_oldest: datetime | None = None

    @property
    def live(self) -> list[Obj]:
        """The subscriptions billing now (the rulebook's ``is_billing``)."""
        return [s for s in self.subs if is_billing(s.get("status"))]

    @property
    def failed_charges(self) -> list[MirrorCharge]:
        return [c for c in self.charges if c.status == "failed"]

    @property
    def failures_90(self) -> list[MirrorCharge]:
        """Failed charges of the last 90 days; the answer shrinks when the oldest leaves."""
        window = timedelta(days=90)
        since = self.now - window
        found = [c for c in self.failed_charges if c.created and c.created >= since]
        for charge in found:
            horizon_note(window_exit(charge.created, window))
        return found

    @property
    def disputed_charges(self) -> list[MirrorCharge]:
        return [c for c in self.charges if c.disputed]

    @property
    def consecutive_failures(self) -> int:
        """Failed charges since the last successful one."""
        consecutive = 0
        for charge in self.charges:
            if charge.status == "succeeded":
                break
            if charge.status == "failed":
                consecutive += 1
        return consecutive


@dataclass(frozen=True)
class _Aggregates:
    revenue: int
    first_paid: datetime | None
    outstanding: int
    applied: int
    refund_count: int
    refund_oldest: datetime | None
    monitoring_until: datetime | None


def _aggregates(
    workspace: Workspace, customer: MirrorCustomer, now: datetime, cycle_start: datetime | None
) -> _Aggregates:
    """Revenue, first payment, outstanding, credit applied, refunds and flags: one query."""
    cid = customer.stripe_id
    invoices = MirrorInvoice.objects.filter(
        workspace_id=OuterRef("workspace_id"), customer_id=OuterRef("stripe_id")
    )
    pattern_since = now - timedelta(days=workspace.refund_pattern_days)
    customer_charges = MirrorCharge.objects.filter(
        workspace_id=workspace.pk, customer_id=cid
    ).values("stripe_id")
    refunds = (
        MirrorRefund.objects.filter(workspace_id=workspace.pk, created__gte=pattern_since)
        .filter(Q(customer_id=cid) | Q(charge_id__in=customer_charges))
        .exclude(status__in=["failed", "canceled"])
        .values("workspace_id")
    )
    applied: Subquery | Value = Value(0, output_field=BigIntegerField())
    if cycle_start is not None:
        applied = Subquery(
            MirrorBalanceTransaction.objects.filter(
                workspace_id=OuterRef("workspace_id"),
                customer_id=OuterRef("stripe_id"),
                type="applied_to_invoice",
                amount__gt=0,
                created__gte=cycle_start,
            )
            .values("customer_id")
            .annotate(s=Sum("amount"))
            .values("s")[:1]
        )
    row = (
        MirrorCustomer.objects.filter(pk=customer.pk)
        .annotate(
            lifetime=Subquery(
                invoices.filter(status="paid")
                .values("customer_id")
                .annotate(s=Sum("amount_paid"))
                .values("s")[:1]
            ),
            first_paid=Subquery(
                invoices.filter(status="paid", amount_paid__gt=0)
                .order_by("created")
                .values("created")[:1]
            ),
            outstanding=Subquery(
                invoices.filter(status="open")
                .values("customer_id")
                .annotate(s=Sum("amount_remaining"))
                .values("s")[:1]
            ),
            applied=applied,
            refund_count=Subquery(refunds.annotate(c=Count("id")).values("c")[:1]),
            refund_oldest=Subquery(refunds.annotate(m=Min("created")).values("m")[:1]),
            monitoring_until=Subquery(
                CustomerFlag.objects.filter(
                    workspace_id=OuterRef("workspace_id"),
                    customer_id=OuterRef("stripe_id"),
                    kind=CustomerFlag.Kind.PAYMENT_MONITORING,
                    active_until__gt=now,  # the clock the flag was set on (a sandbox may be frozen)
                )
                .order_by("-active_until")
                .values("active_until")[:1]
            ),
        )
        .values(
            "lifetime",
            "first_paid",
            "outstanding",
            "applied",
            "refund_count",
            "refund_oldest",
            "monitoring_until",
        )
        .get()
    )
    # The flag stops showing when it runs out (``active_until > now``).
    horizon_note(row["monitoring_until"])
    return _Aggregates(
        revenue=int(row["lifetime"] or 0),
        first_paid=row["first_paid"],
        outstanding=int(row["outstanding"] or 0),
        applied=int(row["applied"] or 0),
        refund_count=int(row["refund_count"] or 0),
        refund_oldest=row["refund_oldest"],
        monitoring_until=row["monitoring_until"],
    )


def _subscriptions(
    workspace: Workspace, cid: str
) -> tuple[list[Obj], Catalog, dict[str, Obj], dict[str, Obj]]:
    """Subscriptions (items and prices embedded), their products, discounts and pending prices."""
    rows = MirrorSubscription.objects.filter(workspace=workspace, customer_id=cid).order_by(
        "-created", "-id"
    )
    subs = [dict(r.data or {}) for r in rows if r.data]
    catalog = Catalog(workspace, subs)
    discount_ids = {str(d) for s in subs for d in (s.get("discounts") or []) if isinstance(d, str)}
    discounts: dict[str, Obj] = {}
    if discount_ids:
        discounts = {
            r.stripe_id: {**(r.data or {}), "deleted": not r.active}
            for r in MirrorDiscount.objects.filter(workspace=workspace, stripe_id__in=discount_ids)
        }
    pending_ids = {str((s.get("metadata") or {}).get("pending_price_id")) for s in subs} - {
        "None",
        "",
    }
    pending_prices: dict[str, Obj] = {}
    if pending_ids:
        pending_prices = {
            r.stripe_id: dict(r.data or {})
            for r in MirrorPrice.objects.filter(workspace=workspace, stripe_id__in=pending_ids)
        }
    return subs, catalog, discounts, pending_prices


def _payment_method(
    workspace: Workspace, customer: MirrorCustomer, primary: Obj | None
) -> Obj | None:
    """The default payment method: expanded on the customer, else the mirrored row."""
    data = customer.data or {}
    ref = (data.get("invoice_settings") or {}).get("default_payment_method") or (primary or {}).get(
        "default_payment_method"
    )
    if isinstance(ref, dict):
        return ref
    if not ref:
        return None
    row = MirrorPaymentMethod.objects.filter(workspace=workspace, stripe_id=ref).first()
    return dict(row.data) if row is not None and row.data else None


def _charges(
    workspace: Workspace, cid: str, now: datetime
) -> tuple[list[MirrorCharge], MirrorCharge | None]:
    """Charges of the last 12 months (newest first, without their JSON) and the latest ever.

    The context counts the failed and the disputed ones among them (failures in 12 months,
    the churn signals, the failure alerts), so its figures change when one of those leaves
    the window; a paid charge leaving it changes nothing (duplicates look back 90 days
    only, ``alerts.duplicate_pairs``).
    """
    window = timedelta(days=CHARGES_DAYS)
    charges = list(
        charges_light(
            MirrorCharge.objects.filter(
                workspace=workspace, customer_id=cid, created__gte=now - window
            )
        ).order_by("-created", "-stripe_id")[:CHARGES_MAX]
    )
    for charge in charges:
        if charge.status == "failed" or charge.disputed:
            horizon_note(window_exit(charge.created, window))
    last = charges[0] if charges else None
    if last is None:
        last = (
            charges_light(MirrorCharge.objects.filter(workspace=workspace, customer_id=cid))
            .order_by("-created", "-stripe_id")
            .first()
        )
    return charges, last


def _credits(
    workspace: Workspace, customer: MirrorCustomer, applied: int, cycle_start: datetime | None
) -> CreditFacts:
    """The credits the customer's balance is made of (newest first), read only if it holds any."""
    grants: list[MirrorBalanceTransaction] = []
    if customer.balance < 0:
        grants = list(
            MirrorBalanceTransaction.objects.filter(
                workspace=workspace, customer_id=customer.stripe_id, amount__lt=0
            )
            .exclude(type="applied_to_invoice")
            .only("stripe_id", "amount", "currency", "type", "description", "created")
            .order_by(F("created").desc(nulls_first=True), "-stripe_id")[:CREDITS_LISTED_MAX]
        )
    return CreditFacts(grants=grants, applied=applied, period_start=cycle_start)


def _actions(workspace: Workspace, cid: str, real_now: datetime) -> list[BillingAction]:
    """Billing Desk's own records: approvals pending and recent actions, in one query.

    Each block notes which of these actions leaving the 90 days changes it
    (``action_window_exit``); when the cap is reached, an older action pending
    approval may move up into the list as soon as any action leaves.
    """
    actions = list(
        BillingAction.objects.filter(workspace=workspace, customer_id=cid)
        .filter(
            Q(status=BillingAction.Status.PENDING_APPROVAL)
            | Q(created_at__gte=real_now - timedelta(days=ACTIONS_DAYS))
        )
        .select_related("actor", "approval")
        .order_by("-created_at")[:ACTIONS_MAX]
    )
    if len(actions) >= ACTIONS_MAX:
        for action in actions:
            horizon_note_real(action_window_exit(action))
    return actions


def customer_facts_load(
    *, workspace: Workspace, customer: MirrorCustomer, now: datetime, real_now: datetime
) -> CustomerFacts:
    """Load what the context is computed from (see the module docstring)."""
    cid = customer.stripe_id
    subs, catalog, discounts, pending_prices = _subscriptions(workspace, cid)
    primary = primary_subscription(subs, catalog)
    cycle_start = ts(period_start(primary)) if primary else None
    aggregates = _aggregates(workspace, customer, now, cycle_start)
    payment_method = _payment_method(workspace, customer, primary)
    charges, last_charge = _charges(workspace, cid, now)
    open_invoices = list(
        MirrorInvoice.objects.filter(workspace=workspace, customer_id=cid, status="open")
        .defer("data")
        .order_by("-created")[:OPEN_INVOICES_MAX]
    )
    return CustomerFacts(
        workspace=workspace,
        customer=customer,
        currency=(customer.currency or workspace.base_currency or "USD").upper(),
        now=now,
        real_now=real_now,
        revenue=aggregates.revenue,
        first_paid=aggregates.first_paid,
        outstanding=aggregates.outstanding,
        refund_count=aggregates.refund_count,
        monitoring_until=aggregates.monitoring_until,
        subs=subs,
        catalog=catalog,
        discounts=discounts,
        pending_prices=pending_prices,
        primary=primary,
        payment_method=payment_method,
        charges=charges,
        last_charge=last_charge,
        open_invoices=open_invoices,
        balance_transactions=_credits(workspace, customer, aggregates.applied, cycle_start),
        actions=_actions(workspace, cid, real_now),
        refund_oldest=aggregates.refund_oldest,
    )


__all__ = [
    "ACTIONS_DAYS",
    "CreditFacts",
    "CustomerFacts",
    "action_window_exit",
    "customer_facts_load",
]
