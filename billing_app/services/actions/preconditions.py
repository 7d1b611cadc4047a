"""Preconditions against the mirror: what must hold before any money moves.

``action_prepare`` checks one request (the customer, charge, invoice or
subscription belongs to the customer and is in a state the kind allows) and
returns ``Prepared``: the policy request and the objects the provider acts on.
It runs at submission, again when an approved or taken-over action executes,
and when reconciliation replays a write.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, TypeVar

from django.conf import settings
from django.db.models import Q
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from ... import words as W
from ...action_words import date_words, percent_words
from ...catalog import KIND_POLICY_ACTION, ActionKind
from ...clock import billing_now
from ...errors import NotFound, PreconditionFailed, ValidationFailed
from ...models import (
    MirrorCharge,
    MirrorCustomer,
    MirrorDiscount,
    MirrorInvoice,
    MirrorPrice,
    MirrorSubscription,
    MirrorSubscriptionItem,
    Workspace,
)
from ...money import Money
from ...policy import ActionRequest
from ...selectors.context.subscription_state import (
    SubscriptionFacts,
    state_label,
    state_refusal,
)
from ...selectors.duplicates import duplicate_pair_check
from ...selectors.products import addon_product_ids
from ...subscriptions import (
    ItemView,
    discount_add_check,
    item_view_from_mirror,
    plan_change_check,
    plan_item_required,
    price_view_from_mirror,
    seats_used,
)
from ...words import with_words
from .params import REFUND_REASONS
from .refunds import RefundLedger, refundable

T = TypeVar("T")


@dataclass
class Prepared:
    """What the preconditions found: the policy request and the objects the provider acts on."""

    request: ActionRequest
    amount: Money | None = None
    customer: MirrorCustomer | None = None
    subscription: MirrorSubscription | None = None
    charge: MirrorCharge | None = None
    invoice: MirrorInvoice | None = None
    item: MirrorSubscriptionItem | None = None
    price: MirrorPrice | None = None  # a plan change's new price
    values: dict[str, Any] = field(default_factory=dict)


def action_customer(workspace: Workspace, customer_id: str) -> MirrorCustomer:
    """The customer an action is for: 404 if not in this workspace, 422 if deleted."""
    customer = MirrorCustomer.objects.filter(workspace=workspace, stripe_id=customer_id).first()
    if customer is None:
        raise NotFound(_("No such billing customer in this workspace."), code="customer_not_found")
    if customer.deleted:
        raise with_words(
            PreconditionFailed("", code="customer_deleted"),
            W.gettext(
                "This customer was deleted in the billing system; nothing can be changed for them."
            ),
        )
    return customer


# A request naming another customer's object (404 ``<noun>_not_found``), per noun.
NOT_THEIRS: Mapping[str, Any] = {
    "subscription": gettext_lazy("That subscription does not belong to this customer."),
    "invoice": gettext_lazy("That invoice does not belong to this customer."),
    "charge": gettext_lazy("That charge does not belong to this customer."),
}


def _owned(model: type[T], workspace: Workspace, customer_id: str, object_id: str, noun: str) -> T:
    obj = model.objects.filter(  # type: ignore[attr-defined]
        workspace=workspace, stripe_id=object_id, customer_id=customer_id
    ).first()
    if obj is None:
        raise NotFound(
            str(NOT_THEIRS.get(noun) or _("That object does not belong to this customer.")),
            code=f"{noun}_not_found",
            details={"id": object_id},
        )
    return obj


def _subscription(workspace: Workspace, customer_id: str, sub_id: str) -> MirrorSubscription:
    return _owned(MirrorSubscription, workspace, customer_id, sub_id, "subscription")


def _invoice(workspace: Workspace, customer_id: str, invoice_id: str) -> MirrorInvoice:
    return _owned(MirrorInvoice, workspace, customer_id, invoice_id, "invoice")


def _charge(workspace: Workspace, customer_id: str, charge_id: str) -> MirrorCharge:
    return _owned(MirrorCharge, workspace, customer_id, charge_id, "charge")


def subscription_items(workspace: Workspace, subscription_id: str) -> list[MirrorSubscriptionItem]:
    return list(
        MirrorSubscriptionItem.objects.filter(
            workspace=workspace, subscription_id=subscription_id
        ).order_by("created", "id")
    )


def mirror_item_views(
    workspace: Workspace, items: list[MirrorSubscriptionItem]
) -> Callable[[MirrorSubscriptionItem], ItemView]:
    """How the rulebook reads these mirrored items: add-on flags from their products."""
    addons = addon_product_ids(workspace=workspace, product_ids={i.product_id for i in items})
    return lambda item: item_view_from_mirror(item, addon_products=addons)


def plan_item(
    workspace: Workspace, subscription: MirrorSubscription, new_price: MirrorPrice | None = None
) -> MirrorSubscriptionItem:
    """The subscription's plan item: the one a plan change replaces and seats are counted on.

    The rulebook's ``plan_item`` (``billing_app.subscriptions``): the non-add-on item
    selling the new price's product, else the non-add-on item with the largest monthly
    amount — the rule the providers follow, so the precondition checks the item the
    provider will change. ``no_items`` without items, ``no_plan_item`` when all are add-ons.
    """
    items = subscription_items(workspace, subscription.stripe_id)
    if not items:
        raise PreconditionFailed(_("This subscription has no items to change."), code="no_items")
    return plan_item_required(
        items,
        mirror_item_views(workspace, items),
        new_product=new_price.product_id if new_price is not None else None,
    )


def _refundable_charge(
    workspace: Workspace,
    charge: MirrorCharge,
    *,
    now: datetime,
    exclude_action_id: Any = None,
    ledger: RefundLedger | None = None,
) -> int:
    """Refund eligibility (DESIGN.md section 6): succeeded, not disputed, in the window."""
    if charge.status != "succeeded":
        raise with_words(
            PreconditionFailed("", code="charge_not_refundable"),
            W.gettext("This payment did not go through, so there is nothing to refund."),
        )
    if charge.disputed:
        raise with_words(
            PreconditionFailed("", code="charge_disputed"),
            W.gettext(
                "This payment is disputed; the dispute decides where the money goes, so it "
                "cannot be refunded here."
            ),
        )
    window = timedelta(days=workspace.refund_window_days)
    if charge.created and charge.created < now - window:
        raise with_words(
            PreconditionFailed("", code="refund_window_passed"),
            W.gettext(
                "This payment is older than the %(days)s-day refund window.",
                days=workspace.refund_window_days,
            ),
        )
    remainder = (
        ledger.refundable(charge)
        if ledger is not None
        else refundable(workspace, charge, exclude_action_id=exclude_action_id)
    )
    if remainder <= 0:
        raise with_words(
            PreconditionFailed("", code="already_refunded"),
            W.gettext("This payment is already fully refunded."),
        )
    return remainder


def _invoice_words(status: str) -> W.Words:
    words = {
        "draft": W.gettext("still a draft"),
        "open": W.pgettext("invoice is", "open"),
        "paid": W.pgettext("invoice is", "paid"),
        "void": W.pgettext("invoice is", "void"),
        "uncollectible": W.gettext("marked uncollectible"),
    }
    return words.get(status or "draft") or W.literal(status.replace("_", " "))


def _same_currency(expected: str, given: str, what: str) -> None:
    if expected and given.upper() != expected.upper():
        raise ValidationFailed(
            _("The %(what)s is in %(expected)s, not %(given)s.")
            % {"what": what, "expected": expected.upper(), "given": given.upper()},
            code="currency_mismatch",
            details={"expected": expected.upper(), "given": given.upper()},
        )


def subscription_facts(subscription: MirrorSubscription) -> SubscriptionFacts:
    """What the state rule (``selectors.context.subscription_state``) reads of a mirrored
    subscription: the same rule the panel's context offers its actions by."""
    pause = subscription.pause_collection or {}
    resumes = pause.get("resumes_at") if isinstance(pause, dict) else None
    ends = subscription.cancel_at or (
        subscription.current_period_end if subscription.cancel_at_period_end else None
    )
    return SubscriptionFacts(
        status=subscription.status,
        paused=bool(pause),
        resumes_at=datetime.fromtimestamp(int(resumes), tz=UTC) if resumes else None,
        cancel_at_period_end=subscription.cancel_at_period_end,
        cancel_at=ends,
        ended_at=subscription.ended_at or subscription.canceled_at,
        trial_end=subscription.trial_end,
    )


