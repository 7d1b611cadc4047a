"""Payment failures: recorded from webhooks (and the sandbox), tracked to recovery, escalated at 3.

Where failures come from (DESIGN.md section 6, "Payment failure"):

* Stripe's ``charge.failed``, ``payment_intent.payment_failed`` and
  ``invoice.payment_failed`` — hooks registered in ``services.webhooks``' registry
  below. They run inside the event's processing transaction, *after* the mirror
  holds the object's re-read state, so they read the mirror, never the payload.
* The sandbox's simulated payments (``providers.sandbox.payments``), which emit
  the same event types through the same hooks — the same records either way.
* ``payment_failures_sync``: a backfill from the mirror (the demo seed, a new
  workspace's history).

Exactly once: a failure is one failed *attempt* — the failed charge when it is
known, else the invoice's attempt number — unique per workspace
(``PaymentFailure.attempt_key``). The three event types of one failure, a
redelivered event and a backfill all land on the same row. Writes for one
customer are serialised by locking the customer's mirror row, so the streak
count and the once-per-streak suspension warning cannot race (a conditional
unique constraint on the streak backs that up).

Out of order: recording a failure looks for a later success already mirrored
(the invoice paid after it, a later succeeded charge on the same payment intent,
invoice or subscription) and marks it recovered at once; a success marks every
open failure it settles. Neither depends on which event came first.

At 3 consecutive failures on a subscription (or, for payments outside a
subscription, on the customer): an account suspension warning — the row's
``suspension_warning_sent_at``, shown in the panel, and an internal note on the
customer's latest ticket — then a CSM outreach task: a helpdesk ticket for the
workspace's ``csm_group``, or an internal note on the latest ticket when the
helpdesk cannot open tickets. Both go out after commit from a Celery task
(``tasks.failures``), each at most once per streak, retried while the helpdesk
is down.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone

from helpdesk_connectors.base import FEATURE_CREATE_TICKET, HelpdeskApiError, NotRegistered
from helpdesk_connectors.models import Installation
from helpdesk_connectors.registry import connector_for

from ..catalog import ActionKind
from ..errors import BillingDeskError
from ..models import (
    BillingAction,
    HelpdeskTicket,
    MirrorCharge,
    MirrorCustomer,
    MirrorInvoice,
    OutboxMessage,
    PaymentFailure,
    Workspace,
)
from ..money import format_money
from .webhooks import WebhookEvent, webhook_hook_register

logger = logging.getLogger(__name__)

SUSPENSION_THRESHOLD = 3
# Agent actions that count as "recovered after agent intervention" (the dashboard's recovery rate).
RECOVERY_ACTION_KINDS = (
    ActionKind.GENERATE_PAYMENT_LINK.value,
    ActionKind.UPDATE_PAYMENT_METHOD.value,
    ActionKind.EXTEND_GRACE_PERIOD.value,
    ActionKind.RESEND_INVOICE.value,
)
FAILURE_EVENTS = ("charge.failed", "payment_intent.payment_failed", "invoice.payment_failed")
SUCCESS_EVENTS = (
    "charge.succeeded",
    "payment_intent.succeeded",
    "invoice.paid",
    "invoice.payment_succeeded",
)


# --- decline codes in plain words ------------------------------------------------------------

# Codes whose plain words are not the dashboard category's label.
_REASON_WORDS = {
    "processing_error": "Gateway error",
    "issuer_not_available": "Gateway error",
    "reenter_transaction": "Gateway error",
    "try_again_later": "Gateway error",
    "authentication_required": "Authentication required by the bank",
    "approve_with_id": "Authentication required by the bank",
    "card_velocity_exceeded": "Card declined (bank): limit exceeded",
    "lost_card": "Card reported lost",
    "stolen_card": "Card reported stolen",
    "fraudulent": "Card declined (bank): suspected fraud",
}


def _categories() -> dict[str, tuple[str, str]]:
    """Stripe code → (dashboard category, its label), from the dashboard's own table."""
    from ..selectors.dashboard import FAILURE_REASONS

    return {code: (key, label) for key, label, codes in FAILURE_REASONS for code in codes}


@dataclass(frozen=True)
class FailureReason:
    category: str  # a PaymentFailure.ReasonCategory value (the dashboard's categories)
    text: str  # plain words for an agent: "Card expired", "Gateway error"


