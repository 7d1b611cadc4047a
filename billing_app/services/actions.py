"""Billing actions: one path for every kind of ``catalog.ActionKind``.

validate params → check preconditions against the mirror → policy → record the
attempt → execute now or escalate → provider → audit → note → customer message.

Exactly once (DESIGN.md section 9, STYLE.md 11):

* The ``BillingAction`` row is INSERTed first, in its own short transaction, and
  the unique constraint (workspace, idempotency_key) decides who owns the
  submission. Only the inserter (or, for an escalated action, the one approver
  whose conditional ``pending_approval → executing`` update matched) calls the
  provider. Every other concurrent or repeated submission with the same key
  loads the row and answers with it: same agent and fingerprint → the first
  answer (waiting, bounded, while it is still ``executing``); another payload →
  ``Conflict`` ``idempotency_key_reused``; another agent → ``Conflict``
  ``idempotency_key_owned_by_another_agent`` (a key is never a way to read or
  replay someone else's action).
* Decisions that count history (the refund pattern, a charge's refundable
  remainder) are taken under a per-customer lock (``services.locks``): the
  policy is evaluated and the row INSERTed in one short transaction that first
  locks the customer's ``CustomerLock`` row, and the history counts refunds
  still in flight (executing, outcome unknown, pending approval). N concurrent
  submissions for one customer get the decisions they would get one by one.
* No database lock is held while the provider is called: the decision lock is
  released when the INSERT commits, the status transition is the guard, so a
  slow provider never blocks the table or the customer.
* The provider's idempotency key is derived from the action id
  (``billing-desk-<action id>-<kind>``), so a retry after a timeout — ours, or a
  takeover of an action whose worker died mid-call — cannot move money twice.
* A failure leaves the action ``failed`` with the provider's error; nothing is
  recorded as done that was not done.
* Nothing is recorded as *not* done that may have been: a write sent without an
  answer (``ProviderOutcomeUnknown``: read timeout, reset after sending, 5xx)
  leaves the action ``outcome_unknown`` — no audit result, note or customer
  message yet. ``services.reconcile`` resolves it with the provider (same
  provider idempotency key, or the action id in the provider's metadata) and
  only then records success or failure. Meanwhile ``_open_outcome_guard``
  refuses the same money action on the same charge, subscription or balance
  under a new key (409 ``action_outcome_unknown``): that resubmission is how a
  lost answer used to become a second refund.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, is_dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, TypeVar

from django.conf import settings
from django.db import (
    DatabaseError,
    IntegrityError,
    close_old_connections,
    connection,
    transaction,
)
from django.db.models import Q, Sum
from django.utils import timezone

from ..api.action_params import REFUND_REASONS, action_params_validate
from ..catalog import KIND_POLICY_ACTION, ActionKind, PolicyAction
from ..errors import (
    BillingDeskError,
    Conflict,
    NotFound,
    NotPermitted,
    PreconditionFailed,
    ProviderError,
    ProviderOutcomeUnknown,
    ProviderUnavailable,
    ValidationFailed,
)
from ..models import (
    BillingAction,
    CustomerFlag,
    MirrorCharge,
    MirrorCustomer,
    MirrorInvoice,
    MirrorPrice,
    MirrorRefund,
    MirrorSubscription,
    MirrorSubscriptionItem,
    Workspace,
)
from ..money import Money, convert
from ..policy import (
    ActionRequest,
    Allow,
    Decision,
    Deny,
    History,
    NeedsApproval,
    PolicyRules,
    decide,
)
from ..providers import get_provider
from ..providers.base import BillingProvider, TaxIdInput
from ..roles import user_has_workspace_perm
from .context_cache import customer_context_invalidate
from .identity import AgentContext
from .locks import customer_decision_lock
from .policy import policy_rules_load

log = logging.getLogger(__name__)
T = TypeVar("T")

REFUND_KINDS = (ActionKind.ISSUE_REFUND.value, ActionKind.REFUND_DUPLICATE_CHARGE.value)
LIVE_SUBSCRIPTION = ("active", "trialing", "past_due", "unpaid", "paused")
ENDED_SUBSCRIPTION = ("canceled", "incomplete_expired")
# Refunds that may still move money: history (the refund pattern, the refundable remainder)
# counts them as if done, so a submission decided while they run sees them.
REFUNDS_IN_FLIGHT = (
    BillingAction.Status.EXECUTING.value,
    BillingAction.Status.OUTCOME_UNKNOWN.value,
    BillingAction.Status.PENDING_APPROVAL.value,
)
# Actions still in someone's hands: executing now, or sent with the outcome unknown.
OPEN = (BillingAction.Status.EXECUTING, BillingAction.Status.OUTCOME_UNKNOWN)
TERMINAL = (
    BillingAction.Status.SUCCEEDED,
    BillingAction.Status.FAILED,
    BillingAction.Status.NOT_PERMITTED,
    BillingAction.Status.DENIED,
    BillingAction.Status.EXPIRED,
)


def _setting(name: str, default: int) -> int:
    return int(getattr(settings, name, default))


def provider_retries() -> int:
    """Extra attempts after a ``ProviderUnavailable``, each with the same idempotency key."""
    return _setting("BILLING_DESK_ACTION_PROVIDER_RETRIES", 2)


def stale_executing_before(now: datetime | None = None) -> datetime:
    """An ``executing`` action started before this is taken to have lost its worker."""
    return (now or timezone.now()) - timedelta(
        seconds=_setting("BILLING_DESK_ACTION_STALE_SECONDS", 300)
    )


def action_claim(*, action_id: Any, status: str, started_at: datetime | None) -> bool:
    """Claim an open action for one taker: a conditional touch of ``started_at``.

    Every taker (a waiting duplicate, the stale takeover, the unknown-outcome resolver)
    claims the same way, so of any number racing for one action exactly one wins.
    """
    return bool(
        BillingAction.objects.filter(pk=action_id, status=status, started_at=started_at).update(
            started_at=timezone.now()
        )
    )


def provider_deadline_seconds() -> int:
    """Wall time after which ``_Run.call`` stops retrying (one call in progress finishes)."""
    return _setting("BILLING_DESK_ACTION_PROVIDER_DEADLINE_SECONDS", 20)


def provider_idempotency_key(action: BillingAction, step: str = "") -> str:
    """Deterministic per action (and per step, for kinds that make two writes)."""
    key = f"billing-desk-{action.id}-{action.kind}"
    return f"{key}-{step}" if step else key


def request_fingerprint(*, kind: str, customer_id: str, params: Mapping[str, Any]) -> str:
    """sha256 of kind + customer + canonical params: equal requests, equal fingerprints."""
    canonical = json.dumps(
        {"kind": kind, "customer_id": customer_id, "params": params},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=True,
        default=str,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def to_json(value: Any) -> Any:
    """A provider result (dataclasses, ``Money``, datetimes) as JSON for ``BillingAction.result``."""
    if isinstance(value, Money):
        return value.to_dict()
    if is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_json(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Decimal):
        return format(value.normalize(), "f")
    if isinstance(value, Mapping):
        return {str(k): to_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_json(v) for v in value]
    return value


# --- preconditions against the mirror --------------------------------------------------------


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
    values: dict[str, Any] = field(default_factory=dict)


def billing_now(workspace: Workspace) -> datetime:
    """The billing system's current time: the sandbox's clock may be frozen (demo, replays)."""
    if workspace.provider == Workspace.Provider.SANDBOX:
        from ..providers.sandbox.control import sandbox_now

        return sandbox_now(workspace=workspace)
    return timezone.now()


def _customer(workspace: Workspace, customer_id: str) -> MirrorCustomer:
    customer = MirrorCustomer.objects.filter(workspace=workspace, stripe_id=customer_id).first()
    if customer is None:
        raise NotFound(f"No customer {customer_id} in this workspace.", code="customer_not_found")
    if customer.deleted:
        raise PreconditionFailed(
            f"Customer {customer_id} was deleted in the billing system.", code="customer_deleted"
        )
    return customer


def _owned(model: type[T], workspace: Workspace, customer_id: str, object_id: str, noun: str) -> T:
    obj = model.objects.filter(  # type: ignore[attr-defined]
        workspace=workspace, stripe_id=object_id, customer_id=customer_id
    ).first()
    if obj is None:
        raise NotFound(
            f"No {noun.replace('_', ' ')} {object_id} for this customer.",
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


def plan_item(
    workspace: Workspace, subscription: MirrorSubscription, new_price: MirrorPrice | None = None
) -> MirrorSubscriptionItem:
    """The subscription's plan item: the one a plan change replaces and seats are counted on.

    The item selling the new price's product, else the one with the largest
    recurring amount (add-ons are smaller items) — the same rule as the Stripe
    provider's, so the precondition checks the item the provider will change.
    """
    items = subscription_items(workspace, subscription.stripe_id)
    if not items:
        raise PreconditionFailed(
            f"Subscription {subscription.stripe_id} has no items.", code="no_items"
        )
    if new_price is not None:
        for item in items:
            if item.product_id and item.product_id == new_price.product_id:
                return item
    return max(items, key=lambda i: (i.unit_amount or 0) * (i.quantity or 1))


def seats_used(subscription: MirrorSubscription, item: MirrorSubscriptionItem) -> int | None:
    """Seats in use, as the billing system records them (metadata ``seats_used``), if it does."""
    for source in (item.metadata or {}, subscription.metadata or {}):
        value = source.get("seats_used")
        if value not in (None, ""):
            try:
                return int(value)
            except (TypeError, ValueError):
                return None
    return None


def _action_uuid(value: Any) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value)) if value else None
    except ValueError:
        return None


@dataclass(frozen=True)
class _MirroredRefund:
    stripe_id: str
    amount: int
    action_id: uuid.UUID | None  # ours, from the ``billing_desk_action`` metadata we write


def _mirrored_refunds(refunds: Any) -> list[_MirroredRefund]:
    """The mirrored refunds in one read: ids, amounts and our action tags from one snapshot.

    Read separately (READ COMMITTED reads each statement afresh), a refund mirrored
    between the reads could be tagged but not counted, and its action skipped as
    "already mirrored": counted nowhere.
    """
    return [
        _MirroredRefund(stripe_id, amount or 0, _action_uuid(tag))
        for stripe_id, amount, tag in refunds.values_list(
            "stripe_id", "amount", "data__metadata__billing_desk_action"
        )
    ]


def _refunds_of_charge(workspace: Workspace, charge_id: str) -> Any:
    """Our refund actions on ``charge_id``: recorded in ``result`` from submission on.

    An ``issue_refund`` also names it in its params, which hold even if a failure path
    replaced ``result``; a duplicate-charge refund names the pair, and the charge it
    refunds is the one ``_prepare`` chose and recorded.
    """
    return BillingAction.objects.filter(workspace=workspace, kind__in=REFUND_KINDS).filter(
        Q(result__charge_id=charge_id)
        | Q(kind=ActionKind.ISSUE_REFUND.value, params__charge_id=charge_id)
    )


def refunded_amount(
    workspace: Workspace, charge: MirrorCharge, *, exclude_action_id: Any = None
) -> int:
    """What has left the charge, or may be leaving it: the mirror's refunds plus ours it has
    not seen yet, succeeded or in flight (executing, outcome unknown, pending approval).

    Counting in-flight refunds, read under the customer's decision lock, is what keeps
    concurrent partial refunds within the charge. A refund the mirror already holds
    (matched by its id, or by the action id in its metadata) is counted once.
    """
    mirrored = _mirrored_refunds(
        MirrorRefund.objects.filter(
            workspace=workspace, charge_id=charge.stripe_id, status__in=("succeeded", "pending")
        )
    )
    # Re-executing an action (an approval, a takeover after its worker died or lost the
    # database mid-call): the refund it may already have made is not "someone else's".
    itself = _action_uuid(exclude_action_id)
    own = sum(r.amount for r in mirrored if itself and r.action_id == itself)
    mirrored_total = sum(r.amount for r in mirrored if not (itself and r.action_id == itself))
    ours = (
        _refunds_of_charge(workspace, charge.stripe_id)
        .filter(status__in=(BillingAction.Status.SUCCEEDED.value, *REFUNDS_IN_FLIGHT))
        .exclude(provider_object_id__in={r.stripe_id for r in mirrored})
        .exclude(pk__in={r.action_id for r in mirrored if r.action_id})
        .exclude(pk=exclude_action_id)
        .aggregate(total=Sum("amount"))["total"]
        or 0
    )
    return max(charge.amount_refunded - own, mirrored_total) + ours


def refundable(workspace: Workspace, charge: MirrorCharge, *, exclude_action_id: Any = None) -> int:
    captured = charge.amount_captured or (charge.amount if charge.paid else 0)
    return max(
        0, captured - refunded_amount(workspace, charge, exclude_action_id=exclude_action_id)
    )


def _refundable_charge(
    workspace: Workspace, charge: MirrorCharge, *, exclude_action_id: Any = None
) -> int:
    """Refund eligibility (DESIGN.md section 6): succeeded, not disputed, in the window."""
    if charge.status != "succeeded":
        raise PreconditionFailed(
            f"Charge {charge.stripe_id} did not succeed ({charge.status}); nothing to refund.",
            code="charge_not_refundable",
        )
    if charge.disputed:
        raise PreconditionFailed(
            f"Charge {charge.stripe_id} is disputed; the dispute decides the money.",
            code="charge_disputed",
        )
    window = timedelta(days=workspace.refund_window_days)
    if charge.created and charge.created < billing_now(workspace) - window:
        raise PreconditionFailed(
            f"Charge {charge.stripe_id} is older than the {workspace.refund_window_days}-day refund window.",
            code="refund_window_passed",
        )
    remainder = refundable(workspace, charge, exclude_action_id=exclude_action_id)
    if remainder <= 0:
        raise PreconditionFailed(
            f"Charge {charge.stripe_id} is already fully refunded.", code="already_refunded"
        )
    return remainder


def _same_currency(expected: str, given: str, what: str) -> None:
    if expected and given.upper() != expected.upper():
        raise ValidationFailed(
            f"The {what} is in {expected.upper()}, not {given.upper()}.",
            code="currency_mismatch",
            details={"expected": expected.upper(), "given": given.upper()},
        )


def _live(subscription: MirrorSubscription, allowed: tuple[str, ...] = LIVE_SUBSCRIPTION) -> None:
    if subscription.status not in allowed:
        raise PreconditionFailed(
            f"Subscription {subscription.stripe_id} is {subscription.status}.",
            code="subscription_not_active",
            details={"status": subscription.status},
        )


def _prepare(
    *,
    kind: ActionKind,
    workspace: Workspace,
    customer: MirrorCustomer,
    params: Mapping[str, Any],
    exclude_action_id: Any = None,
) -> Prepared:
    """Check the request against the mirror before any money moves; raise with a code if it cannot run."""
    cid = customer.stripe_id
    policy_action = KIND_POLICY_ACTION[kind]
    now = billing_now(workspace)
    request = ActionRequest(action=policy_action)
    prepared = Prepared(request=request, customer=customer)

    if kind in (ActionKind.GENERATE_PAYMENT_LINK,):
        if params.get("invoice_id"):
            prepared.invoice = _invoice(workspace, cid, params["invoice_id"])
            if prepared.invoice.status != "open":
                raise PreconditionFailed(
                    f"Invoice {prepared.invoice.stripe_id} is {prepared.invoice.status}, not open.",
                    code="invoice_not_open",
                )
    elif kind == ActionKind.RESEND_INVOICE:
        prepared.invoice = _invoice(workspace, cid, params["invoice_id"])
        if prepared.invoice.status not in ("open", "paid", "uncollectible"):
            raise PreconditionFailed(
                f"Invoice {prepared.invoice.stripe_id} is {prepared.invoice.status or 'a draft'}; "
                "only finalized invoices can be sent.",
                code="invoice_not_sendable",
            )
    elif kind == ActionKind.SEND_TAX_INVOICE:
        prepared.invoice = _invoice(workspace, cid, params["invoice_id"])
        if prepared.invoice.status not in ("open", "paid"):
            raise PreconditionFailed(
                f"Invoice {prepared.invoice.stripe_id} is {prepared.invoice.status or 'a draft'}; "
                "a tax invoice is an open or paid invoice.",
                code="invoice_not_finalized",
            )
    elif kind == ActionKind.APPLY_CREDIT:
        _same_currency(customer.currency, params["currency"], "customer's balance")
        prepared.amount = Money(params["amount"], params["currency"])
        if params.get("invoice_id"):
            prepared.invoice = _invoice(workspace, cid, params["invoice_id"])
    elif kind == ActionKind.ISSUE_REFUND:
        charge = _charge(workspace, cid, params["charge_id"])
        _same_currency(charge.currency, params["currency"], "charge")
        remainder = _refundable_charge(workspace, charge, exclude_action_id=exclude_action_id)
        if params["amount"] > remainder:
            raise PreconditionFailed(
                f"At most {Money(remainder, charge.currency)} of charge {charge.stripe_id} can be refunded.",
                code="exceeds_refundable",
                details={"refundable": Money(remainder, charge.currency).to_dict()},
            )
        prepared.charge = charge
        prepared.amount = Money(params["amount"], charge.currency)
        prepared.values["stripe_reason"] = REFUND_REASONS[params["reason"]]
    elif kind == ActionKind.REFUND_DUPLICATE_CHARGE:
        first, second = (_charge(workspace, cid, c) for c in params["charge_ids"])
        earlier, later = sorted((first, second), key=lambda c: (c.created or now, c.stripe_id))
        window = timedelta(hours=workspace.duplicate_window_hours)
        if (
            earlier.amount != later.amount
            or earlier.currency != later.currency
            or earlier.status != "succeeded"
            or (earlier.created and later.created and later.created - earlier.created > window)
        ):
            raise PreconditionFailed(
                "These charges are not a duplicate pair (same amount and currency, both "
                f"succeeded, within {workspace.duplicate_window_hours} hours).",
                code="not_duplicates",
            )
        remainder = _refundable_charge(workspace, later, exclude_action_id=exclude_action_id)
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
        customer_requested=bool(params.get("customer_requested", False)),
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
    if kind == ActionKind.EXTEND_TRIAL:
        if sub.status != "trialing":
            raise PreconditionFailed(
                f"Subscription {sub.stripe_id} is {sub.status}, not trialing; only a trial can be extended.",
                code="not_trialing",
            )
        base = max(sub.trial_end or now, now)
        prepared.values["trial_end"] = base + timedelta(days=params["days"])
    elif kind == ActionKind.PAUSE_SUBSCRIPTION:
        _live(sub, ("active", "trialing", "past_due"))
        if sub.pause_collection:
            raise PreconditionFailed(
                f"Subscription {sub.stripe_id} is already paused.", code="already_paused"
            )
    elif kind == ActionKind.CHANGE_PLAN:
        _live(sub)
        if sub.schedule_id:
            raise PreconditionFailed(
                f"Subscription {sub.stripe_id} already has a scheduled change.",
                code="change_already_scheduled",
            )
        price = MirrorPrice.objects.filter(
            workspace=workspace, stripe_id=params["price_id"]
        ).first()
        if price is None:
            raise NotFound(f"No price {params['price_id']}.", code="price_not_found")
        item = plan_item(workspace, sub, price)
        if not price.active:
            raise PreconditionFailed(f"Price {price.stripe_id} is archived.", code="price_inactive")
        if price.type != "recurring":
            raise PreconditionFailed(
                f"Price {price.stripe_id} is not a recurring price.", code="price_not_recurring"
            )
        if price.currency.upper() != (item.currency or sub.currency).upper():
            raise PreconditionFailed(
                f"Price {price.stripe_id} is in {price.currency}; a subscription cannot change currency.",
                code="currency_mismatch",
            )
        if item.price_id == price.stripe_id:
            raise PreconditionFailed(
                f"The subscription is already on {price.stripe_id}.", code="same_price"
            )
        prepared.item = item
        prepared.values["previous_price_id"] = item.price_id
    elif kind in (ActionKind.CANCEL_SUBSCRIPTION, ActionKind.FORCE_CANCEL):
        if sub.status in ENDED_SUBSCRIPTION:
            raise PreconditionFailed(
                f"Subscription {sub.stripe_id} is already {sub.status}.", code="already_canceled"
            )
        if kind == ActionKind.CANCEL_SUBSCRIPTION and sub.cancel_at_period_end:
            raise PreconditionFailed(
                f"Subscription {sub.stripe_id} is already set to cancel at the period end.",
                code="cancel_already_scheduled",
            )
    elif kind == ActionKind.ADJUST_SEATS:
        _live(sub)
        if params.get("item_id"):
            item = MirrorSubscriptionItem.objects.filter(
                workspace=workspace, stripe_id=params["item_id"], subscription_id=sub.stripe_id
            ).first()
            if item is None:
                raise NotFound(
                    f"No item {params['item_id']} on subscription {sub.stripe_id}.",
                    code="subscription_item_not_found",
                )
        else:
            item = plan_item(workspace, sub)
        used = seats_used(sub, item)
        if used is not None and params["quantity"] < used:
            raise PreconditionFailed(
                f"{used} seats are in use; the count cannot go below that.",
                code="below_seats_used",
                details={"seats_used": used},
            )
        if params["quantity"] == item.quantity:
            raise PreconditionFailed(
                f"The subscription already has {item.quantity} seats.", code="same_quantity"
            )
        prepared.item = item
        prepared.values["previous_quantity"] = item.quantity
    elif kind == ActionKind.APPLY_DISCOUNT:
        _live(sub)
    elif kind == ActionKind.EXTEND_GRACE_PERIOD:
        _live(sub)
        if params.get("invoice_id"):
            prepared.invoice = _invoice(workspace, sub.customer_id, params["invoice_id"])
        prepared.values["until"] = now + timedelta(days=params["days"])


# --- policy ----------------------------------------------------------------------------------


def refund_history(*, workspace: Workspace, customer_id: str) -> History:
    """Refunds of this customer in the workspace's pattern window: the mirror's and ours.

    Ours are those the mirror has not seen yet: succeeded within the window, and every
    refund still in flight (executing, outcome unknown, pending approval) whatever its
    age, since it may move money now. ``action_submit`` reads this under the customer's
    decision lock, so N refunds submitted together count each other as if sent one by one.
    """
    since = billing_now(workspace) - timedelta(days=workspace.refund_pattern_days)
    charge_ids = MirrorCharge.objects.filter(workspace=workspace, customer_id=customer_id).values(
        "stripe_id"
    )
    mirrored = _mirrored_refunds(
        MirrorRefund.objects.filter(workspace=workspace, created__gte=since)
        .filter(Q(customer_id=customer_id) | Q(charge_id__in=charge_ids))
        .exclude(status__in=("failed", "canceled"))
    )
    ours = (
        BillingAction.objects.filter(
            workspace=workspace, customer_id=customer_id, kind__in=REFUND_KINDS
        )
        .filter(
            Q(
                status=BillingAction.Status.SUCCEEDED,
                completed_at__gte=timezone.now() - timedelta(days=workspace.refund_pattern_days),
            )
            | Q(status__in=REFUNDS_IN_FLIGHT)
        )
        .exclude(provider_object_id__in={r.stripe_id for r in mirrored})
        .exclude(pk__in={r.action_id for r in mirrored if r.action_id})
        .count()
    )
    return History(refunds_in_pattern_window=len({r.stripe_id for r in mirrored}) + ours)


def _amount_base(amount: Money | None, rules: PolicyRules) -> int | None:
    if amount is None:
        return None
    if amount.currency == rules.base_currency:
        return amount.amount
    rate = rules.rates.get(amount.currency)
    return convert(amount.amount, amount.currency, rules.base_currency, rate) if rate else None


def _decision_fields(decision: Decision) -> tuple[str, str, BillingAction.Status]:
    if isinstance(decision, Allow):
        return BillingAction.Decision.ALLOW, decision.reason, BillingAction.Status.EXECUTING
    if isinstance(decision, NeedsApproval):
        return (
            BillingAction.Decision.APPROVAL,
            decision.reason,
            BillingAction.Status.PENDING_APPROVAL,
        )
    return BillingAction.Decision.DENY, decision.reason, BillingAction.Status.NOT_PERMITTED


# --- submission ------------------------------------------------------------------------------


def _kind(value: Any) -> ActionKind:
    try:
        return ActionKind(value)
    except ValueError:
        raise ValidationFailed(
            f"Unknown action kind {value!r}.",
            code="unknown_kind",
            details={"kinds": [k.value for k in ActionKind]},
        ) from None


def _replay(existing: BillingAction, fingerprint: str, *, actor_id: Any) -> BillingAction:
    """The first answer for a repeated idempotency key, to the agent who sent it first.

    Keys are unique per workspace, not per agent, so a key names one action. Another
    agent's key is refused before the payload is compared: it never replays someone
    else's action (an L1 agent would otherwise get a Manager's executed refund back as
    their own), and the refusal says nothing about that action or whether the payload
    matched. The same agent with another payload is refused too.
    """
    if existing.actor_id != actor_id:
        raise Conflict(
            "This idempotency key was already used by another agent; send a new key.",
            code="idempotency_key_owned_by_another_agent",
        )
    if existing.request_fingerprint != fingerprint:
        raise Conflict(
            "This idempotency key was already used for a different request.",
            code="idempotency_key_reused",
            details={"action_id": str(existing.pk)},
        )
    if existing.status == BillingAction.Status.EXECUTING:
        existing = action_await(action_id=existing.pk)
    existing.replayed = True  # type: ignore[attr-defined]
    if existing.status == BillingAction.Status.NOT_PERMITTED:
        raise _not_permitted(existing)
    return existing


SUBSCRIPTION_KINDS = (
    ActionKind.EXTEND_TRIAL.value,
    ActionKind.PAUSE_SUBSCRIPTION.value,
    ActionKind.CHANGE_PLAN.value,
    ActionKind.CANCEL_SUBSCRIPTION.value,
    ActionKind.FORCE_CANCEL.value,
    ActionKind.ADJUST_SEATS.value,
    ActionKind.APPLY_DISCOUNT.value,
    ActionKind.EXTEND_GRACE_PERIOD.value,
)


def _open_outcome_guard(
    *, workspace: Workspace, kind: ActionKind, customer_id: str, params: Mapping[str, Any]
) -> None:
    """Refuse (409 ``action_outcome_unknown``) a money action on an object that has one open.

    Open: ``outcome_unknown`` (sent, no answer: the provider may have acted), or
    ``executing`` for longer than ``BILLING_DESK_ACTION_STALE_SECONDS`` (its worker
    died mid-call: equally unknown). A fresh ``executing`` action is not refused here:
    the decision lock already counts it as in flight, so concurrent submissions keep
    the decisions they would get one by one. Same object: a refund on the same charge,
    any subscription change on the same subscription, a credit on the same customer.
    Called under the customer's decision lock, before the row is inserted.
    """
    if kind.value in REFUND_KINDS:
        charges = list(params.get("charge_ids") or [params.get("charge_id")])
        scope = Q(kind__in=REFUND_KINDS) & (
            Q(result__charge_id__in=charges) | Q(params__charge_id__in=charges)
        )
        noun = f"charge {', '.join(charges)}"
    elif kind.value in SUBSCRIPTION_KINDS:
        scope = Q(kind__in=SUBSCRIPTION_KINDS, params__subscription_id=params["subscription_id"])
        noun = f"subscription {params['subscription_id']}"
    elif kind == ActionKind.APPLY_CREDIT:
        scope = Q(kind=ActionKind.APPLY_CREDIT.value, customer_id=customer_id)
        noun = f"the balance of {customer_id}"
    else:
        return
    stale = stale_executing_before()
    open_action = (
        BillingAction.objects.filter(workspace=workspace, customer_id=customer_id)
        .filter(
            Q(status=BillingAction.Status.OUTCOME_UNKNOWN)
            | Q(status=BillingAction.Status.EXECUTING, started_at__lt=stale)
        )
        .filter(scope)
        .order_by("created_at")
        .first()
    )
    if open_action is None:
        return
    raise Conflict(
        f"An earlier {open_action.kind.replace('_', ' ')} on {noun} is still being confirmed "
        "with Stripe. Billing Desk will finish it as soon as Stripe answers; do not submit "
        "it again.",
        code="action_outcome_unknown",
        details={"action_id": str(open_action.pk), "status": open_action.status},
    )


def _not_permitted(action: BillingAction) -> NotPermitted:
    return NotPermitted(
        f"Not permitted: {action.decision_reason}.",
        details={"action_id": str(action.pk), "reason": action.decision_reason},
    )


def action_submit(
    *,
    context: AgentContext,
    kind: ActionKind | str,
    customer_id: str,
    ticket_id: str,
    params: Mapping[str, Any] | None,
    idempotency_key: str,
) -> BillingAction:
    """Submit one billing action for the calling agent; returns the recorded action.

    The result's ``status`` is ``succeeded``, ``failed`` or ``pending_approval``;
    a role that may neither do nor request it gets ``NotPermitted`` (the attempt
    is recorded first). Bad params, ids of another customer and unmet
    preconditions raise before anything is recorded or sent to the provider.
    The returned action carries ``replayed=True`` when the idempotency key had
    been used before for the same request (the first answer comes back).
    """
    started = time.monotonic()
    workspace, user, role = context.workspace, context.user, context.role
    kind = _kind(kind)
    key = (idempotency_key or "").strip()
    if not key or len(key) > 255:
        raise ValidationFailed(
            "An idempotency_key of 1 to 255 characters is required.", code="idempotency_key_invalid"
        )
    clean = action_params_validate(kind=kind, params=params)
    fingerprint = request_fingerprint(kind=kind.value, customer_id=customer_id, params=clean)

    existing = BillingAction.objects.filter(workspace=workspace, idempotency_key=key).first()
    if existing is not None:
        return _replay(existing, fingerprint, actor_id=user.pk)

    customer = _customer(workspace, customer_id)
    rules = policy_rules_load(workspace=workspace)
    policy_action = KIND_POLICY_ACTION[kind]
    try:
        # Decide and INSERT under the customer's decision lock (services.locks): the history
        # read here counts every earlier submission for this customer, in flight or done, as
        # if they had come one by one. The lock is released on commit, before any provider call.
        with customer_decision_lock(workspace=workspace, customer_id=customer_id):
            # A twin with this key may have committed while we waited for the lock.
            existing = BillingAction.objects.filter(
                workspace=workspace, idempotency_key=key
            ).first()
            if existing is None:
                _open_outcome_guard(
                    workspace=workspace, kind=kind, customer_id=customer_id, params=clean
                )
                prepared = _prepare(kind=kind, workspace=workspace, customer=customer, params=clean)
                history = (
                    refund_history(workspace=workspace, customer_id=customer_id)
                    if policy_action == PolicyAction.ISSUE_REFUND
                    else History()
                )
                decision = decide(
                    role=role,
                    request=prepared.request,
                    history=history,
                    rules=rules,
                    permitted=context.may(policy_action.value),
                )
                outcome, reason, status = _decision_fields(decision)
                now = timezone.now()
                action = BillingAction(
                    workspace=workspace,
                    installation=context.installation if context.installation else None,
                    actor=user,
                    actor_role=role.value,
                    ticket_id=str(ticket_id or "")[:64],
                    customer_id=customer_id,
                    kind=kind.value,
                    params=clean,
                    amount=prepared.amount.amount if prepared.amount else None,
                    currency=prepared.amount.currency if prepared.amount else "",
                    amount_base=_amount_base(prepared.amount, rules),
                    status=status,
                    decision=outcome,
                    decision_reason=reason,
                    idempotency_key=key,
                    request_fingerprint=fingerprint,
                    provider=workspace.provider,
                    started_at=now if status == BillingAction.Status.EXECUTING else None,
                    # The charge a refund leaves, known before the provider answers, so the
                    # refundable remainder counts it while it is in flight.
                    result=(
                        {"charge_id": prepared.charge.stripe_id}
                        if kind.value in REFUND_KINDS and prepared.charge
                        else {}
                    ),
                )
                if status == BillingAction.Status.NOT_PERMITTED:
                    action.completed_at = now
                action.save(force_insert=True)
                if isinstance(decision, NeedsApproval):
                    from .approvals import approval_request_create

                    approval_request_create(action=action, decision=decision)
    except IntegrityError:
        existing = BillingAction.objects.filter(workspace=workspace, idempotency_key=key).first()
        if existing is None:  # not the idempotency constraint
            raise
    if existing is not None:
        return _replay(existing, fingerprint, actor_id=user.pk)
    action.replayed = False  # type: ignore[attr-defined]
    customer_context_invalidate(workspace_id=workspace.pk, customer_id=customer_id)

    if isinstance(decision, Deny):
        _finish_timing(action, started)
        raise _not_permitted(action)
    if isinstance(decision, NeedsApproval):
        _finish_timing(action, started)
        return action
    return _execute(action=action, prepared=prepared, started=started)


def _finish_timing(action: BillingAction, started: float) -> None:
    action.duration_ms = int((time.monotonic() - started) * 1000)
    BillingAction.objects.filter(pk=action.pk).update(duration_ms=action.duration_ms)


def action_await(*, action_id: Any, timeout: float | None = None) -> BillingAction:
    """Wait (bounded) for an action another request is executing; return its final state.

    The executor holds no lock during its provider call, so there is nothing to
    block on: poll with a short back-off. An action left ``executing`` longer than
    ``BILLING_DESK_ACTION_STALE_SECONDS`` (its worker died mid-call) is taken over
    and executed again with the same provider idempotency key, which makes the
    provider return its first result instead of acting twice.
    """
    wait = _setting("BILLING_DESK_ACTION_WAIT_SECONDS", 30) if timeout is None else timeout
    deadline = time.monotonic() + wait
    delay = 0.02
    while True:
        action = BillingAction.objects.select_related("workspace").get(pk=action_id)
        if action.status != BillingAction.Status.EXECUTING:
            return action
        stale = bool(action.started_at and action.started_at < stale_executing_before())
        if stale and action_claim(
            action_id=action.pk, status=BillingAction.Status.EXECUTING, started_at=action.started_at
        ):
            log.warning("taking over stale executing action %s", action.pk)
            return action_execute(action_id=action.pk, takeover=True)
        if time.monotonic() >= deadline:
            raise Conflict(
                "The first request with this idempotency key is still being processed; try again shortly.",
                code="action_in_progress",
                details={"action_id": str(action.pk)},
            )
        time.sleep(delay)
        delay = min(delay * 2, 0.5)


def action_execute(*, action_id: Any, takeover: bool = False) -> BillingAction:
    """Execute an action this caller has moved to ``executing`` (an approval, a takeover).

    Preconditions are checked again: the billing state may have changed while the
    request waited for approval. A ``takeover`` (the first executor died or lost the
    database mid-action) may follow a write the provider already made: our own checks
    then see its effect (``same_quantity``, ``already_paused``…) and the provider may
    refuse the replay, so neither can prove that nothing happened — the action is held
    ``outcome_unknown`` and reconciliation decides from what the provider has.
    """
    started = time.monotonic()
    action = BillingAction.objects.select_related("workspace", "actor").get(pk=action_id)
    if action.status != BillingAction.Status.EXECUTING:
        return action
    try:
        customer = _customer(action.workspace, action.customer_id)
        prepared = _prepare(
            kind=ActionKind(action.kind),
            workspace=action.workspace,
            customer=customer,
            params=action.params,
            exclude_action_id=action.pk,
        )
        if prepared.amount is not None and (
            prepared.amount.amount != action.amount or prepared.amount.currency != action.currency
        ):
            raise PreconditionFailed(
                f"The amount is now {prepared.amount}, not what was approved.",
                code="state_changed",
            )
    except BillingDeskError as exc:
        return _refused(action, exc, started=started, provider_ms=0, may_have_acted=takeover)
    return _execute(action=action, prepared=prepared, started=started, takeover=takeover)


# --- execution -------------------------------------------------------------------------------


class _Run:
    """One execution: the provider, the keys, and the time spent in provider calls."""

    def __init__(self, action: BillingAction, prepared: Prepared, provider: BillingProvider):
        self.action = action
        self.prepared = prepared
        self.provider = provider
        self.provider_ms = 0
        self.calls = 0

    def call(self, fn: Callable[..., T], *, step: str = "", **kwargs: Any) -> T:
        """Call the provider; after ``ProviderUnavailable`` retry, bounded, with the same key.

        Once an attempt may have reached the provider (``ProviderOutcomeUnknown``),
        no later failure can prove that nothing happened — a refused connection, or
        the provider's own check finding the state our lost write already changed —
        so the call ends unknown unless a later attempt returns the result.
        """
        key = provider_idempotency_key(self.action, step)
        attempts = 1 + max(0, provider_retries())
        unknown: ProviderOutcomeUnknown | None = None
        # A bounded wall time for the retries: an agent is waiting, and an action left
        # running for minutes invites a second submission under a new key.
        deadline = time.monotonic() + provider_deadline_seconds()
        for attempt in range(1, attempts + 1):
            began = time.monotonic()
            try:
                self.calls += 1
                return fn(idempotency_key=key, **kwargs)
            except ProviderUnavailable as exc:
                if isinstance(exc, ProviderOutcomeUnknown):
                    unknown = exc
                if attempt == attempts or time.monotonic() >= deadline:
                    if unknown is not None and unknown is not exc:
                        raise unknown from exc
                    raise
                log.info("provider unavailable for %s (attempt %s); retrying", key, attempt)
            except BillingDeskError as exc:
                if unknown is not None:
                    raise unknown from exc
                raise
            finally:
                self.provider_ms += int((time.monotonic() - began) * 1000)
        raise AssertionError("unreachable")


def _execute(
    *, action: BillingAction, prepared: Prepared, started: float, takeover: bool = False
) -> BillingAction:
    """Run the kind's executor and record what it did. A ``takeover`` follows an executor
    that died, whose write may already have happened: no error then proves nothing did."""
    try:
        provider = get_provider(action.workspace)
    except BillingDeskError as exc:  # not configured (no key, unknown provider): nothing sent
        return _refused(action, exc, started=started, provider_ms=0, may_have_acted=takeover)
    run = _Run(action, prepared, provider)
    try:
        result, object_id = EXECUTORS[ActionKind(action.kind)](run)
    except ProviderOutcomeUnknown as exc:  # sent, no answer: held open, never "failed"
        return _hold_unknown(action, exc, started=started, provider_ms=run.provider_ms)
    except BillingDeskError as exc:  # the provider refused, or the state changed under us
        return _refused(
            action, exc, started=started, provider_ms=run.provider_ms, may_have_acted=takeover
        )
    except Exception as exc:
        log.exception("action %s failed unexpectedly", action.pk)
        error = ProviderError(f"Unexpected error: {type(exc).__name__}.", code="internal_error")
        # After a provider call answered, the money may have moved: never "failed" then.
        return _refused(
            action,
            error,
            started=started,
            provider_ms=run.provider_ms,
            may_have_acted=takeover or run.calls > 0,
        )
    return _record_success(action, result, object_id, run=run, started=started)


def _refused(
    action: BillingAction,
    exc: BillingDeskError,
    *,
    started: float,
    provider_ms: int,
    may_have_acted: bool,
) -> BillingAction:
    """``failed`` when nothing can have happened; held ``outcome_unknown`` when it may have.

    It may have when a provider call answered before the error, or when this execution
    takes over from one that died (an earlier attempt may have acted).
    """
    if may_have_acted:
        unknown = ProviderOutcomeUnknown(
            "Billing Desk could not confirm what the billing provider did "
            f"({exc.message}); it is confirming it. Do not submit it again.",
            details={"error_class": type(exc).__name__, "cause": exc.code},
        )
        return _hold_unknown(action, unknown, started=started, provider_ms=provider_ms)
    return _fail(action, exc, started=started, provider_ms=provider_ms)


def _record_success(
    action: BillingAction, result: dict[str, Any], object_id: str, *, run: _Run, started: float
) -> BillingAction:
    """Record what the provider did. The money has moved: never record a failure here.

    A database error is retried once on a fresh connection; if the audit row still
    cannot be written, the action stays ``executing`` and the caller gets 503
    ``action_not_recorded``. A retry with the same idempotency key, or the periodic
    reconciliation (``services.reconcile``), takes it over once it is stale and
    replays the provider call with the same provider idempotency key — which
    returns the first result instead of acting twice — then records it.
    """
    for attempt in (1, 2):
        try:
            return _succeed(action, result, object_id, run=run, started=started)
        except DatabaseError:
            log.exception("action %s: recording the provider's result failed", action.pk)
            if attempt == 1 and not connection.in_atomic_block:
                close_old_connections()  # drop a broken connection; the retry reconnects
    raise BillingDeskError(
        "The billing provider carried this out, but it could not be recorded yet. It will be "
        "reconciled; retry with the same idempotency key, never with a new one.",
        code="action_not_recorded",
        status=503,
        details={"action_id": str(action.pk), "provider_object_id": object_id},
    )


def _succeed(
    action: BillingAction, result: dict[str, Any], object_id: str, *, run: _Run, started: float
) -> BillingAction:
    from ..playbook import customer_message_for

    with transaction.atomic():
        locked = BillingAction.objects.select_for_update().get(pk=action.pk)
        if locked.status not in OPEN:  # someone else finished it
            return locked
        locked.status = BillingAction.Status.SUCCEEDED
        locked.result = result
        locked.provider_object_id = object_id[:255]
        locked.provider_ms = run.provider_ms
        locked.completed_at = timezone.now()
        locked.duration_ms = int((time.monotonic() - started) * 1000)
        locked.error_code = locked.error_message = ""
        _after_success(locked)
        locked.customer_message = customer_message_for(action=locked)
        locked.save()
        customer_context_invalidate(
            workspace_id=locked.workspace_id, customer_id=locked.customer_id
        )
        # The note's outbox row commits with the outcome: a crash right after the commit
        # cannot lose it (the re-drive posts it).
        _note(locked)
    locked.replayed = getattr(action, "replayed", False)  # type: ignore[attr-defined]
    return locked


def _after_success(action: BillingAction) -> None:
    """Local records an action leaves besides the provider's: the 30-day monitoring flag."""
    if action.kind == ActionKind.REFUND_DUPLICATE_CHARGE:
        workspace = action.workspace
        CustomerFlag.objects.update_or_create(
            workspace=workspace,
            customer_id=action.customer_id,
            kind=CustomerFlag.Kind.PAYMENT_MONITORING,
            defaults={
                "active_until": billing_now(workspace)
                + timedelta(days=workspace.payment_monitoring_days),
                "reason": f"duplicate charge {action.result.get('charge_id', '')} refunded",
                "action": action,
                "set_by": action.actor,
            },
        )