def _state_allows(kind: ActionKind, subscription: MirrorSubscription) -> None:
    """``PreconditionFailed`` with the rule's code and sentence when the state refuses ``kind``."""
    refusal = state_refusal(kind, subscription_facts(subscription))
    if refusal is not None:
        code, message = refusal
        raise PreconditionFailed(
            message,
            code=code,
            details={
                "status": subscription.status,
                "status_label": state_label(subscription.status),
            },
        )


def _open_amount(workspace: Workspace, customer: MirrorCustomer) -> bool:
    """Whether the customer owes anything: an open invoice with an amount left, or a
    positive balance (the context's outstanding balance)."""
    return customer.balance > 0 or (
        MirrorInvoice.objects.filter(
            workspace=workspace,
            customer_id=customer.stripe_id,
            status="open",
            amount_remaining__gt=0,
        ).exists()
    )


def action_prepare(
    *,
    kind: ActionKind,
    workspace: Workspace,
    customer: MirrorCustomer,
    params: Mapping[str, Any],
    exclude_action_id: Any = None,
    now: datetime | None = None,
    ledger: RefundLedger | None = None,
) -> Prepared:
    """Check the request against the mirror before any money moves; raise with a code if it cannot run.

    ``now`` (the billing clock) and ``ledger`` (the refund reads of ``action_decide``)
    may be given by a caller that already has them, so nothing is read twice.
    """
    cid = customer.stripe_id
    policy_action = KIND_POLICY_ACTION[kind]
    now = now or billing_now(workspace)
    request = ActionRequest(action=policy_action)
    prepared = Prepared(request=request, customer=customer)

    if kind in (ActionKind.GENERATE_PAYMENT_LINK,):
        if params.get("invoice_id"):
            prepared.invoice = _invoice(workspace, cid, params["invoice_id"])
            if prepared.invoice.status != "open":
                raise with_words(
                    PreconditionFailed("", code="invoice_not_open"),
                    W.gettext(
                        "This invoice is %(state)s; a payment link is only for an open invoice.",
                        state=_invoice_words(prepared.invoice.status),
                    ),
                )
        elif not params.get("amount") and not _open_amount(workspace, customer):
            # Issue 14: a link for a $0 balance was made without a word.
            raise with_words(
                PreconditionFailed("", code="nothing_to_pay"),
                W.gettext(
                    "%(customer)s has no open invoice and no balance due: there is nothing to "
                    "pay, so no payment link was made. To have the customer save a new card, use "
                    "Update payment method.",
                    customer=customer.name or cid,
                ),
            )
    elif kind == ActionKind.RESEND_INVOICE:
        prepared.invoice = _invoice(workspace, cid, params["invoice_id"])
        if prepared.invoice.status not in ("open", "paid", "uncollectible"):
            raise with_words(
                PreconditionFailed("", code="invoice_not_sendable"),
                W.gettext(
                    "This invoice is %(state)s; only a finalized invoice can be sent.",
                    state=_invoice_words(prepared.invoice.status),
                ),
            )
    elif kind == ActionKind.SEND_TAX_INVOICE:
        prepared.invoice = _invoice(workspace, cid, params["invoice_id"])
        if prepared.invoice.status not in ("open", "paid"):
            raise with_words(
                PreconditionFailed("", code="invoice_not_finalized"),
                W.gettext(
                    "This invoice is %(state)s; a tax invoice is an open or paid invoice.",
                    state=_invoice_words(prepared.invoice.status),
                ),
            )
    elif kind == ActionKind.APPLY_CREDIT:
        _same_currency(customer.currency, params["currency"], "customer's balance")
        prepared.amount = Money(params["amount"], params["currency"])
        if params.get("invoice_id"):
            prepared.invoice = _invoice(workspace, cid, params["invoice_id"])
    elif kind == ActionKind.ISSUE_REFUND:
        charge = _charge(workspace, cid, params["charge_id"])
        _same_currency(charge.currency, params["currency"], "charge")
        remainder = _refundable_charge(
            workspace, charge, now=now, exclude_action_id=exclude_action_id, ledger=ledger
        )
        if params["amount"] > remainder:
            raise with_words(
                PreconditionFailed(
                    "",
                    code="exceeds_refundable",
                    details={"refundable": Money(remainder, charge.currency).to_dict()},
                ),
                W.gettext(
                    "At most %(amount)s of this payment can still be refunded.",
                    amount=Money(remainder, charge.currency),
                ),
            )
        prepared.charge = charge
        prepared.amount = Money(params["amount"], charge.currency)
        prepared.values["stripe_reason"] = REFUND_REASONS[params["reason"]]
    elif kind == ActionKind.REFUND_DUPLICATE_CHARGE:
        first, second = (_charge(workspace, cid, c) for c in params["charge_ids"])
        earlier, later = sorted((first, second), key=lambda c: (c.created or now, c.stripe_id))
        if later.status != "succeeded":  # nothing to refund: said before the pair is judged
            _refundable_charge(
                workspace, later, now=now, exclude_action_id=exclude_action_id, ledger=ledger
            )
        window_hours = workspace.duplicate_window_hours
        if not duplicate_pair_check(earlier, later, window_hours=window_hours):
            raise with_words(
                PreconditionFailed("", code="not_duplicates"),
                W.gettext(
                    "These charges are not a duplicate pair (same amount and currency, both "
                    "succeeded, within %(hours)s hours).",
                    hours=window_hours,
                ),
            )
        remainder = _refundable_charge(
            workspace, later, now=now, exclude_action_id=exclude_action_id, ledger=ledger
        )
        prepared.charge = later
        prepared.amount = Money(remainder, later.currency)
        prepared.values.update(stripe_reason="duplicate", original_charge_id=earlier.stripe_id)
    elif kind in (
        ActionKind.EXTEND_TRIAL,
        ActionKind.PAUSE_SUBSCRIPTION,
        ActionKind.CHANGE_PLAN,
        ActionKind.CANCEL_SUBSCRIPTION,
        ActionKind.FORCE_CANCEL,
        ActionKind.ADJUST_SEATS,
        ActionKind.APPLY_DISCOUNT,
        ActionKind.EXTEND_GRACE_PERIOD,
        ActionKind.RESUME_SUBSCRIPTION,
        ActionKind.UNDO_CANCELLATION,
    ):
        sub = _subscription(workspace, cid, params["subscription_id"])
        prepared.subscription = sub
        _prepare_subscription(kind, workspace, sub, params, prepared, now)
    elif kind == ActionKind.UPDATE_PAYMENT_METHOD:
        prepared.values["return_url"] = params.get("return_url") or getattr(
            settings, "BILLING_DESK_PORTAL_RETURN_URL", settings.PUBLIC_BASE_URL
        )

    prepared.request = ActionRequest(
        action=policy_action,
        amount=prepared.amount,
        percent=Decimal(params["percent_off"]) if "percent_off" in params else None,
        days=params.get("days"),
        # Keeping a subscription is what the customer asked for: the "only when the
        # customer requested it" guard on ending service never refuses undoing it.
        customer_requested=kind == ActionKind.UNDO_CANCELLATION
        or bool(params.get("customer_requested", False)),
    )
    return prepared