def failure_reason(
    *, decline_code: str = "", failure_code: str = "", message: str = ""
) -> FailureReason:
    """A decline in plain words, in the same categories the dashboard counts.

    The issuer's decline code is more precise than Stripe's failure code
    (``card_declined`` + ``insufficient_funds``), so it is looked at first.
    """
    categories = _categories()
    for code in (decline_code, failure_code):
        if not code:
            continue
        if code in categories:
            category, label = categories[code]
            return FailureReason(category, _REASON_WORDS.get(code, label))
        if code in _REASON_WORDS:
            return FailureReason(PaymentFailure.ReasonCategory.OTHER, _REASON_WORDS[code])
    if message:
        return FailureReason(PaymentFailure.ReasonCategory.OTHER, message.strip().rstrip("."))
    code = decline_code or failure_code
    text = f"Payment failed ({code.replace('_', ' ')})" if code else "Payment failed"
    return FailureReason(PaymentFailure.ReasonCategory.OTHER, text)


# --- recording ---------------------------------------------------------------------------------


def _now() -> datetime:
    return timezone.now()


def _invoice_of_charge(workspace: Workspace, charge: MirrorCharge) -> MirrorInvoice | None:
    """The invoice a charge paid: by its ``invoice`` (older API) or its payment intent."""
    query = Q()
    if charge.invoice_id:
        query |= Q(stripe_id=charge.invoice_id)
    if charge.payment_intent_id:
        query |= Q(payment_intent_id=charge.payment_intent_id)
    query |= Q(charge_id=charge.stripe_id)
    return MirrorInvoice.objects.filter(query, workspace=workspace).order_by("-created").first()


def _failed_charge_of_invoice(workspace: Workspace, invoice: MirrorInvoice) -> MirrorCharge | None:
    query = Q(invoice_id=invoice.stripe_id)
    if invoice.payment_intent_id:
        query |= Q(payment_intent_id=invoice.payment_intent_id)
    if invoice.charge_id:
        query |= Q(stripe_id=invoice.charge_id)
    return (
        MirrorCharge.objects.filter(query, workspace=workspace, status="failed")
        .order_by("-created", "-stripe_id")
        .first()
    )


def _attempt_number(
    workspace: Workspace, charge: MirrorCharge, invoice: MirrorInvoice | None
) -> int:
    """Which attempt on its invoice a charge was: its place among the intent's charges.

    The invoice's ``attempt_count`` is the number of attempts so far; it names the
    latest charge's attempt even when earlier charges are not mirrored.
    """
    if not charge.payment_intent_id:
        return max(1, invoice.attempt_count if invoice else 1)
    siblings = list(
        MirrorCharge.objects.filter(
            workspace=workspace, payment_intent_id=charge.payment_intent_id
        ).values_list("stripe_id", "created")
    )
    ordered = sorted(siblings, key=lambda s: (s[1] or datetime.min.replace(tzinfo=UTC), s[0]))
    ids = [s[0] for s in ordered]
    position = ids.index(charge.stripe_id) + 1 if charge.stripe_id in ids else 1
    if invoice is not None and ids and ids[-1] == charge.stripe_id:
        position = max(position, invoice.attempt_count)
    return max(1, position)


def _scope(failure: PaymentFailure) -> Q:
    """The failures a streak counts: the same subscription, else the customer's one-off payments."""
    if failure.subscription_id:
        return Q(subscription_id=failure.subscription_id)
    return Q(subscription_id="")


def _open_at(moment: datetime) -> Q:
    return Q(recovered_at__isnull=True) | Q(recovered_at__gt=moment)


def _lock_customer(workspace: Workspace, customer_id: str) -> None:
    """Serialise failure bookkeeping per customer (PostgreSQL row lock; SQLite locks the file)."""
    list(
        MirrorCustomer.objects.select_for_update()
        .filter(workspace=workspace, stripe_id=customer_id)
        .values_list("pk", flat=True)
    )


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
        invoice = _invoice_of_charge(workspace, charge)
    if charge is None and invoice is not None:
        charge = _failed_charge_of_invoice(workspace, invoice)
    if charge is None and invoice is None:
        return None
    customer_id = (charge.customer_id if charge else "") or (invoice.customer_id if invoice else "")
    if not customer_id:
        return None
    _lock_customer(workspace, customer_id)

    if charge is not None:
        attempt = _attempt_number(workspace, charge, invoice)
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
        or (existing.failed_at if existing is not None else _now()),
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

    _recovery_apply_found(workspace, failure)
    _streak_update(workspace, failure)
    return failure


