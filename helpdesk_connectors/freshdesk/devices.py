"""Freshdesk agents proven once per device: an emailed code, then a device credential (issue 17).

Freshworks' request proxy proves that a call came through this installation's app (the
shared secret), not which agent made it: the agent id is written by the app frame. So the
first time an agent opens the app on a browser:

1. ``enrollment_start`` — the frame asks for a code (``POST /freshdesk/enroll/start/``,
   through the proxy). The agent's email is read *here*, with the installation's API key
   (``GET /api/v2/agents/{id}`` › ``contact.email``); the frame never names an address. A
   six-digit code goes to that address through Django's email backend; the frame gets a
   random attempt id and the address masked (``m•••@acme.example``), no more.
2. ``enrollment_verify`` — the agent types the code (``POST /freshdesk/enroll/verify/``
   with the attempt id). The code is checked against the attempt it was sent for (agent,
   installation, attempt), in constant time, within ``CODE_TTL``, at most
   ``MAX_ATTEMPTS`` tries (then the agent is locked for ``LOCK_PERIOD``), once. A right
   code issues a device credential: 32 random bytes, of which only the SHA-256 is stored.
3. ``credential_check`` — every ``POST /freshdesk/session/`` carries that credential; it
   must be this agent's, on this installation, not revoked and younger than the
   workspace's ``device_credential_days``.

The lifetime in days belongs to the billing side's workspace, which this package may not
import (DESIGN.md section 1): ``billing_app`` registers a callable with
``set_credential_days_source`` (its AppConfig.ready); without one, ``DEFAULT_CREDENTIAL_DAYS``.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.core.mail import send_mail
from django.db import transaction
from django.db.models import F
from django.utils import timezone, translation
from django.utils.crypto import salted_hmac
from django.utils.translation import gettext

from ..base import EntryRejected, HelpdeskApiError
from ..entry import EntryRefused
from ..models import DeviceCredential, DeviceEnrollment, Installation
from . import client

logger = logging.getLogger(__name__)

DEFAULT_CREDENTIAL_DAYS = 90
CODE_DIGITS = 6
CODE_TTL = timedelta(minutes=10)
# Codes sent per agent and installation in a rolling hour.
MAX_SENDS_PER_HOUR = 3
# Tries per code (right or wrong); the last wrong one locks the agent for LOCK_PERIOD.
MAX_ATTEMPTS = 5
LOCK_PERIOD = timedelta(minutes=30)
# Enrollment rows are kept this long (the admin's view of recent codes), then pruned.
KEEP_ENROLLMENTS = timedelta(days=7)
CREDENTIAL_BYTES = 32
ATTEMPT_BYTES = 32
MAX_SECRET_LENGTH = 200
_HMAC_SALT = "billing-desk.freshdesk-device-code.v1"

# The error codes after which the app frame (freshdesk_app/app/scripts/app.js) forgets any
# stored credential and starts enrollment.
ENROLLMENT_REQUIRED = "device_enrollment_required"
CREDENTIAL_CODES = frozenset(
    {
        ENROLLMENT_REQUIRED,
        "device_credential_invalid",
        "device_credential_mismatch",
        "device_credential_revoked",
        "device_credential_expired",
    }
)

_days_source: Callable[[Installation], int | None] | None = None


def set_credential_days_source(source: Callable[[Installation], int | None] | None) -> None:
    """Register what gives an installation's credential lifetime in days (billing_app does)."""
    global _days_source
    _days_source = source


def credential_days(installation: Installation) -> int:
    days = _days_source(installation) if _days_source is not None else None
    return days if isinstance(days, int) and days > 0 else DEFAULT_CREDENTIAL_DAYS


class DeviceRefused(EntryRefused):
    """An enrollment or device check refused: 401, or ``status`` (429 while locked, 503 when
    the code could not be sent); ``details`` travel in the error envelope."""


def digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def _code_digest(attempt: str, code: str) -> str:
    return salted_hmac(_HMAC_SALT, f"{attempt}:{code}", algorithm="sha256").hexdigest()


def mask_email(email: str) -> str:
    """``maria@acme.example`` → ``m•••@acme.example``: which inbox, not the address."""
    local, _, domain = email.partition("@")
    return f"{local[:1]}•••@{domain}" if local and domain else "•••"


def _locked_until(installation: Installation, agent_id: str) -> datetime | None:
    found = (
        DeviceEnrollment.objects.filter(
            installation=installation, agent_id=agent_id, locked_until__gt=timezone.now()
        )
        .order_by("-locked_until")
        .values_list("locked_until", flat=True)
        .first()
    )
    return found


def _locked(until: datetime) -> DeviceRefused:
    seconds = max(1, int((until - timezone.now()).total_seconds()))
    return DeviceRefused(
        gettext("Too many wrong codes. Try again in %(minutes)s minutes.")
        % {"minutes": (seconds + 59) // 60},
        code="enrollment_locked",
        status=429,
        details={"retry_after": seconds},
    )


# --- 1. the code ------------------------------------------------------------------------------


@dataclass(frozen=True)
class StartedEnrollment:
    attempt: str
    email_masked: str
    expires_in: int


def _may_send(installation: Installation, agent_id: str) -> None:
    """Refuse while the agent is locked or has had MAX_SENDS_PER_HOUR codes this hour."""
    until = _locked_until(installation, agent_id)
    if until is not None:
        raise _locked(until)
    hour_ago = timezone.now() - timedelta(hours=1)
    sent = DeviceEnrollment.objects.filter(
        installation=installation, agent_id=agent_id, created_at__gt=hour_ago
    ).count()
    if sent >= MAX_SENDS_PER_HOUR:
        logger.warning(
            "freshdesk enrollment code refused: send limit installation=%s agent=%s",
            installation.pk,
            agent_id,
        )
        raise DeviceRefused(
            gettext("Too many codes were sent in the last hour. Try again later."),
            code="enrollment_rate_limited",
            status=429,
            details={"retry_after": 3600},
        )


def enrollment_start(installation: Installation, agent_id: str) -> StartedEnrollment:
    """Email a code to the agent's own address (read from Freshdesk, never from the frame)."""
    enrollments_prune()
    _may_send(installation, agent_id)  # before asking Freshdesk anything
    try:
        agent = client.agent_get(installation, agent_id)
    except HelpdeskApiError as exc:
        if exc.http_status == 404:
            raise EntryRejected(
                gettext("No such agent in this Freshdesk account."), code="unknown_agent"
            ) from exc
        raise
    if not agent.active:
        raise EntryRejected(
            gettext("This agent is not active in Freshdesk."), code="agent_inactive"
        )
    if "@" not in agent.email:
        raise EntryRejected(
            gettext("Freshdesk has no email address for this agent."), code="agent_without_email"
        )
    attempt = secrets.token_urlsafe(ATTEMPT_BYTES)
    code = f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"
    masked = mask_email(agent.email)
    with transaction.atomic():
        # The installation's row lock serialises the check and the insert: parallel requests
        # cannot send more than MAX_SENDS_PER_HOUR codes between them.
        Installation.objects.select_for_update().filter(pk=installation.pk).first()
        _may_send(installation, agent_id)
        enrollment = DeviceEnrollment.objects.create(
            installation=installation,
            agent_id=agent_id,
            attempt_digest=digest(attempt),
            code_digest=_code_digest(attempt, code),
            email_masked=masked,
            expires_at=timezone.now() + CODE_TTL,
        )
    try:
        _send_code(installation, agent, code)
    except Exception as exc:
        enrollment.delete()  # a code nobody received must not count against the agent
        logger.exception("freshdesk enrollment code not sent installation=%s", installation.pk)
        raise DeviceRefused(
            gettext("The code could not be sent. Try again in a minute."),
            code="email_unavailable",
            status=503,
        ) from exc
    logger.info(
        "freshdesk enrollment code sent installation=%s agent=%s enrollment=%s",
        installation.pk,
        agent_id,
        enrollment.pk,
    )
    return StartedEnrollment(
        attempt=attempt, email_masked=masked, expires_in=int(CODE_TTL.total_seconds())
    )


def _send_code(installation: Installation, agent: client.FreshdeskAgent, code: str) -> None:
    language = (agent.language or "").lower().split("-")[0].split("_")[0]
    with translation.override(language or None):
        subject = gettext("Your Billing Desk code: %(code)s") % {"code": code}
        body = gettext(
            "Hello %(name)s,\n\n"
            "Billing Desk was opened in Freshdesk (%(domain)s) on a browser it does not know "
            "yet. To use it there, type this code into the Billing Desk app:\n\n"
            "    %(code)s\n\n"
            "The code works once, for %(minutes)s minutes.\n\n"
            "If this was not you, do not type the code anywhere and tell your Billing Desk "
            "administrator: someone may be using your Freshdesk account."
        ) % {
            "name": agent.name or agent.email,
            "domain": installation.domain,
            "code": code,
            "minutes": int(CODE_TTL.total_seconds() // 60),
        }
    send_mail(subject, body, None, [agent.email])


def enrollments_prune() -> int:
    """Forget attempts older than ``KEEP_ENROLLMENTS`` (past every limit that counts them) and
    not locked. Run with each new code: enrollments are rare, so the table stays small."""
    now = timezone.now()
    deleted, _ = (
        DeviceEnrollment.objects.filter(created_at__lt=now - KEEP_ENROLLMENTS)
        .exclude(locked_until__gt=now)
        .delete()
    )
    return deleted


# --- 2. the code typed in: a device credential ------------------------------------------------------


@dataclass(frozen=True)
class IssuedCredential:
    secret: str
    credential: DeviceCredential


def enrollment_verify(
    installation: Installation, agent_id: str, attempt: str, code: str, *, device_label: str = ""
) -> IssuedCredential:
    """Check the code against its attempt; on success issue one device credential."""
    if not attempt or len(attempt) > MAX_SECRET_LENGTH:
        raise DeviceRefused(gettext("Ask for a new code."), code="enrollment_unknown")
    enrollment = DeviceEnrollment.objects.filter(
        attempt_digest=digest(attempt), installation=installation, agent_id=agent_id
    ).first()
    if enrollment is None:  # unknown, or another agent's or installation's attempt
        logger.warning(
            "freshdesk enrollment refused: unknown attempt installation=%s agent=%s",
            installation.pk,
            agent_id,
        )
        raise DeviceRefused(gettext("Ask for a new code."), code="enrollment_unknown")
    until = _locked_until(installation, agent_id)
    if until is not None:
        raise _locked(until)
    if enrollment.used_at is not None:
        raise DeviceRefused(
            gettext("This code was already used. Ask for a new code."), code="code_used"
        )
    now = timezone.now()
    if enrollment.expires_at <= now:
        raise DeviceRefused(
            gettext("This code has expired. Ask for a new code."), code="code_expired"
        )
    # Reserve the try before comparing: concurrent guesses cannot exceed MAX_ATTEMPTS.
    reserved = DeviceEnrollment.objects.filter(
        pk=enrollment.pk, used_at__isnull=True, attempts__lt=MAX_ATTEMPTS
    ).update(attempts=F("attempts") + 1)
    if not reserved:
        enrollment.refresh_from_db()
        if enrollment.used_at is not None:
            raise DeviceRefused(
                gettext("This code was already used. Ask for a new code."), code="code_used"
            )
        raise _locked(enrollment.locked_until or now + LOCK_PERIOD)
    typed = "".join(str(code).split()) if isinstance(code, str | int) else ""
    if not hmac.compare_digest(_code_digest(attempt, typed), enrollment.code_digest):
        enrollment.refresh_from_db(fields=["attempts"])
        left = max(0, MAX_ATTEMPTS - enrollment.attempts)
        logger.warning(
            "freshdesk enrollment: wrong code installation=%s agent=%s enrollment=%s left=%s",
            installation.pk,
            agent_id,
            enrollment.pk,
            left,
        )
        if left == 0:
            locked_until = now + LOCK_PERIOD
            DeviceEnrollment.objects.filter(pk=enrollment.pk).update(locked_until=locked_until)
            logger.warning(
                "freshdesk enrollment locked installation=%s agent=%s until=%s",
                installation.pk,
                agent_id,
                locked_until.isoformat(),
            )
            raise _locked(locked_until)
        raise DeviceRefused(
            gettext("That code is not right. %(left)s tries left.") % {"left": left},
            code="code_wrong",
            details={"attempts_left": left},
        )
    secret = secrets.token_urlsafe(CREDENTIAL_BYTES)
    with transaction.atomic():
        # One conditional UPDATE decides: of two verifications of one code, one issues.
        won = DeviceEnrollment.objects.filter(
            pk=enrollment.pk, used_at__isnull=True, expires_at__gt=now
        ).update(used_at=now)
        if not won:
            raise DeviceRefused(
                gettext("This code was already used. Ask for a new code."), code="code_used"
            )
        credential = DeviceCredential.objects.create(
            installation=installation,
            agent_id=agent_id,
            email_masked=enrollment.email_masked,
            digest=digest(secret),
            device_label=device_label[:200],
        )
        DeviceEnrollment.objects.filter(pk=enrollment.pk).update(credential=credential)
    logger.info(
        "freshdesk device credential issued installation=%s agent=%s credential=%s",
        installation.pk,
        agent_id,
        credential.pk,
    )
    return IssuedCredential(secret=secret, credential=credential)


# --- 3. every session: the credential ----------------------------------------------------------------


def expires_at(credential: DeviceCredential) -> datetime:
    return credential.created_at + timedelta(days=credential_days(credential.installation))


def credential_check(installation: Installation, agent_id: str, secret: object) -> DeviceCredential:
    """The agent's valid credential on this installation, else ``DeviceRefused``."""
    if not isinstance(secret, str) or not secret:
        raise DeviceRefused(
            gettext("This browser is not enrolled yet: confirm it with a code sent to your email."),
            code=ENROLLMENT_REQUIRED,
        )
    credential = None
    if len(secret) <= MAX_SECRET_LENGTH:
        credential = (
            DeviceCredential.objects.select_related("installation")
            .filter(digest=digest(secret))
            .first()
        )
    if credential is None:
        raise DeviceRefused(
            gettext("This browser's device credential is not valid. Confirm it again."),
            code="device_credential_invalid",
        )
    if credential.installation_id != installation.pk or credential.agent_id != agent_id:
        logger.warning(
            "freshdesk device credential of another agent refused installation=%s agent=%s "
            "credential=%s",
            installation.pk,
            agent_id,
            credential.pk,
        )
        raise DeviceRefused(
            gettext("This device credential belongs to another agent or account."),
            code="device_credential_mismatch",
        )
    if credential.revoked_at is not None:
        raise DeviceRefused(
            gettext("This browser's device credential was revoked. Confirm it again."),
            code="device_credential_revoked",
        )
    now = timezone.now()
    if expires_at(credential) <= now:
        raise DeviceRefused(
            gettext("This browser's device credential has expired. Confirm it again."),
            code="device_credential_expired",
        )
    DeviceCredential.objects.filter(pk=credential.pk).update(last_used_at=now)
    credential.last_used_at = now
    return credential


def credentials_revoke(queryset) -> int:
    """Revoke the given credentials (admin); answers how many were still in force."""
    return queryset.filter(revoked_at__isnull=True).update(revoked_at=timezone.now())