def _fail(
    action: BillingAction, exc: BillingDeskError, *, started: float, provider_ms: int
) -> BillingAction:
    details: dict[str, Any] = {"code": exc.code}
    if isinstance(exc, ProviderError):
        details.update(
            provider_code=exc.provider_code, decline_code=exc.decline_code, retryable=exc.retryable
        )
    with transaction.atomic():
        locked = BillingAction.objects.select_for_update().get(pk=action.pk)
        if locked.status not in OPEN:
            return locked
        locked.status = BillingAction.Status.FAILED
        locked.error_code = exc.code[:64]
        locked.error_message = exc.message
        locked.result = {"error": details}
        locked.provider_ms = provider_ms
        locked.completed_at = timezone.now()
        locked.duration_ms = int((time.monotonic() - started) * 1000)
        locked.save()
        customer_context_invalidate(
            workspace_id=locked.workspace_id, customer_id=locked.customer_id
        )
    locked.replayed = getattr(action, "replayed", False)  # type: ignore[attr-defined]
    return locked


def _hold_unknown(
    action: BillingAction, exc: ProviderOutcomeUnknown, *, started: float, provider_ms: int
) -> BillingAction:
    """The provider may have acted: keep the action open as ``outcome_unknown``.

    The error says so honestly; no audit result, note or customer message is written
    until reconciliation (``services.reconcile``) learns what the provider did.
    ``completed_at`` stays empty: the action is not finished.
    """
    details: dict[str, Any] = {
        "code": exc.code,
        "provider_code": exc.provider_code,
        "error_class": (exc.details or {}).get("error_class", ""),
    }
    with transaction.atomic():
        locked = BillingAction.objects.select_for_update().get(pk=action.pk)
        if locked.status not in OPEN:
            return locked
        locked.status = BillingAction.Status.OUTCOME_UNKNOWN
        locked.error_code = exc.code[:64]
        locked.error_message = exc.message
        # Keep what submission recorded (a refund's charge_id): the guard and the
        # refundable remainder read it while the outcome is open.
        # ``sent_at`` dates the provider idempotency key (reconciliation replays it for 23 h).
        sent_at = (locked.result or {}).get("sent_at") or (
            locked.started_at or timezone.now()
        ).isoformat()
        locked.result = {**(locked.result or {}), "error": details, "sent_at": sent_at}
        locked.provider_ms = (locked.provider_ms or 0) + provider_ms
        locked.duration_ms = int((time.monotonic() - started) * 1000)
        locked.save()
        customer_context_invalidate(
            workspace_id=locked.workspace_id, customer_id=locked.customer_id
        )
    log.warning("action %s: provider outcome unknown (%s)", locked.pk, details["error_class"])
    locked.replayed = getattr(action, "replayed", False)  # type: ignore[attr-defined]
    return locked


