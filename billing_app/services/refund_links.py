"""Refund-request links: a ``SelfServiceLink`` row, and a signed token that names it.

The token is ``django.core.signing`` (HMAC-SHA256 with ``SECRET_KEY``, compared in
constant time by Django's signer) under a salt of its own, so no other signed token of
Billing Desk (the card-update link, a session) is accepted here. It carries only the
link's id and is timestamped with the link's creation (so one link always has one URL,
whenever and however often it is handed out): it is refused past the link's lifetime by
the signature's maximum age and by the row's ``expires_at``, and at once when the row is
revoked. A forged, altered, expired, revoked or unknown token is the same ``None`` to the
caller, and the page answers each with the same generic page (no customer data, no hint
which).

Links are rate-limited per customer (``LINKS_PER_CUSTOMER_PER_HOUR``, counted from the
rows as the Freshdesk enrollment codes are, under the customer's lock so concurrent
creations count one another) so a button or a widget cannot mint them without bound.
Each link is audited (who sent it, from where, until when). A link of a deactivated
workspace reads as nothing.

An agent may send one only if their role may refund at all (``refund_link_sender_check``:
the guardian ``issue_refund`` permission and a matrix cell that is not "not permitted",
asked of the policy's own ``decide``): the customer's request then acts with the
self-service context, so a link must not let a role that may not refund start one.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth.models import User
from django.core import signing
from django.db import transaction
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from helpdesk_connectors.models import Installation

from ..agent_context import AgentContext
from ..catalog import PolicyAction
from ..errors import BillingDeskError, NotFound, NotPermitted
from ..models import MirrorCustomer, SelfServiceLink, Workspace
from ..policy import ActionRequest, Deny, History, decide
from .audit import Event, audit_append, json_plain
from .locks import customer_decision_lock
from .policy import policy_rules_load

LINK_SALT = "billing_app.self_service.refund_link"
LINK_SUBJECT = "self_service_link"
LINKS_PER_CUSTOMER_PER_HOUR = 10
LINKS_PER_SENDER_PER_HOUR = 60
# The longest a link may live whatever the workspace sets (the signature's maximum age).
LINK_MAX_DAYS = 90
SOURCES = frozenset({"panel", "api", "macro", "email", "widget", "command"})


class LinkRateLimited(BillingDeskError):
    code = "refund_link_rate_limited"
    status = 429


class _LinkSigner(signing.TimestampSigner):
    """Django's timestamp signer, with the link's creation as the timestamp."""

    def __init__(self, *, created_at: datetime) -> None:
        super().__init__(salt=LINK_SALT)
        self._created_at = created_at

    def timestamp(self) -> str:
        return signing.b62_encode(int(self._created_at.timestamp()))


def refund_link_token(link: SelfServiceLink) -> str:
    """The link's token: the same string every time it is asked for (read by ``signing.loads``)."""
    return _LinkSigner(created_at=link.created_at).sign_object({"l": str(link.pk)}, compress=True)


def refund_link_url(link: SelfServiceLink) -> str:
    """The absolute URL of the refund-request page for ``link``."""
    path = reverse("refund-request", kwargs={"token": refund_link_token(link)})
    return f"{settings.PUBLIC_BASE_URL}{path}"


def refund_link_read(token: str, *, now: datetime | None = None) -> SelfServiceLink | None:
    """The live link a token names; ``None`` for anything else (forged, expired, revoked)."""
    if not token or len(token) > 512:
        return None
    try:
        payload = signing.loads(token, salt=LINK_SALT, max_age=timedelta(days=LINK_MAX_DAYS))
        link_id = uuid.UUID(str(payload["l"]))
    except (signing.BadSignature, KeyError, TypeError, ValueError, AttributeError):
        return None
    now = now or timezone.now()
    return (
        SelfServiceLink.objects.select_related("workspace")
        .filter(
            pk=link_id,
            expires_at__gt=now,
            revoked_at__isnull=True,
            workspace__is_active=True,
        )
        .first()
    )


def refund_link_sender_check(*, context: AgentContext) -> None:
    """Raise ``NotPermitted`` unless the agent's role may refund (directly or by approval).

    Asked of the matrix's own ``decide`` for a refund of no stated size: it refuses exactly
    when the role's group lacks the guardian ``issue_refund`` permission or the role's
    ``issue_refund`` cell is "not permitted" (the panel's ``mode`` from ``GET me/``).
    """
    decision = decide(
        role=context.role,
        request=ActionRequest(action=PolicyAction.ISSUE_REFUND, customer_requested=True),
        history=History(),
        rules=policy_rules_load(workspace=context.workspace),
        permitted=context.may(PolicyAction.ISSUE_REFUND.value),
    )
    if isinstance(decision, Deny):
        raise NotPermitted(
            _("Your role may not refund in this workspace, so it may not send a refund link."),
            details={"rule": decision.code},
        )


