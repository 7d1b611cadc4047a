"""Evidence for the panel's investigation cards that no other endpoint gives (DESIGN.md section 6).

* ``refund_eligibility`` — the brief's scenario 4: for each recent payment whether it can
  still be refunded and why not, the days left in the refund window, what is left to
  refund, and the refund pattern (refunds in the pattern window against the threshold
  that sends every refund to Manager review), with the refund to propose.
* ``plan_change_options`` — scenario 3: the current plan and the plans it can change to,
  each with "what's included" (the Stripe product's ``description`` and
  ``marketing_features``), whether it is an upgrade or a downgrade and the difference per
  billing period; the latest plan change, and after an upgrade the onboarding follow-up
  to propose (``playbook.onboarding_follow_up``).

Reads only. What is left to refund and how many refunds count toward the pattern are
rules of the write side (``services.actions.refunds``, which also count refunds still in
flight); the entry point passes them in as ``refundable_of`` and ``refunds_in_window`` so
the card shows exactly what the refund action will decide with.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from django.db.models import Q
from django.utils.translation import gettext, ngettext

from ..catalog import ActionKind
from ..errors import NotFound
from ..models import (
    BillingAction,
    MirrorCharge,
    MirrorCustomer,
    MirrorInvoice,
    MirrorPrice,
    MirrorProduct,
    Workspace,
)
from ..money import format_money, money_json
from ..playbook import interval_word, onboarding_follow_up
from ..vocabulary import in_sentence
from .context.subscription_state import short_date_words
from .payments import charge_method_label
from .plans import plan_options

Obj = dict[str, Any]
RECENT_CHARGES = 8


def _customer(workspace: Workspace, customer_id: str) -> MirrorCustomer:
    customer = MirrorCustomer.objects.filter(workspace=workspace, stripe_id=customer_id).first()
    if customer is None:
        raise NotFound(gettext("No such billing customer."), code="customer_not_found")
    return customer


# --- refund eligibility -----------------------------------------------------------------------


def _not_refundable(charge: MirrorCharge, refundable: int, *, now: datetime, window: int) -> str:
    """Why a succeeded charge cannot be refunded, in words ("" when it can): the refund
    action's own preconditions (disputed, outside the window, nothing left)."""
    created = charge.created or now
    age_days = math.ceil((now - created).total_seconds() / 86400)
    if charge.disputed:
        return gettext("Disputed: the customer's bank decides this payment's outcome.")
    if created < now - timedelta(days=window):
        return ngettext(
            "Made %(age)d day ago, outside the %(window)d-day refund window.",
            "Made %(age)d days ago, outside the %(window)d-day refund window.",
            age_days,
        ) % {"age": age_days, "window": window}
    if refundable <= 0:
        return gettext("Already refunded in full.")
    return ""