def _note(action: BillingAction) -> None:
    """Post the internal note on the ticket (enqueued; a helpdesk outage never undoes the action)."""
    if not action.ticket_id:
        return
    from .notes import action_note_enqueue

    try:
        action_note_enqueue(action=action)
    except Exception:  # the action stands; the note can be retried from the audit trail
        log.exception("could not enqueue the note for action %s", action.pk)


# --- one executor per kind: the provider call(s) and what the result records -------------------


def _exec_payment_link(run: _Run) -> tuple[dict[str, Any], str]:
    a = run.action
    link = run.call(
        run.provider.create_payment_link,
        customer_id=a.customer_id,
        invoice_id=a.params.get("invoice_id") or None,
    )
    return to_json(link), link.object_id


def _exec_resend_invoice(run: _Run) -> tuple[dict[str, Any], str]:
    sent = run.call(run.provider.resend_invoice, invoice_id=run.action.params["invoice_id"])
    return to_json(sent), sent.invoice_id


def _exec_credit(run: _Run) -> tuple[dict[str, Any], str]:
    a, p = run.action, run.prepared
    description = a.params.get("description") or f"Billing Desk credit (ticket {a.ticket_id})"
    credit = run.call(
        run.provider.apply_credit,
        customer_id=a.customer_id,
        amount=p.amount,
        description=description[:350],
    )
    return to_json(credit), credit.transaction_id


