"""One billing action as a person reads it: what was asked (or done) in words, where it
stands, the approval trail, the note and the customer message.

The panel's action details (``GET actions/{id}/``), the requester's outcome list
(``GET approvals/requested/``) and the approvers' pages (``/approvals/``, the panel's
Approvals tab) all read an action through ``action_details``, so each says it the same
way. The parameters in words are the pure ``billing_app.action_words``'s; this module
adds what only the database knows: the names of prices, subscriptions, invoices and
charges, the current plan or seat count a pending change starts from, the customer,
and the helpdesk ticket's address.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import quote

from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django_stubs_ext import StrOrPromise

from ..action_words import action_lines, date_words
from ..catalog import ROLE_LABELS, ActionKind, Role
from ..models import (
    ApprovalRequest,
    BillingAction,
    MirrorCharge,
    MirrorInvoice,
    MirrorPrice,
    MirrorProduct,
    MirrorSubscriptionItem,
)
from ..money import format_money
from ..vocabulary import action_label

Obj = dict[str, Any]

# Where an agent opens a ticket, per helpdesk (the installation's account domain).
TICKET_URLS: Mapping[str, str] = {
    "zendesk": "https://{domain}/agent/tickets/{ticket}",
    "freshdesk": "https://{domain}/a/tickets/{ticket}",
}

NOTE_WORDS: Mapping[str, StrOrPromise] = {
    BillingAction.NoteStatus.NONE: gettext_lazy("No note on the ticket"),
    BillingAction.NoteStatus.PENDING: gettext_lazy("Note waiting to be posted on the ticket"),
    BillingAction.NoteStatus.POSTED: gettext_lazy("Note posted on the ticket"),
    BillingAction.NoteStatus.FAILED: gettext_lazy("The note could not be posted on the ticket"),
}


def ticket_url(*, connector: str, domain: str, ticket_id: str) -> str:
    """The helpdesk's own page of the ticket ("" for a helpdesk without one, e.g. the demo)."""
    template = TICKET_URLS.get(connector)
    if not template or not domain or not ticket_id:
        return ""
    return template.format(domain=domain, ticket=quote(str(ticket_id), safe=""))


def action_ticket_url(action: BillingAction) -> str:
    """The ticket the action was taken on, in the helpdesk the agent was in."""
    installation = action.installation
    if installation is None or not action.ticket_id:
        return ""
    return ticket_url(
        connector=installation.connector, domain=installation.domain, ticket_id=action.ticket_id
    )


def role_words(roles: Iterable[str]) -> str:
    """``["vp"]`` → ``VP Approver``; several → "Manager or VP Approver" (never a raw code)."""
    labels = []
    for value in roles or ():
        try:
            labels.append(str(ROLE_LABELS[Role(value)]))
        except ValueError:
            labels.append(str(value).replace("_", " ").capitalize())
    return _(" or ").join(labels)


def user_name(user: Any) -> str:
    if user is None:
        return ""
    return str(user.get_full_name() or user.get_username())


# --- names and current figures from the mirror ---------------------------------------------


def _ids(actions: Iterable[BillingAction], keys: tuple[str, ...]) -> set[str]:
    found: set[str] = set()
    for action in actions:
        for source in (action.params or {}, action.result or {}):
            for key in keys:
                value = source.get(key)
                values = value if isinstance(value, list) else [value]
                found.update(v for v in values if isinstance(v, str) and v)
    return found


