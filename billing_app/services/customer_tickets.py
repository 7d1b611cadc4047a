"""Helpdesk tickets opened for a customer, with the customer as the requester.

A self-service refund request that needs an agent, and the billing widget's "contact
support", each become one helpdesk ticket whose requester is the customer (so the
agent's reply reaches them) and whose first comment is the investigation for the
agents. The ticket is written as an outbox message of kind ``customer_ticket`` in the
caller's transaction (``customer_ticket_enqueue``) — it exists exactly when the request
that asked for it does, and a broker or helpdesk outage only delays it.

Delivery (``customer_ticket_deliver``) tries the preferred installation (the one the
refund link was sent from), then the workspace's other active installations, and opens
the ticket on the first whose connector can (``FEATURE_CREATE_TICKET``): Zendesk,
Freshdesk, or the demo helpdesk. The outbox retries timeouts, 429 and 5xx.

Exactly once: the dedupe key ``customer_ticket:<workspace>:<source>:<source_id>`` makes
one message per request however often it is enqueued. Creating a ticket has no
idempotency key at the helpdesks, so a retry after an attempt whose outcome is unknown
(a timeout after the helpdesk received it) may open a second ticket: at least once, never
lost. Both carry the same marker line so an agent can merge them.

The source of a ticket learns its reference through a hook it registers
(``customer_ticket_source_register``): the refund request records ``ticket_ref``, the
widget its contact event. Logs carry ids, never the customer's email or name.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from helpdesk_connectors.base import FEATURE_CREATE_TICKET, HelpdeskApiError, NotRegistered
from helpdesk_connectors.models import Installation
from helpdesk_connectors.registry import connector_for

from ..models import OutboxMessage, Workspace
from .outbox import outbox_enqueue, outbox_handler_register
from .refund_links import refund_link_create

__all__ = [
    "customer_ticket_enqueue",
    "customer_ticket_source_register",
    "refund_link_create",  # defined in refund_links; handed on here for the billing widget
]

logger = logging.getLogger(__name__)

MARKER_PREFIX = "billing-desk: customer-ticket"

# source → called with (source_id, ticket reference "connector:id", or "" when no helpdesk
# of the workspace can open tickets).
_SOURCE_HOOKS: dict[str, Callable[[str, str], None]] = {}


def customer_ticket_source_register(*, source: str, on_created: Callable[[str, str], None]) -> None:
    """Tell the source's owner (at import) the reference of each ticket it asked for."""
    _SOURCE_HOOKS[source] = on_created


def customer_ticket_enqueue(
    *,
    workspace: Workspace,
    customer_id: str,
    subject: str,
    body: str,
    requester_email: str,
    requester_name: str,
    source: str,
    source_id: str,
    installation: Installation | None = None,
) -> OutboxMessage:
    """Record a ticket for ``customer_id`` in the caller's transaction; the outbox opens it.

    ``source`` / ``source_id`` name what asked for it (``self_service_refund`` and the
    request's id, ``widget`` and the contact's id): the same pair enqueued twice is one
    ticket. ``installation`` is tried first (else the workspace's installations in
    order). ``subject`` and ``body`` are final text, in the language of their readers.
    """
    message, _created = outbox_enqueue(
        workspace_id=workspace.pk,
        kind=OutboxMessage.Kind.CUSTOMER_TICKET,
        target_id=customer_id,
        dedupe_key=f"customer_ticket:{workspace.pk}:{source}:{source_id}",
        payload={
            "subject": subject[:255],
            "body": body,
            "requester_email": requester_email,
            "requester_name": requester_name,
            "source": source,
            "source_id": str(source_id),
            "installation_id": installation.pk if installation is not None else None,
        },
    )
    return message


def _installations(workspace_id: int, preferred_id: int | None) -> list[Installation]:
    found = [
        link.installation
        for link in Workspace.objects.get(pk=workspace_id)
        .installation_links.select_related("installation")
        .order_by("pk")
        if link.installation.is_active
    ]
    found.sort(key=lambda i: i.pk != preferred_id)
    return found


def customer_ticket_deliver(message: OutboxMessage) -> str:
    """Outbox handler: open the ticket on the first installation that can; its reference.

    A retryable helpdesk error is raised for the outbox to retry; a refusal (bad
    credentials, unknown group) moves on to the next installation.
    """
    payload = message.payload
    body = f"{payload['body']}\n\n{MARKER_PREFIX} {message.pk}"
    ref = ""
    for installation in _installations(message.workspace_id, payload.get("installation_id")):
        try:
            connector = connector_for(installation)
        except NotRegistered:
            continue
        if FEATURE_CREATE_TICKET not in connector.features:
            continue
        try:
            ticket_id = connector.create_ticket(
                installation,
                subject=payload["subject"],
                body=body,
                requester_email=payload.get("requester_email", ""),
                requester_name=payload.get("requester_name", ""),
            )
        except HelpdeskApiError as exc:
            if exc.retryable:
                raise
            logger.warning(
                "customer ticket %s not created on installation %s: %s",
                message.pk,
                installation.pk,
                exc.code,
            )
            continue
        ref = f"{installation.connector}:{ticket_id}"
        break
    if not ref:
        logger.warning("customer ticket %s: no helpdesk of the workspace can open it", message.pk)
    hook = _SOURCE_HOOKS.get(payload.get("source", ""))
    if hook is not None:
        hook(payload.get("source_id", ""), ref)
    return ref


def customer_ticket_give_up(message: OutboxMessage, error: Exception) -> None:
    logger.warning("customer ticket %s given up: %s", message.pk, type(error).__name__)


outbox_handler_register(
    kind=OutboxMessage.Kind.CUSTOMER_TICKET,
    deliver=customer_ticket_deliver,
    give_up=customer_ticket_give_up,
)
