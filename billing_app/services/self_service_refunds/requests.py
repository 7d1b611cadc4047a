"""A customer's refund request: one per (link, charge), run through the agents' own path.

Exactly once: the request row is INSERTed first (``INSERT … ON CONFLICT DO NOTHING`` on
the unique (link, charge), committed on its own), so a double submit, a second tab or a
retried POST finds the first row and its reason, comment and amount. Then the row is
submitted as an ``issue_refund`` with the deterministic idempotency key
``selfservice:<link>:<charge>`` under the workspace's self-service ``AgentContext``
(``self_service_context``): every submitter of the same request — concurrent or later,
after a crash between the INSERT and the submission — asks ``action_submit`` with the same
key and the same parameters, and its idempotency answers all but the first with the first
action. The refund therefore reaches the provider once (its own idempotency key derives
from the action id). Two links of one customer asking for the same charge are two keys,
but one customer's decision lock: the second sees the first in flight and is refused
(nothing left to refund) exactly as an agent's second refund would be.

The decision is the agents' (``action_decide``): refund window, refundable remainder,
disputes, the refund pattern, the Billing Specialist's matrix cell and its limit, and on
top the workspace's ``self_service_refund_limit`` (``decision.self_service_cap``): within
it the refund executes now, with the audit, the action's note on the link's ticket and the
roll-ups of any action; above it (or the role's limit, or a refund pattern) it becomes an
approval request for the refund route's approvers, and a helpdesk ticket with the
customer as requester carries the investigation and the approval's link
(``customer_tickets``, written in the same transaction as the request's new status).
A refusal keeps the agents' error code (``refund_window_passed``, ``already_refunded``,
``charge_disputed``…); the page says it in the customer's words.

Rate limits (counted from the rows, like the Freshdesk enrollment codes): a link takes
``REQUESTS_PER_LINK_PER_HOUR`` new requests an hour, a customer
``REQUESTS_PER_CUSTOMER_PER_DAY`` a day across links. They are counted and the row
inserted under the customer's lock (``services.locks``), so concurrent posts count one
another. Logs carry ids only.

The link's sender (``link.created_by``, the agent who sent it) is recorded with the
request's action: the audit entry ``self_service_request.submitted`` names the action,
the link and its sender, and the agents' ticket says who sent the link — the action's
actor is the workspace's self-service user.

A request is never left without its action: if the process dies between
``action_submit``'s commit and ``_settled`` (a deploy, a timeout, a lost connection),
the action exists under the request's key. ``refund_request_attach`` finds it and
records it on the request (the page's GET does, and so does the periodic
``refund_requests_redrive``, which also submits a request whose action was never
recorded: its deterministic key makes the replay safe).
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.db import transaction
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext, gettext_lazy
from django.utils.translation import gettext as _

from ...action_words import date_words
from ...agent_context import AgentContext
from ...catalog import ActionKind, Role
from ...errors import (
    BillingDeskError,
    Conflict,
    NotFound,
    NotPermitted,
    PreconditionFailed,
    ValidationFailed,
)
from ...models import (
    AgentMembership,
    BillingAction,
    MirrorCharge,
    SelfServiceLink,
    SelfServiceRefundRequest,
)
from ...money import format_money
from ...selectors.action_messages import customer_language
from ...selectors.self_service_refunds import (
    customer_contact,
    customer_recent_refunds,
    customer_requests_since,
    open_request_charges,
    requests_since,
)
from ..actions import action_submit
from ..actions.refunds import refund_history, refundable
from ..audit import Event, audit_append
from ..customer_tickets import customer_ticket_enqueue, customer_ticket_source_register
from ..locks import customer_decision_lock
from .status import request_status_for, self_service_refund_sync

logger = logging.getLogger(__name__)

Status = SelfServiceRefundRequest.Status

REQUESTS_PER_LINK_PER_HOUR = 5
REQUESTS_PER_CUSTOMER_PER_DAY = 10
# A request still received without its action this long after it was made is re-driven
# (its submitter died); a live submission settles within seconds.
REDRIVE_AFTER = timedelta(minutes=5)
# ...and not older than this: a request stuck longer needs a person (the admin lists it
# under status "Received"; the re-drive no longer touches it).
REDRIVE_WITHIN = timedelta(days=7)
# Refusal code of a request on a payment another of the customer's links already asked
# about, while that request is still open.
REQUEST_PENDING = "request_pending"
TICKET_SOURCE = "self_service_refund"
# Exactly what the self-service context may do: read billing, and ask for a refund.
SELF_SERVICE_PERMS = frozenset({"view_billing", "issue_refund"})
SELF_SERVICE_ROLE = Role.SPECIALIST

# What a customer may give as the reason → our refund reason (and so Stripe's ``reason``:
# ``duplicate`` or ``requested_by_customer``, never ``fraudulent``).
CUSTOMER_REASONS: dict[str, tuple[str, Any]] = {
    "charged_twice": ("duplicate", gettext_lazy("I was charged twice")),
    "no_longer_needed": ("requested_by_customer", gettext_lazy("I no longer need it")),
    "wrong_amount": ("billing_error", gettext_lazy("The amount is wrong")),
    "not_satisfied": ("dissatisfaction", gettext_lazy("I am not satisfied with the service")),
    "other": ("other", gettext_lazy("Something else")),
}
COMMENT_MAX = 500


class RequestRateLimited(BillingDeskError):
    code = "refund_request_rate_limited"
    status = 429


def idempotency_key_for(request: SelfServiceRefundRequest) -> str:
    return f"selfservice:{request.link_id}:{request.charge_id}"


def self_service_user(*, workspace: Any) -> tuple[User, AgentMembership]:
    """The workspace's system user for customers' own requests (never signs in)."""
    user, created = User.objects.get_or_create(
        username=f"self-service:{workspace.slug}",
        defaults={"first_name": "Self-service", "is_active": False},
    )
    if created:
        user.set_unusable_password()
        user.save(update_fields=["password"])
    membership, _created = AgentMembership.objects.get_or_create(
        workspace=workspace,
        user=user,
        defaults={
            "role": SELF_SERVICE_ROLE.value,
            "role_source": "self-service (system user)",
            "display_name": "Self-service (customer)",
        },
    )
    return user, membership


def self_service_context(*, link: SelfServiceLink) -> AgentContext:
    """The context a customer's request acts in: the system user as a Billing Specialist
    holding exactly ``SELF_SERVICE_PERMS``, capped by the workspace's self-service limit."""
    workspace = link.workspace
    user, membership = self_service_user(workspace=workspace)
    return AgentContext(
        user=user,
        workspace=workspace,
        membership=membership,
        installation=link.installation,
        role=SELF_SERVICE_ROLE,
        perms=SELF_SERVICE_PERMS,
        self_service_limit=int(workspace.self_service_refund_limit),
    )


