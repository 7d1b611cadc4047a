"""Helpdesk tickets opened for a customer, with the customer as the requester.

A self-service refund request that needs an agent, and the billing widget's "contact
support", each become one helpdesk ticket whose requester is the customer (so the
agent's reply reaches them). The ticket is written as an outbox message of kind
``customer_ticket`` in the caller's transaction (``customer_ticket_enqueue``) — it exists
exactly when the request that asked for it does, and a broker or helpdesk outage only
delays it.

What the customer reads and what only agents read are kept apart. The requester sees the
ticket's description (Freshdesk shows it in the customer portal and the acknowledgement
email; Zendesk's public first comment), so ``body`` is words for the customer — what they
asked, nothing internal. The investigation (limits, refund history, the approval link)
is ``internal_note``: posted as a private note on the new ticket (Freshdesk
``private: true``, Zendesk ``public: false``, the demo helpdesk's internal comment)
through ``notes.helpdesk_note_deliver``, the one path of internal notes (a retry whose
earlier post may have landed finds it by its marker line). A caller that passes only
``body`` (the older form, where ``body`` was the investigation) gets its ``body`` posted
as the private note and a neutral description in its place.

Delivery (``customer_ticket_deliver``) tries the preferred installation (the one the
refund link was sent from), then the workspace's other active installations that can
open tickets (``ticket_openers``). Timeouts, 429 and 5xx are retried by the outbox on the
same installation; 401/403 (a revoked or rotated token an admin can fix) move on to the
next installation and, when none opens it, are retried with the outbox's backoff up to
its attempt limit; any other refusal moves on. When no installation opens the ticket the
message **fails** — the outbox row is ``failed`` (counted in /readyz's ``outbox.failed``),
an ERROR is logged, and the source's ``on_failed`` hook is told; a ticket is never
reported as opened when none was.

At most one ticket per request: the dedupe key ``customer_ticket:<workspace>:<source>:
<source_id>`` makes one message per request, and the message's id is the ticket's
idempotency key (``customer-ticket-<message id>``). Zendesk takes it as its
``Idempotency-Key`` header, so a retry after a timeout answers the first ticket. Freshdesk
has no such header: the ticket is tagged with the key, and a retry after an unknown
outcome searches for that tag first — Freshdesk's search index can lag a fresh ticket,
so a retry within that lag may still open a second ticket (both carry the marker line,
so an agent can merge them). Once opened, the ticket's reference is kept on the message:
a later retry (the note failed) never opens another.

The source of a ticket learns its reference through a hook it registers
(``customer_ticket_source_register``): the refund request records ``ticket_ref``, the
widget its contact event; ``customer_ticket_state`` answers whether it is pending,
opened or failed. Logs carry ids, never the customer's email or name.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.utils import translation
from django.utils.translation import gettext

from helpdesk_connectors.base import HelpdeskApiError, HelpdeskConnector
from helpdesk_connectors.models import Installation

from ..errors import BillingDeskError
from ..models import OutboxMessage, Workspace
from .notes import helpdesk_note_deliver, note_maybe_sent
from .outbox import outbox_enqueue, outbox_handler_register
from .refund_links import refund_link_create
from .ticket_openers import ticket_openers

__all__ = [
    "customer_ticket_enqueue",
    "customer_ticket_source_register",
    "customer_ticket_state",
    "refund_link_create",  # defined in refund_links; handed on here for the billing widget
]

logger = logging.getLogger(__name__)

MARKER_PREFIX = "billing-desk: customer-ticket"
# A helpdesk answering these may accept the same token again once an admin has fixed it.
AUTH_STATUSES = frozenset({401, 403})


@dataclass(frozen=True)
class _Source:
    # (source_id, ticket reference "connector:id") once the ticket is opened.
    on_created: Callable[[str, str], None]
    # (source_id, error code) when the outbox gave up: no ticket was opened.
    on_failed: Callable[[str, str], None] | None


_SOURCE_HOOKS: dict[str, _Source] = {}


class CustomerTicketNotOpened(BillingDeskError):
    """No installation of the workspace could open the ticket (final: the outbox gives up)."""

    code = "customer_ticket_not_opened"
    status = 503


def customer_ticket_source_register(
    *,
    source: str,
    on_created: Callable[[str, str], None],
    on_failed: Callable[[str, str], None] | None = None,
) -> None:
    """Tell the source's owner (at import) what became of each ticket it asked for:
    ``on_created(source_id, "connector:id")`` once it is opened, ``on_failed(source_id,
    code)`` when it could not be (no helpdesk opened it; the customer has no ticket)."""
    _SOURCE_HOOKS[source] = _Source(on_created, on_failed)


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
    internal_note: str | None = None,
) -> OutboxMessage:
    """Record a ticket for ``customer_id`` in the caller's transaction; the outbox opens it.

    ``source`` / ``source_id`` name what asked for it (``self_service_refund`` and the
    request's id, ``widget`` and the contact's id): the same pair enqueued twice is one
    ticket. ``installation`` is tried first (else the workspace's installations in
    order). Texts are plain and final, in the language of their readers:

    * ``subject`` and ``body`` — the customer reads them (the ticket's subject and
      description): what they asked, in words for them, nothing internal;
    * ``internal_note`` — the investigation for the agents, posted as a private note.

    Without ``internal_note`` (the older form) ``body`` is taken as the investigation:
    it becomes the private note and the description is a neutral acknowledgement in the
    active language.
    """
    message, _created = outbox_enqueue(
        workspace_id=workspace.pk,
        kind=OutboxMessage.Kind.CUSTOMER_TICKET,
        target_id=customer_id,
        dedupe_key=f"customer_ticket:{workspace.pk}:{source}:{source_id}",
        payload={
            "subject": subject[:255],
            "body": body,
            "internal_note": internal_note,
            "locale": translation.get_language() or settings.LANGUAGE_CODE,
            "requester_email": requester_email,
            "requester_name": requester_name,
            "source": source,
            "source_id": str(source_id),
            "installation_id": installation.pk if installation is not None else None,
        },
    )
    return message


def customer_ticket_state(*, workspace: Workspace, source: str, source_id: str) -> str:
    """``opened``, ``pending`` (not yet, or being retried), ``failed`` (no ticket: the
    customer must not be told an agent will reply), or ``none`` (never asked for)."""
    row = (
        OutboxMessage.objects.filter(
            dedupe_key=f"customer_ticket:{workspace.pk}:{source}:{source_id}"
        )
        .values("status", "payload")
        .first()
    )
    if row is None:
        return "none"
    if (row["payload"] or {}).get("ticket"):
        return "opened"
    if row["status"] == OutboxMessage.Status.FAILED:
        return "failed"
    return "pending"


def _texts(payload: dict[str, Any]) -> tuple[str, str]:
    """(customer-visible description, internal note). In the older form (no
    ``internal_note``) ``body`` is the investigation: it becomes the note."""
    if payload.get("internal_note") is None:
        return "", str(payload.get("body") or "")
    return str(payload.get("body") or ""), str(payload.get("internal_note") or "")


def customer_ticket_acknowledgement() -> str:
    """The description when the caller gave none: neutral, for the customer's eyes."""
    return gettext(
        "Thank you for your message. We have received your request and will reply to you by email."
    )


