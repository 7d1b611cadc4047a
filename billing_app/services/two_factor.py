"""Approvers' second factor (issue 17): enrolling an authenticator app, recovery codes,
and checking a code — all through django-otp's devices, never our own crypto.

Why django-otp: it plugs into Django's own sessions (``django_otp.login`` marks the
session verified, ``OTPMiddleware`` reads it back as ``user.is_verified()``), its TOTP
device is RFC 6238 with a replay guard (``last_t``: a code is accepted once) and its
devices throttle failures with exponential back-off (``ThrottlingMixin``).

Rules kept here:
- **Enrolment is only for a user with nothing enrolled.** A password alone may add the
  first authenticator (that is what "enrolled on first sign-in" means), never a second
  one beside an existing factor. A new authenticator replaces the old one only from a
  session already verified with the user's second factor (a recovery code after a lost
  phone) that also gives a current code; with neither left, an admin's reset (delete the
  user's devices in Django admin) lets the user enrol again.
- **The key being enrolled exists only in the session that asked for it.** No device is
  stored until its code is confirmed (``totp_enrolment_confirm`` creates it confirmed), so
  someone else with the password cannot read a key that the real user will enrol later.
  First-time setup still trusts whoever has the password first; the user is emailed
  whenever a second factor is set up or replaced, or recovery codes are regenerated.
- **A failure is counted even though the caller is refused.** django-otp records a
  failed attempt on the device (``throttle_increment``, committed). Raising inside the
  same transaction would roll that count back and switch throttling off, so the
  refusal is raised only after the transaction has committed.
"""

from __future__ import annotations

import logging
import math
import re
from dataclasses import dataclass
from datetime import datetime

from django.contrib.auth.models import AbstractBaseUser, User
from django.core.mail import send_mail
from django.db import transaction
from django.utils.translation import gettext_lazy as _
from django_otp import models as otp_models
from django_otp.models import Device
from django_otp.oath import TOTP
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp import models as totp_models
from django_otp.plugins.otp_totp.models import TOTPDevice
from django_otp.util import random_hex

from ..errors import BillingDeskError, Conflict, NotPermitted
from ..selectors.two_factor import second_factor_enrolled

logger = logging.getLogger("billing_app.two_factor")

RECOVERY_CODE_COUNT = 10
TOTP_DEVICE_NAME = "Authenticator app"
RECOVERY_DEVICE_NAME = "Recovery codes"


class SecondFactorRequired(NotPermitted):
    """A password session of an approver or staff member that has not passed its second factor."""

    code = "second_factor_required"


class CodeRefused(BillingDeskError):
    """A wrong, expired or already used code (TOTP or recovery)."""

    code = "invalid_code"
    status = 400


class CodeThrottled(BillingDeskError):
    """Too many wrong codes in a row: django-otp's back-off holds the device for a while."""

    code = "too_many_attempts"
    status = 429


@dataclass(frozen=True)
class _Refusal:
    locked_until: datetime | None = None


def _normalise(code: str) -> str:
    return re.sub(r"[\s-]+", "", code or "").lower()


def _refuse(user: AbstractBaseUser, refusal: _Refusal, *, step: str) -> BillingDeskError:
    if refusal.locked_until is not None:
        # The clock django-otp's throttle reads (``timezone.now``, as that module sees it).
        now = otp_models.timezone.now()
        seconds = max(1, math.ceil((refusal.locked_until - now).total_seconds()))
        logger.warning("second factor: user %s throttled at %s for %s s", user.pk, step, seconds)
        return CodeThrottled(
            str(_("Too many wrong codes. Wait %(seconds)s seconds, then try again."))
            % {"seconds": seconds},
            details={"retry_after_seconds": seconds},
        )
    logger.warning("second factor: user %s gave a wrong code at %s", user.pk, step)
    return CodeRefused(str(_("That code is not valid: it is wrong, expired or was already used.")))


def _attempt(device: Device, code: str) -> _Refusal | None:
    """``None`` if ``device`` accepts ``code`` (then spent); else why not. Call under a row lock."""
    allowed, info = device.verify_is_allowed()
    if not allowed:
        return _Refusal(locked_until=(info or {}).get("locked_until") or otp_models.timezone.now())
    if device.verify_token(code):
        return None
    return _Refusal()