def _exec_refund(run: _Run) -> tuple[dict[str, Any], str]:
    a, p = run.action, run.prepared
    assert p.charge is not None and p.amount is not None
    our_reason = a.params.get("reason", "duplicate")
    refund = run.call(
        run.provider.refund,
        charge_id=p.charge.stripe_id,
        amount=p.amount,
        reason=p.values["stripe_reason"],
        metadata={
            "billing_desk_action": str(a.pk),
            "billing_desk_reason": our_reason,
            "ticket_id": a.ticket_id,
        },
    )
    result = to_json(refund) | {"billing_desk_reason": our_reason}
    if "original_charge_id" in p.values:
        result["original_charge_id"] = p.values["original_charge_id"]
    return result, refund.refund_id


def _sub_result(result: Any, **extra: Any) -> tuple[dict[str, Any], str]:
    return to_json(result) | to_json(extra), result.subscription_id


def _exec_extend_trial(run: _Run) -> tuple[dict[str, Any], str]:
    r = run.call(
        run.provider.extend_trial,
        subscription_id=run.prepared.subscription.stripe_id,  # type: ignore[union-attr]
        trial_end=run.prepared.values["trial_end"],
    )
    return _sub_result(r)


def _exec_pause(run: _Run) -> tuple[dict[str, Any], str]:
    params = run.action.params
    resumes = params.get("resumes_at")
    r = run.call(
        run.provider.pause_subscription,
        subscription_id=params["subscription_id"],
        behavior=params["behavior"],
        resumes_at=datetime.fromisoformat(resumes) if resumes else None,
    )
    return _sub_result(r)