def refund_params(request: SelfServiceRefundRequest) -> dict[str, Any]:
    return {
        "charge_id": request.charge_id,
        "amount": request.amount,
        "currency": request.currency,
        "reason": CUSTOMER_REASONS[request.reason][0],
        "comment": request.comment,
    }


def _limits(link: SelfServiceLink, now: datetime) -> None:
    if requests_since(link=link, since=now - timedelta(hours=1)) >= REQUESTS_PER_LINK_PER_HOUR:
        raise RequestRateLimited(
            _("Too many requests from this link. Try again in an hour."),
            details={"retry_after": 3600},
        )
    if (
        customer_requests_since(
            workspace=link.workspace, customer_id=link.customer_id, since=now - timedelta(days=1)
        )
        >= REQUESTS_PER_CUSTOMER_PER_DAY
    ):
        raise RequestRateLimited(
            _("Too many refund requests today. Try again tomorrow or contact support."),
            details={"retry_after": 86400},
        )


def _record(
    link: SelfServiceLink, charge_id: str, reason: str, comment: str, now: datetime
) -> SelfServiceRefundRequest:
    """The request row: the first of any number of submissions of (link, charge)."""
    found = SelfServiceRefundRequest.objects.filter(link=link, charge_id=charge_id).first()
    if found is not None:
        return found
    _limits(link, now)
    charge = MirrorCharge.objects.filter(
        workspace=link.workspace, customer_id=link.customer_id, stripe_id=charge_id
    ).first()
    if charge is None:  # not this customer's (or no such charge): nothing is recorded
        raise NotFound(_("No such payment."), code="charge_not_found")
    # The refundable remainder now; a charge with none is still asked about (at its full
    # amount), so the agents' own refusal — already refunded, disputed — is what it gets.
    amount = refundable(link.workspace, charge) or charge.amount
    # Count and insert under the customer's lock: concurrent posts (on one link or several)
    # count one another, so the limits hold. Committed (and the lock released) before the
    # submission takes the same lock to decide.
    with customer_decision_lock(workspace=link.workspace, customer_id=link.customer_id):
        found = SelfServiceRefundRequest.objects.filter(link=link, charge_id=charge_id).first()
        if found is not None:
            return found
        _limits(link, now)
        SelfServiceRefundRequest.objects.bulk_create(
            [
                SelfServiceRefundRequest(
                    workspace=link.workspace,
                    link=link,
                    customer_id=link.customer_id,
                    charge_id=charge_id,
                    amount=amount,
                    currency=charge.currency.upper(),
                    reason=reason,
                    comment=comment,
                )
            ],
            ignore_conflicts=True,
        )
    return SelfServiceRefundRequest.objects.get(link=link, charge_id=charge_id)


