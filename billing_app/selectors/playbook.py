"""The playbook message for a customer, filled from their real billing data.

``playbook_message`` answers ``GET customers/{id}/playbook/{scenario}/``: the
brief's customer communication for one of its six scenarios (the refund one
in its approved and denied variants), in the workspace's own wording when an
admin edited it, filled with this customer's figures:

* ``charged_twice`` — the duplicate pair's refundable amount (or, once refunded,
  what the ``refund_duplicate_charge`` action refunded);
* ``payment_failed`` — the open failure's amount due, its reason in the
  customer's words, the payment link the agent sent (else the invoice's hosted
  page) and, when the grace period was extended, the days the account stays
  active;
* ``plan_change`` — the plan change the agent made (or the downgrade scheduled
  for the next cycle): both plan names, the new recurring charge, the date and
  the new plan's features;
* ``refund_approved`` / ``refund_denied`` — the refund made, or why a charge
  cannot be refunded (the eligibility rule it fails, or the approver's reason);
* ``overcharge`` — the invoice breakdown (``selectors.breakdown``);
* ``tax_invoice`` — the invoice's service period and its PDF link.

A scenario without the data it needs is refused with a 422 and a code saying
what is missing, never a message with blanks.

The message (its data's words, dates and money too) is in the customer's language
(``action_messages.customer_language``: their Stripe ``preferred_locales``, else the
agent's); errors are in the agent's (written when the answer is).
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any

from django.utils import translation
from django.utils.translation import gettext_lazy

from ..catalog import ActionKind
from ..clock import billing_now
from ..errors import NotFound, PreconditionFailed, message_later
from ..models import (
    BillingAction,
    MirrorCharge,
    MirrorCustomer,
    MirrorInvoice,
    MirrorInvoiceLine,
    MirrorRefund,
    MirrorSubscription,
    PaymentFailure,
    Workspace,
)
from ..money import Money
from ..playbook import (
    TEMPLATES,
    Scenario,
    TemplateError,
    decline_words,
    format_value,
    invoice_period,
    message_fill,
    playbook_override,
)
from .action_messages import plan_facts, preferred_language, scenario_data_for
from .breakdown import invoice_breakdown
from .duplicates import customer_duplicates

Obj = dict[str, Any]

# URL names → the playbook's scenarios (the brief's "refund" has two messages).
ALIASES = {
    "overcharged": Scenario.OVERCHARGE.value,
    "duplicate_charge": Scenario.CHARGED_TWICE.value,
}
LINK_KINDS = (ActionKind.GENERATE_PAYMENT_LINK.value, ActionKind.UPDATE_PAYMENT_METHOD.value)


def playbook_scenario_parse(*, scenario: str, variant: str = "") -> Scenario:
    """``refund`` + variant, an alias, or a ``playbook.Scenario`` value; 404 ``unknown_scenario``."""
    name = ALIASES.get(scenario, scenario)
    if name == "refund":
        name = f"refund_{variant or 'approved'}"
    try:
        return Scenario(name)
    except ValueError:
        raise NotFound(
            message_later(gettext_lazy("No playbook scenario %(name)s."), name=repr(scenario)),
            code="unknown_scenario",
            details={"scenarios": [s.value for s in Scenario] + ["refund"]},
        ) from None


def _money(value: Any) -> Money | None:
    if isinstance(value, dict) and "amount" in value and "currency" in value:
        return Money(int(value["amount"]), str(value["currency"]))
    return None


def _missing(code: str, message: Any) -> PreconditionFailed:
    return PreconditionFailed(message, code=code)


def _latest_action(
    workspace: Workspace, customer_id: str, kinds: tuple[str, ...], status: str, **filters: Any
) -> BillingAction | None:
    return (
        BillingAction.objects.filter(
            workspace=workspace, customer_id=customer_id, kind__in=kinds, status=status, **filters
        )
        .select_related("workspace", "approval")
        .order_by("-created_at")
        .first()
    )


# --- one builder per scenario: (data, related ids) -------------------------------------------


def _charged_twice(
    workspace: Workspace, customer_id: str, now: datetime, params: Obj
) -> tuple[Obj, Obj]:
    pairs = customer_duplicates(workspace=workspace, customer_id=customer_id, now=now)["pairs"]
    wanted = params.get("charge_id")
    pair = next((p for p in pairs if not wanted or wanted in p["charge_ids"]), None)
    if pair is not None:
        return {"amount": _money(pair["refundable"])}, {"charge_ids": pair["charge_ids"]}
    action = _latest_action(
        workspace,
        customer_id,
        (ActionKind.REFUND_DUPLICATE_CHARGE.value,),
        BillingAction.Status.SUCCEEDED,
    )
    if action is not None:
        return {"amount": _money((action.result or {}).get("amount"))}, {
            "action_id": str(action.pk)
        }
    raise _missing(
        "no_duplicate_charge", gettext_lazy("No duplicate charge was found for this customer.")
    )


def _grace_days(workspace: Workspace, subscription_id: str, now: datetime) -> int | None:
    """Days left of a grace period: ``grace_period_until`` (unix seconds) in the subscription's
    metadata, written the same way by both providers."""
    if not subscription_id:
        return None
    sub = MirrorSubscription.objects.filter(workspace=workspace, stripe_id=subscription_id).first()
    meta = (sub.metadata or {}) if sub else {}
    end: datetime | None = None
    try:
        if meta.get("grace_period_until"):
            end = datetime.fromtimestamp(int(meta["grace_period_until"]), tz=UTC)
    except (TypeError, ValueError):
        return None
    if end is None:
        return None
    seconds = (end - now).total_seconds()
    return math.ceil(seconds / 86400) if seconds > 0 else None


def _link_action(
    workspace: Workspace, customer_id: str, invoice: MirrorInvoice | None, since: datetime | None
) -> BillingAction | None:
    """The payment link the agent sent for this failure: for its invoice, or since it was seen."""
    for action in BillingAction.objects.filter(
        workspace=workspace,
        customer_id=customer_id,
        kind__in=LINK_KINDS,
        status=BillingAction.Status.SUCCEEDED,
    ).order_by("-created_at")[:20]:
        if not (action.result or {}).get("url"):
            continue
        target = (action.params or {}).get("invoice_id")
        if invoice is not None and target == invoice.stripe_id:
            return action
        if not target and (since is None or action.created_at >= since):
            return action
    return None


def _payment_failed(
    workspace: Workspace, customer_id: str, now: datetime, params: Obj
) -> tuple[Obj, Obj]:
    failures = PaymentFailure.objects.filter(
        workspace=workspace, customer_id=customer_id, recovered_at__isnull=True
    )
    if params.get("invoice_id"):
        failures = failures.filter(invoice_id=params["invoice_id"])
    failure = failures.order_by("-failed_at", "-id").first()
    invoice: MirrorInvoice | None = None
    charge: MirrorCharge | None = None
    if failure is not None:
        invoice = MirrorInvoice.objects.filter(
            workspace=workspace, stripe_id=failure.invoice_id
        ).first()
        code, message = failure.decline_code or failure.failure_code, failure.failure_message
        amount = Money(failure.amount, failure.currency)
        subscription_id = failure.subscription_id
    else:  # nothing recorded (yet): the mirror's open invoice with failed attempts
        invoices = MirrorInvoice.objects.filter(
            workspace=workspace, customer_id=customer_id, status="open", attempt_count__gt=0
        )
        if params.get("invoice_id"):
            invoices = invoices.filter(stripe_id=params["invoice_id"])
        invoice = invoices.order_by("-created").first()
        if invoice is None:
            raise _missing(
                "no_payment_failure", gettext_lazy("This customer has no open payment failure.")
            )
        charge = (
            MirrorCharge.objects.filter(
                workspace=workspace,
                customer_id=customer_id,
                status="failed",
                payment_intent_id=invoice.payment_intent_id,
            )
            .order_by("-created")
            .first()
            if invoice.payment_intent_id
            else None
        )
        code = (charge.decline_code or charge.failure_code) if charge else ""
        message = charge.failure_message if charge else ""
        amount = Money(invoice.amount_remaining, invoice.currency)
        subscription_id = invoice.subscription_id
    if invoice is not None and invoice.status == "open":
        amount = Money(invoice.amount_remaining, invoice.currency)
    link_action = _link_action(
        workspace, customer_id, invoice, failure.created_at if failure is not None else None
    )
    link = ((link_action.result or {}).get("url") if link_action else "") or (
        invoice.hosted_invoice_url if invoice else ""
    )
    if not link:
        raise _missing(
            "no_payment_link",
            gettext_lazy(
                "There is no payment link yet: generate one (or a payment-method update link) first."
            ),
        )
    return (
        {
            "amount": amount,
            "reason": decline_words(code, message),
            "link": link,
            "days": _grace_days(workspace, subscription_id, now),
        },
        {
            "failure_id": failure.pk if failure else None,
            "invoice_id": invoice.stripe_id if invoice else None,
            "link_action_id": str(link_action.pk) if link_action else None,
        },
    )


def _plan_change(
    workspace: Workspace, customer_id: str, now: datetime, params: Obj
) -> tuple[Obj, Obj]:
    action = _latest_action(
        workspace, customer_id, (ActionKind.CHANGE_PLAN.value,), BillingAction.Status.SUCCEEDED
    )
    if action is not None:
        found = scenario_data_for(action=action)
        if found is not None:
            return found[1], {"action_id": str(action.pk)}
    for sub in MirrorSubscription.objects.filter(
        workspace=workspace, customer_id=customer_id, status__in=("active", "trialing", "past_due")
    ).order_by("-created"):
        meta = sub.metadata or {}
        if not meta.get("pending_price_id"):
            continue
        item = next(
            (
                i
                for i in (sub.data or {}).get("items", {}).get("data", [])
                if i.get("id") == meta.get("pending_item_id")
            ),
            None,
        )
        old_price = ((item or {}).get("price") or {}).get("id", "")
        old_name, _, _, _ = plan_facts(workspace.pk, old_price)
        new_name, interval, features, price = plan_facts(workspace.pk, meta["pending_price_id"])
        quantity = int((item or {}).get("quantity") or 1)
        when = datetime.fromtimestamp(int(meta.get("pending_change_at") or 0), tz=now.tzinfo)
        return (
            {
                "old_plan": old_name,
                "new_plan": new_name,
                "interval": interval,
                "amount": Money(int(price.unit_amount or 0) * quantity, price.currency)
                if price is not None
                else None,
                "date": when,
                "features": features,
            },
            {"subscription_id": sub.stripe_id},
        )
    raise _missing(
        "no_plan_change", gettext_lazy("No plan change was made or scheduled for this customer.")
    )


def _refund_denied_reason(workspace: Workspace, charge: MirrorCharge, now: datetime) -> str | None:
    if charge.status != "succeeded":
        return "the payment did not go through, so nothing was charged"
    if charge.disputed:
        return "it is under dispute with your bank, which decides its outcome"
    if charge.amount_refunded >= (charge.amount_captured or charge.amount):
        return "it has already been refunded in full"
    if charge.created and charge.created < now - timedelta(days=workspace.refund_window_days):
        return f"it was made more than {workspace.refund_window_days} days ago"
    return None


def _refund(
    workspace: Workspace, customer_id: str, now: datetime, params: Obj, *, approved: bool
) -> tuple[Obj, Obj]:
    if approved:
        action = _latest_action(
            workspace, customer_id, (ActionKind.ISSUE_REFUND.value,), BillingAction.Status.SUCCEEDED
        )
        if action is not None:
            found = scenario_data_for(action=action)
            if found is not None:
                return found[1], {"action_id": str(action.pk)}
        refund = (
            MirrorRefund.objects.filter(
                workspace=workspace, customer_id=customer_id, status="succeeded"
            )
            .order_by("-created")
            .first()
        )
        if refund is not None:
            return {"amount": Money(refund.amount, refund.currency), "context": ""}, {
                "refund_id": refund.stripe_id
            }
        raise _missing("no_refund", gettext_lazy("No refund was made for this customer."))
    alternative = params.get("alternative", "")
    if params.get("reason"):
        return {"reason": params["reason"].rstrip("."), "alternative": alternative}, {}
    if params.get("charge_id"):
        charge = MirrorCharge.objects.filter(
            workspace=workspace, customer_id=customer_id, stripe_id=params["charge_id"]
        ).first()
        if charge is None:
            raise NotFound(
                message_later(
                    gettext_lazy("No charge %(charge)s for this customer."),
                    charge=params["charge_id"],
                ),
                code="charge_not_found",
            )
        reason = _refund_denied_reason(workspace, charge, now)
        if reason is None:
            raise _missing(
                "refund_eligible",
                gettext_lazy("This charge is eligible for a refund; there is nothing to deny."),
            )
        return {"reason": reason, "alternative": alternative}, {"charge_id": charge.stripe_id}
    action = _latest_action(
        workspace, customer_id, (ActionKind.ISSUE_REFUND.value,), BillingAction.Status.DENIED
    )
    if action is not None:
        found = scenario_data_for(action=action)
        if found is not None:
            return {**found[1], "alternative": alternative}, {"action_id": str(action.pk)}
    raise _missing(
        "no_refund_decision",
        gettext_lazy(
            "Name the charge (charge_id) or the reason: no refund of this customer was denied."
        ),
    )


def _overcharge(
    workspace: Workspace, customer_id: str, now: datetime, params: Obj
) -> tuple[Obj, Obj]:
    invoice_id = params.get("invoice_id")
    if not invoice_id:
        with_proration = MirrorInvoiceLine.objects.filter(
            workspace=workspace, proration=True
        ).values("invoice_id")
        invoices = MirrorInvoice.objects.filter(
            workspace=workspace, customer_id=customer_id, status__in=("paid", "open")
        )
        invoice = (
            invoices.filter(stripe_id__in=with_proration).order_by("-created").first()
            or invoices.order_by("-created").first()
        )
        if invoice is None:
            raise _missing("no_invoice", gettext_lazy("This customer has no finalized invoice."))
        invoice_id = invoice.stripe_id
    breakdown = invoice_breakdown(
        workspace=workspace, customer_id=customer_id, invoice_id=invoice_id
    )
    message = breakdown["message"]
    return (
        {
            "amount": _money(message["amount"]),
            "breakdown": message["breakdown"],
            "explanation": message["explanation"],
            "next_amount": _money(message["next_amount"]),
        },
        {"invoice_id": invoice_id},
    )


def _tax_invoice(
    workspace: Workspace, customer_id: str, now: datetime, params: Obj
) -> tuple[Obj, Obj]:
    invoices = MirrorInvoice.objects.filter(
        workspace=workspace, customer_id=customer_id, status__in=("paid", "open")
    )
    if params.get("invoice_id"):
        invoices = invoices.filter(stripe_id=params["invoice_id"])
    invoice = (  # the latest paid invoice ("paid" sorts after "open"), else the latest open one
        invoices.order_by("-status", "-created").first()
        if not params.get("invoice_id")
        else invoices.first()
    )
    if invoice is None:
        if params.get("invoice_id"):
            raise NotFound(
                message_later(
                    gettext_lazy("No finalized invoice %(invoice)s for this customer."),
                    invoice=params["invoice_id"],
                ),
                code="invoice_not_found",
            )
        raise _missing("no_invoice", gettext_lazy("This customer has no finalized invoice."))
    action = _latest_action(
        workspace,
        customer_id,
        (ActionKind.SEND_TAX_INVOICE.value,),
        BillingAction.Status.SUCCEEDED,
        params__invoice_id=invoice.stripe_id,
    )
    result = (action.result or {}) if action else {}
    lines = list(
        MirrorInvoiceLine.objects.filter(workspace=workspace, invoice_id=invoice.stripe_id)
    )
    link = (
        result.get("invoice_pdf")
        or invoice.invoice_pdf
        or result.get("hosted_invoice_url")
        or invoice.hosted_invoice_url
    )
    if not link:
        raise _missing(
            "no_invoice_link", gettext_lazy("The invoice has no PDF or hosted page yet.")
        )
    return (
        {"period": invoice_period(invoice, lines), "link": link},
        {"invoice_id": invoice.stripe_id, "action_id": str(action.pk) if action else None},
    )


def playbook_message(
    *,
    workspace: Workspace,
    customer_id: str,
    scenario: str,
    variant: str = "",
    params: Obj | None = None,
    now: datetime | None = None,
) -> Obj:
    """The scenario's customer message for this customer, with the data that filled it."""
    params = {k: v for k, v in (params or {}).items() if v}
    chosen = playbook_scenario_parse(scenario=scenario, variant=variant)
    found = (
        MirrorCustomer.objects.filter(workspace=workspace, stripe_id=customer_id)
        .values_list("data", flat=True)
        .first()
    )
    if found is None:
        raise NotFound(
            message_later(gettext_lazy("No such billing customer.")), code="customer_not_found"
        )
    language = preferred_language(
        found.get("preferred_locales") if isinstance(found, dict) else None
    )
    with translation.override(language):
        return _message(workspace, customer_id, chosen, params, now)


