"""The customer message after an action: which playbook scenario its outcome answers,
and the data to fill it, read from the mirror.

``customer_message_for`` is what the action's note and customer message carry once
it succeeded or was denied (``services.actions.outcomes``, ``services.approvals``);
``scenario_data_for`` and ``plan_facts`` are shared with the panel's playbook
endpoint (``selectors.playbook``). The wording and the filling are the pure
``billing_app.playbook``'s.

A customer message is in the customer's language (``customer_language``): the first
of the customer's Stripe ``preferred_locales`` whose language Billing Desk speaks
(``settings.LANGUAGES``), else the agent's (the request's active language).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from django.db.models import Q
from django.utils import translation
from django.utils.translation import gettext as _

from ..catalog import ActionKind
from ..locales import message_language
from ..models import (
    BillingAction,
    MirrorCharge,
    MirrorCustomer,
    MirrorInvoice,
    MirrorInvoiceLine,
    MirrorPrice,
    MirrorProduct,
)
from ..money import Money
from ..playbook import Scenario, TemplateError, decline_words, interval_word, invoice_period, render

log = logging.getLogger(__name__)


def _money(amount: Any, currency: str) -> Money | None:
    if amount is None or not currency:
        return None
    return Money(int(amount), currency)


def _failed_payment(action: BillingAction) -> dict[str, Any] | None:
    """The customer's latest unpaid failed payment, from the mirror."""
    workspace_id, customer_id = action.workspace_id, action.customer_id
    invoice_id = action.params.get("invoice_id") or ""
    invoices = MirrorInvoice.objects.filter(
        workspace_id=workspace_id, customer_id=customer_id, status="open"
    )
    invoice = (
        invoices.filter(stripe_id=invoice_id).first()
        if invoice_id
        else invoices.filter(attempt_count__gt=0).order_by("-created").first()
    )
    charges = MirrorCharge.objects.filter(
        workspace_id=workspace_id, customer_id=customer_id, status="failed"
    ).order_by("-created")
    if invoice is not None:
        # Charges name their invoice through its payment intent (charge.invoice is gone).
        intent = invoice.payment_intent_id
        by_intent = Q(payment_intent_id=intent) if intent else Q(pk__in=[])
        charges = charges.filter(Q(invoice_id=invoice.stripe_id) | by_intent)
    charge = charges.first()
    if invoice is None and charge is None:
        return None
    if invoice is None and charge is not None:
        later_success = MirrorCharge.objects.filter(
            workspace_id=workspace_id,
            customer_id=customer_id,
            status="succeeded",
            created__gt=charge.created,
        ).exists()
        if later_success:
            return None
    amount = (
        _money(invoice.amount_remaining, invoice.currency)
        if invoice is not None
        else _money(charge.amount, charge.currency)
        if charge is not None
        else None
    )
    reason = (
        decline_words(charge.decline_code or charge.failure_code, charge.failure_message)
        if charge is not None
        else _("a decline by your bank")
    )
    return {
        "amount": amount,
        "reason": reason,
        "hosted_invoice_url": invoice.hosted_invoice_url if invoice is not None else "",
    }


def plan_facts(workspace_id: int, price_id: str) -> tuple[str, str, list[str], MirrorPrice | None]:
    """(plan name, interval word, marketing features, the price) of a price, from the mirror."""
    price = MirrorPrice.objects.filter(workspace_id=workspace_id, stripe_id=price_id).first()
    if price is None:
        return price_id, interval_word("month"), [], None
    product = MirrorProduct.objects.filter(
        workspace_id=workspace_id, stripe_id=price.product_id
    ).first()
    name = (product.name if product else "") or price.nickname or price_id
    features = [
        f.get("name", "")
        for f in ((product.data.get("marketing_features") or []) if product else [])
        if isinstance(f, dict) and f.get("name")
    ]
    interval = interval_word(price.recurring_interval, price.recurring_interval_count)
    return name, interval, features, price


def _result_money(result: Mapping[str, Any], key: str) -> Money | None:
    value = result.get(key)
    if isinstance(value, Mapping) and "amount" in value and "currency" in value:
        return Money(int(value["amount"]), str(value["currency"]))
    return None


def reason_clause(reason: str) -> str:
    """A reason as the end of "…isn't eligible for refund because {reason}.".

    An approver writes a sentence ("Outside the 30-day refund window."): its capital
    and full stop go, as does a "Because" they began with; an acronym or "I" keeps its
    capital ("VAT id missing").
    """
    text = " ".join((reason or "").split()).rstrip(" .!")
    lowered = text.lower()
    if lowered.startswith("because "):
        text = text[len("because ") :].lstrip()
    first = text.split(" ", 1)[0]
    if len(first) > 1 and first[0].isupper() and first[1:].islower():
        text = text[0].lower() + text[1:]
    return text


