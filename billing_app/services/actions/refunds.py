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

from django.db.models import BooleanField, Count, ExpressionWrapper, Q, Sum
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


class RefundLedger:
    """``refunded_amount``/``refundable`` of the request's charges and ``refund_history``,
    from two reads instead of four — the submission's decision, under the customer's lock.

    The same rules as the functions above, read together: one query for the mirrored
    refunds (those of the request's charges, and the customer's in the pattern window,
    each row flagged for which it counts), one for our refund actions (a sum per charge
    and the history count, as filtered aggregates over the same rows). A test holds the
    two ways equal (``tests/billing_app/test_actions_statements.py``). Loaded on first
    use, so a request refused before (an unknown charge) reads nothing.
    """

    def __init__(
        self,
        *,
        workspace: Workspace,
        customer_id: str,
        charge_ids: list[str],
        billing_now: Any,
        exclude_action_id: Any = None,
    ):
        self.workspace = workspace
        self.customer_id = customer_id
        self.charge_ids = [c for c in dict.fromkeys(charge_ids) if c]
        self.billing_now = billing_now
        self.exclude_action_id = exclude_action_id
        self._loaded = False
        self._mirrored_by_charge: dict[str, list[_MirroredRefund]] = {}
        self._ours_by_charge: dict[str, int] = {}
        self._history = History()

    def _load(self) -> None:
        if self._loaded:
            return
        self._loaded = True
        workspace, customer_id = self.workspace, self.customer_id
        days = workspace.refund_pattern_days
        since = self.billing_now - timedelta(days=days)
        customer_charges = MirrorCharge.objects.filter(
            workspace=workspace, customer_id=customer_id
        ).values("stripe_id")
        in_history = (
            Q(created__gte=since)
            & (Q(customer_id=customer_id) | Q(charge_id__in=customer_charges))
            & ~Q(status__in=("failed", "canceled"))
        )
        of_charges = Q(charge_id__in=self.charge_ids, status__in=("succeeded", "pending"))
        rows = (
            MirrorRefund.objects.filter(workspace=workspace)
            .filter(in_history | of_charges)
            .annotate(
                for_history=ExpressionWrapper(in_history, output_field=BooleanField()),
                for_charge=ExpressionWrapper(of_charges, output_field=BooleanField()),
            )
            .values_list(
                "stripe_id",
                "amount",
                "data__metadata__billing_desk_action",
                "charge_id",
                "for_history",
                "for_charge",
            )
        )
        history: list[_MirroredRefund] = []
        for stripe_id, amount, tag, charge_id, for_history, for_charge in rows:
            refund = _MirroredRefund(stripe_id, amount or 0, _action_uuid(tag))
            if for_history:
                history.append(refund)
            if for_charge:
                self._mirrored_by_charge.setdefault(charge_id, []).append(refund)

        def not_mirrored(refunds: list[_MirroredRefund]) -> Q:
            q = Q()
            ids = {r.stripe_id for r in refunds}
            tags = {r.action_id for r in refunds if r.action_id}
            if ids:
                q &= ~Q(provider_object_id__in=ids)
            if tags:
                q &= ~Q(pk__in=tags)
            return q

        sums: dict[str, Any] = {}
        charge_scope = Q()
        for n, charge_id in enumerate(self.charge_ids):
            of_charge = Q(result__charge_id=charge_id) | Q(
                kind=ActionKind.ISSUE_REFUND.value, params__charge_id=charge_id
            )
            charge_scope |= of_charge
            scope = (
                of_charge
                & Q(status__in=(BillingAction.Status.SUCCEEDED.value, *REFUNDS_IN_FLIGHT))
                & not_mirrored(self._mirrored_by_charge.get(charge_id, []))
            )
            if self.exclude_action_id is not None:
                scope &= ~Q(pk=self.exclude_action_id)
            sums[f"charge_{n}"] = Sum("amount", filter=scope)
        window_start = timezone.now() - timedelta(days=days)
        history_scope = (
            Q(customer_id=customer_id)
            & (
                Q(status=BillingAction.Status.SUCCEEDED, completed_at__gte=window_start)
                | Q(status__in=REFUNDS_IN_FLIGHT)
            )
            & not_mirrored(history)
        )
        totals = (
            BillingAction.objects.filter(workspace=workspace, kind__in=REFUND_KINDS)
            .filter(Q(customer_id=customer_id) | charge_scope)
            .aggregate(history=Count("pk", filter=history_scope), **sums)
        )
        self._ours_by_charge = {
            charge_id: totals[f"charge_{n}"] or 0 for n, charge_id in enumerate(self.charge_ids)
        }
        self._history = History(
            refunds_in_pattern_window=len({r.stripe_id for r in history}) + totals["history"]
        )

    def refunded_amount(self, charge: MirrorCharge) -> int:
        """``refunded_amount(workspace, charge, exclude_action_id=...)``, from the ledger."""
        if charge.stripe_id not in self.charge_ids:  # not one the request named: read it alone
            return refunded_amount(self.workspace, charge, exclude_action_id=self.exclude_action_id)
        self._load()
        mirrored = self._mirrored_by_charge.get(charge.stripe_id, [])
        itself = _action_uuid(self.exclude_action_id)
        own = sum(r.amount for r in mirrored if itself and r.action_id == itself)
        mirrored_total = sum(r.amount for r in mirrored if not (itself and r.action_id == itself))
        ours = self._ours_by_charge.get(charge.stripe_id, 0)
        return max(charge.amount_refunded - own, mirrored_total) + ours

    def refundable(self, charge: MirrorCharge) -> int:
        captured = charge.amount_captured or (charge.amount if charge.paid else 0)
        return max(0, captured - self.refunded_amount(charge))

    def history(self) -> History:
        """``refund_history(workspace=..., customer_id=...)``, from the ledger."""
        self._load()
        return self._history
