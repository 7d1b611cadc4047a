"""Approvers' second factor (issue 17): enrolling an authenticator app, recovery codes,
and checking a code — all through django-otp's devices, never our own crypto.

Why django-otp: it plugs into Django's own sessions (``django_otp.login`` marks the
session verified, ``OTPMiddleware`` reads it back as ``user.is_verified()``), its TOTP
device is RFC 6238 with a replay guard (``last_t``: a code is accepted once) and its
devices throttle failures with exponential back-off (``ThrottlingMixin``).

Two rules kept here:
- **Enrolment is only for a user with nothing enrolled.** A password alone may add the
  first authenticator (that is what "enrolled on first sign-in" means), never a second
  one beside an existing factor. A new authenticator replaces the old one only from a
  session already verified with the user's second factor (a recovery code after a lost
  phone); with neither left, an admin's reset (delete the user's devices in Django
  admin) lets the user enrol again.
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
from django.db import transaction
from django.utils.translation import gettext_lazy as _
from django_otp import models as otp_models
from django_otp.models import Device
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from ..errors import BillingDeskError, Conflict, NotPermitted
from ..selectors.two_factor import second_factor_enrolled

logger = logging.getLogger("billing_app.two_factor")

RECOVERY_CODE_COUNT = 10
TOTP_DEVICE_NAME = "Authenticator app"
RECOVERY_DEVICE_NAME = "Recovery codes"
_TOTP_SHAPE = re.compile(r"^[0-9]{6,8}$")


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


def totp_enrolment_start(*, user: AbstractBaseUser, replacing: bool = False) -> TOTPDevice:
    """The unconfirmed authenticator this user is enrolling (created on first call).

    Refused (``already_enrolled``) once the user has a second factor — unless
    ``replacing``: a session verified with the user's second factor (the caller checks)
    sets up a new authenticator, e.g. after signing in with a recovery code.
    """
    with transaction.atomic():
        _lock_user(user)
        if not replacing:
            _refuse_if_enrolled(user)
        device = TOTPDevice.objects.filter(user_id=user.pk, confirmed=False).order_by("-pk").first()
        if device is None:
            device = TOTPDevice.objects.create(user=user, name=TOTP_DEVICE_NAME, confirmed=False)
        return device


def _refuse_if_enrolled(user: AbstractBaseUser) -> None:
    if second_factor_enrolled(user):
        raise Conflict(
            str(_("A second factor is already set up for this account.")),
            code="already_enrolled",
        )


def totp_enrolment_confirm(
    *, user: AbstractBaseUser, code: str, replacing: bool = False
) -> tuple[TOTPDevice, list[str]]:
    """Confirm the enrolling authenticator with a code it shows; returns it and fresh recovery
    codes (shown to the user once, stored only in django-otp's static device).

    ``replacing`` (a verified session, see ``totp_enrolment_start``): the new authenticator
    takes the place of the old one, which stops working; the recovery codes are kept
    (no codes returned).
    """
    refusal: _Refusal | None = None
    with transaction.atomic():
        _lock_user(user)
        if not replacing:
            _refuse_if_enrolled(user)
        device = (
            TOTPDevice.objects.select_for_update()
            .filter(user_id=user.pk, confirmed=False)
            .order_by("-pk")
            .first()
        )
        if device is None:
            raise CodeRefused(
                str(_("Start again: no authenticator is being set up for this account.")),
                code="no_enrolment",
            )
        refusal = _attempt(device, _normalise(code))
        if refusal is None:
            device.confirmed = True
            device.save(update_fields=["confirmed"])
            TOTPDevice.objects.filter(user_id=user.pk).exclude(pk=device.pk).delete()
            codes = [] if replacing else _recovery_codes_replace(user)
            logger.info(
                "second factor: user %s %s an authenticator",
                user.pk,
                "replaced" if replacing else "enrolled",
            )
            return device, codes
    raise _refuse(user, refusal, step="enrolment")


def second_factor_verify(*, user: AbstractBaseUser, code: str) -> Device:
    """The device that accepts ``code``: a 6-digit code is checked against the user's
    authenticator, anything else against their recovery codes (a recovery code is spent).

    Each kind of device counts its own failures, so a wrong recovery code never locks the
    authenticator and the other way round.
    """
    token = _normalise(code)
    model: type[Device] = TOTPDevice if _TOTP_SHAPE.match(token) else StaticDevice
    refusal: _Refusal | None = _Refusal()
    with transaction.atomic():
        devices = list(
            model.objects.select_for_update().filter(user_id=user.pk, confirmed=True).order_by("pk")
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


def _recovery_codes_replace(user: AbstractBaseUser) -> list[str]:
    device, _created = StaticDevice.objects.get_or_create(
        user=user, name=RECOVERY_DEVICE_NAME, defaults={"confirmed": True}
    )
    StaticDevice.objects.filter(user_id=user.pk).exclude(pk=device.pk).delete()
    device.token_set.all().delete()
    codes = [StaticToken.random_token() for _ in range(RECOVERY_CODE_COUNT)]
    StaticToken.objects.bulk_create([StaticToken(device=device, token=c) for c in codes])
    if not device.confirmed:
        device.confirmed = True
        device.save(update_fields=["confirmed"])
    device.throttle_reset()
    return codes


def recovery_codes_regenerate(*, user: AbstractBaseUser) -> list[str]:
    """New recovery codes for a verified user; every earlier code stops working."""
    with transaction.atomic():
        _lock_user(user)
        codes = _recovery_codes_replace(user)
    logger.info("second factor: user %s replaced their recovery codes", user.pk)
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