def refund_request_submit(
    *,
    link: SelfServiceLink,
    charge_id: str,
    reason: str,
    comment: str = "",
    now: datetime | None = None,
) -> SelfServiceRefundRequest:
    """The customer's request on ``charge_id``: recorded once, then decided and run.

    Raises ``ValidationFailed`` (unknown reason), ``NotFound`` (a charge that is not the
    link's customer's) and ``RequestRateLimited`` (429) before anything is recorded. A
    request already made on this link for this charge is returned as it stands (after
    finishing its submission if that was interrupted).
    """
    if reason not in CUSTOMER_REASONS:
        raise ValidationFailed(_("Choose a reason."), code="invalid_reason")
    comment = " ".join((comment or "").split())[:COMMENT_MAX]
    request = _record(link, charge_id, reason, comment, now or timezone.now())
    if request.status == Status.RECEIVED and request.action_id is None:
        request = refund_request_process(request=request, link=link)
    return request


def refund_request_process(
    *, request: SelfServiceRefundRequest, link: SelfServiceLink
) -> SelfServiceRefundRequest:
    """Submit the request as the agents' refund action and record what became of it."""
    key = idempotency_key_for(request)
    try:
        action = action_submit(
            context=self_service_context(link=link),
            kind=ActionKind.ISSUE_REFUND,
            customer_id=request.customer_id,
            ticket_id=link.ticket_id,
            params=refund_params(request),
            idempotency_key=key,
        )
    except NotPermitted as exc:
        # The attempt is recorded (not permitted) under the key: the request points at it.
        recorded = BillingAction.objects.filter(
            workspace_id=request.workspace_id, idempotency_key=key
        ).first()
        if recorded is None:
            return _refused(request, exc.code)
        action = recorded
    except Conflict as exc:
        if exc.code == "action_in_progress":  # the first submitter is still at the provider
            return refund_request_attach(request=request, link=link) or request
        return _refused(request, _refusal_code(request, exc.code))
    except (PreconditionFailed, ValidationFailed, NotFound) as exc:
        return _refused(request, _refusal_code(request, exc.code))
    return _settled(request, action, link)


def _refusal_code(request: SelfServiceRefundRequest, code: str) -> str:
    """The agents' code — unless another of the customer's requests on this payment is
    still open: then nothing is left because that request holds it (``request_pending``)."""
    if code in ("already_refunded", "action_outcome_unknown") and open_request_charges(
        workspace_id=request.workspace_id,
        customer_id=request.customer_id,
        charge_id=request.charge_id,
        exclude_pk=request.pk,
    ):
        return REQUEST_PENDING
    return code


def refund_request_attach(
    *, request: SelfServiceRefundRequest, link: SelfServiceLink
) -> SelfServiceRefundRequest | None:
    """Record on a request still without its action the action its key made, if one exists.

    The submitter may have died after ``action_submit`` committed and before ``_settled``:
    the action (executing, executed, awaiting approval...) is then found by the request's
    idempotency key. ``None`` when no action has that key (nothing was submitted).
    """
    action = BillingAction.objects.filter(
        workspace_id=request.workspace_id, idempotency_key=idempotency_key_for(request)
    ).first()
    if action is None:
        return None
    return _settled(request, action, link)


def _refused(request: SelfServiceRefundRequest, code: str) -> SelfServiceRefundRequest:
    SelfServiceRefundRequest.objects.filter(pk=request.pk, status=Status.RECEIVED).update(
        status=Status.REFUSED, refusal_code=code[:64], decided_at=timezone.now()
    )
    logger.info("self-service refund request %s refused: %s", request.pk, code)
    request.refresh_from_db()
    return request


