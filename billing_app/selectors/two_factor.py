"""Who must prove a second factor, and what they have enrolled (issue 17).

The rule is written once here and read by the sign-in step, the ``/approvals/`` pages,
the approvals API's decide endpoints and the admin site: a user signing in with a
Django password must pass a second factor when they may release money or change what
others may do — staff (Django admin) and every holder of an approver role (Manager,
VP, Legal) in any workspace. Everyone else signs in with the password alone.
"""

from __future__ import annotations

from django.contrib import auth
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.http import HttpRequest
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.models import Device
from django_otp.plugins.otp_static.models import StaticDevice
from django_otp.plugins.otp_totp.models import TOTPDevice

from ..catalog import APPROVER_ROLES
from ..models import AgentMembership


def second_factor_required(user: AbstractBaseUser | AnonymousUser | None) -> bool:
    """Whether this user's password session needs a verified second factor."""
    if user is None or not user.is_authenticated or not user.is_active:
        return False
    if getattr(user, "is_staff", False) or getattr(user, "is_superuser", False):
        return True
    return AgentMembership.objects.filter(
        user_id=user.pk, role__in=[role.value for role in APPROVER_ROLES]
    ).exists()


def second_factor_verified(user: AbstractBaseUser | AnonymousUser | None) -> bool:
    """Whether this session passed a second factor (``django_otp.middleware.OTPMiddleware``)."""
    is_verified = getattr(user, "is_verified", None)
    return bool(is_verified is not None and is_verified())


def second_factor_missing(user: AbstractBaseUser | AnonymousUser | None) -> bool:
    """A signed-in user who must pass a second factor and has not in this session."""
    return second_factor_required(user) and not second_factor_verified(user)


def session_second_factor_missing(request: HttpRequest) -> bool:
    """``second_factor_missing`` for the session's own user, read from the session itself.

    For DRF views: DRF replaces ``request.user`` with what *its* authentication found (an
    app session token's agent, or nobody), so the password session's user and its
    verified device (what ``OTPMiddleware`` reads) are read here again.
    """
    if not hasattr(request, "session"):
        return False
    user = auth.get_user(request)
    if not second_factor_required(user):
        return False
    device_id = request.session.get(DEVICE_ID_SESSION_KEY)
    device = Device.from_persistent_id(device_id) if isinstance(device_id, str) else None
    return not (device is not None and device.user_id == user.pk and device.confirmed)


def second_factor_enrolled(user: AbstractBaseUser) -> bool:
    """A confirmed authenticator app, or recovery codes left to sign in with."""
    return (
        TOTPDevice.objects.filter(user_id=user.pk, confirmed=True).exists()
        or StaticDevice.objects.filter(
            user_id=user.pk, confirmed=True, token_set__isnull=False
        ).exists()
    )


def recovery_codes_left(user: AbstractBaseUser) -> int:
    return (
        StaticDevice.objects.filter(user_id=user.pk, confirmed=True)
        .values("token_set")
        .exclude(token_set__isnull=True)
        .count()
    )
