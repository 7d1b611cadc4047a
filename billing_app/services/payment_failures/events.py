"""Events: the Stripe webhook hooks for failed and successful payments (the sandbox emits the same).

``charge.failed``, ``payment_intent.payment_failed`` and ``invoice.payment_failed``
record a failure; ``charge.succeeded``, ``payment_intent.succeeded``,
``invoice.paid`` and ``invoice.payment_succeeded`` recover the failures they
settle. The hooks are registered in ``services.webhooks``' registry when this
module is imported (the package imports it). They run inside the event's
processing transaction, *after* the mirror holds the object's re-read state, so
they read the mirror, never the payload.

An ``invoice.payment_failed`` whose failed charge is not mirrored (the endpoint
may not receive charge events) becomes an outbox message: after commit,
``payment_failure_invoice_resolve`` fetches the charge from the provider and
records the failure.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from ...errors import BillingDeskError
from ...models import MirrorInvoice, OutboxMessage, PaymentFailure, Workspace
from ..outbox import outbox_enqueue, outbox_handler_register
from ..webhooks import WebhookEvent, webhook_hook_register
from .lookups import (
    customer_lock_has_open,
    failed_charge_of_invoice,
    mirrored_charge,
    mirrored_invoice,
)
from .record import payment_failure_record
from .recovery import payment_failures_recover

logger = logging.getLogger(__name__)

FAILURE_EVENTS = ("charge.failed", "payment_intent.payment_failed", "invoice.payment_failed")
SUCCESS_EVENTS = (
    "charge.succeeded",
    "payment_intent.succeeded",
    "invoice.paid",
    "invoice.payment_succeeded",
)


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
            charge=mirrored_charge(workspace, obj_id),
            source=_source(event),
            event_id=event.event_id,
        )
    elif event.type == "payment_intent.payment_failed":
        payment_failure_record(
            workspace=workspace,
            charge=mirrored_charge(workspace, _intent_charge_id(obj)),
            source=_source(event),
            event_id=event.event_id,
        )
    elif event.type == "invoice.payment_failed":
        invoice = mirrored_invoice(workspace, obj_id)
        if invoice is None:
            return
        attempt = int(event.data_object.get("attempt_count") or 0) or None
        if failed_charge_of_invoice(workspace, invoice) is None and invoice.payment_intent_id:
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
    """Hook for the success events: the open failures this payment settles are recovered.

    A customer with no open failure has nothing to settle: one locking probe
    (``customer_lock_has_open``) ends the hook — the common case, most payments follow no
    failure. The customer is the paid object's own (a charge's, an intent's, an invoice's:
    the one ``payment_failures_recover`` scopes to); without one, the full path decides.
    """
    workspace, obj = event.workspace, event.current or event.data_object
    customer_id = _id(obj.get("customer"))
    if customer_id and customer_lock_has_open(workspace, customer_id) is False:
        return
    if event.type == "charge.succeeded":
        payment_failures_recover(
            workspace=workspace, charge=mirrored_charge(workspace, _id(obj.get("id")))
        )
    elif event.type == "payment_intent.succeeded":
        payment_failures_recover(
            workspace=workspace, charge=mirrored_charge(workspace, _intent_charge_id(obj))
        )
    elif event.type in ("invoice.paid", "invoice.payment_succeeded"):
        payment_failures_recover(
            workspace=workspace, invoice=mirrored_invoice(workspace, _id(obj.get("id")))
        )


def _enqueue_invoice_resolve(
    workspace_id: int, invoice_id: str, attempt_count: int, created: int, event_id: str
) -> None:
    """An outbox message written in the event's processing transaction (rolled back with it)."""
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
    from ...providers import get_provider
    from ..mirror import mirror_read_clock, mirror_upsert

    workspace = Workspace.objects.get(pk=workspace_id)
    invoice = mirrored_invoice(workspace, invoice_id)
    if invoice is None:
        return None
    charge_row = failed_charge_of_invoice(workspace, invoice)
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
            found = mirrored_charge(workspace, str(latest["id"]))
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


outbox_handler_register(
    kind=OutboxMessage.Kind.INVOICE_RESOLVE,
    deliver=invoice_resolve_deliver,
    give_up=invoice_resolve_give_up,
)
for _type in FAILURE_EVENTS:
    webhook_hook_register(event_type=_type, hook=payment_failure_event_handle)
for _type in SUCCESS_EVENTS:
    webhook_hook_register(event_type=_type, hook=payment_success_event_handle)
