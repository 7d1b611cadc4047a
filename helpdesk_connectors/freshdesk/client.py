"""Freshdesk REST API v2: one function per call, the installation's API key, our errors.

Authentication: basic auth with the API key as user name and ``X`` as password.
Endpoints used:

* ``GET /api/v2/agents/{id}`` — ``role_ids``, ``group_ids``, ``contact.active``;
* ``GET /api/v2/roles`` — role id → name (``Account Administrator``,
  ``Administrator``, ``Supervisor``, ``Agent`` and custom roles);
* ``GET /api/v2/groups?per_page=100&page=N`` — group id → name;
* ``POST /api/v2/tickets/{id}/notes`` ``{"body", "private": true}`` — internal note;
* ``POST /api/v2/tickets/{id}/reply`` ``{"body"}`` — public reply;
* ``GET /api/v2/tickets/{id}/conversations?per_page=100&page=N`` — replies and notes,
  oldest first (a JSON array of ``{"id", "body", "body_text", "private", "incoming",
  "user_id", "ticket_id", "created_at", ...}``, ``Link: rel="next"`` while more pages
  follow), read before re-posting a note whose earlier post may have landed;
* ``GET /api/v2/tickets?updated_since=…&per_page=100&page=N&include=stats,requester``
  — tickets changed since a time (``stats.resolved_at``, requester email);
  Freshdesk serves at most 300 pages of such a listing;
* ``POST /api/v2/tickets`` — a ticket (CSM outreach; a customer's request, the customer
  as requester, tagged with its idempotency tag);
* ``GET /api/v2/search/tickets?query="tag:'…'"`` — the ticket an earlier create whose
  outcome is unknown may have opened (``{"results": [...], "total": n}``; Freshdesk's
  search index can lag a fresh ticket by a short while).

Every ``body``/``description`` Freshdesk takes is HTML; Billing Desk's texts are plain
(and hold what customers typed), so they are escaped and their line breaks become
``<br>`` (``html_text``).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from django.utils.dateparse import parse_datetime
from django.utils.html import escape
from django.utils.translation import gettext

from ..base import HelpdeskApiError, TicketPage, TicketRecord
from ..http import HttpResponse, send

if TYPE_CHECKING:
    from ..models import Installation

SERVICE = "Freshdesk"
PER_PAGE = 100
MAX_PAGE = 300
MAX_GROUP_PAGES = 10
MAX_CONVERSATION_PAGES = 10
STATUS_NAMES = {2: "open", 3: "pending", 4: "resolved", 5: "closed"}


def html_text(text: str) -> str:
    """Plain text as Freshdesk's HTML fields need it: escaped, each line break a ``<br>``."""
    lines = str(text).replace("\r\n", "\n").replace("\r", "\n").split("\n")
    return "<br>\n".join(escape(line) for line in lines)


def idempotency_tag(idempotency_key: str) -> str:
    """The tag that marks the ticket of ``idempotency_key`` (short, Freshdesk-safe)."""
    return "bd-" + hashlib.sha256(idempotency_key.encode()).hexdigest()[:24]


@dataclass(frozen=True)
class FreshdeskAgent:
    id: str
    name: str
    email: str
    active: bool
    role_ids: tuple[str, ...]
    group_ids: tuple[str, ...]
    language: str = ""  # the agent's contact.language, e.g. "de" or "en" (issue 16)


def _auth(installation: Installation) -> tuple[str, str]:
    key = installation.api_token or ""
    if not key:
        raise HelpdeskApiError(
            gettext("No Freshdesk API key is configured for %(domain)s.")
            % {"domain": installation.domain},
            code="helpdesk_credentials_missing",
        )
    return (key, "X")


def _call(
    installation: Installation,
    method: str,
    path: str,
    *,
    params: dict[str, Any] | None = None,
    json: Any = None,
) -> HttpResponse:
    return send(
        method,
        f"{installation.base_url}{path}",
        service=SERVICE,
        auth=_auth(installation),
        params=params,
        json=json,
    )


def _dict(response: HttpResponse) -> dict[str, Any]:
    body = response.json()
    if not isinstance(body, dict):
        raise HelpdeskApiError(
            gettext("Freshdesk's answer is malformed."), code="helpdesk_bad_response"
        )
    return body


def _list(response: HttpResponse) -> list[dict[str, Any]]:
    body = response.json()
    if not isinstance(body, list):
        raise HelpdeskApiError(
            gettext("Freshdesk's answer is malformed."), code="helpdesk_bad_response"
        )
    return [item for item in body if isinstance(item, dict)]


def agent_get(installation: Installation, agent_id: str) -> FreshdeskAgent:
    agent = _dict(_call(installation, "GET", f"/api/v2/agents/{agent_id}"))
    contact = agent.get("contact") or {}
    answered = agent.get("id")
    # The id is Freshdesk's own, never the one asked for: the caller compares the two, so an
    # answer without one is refused rather than filled in with the claim.
    if isinstance(answered, bool) or not isinstance(answered, int | str) or answered == "":
        raise HelpdeskApiError(
            gettext("Freshdesk's answer is malformed."), code="helpdesk_bad_response"
        )
    if not isinstance(contact, dict):
        contact = {}
    return FreshdeskAgent(
        id=str(answered),
        name=str(contact.get("name") or ""),
        email=str(contact.get("email") or ""),
        active=bool(contact.get("active", False)),
        role_ids=tuple(str(r) for r in agent.get("role_ids") or ()),
        group_ids=tuple(str(g) for g in agent.get("group_ids") or ()),
        language=contact["language"] if isinstance(contact.get("language"), str) else "",
    )