def _exec_change_plan(run: _Run) -> tuple[dict[str, Any], str]:
    params = run.action.params
    pinned = params.get("proration_date")
    preview = run.provider.preview_plan_change(
        subscription_id=params["subscription_id"],
        new_price_id=params["price_id"],
        at=datetime.fromisoformat(pinned) if pinned else None,
    )
    change = run.call(
        run.provider.change_plan,
        subscription_id=params["subscription_id"],
        new_price_id=params["price_id"],
        proration_date=datetime.fromisoformat(pinned) if pinned else preview.proration_date,
    )
    result = to_json(change) | {
        "previous_price_id": run.prepared.values["previous_price_id"],
        "preview": to_json(preview),
    }
    return result, change.invoice_id or change.schedule_id or change.subscription_id


def _exec_cancel(run: _Run) -> tuple[dict[str, Any], str]:
    params = run.action.params
    r = run.call(
        run.provider.cancel_subscription,
        subscription_id=params["subscription_id"],
        at_period_end=run.action.kind == ActionKind.CANCEL_SUBSCRIPTION,
        reason=params["reason"],
        comment=params.get("comment", ""),
    )
    return _sub_result(r, customer_requested=params.get("customer_requested", False))


def _exec_payment_method_link(run: _Run) -> tuple[dict[str, Any], str]:
    link = run.call(
        run.provider.payment_method_update_link,
        customer_id=run.action.customer_id,
        return_url=run.prepared.values["return_url"],
    )
    return to_json(link), link.object_id