def refund_eligibility(
    *,
    workspace: Workspace,
    customer_id: str,
    now: datetime,
    refundable_of: Callable[[MirrorCharge], int],
    refunds_in_window: int,
) -> Obj:
    """``GET customers/{id}/refund-eligibility/``: the recent payments and the refund pattern."""
    _customer(workspace, customer_id)
    window = workspace.refund_window_days
    charges = list(
        MirrorCharge.objects.filter(
            workspace=workspace, customer_id=customer_id, status="succeeded"
        ).order_by("-created", "-stripe_id")[:RECENT_CHARGES]
    )
    intents = {c.payment_intent_id for c in charges if c.payment_intent_id}
    invoice_ids = {c.invoice_id for c in charges if c.invoice_id}
    numbers: dict[str, str] = {}
    for invoice in MirrorInvoice.objects.filter(
        Q(payment_intent_id__in=intents) | Q(stripe_id__in=invoice_ids), workspace=workspace
    ):
        if invoice.payment_intent_id:
            numbers[invoice.payment_intent_id] = invoice.number
        numbers[invoice.stripe_id] = invoice.number
    rows: list[Obj] = []
    for charge in charges:
        created = charge.created or now
        left = math.floor((created + timedelta(days=window) - now).total_seconds() / 86400)
        refundable = refundable_of(charge) if not charge.disputed else 0
        why_not = _not_refundable(charge, refundable, now=now, window=window)
        rows.append(
            {
                "charge_id": charge.stripe_id,
                "date": created.date().isoformat(),
                "date_display": short_date_words(created),
                "amount": money_json(charge.amount, charge.currency),
                "refunded": money_json(charge.amount_refunded, charge.currency),
                "refundable": money_json(0 if why_not else refundable, charge.currency),
                "invoice_number": numbers.get(charge.payment_intent_id or "")
                or numbers.get(charge.invoice_id or "")
                or "",
                "method": charge_method_label(charge),
                "description": charge.description,
                "eligible": not why_not,
                "days_left": max(0, left) if not why_not else 0,
                "window_display": ngettext(
                    "%(left)d of %(window)d day left", "%(left)d of %(window)d days left", window
                )
                % {"left": max(0, left), "window": window}
                if not why_not
                else "",
                "reason": why_not,
            }
        )
    count, threshold, days = (
        refunds_in_window,
        workspace.refund_pattern_count,
        (workspace.refund_pattern_days),
    )
    reached = count >= threshold
    pattern = {
        "refunds": count,
        "threshold": threshold,
        "days": days,
        "reached": reached,
        "display": (
            ngettext(
                "%(count)d refund in the last %(days)d days — a refund pattern (from "
                "%(threshold)d): any refund goes to Manager review.",
                "%(count)d refunds in the last %(days)d days — a refund pattern (from "
                "%(threshold)d): any refund goes to Manager review.",
                count,
            )
            if reached
            else ngettext(
                "%(count)d refund in the last %(days)d days (a refund pattern starts at "
                "%(threshold)d).",
                "%(count)d refunds in the last %(days)d days (a refund pattern starts at "
                "%(threshold)d).",
                count,
            )
        )
        % {"count": count, "days": days, "threshold": threshold},
    }
    eligible = [r for r in rows if r["eligible"]]
    proposed = eligible[0] if eligible else None
    if proposed is not None:
        summary = gettext(
            "Eligible: %(amount)s can be refunded on the payment of %(date)s "
            "(%(left)s in the refund window)."
        ) % {
            "amount": proposed["refundable"]["display"],
            "date": proposed["date_display"],
            "left": proposed["window_display"],
        }
    elif rows:
        summary = gettext("Not eligible: %(reason)s") % {"reason": in_sentence(rows[0]["reason"])}
    else:
        summary = gettext("No payments to refund.")
    return {
        "customer_id": customer_id,
        "window_days": window,
        "charges": rows,
        "pattern": pattern,
        "eligible": proposed is not None,
        "summary": summary,
        "action": {
            "kind": ActionKind.ISSUE_REFUND.value,
            "label": gettext("Refund"),
            "params": {
                "charge_id": proposed["charge_id"],
                "amount": proposed["refundable"]["amount"],
                "currency": proposed["refundable"]["currency"],
            },
        }
        if proposed is not None
        else None,
        "denied_charge_id": None if proposed is not None or not rows else rows[0]["charge_id"],
    }


# --- plan change ------------------------------------------------------------------------------


def _included(product: MirrorProduct | None) -> Obj:
    """What a plan includes, from its Stripe product (``description``, ``marketing_features``)."""
    data = (product.data or {}) if product else {}
    features = [
        str(f["name"])
        for f in data.get("marketing_features") or []
        if isinstance(f, dict) and f.get("name")
    ]
    return {"description": str(data.get("description") or ""), "features": features}


def _per_month(option: Obj) -> float:
    """A plan option's amount per month, to compare plans of different intervals."""
    months = {"day": 1 / 30, "week": 7 / 30, "month": 1, "year": 12}.get(option["interval"], 1)
    return option["amount"]["amount"] / (months * (option["interval_count"] or 1))


