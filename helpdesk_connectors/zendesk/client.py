"""Zendesk Support REST API: one function per call, the installation's credentials, our errors.

Authentication (per installation): an OAuth access token as ``Authorization:
Bearer`` when configured, else an API token as basic auth ``{email}/token`` :
``{token}``. Endpoints used:

* ``GET /api/v2/apps/{app_id}/public_key.pem`` — the app's RSA public key that
  verifies signed-URL JWTs: PEM text, or the JSON forms :mod:`.keys` accepts;
* ``GET /api/v2/users/{id}.json`` — ``role`` (``end-user``/``agent``/``admin``),
  ``role_type``, ``custom_role_id``, ``active``, ``suspended``;
* ``GET /api/v2/users/{id}/group_memberships.json?include=groups`` — the agent's
  groups with their names sideloaded, one call;
* ``PUT /api/v2/tickets/{id}.json`` with ``{"ticket": {"comment": {"body", "public"}}}``
  — internal note (``public: false``) or public reply; the comment id is in the
  returned ``audit.events``;
* ``GET /api/v2/tickets/{id}/comments.json?sort_order=desc&per_page=100`` — the newest
  comments (``{"comments": [{"id", "type", "body", "html_body", "plain_body", "public",
  "author_id", "audit_id", "created_at", ...}], "next_page", "previous_page", "count"}``),
  read before re-posting a note whose earlier post may have landed;
* ``GET /api/v2/incremental/tickets/cursor.json?start_time=|cursor=&include=metric_sets``
  — cursor-based incremental ticket export;
* ``POST /api/v2/tickets.json`` and ``GET /api/v2/groups.json`` — CSM outreach ticket.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from django.utils.dateparse import parse_datetime

from ..base import HelpdeskApiError, TicketPage, TicketRecord
from ..http import HttpResponse, send
from . import keys

if TYPE_CHECKING:
    from ..models import Installation

SERVICE = "Zendesk"
MAX_MEMBERSHIP_PAGES = 5
# Zendesk's satisfaction ratings are good/bad; the dashboard's CSAT is on a 1–5 scale.
SATISFACTION_SCORES = {"good": 5.0, "bad": 1.0}


@dataclass(frozen=True)
class ZendeskUser:
    id: str
    name: str
    email: str
    role: str
    role_type: int | None
    custom_role_id: str
    active: bool
    suspended: bool
    locale: str = ""  # the user's language, e.g. "de" or "en-US" (issue 16)


@dataclass(frozen=True)
class ZendeskGroup:
    id: str
    name: str


def _credentials(installation: Installation) -> dict[str, Any]:
    if installation.oauth_token:
        return {"headers": {"Authorization": f"Bearer {installation.oauth_token}"}}
    if installation.api_email and installation.api_token:
        return {"auth": (f"{installation.api_email}/token", installation.api_token)}
    raise HelpdeskApiError(
        f"No Zendesk API credentials are configured for {installation.domain}.",
        code="helpdesk_credentials_missing",
    )


def _call(
    installation: Installation,
    method: str,
    path: str,
    *,
    params: dict[str, Any] | None = None,
    json: Any = None,
    accept: str | None = None,
    extra_headers: dict[str, str] | None = None,
) -> HttpResponse:
    kwargs = _credentials(installation)
    headers = dict(kwargs.pop("headers", {}))
    if accept:
        headers["Accept"] = accept
    headers.update(extra_headers or {})
    return send(
        method,
        f"{installation.base_url}{path}",
        service=SERVICE,
        headers=headers,
        params=params,
        json=json,
        **kwargs,
    )


def _object(response: HttpResponse, key: str) -> dict[str, Any]:
    body = response.json()
    value = body.get(key) if isinstance(body, dict) else None
    if not isinstance(value, dict):
        raise HelpdeskApiError(
            f"Zendesk's answer has no {key!r} object.", code="helpdesk_bad_response"
        )
    return value


def public_key_get(installation: Installation) -> str:
    response = _call(
        installation,
        "GET",
        f"/api/v2/apps/{installation.app_id}/public_key.pem",
        accept="application/x-pem-file, text/plain, application/json, */*",
    )
    try:
        return keys.public_key_pem(response.text)
    except keys.PublicKeyError as exc:
        raise HelpdeskApiError(
            f"Zendesk's answer is not the app's public key: {exc}", code="helpdesk_bad_response"
        ) from None


def user_get(installation: Installation, user_id: str) -> ZendeskUser:
    user = _object(_call(installation, "GET", f"/api/v2/users/{user_id}.json"), "user")
    role_type = user.get("role_type")
    return ZendeskUser(
        id=str(user.get("id", user_id)),
        name=str(user.get("name") or ""),
        email=str(user.get("email") or ""),
        role=str(user.get("role") or ""),
        role_type=role_type if isinstance(role_type, int) else None,
        custom_role_id=str(user["custom_role_id"]) if user.get("custom_role_id") else "",
        active=bool(user.get("active", True)),
        suspended=bool(user.get("suspended", False)),
        locale=user["locale"] if isinstance(user.get("locale"), str) else "",
    )


def user_groups_list(installation: Installation, user_id: str) -> list[ZendeskGroup]:
    """The agent's groups (id and name) from their memberships, groups sideloaded."""
    groups: dict[str, ZendeskGroup] = {}
    member_of: list[str] = []
    params: dict[str, Any] | None = {"include": "groups"}
    path = f"/api/v2/users/{user_id}/group_memberships.json"
    for _ in range(MAX_MEMBERSHIP_PAGES):
        body = _call(installation, "GET", path, params=params).json()
        if not isinstance(body, dict):
            raise HelpdeskApiError(
                "Zendesk's group memberships are malformed.", code="helpdesk_bad_response"
            )
        for membership in body.get("group_memberships") or []:
            member_of.append(str(membership.get("group_id")))
        for group in body.get("groups") or []:
            if not group.get("deleted"):
                groups[str(group.get("id"))] = ZendeskGroup(
                    id=str(group.get("id")), name=str(group.get("name") or "")
                )
        next_page = body.get("next_page")
        if not next_page or not str(next_page).startswith(installation.base_url + "/api/v2/"):
            break
        path, params = str(next_page)[len(installation.base_url) :], None
    return [groups.get(gid, ZendeskGroup(id=gid, name="")) for gid in dict.fromkeys(member_of)]


