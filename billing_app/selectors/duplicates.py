"""Duplicate-charge candidates (the brief's scenario 1, "I was charged twice").

A pair is two **succeeded** charges of the same customer for the same amount in
the same currency, the later one made within the workspace's
``duplicate_window_hours`` (default 24) of the earlier. The later charge is the
one to refund (``refund_duplicate_charge`` refunds it with reason
``duplicate``); a pair whose later charge is already refunded in full — in the
mirror, or by a Billing Desk refund the mirror has not caught up with — is not
a candidate any more. Charges older than the workspace's refund window cannot
be refunded and are not looked at.

The likely root cause is named for the agent: a second charge on another
payment intent that paid no invoice is a payment-gateway retry after a false
failure; two charges that each paid something look like a duplicate by the card
issuer. Three queries whatever the history's length.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from datetime import datetime, timedelta
from typing import Any

from django.db.models import Q
from django.utils.translation import gettext, gettext_noop

from ..catalog import ActionKind
from ..models import BillingAction, MirrorCharge, MirrorInvoice, Workspace
from ..money import money_json
from ..vocabulary import Labels, in_sentence
from .payments import charge_method_label

Obj = dict[str, Any]


def _iso(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None


def _summary(charge: MirrorCharge, invoices: dict[str, MirrorInvoice]) -> Obj:
    invoice = invoices.get(charge.payment_intent_id or "") or invoices.get(charge.invoice_id or "")
    return {
        "id": charge.stripe_id,
        "amount": money_json(charge.amount, charge.currency),
        "created": _iso(charge.created),
        "method": charge_method_label(charge),
        "description": charge.description,
        "payment_intent_id": charge.payment_intent_id or None,
        "invoice_id": invoice.stripe_id if invoice else None,
        "invoice_number": invoice.number if invoice else None,
        "refunded": money_json(charge.amount_refunded, charge.currency),
    }


# The likely root cause of a pair, for the agent: a code the panel keys on, its words, and
# the facts of the two charges that point to it.
ROOT_CAUSES = Labels(
    {
        "gateway_retry": gettext_noop("Payment gateway retry"),
        "issuer_duplicate": gettext_noop("Duplicate authorisation by the card issuer"),
        "separate_charges": gettext_noop("Two separate charges"),
    }
)
# "Likely …: <the first fact>", per root cause.
LIKELY = {
    "gateway_retry": gettext_noop("Likely a payment gateway retry: %(fact)s"),
    "issuer_duplicate": gettext_noop(
        "Likely a duplicate authorisation by the card issuer: %(fact)s"
    ),
    "separate_charges": gettext_noop("Likely two separate charges: %(fact)s"),
}


def duplicate_root_cause(earlier: Obj, later: Obj, *, same_card: bool) -> Obj:
    """Why the customer was likely charged twice, from the two charges' own data.

    * one payment intent behind both charges, or a second charge on the same card that
      paid no invoice: the payment gateway retried a payment it wrongly saw fail;
    * the same card, separate payment attempts for the same invoice (or for none): the
      card issuer authorised the same payment twice;
    * each charge paid its own invoice, or two different cards: two separate charges —
      check with the customer before refunding.
    """
    intent = earlier["payment_intent_id"]
    evidence: list[str] = []
    if intent and intent == later["payment_intent_id"]:
        kind = "gateway_retry"
        evidence.append(gettext("Both charges belong to the same payment attempt."))
    elif (
        earlier["invoice_id"]
        and later["invoice_id"]
        and earlier["invoice_id"] != later["invoice_id"]
    ):
        kind = "separate_charges"
        evidence.append(
            gettext("Each charge paid its own invoice (%(first)s and %(second)s).")
            % {
                "first": earlier["invoice_number"] or gettext("one invoice"),
                "second": later["invoice_number"] or gettext("another invoice"),
            }
        )
    elif not same_card:
        kind = "separate_charges"
        evidence.append(
            gettext(
                "The charges were made on different payment methods (%(first)s and %(second)s)."
            )
            % {
                "first": earlier["method"] or gettext("one"),
                "second": later["method"] or gettext("another"),
            }
        )
    elif later["invoice_id"] is None and earlier["invoice_id"] is not None:
        kind = "gateway_retry"
        evidence.append(
            gettext(
                "The second charge was a new payment attempt on the same card (%(card)s) "
                "and paid no invoice."
            )
            % {"card": later["method"] or gettext("card")}
        )
    else:
        kind = "issuer_duplicate"
        evidence.append(
            gettext(
                "Two separate payment attempts on the same card (%(card)s) for the same purchase."
            )
            % {"card": later["method"] or gettext("card")}
        )
    advice = {
        "gateway_retry": gettext_noop(
            "Refund the second charge: the customer paid once for one invoice."
        ),
        "issuer_duplicate": gettext_noop(
            "Refund the second charge: the same payment went through twice."
        ),
        "separate_charges": gettext_noop(
            "Check with the customer before refunding: both charges may be genuine."
        ),
    }[kind]
    advice = gettext(advice)
    return {"kind": kind, "label": ROOT_CAUSES[kind], "evidence": evidence, "advice": advice}


def _root_cause(earlier: Obj, later: Obj, same_card: bool) -> str:
    cause = duplicate_root_cause(earlier, later, same_card=same_card)
    return gettext(LIKELY[cause["kind"]]) % {"fact": in_sentence(cause["evidence"][0])}


def _refunded_in_full(charge: MirrorCharge) -> bool:
    return charge.amount_refunded >= (charge.amount_captured or charge.amount)


def duplicate_pair_check(earlier: MirrorCharge, later: MirrorCharge, *, window_hours: int) -> bool:
    """Whether two charges (``earlier`` first) are a duplicate pair: the rule, written once.

    Both succeeded, the same amount in the same currency, the later made within
    ``window_hours`` of the earlier. Used by the pair finder below, the panel's
    context alerts and the ``refund_duplicate_charge`` precondition.
    """
    if earlier.status != "succeeded" or later.status != "succeeded":
        return False
    if earlier.amount != later.amount or earlier.currency != later.currency:
        return False
    if earlier.created is None or later.created is None:
        return True  # no time to compare (a charge being created): amount and currency decide
    return timedelta(0) <= later.created - earlier.created <= timedelta(hours=window_hours)


def duplicate_charge_pairs(
    charges: Iterable[MirrorCharge], *, window_hours: int, refunding: Collection[str] = ()
) -> list[tuple[MirrorCharge, MirrorCharge]]:
    """The duplicate pairs among ``charges`` (any order) as (earlier, later), oldest pair first.

    Each later charge pairs with the nearest earlier one (``duplicate_pair_check``);
    a later charge refunded in full, or being refunded (its id in ``refunding``), is
    not a candidate any more. Pure: reads nothing but its inputs.
    """
    window = timedelta(hours=window_hours)
    succeeded = sorted(
        (c for c in charges if c.status == "succeeded" and c.created is not None),
        key=lambda c: (c.created, c.stripe_id),
    )
    pairs: list[tuple[MirrorCharge, MirrorCharge]] = []
    for index, later in enumerate(succeeded):
        if _refunded_in_full(later) or later.stripe_id in refunding:
            continue
        for earlier in reversed(succeeded[:index]):
            if later.created - earlier.created > window:  # type: ignore[operator]
                break
            if duplicate_pair_check(earlier, later, window_hours=window_hours):
                pairs.append((earlier, later))
                break
    return pairs


def duplicate_pairs_find(
    *,
    workspace: Workspace,
    charges: Iterable[MirrorCharge],
    refunding: set[str] | None = None,
    invoices: dict[str, MirrorInvoice] | None = None,
) -> list[Obj]:
    """Pairs among ``charges`` (any order), newest pair first, as the API shows them."""
    invoices = invoices or {}
    pairs: list[Obj] = []
    for earlier, later in duplicate_charge_pairs(
        charges, window_hours=workspace.duplicate_window_hours, refunding=refunding or set()
    ):
        captured = later.amount_captured or later.amount
        first, second = _summary(earlier, invoices), _summary(later, invoices)
        same_card = bool(later.payment_method_id) and (
            later.payment_method_id == earlier.payment_method_id
        )
        pairs.append(
            {
                "charge_ids": [earlier.stripe_id, later.stripe_id],
                "original_charge_id": earlier.stripe_id,
                "duplicate_charge_id": later.stripe_id,
                "amount": money_json(later.amount, later.currency),
                "refundable": money_json(captured - later.amount_refunded, later.currency),
                "minutes_apart": int(
                    (later.created - earlier.created).total_seconds() // 60  # type: ignore[operator]
                ),
                "charges": [first, second],
                "root_cause": _root_cause(first, second, same_card),
                "root_cause_detail": duplicate_root_cause(first, second, same_card=same_card),
                "action": {
                    "kind": ActionKind.REFUND_DUPLICATE_CHARGE.value,
                    "label": gettext("Refund duplicate"),
                    "params": {"charge_ids": [earlier.stripe_id, later.stripe_id]},
                },
            }
        )
    pairs.reverse()
    return pairs


def customer_duplicates(*, workspace: Workspace, customer_id: str, now: datetime) -> Obj:
    """``GET customers/{id}/duplicates/``: the customer's duplicate-charge pairs."""
    since = now - timedelta(days=workspace.refund_window_days)
    charges = list(
        MirrorCharge.objects.filter(
            workspace=workspace, customer_id=customer_id, status="succeeded", created__gte=since
        ).order_by("created", "stripe_id")[:1000]
    )
    refunding = set(
        BillingAction.objects.filter(
            workspace=workspace,
            customer_id=customer_id,
            kind=ActionKind.REFUND_DUPLICATE_CHARGE,
            status=BillingAction.Status.SUCCEEDED,
        ).values_list("result__charge_id", flat=True)
    ) - {None, ""}
    intents = {c.payment_intent_id for c in charges if c.payment_intent_id}
    invoice_ids = {c.invoice_id for c in charges if c.invoice_id}
    invoices: dict[str, MirrorInvoice] = {}
    if intents or invoice_ids:
        for invoice in MirrorInvoice.objects.filter(
            Q(payment_intent_id__in=intents) | Q(stripe_id__in=invoice_ids), workspace=workspace
        ):
            if invoice.payment_intent_id:
                invoices[invoice.payment_intent_id] = invoice
            invoices[invoice.stripe_id] = invoice
    pairs = duplicate_pairs_find(
        workspace=workspace, charges=charges, refunding=refunding, invoices=invoices
    )
    return {
        "customer_id": customer_id,
        "window_hours": workspace.duplicate_window_hours,
        "pairs": pairs,
    }


__all__ = [
    "ROOT_CAUSES",
    "customer_duplicates",
    "duplicate_charge_pairs",
    "duplicate_pair_check",
    "duplicate_pairs_find",
    "duplicate_root_cause",
]
