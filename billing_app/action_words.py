"""An action's parameters (and, once done, its result) in words, per kind.

``action_lines`` answers ``[(label, text), …]`` — "Amount: $120.00", "From: Starter",
"To: Business", "Seats: 10 → 12", "Discount: 15% off", "Duration: For 3 months",
"Resumes: March 1, 2026", "Reason: Billing error", "Link: https://…" — for the
notes on the ticket, the approvers' pages and the panel's action details, so each
says an action the same way. ``action_facts`` gives the same facts by name (``from``,
``to``, ``days``, ``percent``, ``link``, ``amount_charged``, …) for the note
templates' placeholders.

In the active language (Django's translation; dates and money formatted for it):
the caller activates the agent's, or a note's recorded one. No database. Display names of prices, products, subscriptions,
invoices or charges come in ``names`` (id → name), looked up by the caller; an id
with no name is shown as the reference it is (an invoice or charge id), never a
customer id, and enumerations are always shown by their label. Unknown parameter
keys are ignored; a missing one leaves its line out.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from babel.dates import format_date
from django.utils.translation import get_language, gettext_lazy, ngettext, pgettext, pgettext_lazy
from django.utils.translation import gettext as _
from django_stubs_ext import StrOrPromise

from .catalog import ActionKind
from .money import format_money, is_currency_code
from .tax_rules import TAX_ID_TYPES
from .vocabulary import (
    CANCELLATION_FEEDBACK,
    DISCOUNT_DURATIONS,
    PAUSE_BEHAVIORS,
    REFUND_REASONS,
)

Line = tuple[str, str]

# Stripe's refund ``status`` enum.
REFUND_STATUS_WORDS: Mapping[str, StrOrPromise] = {
    "succeeded": gettext_lazy("Refunded"),
    "pending": gettext_lazy("Pending at the bank"),
    "requires_action": gettext_lazy("Waiting for the customer's bank"),
    "failed": pgettext_lazy("refund status", "Failed"),
    "canceled": pgettext_lazy("refund status", "Cancelled"),
}
# Stripe's subscription ``status`` enum.
SUBSCRIPTION_STATUS_WORDS: Mapping[str, StrOrPromise] = {
    "active": pgettext_lazy("subscription status", "Active"),
    "trialing": pgettext_lazy("subscription status", "In trial"),
    "past_due": pgettext_lazy("subscription status", "Past due"),
    "unpaid": pgettext_lazy("subscription status", "Unpaid"),
    "canceled": pgettext_lazy("subscription status", "Cancelled"),
    "incomplete": pgettext_lazy("subscription status", "Incomplete"),
    "incomplete_expired": gettext_lazy("Expired before the first payment"),
    "paused": pgettext_lazy("subscription status", "Paused"),
}
# The kinds of link a provider makes (``LinkResult.kind``).
LINK_LABELS: Mapping[str, StrOrPromise] = {
    "hosted_invoice": gettext_lazy("Payment link"),
    "checkout": gettext_lazy("Payment link"),
    "billing_portal": gettext_lazy("Portal link"),
}


# --- words for values ---------------------------------------------------------------------


def words(value: str, table: Mapping[str, StrOrPromise]) -> str:
    """``value``'s label in ``table``, or the value spelled as words (never a raw code)."""
    if not value:
        return ""
    label = table.get(value)
    if label:
        return str(label)
    text = str(value).replace("_", " ").strip()
    return text[:1].upper() + text[1:]


def refund_reason_label(key: str) -> str:
    reason = REFUND_REASONS.get(key or "")
    return str(reason.label) if reason else words(key, {})


def language() -> str:
    """The active language's code without region (``de`` for ``de-at``); ``en`` when none."""
    return (get_language() or "en").split("-")[0].split("_")[0].lower()


def date_words(value: Any) -> str:
    """``2026-03-01T00:00:00+00:00`` (or a datetime, a date, a Unix time) → ``March 1, 2026``
    (in German ``1. März 2026``: the active language's long date)."""
    moment = _moment(value)
    if moment is None:
        return ""
    if language() != "en":
        day = moment.date() if isinstance(moment, datetime) else moment
        return format_date(day, format="long", locale=language())
    return f"{moment:%B} {moment.day}, {moment.year}"


def _moment(value: Any) -> date | None:
    if value is None or value == "" or isinstance(value, bool):
        return None
    if isinstance(value, datetime | date):
        return value
    if isinstance(value, int | float):
        try:
            return datetime.fromtimestamp(value, tz=UTC)
        except (OverflowError, OSError, ValueError):
            return None
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
    return None


