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
action (``selectors.action_messages.customer_message_for``) both fill through it.

Pure: texts and filling only. Whatever reads the database (the data an action's
outcome fills a message with) is in ``selectors``.
"""

from __future__ import annotations

import logging
import re
import string
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Any

from babel.dates import format_date
from django.conf import settings
from django.utils.module_loading import import_string
from django.utils.translation import gettext_lazy

from .action_words import date_words, language
from .money import Money
from .vocabulary import decline

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
    """A scenario's wording; ``title`` and ``text`` are lazy: read them (``str``) in the
    language the message is for (``translation.override``)."""

    scenario: Scenario
    title: Any
    text: Any


# The brief's wording (playbook, "Customer communication"), placeholders named.
TEMPLATES: dict[Scenario, Template] = {
    t.scenario: t
    for t in (
        Template(
            Scenario.CHARGED_TWICE,
            gettext_lazy('Scenario 1: "I was charged twice"'),
            gettext_lazy(
                "We found a duplicate charge of {amount}. We've issued an immediate refund. "
                "It will appear on your statement within 5-7 business days."
            ),
        ),
        Template(
            Scenario.PAYMENT_FAILED,
            gettext_lazy('Scenario 2: "My payment failed"'),
            gettext_lazy(
                "Your payment of {amount} failed due to {reason}. Please update your payment "
                "method using this link: {link}.[[ Your account will remain active for {days} "
                "days while you update.]]"
            ),
        ),
        Template(
            Scenario.PLAN_CHANGE,
            gettext_lazy('Scenario 3: "I want to change my plan"'),
            gettext_lazy(
                "Your plan has been updated from {old_plan} to {new_plan}. Your new {interval} "
                "charge is {amount} (effective {date}).[[ Here's what's included: {features}]]"
            ),
        ),
        Template(
            Scenario.REFUND_APPROVED,
            gettext_lazy('Scenario 4: "I want a refund" (approved)'),
            gettext_lazy(
                "We've processed your refund of {amount}. The credit will appear within 5-7 "
                "business days.[[ {context}]]"
            ),
        ),
        Template(
            Scenario.REFUND_DENIED,
            gettext_lazy('Scenario 4: "I want a refund" (denied)'),
            gettext_lazy(
                "Based on our refund policy, this charge isn't eligible for refund because "
                "{reason}.[[ However, I can offer {alternative}.]]"
            ),
        ),
        Template(
            Scenario.OVERCHARGE,
            gettext_lazy('Scenario 5: "I was overcharged"'),
            gettext_lazy(
                "I reviewed your invoice. The {amount} charge includes: {breakdown}. This is "
                "because {explanation}. Your next invoice will be {next_amount}."
            ),
        ),
        Template(
            Scenario.TAX_INVOICE,
            gettext_lazy('Scenario 6: "I need a tax invoice"'),
            gettext_lazy(
                "I've generated your tax invoice for {period}. You can download it here: {link}. "
                "If you need it in a specific format, let me know."
            ),
        ),
    )
}

_OPTIONAL = re.compile(r"\[\[(.*?)\]\]", re.DOTALL)
_NAME = re.compile(r"^[a-z_][a-z0-9_]*$")
INTERVAL_WORDS = {
    "day": gettext_lazy("daily"),
    "week": gettext_lazy("weekly"),
    "month": gettext_lazy("monthly"),
    "year": gettext_lazy("yearly"),
}


class TemplateError(ValueError):
    """A template uses something other than bare ``{name}`` placeholders, or lacks data."""


def format_value(value: Any) -> str:
    """How a value reads in a customer message."""
    if value is None:
        return ""
    if isinstance(value, Money):
        return str(value)
    if isinstance(value, date):  # a datetime too
        return date_words(value)
    if isinstance(value, list | tuple):
        return ", ".join(format_value(v) for v in value if format_value(v))
    return str(value).strip()


def _parsed(text: str) -> list[tuple[str, str | None]]:
    """The template's literal runs and placeholder names; a stray brace is a ``TemplateError``."""
    try:
        parts = list(string.Formatter().parse(text))
    except ValueError as exc:
        raise TemplateError(f"unbalanced braces: {exc}") from None
    out: list[tuple[str, str | None]] = []
    for literal, name, spec, conversion in parts:
        if name is not None and (not _NAME.match(name) or spec or conversion):
            raise TemplateError(f"only plain {{name}} placeholders are allowed, not {{{name}}}")
        out.append((literal, name))
    return out


