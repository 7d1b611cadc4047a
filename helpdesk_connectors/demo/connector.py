"""The demo connector: a local 'helpdesk' for the demo and tests.

It signs agents in with the role the demo's role switcher picks — which is why it
only answers in demo mode (``settings.DEMO_MODE`` together with ``DEBUG`` or
tests) and why a system check refuses ``DEMO_MODE`` with ``DEBUG`` off
(``helpdesk_connectors.E001``). Its tickets, notes and replies are rows in
``DemoTicket`` / ``DemoTicketComment``, so the demo host page can show what was
posted back to the ticket and the dashboard can sync demo tickets like real ones.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db.models import Q
from django.utils import timezone, translation
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext

from ..base import (
    FEATURE_CREATE_TICKET,
    FEATURE_INTERNAL_NOTES,
    FEATURE_PUBLIC_REPLIES,
    FEATURE_TICKET_EXPORT,
    AgentProfile,
    EntryRejected,
    HelpdeskApiError,
    HelpdeskConnector,
    HelpdeskIdentity,
    TicketPage,
    TicketRecord,
)
from ..entry import entry_json_body
from ..models import DemoTicket, DemoTicketComment, Installation

if TYPE_CHECKING:
    from django.http import HttpRequest

# The agent roles of the demo's role switcher (billing's Role values; no billing import here).
DEMO_ROLES = {
    "l1": "L1 Agent",
    "l2": "L2 Agent",
    "manager": "Manager",
    "specialist": "Billing Specialist",
}
PAGE_SIZE = 100
# The session request is two short fields; anything bigger is not the demo page talking.
MAX_BODY_BYTES = 4096
_SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{1,48}[a-z0-9]$")
# The demo agent's language, as a helpdesk profile names one (``de``, ``de-DE``, ``en``).
_LOCALE = re.compile(r"^[A-Za-z]{2,8}(?:[-_][A-Za-z0-9]{1,8}){0,3}$")


def demo_enabled() -> bool:
    """Demo mode is on, and this is a development server or the test suite — never production."""
    return bool(settings.DEMO_MODE) and bool(settings.DEBUG or getattr(settings, "TESTING", False))


def demo_agent(role: str, locale: str = "") -> AgentProfile:
    """The demo agent of ``role``; ``locale`` is the language their "profile" names (the demo
    host's language choice), as Zendesk's ``user.locale`` would."""
    return AgentProfile(
        agent_id=f"demo-{role}",
        name=f"Demo {DEMO_ROLES[role]}",
        email=f"demo-{role}@agents.demo.invalid",
        helpdesk_role="agent",
        locale=locale,
    )


def demo_locale(body: dict[str, Any], request: HttpRequest) -> str:
    """The demo agent's language: the body's ``lang`` (the host page's choice) when given,
    else the language ``LocaleMiddleware`` chose for this request (the browser's
    ``Accept-Language`` or the language cookie): the demo has no profile to read."""
    lang = body.get("lang")
    if lang is None or lang == "":
        return translation.get_language() or ""
    if not isinstance(lang, str) or not _LOCALE.match(lang):
        raise EntryRejected(
            gettext("lang must be a language tag such as en or de."), code="bad_lang"
        )
    return lang


class DemoConnector(HelpdeskConnector):
    key = "demo"
    name = "Demo"
    features = frozenset(
        {
            FEATURE_INTERNAL_NOTES,
            FEATURE_PUBLIC_REPLIES,
            FEATURE_TICKET_EXPORT,
            FEATURE_CREATE_TICKET,
        }
    )
    entry_auth_scheme = "Demo"

    def verify_entry(self, request: HttpRequest) -> HelpdeskIdentity:
        """``{"role", "workspace"}`` → the demo agent of that role in that workspace's demo installation."""
        if not demo_enabled():
            raise EntryRejected(
                gettext("The demo is not enabled on this server."), code="demo_disabled"
            )
        body = self._body(request)
        role = body.get("role")
        if role not in DEMO_ROLES:
            raise EntryRejected(
                gettext("role must be one of %(roles)s.") % {"roles": ", ".join(DEMO_ROLES)},
                code="bad_role",
            )
        slug = body.get("workspace")
        if not isinstance(slug, str) or not _SLUG.match(slug):
            raise EntryRejected(
                gettext("workspace must be a workspace slug."), code="bad_workspace"
            )
        locale = demo_locale(body, request)
        installation = self.installation_for(slug)
        if installation is None:
            raise EntryRejected(
                gettext("That workspace has no demo installation."), code="unknown_installation"
            )
        ticket_id = body.get("ticket_id")
        return HelpdeskIdentity(
            installation=installation,
            agent=demo_agent(role, locale),
            ticket_id=str(ticket_id) if isinstance(ticket_id, str | int) else "",
            requester_email=str(body.get("requester_email") or "")[:254],
            extra={"role": role},
        )

    @staticmethod
    def installation_for(slug: str) -> Installation | None:
        """The workspace's demo installation, through the link the billing side keeps.

        ``workspace_link`` is the reverse name of ``billing_app.WorkspaceInstallation``;
        querying through it keeps this package free of billing imports.
        """
        return (
            Installation.objects.filter(connector="demo", is_active=True)
            .filter(Q(workspace_link__workspace__slug=slug))
            .first()
        )

    @staticmethod
    def _body(request: HttpRequest) -> dict[str, Any]:
        body = entry_json_body(request, max_bytes=MAX_BODY_BYTES)  # 413/400, depth-bounded
        if not isinstance(body, dict):
            raise EntryRejected(
                gettext("The request body must be a JSON object."), code="bad_request"
            )
        return body

    def frame_ancestors(self, installation: Installation) -> list[str]:
        return ["'self'"]

    def fetch_agent(self, installation: Installation, agent_id: str) -> AgentProfile:
        role = str(agent_id).removeprefix("demo-")
        if not str(agent_id).startswith("demo-") or role not in DEMO_ROLES:
            raise HelpdeskApiError(
                f"No demo agent {agent_id!r}.", code="helpdesk_not_found", http_status=404
            )
        return demo_agent(role)

    def _comment(self, installation: Installation, ticket_id: str, body: str, public: bool) -> str:
        if not str(ticket_id).strip():
            raise HelpdeskApiError("No ticket id.", code="helpdesk_not_found", http_status=404)
        comment = DemoTicketComment.objects.create(
            installation=installation, ticket_id=str(ticket_id), body=body, public=public
        )
        DemoTicket.objects.filter(installation=installation, ticket_id=str(ticket_id)).update(
            updated_at=timezone.now()
        )
        return str(comment.pk)

    def post_internal_note(self, installation: Installation, ticket_id: str, body: str) -> str:
        return self._comment(installation, ticket_id, body, public=False)

    def post_public_reply(self, installation: Installation, ticket_id: str, body: str) -> str:
        return self._comment(installation, ticket_id, body, public=True)

    def find_recent_note(
        self, installation: Installation, ticket_id: str, *, marker: str
    ) -> str | None:
        comment = (
            DemoTicketComment.objects.filter(
                installation=installation, ticket_id=str(ticket_id), body__contains=marker
            )
            .order_by("-pk")
            .first()
        )
        return str(comment.pk) if comment is not None else None

    def tickets_updated_since(
        self, installation: Installation, *, since: datetime, cursor: str | None
    ) -> TicketPage:
        """Ordered by (updated_at, id); the cursor is the last row's ``updated_at|id``."""
        rows = DemoTicket.objects.filter(installation=installation, updated_at__gte=since)
        if cursor:
            stamp, _, last_id = cursor.rpartition("|")
            after = parse_datetime(stamp)
            if after is None or not last_id.isdigit():
                raise HelpdeskApiError("Bad cursor.", code="helpdesk_bad_request", http_status=400)
            rows = rows.filter(Q(updated_at__gt=after) | Q(updated_at=after, pk__gt=int(last_id)))
        page = list(rows.order_by("updated_at", "pk")[: PAGE_SIZE + 1])
        more = len(page) > PAGE_SIZE
        page = page[:PAGE_SIZE]
        next_cursor = f"{page[-1].updated_at.isoformat()}|{page[-1].pk}" if page else cursor
        return TicketPage(
            tickets=[
                TicketRecord(
                    ticket_id=t.ticket_id,
                    subject=t.subject,
                    status=t.status,
                    tags=tuple(t.tags or ()),
                    created_at=t.created_at,
                    updated_at=t.updated_at,
                    solved_at=t.solved_at,
                    requester_email=t.requester_email,
                    group_id=t.group,
                    satisfaction_score=t.satisfaction_score,
                )
                for t in page
            ],
            cursor=next_cursor,
            end_of_stream=not more,
        )

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
        """A ``DemoTicket``; ``body`` its first comment — public when the customer is the
        requester (their description), internal otherwise. The key is kept as a tag."""
        now = timezone.now()
        tags = ["billing_desk"]
        if idempotency_key:
            tags.append(_idempotency_tag(idempotency_key))
        ticket = DemoTicket.objects.create(
            installation=installation,
            ticket_id=f"demo-{now.strftime('%Y%m%d%H%M%S%f')}",
            subject=subject[:255],
            group=group[:120],
            requester_email=requester_email,
            tags=tags,
            created_at=now,
            updated_at=now,
        )
        self._comment(installation, ticket.ticket_id, body, public=bool(requester_email))
        return ticket.ticket_id

    def find_ticket(self, installation: Installation, *, idempotency_key: str) -> str | None:
        tag = _idempotency_tag(idempotency_key)
        recent = DemoTicket.objects.filter(installation=installation).order_by("-pk")[:PAGE_SIZE]
        return next((t.ticket_id for t in recent if tag in (t.tags or ())), None)


def _idempotency_tag(idempotency_key: str) -> str:
    return f"key:{idempotency_key}"[:120]