def ticket_comment_add(
    installation: Installation, ticket_id: str, body: str, *, public: bool
) -> str:
    """Add a comment; return its id (from the audit's ``Comment`` event) or the audit id."""
    response = _call(
        installation,
        "PUT",
        f"/api/v2/tickets/{ticket_id}.json",
        json={"ticket": {"comment": {"body": body, "public": public}}},
    )
    payload = response.json()
    audit = payload.get("audit") if isinstance(payload, dict) else None
    if isinstance(audit, dict):
        for event in audit.get("events") or []:
            if event.get("type") == "Comment" and event.get("id") is not None:
                return str(event["id"])
        if audit.get("id") is not None:
            return str(audit["id"])
    return ""


def ticket_comments_recent(installation: Installation, ticket_id: str) -> list[dict[str, Any]]:
    """The ticket's newest comments (up to 100, newest first), public and private."""
    body = _call(
        installation,
        "GET",
        f"/api/v2/tickets/{ticket_id}/comments.json",
        params={"sort_order": "desc", "per_page": 100},
    ).json()
    comments = body.get("comments") if isinstance(body, dict) else None
    if not isinstance(comments, list):
        raise HelpdeskApiError(
            "Zendesk's ticket comments are malformed.", code="helpdesk_bad_response"
        )
    return [c for c in comments if isinstance(c, dict)]


def _time(value: Any) -> datetime | None:
    return parse_datetime(value) if isinstance(value, str) else None