def _streak_update(workspace: Workspace, failure: PaymentFailure) -> None:
    """Consecutive failures when this one happened; at 3, the streak's one suspension warning."""
    earlier_open = (
        PaymentFailure.objects.filter(workspace=workspace, customer_id=failure.customer_id)
        .filter(_scope(failure))
        .filter(failed_at__lte=failure.failed_at)
        .filter(_open_at(failure.failed_at))
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
        .filter(_scope(failure))
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
                suspension_warning_sent_at=_now(),
                suspension_note_status=PaymentFailure.NoteStatus.PENDING,
                csm_outreach_status=PaymentFailure.OutreachStatus.PENDING,
            )
    except IntegrityError:  # another failure of this streak holds the warning
        return
    if updated:
        failure.refresh_from_db()
        _enqueue_escalation(failure)
        logger.info(
            "suspension warning for customer %s (%s consecutive failures, failure %s)",
            failure.customer_id,
            consecutive,
            failure.pk,
        )


def _enqueue_escalation(failure: PaymentFailure) -> None:
    """The warning note and CSM outreach, as an outbox message written with the warning flag."""
    from .outbox import outbox_enqueue

    outbox_enqueue(
        workspace_id=failure.workspace_id,
        kind=OutboxMessage.Kind.FAILURE_ESCALATION,
        target_id=str(failure.pk),
        dedupe_key=f"failure_escalation:{failure.pk}",
    )


def escalation_deliver(message: OutboxMessage) -> str:
    """Outbox handler: each step posts at most once (see ``payment_failure_escalate``)."""
    payment_failure_escalate(failure_id=int(message.target_id), look_first=message.attempts > 1)
    return ""


def escalation_give_up(message: OutboxMessage, error: Exception) -> None:
    payment_failure_escalation_give_up(failure_id=int(message.target_id))


# --- recovery ---------------------------------------------------------------------------------


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
        updated_at=_now(),
    )
    if updated:
        failure.refresh_from_db()
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


def _recovery_apply_found(workspace: Workspace, failure: PaymentFailure) -> None:
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
        found = _invoice_of_charge(workspace, charge)
        invoice_for_scope = found
    else:
        invoice_for_scope = invoice
    if charge is None and invoice is None:
        return []
    at = (charge.created if charge else None) or (invoice.paid_at if invoice else None) or _now()
    via = charge.stripe_id if charge else invoice.stripe_id  # type: ignore[union-attr]
    customer_id = (charge.customer_id if charge else "") or (
        invoice_for_scope.customer_id if invoice_for_scope else ""
    )
    if not customer_id:
        return []
    _lock_customer(workspace, customer_id)
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


# --- events (Stripe webhooks, and the sandbox emitting the same types) ------------------------


def _mirrored_charge(workspace: Workspace, charge_id: str) -> MirrorCharge | None:
    if not charge_id:
        return None
    return MirrorCharge.objects.filter(workspace=workspace, stripe_id=charge_id).first()


def _mirrored_invoice(workspace: Workspace, invoice_id: str) -> MirrorInvoice | None:
    if not invoice_id:
        return None
    return MirrorInvoice.objects.filter(workspace=workspace, stripe_id=invoice_id).first()


def _id(value: Any) -> str:
    if isinstance(value, dict):
        return str(value.get("id") or "")
    return str(value or "")


def _intent_charge_id(intent: dict[str, Any]) -> str:
    return _id(intent.get("latest_charge")) or _id(
        (intent.get("last_payment_error") or {}).get("charge")
    )


def _source(event: WebhookEvent) -> str:
    return (
        PaymentFailure.Source.SANDBOX
        if event.event_id.startswith("evt_sbx_")
        else PaymentFailure.Source.WEBHOOK
    )