def roles_list(installation: Installation) -> dict[str, str]:
    """Role id → name."""
    return {
        str(role["id"]): str(role.get("name") or "")
        for role in _list(_call(installation, "GET", "/api/v2/roles"))
        if "id" in role
    }


def groups_list(installation: Installation) -> dict[str, str]:
    """Group id → name, every page."""
    groups: dict[str, str] = {}
    for page in range(1, MAX_GROUP_PAGES + 1):
        items = _list(
            _call(
                installation,
                "GET",
                "/api/v2/groups",
                params={"per_page": PER_PAGE, "page": page},
            )
        )
        groups.update({str(g["id"]): str(g.get("name") or "") for g in items if "id" in g})
        if len(items) < PER_PAGE:
            break
    return groups


def note_create(installation: Installation, ticket_id: str, body: str) -> str:
    note = _dict(
        _call(
            installation,
            "POST",
            f"/api/v2/tickets/{ticket_id}/notes",
            json={"body": html_text(body), "private": True},
        )
    )
    return str(note.get("id", ""))


def reply_create(installation: Installation, ticket_id: str, body: str) -> str:
    reply = _dict(
        _call(
            installation,
            "POST",
            f"/api/v2/tickets/{ticket_id}/reply",
            json={"body": html_text(body)},
        )
    )
    return str(reply.get("id", ""))


def ticket_conversations_recent(installation: Installation, ticket_id: str) -> list[dict[str, Any]]:
    """The ticket's conversations, newest first (Freshdesk lists oldest first: read every
    page, up to ``MAX_CONVERSATION_PAGES`` of 100)."""
    found: list[dict[str, Any]] = []
    for page in range(1, MAX_CONVERSATION_PAGES + 1):
        response = _call(
            installation,
            "GET",
            f"/api/v2/tickets/{ticket_id}/conversations",
            params={"per_page": PER_PAGE, "page": page},
        )
        found.extend(_list(response))
        if 'rel="next"' not in response.headers.get("Link", ""):
            break
    return found[::-1]


def _time(value: Any) -> datetime | None:
    return parse_datetime(value) if isinstance(value, str) else None


def ticket_record(ticket: dict[str, Any]) -> TicketRecord:
    stats = ticket.get("stats") or {}
    requester = ticket.get("requester") or {}
    status = ticket.get("status")
    created = _time(ticket.get("created_at"))
    return TicketRecord(
        ticket_id=str(ticket["id"]),
        subject=str(ticket.get("subject") or ""),
        status=STATUS_NAMES.get(status, str(status))
        if isinstance(status, int)
        else str(status or ""),
        tags=tuple(str(t) for t in ticket.get("tags") or ()),
        created_at=created,  # type: ignore[arg-type]
        updated_at=_time(ticket.get("updated_at")) or created,  # type: ignore[arg-type]
        solved_at=_time(stats.get("resolved_at")) or _time(stats.get("closed_at")),
        requester_email=str(requester.get("email") or ""),
        group_id=str(ticket.get("group_id") or ""),
        assignee_id=str(ticket.get("responder_id") or ""),
        satisfaction_score=None,  # Freshdesk keeps ratings in the surveys API, not on tickets
        reopens=1 if stats.get("reopened_at") else 0,
        escalated=bool(ticket.get("is_escalated")),
        raw={"requester_id": ticket.get("requester_id"), "source": ticket.get("source")},
    )


def tickets_updated_since(installation: Installation, *, since: datetime, page: int) -> TicketPage:
    """One page; the cursor is the next page number (Freshdesk's listing is page-based)."""
    response = _call(
        installation,
        "GET",
        "/api/v2/tickets",
        params={
            "updated_since": since.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "per_page": PER_PAGE,
            "page": page,
            "order_by": "updated_at",
            "order_type": "asc",
            "include": "stats,requester",
        },
    )
    items = _list(response)
    has_next = 'rel="next"' in response.headers.get("Link", "") and page < MAX_PAGE
    return TicketPage(
        tickets=[ticket_record(t) for t in items if "id" in t and t.get("created_at")],
        cursor=str(page + 1) if has_next else None,
        end_of_stream=not has_next,
    )


def ticket_create(
    installation: Installation,
    *,
    subject: str,
    body: str,
    email: str,
    group_id: str = "",
    name: str = "",
    idempotency_key: str = "",
) -> str:
    """``email`` is the requester (Freshdesk creates the contact on first sight), who reads
    ``description`` in the portal and the acknowledgement email. ``idempotency_key`` becomes
    a tag (``idempotency_tag``) that ``ticket_find_by_tag`` looks for."""
    tags = ["billing_desk"]
    if idempotency_key:
        tags.append(idempotency_tag(idempotency_key))
    fields: dict[str, Any] = {
        "subject": subject,
        "description": html_text(body),
        "email": email,
        "priority": 2,
        "status": 2,
        "tags": tags,
    }
    if group_id:
        fields["group_id"] = int(group_id)
    if name:
        fields["name"] = name
    ticket = _dict(_call(installation, "POST", "/api/v2/tickets", json=fields))
    return str(ticket.get("id", ""))


def ticket_find_by_tag(installation: Installation, tag: str) -> str | None:
    """The newest ticket carrying ``tag`` (the filter API), or None."""
    body = _dict(
        _call(installation, "GET", "/api/v2/search/tickets", params={"query": f"\"tag:'{tag}'\""})
    )
    results = body.get("results")
    if not isinstance(results, list):
        raise HelpdeskApiError(
            gettext("Freshdesk's answer is malformed."), code="helpdesk_bad_response"
        )
    ids = [int(t["id"]) for t in results if isinstance(t, dict) and isinstance(t.get("id"), int)]
    return str(max(ids)) if ids else None