def _exec_seats(run: _Run) -> tuple[dict[str, Any], str]:
    p = run.prepared
    r = run.call(
        run.provider.adjust_seats,
        subscription_id=p.subscription.stripe_id,  # type: ignore[union-attr]
        item_id=p.item.stripe_id,  # type: ignore[union-attr]
        quantity=run.action.params["quantity"],
    )
    return _sub_result(r, previous_quantity=p.values["previous_quantity"])


def _exec_discount(run: _Run) -> tuple[dict[str, Any], str]:
    params = run.action.params
    r = run.call(
        run.provider.apply_discount,
        subscription_id=params["subscription_id"],
        percent_off=float(Decimal(params["percent_off"])),
        duration=params["duration"],
        duration_in_months=params.get("duration_in_months"),
    )
    return to_json(r), r.coupon_id


def _exec_grace(run: _Run) -> tuple[dict[str, Any], str]:
    params = run.action.params
    r = run.call(
        run.provider.extend_grace_period,
        subscription_id=params["subscription_id"],
        invoice_id=params.get("invoice_id") or None,
        until=run.prepared.values["until"],
    )
    return _sub_result(r, grace_until=run.prepared.values["until"], days=params["days"])


def _exec_tax_invoice(run: _Run) -> tuple[dict[str, Any], str]:
    params = run.action.params
    result: dict[str, Any] = {}
    if params.get("tax_id") or params.get("address"):
        tax = params.get("tax_id")
        details = run.call(
            run.provider.update_tax_details,
            step="tax-details",
            customer_id=run.action.customer_id,
            tax_id=TaxIdInput(type=tax["type"], value=tax["value"]) if tax else None,
            address=params.get("address"),
        )
        result["tax_details"] = to_json(details)
    sent = run.call(run.provider.resend_invoice, invoice_id=params["invoice_id"])
    result.update(to_json(sent))
    return result, sent.invoice_id