def payment_failure_event_handle(event: WebhookEvent) -> None:
    """Hook for the failure events: read the mirrored (re-read) objects, record the failure."""
    workspace, obj = event.workspace, event.current or event.data_object
    obj_id = _id(obj.get("id"))
    when = datetime.fromtimestamp(event.created, tz=UTC) if event.created else None
    if event.type == "charge.failed":
        payment_failure_record(
            workspace=workspace,
            charge=_mirrored_charge(workspace, obj_id),
            source=_source(event),
            event_id=event.event_id,
        )
    elif event.type == "payment_intent.payment_failed":
        payment_failure_record(
            workspace=workspace,
            charge=_mirrored_charge(workspace, _intent_charge_id(obj)),
            source=_source(event),
            event_id=event.event_id,
        )
    elif event.type == "invoice.payment_failed":
        invoice = _mirrored_invoice(workspace, obj_id)
        if invoice is None:
            return
        attempt = int(event.data_object.get("attempt_count") or 0) or None
        if _failed_charge_of_invoice(workspace, invoice) is None and invoice.payment_intent_id:
            # The failed charge is not mirrored (the endpoint may not receive charge events):
            # fetch it after commit, outside this transaction, then record.
            _enqueue_invoice_resolve(
                workspace.pk,
                invoice.stripe_id,
                attempt or 0,
                int(event.created or 0),
                event.event_id,
            )
            return
        payment_failure_record(
            workspace=workspace,
            invoice=invoice,
            attempt_count=attempt,
            failed_at=when,
            source=_source(event),
            event_id=event.event_id,
        )


def payment_success_event_handle(event: WebhookEvent) -> None:
    """Hook for the success events: the open failures this payment settles are recovered."""
    workspace, obj = event.workspace, event.current or event.data_object
    if event.type == "charge.succeeded":
        payment_failures_recover(
            workspace=workspace, charge=_mirrored_charge(workspace, _id(obj.get("id")))
        )
    elif event.type == "payment_intent.succeeded":
        payment_failures_recover(
            workspace=workspace, charge=_mirrored_charge(workspace, _intent_charge_id(obj))
        )
    elif event.type in ("invoice.paid", "invoice.payment_succeeded"):
        payment_failures_recover(
            workspace=workspace, invoice=_mirrored_invoice(workspace, _id(obj.get("id")))
        )


def _enqueue_invoice_resolve(
    workspace_id: int, invoice_id: str, attempt_count: int, created: int, event_id: str
) -> None:
    """An outbox message written in the event's processing transaction (rolled back with it)."""
    from .outbox import outbox_enqueue

    outbox_enqueue(
        workspace_id=workspace_id,
        kind=OutboxMessage.Kind.INVOICE_RESOLVE,
        target_id=invoice_id,
        dedupe_key=f"invoice_resolve:{workspace_id}:{invoice_id}:{event_id}",
        payload={
            "workspace_id": workspace_id,
            "invoice_id": invoice_id,
            "attempt_count": attempt_count,
            "created": created,
            "event_id": event_id,
        },
    )


def invoice_resolve_deliver(message: OutboxMessage) -> str:
    """Outbox handler: fetch the failed charge, then record (``ProviderUnavailable`` retries)."""
    failure = payment_failure_invoice_resolve(**(message.payload or {}))
    return str(failure.pk) if failure is not None else ""


def invoice_resolve_give_up(message: OutboxMessage, error: Exception) -> None:
    logger.warning(
        "failed charge of invoice %s not fetched: %s",
        message.target_id,
        getattr(error, "code", type(error).__name__),
    )


def payment_failure_invoice_resolve(
    *,
    workspace_id: int,
    invoice_id: str,
    attempt_count: int = 0,
    created: int = 0,
    event_id: str = "",
) -> PaymentFailure | None:
    """Fetch the failed charge of an invoice (its payment intent's latest charge), then record.

    Runs from a task, outside any transaction: the provider is called first and
    the records are written after, in ``payment_failure_record``'s transaction.
    ``ProviderUnavailable`` propagates for the task to retry.
    """
    from ..providers import get_provider
    from .mirror import mirror_read_clock, mirror_upsert

    workspace = Workspace.objects.get(pk=workspace_id)
    invoice = _mirrored_invoice(workspace, invoice_id)
    if invoice is None:
        return None
    charge_row = _failed_charge_of_invoice(workspace, invoice)
    if charge_row is None and invoice.payment_intent_id:
        read_at = mirror_read_clock()  # before the reads: the mirror orders writes by it
        try:
            intent = get_provider(workspace).retrieve_object(
                "payment_intent", invoice.payment_intent_id
            )
        except BillingDeskError as exc:
            if exc.code != "unknown_resource" and getattr(exc, "status", 0) != 404:
                raise
            intent = {}
        latest = intent.get("latest_charge")
        if isinstance(latest, str) and latest:
            latest = get_provider(workspace).retrieve_object("charge", latest)
        if isinstance(latest, dict) and latest.get("id"):
            mirror_upsert(workspace=workspace, obj=latest, read_at=read_at)
            found = _mirrored_charge(workspace, str(latest["id"]))
            if found is not None and found.status == "failed":
                charge_row = found
    return payment_failure_record(
        workspace=workspace,
        charge=charge_row,
        invoice=invoice if charge_row is not None else _snapshot_invoice(invoice, attempt_count),
        attempt_count=attempt_count or None,
        failed_at=datetime.fromtimestamp(created, tz=UTC) if created else None,
        source=PaymentFailure.Source.WEBHOOK,
        event_id=event_id,
    )


