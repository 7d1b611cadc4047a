"""The words of the internal notes Billing Desk posts on a ticket, from editable templates.

A note is written for an event — an action done, failed or held (``action``), an
approval requested, approved or denied — and says, in words a teammate can use:
who (name and role), what (the action's label), the customer (name and email,
never the id), the parameters in words (``billing_app.action_words``: amounts,
from/to, days, percent, links, reason labels), where it stands, and the approval
trail. No customer ids, no enumeration values, no action UUIDs: the short
``{reference}`` (``BD-`` and the start of the action's id) is what a teammate quotes.

The wording: a workspace's active ``NoteTemplate`` for the action's kind and the
event, else its template for every kind, else the product's (``DEFAULT_BODIES``).
Templates use the playbook's syntax and renderer (``playbook.fill``): bare
``{placeholders}``, and ``[[ … ]]`` segments left out when a placeholder in them
is empty. Admin refuses a template with a placeholder its event does not offer
(``note_template_validate``). A saved template that cannot be filled for one
action (a placeholder outside ``[[ … ]]`` has no value there) gives way to the
product's wording for that note, with a warning in the log: a note is never lost
to a template.

``services.notes`` asks ``note_text`` for the body when it enqueues the note; the
outbox appends the ``Billing Desk ref: …`` marker line it dedupes by. The product's
wording and every word a note is filled with are in the active language
(``services.notes`` writes a note under the language it recorded).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext
from django_stubs_ext import StrOrPromise

from ..action_words import action_facts, action_lines, date_words, lines_text
from ..catalog import Role
from ..models import ApprovalRequest, BillingAction, MirrorCustomer, NoteTemplate
from ..money import format_money
from ..playbook import TemplateError, fill
from ..selectors.action_details import action_names, action_outcome, action_words, role_words
from ..vocabulary import action_label
from .playbook_templates import template_text_validate

log = logging.getLogger(__name__)

Event = NoteTemplate.Event

# Every placeholder a note can use, with what it says (shown in admin).
PLACEHOLDERS: dict[str, StrOrPromise] = {
    "who": gettext_lazy("Who took or asked for the action: name (role)"),
    "who_name": gettext_lazy("Their name"),
    "who_role": gettext_lazy("Their role, e.g. L2 Agent"),
    "what": gettext_lazy("The action, e.g. Issue refund"),
    "customer": gettext_lazy("The customer's name (email)"),
    "customer_name": gettext_lazy("The customer's name"),
    "customer_email": gettext_lazy("The customer's email"),
    "details": gettext_lazy("The action's parameters in words, one per line"),
    "amount": gettext_lazy("The action's amount, e.g. $600.00"),
    "amount_charged": gettext_lazy("What the customer is charged now (a plan change's proration)"),
    "from": gettext_lazy("The plan or seat count before"),
    "to": gettext_lazy("The plan or seat count after"),
    "days": gettext_lazy("Days of a trial or grace extension, e.g. 7 days"),
    "percent": gettext_lazy("A discount's percent, e.g. 15%"),
    "duration": gettext_lazy("A discount's duration, e.g. For 3 months"),
    "link": gettext_lazy("The payment, invoice or portal link"),
    "reason": gettext_lazy("The refund's or cancellation's reason, e.g. Billing error"),
    "resumes": gettext_lazy("When a paused subscription resumes"),
    "when": gettext_lazy("When a cancellation takes effect"),
    "status": gettext_lazy("Where it stands, in words"),
    "policy": gettext_lazy("Why the policy allowed, escalated or refused it"),
    "error": gettext_lazy("What went wrong, when it failed"),
    "provider_ref": gettext_lazy("The billing provider's reference, e.g. Stripe re_…"),
    "reference": gettext_lazy("Billing Desk's short reference, e.g. BD-3F2A91C0"),
    "trail": gettext_lazy("The approval trail in one line"),
    "requested_by": gettext_lazy("Who asked for approval: name (role)"),
    "requested_at": gettext_lazy("When approval was asked for"),
    "request_reason": gettext_lazy("Why it needs approval"),
    "approvers": gettext_lazy("Who may approve, e.g. Manager or VP Approver"),
    "expires": gettext_lazy("When the request expires"),
    "decided_by": gettext_lazy("Who decided: name (role)"),
    "decided_at": gettext_lazy("When it was decided"),
    "comment": gettext_lazy("The approver's comment"),
}
_DECISION = ("decided_by", "decided_at", "comment")
# What each event offers: a request has no decision yet.
EVENT_PLACEHOLDERS: dict[str, tuple[str, ...]] = {
    Event.ACTION: tuple(PLACEHOLDERS),
    Event.APPROVAL_REQUESTED: tuple(n for n in PLACEHOLDERS if n not in _DECISION),
    Event.APPROVAL_APPROVED: tuple(PLACEHOLDERS),
    Event.APPROVAL_DENIED: tuple(PLACEHOLDERS),
}
# An approval that nobody decided in time: the product's wording only (no template event).
EXPIRED = "approval_expired"

# The product's wording, per event (lazy: read in the note's language). A decided or
# expired request's note ends with the customer, the details and the reference (the trail
# is said line by line above them).
DEFAULT_BODIES: dict[str, Any] = {
    Event.ACTION: gettext_lazy(
        "Billing Desk · {what}: {status}\n"
        "By: {who}\n"
        "Customer: {customer}\n"
        "[[{details}\n]]"
        "[[Policy: {policy}\n]]"
        "[[Approval: {trail}\n]]"
        "[[Error: {error}\n]]"
        "[[{provider_ref}\n]]"
        "Reference: {reference}"
    ),
    Event.APPROVAL_REQUESTED: gettext_lazy(
        "Billing Desk · Approval requested: {what}\n"
        "Requested by: {who}\n"
        "Customer: {customer}\n"
        "[[{details}\n]]"
        "[[Needs approval because: {request_reason}\n]]"
        "[[Who may approve: {approvers}\n]]"
        "[[Expires: {expires}\n]]"
        "Reference: {reference}"
    ),
    Event.APPROVAL_APPROVED: gettext_lazy(
        "Billing Desk · Approval granted: {what}\n"
        "Approved[[ by {decided_by}]][[ on {decided_at}]]\n"
        "[[Comment: “{comment}”\n]]"
        "Requested by: {who}[[ on {requested_at}]]\n"
        "[[Needed approval because: {request_reason}\n]]"
        "Customer: {customer}\n[[{details}\n]][[{provider_ref}\n]]Reference: {reference}"
    ),
    Event.APPROVAL_DENIED: gettext_lazy(
        "Billing Desk · Approval denied: {what}\n"
        "Denied[[ by {decided_by}]][[ on {decided_at}]]\n"
        "[[Comment: “{comment}”\n]]"
        "Requested by: {who}[[ on {requested_at}]]\n"
        "[[Needed approval because: {request_reason}\n]]"
        "Nothing was changed for the customer.\n"
        "Customer: {customer}\n[[{details}\n]][[{provider_ref}\n]]Reference: {reference}"
    ),
    EXPIRED: gettext_lazy(
        "Billing Desk · Approval expired: {what}\n"
        "Nobody decided[[ before {expires}]]; nothing was changed for the customer.\n"
        "Requested by: {who}[[ on {requested_at}]]\n"
        "[[Needed approval because: {request_reason}\n]]"
        "Customer: {customer}\n[[{details}\n]][[{provider_ref}\n]]Reference: {reference}"
    ),
}
PROVIDER_LABELS = {"stripe": "Stripe", "sandbox": "Sandbox"}
_BLANK_LINES = re.compile(r"\n{3,}")


# --- the workspace's wording -----------------------------------------------------------------


def note_template_validate(*, event: str, body: str) -> str:
    """The body, stripped, if it can be a note for ``event``; else ``ValidationFailed``."""
    allowed = EVENT_PLACEHOLDERS.get(event, tuple(PLACEHOLDERS))
    return template_text_validate(body=body, allowed=allowed, offered_by=_("This note"))


def note_template_load(*, workspace_id: int, kind: str, event: str) -> str | None:
    """The workspace's active wording for ``kind`` and ``event``: its own, else for every kind."""
    bodies = dict(
        NoteTemplate.objects.filter(
            workspace_id=workspace_id, event=event, kind__in=[kind, ""], is_active=True
        ).values_list("kind", "body")
    )
    return bodies.get(kind) or bodies.get("") or None