EXECUTORS: dict[ActionKind, Callable[[_Run], tuple[dict[str, Any], str]]] = {
    ActionKind.GENERATE_PAYMENT_LINK: _exec_payment_link,
    ActionKind.RESEND_INVOICE: _exec_resend_invoice,
    ActionKind.APPLY_CREDIT: _exec_credit,
    ActionKind.ISSUE_REFUND: _exec_refund,
    ActionKind.EXTEND_TRIAL: _exec_extend_trial,
    ActionKind.PAUSE_SUBSCRIPTION: _exec_pause,
    ActionKind.CHANGE_PLAN: _exec_change_plan,
    ActionKind.CANCEL_SUBSCRIPTION: _exec_cancel,
    ActionKind.FORCE_CANCEL: _exec_cancel,
    ActionKind.UPDATE_PAYMENT_METHOD: _exec_payment_method_link,
    ActionKind.ADJUST_SEATS: _exec_seats,
    ActionKind.APPLY_DISCOUNT: _exec_discount,
    ActionKind.REFUND_DUPLICATE_CHARGE: _exec_refund,
    ActionKind.EXTEND_GRACE_PERIOD: _exec_grace,
    ActionKind.SEND_TAX_INVOICE: _exec_tax_invoice,
}


# --- plan change preview ----------------------------------------------------------------------


def plan_change_preview(
    *, context: AgentContext, customer_id: str, subscription_id: str, price_id: str
) -> Any:
    """The provider's proration preview for a plan change, after the same checks the change runs."""
    workspace = context.workspace
    if not user_has_workspace_perm(context.user, "view_billing", workspace):
        raise NotFound(f"No customer {customer_id} in this workspace.", code="customer_not_found")
    params = action_params_validate(
        kind=ActionKind.CHANGE_PLAN,
        params={"subscription_id": subscription_id, "price_id": price_id},
    )
    customer = _customer(workspace, customer_id)
    _prepare(kind=ActionKind.CHANGE_PLAN, workspace=workspace, customer=customer, params=params)
    return get_provider(workspace).preview_plan_change(
        subscription_id=params["subscription_id"], new_price_id=params["price_id"]
    )