def _snapshot_invoice(invoice: MirrorInvoice, attempt_count: int) -> MirrorInvoice:
    """The invoice as of the failure: no failed charge to name it, so the attempt number does."""
    if attempt_count and attempt_count != invoice.attempt_count:
        invoice.attempt_count = max(invoice.attempt_count, attempt_count)
    return invoice


for _type in FAILURE_EVENTS:
    webhook_hook_register(event_type=_type, hook=payment_failure_event_handle)
for _type in SUCCESS_EVENTS:
    webhook_hook_register(event_type=_type, hook=payment_success_event_handle)


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
        if _failed_charge_of_invoice(workspace, invoice) is None and payment_failure_record(
            workspace=workspace, invoice=invoice, source=PaymentFailure.Source.BACKFILL
        ):
            count += 1
    return count


# --- escalation: the suspension warning note and the CSM outreach -----------------------------


@dataclass(frozen=True)
class TicketTarget:
    installation: Installation
    ticket_id: str


def customer_latest_ticket(*, workspace: Workspace, customer_id: str) -> TicketTarget | None:
    """The customer's most recent helpdesk ticket Billing Desk knows of.

    A ticket an agent acted from (exactly this customer) first; else the latest
    synced ticket whose requester is the customer's billing email.
    """
    action = (
        BillingAction.objects.filter(
            workspace=workspace,
            customer_id=customer_id,
            installation__isnull=False,
            installation__is_active=True,
        )
        .exclude(ticket_id="")
        .select_related("installation")
        .order_by("-created_at")
        .first()
    )
    if action is not None and action.installation is not None:
        return TicketTarget(action.installation, action.ticket_id)
    email = (
        MirrorCustomer.objects.filter(workspace=workspace, stripe_id=customer_id)
        .values_list("email", flat=True)
        .first()
    )
    if email:
        ticket = (
            HelpdeskTicket.objects.filter(
                workspace=workspace, requester_email__iexact=email, installation__is_active=True
            )
            .select_related("installation")
            .order_by("-updated_at")
            .first()
        )
        if ticket is not None:
            return TicketTarget(ticket.installation, ticket.external_id)
    return None


def _installations(workspace: Workspace, preferred: Installation | None) -> list[Installation]:
    found = [
        link.installation
        for link in workspace.installation_links.select_related("installation").order_by("pk")
        if link.installation.is_active
    ]
    if preferred is not None:
        found.sort(key=lambda i: i.pk != preferred.pk)
    return found


def _streak(failure: PaymentFailure) -> list[PaymentFailure]:
    return list(
        PaymentFailure.objects.filter(
            workspace_id=failure.workspace_id, customer_id=failure.customer_id
        )
        .filter(_scope(failure))
        .filter(failed_at__lte=failure.failed_at)
        .filter(_open_at(failure.failed_at))
        .order_by("failed_at", "id")
    )


def _day(value: datetime | None) -> str:
    return f"{value:%B} {value.day}, {value.year}" if value else "—"


def _customer_line(failure: PaymentFailure) -> str:
    customer = MirrorCustomer.objects.filter(
        workspace_id=failure.workspace_id, stripe_id=failure.customer_id
    ).first()
    if customer is None:
        return f"Customer: {failure.customer_id}"
    email = f", {customer.email}" if customer.email else ""
    return f"Customer: {customer.name or failure.customer_id} ({failure.customer_id}{email})"