def _prepare_subscription(
    kind: ActionKind,
    workspace: Workspace,
    sub: MirrorSubscription,
    params: Mapping[str, Any],
    prepared: Prepared,
    now: datetime,
) -> None:
    # What the subscription's state allows: the rule the panel's context offers actions by.
    _state_allows(kind, sub)
    if kind == ActionKind.EXTEND_TRIAL:
        base = max(sub.trial_end or now, now)
        prepared.values["trial_end"] = base + timedelta(days=params["days"])
    elif kind == ActionKind.CHANGE_PLAN:
        _prepare_plan_change(workspace, sub, params, prepared)
    elif kind == ActionKind.ADJUST_SEATS:
        _prepare_seats(workspace, sub, params, prepared)
    elif kind == ActionKind.APPLY_DISCOUNT:
        _no_discount_yet(workspace, sub, now)
    elif kind == ActionKind.EXTEND_GRACE_PERIOD:
        if params.get("invoice_id"):
            prepared.invoice = _invoice(workspace, sub.customer_id, params["invoice_id"])
        prepared.values["until"] = now + timedelta(days=params["days"])


def _no_discount_yet(workspace: Workspace, sub: MirrorSubscription, now: datetime) -> None:
    """The rulebook's one-discount rule on the mirror, before any call (the providers
    apply it again to the live subscription), said in words: which discount is in force."""
    current = list(
        MirrorDiscount.objects.filter(
            workspace=workspace, subscription_id=sub.stripe_id, active=True
        )
        .filter(Q(end__isnull=True) | Q(end__gt=now))
        .order_by("start", "stripe_id")
    )
    try:
        discount_add_check(
            subscription_id=sub.stripe_id, current_discount_ids=[d.stripe_id for d in current]
        )
    except PreconditionFailed as exc:
        raise PreconditionFailed(
            _(
                "This subscription already has a discount (%(discount)s); a second one is not "
                "added. Change or remove that one in Stripe first."
            )
            % {"discount": discount_words(current[0])},
            code=exc.code,
            details=exc.details,
        ) from exc


