"""A prompt's outcome, read from the provider's webhooks: card updated → next renewal paid.

Hooks in ``services.webhooks``' registry (they run inside the event's processing
transaction, after the mirror holds the object's newest state, so they read the mirror):

* ``customer.updated``, ``customer.subscription.updated`` and ``payment_method.attached``
  — a card change is counted for a sent prompt only when **its scope's card** (the
  prompt's subscription's own default payment method when it has one, else the
  customer's ``invoice_settings.default_payment_method``) is no longer the prompted card,
  seen from an event dated at or after the prompt was sent. The send re-checked that the
  scope's card was the prompted one (``send``), so a difference seen after it is a change
  made after the email: an update made before the prompt, or another field of the
  customer changing, is not an outcome. ``card_updated_at`` is the event's time and
  ``new_payment_method_id`` the scope's new card.
* ``invoice.paid`` and ``invoice.payment_succeeded`` — the first renewal of the prompt's
  subscription paid after the update (a ``subscription_cycle`` invoice of that
  subscription, or the very invoice whose failure prompted) is the failure avoided; an
  invoice known to be paid with another card than the new one is not it. Its amount, and
  the amount in the workspace's base currency by the admin's rates (``None`` without a
  rate), is the revenue kept.

Out-of-order safe: each step is a conditional UPDATE (set once), and the renewal is looked
up in the mirror whenever a prompt's update is recorded too, so an invoice paid event
processed before the customer's update is not lost.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from django.db.models import Q, QuerySet

from ...clock import billing_now
from ...models import (
    CardPrompt,
    CurrencyRate,
    MirrorCharge,
    MirrorCustomer,
    MirrorInvoice,
    MirrorSubscription,
    Workspace,
)
from ...money import convert
from ..webhooks import WebhookEvent, webhook_hook_register

CARD_EVENTS = ("customer.updated", "customer.subscription.updated", "payment_method.attached")
PAID_EVENTS = ("invoice.paid", "invoice.payment_succeeded")
# Paid invoices looked at for one prompt's renewal (the first one paid with the new card).
RENEWAL_CANDIDATES = 5


def _id(value: object) -> str:
    if isinstance(value, dict):
        return str(value.get("id") or "")
    return str(value or "")


def _when(event: WebhookEvent) -> datetime:
    if event.created:
        return datetime.fromtimestamp(event.created, tz=UTC)
    return billing_now(event.workspace)


def _waiting_for_update(workspace: Workspace, customer_id: str) -> QuerySet[CardPrompt]:
    return CardPrompt.objects.filter(
        workspace=workspace,
        customer_id=customer_id,
        status=CardPrompt.Status.SENT,
        card_updated_at__isnull=True,
    )


def card_prompts_card_changed(*, workspace: Workspace, customer_id: str, at: datetime) -> int:
    """Record the update on the customer's sent prompts whose scope's card is no longer the
    prompted one, for an event at ``at`` (not before the prompt was sent)."""
    # Events carry whole seconds; the send's time has microseconds.
    waiting = [
        prompt
        for prompt in _waiting_for_update(workspace, customer_id)
        if prompt.sent_at is not None and at >= prompt.sent_at.replace(microsecond=0)
    ]
    if not waiting:  # the common case: one query, no prompt waits for this customer
        return 0
    default = (
        MirrorCustomer.objects.filter(workspace=workspace, stripe_id=customer_id)
        .values_list("default_payment_method_id", flat=True)
        .first()
    ) or ""
    own_cards = dict(
        MirrorSubscription.objects.filter(
            workspace=workspace, stripe_id__in=sorted({p.subscription_id for p in waiting} - {""})
        ).values_list("stripe_id", "default_payment_method_id")
    )
    changed = 0
    for prompt in waiting:
        current = own_cards.get(prompt.subscription_id, "") or default
        if not current or current == prompt.payment_method_id:
            continue
        changed += CardPrompt.objects.filter(pk=prompt.pk, card_updated_at__isnull=True).update(
            card_updated_at=at, new_payment_method_id=current
        )
        card_prompt_renewal_record(prompt_id=prompt.pk)
    return changed


def _base_amount(workspace: Workspace, amount: int, currency: str) -> int | None:
    code = currency.upper()
    if code == workspace.base_currency.upper():
        return amount
    rate = (
        CurrencyRate.objects.filter(workspace=workspace, currency=code)
        .values_list("rate", flat=True)
        .first()
    )
    return None if rate is None else convert(amount, code, workspace.base_currency, Decimal(rate))


def card_prompt_renewal_record(*, prompt_id: int) -> bool:
    """The first renewal paid after the prompt's card update, if the mirror has it (once)."""
    prompt = (
        CardPrompt.objects.select_related("workspace")
        .filter(pk=prompt_id, card_updated_at__isnull=False, renewal_paid_at__isnull=True)
        .first()
    )
    if prompt is None or prompt.card_updated_at is None:
        return False
    failed_invoice = (
        prompt.window.removeprefix("fail-") if prompt.window.startswith("fail-") else ""
    )
    # The prompt's subscription's renewal (a prompt about the default card only has none),
    # or the invoice whose failure prompted.
    renewal = Q(pk__in=[])
    if prompt.subscription_id:
        renewal |= Q(billing_reason="subscription_cycle", subscription_id=prompt.subscription_id)
    if failed_invoice:
        renewal |= Q(stripe_id=failed_invoice)
    invoices = list(
        MirrorInvoice.objects.filter(
            workspace=prompt.workspace,
            customer_id=prompt.customer_id,
            status="paid",
            paid_at__gte=prompt.card_updated_at,
            amount_paid__gt=0,
        )
        .filter(renewal)
        .order_by("paid_at", "stripe_id")[:RENEWAL_CANDIDATES]
    )
    if not invoices:
        return False
    paid_with = dict(
        MirrorCharge.objects.filter(
            workspace=prompt.workspace,
            stripe_id__in=[i.charge_id for i in invoices if i.charge_id],
        ).values_list("stripe_id", "payment_method_id")
    )
    # Paid with the new card, or with a card we do not know; not one known to be another.
    invoice = next(
        (i for i in invoices if paid_with.get(i.charge_id) == prompt.new_payment_method_id),
        None,
    ) or next((i for i in invoices if not paid_with.get(i.charge_id)), None)
    if invoice is None:
        return False
    return bool(
        CardPrompt.objects.filter(pk=prompt.pk, renewal_paid_at__isnull=True).update(
            renewal_invoice_id=invoice.stripe_id,
            renewal_paid_at=invoice.paid_at,
            renewal_amount=invoice.amount_paid,
            renewal_currency=invoice.currency.upper(),
            renewal_amount_base=_base_amount(
                prompt.workspace, invoice.amount_paid, invoice.currency
            ),
        )
    )


def card_prompts_event_handle(event: WebhookEvent) -> None:
    """Hook: a card change (customer, subscription, payment method) or a paid invoice of a
    prompted customer."""
    obj = event.current or event.data_object
    if event.type == "customer.updated":
        customer_id = _id(obj.get("id"))
    else:
        customer_id = _id(obj.get("customer"))
    if not customer_id:
        return
    workspace = event.workspace
    if event.type in CARD_EVENTS:
        card_prompts_card_changed(workspace=workspace, customer_id=customer_id, at=_when(event))
        return
    for prompt_id in CardPrompt.objects.filter(
        workspace=workspace,
        customer_id=customer_id,
        card_updated_at__isnull=False,
        renewal_paid_at__isnull=True,
    ).values_list("pk", flat=True):
        card_prompt_renewal_record(prompt_id=prompt_id)


for _type in (*CARD_EVENTS, *PAID_EVENTS):
    webhook_hook_register(event_type=_type, hook=card_prompts_event_handle)