def action_names(workspace_id: int, actions: list[BillingAction]) -> dict[str, str]:
    """What a person calls the prices, subscriptions, invoices and charges these actions name."""
    names: dict[str, str] = {}
    price_ids = _ids(actions, ("price_id", "previous_price_id", "new_price_id"))
    sub_ids = _ids(actions, ("subscription_id",))
    items = list(
        MirrorSubscriptionItem.objects.filter(
            workspace_id=workspace_id, subscription_id__in=sub_ids
        )
    )
    price_ids |= {i.price_id for i in items if i.price_id}
    prices = {
        p.stripe_id: p
        for p in MirrorPrice.objects.filter(workspace_id=workspace_id, stripe_id__in=price_ids)
    }
    products = dict(
        MirrorProduct.objects.filter(
            workspace_id=workspace_id, stripe_id__in={p.product_id for p in prices.values()}
        ).values_list("stripe_id", "name")
    )
    for price_id, price in prices.items():
        names[price_id] = products.get(price.product_id) or price.nickname or price_id
    for sub_id in sub_ids:
        plan = _plan_item(sub_id, items)
        if plan is not None and plan.price_id in names:
            names[sub_id] = _("%(plan)s subscription") % {"plan": names[plan.price_id]}
    invoice_ids = _ids(actions, ("invoice_id",))
    for stripe_id, number in MirrorInvoice.objects.filter(
        workspace_id=workspace_id, stripe_id__in=invoice_ids
    ).values_list("stripe_id", "number"):
        if number:
            names[stripe_id] = _("Invoice %(number)s") % {"number": number}
    charge_ids = _ids(actions, ("charge_id", "charge_ids", "original_charge_id"))
    for charge in MirrorCharge.objects.filter(workspace_id=workspace_id, stripe_id__in=charge_ids):
        created = charge.created
        amount = format_money(charge.amount, charge.currency.upper())
        names[charge.stripe_id] = (
            _("Payment of %(amount)s on %(date)s") % {"amount": amount, "date": date_words(created)}
            if created
            else _("Payment of %(amount)s") % {"amount": amount}
        )
    return names


def _plan_item(sub_id: str, items: list[MirrorSubscriptionItem]) -> MirrorSubscriptionItem | None:
    """The subscription's plan item: its priciest recurring item (add-ons cost less)."""
    own = [i for i in items if i.subscription_id == sub_id]
    if not own:
        return None
    return max(own, key=lambda i: ((i.unit_amount or 0) * (i.quantity or 1), i.stripe_id))


def _starting_point(action: BillingAction) -> Obj:
    """Where a plan or seat change starts from while it waits (the mirror's current figures)."""
    if action.status != BillingAction.Status.PENDING_APPROVAL:
        return {}
    result = action.result or {}
    sub_id = (action.params or {}).get("subscription_id")
    if not sub_id or action.kind not in (ActionKind.CHANGE_PLAN, ActionKind.ADJUST_SEATS):
        return {}
    items = list(
        MirrorSubscriptionItem.objects.filter(
            workspace_id=action.workspace_id, subscription_id=sub_id
        )
    )
    plan = _plan_item(sub_id, items)
    if plan is None:
        return {}
    if action.kind == ActionKind.CHANGE_PLAN and "previous_price_id" not in result:
        return {"previous_price_id": plan.price_id}
    if action.kind == ActionKind.ADJUST_SEATS and "previous_quantity" not in result:
        return {"previous_quantity": plan.quantity}
    return {}


def action_words(action: BillingAction, names: Mapping[str, str] | None = None) -> list[Obj]:
    """What was asked (and, once done, what was done), as ``[{"label", "text"}]``."""
    if names is None:
        names = action_names(action.workspace_id, [action])
    result = {**(action.result or {}), **_starting_point(action)}
    lines = action_lines(
        action.kind,
        action.params or {},
        amount=action.amount,
        currency=action.currency,
        result=result,
        names=names,
    )
    return [{"label": label, "text": text} for label, text in lines]


# --- where it stands ---------------------------------------------------------------------


def _approval(action: BillingAction) -> ApprovalRequest | None:
    try:
        return action.approval
    except ApprovalRequest.DoesNotExist:
        return None


def _decider(approval: ApprovalRequest) -> str:
    name = user_name(approval.decided_by)
    role = role_words([approval.decided_role]) if approval.decided_role else ""
    if name and role:
        return _("%(name)s (%(role)s)") % {"name": name, "role": role}
    return name or _("an approver")


