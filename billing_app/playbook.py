"""Customer-communication templates: the brief's six playbook scenarios, filled from real data.

A template is text with ``{field}`` placeholders; a ``[[ … ]]`` segment is kept
only when every field inside it has a value (the brief's "[Additional context]"
or "However, I can offer [alternative]" are optional). Rendering never evaluates
anything: placeholders are bare names looked up in the data, values are
formatted here (money with ``money.format_money``, dates spelled out), so a
template edited by an admin cannot reach attributes of the objects behind it.

Filling happens in one place, ``message_fill``: the workspace's own wording when
it can be filled, else the brief's. ``render(scenario, data, workspace=None)``
asks the loader named by the ``BILLING_DESK_PLAYBOOK_LOADER`` setting
(``selectors.playbook_templates``: ``loader(workspace=, scenario=) -> str | None``)
for that wording first; a missing or broken override falls back to the brief's.
The panel's playbook endpoint (``selectors.playbook``) and the message after an
action (``customer_message_for``) both fill through it.
"""

from __future__ import annotations

import logging
import re
import string
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.utils.module_loading import import_string

from .money import Money
from .vocabulary import decline

if TYPE_CHECKING:
    from .models import BillingAction, MirrorPrice, Workspace

log = logging.getLogger(__name__)


class Scenario(StrEnum):
    CHARGED_TWICE = "charged_twice"
    PAYMENT_FAILED = "payment_failed"
    PLAN_CHANGE = "plan_change"
    REFUND_APPROVED = "refund_approved"
    REFUND_DENIED = "refund_denied"
    OVERCHARGE = "overcharge"
    TAX_INVOICE = "tax_invoice"


@dataclass(frozen=True)
class Template:
    scenario: Scenario
    title: str
    text: str


# The brief's wording (playbook, "Customer communication"), placeholders named.
TEMPLATES: dict[Scenario, Template] = {
    t.scenario: t
    for t in (
        Template(
            Scenario.CHARGED_TWICE,
            'Scenario 1: "I was charged twice"',
            "We found a duplicate charge of {amount}. We've issued an immediate refund. "
            "It will appear on your statement within 5-7 business days.",
        ),
        Template(
            Scenario.PAYMENT_FAILED,
            'Scenario 2: "My payment failed"',
            "Your payment of {amount} failed due to {reason}. Please update your payment "
            "method using this link: {link}.[[ Your account will remain active for {days} "
            "days while you update.]]",
        ),
        Template(
            Scenario.PLAN_CHANGE,
            'Scenario 3: "I want to change my plan"',
            "Your plan has been updated from {old_plan} to {new_plan}. Your new {interval} "
            "charge is {amount} (effective {date}).[[ Here's what's included: {features}]]",
        ),
        Template(
            Scenario.REFUND_APPROVED,
            'Scenario 4: "I want a refund" (approved)',
            "We've processed your refund of {amount}. The credit will appear within 5-7 "
            "business days.[[ {context}]]",
        ),
        Template(
            Scenario.REFUND_DENIED,
            'Scenario 4: "I want a refund" (denied)',
            "Based on our refund policy, this charge isn't eligible for refund because "
            "{reason}.[[ However, I can offer {alternative}.]]",
        ),
        Template(
            Scenario.OVERCHARGE,
            'Scenario 5: "I was overcharged"',
            "I reviewed your invoice. The {amount} charge includes: {breakdown}. This is "
            "because {explanation}. Your next invoice will be {next_amount}.",
        ),
        Template(
            Scenario.TAX_INVOICE,
            'Scenario 6: "I need a tax invoice"',
            "I've generated your tax invoice for {period}. You can download it here: {link}. "
            "If you need it in a specific format, let me know.",
        ),
    )
}

_OPTIONAL = re.compile(r"\[\[(.*?)\]\]", re.DOTALL)
_NAME = re.compile(r"^[a-z_][a-z0-9_]*$")
INTERVAL_WORDS = {"day": "daily", "week": "weekly", "month": "monthly", "year": "yearly"}


class TemplateError(ValueError):
    """A template uses something other than bare ``{name}`` placeholders, or lacks data."""


def format_value(value: Any) -> str:
    """How a value reads in a customer message."""
    if value is None:
        return ""
    if isinstance(value, Money):
        return str(value)
    if isinstance(value, datetime):
        return f"{value:%B} {value.day}, {value.year}"
    if isinstance(value, date):
        return f"{value:%B} {value.day}, {value.year}"
    if isinstance(value, list | tuple):
        return ", ".join(format_value(v) for v in value if format_value(v))
    return str(value).strip()


def _fields(text: str) -> list[str]:
    names = []
    for _literal, name, spec, conversion in string.Formatter().parse(text):
        if name is None:
            continue
        if not _NAME.match(name) or spec or conversion:
            raise TemplateError(f"only plain {{name}} placeholders are allowed, not {{{name}}}")
        names.append(name)
    return names


def _substitute(text: str, values: Mapping[str, str]) -> str:
    out = []
    for literal, name, _spec, _conversion in string.Formatter().parse(text):
        out.append(literal)
        if name is not None:
            out.append(values[name])
    return "".join(out)


def fill(text: str, data: Mapping[str, Any]) -> str:
    """Fill ``text`` from ``data``: optional ``[[…]]`` segments drop out when a field is empty."""
    values = {key: format_value(value) for key, value in data.items()}

    def optional(match: re.Match[str]) -> str:
        inner = match.group(1)
        names = _fields(inner)
        return _substitute(inner, values) if all(values.get(n) for n in names) else ""

    text = _OPTIONAL.sub(optional, text)
    missing = [name for name in _fields(text) if not values.get(name)]
    if missing:
        raise TemplateError(f"missing data for: {', '.join(sorted(set(missing)))}")
    return _substitute(text, values)


