"""Zendesk: signed-URL entry verification, agent roles from the API, notes and ticket export.

Signed URLs (``"signed": true`` on the location in ``manifest.json``): when the
agent opens a ticket, Zendesk POSTs an HTML form to the location URL with one
field, ``token`` — a JWT signed RS256 with the app's private key; the page URL
keeps ZAF's ``origin`` and ``app_guid`` query parameters. Its claims, as this code
checks them:

* ``iss`` — the account host, ``acme.zendesk.com``: read *unverified* to find the
  installation (tenant first), then required to match after verification;
* ``aud`` — the installation's API URL,
  ``https://acme.zendesk.com/api/v2/apps/installations/{installation_id}.json``;
* ``sub`` — the agent: a user URL ``https://acme.zendesk.com/api/v2/users/{id}.json``
  (a bare numeric id is accepted too);
* ``exp``, ``iat`` (and ``nbf`` when present) — checked with ``LEEWAY_SECONDS``;
  ``exp - iat`` may not exceed ``ZENDESK_TOKEN_MAX_LIFETIME_SECONDS`` (+ leeway), and
  each token opens the panel once (``single_use``: a digest kept until ``exp``);
* ``context`` — ``{"product": "support", "location": "ticket_sidebar"}``.

The public key is the installation's configured/cached key, else fetched once
from ``/api/v2/apps/{app_id}/public_key.pem`` and stored in the row as PEM; either
way it is read by :mod:`.keys` (raw PEM or the JSON forms the API documents, RSA only).
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import TYPE_CHECKING, Any

import jwt
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
from django.core.cache import cache
from django.utils import timezone

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
from ..entry import ID_RE, entry_rejected, host_normalise
from ..models import Installation
from ..session_cache import installation_changed
from . import client, keys, single_use

if TYPE_CHECKING:
    from django.http import HttpRequest

ALGORITHMS = ["RS256"]
LEEWAY_SECONDS = 30
AGENT_CACHE_SECONDS = 60
EXPECTED_PRODUCT = "support"
EXPECTED_LOCATION = "ticket_sidebar"
MAX_TOKEN_LENGTH = 8192
_ID = ID_RE
_reject = entry_rejected
issuer_host = host_normalise


def audience_for(installation: Installation) -> str:
    return f"{installation.base_url}/api/v2/apps/installations/{installation.installation_id}.json"


def agent_id_from_subject(sub: Any, installation: Installation) -> str:
    """The numeric user id from ``sub`` (a number, or this account's user URL)."""
    if isinstance(sub, int) and not isinstance(sub, bool) and sub > 0:
        return str(sub)
    if isinstance(sub, str):
        if _ID.match(sub):
            return sub
        match = re.fullmatch(
            re.escape(installation.base_url) + r"/api/v2/users/([0-9]{1,20})(?:\.json)?", sub
        )
        if match:
            return match.group(1)
    raise _reject("The token does not name an agent of this account.", "bad_subject")


class ZendeskConnector(HelpdeskConnector):
    key = "zendesk"
    name = "Zendesk"
    features = frozenset(
        {
            FEATURE_INTERNAL_NOTES,
            FEATURE_PUBLIC_REPLIES,
            FEATURE_TICKET_EXPORT,
            FEATURE_CREATE_TICKET,
        }
    )
    entry_auth_scheme = "ZendeskJWT"

    # --- entry -----------------------------------------------------------------------------

    def verify_entry(self, request: HttpRequest) -> HelpdeskIdentity:
        token = request.POST.get("token", "") if request.method == "POST" else ""
        claims, installation = self.verify_token(token)
        agent_id = agent_id_from_subject(claims.get("sub"), installation)
        agent = self.fetch_agent(installation, agent_id)
        if agent.helpdesk_role not in {"agent", "admin"}:
            raise _reject("Only agents can open Billing Desk.", "not_an_agent")
        if not agent.active:
            raise _reject("This agent is not active in Zendesk.", "agent_inactive")
        # Single use (issue 12), consumed last: a retry after a Zendesk API outage (503)
        # may resend the same form, while a replay of a token that worked is refused.
        single_use.token_consume(connector=self.key, claims=claims, leeway=LEEWAY_SECONDS)
        ticket_id = str(request.POST.get("ticket_id") or request.GET.get("ticket_id") or "")
        context = claims.get("context") or {}
        ticket_id = ticket_id or str(context.get("ticket_id") or context.get("ticketId") or "")
        return HelpdeskIdentity(
            installation=installation,
            agent=agent,
            ticket_id=ticket_id if _ID.match(ticket_id) else "",
            extra={"app_guid": request.GET.get("app_guid", "")[:64]},
        )

    def verify_token(self, token: str) -> tuple[dict[str, Any], Installation]:
        """Tenant first: unverified ``iss`` → installation → signature and claims → context."""
        if not token:
            raise _reject("No signed token was sent.", "missing_token")
        if len(token) > MAX_TOKEN_LENGTH:
            raise _reject("The token is malformed.", "malformed_token")
        installation = self._installation_from_unverified(token)
        claims = self._verify_signature_and_claims(token, installation)
        self._verify_context(claims)
        return claims, installation

    def _installation_from_unverified(self, token: str) -> Installation:
        try:
            header = jwt.get_unverified_header(token)
            unverified = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError:
            raise _reject("The token is malformed.", "malformed_token") from None
        if header.get("alg") not in ALGORITHMS:
            raise _reject("The token is not signed with RS256.", "algorithm_not_allowed")
        host = issuer_host(unverified.get("iss"))
        if not host:
            raise _reject("The token has no valid issuer.", "bad_issuer")
        installation = Installation.objects.filter(
            connector=self.key, domain=host, is_active=True
        ).first()
        if installation is None:
            raise _reject(
                "This Zendesk account has no Billing Desk installation.", "unknown_installation"
            )
        if not installation.installation_id:
            raise _reject(
                "The installation id is not configured for this Zendesk account.",
                "installation_not_configured",
            )
        return installation

    def _verify_signature_and_claims(
        self, token: str, installation: Installation
    ) -> dict[str, Any]:
        key = self.public_key(installation)
        try:
            claims = jwt.decode(
                token,
                key=key,
                algorithms=ALGORITHMS,
                audience=audience_for(installation),
                leeway=LEEWAY_SECONDS,
                options={"require": ["iss", "aud", "sub", "exp", "iat"], "verify_iss": False},
            )
        except jwt.ExpiredSignatureError:
            raise _reject("The token has expired; reload the ticket.", "token_expired") from None
        except jwt.ImmatureSignatureError:
            raise _reject("The token is not valid yet.", "token_not_yet_valid") from None
        except jwt.InvalidAudienceError:
            raise _reject("The token is for another installation.", "bad_audience") from None
        except jwt.InvalidSignatureError:
            raise _reject("The token's signature is not valid.", "bad_signature") from None
        except jwt.InvalidAlgorithmError:
            raise _reject("The token is not signed with RS256.", "algorithm_not_allowed") from None
        except jwt.MissingRequiredClaimError as exc:
            raise _reject(f"The token lacks the {exc.claim!r} claim.", "missing_claim") from None
        except jwt.PyJWTError:
            raise _reject("The token is malformed.", "malformed_token") from None
        if issuer_host(claims.get("iss")) != installation.domain:
            raise _reject("The token's issuer does not match.", "bad_issuer")
        single_use.lifetime_check(claims, leeway=LEEWAY_SECONDS)
        return claims

    def _verify_context(self, claims: dict[str, Any]) -> None:
        context = claims.get("context")
        if not isinstance(context, dict):
            raise _reject("The token has no app context.", "bad_context")
        if (
            context.get("product") != EXPECTED_PRODUCT
            or context.get("location") != EXPECTED_LOCATION
        ):
            raise _reject("The token is not for the ticket sidebar.", "bad_context")

    def public_key(self, installation: Installation) -> RSAPublicKey:
        """The app's verification key: the row's PEM, else fetched from Zendesk and cached in the row."""
        pem = installation.public_key
        if not pem:
            if not installation.app_id:
                raise _reject(
                    "Neither the app's public key nor its app id is configured.",
                    "installation_not_configured",
                )
            try:
                pem = client.public_key_get(installation)
            except HelpdeskApiError as exc:
                if exc.retryable:
                    raise
                raise _reject(
                    f"The app's public key could not be fetched: {exc.message}",
                    "public_key_unavailable",
                ) from exc
            now = timezone.now()
            Installation.objects.filter(pk=installation.pk, public_key="").update(
                public_key=pem, public_key_fetched_at=now
            )
            installation_changed(installation.pk)  # the fingerprint covers the key
            installation.public_key, installation.public_key_fetched_at = pem, now
        try:
            key = keys.public_key_load(pem)
        except keys.PublicKeyError as exc:
            raise _reject(
                f"The app's public key is not usable: {exc}", "installation_not_configured"
            ) from None
        return key

    # --- API -------------------------------------------------------------------------------

    def fetch_agent(self, installation: Installation, agent_id: str) -> AgentProfile:
        if not _ID.match(str(agent_id)):
            raise HelpdeskApiError("Not a Zendesk user id.", code="bad_agent_id")
        cache_key = f"hd:zendesk:agent:{installation.pk}:{installation.version}:{agent_id}"
        cached = cache.get(cache_key)
        if isinstance(cached, AgentProfile):
            return cached
        user = client.user_get(installation, agent_id)
        groups = client.user_groups_list(installation, agent_id) if user.role != "end-user" else []
        profile = AgentProfile(
            agent_id=user.id,
            name=user.name,
            email=user.email,
            helpdesk_role=user.role,
            custom_role_id=user.custom_role_id,
            role_ids=(user.custom_role_id,) if user.custom_role_id else (),
            group_ids=tuple(g.id for g in groups),
            group_names=tuple(g.name for g in groups if g.name),
            active=user.active and not user.suspended,
            locale=user.locale,
        )
        cache.set(cache_key, profile, AGENT_CACHE_SECONDS)
        return profile

    def post_internal_note(self, installation: Installation, ticket_id: str, body: str) -> str:
        return client.ticket_comment_add(installation, ticket_id, body, public=False)

    def post_public_reply(self, installation: Installation, ticket_id: str, body: str) -> str:
        return client.ticket_comment_add(installation, ticket_id, body, public=True)

    def find_recent_note(
        self, installation: Installation, ticket_id: str, *, marker: str
    ) -> str | None:
        for comment in client.ticket_comments_recent(installation, ticket_id):
            text = " ".join(str(comment.get(k) or "") for k in ("body", "plain_body", "html_body"))
            if marker in text and comment.get("id") is not None:
                return str(comment["id"])
        return None

    def tickets_updated_since(
        self, installation: Installation, *, since: datetime, cursor: str | None
    ) -> TicketPage:
        return client.tickets_incremental(
            installation, start_time=int(since.timestamp()), cursor=cursor
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
        group_id = group if _ID.match(group) else ""
        if group and not group_id:
            wanted = group.strip().lower()
            match = next(
                (g for g in client.groups_list(installation) if g.name.strip().lower() == wanted),
                None,
            )
            if match is None:
                raise HelpdeskApiError(f"No Zendesk group named {group!r}.", code="unknown_group")
            group_id = match.id
        return client.ticket_create(
            installation,
            subject=subject,
            body=body,
            group_id=group_id,
            requester_email=requester_email,
            requester_name=requester_name,
            idempotency_key=idempotency_key,
        )
