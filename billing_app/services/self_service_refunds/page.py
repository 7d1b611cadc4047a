"""What the customer's refund page shows: their recent payments, what a request on each
would do (the agents' dry run, per charge), and their requests' status in words.

Each payment without a request is asked of ``action_dry_run`` under the self-service
context — the same ``action_decide`` the submission runs — so a payment the page offers
is one the submission would take, and one it marks not eligible is refused for the
agents' reason, said in the customer's words (the playbook's "refund denied" message,
filled). A request's status is said with the playbook's messages too: the refund's
"approved" message once refunded, the "denied" one with a generic reason — never the
approver's comment, which is internal (it may name the agents' reasons: a risk flag, a
refund pattern). A payment another of the customer's links already asked about, while
that request is open, says so (not "already refunded").

Showing the page also finishes a request whose submitter died: one still ``received``
without its action gets the action its key made (``refund_request_attach``), and one
``processing`` follows its action (``self_service_refund_sync``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.utils.translation import gettext as _
from django.utils.translation import pgettext

from ...action_words import date_words
from ...catalog import ActionKind
from ...clock import billing_now
from ...models import MirrorCharge, SelfServiceLink, SelfServiceRefundRequest
from ...money import format_money
from ...playbook import Scenario, TemplateError, render
from ...selectors.action_messages import customer_message_for
from ...selectors.payments import charge_method_label
from ...selectors.self_service_refunds import (
    customer_recent_charges,
    link_requests,
    open_request_charges,
)
from ..actions import action_dry_run
from ..actions.decision import APPROVAL, EXECUTE
from ..actions.refunds import refundable
from ..customer_tickets import customer_ticket_state
from .requests import (
    CUSTOMER_REASONS,
    REQUEST_PENDING,
    TICKET_SOURCE,
    refund_request_attach,
    self_service_context,
)
from .status import self_service_refund_sync

Status = SelfServiceRefundRequest.Status


def refusal_reason(code: str, *, workspace: Any) -> str:
    """Why a payment cannot be refunded, for the customer (the agents' code, their words).

    The end of the playbook's "…isn't eligible for refund because {reason}." — a clause
    (context "refund denied because"), so each language orders it as its "because" needs
    (German: the verb last)."""
    if code == "refund_window_passed":
        return pgettext(
            "refund denied because", "the payment is older than the %(days)s-day refund window"
        ) % {"days": workspace.refund_window_days}
    clauses = {
        "already_refunded": pgettext(
            "refund denied because", "the payment is already fully refunded"
        ),
        "charge_disputed": pgettext(
            "refund denied because",
            "the payment is disputed, and the dispute decides where the money goes",
        ),
        "charge_not_refundable": pgettext(
            "refund denied because", "the payment did not go through"
        ),
        "action_outcome_unknown": pgettext(
            "refund denied because", "a refund of this payment is already being processed"
        ),
        "approval_expired": pgettext(
            "refund denied because", "our team could not review it in time"
        ),
        # An approver denied it: their comment is internal and never shown to the customer.
        "approval_denied": pgettext(
            "refund denied because", "our billing team reviewed your request and declined it"
        ),
    }
    return clauses.get(code) or pgettext("refund denied because", "it cannot be refunded online")


def _denied_message(reason: str, workspace: Any) -> str:
    try:
        return render(Scenario.REFUND_DENIED, {"reason": reason}, workspace=workspace)
    except TemplateError:  # pragma: no cover - the brief's template needs only the reason
        return reason


def pending_elsewhere_message() -> str:
    return _(
        "A refund request for this payment has already been made and is with our team. "
        "We will let you know what becomes of it."
    )


def request_message(request: SelfServiceRefundRequest, *, workspace: Any) -> str:
    """The customer's message for a request's status (the playbook's where one fits)."""
    status = request.status
    action = request.action
    # A refund's "approved" message; a denial is said below with a generic reason (the
    # playbook's denied message would carry the approver's internal comment).
    if status in (Status.REFUNDED, Status.APPROVED) and action is not None:
        message = customer_message_for(action=action)
        if message:
            return message
    if status == Status.REFUSED and request.refusal_code == REQUEST_PENDING:
        return pending_elsewhere_message()
    if status == Status.DENIED and not request.refusal_code:
        return _denied_message(refusal_reason("approval_denied", workspace=workspace), workspace)
    if status in (Status.DENIED, Status.REFUSED):
        return _denied_message(refusal_reason(request.refusal_code, workspace=workspace), workspace)
    if status == Status.WITH_AGENTS and ticket_failed(request, workspace=workspace):
        return _(
            "Your request is recorded and waiting for our billing team's review, but we could "
            "not pass it on to our support team yet, so no one may reply to you by email. "
            "Please contact support another way and mention this payment."
        )
    if status == Status.WITH_AGENTS:
        return _(
            "Your request is with our billing team. They will review it and reply to you by email."
        )
    if status == Status.FAILED:
        return _("We could not complete the refund. Please contact support.")
    return _("We are confirming your refund with our payment provider. Check back in a minute.")


def ticket_failed(request: SelfServiceRefundRequest, *, workspace: Any) -> bool:
    """Whether the request's ticket could not be opened on any helpdesk (so nobody was told
    to reply by email). A request whose ticket was opened (``ticket_ref``) asks nothing."""
    if request.ticket_ref:
        return False
    state = customer_ticket_state(
        workspace=workspace, source=TICKET_SOURCE, source_id=str(request.pk)
    )
    return state == "failed"


def status_label(status: str) -> str:
    # Built at call time, in the active language.
    labels: dict[str, str] = {
        Status.RECEIVED: _("Received"),
        Status.PROCESSING: _("Received"),
        Status.REFUNDED: _("Refunded"),
        Status.WITH_AGENTS: _("With an agent"),
        Status.APPROVED: _("Approved"),
        Status.DENIED: _("Declined"),
        Status.REFUSED: _("Not eligible"),
        Status.FAILED: _("Not completed"),
    }
    return labels.get(status, status)


@dataclass(frozen=True)
class PaymentRow:
    charge_id: str
    date: str
    amount: str
    method: str
    description: str
    # "request" (a request exists), "eligible" (a request may be made), "refused", or
    # "elsewhere" (another of the customer's links has an open request on it).
    state: str
    # For an eligible payment: "now" (within the self-service limit) or "review".
    route: str = ""
    refundable: str = ""
    reason: str = ""
    status: str = ""
    status_label: str = ""
    message: str = ""


def _row(charge: MirrorCharge, **kwargs: Any) -> PaymentRow:
    return PaymentRow(
        charge_id=charge.stripe_id,
        date=date_words(charge.created) if charge.created else "",
        amount=format_money(charge.amount, charge.currency.upper()),
        method=charge_method_label(charge),
        description=charge.description,
        **kwargs,
    )


def refund_page_payments(*, link: SelfServiceLink, now: datetime | None = None) -> list[PaymentRow]:
    """The rows of the page, newest payment first (in the active language)."""
    workspace = link.workspace
    now = now or billing_now(workspace)  # the sandbox's clock in the demo
    requests = link_requests(link=link)
    for charge_id, request in list(requests.items()):
        if request.status == Status.RECEIVED and request.action_id is None:
            # Its submitter may have died after the action was recorded: find it by the key.
            requests[charge_id] = refund_request_attach(request=request, link=link) or request
            continue
        processing = request.status == Status.PROCESSING and request.action_id
        if processing and self_service_refund_sync(action_id=request.action_id):
            request.refresh_from_db()
    context = self_service_context(link=link)
    elsewhere = open_request_charges(
        workspace_id=workspace.pk, customer_id=link.customer_id, exclude_link_id=link.pk
    )
    rows = []
    for charge in customer_recent_charges(
        workspace=workspace, customer_id=link.customer_id, now=now
    ):
        made = requests.get(charge.stripe_id)
        if made is not None:
            rows.append(
                _row(
                    charge,
                    state="request",
                    status=made.status,
                    status_label=status_label(made.status),
                    message=request_message(made, workspace=workspace),
                )
            )
            continue
        if charge.stripe_id in elsewhere:
            rows.append(_row(charge, state="elsewhere", message=pending_elsewhere_message()))
            continue
        remainder = refundable(workspace, charge)
        dry = action_dry_run(
            context=context,
            kind=ActionKind.ISSUE_REFUND,
            customer_id=link.customer_id,
            params={
                "charge_id": charge.stripe_id,
                "amount": remainder or charge.amount,
                "currency": charge.currency.upper(),
                "reason": CUSTOMER_REASONS["no_longer_needed"][0],
            },
        )
        if dry.outcome in (EXECUTE, APPROVAL):
            rows.append(
                _row(
                    charge,
                    state="eligible",
                    route="now" if dry.outcome == EXECUTE else "review",
                    refundable=format_money(remainder, charge.currency.upper()),
                )
            )
        else:
            rows.append(
                _row(
                    charge,
                    state="refused",
                    reason=_denied_message(
                        refusal_reason(dry.code, workspace=workspace), workspace
                    ),
                )
            )
    return rows


def reason_choices() -> list[tuple[str, str]]:
    return [(key, str(label)) for key, (_reason, label) in CUSTOMER_REASONS.items()]