@transaction.atomic
def _settled(
    request: SelfServiceRefundRequest, action: BillingAction, link: SelfServiceLink
) -> SelfServiceRefundRequest:
    """Record the action and its outcome on the request; an approval also opens a ticket."""
    status, code = request_status_for(action)
    fields: dict[str, Any] = {
        "action": action,
        "status": status,
        "refusal_code": code,
        "amount_base": action.amount_base,
    }
    if status not in (Status.WITH_AGENTS, Status.PROCESSING):
        fields["decided_at"] = timezone.now()
    moved = SelfServiceRefundRequest.objects.filter(
        pk=request.pk, status=Status.RECEIVED, action__isnull=True
    ).update(**fields)
    if not moved:
        # Another caller recorded the action first (the page, the re-drive) while it was
        # still open: move the request on to where the action is now.
        self_service_refund_sync(action_id=action.pk)
    request.refresh_from_db()
    if moved:
        if status == Status.WITH_AGENTS:
            _ticket_enqueue(request, action, link)
        audit_append(workspace_id=request.workspace_id, events=[_request_event(request, link)])
    logger.info(
        "self-service refund request %s: action %s, %s", request.pk, action.pk, request.status
    )
    return request


def _request_event(request: SelfServiceRefundRequest, link: SelfServiceLink) -> Event:
    """The request and its action, with who sent the link: the action's actor is the
    self-service user, the link's sender is named here."""
    data = {
        "id": str(request.pk),
        "action_id": str(request.action_id),
        "link_id": str(link.pk),
        "link_source": link.source,
        "link_created_by_id": link.created_by_id,
        "ticket_id": link.ticket_id,
        "customer_id": request.customer_id,
        "charge_id": request.charge_id,
        "status": request.status,
    }
    actor_id = request.action.actor_id if request.action is not None else None
    return Event("self_service_request.submitted", REQUEST_SUBJECT, str(request.pk), data, actor_id)


REQUEST_SUBJECT = "self_service_refund_request"


# --- the re-drive ---------------------------------------------------------------------------


def refund_requests_redrive(*, now: datetime | None = None, limit: int = 100) -> int:
    """Finish requests left ``received`` without an action; returns how many moved on.

    A request made more than ``REDRIVE_AFTER`` ago whose submitter died: its action, if
    ``action_submit`` committed one, is recorded on it (``refund_request_attach``);
    otherwise it is submitted now with its deterministic key (a twin that did commit
    meanwhile is answered by idempotency). Only live workspaces'; safe to run twice.
    """
    now = now or timezone.now()
    stuck = list(
        SelfServiceRefundRequest.objects.filter(
            status=Status.RECEIVED,
            action__isnull=True,
            created_at__lt=now - REDRIVE_AFTER,
            created_at__gt=now - REDRIVE_WITHIN,
            workspace__is_active=True,
        )
        .select_related("link", "link__workspace", "link__installation")
        .order_by("created_at")[:limit]
    )
    moved = 0
    for request in stuck:
        link = request.link
        logger.warning("re-driving self-service refund request %s", request.pk)
        try:
            after = refund_request_attach(request=request, link=link)
            if after is None:
                after = refund_request_process(request=request, link=link)
        except Exception:  # one bad request must not stop the others; it stays received
            logger.exception("re-driving self-service refund request %s failed", request.pk)
            continue
        if after.status != Status.RECEIVED or after.action_id is not None:
            moved += 1
    return moved


# --- the ticket for the agents --------------------------------------------------------------


def _absolute(path: str) -> str:
    return f"{settings.PUBLIC_BASE_URL}{path}"


