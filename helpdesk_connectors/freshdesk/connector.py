"""Freshdesk: shared-secret entry through the FDK request proxy, agent roles from the API.

The FDK app calls ``POST /freshdesk/session/`` through its ``createSession``
request template (``freshdesk_app/config/requests.json``). Freshworks' proxy adds
``Authorization: BillingDeskSecret <secret>`` from the secure iparam
``shared_secret`` (the request-method documentation names the Authorization header
as the place secure iparams are substituted); the browser never sees it. The JSON
body, written by the app frame, is ``{"agent_id", "domain", "ticket_id",
"requester_email"}``. The agent's roles and groups are read with the API key
registered on this server (``add_installation --api-token``); the app sends none.

What this proves and what it does not (docs/threat-model.md): the secret proves
the request came through *this installation's* app; Freshworks does **not**
attest which agent is calling — ``agent_id`` is asserted by the app frame. So the
body must also carry ``device_credential``, issued to that agent on that
installation after a code sent to the agent's own Freshdesk email (``devices``,
issue 17); the agent is looked up server-side (it must exist and be active in
that account) and the role is read from the API, never from the body.
"""

from __future__ import annotations

import hmac
import re
from datetime import datetime
from typing import TYPE_CHECKING, Any

from django.core.cache import cache
from django.utils.translation import gettext

from .. import framing
from ..base import (
    FEATURE_CREATE_TICKET,
    FEATURE_INTERNAL_NOTES,
    FEATURE_PUBLIC_REPLIES,
    FEATURE_TICKET_EXPORT,
    AgentProfile,
    HelpdeskApiError,
    HelpdeskConnector,
    HelpdeskIdentity,
    TicketPage,
)
from ..entry import ID_RE, entry_json_body, entry_rejected, host_normalise
from ..models import Installation
from . import client, devices

if TYPE_CHECKING:
    from django.http import HttpRequest

# ``Authorization: BillingDeskSecret <shared secret>``, written by Freshworks' request proxy.
SECRET_SCHEME = "BillingDeskSecret"
AGENT_CACHE_SECONDS = 60
DIRECTORY_CACHE_SECONDS = 300
MAX_BODY_BYTES = 4096
# Freshdesk's built-in roles, most privileged first: the agent's ``helpdesk_role``
# is the first of these they hold, else their first custom role's name.
DEFAULT_ROLE_ORDER = ("Account Administrator", "Administrator", "Supervisor", "Agent")
_ID = ID_RE
# A Freshdesk agent id as Freshdesk writes it: no sign, no leading zero, no padding. One agent
# has one spelling, so the send limit, the lock and the credential cannot be keyed three ways
# ("43000123", "043000123", "0043000123") for the same agent.
AGENT_ID_RE = re.compile(r"^[1-9][0-9]{0,19}$")
_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,255}$")


_reject = entry_rejected
normalise_domain = host_normalise


def _id(value: Any) -> str:
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return str(value)
    if isinstance(value, str) and _ID.match(value.strip()):
        return value.strip()
    return ""