def _latest_change(workspace: Workspace, customer_id: str, customer_name: str) -> Obj | None:
    action = (
        BillingAction.objects.filter(
            workspace=workspace,
            customer_id=customer_id,
            kind=ActionKind.CHANGE_PLAN.value,
            status=BillingAction.Status.SUCCEEDED,
        )
        .order_by("-created_at")
        .first()
    )
    if action is None:
        return None
    result = action.result or {}
    prices = {
        p.stripe_id: p
        for p in MirrorPrice.objects.filter(
            workspace=workspace,
            stripe_id__in=[result.get("previous_price_id", ""), result.get("new_price_id", "")],
        )
    }
    products = {
        p.stripe_id: p
        for p in MirrorProduct.objects.filter(
            workspace=workspace, stripe_id__in=[p.product_id for p in prices.values()]
        )
    }

    def name(price_id: str) -> str:
        price = prices.get(price_id)
        product = products.get(price.product_id) if price else None
        return (product.name if product else "") or (price.nickname if price else "") or price_id

    old = prices.get(result.get("previous_price_id", ""))
    new = prices.get(result.get("new_price_id", ""))
    delta = result.get("mrr_delta")
    upgrade = (
        int(delta) > 0
        if isinstance(delta, int)
        else bool(old and new and (new.unit_amount or 0) > (old.unit_amount or 0))
    )
    new_product = products.get(new.product_id) if new else None
    included = _included(new_product)
    return {
        "action_id": str(action.pk),
        "from_plan": name(result.get("previous_price_id", "")),
        "to_plan": name(result.get("new_price_id", "")),
        "direction": "upgrade" if upgrade else "downgrade",
        "effective_date": result.get("effective_date"),
        "changed_at": action.completed_at.isoformat() if action.completed_at else None,
        "follow_up": onboarding_follow_up(
            customer=customer_name,
            new_plan=name(result.get("new_price_id", "")),
            features=included["features"],
        )
        if upgrade
        else None,
    }


def plan_change_options(*, workspace: Workspace, customer_id: str) -> Obj:
    """``GET customers/{id}/plan-change/``: the current plan against the options, with what
    each includes, and the latest change with its follow-up."""
    customer = _customer(workspace, customer_id)
    options = plan_options(workspace=workspace, customer_id=customer_id)
    prices = {
        p.stripe_id: p
        for p in MirrorPrice.objects.filter(
            workspace=workspace, stripe_id__in=[o["id"] for o in options["plans"]]
        )
    }
    products = {
        p.stripe_id: p
        for p in MirrorProduct.objects.filter(
            workspace=workspace, stripe_id__in=[p.product_id for p in prices.values()]
        )
    }
    plans = []
    for option in options["plans"]:
        price = prices.get(option["id"])
        plans.append({**option, **_included(products.get(price.product_id) if price else None)})
    current = next((p for p in plans if p["current"]), None)
    name = customer.name or customer.email or customer_id
    out = []
    for plan in plans:
        if plan["current"]:
            continue
        direction = None
        difference = None
        if current is not None:
            direction = "upgrade" if _per_month(plan) > _per_month(current) else "downgrade"
            if plan["interval"] == current["interval"]:
                diff = plan["amount"]["amount"] - current["amount"]["amount"]
                every = interval_word(plan["interval"], plan["interval_count"])
                sign = "+" if diff >= 0 else "-"
                difference = f"{sign}{format_money(abs(diff), plan['amount']['currency'])} {every}"
        out.append(
            {
                **plan,
                "direction": direction,
                "difference": difference,
                "effect": gettext("Takes effect now; the prorated difference is invoiced today.")
                if direction == "upgrade"
                else gettext("Takes effect at the next renewal; nothing is charged now."),
                "follow_up": onboarding_follow_up(
                    customer=name, new_plan=plan["name"], features=plan["features"]
                )
                if direction == "upgrade"
                else None,
            }
        )
    return {
        "customer_id": customer_id,
        "subscription_id": options["subscription_id"],
        "quantity": options["quantity"],
        "current": current,
        "options": out,
        "latest_change": _latest_change(workspace, customer_id, name),
    }


__all__ = ["plan_change_options", "refund_eligibility"]