def note_default(*, event: str) -> str:
    return str(DEFAULT_BODIES[event])


def note_fill(*, event: str, values: Mapping[str, str], template: str | None = None) -> str:
    """The note from ``template`` (a workspace's), else the product's wording for ``event``."""
    if template:
        try:
            return _tidy(fill(template, values))
        except TemplateError as exc:
            log.warning("workspace note template for %s cannot be filled (%s); default", event, exc)
    return _tidy(fill(str(DEFAULT_BODIES[event]), values))


def _tidy(text: str) -> str:
    lines = [line.rstrip() for line in text.strip().splitlines()]
    return _BLANK_LINES.sub("\n\n", "\n".join(lines))


# --- what a note says ------------------------------------------------------------------------


def _moment(value: datetime | str | None) -> str:
    """``March 2, 2026, 09:15 UTC`` (in German ``2. März 2026, 09:15 UTC``)."""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return ""
    if value is None:
        return ""
    if value.tzinfo is not None:
        value = value.astimezone(UTC)
    return _("%(date)s, %(time)s UTC") % {"date": date_words(value), "time": f"{value:%H:%M}"}


def _person(user: Any, role: str) -> tuple[str, str, str]:
    """(name, role label, "name (role label)") — never a username's absence as a blank."""
    name = ""
    if user is not None:
        name = str(user.get_full_name() or user.get_username())
    label = role_words([role]) if role else ""
    both = _("%(name)s (%(role)s)") % {"name": name, "role": label} if name and label else ""
    return name, label, both or name or label or _("someone")


