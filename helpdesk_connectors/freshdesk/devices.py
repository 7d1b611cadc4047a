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

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.core.validators import validate_email
from django.db import models, transaction
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
_EMAIL_SALT = "billing-desk.freshdesk-device-email.v1"

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
        "device_credential_email_changed",
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


def email_digest(email: str) -> str:
    """A keyed HMAC of the address, lower-cased: compares a later address without storing it."""
    return salted_hmac(_EMAIL_SALT, email.strip().lower(), algorithm="sha256").hexdigest()


def email_valid(value: object) -> str:
    """The agent's address when it is exactly one valid address, else ``""``."""
    if not isinstance(value, str):
        return ""
    email = value.strip()
    try:
        validate_email(email)
    except ValidationError:
        return ""
    return email


def language_normalise(value: object) -> str:
    """Freshdesk's ``contact.language`` (``de``, ``de-DE``, ``pt-BR``) as one of
    ``settings.LANGUAGES``, else ``""`` — as the session path (billing_app.locales) reads it."""
    if not isinstance(value, str):
        return ""
    tag = value.strip().replace("_", "-").lower()
    if not tag or len(tag) > 35:
        return ""
    codes = {code.lower() for code, _name in settings.LANGUAGES}
    if tag in codes:
        return tag
    primary = tag.split("-", 1)[0]
    return primary if primary in codes else ""


def agent_same(claimed: str, answered: str, installation: Installation) -> None:
    """Refuse when Freshdesk answered for another agent id than the one claimed (and checked)."""
    if answered != claimed:
        logger.warning(
            "freshdesk agent id mismatch installation=%s claimed=%s answered=%s",
            installation.pk,
            claimed,
            answered,
        )
        raise EntryRejected(
            gettext("Freshdesk answered for another agent than the one asked for."),
            code="agent_mismatch",
        )


def mask_email(email: str) -> str:
    """``maria@acme.example`` → ``m•••@acme.example``: which inbox, not the address."""
    local, _, domain = email.partition("@")
    return f"{local[:1]}•••@{domain}" if local and domain else "•••"