def discount_words(discount: MirrorDiscount) -> str:
    """``20% off for 3 months`` / ``$50.00 off once`` / ``10% off forever``."""
    if discount.percent_off is not None:
        off = _("%(percent)s off") % {
            "percent": percent_words(Decimal(discount.percent_off).normalize())
        }
    elif discount.amount_off:
        off = _("%(amount)s off") % {
            "amount": Money(discount.amount_off, discount.currency or "USD")
        }
    else:
        off = _("a coupon")
    if discount.duration == "forever":
        return _("%(discount)s forever") % {"discount": off}
    if discount.duration == "once":
        return _("%(discount)s on one invoice") % {"discount": off}
    if discount.end is not None:
        return _("%(discount)s until %(date)s") % {
            "discount": off,
            "date": date_words(discount.end),
        }
    return off


def _prepare_plan_change(
    workspace: Workspace, sub: MirrorSubscription, params: Mapping[str, Any], prepared: Prepared
) -> None:
    if sub.schedule_id:
        pending = str((sub.metadata or {}).get("pending_change_at") or "")
        message = _(
            "This subscription already has a plan change scheduled; a second one cannot be "
            "added until it takes effect."
        )
        if pending.isdigit():
            message = _(
                "This subscription already has a plan change scheduled on %(date)s; a second "
                "one cannot be added until it takes effect."
            ) % {"date": date_words(datetime.fromtimestamp(int(pending), tz=UTC))}
        raise PreconditionFailed(
            message,
            code="change_already_scheduled",
        )
    price = MirrorPrice.objects.filter(workspace=workspace, stripe_id=params["price_id"]).first()
    if price is None:
        raise NotFound(_("That plan is not in the catalogue."), code="price_not_found")
    item = plan_item(workspace, sub, price)
    try:
        plan_change_check(
            status=sub.status,
            current=item_view_from_mirror(item).price,
            new=price_view_from_mirror(price),
        )
    except PreconditionFailed as exc:
        words = PLAN_CHANGE_WORDS.get(exc.code)
        if words is None:
            raise
        raise PreconditionFailed(str(words), code=exc.code, details=exc.details) from exc
    prepared.item = item
    prepared.price = price
    prepared.values["previous_price_id"] = item.price_id