def _failure_lines(failure: PaymentFailure) -> list[str]:
    lines = [
        _customer_line(failure),
        f"Consecutive payment failures: {failure.consecutive_count}",
    ]
    if failure.subscription_id:
        lines.append(f"Subscription: {failure.subscription_id}")
    if failure.invoice_id:
        lines.append(f"Invoice: {failure.invoice_id}")
    lines.append(
        f"Latest: {format_money(failure.amount, failure.currency)} on {_day(failure.failed_at)} — "
        f"{failure.reason} (attempt {failure.attempt_count})"
    )
    if failure.next_retry_at:
        lines.append(f"Next automatic retry: {_day(failure.next_retry_at)}")
    for item in _streak(failure):
        lines.append(
            f"  · {_day(item.failed_at)}: {format_money(item.amount, item.currency)}, {item.reason}"
        )
    return lines


def suspension_warning_body(*, failure: PaymentFailure) -> str:
    return "\n".join(
        [
            "Billing Desk · Account suspension warning",
            *_failure_lines(failure),
            "The account will be suspended unless the payment is recovered. "
            "Send the customer a payment link or extend the grace period; "
            "CSM outreach has been requested.",
        ]
    )


def csm_outreach_subject(*, failure: PaymentFailure) -> str:
    customer = MirrorCustomer.objects.filter(
        workspace_id=failure.workspace_id, stripe_id=failure.customer_id
    ).first()
    name = (customer.name if customer else "") or failure.customer_id
    return f"CSM outreach: {name} — {failure.consecutive_count} consecutive payment failures"


def csm_outreach_body(*, failure: PaymentFailure) -> str:
    return "\n".join(
        [
            "Billing Desk · CSM outreach requested",
            *_failure_lines(failure),
            "An account suspension warning was issued. Please contact the customer to "
            "recover the payment before the account is suspended.",
        ]
    )


def _post_note(target: TicketTarget, body: str, *, marker: str, look_first: bool) -> str:
    """Post once on the ticket: a retry whose earlier post may have landed looks first."""
    from .notes import note_post_with_marker

    return note_post_with_marker(
        installation=target.installation,
        ticket_id=target.ticket_id,
        body=body,
        marker=marker,
        look_first=look_first,
    )


def _marker(failure: PaymentFailure, step: str) -> str:
    from .notes import NOTE_MARKER_PREFIX

    return f"{NOTE_MARKER_PREFIX} payment-failure-{failure.pk}-{step}"


def _suspension_note(failure_id: int, look_first: bool = False) -> HelpdeskApiError | None:
    """Step 1: the warning as an internal note on the latest ticket (once)."""
    with transaction.atomic():
        failure = PaymentFailure.objects.select_for_update().get(pk=failure_id)
        if failure.suspension_note_status not in (
            PaymentFailure.NoteStatus.PENDING,
            PaymentFailure.NoteStatus.FAILED,
        ):
            return None
        target = customer_latest_ticket(
            workspace=failure.workspace, customer_id=failure.customer_id
        )
        if target is None:
            failure.suspension_note_status = PaymentFailure.NoteStatus.NO_TICKET
            failure.save(update_fields=["suspension_note_status", "updated_at"])
            return None
        try:
            ref = _post_note(
                target,
                suspension_warning_body(failure=failure),
                marker=_marker(failure, "warning"),
                look_first=look_first,
            )
        except HelpdeskApiError as exc:
            failure.suspension_note_status = PaymentFailure.NoteStatus.FAILED
            failure.save(update_fields=["suspension_note_status", "updated_at"])
            return exc
        failure.suspension_note_status = PaymentFailure.NoteStatus.POSTED
        failure.suspension_note_ref = f"{target.ticket_id}:{ref}" if ref else target.ticket_id
        failure.save(update_fields=["suspension_note_status", "suspension_note_ref", "updated_at"])
        return None


