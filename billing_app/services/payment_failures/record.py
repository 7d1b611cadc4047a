"""Recording: one failed payment attempt → one ``PaymentFailure`` row, its streak, the warning flag.

Exactly once: a failure is one failed *attempt* — the failed charge when it is
known, else the invoice's attempt number — unique per workspace
(``PaymentFailure.attempt_key``). The three event types of one failure, a
redelivered event and a backfill all land on the same row. Writes for one
customer are serialised by locking the customer's mirror row, so the streak
count and the once-per-streak suspension warning cannot race (a conditional
unique constraint on the streak backs that up).

At ``SUSPENSION_THRESHOLD`` consecutive failures the row is flagged
(``suspension_warning_sent_at``) and the escalation is enqueued (``escalation``).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from ...models import MirrorCharge, MirrorInvoice, PaymentFailure, Workspace
from ...selectors.failures import SUSPENSION_THRESHOLD
from ...vocabulary import decline
from ..context_cache import customer_context_invalidate
from .escalation import escalation_enqueue
from .lookups import (
    attempt_number,
    customer_lock,
    failed_charge_of_invoice,
    invoice_of_charge,
    open_at,
    streak_scope,
)
from .recovery import recovery_apply_found

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class FailureReason:
    category: str  # a PaymentFailure.ReasonCategory value (the dashboard's categories)
    text: str  # plain words for an agent: "Card expired", "Gateway error"


def failure_reason(
    *, decline_code: str = "", failure_code: str = "", message: str = ""
) -> FailureReason:
    """A decline in plain words for an agent, in the dashboard's categories (``vocabulary.decline``).

    The English words, whatever the active language: the record stores them, and every
    reader shows them in its own language (``selectors.failures.failure_reason_text``
    derives them again from the stored decline or failure code: an unknown code's
    "Payment failed (expired token)" is a filled template no catalog entry matches)."""
    found = decline(decline_code=decline_code, failure_code=failure_code, message=message)
    return FailureReason(found.category, found.agent_words)


@transaction.atomic
def payment_failure_record(
    *,
    workspace: Workspace,
    charge: MirrorCharge | None = None,
    invoice: MirrorInvoice | None = None,
    attempt_count: int | None = None,
    failed_at: datetime | None = None,
    source: str = PaymentFailure.Source.WEBHOOK,
    event_id: str = "",
) -> PaymentFailure | None:
    """Record one failed payment attempt from the mirror's charge and/or invoice; idempotent.

    ``charge`` is the failed charge (a succeeded one is not a failure: None is
    returned); ``invoice`` the invoice it tried to pay, looked up from the charge
    when not given. With only an invoice, its latest failed charge in the mirror
    is the attempt; with none mirrored, the invoice's attempt number is
    (``attempt_count`` / ``failed_at`` may come from the event that reported it).
    Returns the failure row, created or updated — never a second row for the
    same attempt.
    """
    if charge is not None and charge.status != "failed":
        return None
    if invoice is None and charge is not None:
        invoice = invoice_of_charge(workspace, charge)
    if charge is None and invoice is not None:
        charge = failed_charge_of_invoice(workspace, invoice)
    if charge is None and invoice is None:
        return None
    customer_id = (charge.customer_id if charge else "") or (invoice.customer_id if invoice else "")
    if not customer_id:
        return None
    customer_lock(workspace, customer_id)

    if charge is not None:
        attempt = attempt_number(workspace, charge, invoice)
        key = charge.stripe_id
        existing = PaymentFailure.objects.filter(workspace=workspace, charge_id=key).first()
    else:
        assert invoice is not None
        attempt = max(1, attempt_count or invoice.attempt_count or 1)
        key = f"{invoice.stripe_id}#{attempt}"
        existing = None
    if existing is None:
        existing = PaymentFailure.objects.filter(workspace=workspace, attempt_key=key).first()

    reason = failure_reason(
        decline_code=charge.decline_code if charge else "",
        failure_code=charge.failure_code if charge else "",
        message=charge.failure_message if charge else "",
    )
    latest_attempt = invoice is not None and attempt >= invoice.attempt_count
    values: dict[str, Any] = {
        "customer_id": customer_id,
        "subscription_id": (invoice.subscription_id if invoice else "") or "",
        "invoice_id": invoice.stripe_id if invoice else (charge.invoice_id if charge else ""),
        "payment_intent_id": (charge.payment_intent_id if charge else "")
        or (invoice.payment_intent_id if invoice else ""),
        "charge_id": charge.stripe_id if charge else "",
        "amount": charge.amount if charge else (invoice.amount_remaining or invoice.amount_due),  # type: ignore[union-attr]
        "currency": (charge.currency if charge else invoice.currency).upper(),  # type: ignore[union-attr]
        "decline_code": charge.decline_code if charge else "",
        "failure_code": charge.failure_code if charge else "",
        "failure_message": charge.failure_message if charge else "",
        "reason_category": reason.category,
        "reason": reason.text[:200],
        "attempt_count": attempt,
        "failed_at": (charge.created if charge else None)
        or failed_at
        or (existing.failed_at if existing is not None else timezone.now()),
    }
    # The invoice's next attempt, if it is still to come after this one (a mirror not yet
    # updated by the invoice's own event still names the attempt that just failed).
    next_attempt = invoice.next_payment_attempt if invoice is not None else None
    values["next_retry_at"] = (
        next_attempt
        if next_attempt is not None
        and invoice.status == "open"  # type: ignore[union-attr]
        and latest_attempt
        and next_attempt > values["failed_at"]
        else None
    )
    if existing is None:
        try:
            with transaction.atomic():
                failure = PaymentFailure.objects.create(
                    workspace=workspace,
                    attempt_key=key,
                    source=source,
                    event_id=event_id[:255],
                    **values,
                )
        except IntegrityError:  # recorded concurrently (another event of the same failure)
            failure = PaymentFailure.objects.get(workspace=workspace, attempt_key=key)
            existing = failure
    if existing is not None:
        failure = existing
        for name, value in values.items():
            if value in ("", None) and getattr(failure, name) and name != "next_retry_at":
                continue  # a later, poorer report never erases what an earlier one knew
            setattr(failure, name, value)
        failure.save()

    recovery_apply_found(workspace, failure)
    _streak_update(workspace, failure)
    return failure


def _streak_update(workspace: Workspace, failure: PaymentFailure) -> None:
    """Consecutive failures when this one happened; at 3, the streak's one suspension warning."""
    earlier_open = (
        PaymentFailure.objects.filter(workspace=workspace, customer_id=failure.customer_id)
        .filter(streak_scope(failure))
        .filter(failed_at__lte=failure.failed_at)
        .filter(open_at(failure.failed_at))
        .exclude(pk=failure.pk)
        .order_by("failed_at", "id")
    )
    first = earlier_open.values_list("attempt_key", flat=True).first()
    consecutive = max(earlier_open.count() + 1, failure.attempt_count)
    failure.consecutive_count = consecutive
    previous_key, failure.streak_key = failure.streak_key, first or failure.attempt_key
    try:
        with transaction.atomic():
            failure.save(update_fields=["consecutive_count", "streak_key", "updated_at"])
    except IntegrityError:  # a warned failure keeps the streak it was warned for
        failure.streak_key = previous_key
        failure.save(update_fields=["consecutive_count", "updated_at"])
    if failure.recovered_at is not None or consecutive < SUSPENSION_THRESHOLD:
        return
    warned = (
        PaymentFailure.objects.filter(workspace=workspace, customer_id=failure.customer_id)
        .filter(streak_scope(failure))
        .filter(suspension_warning_sent_at__isnull=False)
        .filter(Q(recovered_at__isnull=True) | Q(pk=failure.pk))
        .exists()
    )
    if warned:
        return
    try:
        with transaction.atomic():
            updated = PaymentFailure.objects.filter(
                pk=failure.pk, suspension_warning_sent_at__isnull=True
            ).update(
                suspension_warning_sent_at=timezone.now(),
                suspension_note_status=PaymentFailure.NoteStatus.PENDING,
                csm_outreach_status=PaymentFailure.OutreachStatus.PENDING,
            )
    except IntegrityError:  # another failure of this streak holds the warning
        return
    if updated:
        failure.refresh_from_db()
        # The suspension warning shows in the context (``.update()`` sends no signal).
        customer_context_invalidate(
            workspace_id=failure.workspace_id, customer_id=failure.customer_id
        )
        escalation_enqueue(failure)
        logger.info(
            "suspension warning for customer %s (%s consecutive failures, failure %s)",
            failure.customer_id,
            consecutive,
            failure.pk,
        )