def investigation_body(
    request: SelfServiceRefundRequest, action: BillingAction, link: SelfServiceLink
) -> tuple[str, str]:
    """(subject, body) of the agents' ticket, in the deployment's language."""
    workspace = link.workspace
    email, name = customer_contact(workspace=workspace, customer_id=request.customer_id)
    charge = MirrorCharge.objects.filter(workspace=workspace, stripe_id=request.charge_id).first()
    amount = format_money(request.amount, request.currency)
    approval = getattr(action, "approval", None)
    history = refund_history(workspace=workspace, customer_id=request.customer_id)
    subject = gettext("Refund request from %(customer)s: %(amount)s") % {
        "customer": name or email or request.customer_id,
        "amount": amount,
    }
    lines = [
        gettext("The customer asked for a refund on the self-service page."),
        "",
        gettext("Customer: %(name)s (%(customer)s)")
        % {"name": name or "—", "customer": request.customer_id},
        gettext("Payment: %(charge)s of %(date)s, %(paid)s")
        % {
            "charge": request.charge_id,
            "date": date_words(charge.created) if charge and charge.created else "—",
            "paid": format_money(charge.amount, request.currency) if charge else "—",
        },
        gettext("Refund asked for: %(amount)s") % {"amount": amount},
        gettext("Reason: %(reason)s") % {"reason": str(CUSTOMER_REASONS[request.reason][1])},
        gettext("Comment: %(comment)s") % {"comment": request.comment or "—"},
        gettext("Why an agent decides: %(reason)s") % {"reason": action.reason_text},
        gettext("Refunds in the last %(days)s days, this request included: %(count)s")
        % {"days": workspace.refund_pattern_days, "count": history.refunds_in_pattern_window},
    ]
    for refund in customer_recent_refunds(workspace=workspace, customer_id=request.customer_id):
        lines.append(
            "  · "
            + gettext("%(date)s: %(amount)s on %(charge)s")
            % {
                "date": date_words(refund.created) if refund.created else "—",
                "amount": format_money(refund.amount, refund.currency),
                "charge": refund.charge_id or "—",
            }
        )
    if link.ticket_id:
        lines.append(
            gettext("The link was sent from ticket %(ticket)s.") % {"ticket": link.ticket_id}
        )
    sender = link.created_by
    if sender is not None:
        lines.append(
            gettext("The link was sent by %(agent)s.")
            % {"agent": sender.get_full_name() or sender.get_username()}
        )
    if approval is not None:
        path = reverse("approvals-detail", kwargs={"approval_id": approval.pk})
        lines += ["", gettext("Approve or deny: %(url)s") % {"url": _absolute(path)}]
    return subject, "\n".join(lines)


def customer_ticket_text(request: SelfServiceRefundRequest, link: SelfServiceLink) -> str:
    """The ticket's description, for the customer (their language is the active one):
    the payment, the amount, their reason and comment, and that an agent replies by email.
    Plain text; nothing internal (no limits, history or approval link)."""
    charge = MirrorCharge.objects.filter(
        workspace=link.workspace, stripe_id=request.charge_id
    ).first()
    lines = [
        gettext("We have received your refund request."),
        "",
        gettext("Payment: %(date)s, %(paid)s")
        % {
            "date": date_words(charge.created) if charge and charge.created else "—",
            "paid": format_money(charge.amount, request.currency) if charge else "—",
        },
        gettext("Refund asked for: %(amount)s")
        % {"amount": format_money(request.amount, request.currency)},
        gettext("Reason: %(reason)s") % {"reason": str(CUSTOMER_REASONS[request.reason][1])},
        gettext("Comment: %(comment)s") % {"comment": request.comment or "—"},
        "",
        gettext("Our billing team will review your request and reply to you by email."),
    ]
    return "\n".join(lines)


def _ticket_enqueue(
    request: SelfServiceRefundRequest, action: BillingAction, link: SelfServiceLink
) -> None:
    """The agents' ticket: the description is the customer's (in their language), the
    investigation a private note (in the deployment's)."""
    email, name = customer_contact(workspace=link.workspace, customer_id=request.customer_id)
    with translation.override(settings.LANGUAGE_CODE):
        subject, investigation = investigation_body(request, action, link)
    language = customer_language(workspace_id=link.workspace_id, customer_id=request.customer_id)
    with translation.override(language):
        customer_ticket_enqueue(
            workspace=link.workspace,
            customer_id=request.customer_id,
            subject=subject,
            body=customer_ticket_text(request, link),
            internal_note=investigation,
            requester_email=email,
            requester_name=name,
            source=TICKET_SOURCE,
            source_id=str(request.pk),
            installation=link.installation,
        )


def _ticket_created(source_id: str, ref: str) -> None:
    if ref:
        SelfServiceRefundRequest.objects.filter(pk=source_id).update(ticket_ref=ref[:255])


def _ticket_failed(source_id: str, code: str) -> None:
    """No helpdesk opened the request's ticket: audited (the page then says so, from
    ``customer_ticket_state``). The request's decision stands: its approval request is
    still in /approvals/ for the agents."""
    request = SelfServiceRefundRequest.objects.filter(pk=source_id).first()
    if request is None:
        return
    logger.error("self-service refund request %s: its ticket was not opened (%s)", source_id, code)
    with transaction.atomic():
        audit_append(
            workspace_id=request.workspace_id,
            events=[
                Event(
                    "self_service_request.ticket_failed",
                    REQUEST_SUBJECT,
                    str(request.pk),
                    {"id": str(request.pk), "action_id": str(request.action_id), "code": code[:64]},
                )
            ],
        )


customer_ticket_source_register(
    source=TICKET_SOURCE, on_created=_ticket_created, on_failed=_ticket_failed
)