def action_outcome(action: BillingAction) -> Obj:
    """``{"state", "title"}``: where the action stands, in words.

    ``state`` is one of ``pending``, ``approved``, ``denied``, ``expired`` (an approval
    request's outcome) or ``done``, ``failed``, ``confirming``, ``running``,
    ``not_permitted`` (an action that needed no approval, or the approved action's run).
    """
    status, approval = action.status, _approval(action)
    S = BillingAction.Status
    error = action.error_text or _("the billing provider refused it")
    if approval is not None:
        roles = role_words(approval.required_roles)
        if approval.status == ApprovalRequest.Status.PENDING:
            return {
                "state": "pending",
                "title": _("Waiting for approval by %(roles)s") % {"roles": roles},
            }
        if approval.status == ApprovalRequest.Status.EXPIRED:
            return {"state": "expired", "title": _("Expired: nobody decided in time")}
        words = {"decider": _decider(approval), "error": error, "comment": approval.comment}
        if approval.status == ApprovalRequest.Status.DENIED:
            if approval.comment:
                return {"state": "denied", "title": _("Denied by %(decider)s: %(comment)s") % words}
            return {"state": "denied", "title": _("Denied by %(decider)s") % words}
        if status == S.SUCCEEDED:
            return {"state": "approved", "title": _("Approved by %(decider)s and done") % words}
        if status == S.FAILED:
            return {
                "state": "failed",
                "title": _("Approved by %(decider)s, but it failed: %(error)s") % words,
            }
        if status == S.OUTCOME_UNKNOWN:
            return {
                "state": "confirming",
                "title": _("Approved by %(decider)s; Billing Desk is confirming it with Stripe")
                % words,
            }
        return {"state": "running", "title": _("Approved by %(decider)s; running now") % words}
    if status == S.SUCCEEDED:
        return {"state": "done", "title": _("Done")}
    if status == S.FAILED:
        return {"state": "failed", "title": _("Failed: %(error)s") % {"error": error}}
    if status == S.OUTCOME_UNKNOWN:
        return {"state": "confirming", "title": _("Billing Desk is confirming it with Stripe")}
    if status == S.NOT_PERMITTED:
        if action.decision_reason:
            return {
                "state": "not_permitted",
                "title": _("Not permitted: %(reason)s") % {"reason": action.reason_text},
            }
        return {"state": "not_permitted", "title": _("Not permitted")}
    return {"state": "running", "title": _("Running now")}


def approval_trail(action: BillingAction) -> Obj | None:
    """Who asked, why it needed approval, who may decide, who decided, when and why."""
    approval = _approval(action)
    if approval is None:
        return None
    return {
        "requested_by": user_name(action.actor),
        "requested_role": role_words([action.actor_role]),
        "requested_at": approval.created_at.isoformat(),
        "reason": approval.reason_text,
        "approver_roles": role_words(approval.required_roles),
        "expires_at": approval.expires_at.isoformat(),
        "status": approval.status,
        "status_label": str(approval.get_status_display()),
        "decided_by": user_name(approval.decided_by) or None,
        "decided_role": role_words([approval.decided_role]) if approval.decided_role else "",
        "decided_at": approval.decided_at.isoformat() if approval.decided_at else None,
        "comment": approval.comment,
    }


def _message_title(action: BillingAction) -> str:
    if not action.customer_message:
        return ""
    approval = _approval(action)
    if action.status == BillingAction.Status.DENIED:
        return _("Message for the customer (request denied)")
    if approval is not None and action.status == BillingAction.Status.SUCCEEDED:
        return _("Message for the customer (request approved)")
    return _("Message for the customer")


def action_details(action: BillingAction, names: Mapping[str, str] | None = None) -> Obj:
    """Everything the panel's action details and the approvers' pages show about one action."""
    return {
        "kind_label": str(action_label(action.kind)),
        "status_label": str(action.get_status_display()),
        "outcome": action_outcome(action),
        "lines": action_words(action, names),
        "trail": approval_trail(action),
        "provider_object_id": action.provider_object_id,
        "note": {
            "status": action.note_status,
            "label": str(NOTE_WORDS.get(action.note_status, "")),
        },
        "customer_message": action.customer_message,
        "message_title": _message_title(action),
        "ticket_url": action_ticket_url(action),
    }


__all__ = [
    "NOTE_WORDS",
    "TICKET_URLS",
    "action_details",
    "action_names",
    "action_outcome",
    "action_ticket_url",
    "action_words",
    "approval_trail",
    "role_words",
    "ticket_url",
    "user_name",
]