def idempotency_key(message: OutboxMessage) -> str:
    return f"customer-ticket-{message.pk}"


def _auth_refused(exc: HelpdeskApiError) -> bool:
    return (exc.http_status or 0) in AUTH_STATUSES


def _retry_later(exc: HelpdeskApiError) -> HelpdeskApiError:
    """A 401/403 made retryable: the outbox tries again with backoff, up to its limit."""
    return HelpdeskApiError(exc.message, code=exc.code, retryable=True, http_status=exc.http_status)


def _outcome_unknown(message: OutboxMessage, value: bool) -> None:
    OutboxMessage.objects.filter(pk=message.pk).update(outcome_unknown=value)


def _open_on(
    message: OutboxMessage,
    installation: Installation,
    connector: HelpdeskConnector,
    description: str,
) -> str:
    """The ticket's id on ``installation``: found (an earlier attempt's outcome is
    unknown and the helpdesk can look), else created. Raises ``HelpdeskApiError``.

    ``outcome_unknown`` stays set after a successful create: the caller clears it in the
    statement that stores the ticket's reference, so a worker that dies (or an UPDATE that
    fails) between the two leaves a row whose retry looks before it creates again. A
    search that fails while an earlier outcome is unknown is retried later on this same
    installation: moving on, or creating blind, could open a second ticket.
    """
    payload = message.payload
    key = idempotency_key(message)
    if message.outcome_unknown:
        try:
            found = connector.find_ticket(installation, idempotency_key=key)
        except HelpdeskApiError as exc:
            if exc.code != "unsupported":
                raise _retry_later(exc) from exc
            found = None
        if found:
            logger.info("customer ticket %s was already opened as %s", message.pk, found)
            return found
    _outcome_unknown(message, True)
    try:
        ticket_id = connector.create_ticket(
            installation,
            subject=payload["subject"],
            body=description,
            requester_email=payload.get("requester_email", ""),
            requester_name=payload.get("requester_name", ""),
            idempotency_key=key,
        )
    except HelpdeskApiError as exc:
        if not note_maybe_sent(exc):
            _outcome_unknown(message, False)
        raise
    return ticket_id


