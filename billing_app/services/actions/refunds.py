"""What has left a charge and how many refunds a customer had: the mirror's and ours.

Our refunds the mirror has not seen yet count too — succeeded, and every refund
still in flight (executing, outcome unknown, pending approval) — so decisions
taken under the customer's decision lock (``services.locks``) see each other.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.db.models import Q, Sum
from django.utils import timezone

from ...catalog import ActionKind
from ...clock import billing_now
from ...models import BillingAction, MirrorCharge, MirrorRefund, Workspace
from ...policy import History
from .kinds import REFUND_KINDS, REFUNDS_IN_FLIGHT


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
    refunds is the one the preconditions chose and recorded.
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
