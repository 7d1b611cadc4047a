"""The helpdesk connector interface. Connectors know nothing about billing.

A connector verifies that a request really comes from its helpdesk's app frame
and returns a ``HelpdeskIdentity``; it reads agents and posts notes with the
credentials of an ``Installation`` row. It holds no tenant state itself.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from django.http import HttpRequest

    from .models import Installation


class ConnectorError(Exception):
    """Base class; ``status`` is the HTTP status an entry point answers with."""

    status = 400
    code = "connector_error"

    def __init__(self, message: str, *, code: str | None = None):
        super().__init__(message)
        self.message = message
        if code:
            self.code = code


class EntryRejected(ConnectorError):
    """The entry request is not from a known installation's signed app frame."""

    status = 401
    code = "entry_rejected"


class HelpdeskApiError(ConnectorError):
    """The helpdesk API failed or refused. ``retryable`` for timeouts, 429 and 5xx."""

    status = 502
    code = "helpdesk_api_error"

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        retryable: bool = False,
        retry_after: float | None = None,
        http_status: int | None = None,
    ):
        super().__init__(message, code=code)
        self.retryable = retryable
        self.retry_after = retry_after
        self.http_status = http_status


class NotRegistered(KeyError):
    """No connector is registered under that key."""


@dataclass(frozen=True)
class AgentProfile:
    """An agent as the helpdesk's API describes them (read server-side, never from the frame)."""

    agent_id: str
    name: str
    email: str
    helpdesk_role: str  # e.g. Zendesk ``admin``/``agent``, Freshdesk role name
    custom_role_id: str = ""
    role_ids: tuple[str, ...] = ()
    group_ids: tuple[str, ...] = ()
    group_names: tuple[str, ...] = ()
    active: bool = True
    # The agent's language as the helpdesk profile gives it (Zendesk ``locale``,
    # Freshdesk ``contact.language``), e.g. ``de`` or ``en-US``; "" when unknown.
    locale: str = ""


@dataclass(frozen=True)
class HelpdeskIdentity:
    """A verified agent of a known installation, plus the ticket context the frame gave."""

    installation: Installation
    agent: AgentProfile
    ticket_id: str = ""
    requester_email: str = ""
    organization_id: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def username(self) -> str:
        """The Django username, e.g. ``zendesk:acme:12345``."""
        account = self.installation.domain.split(".")[0]
        return f"{self.installation.connector}:{account}:{self.agent.agent_id}"


@dataclass(frozen=True)
class TicketRecord:
    """A ticket as the dashboard needs it, normalised across helpdesks."""

    ticket_id: str
    subject: str
    status: str
    tags: tuple[str, ...]
    created_at: datetime
    updated_at: datetime
    solved_at: datetime | None
    requester_email: str = ""
    group_id: str = ""
    assignee_id: str = ""
    satisfaction_score: float | None = None  # 1–5, None when not rated
    reopens: int = 0
    escalated: bool = False
    raw: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class TicketPage:
    tickets: list[TicketRecord]
    cursor: str | None
    end_of_stream: bool


FEATURE_INTERNAL_NOTES = "internal_notes"
FEATURE_PUBLIC_REPLIES = "public_replies"
FEATURE_TICKET_EXPORT = "ticket_export"
FEATURE_CREATE_TICKET = "create_ticket"
ALL_FEATURES = frozenset(
    {FEATURE_INTERNAL_NOTES, FEATURE_PUBLIC_REPLIES, FEATURE_TICKET_EXPORT, FEATURE_CREATE_TICKET}
)