def _lock_user(user: AbstractBaseUser) -> None:
    """Serialise one user's enrolments and recovery-code changes (no check-then-act race)."""
    User.objects.select_for_update().filter(pk=user.pk).first()


def totp_enrolment_start(*, user: AbstractBaseUser, replacing: bool = False) -> str:
    """A fresh authenticator key (hex) for this user to enrol; nothing is stored.

    The caller keeps the key in the session that asked for it (``web.two_factor``), so only
    that session can see it or confirm it: a second session with the same password gets a
    key of its own. Any unconfirmed device the user has (left by an older version) is
    deleted. Refused (``already_enrolled``) once the user has a second factor — unless
    ``replacing``: a session verified with the user's second factor (the caller checks)
    sets up a new authenticator, e.g. after signing in with a recovery code.
    """
    with transaction.atomic():
        _lock_user(user)
        if not replacing:
            _refuse_if_enrolled(user)
        TOTPDevice.objects.filter(user_id=user.pk, confirmed=False).delete()
    return random_hex(20)


def _refuse_if_enrolled(user: AbstractBaseUser) -> None:
    if second_factor_enrolled(user):
        raise Conflict(
            str(_("A second factor is already set up for this account.")),
            code="already_enrolled",
        )


def _totp_candidate(user: AbstractBaseUser, key: str) -> TOTPDevice:
    return TOTPDevice(user=user, name=TOTP_DEVICE_NAME, key=key, confirmed=True)


def _totp_matches(device: TOTPDevice, code: str) -> bool:
    """Whether ``code`` is what an app with ``device``'s key shows now (within django-otp's
    tolerance). Sets ``last_t``/``drift`` on ``device`` (not saved) so the code is spent once
    the device is saved. The same clock as ``TOTPDevice.verify_token``."""
    token = _normalise(code)
    if not token.isdigit() or len(token) != device.digits:
        return False
    totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
    totp.time = totp_models.time.time()
    if not totp.verify(int(token), device.tolerance, device.last_t + 1):
        return False
    device.last_t = totp.t()
    device.drift = totp.drift
    return True


def totp_enrolment_confirm(
    *,
    user: AbstractBaseUser,
    key: str,
    code: str,
    replacing: bool = False,
    current_code: str = "",
) -> tuple[TOTPDevice, list[str]]:
    """Create the user's authenticator from the session's pending ``key`` once ``code`` (what
    the app shows) matches; returns it and fresh recovery codes (shown to the user once).

    ``replacing`` (a verified session, see ``totp_enrolment_start``): ``current_code``, a
    code of the user's present second factor (authenticator or recovery code), must be
    valid too; the new authenticator takes the place of the old one, which stops working;
    the recovery codes are kept (no codes returned). The user is emailed either way.
    """
    candidate = _totp_candidate(user, key)
    if not _totp_matches(candidate, code):
        logger.warning("second factor: user %s gave a wrong code at enrolment", user.pk)
        raise CodeRefused(
            str(_("That code is not valid: it is wrong, expired or was already used."))
        )
    if replacing:
        second_factor_verify(user=user, code=current_code)  # raises after its commit
    with transaction.atomic():
        _lock_user(user)
        if not replacing:
            _refuse_if_enrolled(user)
        candidate.set_last_used_timestamp(commit=False)
        candidate.save()
        TOTPDevice.objects.filter(user_id=user.pk).exclude(pk=candidate.pk).delete()
        codes = [] if replacing else _recovery_codes_replace(user)
    logger.info(
        "second factor: user %s %s an authenticator",
        user.pk,
        "replaced" if replacing else "enrolled",
    )
    _notify(user, replaced=replacing)
    return candidate, codes


def _notify(user: AbstractBaseUser, *, replaced: bool = False, recovery: bool = False) -> None:
    """Tell the user by email that their second factor changed, so a change they did not
    make (someone with their password enrolling first) is visible. Best effort: a failed
    send is logged, the change stands."""
    address = getattr(user, "email", "") or ""
    if not address:
        logger.info("second factor: user %s has no email address to notify", user.pk)
        return
    if recovery:
        subject = _("Billing Desk: new recovery codes")
        what = _(
            "New recovery codes were generated for your account; the earlier ones no longer work."
        )
    elif replaced:
        subject = _("Billing Desk: your authenticator app was replaced")
        what = _(
            "A new authenticator app was set up for your account; the old one no longer works."
        )
    else:
        subject = _("Billing Desk: a second factor was set up")
        what = _("An authenticator app and recovery codes were set up for your account.")
    body = "\n\n".join(
        [
            str(_("Hello %(name)s,")) % {"name": user.get_username()},
            str(what),
            str(
                _(
                    "If you did not do this, someone else knows your password: tell your "
                    "Billing Desk administrator at once. They reset your second factor, and "
                    "you change your password and set it up again."
                )
            ),
        ]
    )
    try:
        send_mail(str(subject), body, None, [address])
    except Exception:  # the change is made; a mail outage must not undo it
        logger.exception("second factor: notification to user %s failed", user.pk)