def agent_id_canonical(value: Any) -> str:
    """The agent id in its one canonical spelling (a positive JSON integer, or a string of
    digits without leading zeros), else ``""``: an id spelt another way is refused, not
    rewritten."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    return value if isinstance(value, str) and AGENT_ID_RE.match(value) else ""


def secret_from_authorization(value: str) -> str:
    """The credentials of ``BillingDeskSecret <secret>`` (scheme case-insensitive), else ``""``.

    Nothing else is read: no other scheme, no second header, no query parameter.
    """
    scheme, _, credentials = value.strip().partition(" ")
    credentials = credentials.strip()
    if scheme.lower() != SECRET_SCHEME.lower() or not credentials or " " in credentials:
        return ""
    return credentials


def helpdesk_role_name(role_names: list[str]) -> str:
    for wanted in DEFAULT_ROLE_ORDER:
        if wanted in role_names:
            return wanted
    return role_names[0] if role_names else ""


class FreshdeskConnector(HelpdeskConnector):
    key = "freshdesk"
    name = "Freshdesk"
    features = frozenset(
        {
            FEATURE_INTERNAL_NOTES,
            FEATURE_PUBLIC_REPLIES,
            FEATURE_TICKET_EXPORT,
            FEATURE_CREATE_TICKET,
        }
    )
    entry_auth_scheme = SECRET_SCHEME

    # --- entry -----------------------------------------------------------------------------

    def verify_entry(self, request: HttpRequest) -> HelpdeskIdentity:
        """Tenant first: body ``domain`` → installation → constant-time secret → the agent's
        device credential (issue 17) → agent from the API."""
        body, installation, agent_id = self.verify_caller(request)
        credential = devices.credential_check(installation, agent_id, body.get("device_credential"))
        try:
            agent = self.fetch_agent(installation, agent_id)
        except HelpdeskApiError as exc:
            if exc.http_status == 404:
                raise _reject(
                    gettext("No such agent in this Freshdesk account."), "unknown_agent"
                ) from exc
            raise
        # The session goes to the agent the credential was checked for, never to another id
        # Freshdesk may have resolved the request to.
        devices.agent_same(agent_id, agent.agent_id, installation)
        if not agent.active:
            raise _reject(gettext("This agent is not active in Freshdesk."), "agent_inactive")
        devices.credential_email_check(credential, agent.email)
        ticket_id = _id(body.get("ticket_id"))
        email = body.get("requester_email")
        return HelpdeskIdentity(
            installation=installation,
            agent=agent,
            ticket_id=ticket_id,
            requester_email=email if isinstance(email, str) and _EMAIL.match(email) else "",
        )

    def verify_caller(self, request: HttpRequest) -> tuple[dict[str, Any], Installation, str]:
        """What every Freshdesk entry call proves first: the body, the installation named by its
        ``domain`` whose shared secret came in the Authorization header, and the agent id the
        frame claims (not yet proven: ``devices`` does that)."""
        body = self._body(request)
        domain = normalise_domain(body.get("domain"))
        if not domain:
            raise _reject(gettext("The account domain is missing."), "bad_domain")
        installation = Installation.objects.filter(
            connector=self.key, domain=domain, is_active=True
        ).first()
        if installation is None:
            raise _reject(
                gettext("This Freshdesk account has no Billing Desk installation."),
                "unknown_installation",
            )
        self._verify_secret(request, installation)
        agent_id = agent_id_canonical(body.get("agent_id"))
        if not agent_id:
            raise _reject(
                gettext("The agent id is missing or not written as Freshdesk writes it."),
                "bad_agent_id",
            )
        return body, installation, agent_id

    def _body(self, request: HttpRequest) -> dict[str, Any]:
        if request.method != "POST":
            raise _reject(gettext("Use POST."), "bad_request")
        body = entry_json_body(request, max_bytes=MAX_BODY_BYTES)  # 413/400, depth-bounded
        if not isinstance(body, dict):
            raise _reject(gettext("The request body must be a JSON object."), "bad_request")
        return body

    def _verify_secret(self, request: HttpRequest, installation: Installation) -> None:
        expected = installation.shared_secret or ""
        if not expected:
            raise _reject(
                gettext("No shared secret is configured for this installation."),
                "installation_not_configured",
            )
        provided = secret_from_authorization(request.headers.get("Authorization", ""))
        if not hmac.compare_digest(provided.encode(), expected.encode()):
            raise _reject(gettext("The shared secret does not match."), "bad_secret")

    def frame_ancestors(self, installation: Installation) -> list[str]:
        return [installation.base_url, *framing.freshworks_app_frame_origins()]

    # --- API -------------------------------------------------------------------------------

    def _directory(self, installation: Installation, kind: str) -> dict[str, str]:
        cache_key = f"hd:freshdesk:{kind}:{installation.pk}:{installation.version}"
        cached = cache.get(cache_key)
        if isinstance(cached, dict):
            return cached
        fetch = client.roles_list if kind == "roles" else client.groups_list
        names = fetch(installation)
        cache.set(cache_key, names, DIRECTORY_CACHE_SECONDS)
        return names

    def fetch_agent(self, installation: Installation, agent_id: str) -> AgentProfile:
        """The agent with role and group names resolved (``role_ids`` holds ids and names)."""
        if not AGENT_ID_RE.match(str(agent_id)):
            raise HelpdeskApiError(gettext("Not a Freshdesk agent id."), code="bad_agent_id")
        cache_key = f"hd:freshdesk:agent:{installation.pk}:{installation.version}:{agent_id}"
        cached = cache.get(cache_key)
        if isinstance(cached, AgentProfile):
            return cached
        agent = client.agent_get(installation, agent_id)
        roles = self._directory(installation, "roles") if agent.role_ids else {}
        groups = self._directory(installation, "groups") if agent.group_ids else {}
        role_names = [roles[r] for r in agent.role_ids if roles.get(r)]
        profile = AgentProfile(
            agent_id=agent.id,
            name=agent.name,
            email=agent.email,
            helpdesk_role=helpdesk_role_name(role_names),
            role_ids=(*agent.role_ids, *role_names),
            group_ids=agent.group_ids,
            group_names=tuple(groups[g] for g in agent.group_ids if groups.get(g)),
            active=agent.active,
            locale=agent.language,
        )
        cache.set(cache_key, profile, AGENT_CACHE_SECONDS)
        return profile

    def post_internal_note(self, installation: Installation, ticket_id: str, body: str) -> str:
        return client.note_create(installation, ticket_id, body)

    def post_public_reply(self, installation: Installation, ticket_id: str, body: str) -> str:
        return client.reply_create(installation, ticket_id, body)

    def find_recent_note(
        self, installation: Installation, ticket_id: str, *, marker: str
    ) -> str | None:
        for conversation in client.ticket_conversations_recent(installation, ticket_id):
            text = f"{conversation.get('body_text') or ''} {conversation.get('body') or ''}"
            if marker in text and conversation.get("id") is not None:
                return str(conversation["id"])
        return None

    def tickets_updated_since(
        self, installation: Installation, *, since: datetime, cursor: str | None
    ) -> TicketPage:
        page = int(cursor) if cursor and cursor.isdigit() else 1
        return client.tickets_updated_since(installation, since=since, page=page)

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
        if not requester_email and not installation.api_email:
            raise HelpdeskApiError(
                gettext(
                    "A requester email (the installation's API email) is needed to open tickets."
                ),
                code="helpdesk_credentials_missing",
            )
        group_id = group if _ID.match(group) else ""
        if group and not group_id:
            wanted = group.strip().lower()
            names = client.groups_list(installation)
            group_id = next((gid for gid, name in names.items() if name.lower() == wanted), "")
            if not group_id:
                raise HelpdeskApiError(
                    gettext("No Freshdesk group named %(group)s.") % {"group": repr(group)},
                    code="unknown_group",
                )
        return client.ticket_create(
            installation,
            subject=subject,
            body=body,
            group_id=group_id,
            email=requester_email or installation.api_email,
            name=requester_name if requester_email else "",
            idempotency_key=idempotency_key,
        )

    def find_ticket(self, installation: Installation, *, idempotency_key: str) -> str | None:
        """Freshdesk has no idempotency key: the ticket is found by its tag."""
        return client.ticket_find_by_tag(installation, client.idempotency_tag(idempotency_key))