# The rulebook's plan-change refusals as the agent reads them (same codes).
PLAN_CHANGE_WORDS: dict[str, Any] = {
    "same_price": gettext_lazy(
        "The subscription is already on this plan at this price; pick another plan."
    ),
    "price_inactive": gettext_lazy(
        "That plan is archived and can no longer be sold; pick another plan."
    ),
    "price_not_recurring": gettext_lazy(
        "That price is a one-time charge, not a plan; pick a recurring plan."
    ),
    "currency_mismatch": gettext_lazy(
        "That plan is priced in another currency; a subscription cannot change currency."
    ),
    "price_not_comparable": gettext_lazy(
        "That plan cannot be compared with the current one (not a per-seat or per-period "
        "price); change it in Stripe."
    ),
}


def _prepare_seats(
    workspace: Workspace, sub: MirrorSubscription, params: Mapping[str, Any], prepared: Prepared
) -> None:
    if params.get("item_id"):
        item = MirrorSubscriptionItem.objects.filter(
            workspace=workspace, stripe_id=params["item_id"], subscription_id=sub.stripe_id
        ).first()
        if item is None:
            raise NotFound(
                _("That item is not part of this subscription."),
                code="subscription_item_not_found",
                details={"id": params["item_id"]},
            )
    else:
        item = plan_item(workspace, sub)
    used = seats_used(item.metadata, sub.metadata)
    if used is not None and params["quantity"] < used:
        raise with_words(
            PreconditionFailed("", code="below_seats_used", details={"seats_used": used}),
            W.ngettext(
                "%(count)s seat is in use; the count cannot go below %(count)s.",
                "%(count)s seats are in use; the count cannot go below %(count)s.",
                used,
                count=used,
            ),
        )
    if params["quantity"] == item.quantity:
        raise with_words(
            PreconditionFailed("", code="same_quantity"),
            W.ngettext(
                "The subscription already has %(count)s seat; enter a different count.",
                "The subscription already has %(count)s seats; enter a different count.",
                item.quantity,
                count=item.quantity,
            ),
        )
    prepared.item = item
    prepared.values["previous_quantity"] = item.quantity