def ticket_record(ticket: dict[str, Any], metric: dict[str, Any] | None) -> TicketRecord:
    rating = ticket.get("satisfaction_rating") or {}
    score = rating.get("score") if isinstance(rating, dict) else None
    created = _time(ticket.get("created_at"))
    updated = _time(ticket.get("updated_at")) or created
    metric = metric or {}
    tags = tuple(str(t) for t in ticket.get("tags") or ())
    return TicketRecord(
        ticket_id=str(ticket["id"]),
        subject=str(ticket.get("subject") or ticket.get("raw_subject") or ""),
        status=str(ticket.get("status") or ""),
        tags=tags,
        created_at=created,  # type: ignore[arg-type]
        updated_at=updated,  # type: ignore[arg-type]
        solved_at=_time(metric.get("solved_at")),
        group_id=str(ticket.get("group_id") or ""),
        assignee_id=str(ticket.get("assignee_id") or ""),
        satisfaction_score=SATISFACTION_SCORES.get(str(score)) if score else None,
        reopens=int(metric.get("reopens") or 0),
        escalated=bool(metric.get("group_stations", 0) and int(metric["group_stations"]) > 1),
        raw={"requester_id": ticket.get("requester_id"), "via": ticket.get("via", {})},
    )


def tickets_incremental(
    installation: Installation, *, start_time: int | None, cursor: str | None
) -> TicketPage:
    params: dict[str, Any] = {"include": "metric_sets"}
    if cursor:
        params["cursor"] = cursor
    else:
        params["start_time"] = int(start_time or 0)
    body = _call(
        installation, "GET", "/api/v2/incremental/tickets/cursor.json", params=params
    ).json()
    if not isinstance(body, dict) or not isinstance(body.get("tickets"), list):
        raise HelpdeskApiError(
            "Zendesk's incremental export is malformed.", code="helpdesk_bad_response"
        )
    metrics = {str(m.get("ticket_id")): m for m in body.get("metric_sets") or []}
    tickets = [
        ticket_record(t, metrics.get(str(t.get("id"))))
        for t in body["tickets"]
        if t.get("status") != "deleted" and t.get("created_at")
    ]
    return TicketPage(
        tickets=tickets,
        cursor=body.get("after_cursor") or cursor,
        end_of_stream=bool(body.get("end_of_stream")),
    )


def groups_list(installation: Installation) -> list[ZendeskGroup]:
    body = _call(installation, "GET", "/api/v2/groups.json").json()
    return [
        ZendeskGroup(id=str(g["id"]), name=str(g.get("name") or ""))
        for g in (body.get("groups") if isinstance(body, dict) else None) or []
        if not g.get("deleted")
    ]


def ticket_create(
    installation: Installation,
    *,
    subject: str,
    body: str,
    group_id: str = "",
    requester_email: str = "",
    requester_name: str = "",
    idempotency_key: str = "",
) -> str:
    """``POST /api/v2/tickets.json``. Without a requester the API user is the requester and
    the first comment is private (an internal ticket). With ``requester_email`` (Zendesk
    creates the end user on first sight) the customer is the requester and the first
    comment — the description — is public: the customer reads it, so it carries only
    words for them; the agents' investigation follows as a private comment.

    ``idempotency_key`` is sent as Zendesk's ``Idempotency-Key`` header: a repeat of the
    same request with the same key within Zendesk's retention window answers the first
    ticket instead of opening another (the answer carries ``x-idempotency-lookup: hit``).
    """
    ticket: dict[str, Any] = {
        "subject": subject,
        "comment": {"body": body, "public": bool(requester_email)},
        "tags": ["billing_desk"],
    }
    if group_id:
        ticket["group_id"] = int(group_id)
    if requester_email:
        ticket["requester"] = {"email": requester_email, "name": requester_name or requester_email}
    payload = _object(
        _call(
            installation,
            "POST",
            "/api/v2/tickets.json",
            json={"ticket": ticket},
            extra_headers={"Idempotency-Key": idempotency_key} if idempotency_key else None,
        ),
        "ticket",
    )
    return str(payload["id"])