def _customer(action: BillingAction) -> tuple[str, str, str]:
    customer = (
        MirrorCustomer.objects.filter(
            workspace_id=action.workspace_id, stripe_id=action.customer_id
        )
        .only("name", "email")
        .first()
    )
    name = (customer.name or "").strip() if customer else ""
    email = (customer.email or "").strip() if customer else ""
    both = _("%(name)s (%(email)s)") % {"name": name, "email": email} if name and email else ""
    return name, email, both or name or email or _("(name not on file)")


def short_reference(action: BillingAction) -> str:
    """``BD-3F2A91C0``: what a teammate quotes (the start of the action's id, found in admin)."""
    return action.reference


def _approval(action: BillingAction) -> ApprovalRequest | None:
    try:
        return action.approval
    except ApprovalRequest.DoesNotExist:
        return None


def _trail(action: BillingAction, approval: ApprovalRequest, who: str) -> str:
    asked = _("requested by %(who)s") % {"who": who} if who else _("requested")
    if approval.created_at:
        asked = _("%(requested)s on %(when)s") % {
            "requested": asked,
            "when": _moment(approval.created_at),
        }
    if approval.reason:
        asked += f" ({approval.reason_text})"
    status = approval.status
    first = f"{asked[:1].upper()}{asked[1:]}"
    if status == ApprovalRequest.Status.PENDING:
        return _("%(requested)s; waiting for %(approvers)s") % {
            "requested": first,
            "approvers": role_words(approval.required_roles),
        }
    if status == ApprovalRequest.Status.EXPIRED:
        return _("%(requested)s; expired before anyone decided") % {"requested": first}
    decider = _person(approval.decided_by, approval.decided_role)[2] or _("an approver")
    when = _(" on %(when)s") % {"when": _moment(approval.decided_at)} if approval.decided_at else ""
    comment = f": “{approval.comment}”" if approval.comment else ""
    values = {"decider": decider, "when": when, "comment": comment, "requested": asked}
    if status == ApprovalRequest.Status.APPROVED:
        return _("Approved by %(decider)s%(when)s%(comment)s; %(requested)s") % values
    return _("Denied by %(decider)s%(when)s%(comment)s; %(requested)s") % values


def note_values(
    *, action: BillingAction, approval: ApprovalRequest | None = None
) -> dict[str, str]:
    """Every placeholder's value for a note about ``action`` (and its approval), in words."""
    approval = approval or _approval(action)
    names = action_names(action.workspace_id, [action])
    lines = [(o["label"], o["text"]) for o in action_words(action, names)]
    facts = action_facts(
        action.kind,
        action.params or {},
        amount=action.amount,
        currency=action.currency,
        result=action.result or {},
        names=names,
        lines=lines,
    )
    who_name, who_role, who = _person(action.actor, action.actor_role)
    customer_name, customer_email, customer = _customer(action)
    provider_ref = ""
    if action.provider_object_id and action.status != BillingAction.Status.PENDING_APPROVAL:
        label = PROVIDER_LABELS.get(action.provider) or _("Billing provider")
        provider_ref = _("%(provider)s reference: %(reference)s") % {
            "provider": label,
            "reference": action.provider_object_id,
        }
    values = {name: "" for name in PLACEHOLDERS}
    values.update(facts)
    values.update(
        who=who,
        who_name=who_name,
        who_role=who_role,
        what=str(action_label(action.kind)),
        customer=customer,
        customer_name=customer_name,
        customer_email=customer_email,
        details=lines_text(lines),
        status=action_outcome(action)["title"],
        policy=action.reason_text,
        error=action.error_text if action.status == BillingAction.Status.FAILED else "",
        provider_ref=provider_ref,
        reference=short_reference(action),
    )
    if approval is not None:
        values.update(
            trail=_trail(action, approval, who),
            requested_by=who,
            requested_at=_moment(approval.created_at),
            request_reason=approval.reason_text,
            approvers=role_words(approval.required_roles),
            expires=_moment(approval.expires_at),
            decided_by=_person(approval.decided_by, approval.decided_role)[2]
            if approval.decided_by_id or approval.decided_role
            else "",
            decided_at=_moment(approval.decided_at),
            comment=approval.comment,
        )
    return values