def _message(
    workspace: Workspace, customer_id: str, chosen: Scenario, params: Obj, now: datetime | None
) -> Obj:
    """The message in the active language (the customer's)."""
    now = now or billing_now(workspace)
    builders = {
        Scenario.CHARGED_TWICE: _charged_twice,
        Scenario.PAYMENT_FAILED: _payment_failed,
        Scenario.PLAN_CHANGE: _plan_change,
        Scenario.OVERCHARGE: _overcharge,
        Scenario.TAX_INVOICE: _tax_invoice,
    }
    if chosen in (Scenario.REFUND_APPROVED, Scenario.REFUND_DENIED):
        data, related = _refund(
            workspace, customer_id, now, params, approved=chosen == Scenario.REFUND_APPROVED
        )
    else:
        data, related = builders[chosen](workspace, customer_id, now, params)

    try:
        filled = message_fill(chosen, data, override=playbook_override(chosen, workspace))
    except TemplateError as exc:
        raise PreconditionFailed(
            message_later(gettext_lazy("The message cannot be filled: %(error)s."), error=exc),
            code="playbook_data_missing",
        ) from exc
    return {
        "customer_id": customer_id,
        "scenario": chosen.value,
        "variant": chosen.value.removeprefix("refund_")
        if chosen.value.startswith("refund_")
        else "",
        "title": str(TEMPLATES[chosen].title),
        "message": filled.text,
        "source": filled.source,
        "template": filled.template,
        "data": {k: format_value(v) for k, v in data.items() if format_value(v)},
        "related": {k: v for k, v in related.items() if v},
    }


__all__ = ["playbook_message", "playbook_scenario_parse"]