def _link_event(event: str, link: SelfServiceLink, actor_id: int | None) -> Event:
    data = {
        "id": str(link.pk),
        "customer_id": link.customer_id,
        "source": link.source,
        "ticket_id": link.ticket_id,
        "installation_id": link.installation_id,
        "created_by_id": link.created_by_id,
        "expires_at": json_plain(link.expires_at),
        "revoked_at": json_plain(link.revoked_at),
    }
    return Event(event, LINK_SUBJECT, str(link.pk), data, actor_id)


@transaction.atomic
def refund_link_create(
    *,
    workspace: Workspace,
    customer_id: str,
    source: str,
    created_by: User | None = None,
    ticket_id: str = "",
    installation: Installation | None = None,
    now: datetime | None = None,
) -> tuple[SelfServiceLink, str]:
    """A new refund-request link for ``customer_id``, and its absolute signed URL.

    ``source`` says where it is sent from (panel, api, macro, email, widget, command).
    The customer must be in the workspace's mirror (``NotFound`` otherwise); more than
    ``LINKS_PER_CUSTOMER_PER_HOUR`` links for one customer, or ``LINKS_PER_SENDER_PER_HOUR``
    by one agent, in an hour raise ``LinkRateLimited`` (429). The link lives ``workspace.self_service_link_days``.
    """
    if source not in SOURCES:
        raise BillingDeskError(_("Unknown link source."), code="invalid_source")
    now = now or timezone.now()
    if not MirrorCustomer.objects.filter(
        workspace=workspace, stripe_id=customer_id, deleted=False
    ).exists():
        raise NotFound(_("No such customer."), code="customer_not_found")
    # Count and insert under the customer's lock (held to this transaction's commit):
    # concurrent creations for one customer count one another.
    with customer_decision_lock(workspace=workspace, customer_id=customer_id):
        return _link_create(
            workspace=workspace,
            customer_id=customer_id,
            source=source,
            created_by=created_by,
            ticket_id=ticket_id,
            installation=installation,
            now=now,
        )


def _link_create(
    *,
    workspace: Workspace,
    customer_id: str,
    source: str,
    created_by: User | None,
    ticket_id: str,
    installation: Installation | None,
    now: datetime,
) -> tuple[SelfServiceLink, str]:
    recent = SelfServiceLink.objects.filter(
        workspace=workspace, customer_id=customer_id, created_at__gt=now - timedelta(hours=1)
    ).count()
    sent = (
        SelfServiceLink.objects.filter(
            created_by=created_by, created_at__gt=now - timedelta(hours=1)
        ).count()
        if created_by is not None
        else 0
    )
    if recent >= LINKS_PER_CUSTOMER_PER_HOUR or sent >= LINKS_PER_SENDER_PER_HOUR:
        raise LinkRateLimited(
            _("Too many refund links in the last hour. Try again later."),
            details={"retry_after": 3600},
        )
    days = max(1, min(workspace.self_service_link_days, LINK_MAX_DAYS))
    link = SelfServiceLink.objects.create(
        workspace=workspace,
        customer_id=customer_id,
        created_by=created_by,
        ticket_id=str(ticket_id or "")[:64],
        installation=installation,
        source=source,
        expires_at=now + timedelta(days=days),
    )
    actor_id = created_by.pk if created_by is not None else None
    audit_append(
        workspace_id=workspace.pk,
        events=[_link_event("self_service_link.created", link, actor_id)],
    )
    return link, refund_link_url(link)


@transaction.atomic
def refund_link_revoke(
    *, link: SelfServiceLink, revoked_by: User | None = None, now: datetime | None = None
) -> SelfServiceLink:
    """Make the link stop working at once (its page then reveals nothing); audited."""
    now = now or timezone.now()
    if SelfServiceLink.objects.filter(pk=link.pk, revoked_at__isnull=True).update(revoked_at=now):
        link.refresh_from_db()
        audit_append(
            workspace_id=link.workspace_id,
            events=[
                _link_event(
                    "self_service_link.revoked",
                    link,
                    revoked_by.pk if revoked_by is not None else None,
                )
            ],
        )
    return link