# --- backfill ---------------------------------------------------------------------------------


def payment_failures_sync(
    *, workspace: Workspace, customer_ids: Iterable[str] | None = None, reset: bool = False
) -> int:
    """Record the failures the mirror already holds (oldest first), then their recoveries.

    For a workspace's history (first backfill) and the demo seed. ``reset``
    deletes those customers' failure records first, for a seed that rebuilds the
    customers from scratch. Returns the number of failures recorded or updated.
    """
    ids = list(customer_ids) if customer_ids is not None else None
    if reset and ids is not None:
        PaymentFailure.objects.filter(workspace=workspace, customer_id__in=ids).delete()
    charges = MirrorCharge.objects.filter(workspace=workspace, status="failed")
    invoices = MirrorInvoice.objects.filter(workspace=workspace, status="open", attempt_count__gt=0)
    if ids is not None:
        charges = charges.filter(customer_id__in=ids)
        invoices = invoices.filter(customer_id__in=ids)
    count = 0
    for charge in charges.order_by("created", "stripe_id"):
        if payment_failure_record(
            workspace=workspace, charge=charge, source=PaymentFailure.Source.BACKFILL
        ):
            count += 1
    for invoice in invoices.order_by("created"):
        if failed_charge_of_invoice(workspace, invoice) is None and payment_failure_record(
            workspace=workspace, invoice=invoice, source=PaymentFailure.Source.BACKFILL
        ):
            count += 1
    return count