def second_factor_verify(*, user: AbstractBaseUser, code: str) -> Device:
    """The device that accepts ``code``: a 6-digit code is checked against the user's
    authenticator, anything else against their recovery codes (a recovery code is spent).

    Each kind of device counts its own failures, so a wrong recovery code never locks the
    authenticator and the other way round.
    """
    token = _normalise(code)
    if not token:  # nothing typed: no device is asked (nor its failure count raised)
        raise CodeRefused(
            str(_("That code is not valid: it is wrong, expired or was already used."))
        )
    refusal: _Refusal | None = _Refusal()
    with transaction.atomic():
        totp_devices = list(
            TOTPDevice.objects.select_for_update()
            .filter(user_id=user.pk, confirmed=True)
            .order_by("pk")
        )
        # Digits only, as long as the authenticator's codes: the authenticator. Anything
        # else: the recovery codes (new ones always hold a letter, ``_recovery_code``).
        if token.isdigit() and any(len(token) == d.digits for d in totp_devices):
            devices: list[Device] = list(totp_devices)
        else:
            devices = list(
                StaticDevice.objects.select_for_update()
                .filter(user_id=user.pk, confirmed=True)
                .order_by("pk")
            )
        for device in devices:
            outcome = _attempt(device, token)
            if outcome is None:
                logger.info(
                    "second factor: user %s verified with %s", user.pk, device.persistent_id
                )
                return device
            if refusal is None or refusal.locked_until is None:
                refusal = outcome
    raise _refuse(user, refusal or _Refusal(), step="sign-in")


def _recovery_code() -> str:
    """django-otp's random token (8 of ``a-z2-7``), drawn again until it holds a letter: an
    all-digit code would look like an authenticator code and never reach the recovery codes."""
    while True:
        token = StaticToken.random_token()
        if not token.isdigit():
            return token


def _recovery_codes_replace(user: AbstractBaseUser) -> list[str]:
    device, _created = StaticDevice.objects.get_or_create(
        user=user, name=RECOVERY_DEVICE_NAME, defaults={"confirmed": True}
    )
    StaticDevice.objects.filter(user_id=user.pk).exclude(pk=device.pk).delete()
    device.token_set.all().delete()
    codes = [_recovery_code() for _ in range(RECOVERY_CODE_COUNT)]
    StaticToken.objects.bulk_create([StaticToken(device=device, token=c) for c in codes])
    if not device.confirmed:
        device.confirmed = True
        device.save(update_fields=["confirmed"])
    device.throttle_reset()
    return codes


def recovery_codes_regenerate(*, user: AbstractBaseUser, current_code: str) -> list[str]:
    """New recovery codes for a verified user who gives a current code (authenticator or
    recovery code); every earlier code stops working. The user is emailed."""
    second_factor_verify(user=user, code=current_code)  # raises after its commit
    with transaction.atomic():
        _lock_user(user)
        codes = _recovery_codes_replace(user)
    logger.info("second factor: user %s replaced their recovery codes", user.pk)
    _notify(user, recovery=True)
    return codes


def second_factor_reset(*, user: AbstractBaseUser) -> int:
    """Remove every device of the user (an admin's reset; the demo's fresh approver): they
    enrol again at their next sign-in. Returns how many devices were removed."""
    with transaction.atomic():
        _lock_user(user)
        removed = (
            TOTPDevice.objects.filter(user_id=user.pk).delete()[1].get(TOTPDevice._meta.label, 0)
        )
        removed += (
            StaticDevice.objects.filter(user_id=user.pk)
            .delete()[1]
            .get(StaticDevice._meta.label, 0)
        )
    logger.info("second factor: user %s reset (%s devices removed)", user.pk, removed)
    return removed