APPROVAL_EVENTS: dict[str, str] = {
    ApprovalRequest.Status.PENDING: Event.APPROVAL_REQUESTED,
    ApprovalRequest.Status.APPROVED: Event.APPROVAL_APPROVED,
    ApprovalRequest.Status.DENIED: Event.APPROVAL_DENIED,
    ApprovalRequest.Status.EXPIRED: EXPIRED,
}


def note_text(*, action: BillingAction, approval: ApprovalRequest | None = None) -> str:
    """The note about ``action`` (``approval`` given: about that request's state), in words."""
    event = APPROVAL_EVENTS[approval.status] if approval is not None else Event.ACTION
    template = None
    if event != EXPIRED:
        template = note_template_load(
            workspace_id=action.workspace_id, kind=action.kind, event=event
        )
    return note_fill(
        event=event, values=note_values(action=action, approval=approval), template=template
    )


# --- a sample, for admin's preview -----------------------------------------------------------

SAMPLE_PARAMS: dict[str, dict[str, Any]] = {
    "generate_payment_link": {"invoice_id": "in_1Sample"},
    "resend_invoice": {"invoice_id": "in_1Sample"},
    "apply_credit": {"amount": 5000, "currency": "USD", "description": "Outage credit"},
    "issue_refund": {"amount": 60000, "currency": "USD", "reason": "billing_error"},
    "extend_trial": {"days": 7},
    "pause_subscription": {"behavior": "void", "resumes_at": "2026-04-01T00:00:00+00:00"},
    "change_plan": {"price_id": "price_business"},
    "cancel_subscription": {"reason": "too_expensive", "customer_requested": True},
    "force_cancel": {"reason": "other", "comment": "Per Legal", "customer_requested": False},
    "update_payment_method": {},
    "adjust_seats": {"quantity": 12},
    "apply_discount": {"percent_off": "15", "duration": "repeating", "duration_in_months": 3},
    "refund_duplicate_charge": {"amount": 2999, "currency": "USD"},
    "extend_grace_period": {"days": 5},
    "send_tax_invoice": {
        "invoice_id": "in_1Sample",
        "tax_id": {"type": "eu_vat", "value": "DE123456789"},
    },
    "resume_subscription": {},
    "undo_cancellation": {},
}
SAMPLE_RESULT: dict[str, Any] = {
    "url": "https://billing.example/pay/sample",
    "kind": "hosted_invoice",
    "previous_price_id": "price_starter",
    "previous_quantity": 10,
    "preview": {"amount_due_now": {"amount": 45000, "currency": "USD"}},
    "cancel_at": "2026-05-01T00:00:00+00:00",
}
SAMPLE_NAMES = {
    "price_starter": "Starter",
    "price_business": "Business",
    "in_1Sample": "Invoice ACME-0042",
}