def _ticket_open(message: OutboxMessage, description: str) -> tuple[Installation, str]:
    """Open the ticket on the first installation that can: (installation, ticket id).

    A retryable error is raised at once (the retry tries the same installation again,
    so a slow helpdesk does not get a second ticket elsewhere). 401/403 and other
    refusals move on; when none opened it, 401/403 is retried later and anything else is
    final (``CustomerTicketNotOpened``).
    """
    workspace = Workspace.objects.get(pk=message.workspace_id)
    openers = ticket_openers(workspace, preferred_id=message.payload.get("installation_id"))
    auth_error: HelpdeskApiError | None = None
    for installation, connector in openers:
        try:
            return installation, _open_on(message, installation, connector, description)
        except HelpdeskApiError as exc:
            if exc.retryable:
                raise
            logger.warning(
                "customer ticket %s not created on installation %s: %s",
                message.pk,
                installation.pk,
                exc.code,
            )
            if _auth_refused(exc):
                auth_error = auth_error or exc
    if auth_error is not None:
        raise _retry_later(auth_error) from auth_error
    raise CustomerTicketNotOpened(
        "No helpdesk of the workspace opened the ticket."
        if openers
        else "No helpdesk of the workspace can open tickets."
    )


def customer_ticket_deliver(message: OutboxMessage) -> str:
    """Outbox handler: open the ticket (once), then post the investigation privately.

    Returns the ticket's reference ``connector:id``. The reference is kept on the message
    as soon as the ticket exists, so a retry (the note failed) posts only the note.
    """
    payload = dict(message.payload)
    description, note = _texts(payload)
    opened = payload.get("ticket")
    if not opened:
        with translation.override(payload.get("locale") or settings.LANGUAGE_CODE):
            description = description or customer_ticket_acknowledgement()
        installation, ticket_id = _ticket_open(message, description)
        opened = {
            "installation_id": installation.pk,
            "ticket_id": ticket_id,
            "ref": f"{installation.connector}:{ticket_id}",
        }
        payload["ticket"] = opened
        # The reference and the end of the unknown outcome in one statement (``_open_on``).
        OutboxMessage.objects.filter(pk=message.pk).update(payload=payload, outcome_unknown=False)
        message.payload = payload
        message.outcome_unknown = False
        source = _SOURCE_HOOKS.get(payload.get("source", ""))
        if source is not None:
            source.on_created(payload.get("source_id", ""), opened["ref"])
    else:
        installation = Installation.objects.get(pk=opened["installation_id"])
    if note:
        try:
            helpdesk_note_deliver(
                message=message,
                installation=installation,
                ticket_id=opened["ticket_id"],
                body=note,
                marker=f"{MARKER_PREFIX} {message.pk}",
            )
        except HelpdeskApiError as exc:
            if _auth_refused(exc):
                raise _retry_later(exc) from exc
            raise
    return str(opened["ref"])


def customer_ticket_give_up(message: OutboxMessage, error: Exception) -> None:
    """The outbox gave up: said loudly, and the source is told when no ticket exists."""
    payload = message.payload or {}
    code = getattr(error, "code", "") or type(error).__name__
    if payload.get("ticket"):
        logger.error(
            "customer ticket %s opened as %s but its investigation note was not posted: %s",
            message.pk,
            payload["ticket"].get("ref", ""),
            code,
        )
        return
    logger.error(
        "customer ticket %s NOT opened (source %s %s): %s",
        message.pk,
        payload.get("source", ""),
        payload.get("source_id", ""),
        code,
    )
    source = _SOURCE_HOOKS.get(payload.get("source", ""))
    if source is not None and source.on_failed is not None:
        source.on_failed(payload.get("source_id", ""), code)


outbox_handler_register(
    kind=OutboxMessage.Kind.CUSTOMER_TICKET,
    deliver=customer_ticket_deliver,
    give_up=customer_ticket_give_up,
)
