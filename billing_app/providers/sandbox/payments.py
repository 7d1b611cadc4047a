"""Simulated payment attempts in the sandbox: what Stripe's retries and customers' payments do.

``sandbox_payment_attempt`` charges an open invoice once — failing with a decline
code, or succeeding — and changes the billing objects as Stripe would: a
charge on the invoice's payment intent, the invoice's ``attempt_count``,
``next_payment_attempt`` (a retry three days later, at most four attempts),
``status`` and amounts, the subscription's ``past_due`` / ``active`` status and
the customer's ``delinquent`` flag. It then emits the events Stripe would send
(``charge.failed`` + ``invoice.payment_failed``, or ``charge.succeeded`` +
``invoice.paid``) to the intake the services layer registers (``ports``) — the same
hooks that handle Stripe's deliveries, so a sandbox workspace gets the same
payment-failure records, recoveries and escalations as a Stripe one.

Used by the demo (a "fail the next payment" button can call it) and by the
workflow tests. Like every sandbox write, it holds the workspace's sandbox lock
and refuses to run while the sandbox is switched off.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.db import transaction

from ...errors import PreconditionFailed, ProviderUnavailable
from ...models import (
    MirrorCharge,
    MirrorCustomer,
    MirrorInvoice,
    MirrorPaymentMethod,
    MirrorSubscription,
    SandboxControl,
    Workspace,
)
from . import objects
from .control import sandbox_control_get
from .invoicing import RETRY_AFTER
from .ports import deliver_event, store_object

Obj = dict[str, Any]

MAX_ATTEMPTS = 4  # Stripe's default Smart Retries policy tries up to four times
# decline code → (Stripe failure_code, message)
DECLINES: dict[str, tuple[str, str]] = {
    "expired_card": ("expired_card", "Your card has expired."),
    "insufficient_funds": ("card_declined", "Your card has insufficient funds."),
    "generic_decline": ("card_declined", "Your card was declined."),
    "do_not_honor": ("card_declined", "Your card was declined."),
    "incorrect_number": ("incorrect_number", "Your card number is incorrect."),
    "invalid_account": (
        "card_declined",
        "The card, or account the card is connected to, is invalid.",
    ),
    "processing_error": ("processing_error", "An error occurred while processing your card."),
}


def _payment_intent_of(invoice: Obj) -> str:
    for payment in (invoice.get("payments") or {}).get("data") or []:
        intent = (payment.get("payment") or {}).get("payment_intent")
        if intent:
            return str(intent)
    return str(invoice.get("payment_intent") or "")


def _set_payment(invoice: Obj, intent: str, *, paid: bool, at: datetime) -> None:
    payments = [
        p
        for p in (invoice.get("payments") or {}).get("data") or []
        if (p.get("payment") or {}).get("payment_intent") != intent
    ]
    payments.append(
        {
            "id": objects.digest_id("inpay", invoice["id"], intent),
            "object": "invoice_payment",
            "amount_paid": invoice["amount_due"] if paid else None,
            "amount_requested": invoice["amount_due"],
            "created": objects.unix(at),
            "currency": invoice["currency"],
            "invoice": invoice["id"],
            "is_default": True,
            "livemode": False,
            "payment": {"payment_intent": intent, "type": "payment_intent"},
            "status": "paid" if paid else "open",
            "status_transitions": {
                "canceled_at": None,
                "paid_at": objects.unix(at) if paid else None,
            },
        }
    )
    invoice["payments"] = {
        "object": "list",
        "data": payments,
        "has_more": False,
        "total_count": len(payments),
        "url": f"/v1/invoice_payments?invoice={invoice['id']}",
    }


def sandbox_payment_attempt(
    *,
    workspace: Workspace,
    invoice_id: str,
    decline_code: str | None = None,
    at: datetime | None = None,
) -> Obj:
    """Attempt to collect an open invoice now: fail with ``decline_code``, or succeed (None).

    Returns the charge. Emits the events after the objects are stored, in the same
    transaction, so the payment-failure records commit with the payment.
    """
    if workspace.provider != Workspace.Provider.SANDBOX:
        raise PreconditionFailed(
            "Payments can only be simulated in a sandbox workspace.", code="not_a_sandbox_workspace"
        )
    sandbox_control_get(workspace=workspace)
    with transaction.atomic():
        control = SandboxControl.objects.select_for_update().get(workspace=workspace)
        if control.down:
            raise ProviderUnavailable(
                "The sandbox billing provider is switched off; nothing was changed.",
                provider_code="sandbox_down",
            )
        row = MirrorInvoice.objects.filter(workspace=workspace, stripe_id=invoice_id).first()
        if row is None or not row.data:
            raise PreconditionFailed(f"No invoice {invoice_id}.", code="invoice_not_found")
        invoice = dict(row.data)
        if invoice.get("status") != "open" or int(invoice.get("amount_remaining") or 0) <= 0:
            raise PreconditionFailed(
                f"Invoice {invoice_id} is {invoice.get('status')}; only an open invoice with an "
                "amount due can be collected.",
                code="invoice_not_open",
            )
        customer_row = MirrorCustomer.objects.get(workspace=workspace, stripe_id=row.customer_id)
        customer = dict(customer_row.data)
        pm_id = invoice.get("default_payment_method") or customer_row.default_payment_method_id
        pm_row = MirrorPaymentMethod.objects.filter(workspace=workspace, stripe_id=pm_id).first()
        if pm_row is None:
            raise PreconditionFailed(
                f"Customer {row.customer_id} has no payment method to charge.",
                code="no_payment_method",
            )
        now = at or control.clock
        if now is None:
            from django.utils import timezone

            now = timezone.now()
        intent = _payment_intent_of(invoice) or objects.digest_id("pi", workspace.slug, invoice_id)
        latest = (
            MirrorCharge.objects.filter(workspace=workspace, payment_intent_id=intent)
            .order_by("-created")
            .values_list("created", flat=True)
            .first()
        )
        if at is None and latest is not None and latest >= now:
            now = latest + timedelta(minutes=1)  # a frozen clock still orders the attempts
        attempt = int(invoice.get("attempt_count") or 0) + 1
        failure_code, message = (None, "")
        if decline_code is not None:
            failure_code, message = DECLINES.get(
                decline_code, (decline_code, "Your card was declined.")
            )
        charge = objects.charge(
            id=objects.digest_id("ch", workspace.slug, invoice_id, attempt),
            customer_id=row.customer_id,
            amount=int(invoice["amount_remaining"]),
            currency=str(invoice["currency"]),
            created=now,
            payment_method=dict(pm_row.data),
            payment_intent=intent,
            description=f"Payment for Invoice {invoice.get('number') or invoice_id}",
            failure_code=failure_code,
            receipt_email=customer.get("email"),
        )
        if decline_code is not None:
            outcome = dict(charge["outcome"])
            outcome["reason"] = decline_code
            outcome["seller_message"] = f"The bank returned the decline code `{decline_code}`."
            charge["outcome"] = outcome
            charge["failure_message"] = message
        failed = decline_code is not None
        invoice["attempt_count"] = attempt
        invoice["attempted"] = True
        _set_payment(invoice, intent, paid=not failed, at=now)
        if failed:
            invoice["next_payment_attempt"] = (
                objects.unix(now + RETRY_AFTER) if attempt < MAX_ATTEMPTS else None
            )
        else:
            invoice["status"] = "paid"
            invoice["amount_paid"] = invoice["amount_remaining"]
            invoice["amount_remaining"] = 0
            invoice["next_payment_attempt"] = None
            invoice["auto_advance"] = False
            invoice["status_transitions"] = {
                **(invoice.get("status_transitions") or {}),
                "paid_at": objects.unix(now),
            }
        store_object(workspace, charge)
        store_object(workspace, invoice)
        subscription = MirrorSubscription.objects.filter(
            workspace=workspace, stripe_id=row.subscription_id
        ).first()
        if subscription is not None and subscription.data:
            sub = dict(subscription.data)
            if failed and sub.get("status") == "active":
                sub["status"] = "past_due"
            elif not failed and sub.get("status") in {"past_due", "unpaid"}:
                sub["status"] = "active"
            store_object(workspace, sub)
        still_failing = (
            MirrorInvoice.objects.filter(
                workspace=workspace, customer_id=row.customer_id, status="open", attempt_count__gt=0
            )
            .exclude(stripe_id=invoice_id)
            .exists()
        )
        customer["delinquent"] = failed or still_failing
        store_object(workspace, customer)

        seq = f"attempt{attempt}"
        if failed:
            deliver_event(
                workspace=workspace, event_type="charge.failed", obj=charge, at=now, seq=seq
            )
            deliver_event(
                workspace=workspace,
                event_type="invoice.payment_failed",
                obj=invoice,
                at=now,
                seq=seq,
            )
        else:
            deliver_event(
                workspace=workspace, event_type="charge.succeeded", obj=charge, at=now, seq=seq
            )
            deliver_event(
                workspace=workspace, event_type="invoice.paid", obj=invoice, at=now, seq=seq
            )
        return charge


__all__ = ["DECLINES", "sandbox_payment_attempt"]