def note_sample_values(*, kind: str, event: str) -> dict[str, str]:
    """Placeholder values of a made-up action of ``kind`` (every kind: a refund), for previews."""
    kind = kind if kind in SAMPLE_PARAMS else "issue_refund"
    params = SAMPLE_PARAMS[kind]
    amount = params.get("amount")
    currency = str(params.get("currency", ""))
    lines = action_lines(
        kind, params, amount=amount, currency=currency, result=SAMPLE_RESULT, names=SAMPLE_NAMES
    )
    values = {name: "" for name in PLACEHOLDERS}
    values.update(
        action_facts(
            kind, params, amount=amount, currency=currency, result=SAMPLE_RESULT, names=SAMPLE_NAMES
        )
    )
    who = _("%(name)s (%(role)s)") % {"name": "Dana Scott", "role": Role.L2.label}
    values.update(
        who=who,
        who_name="Dana Scott",
        who_role=Role.L2.label,
        what=str(action_label(kind)),
        customer=_("%(name)s (%(email)s)") % {"name": "Acme Corp", "email": "billing@acme.example"},
        customer_name="Acme Corp",
        customer_email="billing@acme.example",
        details=lines_text(lines),
        policy=_("within the %(role)s limit") % {"role": Role.L2.label},
        reference="BD-3F2A91C0",
    )
    if event == Event.ACTION:
        values.update(
            status=_("Done"),
            provider_ref=_("%(provider)s reference: %(reference)s")
            % {"provider": "Stripe", "reference": "re_1Sample"},
        )
        return values
    asked = _moment(datetime(2026, 3, 2, 9, 15, tzinfo=UTC))
    manager = Role.MANAGER.label
    values.update(
        requested_by=who,
        requested_at=asked,
        request_reason=_("%(size)s is above the %(role)s limit (%(limit)s)")
        % {
            "size": format_money(60000, "USD"),
            "role": Role.L2.label,
            "limit": format_money(10000, "USD"),
        },
        approvers=manager,
        expires=_moment(datetime(2026, 3, 5, 9, 15, tzinfo=UTC)),
        status=_("Waiting for approval by %(roles)s") % {"roles": manager},
        trail=_("%(requested)s; waiting for %(approvers)s")
        % {"requested": _capitalised(_requested(who, asked)), "approvers": manager},
    )
    if event in (Event.APPROVAL_APPROVED, Event.APPROVAL_DENIED):
        decider = _("%(name)s (%(role)s)") % {"name": "Maria Lopez", "role": manager}
        decided = _moment(datetime(2026, 3, 2, 11, 40, tzinfo=UTC))
        words = {
            "decider": decider,
            "when": _(" on %(when)s") % {"when": decided},
            "comment": "",
            "requested": _("requested by %(who)s") % {"who": who},
        }
        approved = event == Event.APPROVAL_APPROVED
        values.update(
            decided_by=decider,
            decided_at=decided,
            comment=_("Goodwill, long-time customer"),
            status=(_("Approved by %(decider)s") if approved else _("Denied by %(decider)s"))
            % words,
            trail=(
                _("Approved by %(decider)s%(when)s%(comment)s; %(requested)s")
                if approved
                else _("Denied by %(decider)s%(when)s%(comment)s; %(requested)s")
            )
            % words,
        )
    return values


def _requested(who: str, when: str) -> str:
    return _("%(requested)s on %(when)s") % {
        "requested": _("requested by %(who)s") % {"who": who},
        "when": when,
    }


def _capitalised(text: str) -> str:
    return f"{text[:1].upper()}{text[1:]}"


def _fills_without(text: str, values: Mapping[str, str], name: str) -> bool:
    """Whether ``text`` fills when ``name`` alone is empty (it is optional or unused)."""
    others = {k: v or ("" if k == name else "x") for k, v in values.items()}
    try:
        fill(text, others)
    except TemplateError:
        return False
    return True


def note_preview(*, kind: str, event: str, body: str) -> tuple[str, str]:
    """``body`` (validated first) filled from a sample action, and a warning ("" if none).

    ``ValidationFailed`` when the body cannot be a template. The warning names the
    placeholders outside ``[[ … ]]`` the sample leaves empty: for such an action the
    product's wording would be posted instead.
    """
    text = note_template_validate(event=event, body=body)
    values = note_sample_values(kind=kind, event=event)
    try:
        return _tidy(fill(text, values)), ""
    except TemplateError:
        empty = [n for n in PLACEHOLDERS if not values[n] and not _fills_without(text, values, n)]
        warning = ngettext(
            "For this sample %(names)s has no value, so the product's wording would be posted "
            "instead: put such placeholders inside [[ … ]].",
            "For this sample %(names)s have no value, so the product's wording would be posted "
            "instead: put such placeholders inside [[ … ]].",
            len(empty),
        ) % {"names": ", ".join("{" + n + "}" for n in empty)}
        return _tidy(fill(text, {k: v or "—" for k, v in values.items()})), warning


__all__ = [
    "DEFAULT_BODIES",
    "EVENT_PLACEHOLDERS",
    "PLACEHOLDERS",
    "note_default",
    "note_fill",
    "note_preview",
    "note_sample_values",
    "note_template_load",
    "note_template_validate",
    "note_text",
    "note_values",
    "short_reference",
]