@dataclass(frozen=True)
class Message:
    """A filled message, and the wording it was filled from."""

    text: str
    source: str  # "workspace" (an admin's wording) or "default" (the brief's)
    template: str


def message_fill(
    scenario: Scenario | str, data: Mapping[str, Any], *, override: str | None = None
) -> Message:
    """The one filling rule: the workspace's wording when it can be filled from ``data``,
    else the brief's.

    Raises ``TemplateError`` when the data lacks a required field of the brief's
    template; an override that cannot be filled falls back to the brief's wording.
    """
    scenario = Scenario(scenario)
    if override:
        try:
            return Message(fill(override, data), "workspace", override)
        except TemplateError:
            log.warning(
                "workspace playbook template for %s cannot be filled; using default", scenario
            )
    default = TEMPLATES[scenario].text
    return Message(fill(default, data), "default", default)


def playbook_override(scenario: Scenario | str, workspace: Workspace | None) -> str | None:
    """The workspace's own wording, from the loader ``BILLING_DESK_PLAYBOOK_LOADER`` names.

    A missing or broken loader is no wording (the brief's applies): it must not
    block an action's message.
    """
    path = getattr(settings, "BILLING_DESK_PLAYBOOK_LOADER", "")
    if not path or workspace is None:
        return None
    try:
        loader: Callable[..., str | None] = import_string(path)
        return loader(workspace=workspace, scenario=Scenario(scenario))
    except Exception:
        log.exception("playbook override loader failed for %s", scenario)
        return None


def render(
    scenario: Scenario | str, data: Mapping[str, Any], workspace: Workspace | None = None
) -> str:
    """The customer message for ``scenario`` filled from ``data`` (the workspace's wording first)."""
    return message_fill(scenario, data, override=playbook_override(scenario, workspace)).text


# --- from an action to its message -----------------------------------------------------------


def decline_words(code: str, message: str = "") -> str:
    """A decline code in plain words for a customer (``vocabulary.decline``)."""
    return decline(decline_code=code, message=message).customer_text


def _money(amount: Any, currency: str) -> Money | None:
    if amount is None or not currency:
        return None
    return Money(int(amount), currency)


def invoice_period(invoice: Any, lines: list[Any]) -> str:
    """The service period of an invoice: its lines' span (Stripe's invoice period is the previous one)."""
    starts = [line.period_start for line in lines if line.period_start]
    ends = [line.period_end for line in lines if line.period_end]
    start = min(starts) if starts else invoice.period_start
    end = max(ends) if ends else invoice.period_end
    if start is None:
        return invoice.number or invoice.stripe_id
    if end is None or end <= start:
        return f"{start:%B} {start.year}"
    next_month = (start.replace(day=1) + timedelta(days=32)).replace(day=1)
    if start.day == 1 and end.date() in {
        next_month.date(),
        (next_month - timedelta(days=1)).date(),
    }:
        return f"{start:%B} {start.year}"  # a calendar month: "January 2026"
    return f"{format_value(start)} – {format_value(end)}"


def _failed_payment(action: BillingAction) -> dict[str, Any] | None:
    """The customer's latest unpaid failed payment, from the mirror."""
    from django.db.models import Q

    from .models import MirrorCharge, MirrorInvoice

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
        else "a decline by your bank"
    )
    return {
        "amount": amount,
        "reason": reason,
        "hosted_invoice_url": invoice.hosted_invoice_url if invoice is not None else "",
    }


def plan_facts(workspace_id: int, price_id: str) -> tuple[str, str, list[str], MirrorPrice | None]:
    """(plan name, interval word, marketing features, the price) of a price, from the mirror."""
    from .models import MirrorPrice, MirrorProduct

    price = MirrorPrice.objects.filter(workspace_id=workspace_id, stripe_id=price_id).first()
    if price is None:
        return price_id, "monthly", [], None
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


def interval_word(interval: str, count: int = 1) -> str:
    """``month`` → ``monthly`` (the brief's "Your new monthly charge"); ``month`` × 3 → ``quarterly``."""
    if (count or 1) == 1:
        return INTERVAL_WORDS.get(interval, "monthly")
    if interval == "month" and count == 3:
        return "quarterly"
    if interval == "month" and count == 6:
        return "half-yearly"
    return "recurring"


def _result_money(result: Mapping[str, Any], key: str) -> Money | None:
    value = result.get(key)
    if isinstance(value, Mapping) and "amount" in value and "currency" in value:
        return Money(int(value["amount"]), str(value["currency"]))
    return None


def scenario_data_for(*, action: BillingAction) -> tuple[Scenario, dict[str, Any]] | None:
    """Which scenario an action's outcome answers, with the data to fill it; None if none does."""
    from .catalog import ActionKind
    from .models import BillingAction, MirrorInvoice, MirrorInvoiceLine

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
        reason = (approval.comment if approval else "") or action.decision_reason
        return Scenario.REFUND_DENIED, {"reason": reason.rstrip(".")}
    if kind == ActionKind.CHANGE_PLAN and succeeded:
        old_name, _, _, _ = plan_facts(action.workspace_id, result.get("previous_price_id", ""))
        new_name, interval, features, _ = plan_facts(action.workspace_id, result["new_price_id"])
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


def customer_message_for(*, action: BillingAction) -> str:
    """The message to send the customer about this action's outcome ("" when no scenario fits)."""
    found = scenario_data_for(action=action)
    if found is None:
        return ""
    scenario, data = found
    try:
        return render(scenario, data, workspace=action.workspace)
    except TemplateError:
        log.warning("no customer message for action %s: %s data incomplete", action.pk, scenario)
        return ""