class HelpdeskConnector(ABC):
    """One helpdesk. Stateless: every tenant-specific value comes from the ``Installation``.

    Subclasses set ``key`` (the ``Installation.connector`` value and the settings key),
    ``name`` and ``features``, and implement every abstract hook. The contract suite in
    ``tests/helpdesk_connectors/test_contract.py`` runs against every registered one.
    """

    key: ClassVar[str]
    name: ClassVar[str]
    # A subset of ``ALL_FEATURES``.
    features: ClassVar[frozenset[str]] = frozenset()
    # The scheme named in ``WWW-Authenticate`` when an entry request is rejected.
    entry_auth_scheme: ClassVar[str] = "Helpdesk"

    @abstractmethod
    def verify_entry(self, request: HttpRequest) -> HelpdeskIdentity:
        """Verify the app frame's entry request tenant-first; raise ``EntryRejected``."""

    @abstractmethod
    def fetch_agent(self, installation: Installation, agent_id: str) -> AgentProfile:
        """Read the agent's role and groups from the helpdesk API; raise ``HelpdeskApiError``."""

    @abstractmethod
    def post_internal_note(self, installation: Installation, ticket_id: str, body: str) -> str:
        """Add a private note to the ticket; return the note/comment id where the API gives one."""

    @abstractmethod
    def post_public_reply(self, installation: Installation, ticket_id: str, body: str) -> str:
        """Reply to the requester on the ticket."""

    def find_recent_note(
        self, installation: Installation, ticket_id: str, *, marker: str
    ) -> str | None:
        """The id of a recent comment on the ticket whose text contains ``marker``, else None.

        Notes are delivered at least once: when an earlier post's outcome is unknown
        (timed out after sending, 5xx, the worker died), the outbox calls this before
        posting again, so a note that did land is not posted twice. ``marker`` is a
        line Billing Desk wrote into the note. Reads the newest comments only (a note
        is re-tried within hours, not months). Raise ``HelpdeskApiError`` when the
        helpdesk cannot be read — never answer None without having looked.
        """
        raise HelpdeskApiError(f"{self.name} connector cannot read comments", code="unsupported")

    @abstractmethod
    def tickets_updated_since(
        self, installation: Installation, *, since: datetime, cursor: str | None
    ) -> TicketPage:
        """One page of tickets changed since ``since`` (or from ``cursor``)."""

    def create_ticket(
        self,
        installation: Installation,
        *,
        subject: str,
        body: str,
        group: str = "",
        requester_email: str = "",
        requester_name: str = "",
        idempotency_key: str = "",
    ) -> str:
        """Open a ticket; return its id. Optional feature.

        ``group`` assigns it (a group id or name; "" leaves it unassigned). ``body`` is
        plain text (a connector whose helpdesk takes HTML escapes it and keeps its line
        breaks).

        Without a requester it is an internal ticket (CSM outreach): ``body`` is its first
        comment, private where the helpdesk allows it. With ``requester_email`` (and
        ``requester_name``) the customer is the requester, so the agent's reply reaches
        them (a self-service refund request, the billing widget's "contact support"), and
        ``body`` is the ticket's description **the customer can read** (Zendesk: a public
        first comment; Freshdesk: ``description``, shown in the customer portal and the
        acknowledgement email): words for the customer only. Whatever is for the agents
        alone goes in a private note afterwards (``post_internal_note``).

        ``idempotency_key`` (stable across retries of one ticket) lets a retry after an
        unknown outcome find the ticket instead of opening a second one: Zendesk takes it
        as the ``Idempotency-Key`` header; a helpdesk without one marks the ticket with it
        (a tag) for ``find_ticket``.
        """
        raise HelpdeskApiError(f"{self.name} connector cannot create tickets", code="unsupported")

    def find_ticket(self, installation: Installation, *, idempotency_key: str) -> str | None:
        """The id of a ticket an earlier ``create_ticket`` with ``idempotency_key`` opened.

        Called before creating again when an earlier attempt's outcome is unknown (timed
        out after sending, 5xx, the worker died). Raise ``HelpdeskApiError`` when the
        helpdesk cannot be read — never answer None without having looked; the default
        (``unsupported``) means the connector relies on ``create_ticket`` being idempotent
        itself (Zendesk's ``Idempotency-Key``) or accepts the duplicate risk.
        """
        raise HelpdeskApiError(f"{self.name} connector cannot find tickets", code="unsupported")

    def frame_ancestors(self, installation: Installation) -> list[str]:
        """Origins allowed to frame this installation's panel (CSP ``frame-ancestors``).

        Every ancestor in the chain must be listed: the helpdesk's agent page and any
        intermediate frame the helpdesk puts between it and the panel.
        """
        return [installation.base_url]
