"""The payment side of the context: the payment method, the payment status and the credits.

* **Credits** — three figures that never count one credit twice:

  - *available*: the credit the customer holds now (−balance when the balance is
    negative); ``on_balance`` lists the granted credits it is made of (not yet consumed,
    oldest consumed first);
  - *applied this cycle*: the balance applied to invoices since the primary
    subscription's current period began (already consumed, no longer available);
  - *pending*: credits asked for that are not on the balance yet — Billing Desk's
    ``apply_credit`` actions for the customer awaiting approval or awaiting the billing
    system's answer. A credit on the balance is never pending (issue 14: "Pending
    credits" listed the credits already on the balance).

  Read bounded (``facts.CreditFacts``): *applied this cycle* is an SQL sum, and
  ``on_balance`` lists at most ``CREDITS_LISTED_MAX`` (20) credits, newest first — a
  balance made of more credits lists the newest 20.

* **Payment method** — a card is ``expired`` from the first instant of the month after
  its expiry month (noted for the ``horizon``).
"""

from __future__ import annotations

from datetime import datetime

from dateutil.relativedelta import relativedelta
from django.utils.translation import gettext, gettext_noop

from ...catalog import ActionKind
from ...models import BillingAction, MirrorCharge, MirrorCustomer
from ...money import money_json
from ...vocabulary import in_sentence
from ..payments import card_brand_label, charge_method_label
from .facts import CreditFacts, action_window_exit
from .horizon import horizon_note, horizon_note_real
from .shapes import Obj, day


def _card_block(pm: Obj, now: datetime) -> Obj:
    card = pm.get("card") or {}
    brand = str(card.get("brand") or "card")
    exp_month, exp_year = card.get("exp_month"), card.get("exp_year")
    expired = False
    if exp_year:
        year, month = int(exp_year), min(12, int(exp_month or 0))
        expired = (year, month) < (now.year, now.month)
        # Expired from the first instant of the month after its month (of its year, for none).
        horizon_note(datetime(year, 1, 1, tzinfo=now.tzinfo) + relativedelta(months=month))
    return {
        "id": pm.get("id"),
        "type": "card",
        "brand": brand,
        "last4": card.get("last4"),
        "exp_month": exp_month,
        "exp_year": exp_year,
        "display": gettext("%(brand)s ending %(last4)s")
        % {"brand": card_brand_label(brand), "last4": card.get("last4")},
        "expires": f"{int(exp_month):02d}/{exp_year}" if exp_month and exp_year else None,
        "expired": expired,
    }


def payment_method_block(pm: Obj | None, now: datetime) -> Obj | None:
    """A card (with whether it has expired by ``now``) or a bank account; None for none."""
    if not pm:
        return None
    if pm.get("type") == "card":
        return _card_block(pm, now)
    kind = str(pm.get("type") or "")
    details = pm.get(kind) or {}
    return {
        "id": pm.get("id"),
        "type": kind,
        "brand": details.get("bank_name") or kind,
        "last4": details.get("last4"),
        "exp_month": None,
        "exp_year": None,
        "display": gettext("Bank account ending %(last4)s") % {"last4": details.get("last4")}
        if details.get("last4")
        else kind,
        "expires": None,
        "expired": False,
    }


def last_payment_block(charge: MirrorCharge | None) -> Obj | None:
    if charge is None:
        return None
    return {
        "amount": money_json(charge.amount, charge.currency),
        "date": day(charge.created),
        "status": charge.status,
        "succeeded": charge.status == "succeeded",
        "charge_id": charge.stripe_id,
        "method": charge_method_label(charge),
        "failure_code": charge.failure_code,
        "failure_message": charge.failure_message,
    }


# The credit actions that are asked for but not on the balance yet, with their status's
# label (``BillingAction.Status``) marked for the catalog.
PENDING_CREDIT_LABELS = {
    BillingAction.Status.PENDING_APPROVAL: gettext_noop("Pending approval"),
    BillingAction.Status.OUTCOME_UNKNOWN: gettext_noop("Confirming with Stripe"),
}
PENDING_CREDIT_STATUSES = tuple(PENDING_CREDIT_LABELS)


def pending_credits(actions: list[BillingAction], currency: str) -> list[Obj]:
    """Credits requested for the customer and not on its balance yet, newest first."""
    out: list[Obj] = []
    for action in actions:
        if action.kind != ActionKind.APPLY_CREDIT or action.status not in PENDING_CREDIT_STATUSES:
            continue
        horizon_note_real(action_window_exit(action))  # an unknown outcome is read for 90 days
        params = action.params or {}
        what = str(params.get("description") or "").strip()
        label = gettext(PENDING_CREDIT_LABELS[BillingAction.Status(action.status)])
        out.append(
            {
                "id": str(action.pk),
                "amount": money_json(int(action.amount or 0), action.currency or currency),
                "granted": money_json(int(action.amount or 0), action.currency or currency),
                "description": gettext("%(what)s (%(status)s)")
                % {"what": what, "status": in_sentence(label)}
                if what
                else label,
                "status": action.status,
                "date": day(action.created_at),
            }
        )
    return out


def credits_block(
    customer: MirrorCustomer,
    txns: CreditFacts,
    period_start: datetime | None,
    currency: str,
    actions: list[BillingAction] | None = None,
) -> Obj:
    """The credits block; ``txns`` were read for the cycle that began at ``period_start``."""
    if period_start != txns.period_start:
        raise ValueError("the credit applied was summed from another period start")
    available = -customer.balance if customer.balance < 0 else 0
    applied = txns.applied if period_start is not None else 0
    on_balance: list[Obj] = []
    remaining = available
    # Newest first (a credit without a date is the newest), as ``facts`` read them.
    grants = sorted(
        (t for t in txns.grants if t.amount < 0 and t.type != "applied_to_invoice"),
        key=lambda t: (t.created is None, t.created or datetime.min, t.stripe_id),
        reverse=True,
    )
    for grant in grants:  # newest first: older credits were consumed first
        if remaining <= 0:
            break
        left = min(-grant.amount, remaining)
        remaining -= left
        on_balance.append(
            {
                "id": grant.stripe_id,
                "amount": money_json(left, grant.currency or currency),
                "granted": money_json(-grant.amount, grant.currency or currency),
                "description": grant.description,
                "date": day(grant.created),
            }
        )
    return {
        "available": money_json(available, currency),
        "applied_this_cycle": money_json(applied, currency),
        "on_balance": on_balance,
        "pending": pending_credits(actions or [], currency),
    }