def days_words(value: Any) -> str:
    count = _int(value)
    if count is None:
        return ""
    return ngettext("%(count)s day", "%(count)s days", count) % {"count": count}


def percent_words(value: Any) -> str:
    """``"15"`` / ``15.0`` / ``Decimal("12.50")`` → ``15%`` / ``12.5%``."""
    if value is None or value == "" or isinstance(value, bool):
        return ""
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        return ""
    if not number.is_finite():
        return ""
    text = format(number.normalize(), "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    if language() == "de":
        return text.replace(".", ",") + "\u00a0%"
    return f"{text}%"


def duration_words(duration: str, months: Any = None) -> str:
    if duration == "repeating":
        count = _int(months)
        if count:
            return ngettext("For %(count)s month", "For %(count)s months", count) % {"count": count}
    return words(duration, DISCOUNT_DURATIONS)


def money_words(value: Any, currency: str = "") -> str:
    """An amount: ``money_json`` (``{"amount", "currency"}``) or minor units with ``currency``."""
    if isinstance(value, Mapping):
        amount, code = _int(value.get("amount")), str(value.get("currency") or "")
    else:
        amount, code = _int(value), currency
    if amount is None or not is_currency_code(code):
        return ""
    return format_money(amount, code)


def balance_words(value: Any) -> str:
    """A customer balance (negative = credit the customer holds) as a person says it."""
    if not isinstance(value, Mapping):
        return ""
    amount, code = _int(value.get("amount")), str(value.get("currency") or "")
    if amount is None or not is_currency_code(code):
        return ""
    if amount < 0:
        return _("%(amount)s in credit") % {"amount": format_money(-amount, code)}
    if amount > 0:
        return _("%(amount)s owed") % {"amount": format_money(amount, code)}
    return format_money(0, code)


def address_words(address: Any) -> str:
    if not isinstance(address, Mapping):
        return ""
    city = " ".join(
        str(address.get(k) or "").strip() for k in ("postal_code", "city") if address.get(k)
    )
    parts = [str(address.get(k) or "").strip() for k in ("line1", "line2") if address.get(k)] + [
        p for p in (city, str(address.get("state") or "").strip()) if p
    ]
    country = str(address.get("country") or "").strip().upper()
    if country:
        parts.append(country)
    return ", ".join(p for p in parts if p)


def tax_id_words(tax_id: Any) -> str:
    if not isinstance(tax_id, Mapping) or not tax_id.get("value"):
        return ""
    kind = str(tax_id.get("type") or "")
    spec = TAX_ID_TYPES.get(kind)
    label = str(spec.label) if spec else words(kind, {})
    return f"{label} {tax_id['value']}".strip()


def _int(value: Any) -> int | None:
    if isinstance(value, bool) or value is None or value == "":
        return None
    if isinstance(value, int):
        return value
    try:
        return int(str(value))
    except ValueError:
        return None


def _text(value: Any) -> str:
    return value.strip() if isinstance(value, str) else ""


# --- the facts of one action --------------------------------------------------------------


class _Facts:
    """What ``action_lines`` and ``action_facts`` read, normalised once."""

    def __init__(
        self,
        kind: str,
        params: Mapping[str, Any],
        amount: int | None,
        currency: str,
        result: Mapping[str, Any] | None,
        names: Mapping[str, str] | None,
    ) -> None:
        self.kind = kind
        self.p: Mapping[str, Any] = params if isinstance(params, Mapping) else {}
        self.r: Mapping[str, Any] = result if isinstance(result, Mapping) else {}
        self.names: Mapping[str, str] = names or {}
        if amount is None:
            amount = _int(self.p.get("amount"))
        self.amount = amount
        self.currency = (currency or _text(self.p.get("currency"))).upper()

    def name(self, object_id: Any) -> str:
        """The display name of ``object_id``, or the id itself (a provider reference)."""
        ref = _text(object_id)
        return self.names.get(ref, ref) if ref else ""

    def named(self, object_id: Any) -> str:
        """The display name of ``object_id`` only when the caller knows one."""
        ref = _text(object_id)
        return self.names.get(ref, "") if ref else ""

    def amount_text(self) -> str:
        if self.amount is not None and is_currency_code(self.currency):
            return format_money(self.amount, self.currency)
        return money_words(self.r.get("amount"))

    def link(self) -> tuple[str, str]:
        url = _text(self.r.get("url"))
        if url:
            return str(LINK_LABELS.get(_text(self.r.get("kind")), _("Link"))), url
        url = _text(self.r.get("hosted_invoice_url"))
        if url:
            return _("Invoice link"), url
        return "", ""

    def preview(self) -> Mapping[str, Any]:
        preview = self.r.get("preview")
        return preview if isinstance(preview, Mapping) else {}

    def mrr_change(self) -> str:
        delta = _int(self.r.get("mrr_delta"))
        code = _text(self.r.get("mrr_currency"))
        if delta is None or not is_currency_code(code):
            return ""
        sign = "+" if delta > 0 else ""
        return _("%(amount)s a month") % {"amount": f"{sign}{format_money(delta, code)}"}


# Each kind's lines; ``action_lines`` drops those whose text is empty.


def _subscription(f: _Facts) -> list[Line]:
    return [(_("Subscription"), f.named(f.p.get("subscription_id")))]


def _invoice(f: _Facts, key: str = "invoice_id", label: str = "") -> list[Line]:
    return [(label or _("Invoice"), f.name(f.p.get(key) or f.r.get(key)))]


def _link_lines(f: _Facts) -> list[Line]:
    label, url = f.link()
    expires = date_words(f.r.get("expires_at")) if url else ""
    return [(label, url), (_("Link expires"), expires), (_("PDF"), _text(f.r.get("invoice_pdf")))]


def _sent(f: _Facts) -> list[Line]:
    sent = {"email": _("Emailed to the customer"), "link": _("As a link to share in a reply")}
    return [(_("Sent"), sent.get(_text(f.r.get("method")), "")), *_link_lines(f)]


def _status(f: _Facts) -> list[Line]:
    return [(_("Status"), words(_text(f.r.get("status")), SUBSCRIPTION_STATUS_WORDS))]


def _refund_status(f: _Facts) -> list[Line]:
    return [(_("Refund status"), words(_text(f.r.get("status")), REFUND_STATUS_WORDS))]


def _payment_link(f: _Facts) -> list[Line]:
    return _invoice(f) + _link_lines(f)


def _resend_invoice(f: _Facts) -> list[Line]:
    return _invoice(f) + _sent(f)


def _credit(f: _Facts) -> list[Line]:
    return [
        (_("Credit"), f.amount_text()),
        (_("Description"), _text(f.p.get("description"))),
        *_invoice(f, label=_("Corrects invoice")),
        (_("Balance after"), balance_words(f.r.get("ending_balance"))),
    ]


def _refund(f: _Facts) -> list[Line]:
    reason = _text(f.p.get("reason") or f.r.get("billing_desk_reason"))
    return [
        (pgettext("action detail", "Refund"), f.amount_text()),
        (_("Charge"), f.name(f.p.get("charge_id") or f.r.get("charge_id"))),
        (_("Reason"), refund_reason_label(reason) if reason else ""),
        (_("Comment"), _text(f.p.get("comment"))),
        *_refund_status(f),
    ]


def _duplicate(f: _Facts) -> list[Line]:
    charges = [f.name(c) for c in f.p.get("charge_ids") or [] if _text(c)]
    refunded = f.name(f.r.get("charge_id"))
    return [
        (pgettext("action detail", "Refund"), f.amount_text()),
        (_("Refunded charge"), refunded),
        (_("Kept charge"), f.name(f.r.get("original_charge_id")) if refunded else ""),
        (_("Charges"), "" if refunded else _(" and ").join(charges)),
        (_("Reason"), refund_reason_label("duplicate")),
        *_refund_status(f),
    ]


def _trial(f: _Facts) -> list[Line]:
    return [
        *_subscription(f),
        (_("Trial extended by"), days_words(f.p.get("days"))),
        (_("Trial ends"), date_words(f.r.get("trial_end"))),
    ]


def _resume_date(f: _Facts) -> str:
    resumes = date_words(f.p.get("resumes_at"))
    pause = f.r.get("pause_collection")
    if not resumes and isinstance(pause, Mapping):
        resumes = date_words(pause.get("resumes_at"))
    return resumes


def _pause(f: _Facts) -> list[Line]:
    return [
        *_subscription(f),
        (_("While paused"), words(_text(f.p.get("behavior")), PAUSE_BEHAVIORS)),
        (_("Resumes"), _resume_date(f) or _("No date set (resume by hand)")),
    ]


def _resume(f: _Facts) -> list[Line]:
    paused = f.r.get("paused")
    paused = paused if isinstance(paused, Mapping) else {}
    return [
        *_subscription(f),
        (_("Collection"), _("Resumed now: invoices are collected again")),
        (_("While it was paused"), words(_text(paused.get("behavior")), PAUSE_BEHAVIORS)),
        (_("Was to resume"), date_words(paused.get("resumes_at"))),
        *_status(f),
    ]


def _change_plan(f: _Facts) -> list[Line]:
    preview = f.preview()
    direction = _text(f.r.get("direction") or preview.get("direction"))
    change = {
        "upgrade": _("Upgrade, from now"),
        "downgrade": _("Downgrade, at the next renewal"),
    }
    charged = money_words(preview.get("amount_due_now")) if direction != "downgrade" else ""
    return [
        *_subscription(f),
        (_("From"), f.name(f.r.get("previous_price_id") or preview.get("current_price_id"))),
        (_("To"), f.name(f.p.get("price_id") or f.r.get("new_price_id"))),
        (_("Change"), change.get(direction, "")),
        (_("Effective"), date_words(f.r.get("effective_date") or preview.get("effective_date"))),
        (_("Charged now"), charged),
        (_("New recurring amount"), money_words(preview.get("new_recurring_amount"))),
        (_("MRR change"), f.mrr_change()),
        *_invoice(f, label=_("Proration invoice")),
    ]


def _cancel(f: _Facts) -> list[Line]:
    if f.kind == ActionKind.FORCE_CANCEL:
        when = _("Now, immediately")
    else:
        ends = date_words(f.r.get("cancel_at"))
        when = (
            _("At the end of the billing period (%(date)s)") % {"date": ends}
            if ends
            else _("At period end")
        )
    asked = ""
    if "customer_requested" in f.p:
        asked = _("Yes") if f.p.get("customer_requested") else _("No")
    return [
        *_subscription(f),
        (_("When"), when),
        (_("Reason"), words(_text(f.p.get("reason")), CANCELLATION_FEEDBACK)),
        (_("Comment"), _text(f.p.get("comment"))),
        (_("Customer asked"), asked),
    ]


def _undo_cancellation(f: _Facts) -> list[Line]:
    return [
        *_subscription(f),
        (_("Cancellation"), _("Withdrawn: the subscription renews as before")),
        (_("Was to end"), date_words(f.r.get("was_ending_at"))),
        *_status(f),
    ]


def _seats(f: _Facts) -> list[Line]:
    before, after = _int(f.r.get("previous_quantity")), _int(f.p.get("quantity"))
    seats = ""
    if after is not None:
        seats = (
            f"{before} → {after}" if before is not None else _("to %(count)s") % {"count": after}
        )
    return [*_subscription(f), (_("Seats"), seats), (_("MRR change"), f.mrr_change())]


def _discount(f: _Facts) -> list[Line]:
    percent = percent_words(f.p.get("percent_off"))
    duration = _text(f.p.get("duration"))
    return [
        *_subscription(f),
        (_("Discount"), _("%(percent)s off") % {"percent": percent} if percent else ""),
        (
            _("Duration"),
            duration_words(duration, f.p.get("duration_in_months")) if duration else "",
        ),
        (_("MRR change"), f.mrr_change()),
    ]


def _grace(f: _Facts) -> list[Line]:
    return [
        *_subscription(f),
        (_("Grace period extended by"), days_words(f.p.get("days"))),
        (_("Grace until"), date_words(f.r.get("grace_until"))),
        *_invoice(f, label=_("Failed invoice")),
    ]


def _tax_invoice(f: _Facts) -> list[Line]:
    return [
        *_invoice(f),
        (_("Tax id"), tax_id_words(f.p.get("tax_id"))),
        (_("Address"), address_words(f.p.get("address"))),
        *_sent(f),
    ]


_KINDS = {
    ActionKind.GENERATE_PAYMENT_LINK: _payment_link,
    ActionKind.RESEND_INVOICE: _resend_invoice,
    ActionKind.APPLY_CREDIT: _credit,
    ActionKind.ISSUE_REFUND: _refund,
    ActionKind.EXTEND_TRIAL: _trial,
    ActionKind.PAUSE_SUBSCRIPTION: _pause,
    ActionKind.CHANGE_PLAN: _change_plan,
    ActionKind.CANCEL_SUBSCRIPTION: _cancel,
    ActionKind.FORCE_CANCEL: _cancel,
    ActionKind.UPDATE_PAYMENT_METHOD: _link_lines,
    ActionKind.ADJUST_SEATS: _seats,
    ActionKind.APPLY_DISCOUNT: _discount,
    ActionKind.REFUND_DUPLICATE_CHARGE: _duplicate,
    ActionKind.EXTEND_GRACE_PERIOD: _grace,
    ActionKind.SEND_TAX_INVOICE: _tax_invoice,
    ActionKind.RESUME_SUBSCRIPTION: _resume,
    ActionKind.UNDO_CANCELLATION: _undo_cancellation,
}


def action_lines(
    kind: str,
    params: Mapping[str, Any],
    *,
    amount: int | None = None,
    currency: str = "",
    result: Mapping[str, Any] | None = None,
    names: Mapping[str, str] | None = None,
) -> list[tuple[str, str]]:
    """The action's parameters (and result, when done) as ``(label, text)`` lines, in words.

    ``amount``/``currency`` are the action's own (minor units); without them an
    amount in ``params`` is used. ``result`` is ``BillingAction.result`` (links,
    dates, the plan change's preview); before an action runs, a caller may put the
    current figures there (``previous_price_id``, ``previous_quantity``) to show a
    plan's or the seats' from → to. ``names`` maps price, product, subscription,
    invoice or charge ids to what a person calls them. An unknown kind gives its
    amount alone.
    """
    facts = _Facts(kind, params, amount, currency, result, names)
    try:
        describe = _KINDS[ActionKind(kind)]
    except ValueError:
        text = facts.amount_text()
        return [(_("Amount"), text)] if text else []
    return [(label, text) for label, text in describe(facts) if label and text]


def action_facts(
    kind: str,
    params: Mapping[str, Any],
    *,
    amount: int | None = None,
    currency: str = "",
    result: Mapping[str, Any] | None = None,
    names: Mapping[str, str] | None = None,
    lines: Sequence[tuple[str, str]] | None = None,
) -> dict[str, str]:
    """The facts a note template names, each in words ("" when the action has none).

    ``amount`` (the action's amount), ``amount_charged`` (what the customer pays
    now: a plan change's proration), ``from``/``to`` (plans or seats), ``days``,
    ``percent``, ``duration``, ``link``, ``reason`` (a refund's or cancellation's
    label), ``resumes`` (a pause's resume date), ``when`` (a cancellation's).
    ``lines`` are this action's ``action_lines`` when the caller has them already.
    """
    f = _Facts(kind, params, amount, currency, result, names)
    if lines is None:
        lines = action_lines(
            kind, params, amount=amount, currency=currency, result=result, names=names
        )
    said = dict(lines)
    out = {key: "" for key in FACT_NAMES}
    out["amount"] = f.amount_text()
    if kind == ActionKind.CHANGE_PLAN:
        out["from"], out["to"] = said.get(_("From"), ""), said.get(_("To"), "")
        out["amount_charged"] = said.get(_("Charged now"), "")
    elif kind == ActionKind.ADJUST_SEATS and _("Seats") in said:
        before, after = _int(f.r.get("previous_quantity")), _int(f.p.get("quantity"))
        out["from"] = str(before) if before is not None else ""
        out["to"] = str(after)
    out["days"] = days_words(f.p.get("days"))
    out["percent"] = percent_words(f.p.get("percent_off"))
    out["duration"] = said.get(_("Duration"), "")
    out["link"] = f.link()[1]
    out["reason"] = said.get(_("Reason"), "")
    out["resumes"] = _resume_date(f) if kind == ActionKind.PAUSE_SUBSCRIPTION else ""
    out["when"] = said.get(_("When"), "")
    return out


# The names ``action_facts`` answers (the note templates' placeholders for an action's facts).
FACT_NAMES: tuple[str, ...] = (
    *("amount", "amount_charged", "from", "to", "days", "percent"),
    *("duration", "link", "reason", "resumes", "when"),
)


def lines_text(lines: list[tuple[str, str]]) -> str:
    """``[("From", "Starter"), …]`` → ``"From: Starter\\n…"``."""
    return "\n".join(
        _("%(label)s: %(text)s") % {"label": label, "text": text} for label, text in lines
    )


__all__ = [
    "FACT_NAMES",
    "action_facts",
    "action_lines",
    "date_words",
    "days_words",
    "lines_text",
    "money_words",
    "percent_words",
    "refund_reason_label",
    "words",
]