def _csm_outreach(failure_id: int, look_first: bool = False) -> HelpdeskApiError | None:
    """Step 2: a ticket for the CSM group, else a note on the latest ticket (once)."""
    with transaction.atomic():
        failure = (
            PaymentFailure.objects.select_for_update()
            .select_related("workspace")
            .get(pk=failure_id)
        )
        if failure.csm_outreach_status not in (
            PaymentFailure.OutreachStatus.PENDING,
            PaymentFailure.OutreachStatus.FAILED,
        ):
            return None
        workspace = failure.workspace
        target = customer_latest_ticket(workspace=workspace, customer_id=failure.customer_id)
        error: HelpdeskApiError | None = None
        status, ref = "", ""
        group = workspace.csm_group.strip()
        for installation in _installations(workspace, target.installation if target else None):
            if not group:
                break
            try:
                connector = connector_for(installation)
            except NotRegistered:
                continue
            if FEATURE_CREATE_TICKET not in connector.features:
                continue
            try:
                ref = connector.create_ticket(
                    installation,
                    subject=csm_outreach_subject(failure=failure),
                    body=csm_outreach_body(failure=failure),
                    group=group,
                )
                status = PaymentFailure.OutreachStatus.TICKET
                ref = f"{installation.connector}:{ref}"
                break
            except HelpdeskApiError as exc:
                if exc.retryable:
                    error = exc
                    break
                logger.warning(
                    "CSM ticket could not be created on %s: %s", installation.pk, exc.code
                )
        if not status and error is None:
            if target is not None:
                try:
                    note = _post_note(
                        target,
                        csm_outreach_body(failure=failure)
                        + f"\nCSM group: {group or '(no CSM group configured)'}",
                        marker=_marker(failure, "csm"),
                        look_first=look_first,
                    )
                    status = PaymentFailure.OutreachStatus.NOTE
                    ref = f"{target.ticket_id}:{note}" if note else target.ticket_id
                except HelpdeskApiError as exc:
                    error = exc
            else:
                status = PaymentFailure.OutreachStatus.NO_CHANNEL
        if error is not None:
            failure.csm_outreach_status = PaymentFailure.OutreachStatus.FAILED
            failure.csm_outreach_error = f"{error.code}: {error.message}"[:2000]
        else:
            failure.csm_outreach_status = status
            failure.csm_outreach_ref = ref[:255]
            failure.csm_outreach_at = _now()
            failure.csm_outreach_error = ""
        failure.save(
            update_fields=[
                "csm_outreach_status",
                "csm_outreach_ref",
                "csm_outreach_at",
                "csm_outreach_error",
                "updated_at",
            ]
        )
        return error


def payment_failure_escalate(*, failure_id: int, look_first: bool = False) -> PaymentFailure:
    """Post the suspension warning note and open the CSM outreach, each at most once.

    Each step locks the failure row for its helpdesk call and records what it did
    before the lock is released, so concurrent or retried runs never post twice;
    the two steps commit separately, so a CSM outage cannot repost the note.
    Raises the first retryable ``HelpdeskApiError`` (after recording it) for the
    task to retry; a refusal is recorded and not retried.
    """
    PaymentFailure.objects.filter(pk=failure_id).update(
        escalation_attempts=F("escalation_attempts") + 1
    )
    # ``look_first`` (a retry): a note whose earlier post may have landed is looked for on
    # the ticket by its marker before it is posted again.
    errors = [
        e
        for e in (_suspension_note(failure_id, look_first), _csm_outreach(failure_id, look_first))
        if e
    ]
    retryable = next((e for e in errors if e.retryable), None)
    if retryable is not None:
        raise retryable
    return PaymentFailure.objects.get(pk=failure_id)


def payment_failure_escalation_give_up(*, failure_id: int) -> None:
    """After the last retry: what is still pending is marked failed (the failure itself stands)."""
    PaymentFailure.objects.filter(
        pk=failure_id, suspension_note_status=PaymentFailure.NoteStatus.PENDING
    ).update(suspension_note_status=PaymentFailure.NoteStatus.FAILED)
    PaymentFailure.objects.filter(
        pk=failure_id, csm_outreach_status=PaymentFailure.OutreachStatus.PENDING
    ).update(csm_outreach_status=PaymentFailure.OutreachStatus.FAILED)


__all__ = [
    "FailureReason",
    "TicketTarget",
    "customer_latest_ticket",
    "failure_reason",
    "payment_failure_escalate",
    "payment_failure_event_handle",
    "payment_failure_invoice_resolve",
    "payment_failure_record",
    "payment_failures_recover",
    "payment_failures_sync",
    "payment_success_event_handle",
]
