"""What recording and recovery both read: the mirror's charge ↔ invoice links, the streak's scope,
and the per-customer lock that serialises a customer's failure bookkeeping."""

from __future__ import annotations

from datetime import UTC, datetime

from django.db.models import Exists, OuterRef, Q

from ...models import MirrorCharge, MirrorCustomer, MirrorInvoice, PaymentFailure, Workspace


def mirrored_charge(workspace: Workspace, charge_id: str) -> MirrorCharge | None:
    if not charge_id:
        return None
    return MirrorCharge.objects.filter(workspace=workspace, stripe_id=charge_id).first()


def mirrored_invoice(workspace: Workspace, invoice_id: str) -> MirrorInvoice | None:
    if not invoice_id:
        return None
    return MirrorInvoice.objects.filter(workspace=workspace, stripe_id=invoice_id).first()


def invoice_of_charge(workspace: Workspace, charge: MirrorCharge) -> MirrorInvoice | None:
    """The invoice a charge paid: by its ``invoice`` (older API) or its payment intent."""
    query = Q()
    if charge.invoice_id:
        query |= Q(stripe_id=charge.invoice_id)
    if charge.payment_intent_id:
        query |= Q(payment_intent_id=charge.payment_intent_id)
    query |= Q(charge_id=charge.stripe_id)
    return MirrorInvoice.objects.filter(query, workspace=workspace).order_by("-created").first()


def failed_charge_of_invoice(workspace: Workspace, invoice: MirrorInvoice) -> MirrorCharge | None:
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


def attempt_number(
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


def streak_scope(failure: PaymentFailure) -> Q:
    """The failures a streak counts: the same subscription, else the customer's one-off payments."""
    if failure.subscription_id:
        return Q(subscription_id=failure.subscription_id)
    return Q(subscription_id="")


def open_at(moment: datetime) -> Q:
    """Failures not yet recovered at ``moment``."""
    return Q(recovered_at__isnull=True) | Q(recovered_at__gt=moment)


def customer_lock(workspace: Workspace, customer_id: str) -> None:
    """Serialise failure bookkeeping per customer (PostgreSQL row lock; SQLite locks the file)."""
    list(
        MirrorCustomer.objects.select_for_update()
        .filter(workspace=workspace, stripe_id=customer_id)
        .values_list("pk", flat=True)
    )


def customer_lock_has_open(workspace: Workspace, customer_id: str) -> bool | None:
    """``customer_lock`` and, in the same statement, whether the customer has a failure not
    yet recovered; ``None`` when the customer is not mirrored (nothing was locked).

    The recovery hook runs on every paid charge and invoice, and almost none of them
    settle anything: this one indexed probe (``failure_customer_idx``) lets it stop there
    instead of loading the wide charge and invoice rows it would match failures against.
    Asked under the lock ``payment_failure_record`` also takes, so a failure being recorded
    concurrently is either seen here or, recorded after this transaction, sees its success
    (``recovery_apply_found``): the skip never leaves a failure open.
    """
    open_failure = PaymentFailure.objects.filter(
        workspace_id=OuterRef("workspace_id"),
        customer_id=OuterRef("stripe_id"),
        recovered_at__isnull=True,
    )
    found = list(
        MirrorCustomer.objects.select_for_update()
        .filter(workspace=workspace, stripe_id=customer_id)
        .annotate(has_open=Exists(open_failure))
        .values_list("has_open", flat=True)
    )
    return bool(found[0]) if found else None
