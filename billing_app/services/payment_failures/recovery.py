"""Recovery: a successful payment settles the open failures it pays for, whichever event came first.

A paid invoice or a succeeded charge marks the failures it settles recovered
(``payment_failures_recover``, from the success events); a failure recorded
after its success is already mirrored is marked at once (``recovery_apply_found``,
from ``record``). Either way the recovery is set once, with the time to recover
and whether an agent's action led to it (the dashboard's recovery rate).
"""

from __future__ import annotations

import logging
from datetime import datetime

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from ...catalog import ActionKind
from ...models import BillingAction, MirrorCharge, MirrorInvoice, PaymentFailure, Workspace
from ..context_cache import customer_context_invalidate
from .lookups import customer_lock, invoice_of_charge

logger = logging.getLogger(__name__)

# Agent actions that count as "recovered after agent intervention" (the dashboard's recovery rate).
RECOVERY_ACTION_KINDS = (
    ActionKind.GENERATE_PAYMENT_LINK.value,
    ActionKind.UPDATE_PAYMENT_METHOD.value,
    ActionKind.EXTEND_GRACE_PERIOD.value,
    ActionKind.RESEND_INVOICE.value,
)


def _recovery_action(failure: PaymentFailure) -> BillingAction | None:
    """The agent's action that led to the payment: one taken since the streak was first seen.

    Compared on Billing Desk's own clock (when the streak's first failure was
    recorded, when the action completed), never the billing system's — a
    sandbox may run on a frozen clock.
    """
    since = (
        PaymentFailure.objects.filter(
            workspace_id=failure.workspace_id, attempt_key=failure.streak_key
        )
        .values_list("created_at", flat=True)
        .first()
        if failure.streak_key
        else None
    ) or failure.created_at
    return (
        BillingAction.objects.filter(
            workspace_id=failure.workspace_id,
            customer_id=failure.customer_id,
            kind__in=RECOVERY_ACTION_KINDS,
            status=BillingAction.Status.SUCCEEDED,
            completed_at__gte=min(since, failure.created_at),
        )
        .order_by("-completed_at")
        .first()
    )


def _mark_recovered(failure: PaymentFailure, *, at: datetime, via: str) -> bool:
    """Set recovery once (conditional update: a second success changes nothing)."""
    at = max(at, failure.failed_at)
    action = _recovery_action(failure)
    updated = PaymentFailure.objects.filter(pk=failure.pk, recovered_at__isnull=True).update(
        recovered_at=at,
        recovered_via=via[:255],
        recovered_by=PaymentFailure.RecoveredBy.AGENT_ACTION
        if action
        else PaymentFailure.RecoveredBy.PAYMENT,
        recovery_action=action,
        time_to_recover=at - failure.failed_at,
        updated_at=timezone.now(),
    )
    if updated:
        failure.refresh_from_db()
        # The context's failure alerts change; ``.update()`` sends no signal, and the write
        # that settled the failure may not touch the customer's mirror (a payment event
        # older than the mirror writes nothing): mark the snapshot stale here (issue 15).
        customer_context_invalidate(
            workspace_id=failure.workspace_id, customer_id=failure.customer_id
        )
    return bool(updated)


def _success_after(workspace: Workspace, failure: PaymentFailure) -> tuple[datetime, str] | None:
    """A payment already mirrored that settles ``failure`` (the success arrived first)."""
    paid = MirrorInvoice.objects.filter(
        workspace=workspace, status="paid", paid_at__gt=failure.failed_at
    )
    settled = Q()
    if failure.invoice_id:
        settled |= Q(stripe_id=failure.invoice_id)
    if failure.subscription_id:
        settled |= Q(subscription_id=failure.subscription_id)
    invoice = paid.filter(settled).order_by("paid_at").first() if settled else None
    charges = MirrorCharge.objects.filter(
        workspace=workspace, status="succeeded", created__gt=failure.failed_at
    )
    same = Q()
    if failure.payment_intent_id:
        same |= Q(payment_intent_id=failure.payment_intent_id)
    if failure.invoice_id:
        same |= Q(invoice_id=failure.invoice_id)
    if not failure.subscription_id and not failure.invoice_id:
        same |= Q(customer_id=failure.customer_id)
    charge = charges.filter(same).order_by("created").first() if same else None
    found = [
        (c.created, c.stripe_id) for c in (charge,) if c is not None and c.created is not None
    ] + [(i.paid_at, i.stripe_id) for i in (invoice,) if i is not None and i.paid_at is not None]
    return min(found) if found else None


def recovery_apply_found(workspace: Workspace, failure: PaymentFailure) -> None:
    if failure.recovered_at is not None:
        return
    found = _success_after(workspace, failure)
    if found is not None:
        _mark_recovered(failure, at=found[0], via=found[1])


@transaction.atomic
def payment_failures_recover(
    *,
    workspace: Workspace,
    invoice: MirrorInvoice | None = None,
    charge: MirrorCharge | None = None,
) -> list[PaymentFailure]:
    """Mark the open failures a successful payment settles; returns those it recovered.

    A paid invoice settles the failures on that invoice (or its payment intent)
    and earlier failures of its subscription; a succeeded charge those on its
    payment intent / invoice / subscription, or, for a payment outside any
    subscription, the customer's earlier one-off failures. Time to recover runs
    from each failure to the payment. Idempotent: recovered failures stay as they
    were, so a redelivered success changes nothing.
    """
    if charge is not None and charge.status != "succeeded":
        charge = None
    if invoice is not None and invoice.status != "paid":
        invoice = None
    if charge is not None and invoice is None:
        found = invoice_of_charge(workspace, charge)
        invoice_for_scope = found
    else:
        invoice_for_scope = invoice
    if charge is None and invoice is None:
        return []
    at = (
        (charge.created if charge else None)
        or (invoice.paid_at if invoice else None)
        or timezone.now()
    )
    via = charge.stripe_id if charge else invoice.stripe_id  # type: ignore[union-attr]
    customer_id = (charge.customer_id if charge else "") or (
        invoice_for_scope.customer_id if invoice_for_scope else ""
    )
    if not customer_id:
        return []
    customer_lock(workspace, customer_id)
    settles = Q()
    if invoice_for_scope is not None:
        settles |= Q(invoice_id=invoice_for_scope.stripe_id)
        if invoice_for_scope.payment_intent_id:
            settles |= Q(payment_intent_id=invoice_for_scope.payment_intent_id)
        if invoice_for_scope.subscription_id:
            settles |= Q(subscription_id=invoice_for_scope.subscription_id)
    if charge is not None:
        if charge.payment_intent_id:
            settles |= Q(payment_intent_id=charge.payment_intent_id)
        if invoice_for_scope is None or not invoice_for_scope.subscription_id:
            settles |= Q(subscription_id="", invoice_id="")
    recovered = []
    for failure in PaymentFailure.objects.filter(
        settles,
        workspace=workspace,
        customer_id=customer_id,
        recovered_at__isnull=True,
        failed_at__lte=at,
    ).order_by("failed_at"):
        if _mark_recovered(failure, at=at, via=via):
            recovered.append(failure)
    if recovered:
        logger.info(
            "payment recovered %s failure(s) of customer %s via %s",
            len(recovered),
            customer_id,
            via,
        )
    return recovered