def _fields(text: str) -> list[str]:
    return [name for _literal, name in _parsed(text) if name is not None]


def _substitute(text: str, values: Mapping[str, str]) -> str:
    return "".join(
        literal + (values[name] if name is not None else "") for literal, name in _parsed(text)
    )


def fill(text: str, data: Mapping[str, Any]) -> str:
    """Fill ``text`` from ``data``: optional ``[[…]]`` segments drop out when a field is empty.

    One pass over the template: a value is never read as template text, so braces or
    ``[[`` in an approver's comment or a customer's name come out as written.
    """
    values = {key: format_value(value) for key, value in data.items()}
    out: list[str] = []
    missing: list[str] = []

    def required(part: str) -> None:
        missing.extend(name for name in _fields(part) if not values.get(name))
        if not missing:
            out.append(_substitute(part, values))

    pos = 0
    for match in _OPTIONAL.finditer(text):
        required(text[pos : match.start()])
        inner = match.group(1)
        if all(values.get(n) for n in _fields(inner)):
            out.append(_substitute(inner, values))
        pos = match.end()
    required(text[pos:])
    if missing:
        raise TemplateError(f"missing data for: {', '.join(sorted(set(missing)))}")
    return "".join(out)


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
    default = str(TEMPLATES[scenario].text)
    return Message(fill(default, data), "default", default)


def playbook_override(scenario: Scenario | str, workspace: object | None) -> str | None:
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
    scenario: Scenario | str, data: Mapping[str, Any], workspace: object | None = None
) -> str:
    """The customer message for ``scenario`` filled from ``data`` (the workspace's wording first)."""
    return message_fill(scenario, data, override=playbook_override(scenario, workspace)).text


# --- the follow-up after an upgrade (the brief's scenario 3: "Schedule onboarding call for new
# features (if upgrade)") ------------------------------------------------------------------------

ONBOARDING_MESSAGE = gettext_lazy(
    "Now that you're on {new_plan}, would a short onboarding call help your team get the most "
    "out of it?[[ We can walk you through {features}.]] Reply with a few times that suit you "
    "and we'll send an invite."
)
ONBOARDING_NOTE = gettext_lazy(
    "Follow-up: schedule an onboarding call with {customer} for the {new_plan} features"
    "[[ ({features})]]."
)


def onboarding_follow_up(*, customer: str, new_plan: str, features: list[str]) -> dict[str, str]:
    """After an upgrade: the message proposing an onboarding call, and the note for the team."""
    data = {"customer": customer, "new_plan": new_plan, "features": features}
    return {
        "message": fill(str(ONBOARDING_MESSAGE), data),
        "note": fill(str(ONBOARDING_NOTE), data),
    }


# --- words and periods the messages share ----------------------------------------------------


def decline_words(code: str, message: str = "") -> str:
    """A decline code in plain words for a customer (``vocabulary.decline``)."""
    return decline(decline_code=code, message=message).customer_text


def invoice_period(invoice: Any, lines: list[Any]) -> str:
    """The service period of an invoice: its lines' span (Stripe's invoice period is the previous one)."""
    starts = [line.period_start for line in lines if line.period_start]
    ends = [line.period_end for line in lines if line.period_end]
    start = min(starts) if starts else invoice.period_start
    end = max(ends) if ends else invoice.period_end
    if start is None:
        return invoice.number or invoice.stripe_id
    if end is None or end <= start:
        return _month_year(start)
    next_month = (start.replace(day=1) + timedelta(days=32)).replace(day=1)
    if start.day == 1 and end.date() in {
        next_month.date(),
        (next_month - timedelta(days=1)).date(),
    }:
        return _month_year(start)  # a calendar month: "January 2026"
    return f"{format_value(start)} – {format_value(end)}"


def _month_year(moment: datetime) -> str:
    """``January 2026`` (``Januar 2026`` in German)."""
    if language() != "en":
        return format_date(moment.date(), format="LLLL y", locale=language())
    return f"{moment:%B} {moment.year}"


def interval_word(interval: str, count: int = 1) -> str:
    """``month`` → ``monthly`` (the brief's "Your new monthly charge"); ``month`` × 3 → ``quarterly``."""
    if (count or 1) == 1:
        return str(INTERVAL_WORDS.get(interval, INTERVAL_WORDS["month"]))
    if interval == "month" and count == 3:
        return str(gettext_lazy("quarterly"))
    if interval == "month" and count == 6:
        return str(gettext_lazy("half-yearly"))
    return str(gettext_lazy("recurring"))