def scenario_data_for(*, action: BillingAction) -> tuple[Scenario, dict[str, Any]] | None:
    """Which scenario an action's outcome answers, with the data to fill it; None if none does."""
    kind, status, result, params = action.kind, action.status, action.result or {}, action.params
    succeeded = status == BillingAction.Status.SUCCEEDED
    if kind == ActionKind.REFUND_DUPLICATE_CHARGE and succeeded:
        return Scenario.CHARGED_TWICE, {"amount": _result_money(result, "amount")}
    if kind == ActionKind.ISSUE_REFUND and succeeded:
        return Scenario.REFUND_APPROVED, {
            "amount": _result_money(result, "amount"),
            "context": params.get("comment", ""),
        }
    if kind == ActionKind.ISSUE_REFUND and status == BillingAction.Status.DENIED:
        approval = getattr(action, "approval", None)
        reason = (approval.comment if approval else "") or action.reason_text
        return Scenario.REFUND_DENIED, {"reason": reason_clause(reason)}
    if kind == ActionKind.CHANGE_PLAN and succeeded:
        old_name = plan_facts(action.workspace_id, result.get("previous_price_id", ""))[0]
        new_name, interval, features, _price = plan_facts(
            action.workspace_id, result["new_price_id"]
        )
        preview = result.get("preview") or {}
        return Scenario.PLAN_CHANGE, {
            "old_plan": old_name,
            "new_plan": new_name,
            "interval": interval,
            "amount": _result_money(preview, "new_recurring_amount"),
            "date": datetime.fromisoformat(result["effective_date"]),
            "features": features,
        }
    if kind == ActionKind.SEND_TAX_INVOICE and succeeded:
        invoice = MirrorInvoice.objects.filter(
            workspace_id=action.workspace_id, stripe_id=params["invoice_id"]
        ).first()
        lines = list(
            MirrorInvoiceLine.objects.filter(
                workspace_id=action.workspace_id, invoice_id=params["invoice_id"]
            )
        )
        period = invoice_period(invoice, lines) if invoice else params["invoice_id"]
        link = result.get("invoice_pdf") or result.get("hosted_invoice_url", "")
        return Scenario.TAX_INVOICE, {"period": period, "link": link}
    if succeeded and kind in {
        ActionKind.GENERATE_PAYMENT_LINK,
        ActionKind.UPDATE_PAYMENT_METHOD,
        ActionKind.EXTEND_GRACE_PERIOD,
    }:
        failure = _failed_payment(action)
        if failure is None:
            return None
        link = result.get("url") or failure["hosted_invoice_url"]
        days = params.get("days") if kind == ActionKind.EXTEND_GRACE_PERIOD else None
        return Scenario.PAYMENT_FAILED, {
            "amount": failure["amount"],
            "reason": failure["reason"],
            "link": link,
            "days": days,
        }
    return None


def preferred_language(preferred_locales: Any, fallback: str = "") -> str:
    """The first of a customer's Stripe ``preferred_locales`` we speak, else ``fallback``
    (by default the active language: the agent's), else ``settings.LANGUAGE_CODE``."""
    return message_language(preferred_locales=preferred_locales, agent_language=fallback or None)


def customer_language(
    *, workspace_id: int, customer_id: str, customer: MirrorCustomer | None = None
) -> str:
    """The language to write to this customer in: their Stripe ``preferred_locales`` (kept
    in the mirror's copy of the customer object), else the agent's.

    ``customer`` is the mirror row when the caller has it (no second read)."""
    if customer is None:
        data = (
            MirrorCustomer.objects.filter(workspace_id=workspace_id, stripe_id=customer_id)
            .values_list("data", flat=True)
            .first()
        )
    else:
        data = customer.data
    locales = data.get("preferred_locales") if isinstance(data, Mapping) else None
    return preferred_language(locales)


def customer_message_for(*, action: BillingAction, customer: MirrorCustomer | None = None) -> str:
    """The message to send the customer about this action's outcome ("" when no scenario
    fits), in the customer's language (``customer_language``; ``customer`` is the mirror
    row when the caller has it)."""
    if not _has_scenario(action):
        return ""
    language = customer_language(
        workspace_id=action.workspace_id, customer_id=action.customer_id, customer=customer
    )
    with translation.override(language):
        found = scenario_data_for(action=action)
        if found is None:
            return ""
        scenario, data = found
        try:
            return render(scenario, data, workspace=action.workspace)
        except TemplateError:
            log.warning(
                "no customer message for action %s: %s data incomplete", action.pk, scenario
            )
            return ""


def _has_scenario(action: BillingAction) -> bool:
    """Whether some scenario may answer this outcome (``scenario_data_for``'s kinds), read
    before the customer's language is: an outcome no message follows reads nothing."""
    status, kind = action.status, action.kind
    if status == BillingAction.Status.DENIED:
        return kind == ActionKind.ISSUE_REFUND
    return status == BillingAction.Status.SUCCEEDED and kind in {
        ActionKind.REFUND_DUPLICATE_CHARGE,
        ActionKind.ISSUE_REFUND,
        ActionKind.CHANGE_PLAN,
        ActionKind.SEND_TAX_INVOICE,
        ActionKind.GENERATE_PAYMENT_LINK,
        ActionKind.UPDATE_PAYMENT_METHOD,
        ActionKind.EXTEND_GRACE_PERIOD,
    }


__all__ = [
    "customer_language",
    "customer_message_for",
    "plan_facts",
    "preferred_language",
    "reason_clause",
    "scenario_data_for",
]