def _locked_until(installation: Installation, agent_id: str) -> datetime | None:
    found = (
        DeviceEnrollment.objects.filter(
            installation=installation,
            agent_id=agent_id,
            locked_until__gt=timezone.now(),
            released_at__isnull=True,
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


def _may_send(installation: Installation, agent_id: str, device_label: str = "") -> None:
    """Refuse while the agent is locked or has had MAX_SENDS_PER_HOUR codes this hour (codes
    whose email failed and rows an admin released do not count)."""
    until = _locked_until(installation, agent_id)
    if until is not None:
        logger.warning(
            "freshdesk enrollment code refused: locked installation=%s agent=%s device=%r",
            installation.pk,
            agent_id,
            device_label,
        )
        raise _locked(until)
    hour_ago = timezone.now() - timedelta(hours=1)
    sent = DeviceEnrollment.objects.filter(
        installation=installation,
        agent_id=agent_id,
        created_at__gt=hour_ago,
        send_failed_at__isnull=True,
        released_at__isnull=True,
    ).count()
    if sent >= MAX_SENDS_PER_HOUR:
        logger.warning(
            "freshdesk enrollment code refused: send limit installation=%s agent=%s device=%r",
            installation.pk,
            agent_id,
            device_label,
        )
        raise DeviceRefused(
            gettext("Too many codes were sent in the last hour. Try again later."),
            code="enrollment_rate_limited",
            status=429,
            details={"retry_after": 3600},
        )


def enrollment_start(
    installation: Installation, agent_id: str, *, device_label: str = ""
) -> StartedEnrollment:
    """Email a code to the agent's own address (read from Freshdesk, never from the frame).

    ``device_label`` is what the calling frame says its browser is: logged with every start
    and refusal, so an admin can tell the agent's own browser from another agent's frame
    asking for codes in their name (docs/threat-model.md), never trusted for anything."""
    device_label = device_label[:200]
    logger.info(
        "freshdesk enrollment code asked installation=%s agent=%s device=%r",
        installation.pk,
        agent_id,
        device_label,
    )
    enrollments_prune()
    _may_send(installation, agent_id, device_label)  # before asking Freshdesk anything
    try:
        agent = client.agent_get(installation, agent_id)
    except HelpdeskApiError as exc:
        if exc.http_status == 404:
            raise EntryRejected(
                gettext("No such agent in this Freshdesk account."), code="unknown_agent"
            ) from exc
        raise
    agent_same(agent_id, agent.id, installation)
    if not agent.active:
        raise EntryRejected(
            gettext("This agent is not active in Freshdesk."), code="agent_inactive"
        )
    email = email_valid(agent.email)
    if not email:
        raise EntryRejected(
            gettext("Freshdesk has no email address for this agent."), code="agent_without_email"
        )
    attempt = secrets.token_urlsafe(ATTEMPT_BYTES)
    code = f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"
    masked = mask_email(email)
    with transaction.atomic():
        # The installation's row lock serialises the check and the insert: parallel requests
        # cannot send more than MAX_SENDS_PER_HOUR codes between them.
        Installation.objects.select_for_update().filter(pk=installation.pk).first()
        _may_send(installation, agent_id, device_label)
        enrollment = DeviceEnrollment.objects.create(
            installation=installation,
            agent_id=agent_id,
            attempt_digest=digest(attempt),
            code_digest=_code_digest(attempt, code),
            email_masked=masked,
            email_digest=email_digest(email),
            expires_at=timezone.now() + CODE_TTL,
        )
    try:
        _send_code(installation, agent, email, code)
    except Exception as exc:
        # Not counted against the agent, and not verifiable: should the mail have gone out
        # after all, typing its code answers that it was not sent (code_not_sent).
        DeviceEnrollment.objects.filter(pk=enrollment.pk).update(send_failed_at=timezone.now())
        logger.exception(
            "freshdesk enrollment code not sent installation=%s agent=%s enrollment=%s",
            installation.pk,
            agent_id,
            enrollment.pk,
        )
        raise DeviceRefused(
            gettext("The code could not be sent. Try again in a minute."),
            code="email_unavailable",
            status=503,
        ) from exc
    logger.info(
        "freshdesk enrollment code sent installation=%s agent=%s enrollment=%s device=%r",
        installation.pk,
        agent_id,
        enrollment.pk,
        device_label,
    )
    return StartedEnrollment(
        attempt=attempt, email_masked=masked, expires_in=int(CODE_TTL.total_seconds())
    )


def _send_code(
    installation: Installation, agent: client.FreshdeskAgent, email: str, code: str
) -> None:
    # The code is in the body only: subjects show up in notifications and mail lists.
    with translation.override(language_normalise(agent.language) or None):
        subject = gettext("Your Billing Desk code")
        body = gettext(
            "Hello %(name)s,\n\n"
            "Billing Desk was opened in Freshdesk (%(domain)s) on a browser it does not know "
            "yet. To use it there, type this code into the Billing Desk app:\n\n"
            "    %(code)s\n\n"
            "The code works once, for %(minutes)s minutes.\n\n"
            "If this was not you, do not type the code anywhere and tell your Billing Desk "
            "administrator: someone may be using your Freshdesk account."
        ) % {
            "name": agent.name or email,
            "domain": installation.domain,
            "code": code,
            "minutes": int(CODE_TTL.total_seconds() // 60),
        }
    send_mail(subject, body, None, [email])


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
    device_label = device_label[:200]
    if not attempt or len(attempt) > MAX_SECRET_LENGTH:
        raise DeviceRefused(gettext("Ask for a new code."), code="enrollment_unknown")
    enrollment = DeviceEnrollment.objects.filter(
        attempt_digest=digest(attempt), installation=installation, agent_id=agent_id
    ).first()
    if enrollment is None:  # unknown, or another agent's or installation's attempt
        logger.warning(
            "freshdesk enrollment refused: unknown attempt installation=%s agent=%s device=%r",
            installation.pk,
            agent_id,
            device_label,
        )
        raise DeviceRefused(gettext("Ask for a new code."), code="enrollment_unknown")
    if enrollment.send_failed_at is not None:
        raise DeviceRefused(
            gettext("Sending this code failed, so it cannot be used. Ask for a new code."),
            code="code_not_sent",
        )
    if enrollment.released_at is not None and enrollment.used_at is None:
        # an admin lifted the agent's lock: this attempt is over, a new code is the way on
        raise DeviceRefused(gettext("Ask for a new code."), code="enrollment_unknown")
    until = _locked_until(installation, agent_id)
    if until is not None:
        logger.warning(
            "freshdesk enrollment refused: locked installation=%s agent=%s device=%r",
            installation.pk,
            agent_id,
            device_label,
        )
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
        pk=enrollment.pk, used_at__isnull=True, released_at__isnull=True, attempts__lt=MAX_ATTEMPTS
    ).update(attempts=F("attempts") + 1)
    if not reserved:
        enrollment.refresh_from_db()
        if enrollment.used_at is not None:
            raise DeviceRefused(
                gettext("This code was already used. Ask for a new code."), code="code_used"
            )
        if enrollment.released_at is not None:
            raise DeviceRefused(gettext("Ask for a new code."), code="enrollment_unknown")
        raise _locked(enrollment.locked_until or now + LOCK_PERIOD)
    typed = "".join(str(code).split()) if isinstance(code, str | int) else ""
    if not hmac.compare_digest(_code_digest(attempt, typed), enrollment.code_digest):
        enrollment.refresh_from_db(fields=["attempts"])
        left = max(0, MAX_ATTEMPTS - enrollment.attempts)
        logger.warning(
            "freshdesk enrollment: wrong code installation=%s agent=%s enrollment=%s left=%s "
            "device=%r",
            installation.pk,
            agent_id,
            enrollment.pk,
            left,
            device_label,
        )
        if left == 0:
            locked_until = now + LOCK_PERIOD
            DeviceEnrollment.objects.filter(pk=enrollment.pk).update(locked_until=locked_until)
            logger.warning(
                "freshdesk enrollment locked installation=%s agent=%s until=%s device=%r",
                installation.pk,
                agent_id,
                locked_until.isoformat(),
                device_label,
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
            pk=enrollment.pk,
            used_at__isnull=True,
            released_at__isnull=True,
            send_failed_at__isnull=True,
            expires_at__gt=now,
        ).update(used_at=now)
        if not won:
            raise DeviceRefused(
                gettext("This code was already used. Ask for a new code."), code="code_used"
            )
        credential = DeviceCredential.objects.create(
            installation=installation,
            agent_id=agent_id,
            email_masked=enrollment.email_masked,
            email_digest=enrollment.email_digest,
            digest=digest(secret),
            device_label=device_label,
            # stamped now: a longer lifetime set later never lengthens (or revives) it
            expires_at=now + timedelta(days=credential_days(installation)),
        )
        DeviceEnrollment.objects.filter(pk=enrollment.pk).update(credential=credential)
    logger.info(
        "freshdesk device credential issued installation=%s agent=%s credential=%s device=%r",
        installation.pk,
        agent_id,
        credential.pk,
        device_label,
    )
    return IssuedCredential(secret=secret, credential=credential)


# --- 3. every session: the credential ----------------------------------------------------------------


def expires_at(credential: DeviceCredential) -> datetime:
    """The earlier of the expiry stamped at issue and issue plus the current days: shortening
    the workspace's setting ends credentials at once, lengthening it never revives one."""
    current = credential.created_at + timedelta(days=credential_days(credential.installation))
    stamped = credential.expires_at
    return min(stamped, current) if stamped is not None else current


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


def credential_email_check(credential: DeviceCredential, email: str) -> None:
    """Refuse a credential whose agent's Freshdesk email is no longer the one its code went to:
    the address changed (perhaps by someone taking the account over), so the browser is
    confirmed again through the new mailbox."""
    expected = credential.email_digest
    if not expected or not hmac.compare_digest(expected, email_digest(email or "")):
        logger.warning(
            "freshdesk device credential refused: email changed installation=%s agent=%s "
            "credential=%s",
            credential.installation_id,
            credential.agent_id,
            credential.pk,
        )
        raise DeviceRefused(
            gettext(
                "Your email address in Freshdesk changed since this browser was confirmed. "
                "Confirm it again."
            ),
            code="device_credential_email_changed",
        )


def agent_release(installation_id: int, agent_id: str) -> int:
    """Lift an agent's lock and reset their hourly code count (admin, after abuse by another
    agent): every enrollment of the agent still counting or locked is released — it counts no
    more and its code no longer verifies, so the agent asks for a fresh code. Answers how many
    rows were released."""
    now = timezone.now()
    released = DeviceEnrollment.objects.filter(
        installation_id=installation_id,
        agent_id=agent_id,
        released_at__isnull=True,
    ).filter(
        models.Q(created_at__gt=now - timedelta(hours=1)) | models.Q(locked_until__isnull=False)
    )
    count = released.update(released_at=now, locked_until=None)
    DeviceEnrollment.objects.filter(
        installation_id=installation_id, agent_id=agent_id, locked_until__isnull=False
    ).update(locked_until=None)
    logger.warning(
        "freshdesk enrollment lock and send limit lifted installation=%s agent=%s released=%s",
        installation_id,
        agent_id,
        count,
    )
    return count


def credentials_revoke(queryset) -> int:
    """Revoke the given credentials (admin); answers how many were still in force."""
    return queryset.filter(revoked_at__isnull=True).update(revoked_at=timezone.now())
