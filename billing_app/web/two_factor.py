"""Sign-in with a second factor for approvers and staff (issue 17): ``/accounts/login/``,
``/accounts/two-factor/`` and ``/accounts/two-factor/recovery-codes/``.

The password step does not sign an approver in. It remembers, in a fresh session, who
passed it (``PENDING_KEY``: the user, their password's session hash and the moment) and
sends them to the second-factor step; only a code from their authenticator app or a
recovery code signs them in (``auth.login``) and marks the session verified
(``django_otp.login``). So a stolen password alone opens no page of an approver or staff
member. Someone with no second factor yet enrols at once: the authenticator's secret as a
QR code and in text, confirmed with a code it shows, then ten single-use recovery codes
shown once. The secret being enrolled lives only in this session (``ENROL_KEY``) until it
is confirmed; replacing the authenticator or the recovery codes later asks for a current
code as well.

A session signed in before this step existed (or of a user who became an approver since)
is sent to the same step by ``verified_approver_required`` and by the admin site.
Users who are neither approvers nor staff sign in with the password alone, as before.
"""

from __future__ import annotations

import time
from base64 import b32encode
from collections.abc import Callable
from functools import wraps
from typing import Any
from urllib.parse import quote, urlencode

import qrcode
import qrcode.image.svg
from django.conf import settings
from django.contrib import auth, messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.models import User
from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render, resolve_url
from django.urls import reverse
from django.utils.crypto import constant_time_compare
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_http_methods
from django_otp import login as otp_login
from django_otp.models import Device
from django_otp.plugins.otp_totp.models import TOTPDevice

from ..errors import BillingDeskError, Conflict
from ..selectors.two_factor import (
    recovery_codes_left,
    second_factor_enrolled,
    second_factor_missing,
    second_factor_required,
    second_factor_verified,
)
from ..services.two_factor import (
    CodeRefused,
    recovery_codes_regenerate,
    second_factor_verify,
    totp_enrolment_confirm,
    totp_enrolment_start,
)

PENDING_KEY = "two_factor_pending"
# The authenticator key being set up in this session (security review r3): never stored
# in the database before its code is confirmed, never shown to another session.
ENROL_KEY = "two_factor_enrolment"
# How long the password step stays good for the second-factor step.
PENDING_SECONDS = 10 * 60
ISSUER = "Billing Desk"


def _safe_next(request: HttpRequest, candidate: str | None) -> str:
    if candidate and url_has_allowed_host_and_scheme(
        candidate, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return candidate
    return resolve_url(settings.LOGIN_REDIRECT_URL)


def two_factor_url(next_url: str) -> str:
    return f"{reverse('two-factor')}?{urlencode({'next': next_url})}"


class SignInView(auth_views.LoginView):
    """The password step. Approvers and staff go on to the second-factor step, not signed in."""

    def form_valid(self, form: Any) -> HttpResponse:
        user = form.get_user()
        request = self.request
        # Whatever an earlier password step left in this session goes, whoever signs in now.
        request.session.pop(PENDING_KEY, None)
        request.session.pop(ENROL_KEY, None)
        if not second_factor_required(user):
            return super().form_valid(form)
        next_url = _safe_next(request, self.get_redirect_url())
        if request.user.is_authenticated:
            auth.logout(request)  # another account's session ends here (and its data)
        else:
            request.session.cycle_key()  # no session fixed before the password survives it
        request.session[PENDING_KEY] = {
            "user": user.pk,
            "backend": user.backend,
            "hash": user.get_session_auth_hash(),
            "at": time.time(),
            "next": next_url,
        }
        return redirect(two_factor_url(next_url))


def _pending(request: HttpRequest) -> tuple[User | None, dict[str, Any]]:
    """Who passed the password step in this session (and is still who they were then)."""
    data = request.session.get(PENDING_KEY)
    if not isinstance(data, dict):
        return None, {}
    if time.time() - float(data.get("at", 0)) > PENDING_SECONDS:
        request.session.pop(PENDING_KEY, None)
        return None, {}
    user_id = data.get("user")
    user = (
        User.objects.filter(pk=user_id, is_active=True).first()
        if isinstance(user_id, int)
        else None
    )
    if user is None or not constant_time_compare(
        user.get_session_auth_hash(), str(data.get("hash", ""))
    ):
        request.session.pop(PENDING_KEY, None)
        return None, {}
    return user, data


def _sign_in(request: HttpRequest, user: User, device: Device, pending: dict[str, Any]) -> None:
    """The second factor passed: sign the user in (if the password step was this session's)
    and mark the session verified."""
    request.session.pop(ENROL_KEY, None)
    if pending:
        request.session.pop(PENDING_KEY, None)
        auth.login(request, user, backend=pending.get("backend"))
    else:
        request.session.cycle_key()  # the session gains rights: a new key
    otp_login(request, device)


def _stored_key(request: HttpRequest, user: User, *, replacing: bool) -> str | None:
    data = request.session.get(ENROL_KEY)
    if (
        isinstance(data, dict)
        and data.get("user") == user.pk
        and bool(data.get("replacing")) == replacing
        and isinstance(data.get("key"), str)
    ):
        return str(data["key"])
    return None


def _enrolment_key(request: HttpRequest, user: User, *, replacing: bool) -> str:
    """This session's pending key for ``user`` (the same QR code on a reload), or a new one
    (``totp_enrolment_start``: the user's unconfirmed devices are deleted)."""
    key = _stored_key(request, user, replacing=replacing)
    if key is None:
        key = totp_enrolment_start(user=user, replacing=replacing)
        request.session[ENROL_KEY] = {"user": user.pk, "key": key, "replacing": replacing}
    return key


def _session_key(request: HttpRequest, user: User, *, replacing: bool) -> str:
    """The key this session is enrolling for ``user``; refused if it started none."""
    key = _stored_key(request, user, replacing=replacing)
    if key is not None:
        return key
    raise CodeRefused(
        _("Start again: no authenticator is being set up for this account."),
        code="no_enrolment",
    )


def totp_qr_svg(device: TOTPDevice) -> str:
    """The ``otpauth://`` URL as an inline SVG (qrcode's SVG path factory: no image file)."""
    image = qrcode.make(
        _config_url(device), image_factory=qrcode.image.svg.SvgPathImage, box_size=8
    )
    return image.to_string(encoding="unicode")


def _config_url(device: TOTPDevice) -> str:
    """django-otp's ``config_url``, naming Billing Desk as the issuer unless settings do."""
    url = device.config_url
    if "issuer=" in url:
        return url
    label = f"{ISSUER}:{device.user.get_username()}"
    query = url.split("?", 1)[1]
    return f"otpauth://totp/{quote(label)}?{query}&issuer={quote(ISSUER)}"


def _secret_text(device: TOTPDevice) -> str:
    secret = b32encode(device.bin_key).decode("ascii")
    return " ".join(secret[i : i + 4] for i in range(0, len(secret), 4))


@sensitive_post_parameters("code")
@never_cache
@require_http_methods(["GET", "POST"])
def two_factor_step(request: HttpRequest) -> HttpResponse:
    """Enter a code (or enrol, for someone with no second factor yet)."""
    user, pending = _pending(request)
    if user is None:
        if not request.user.is_authenticated:
            return redirect_to_login(request.GET.get("next") or request.get_full_path())
        user = request.user
    next_url = _safe_next(request, pending.get("next") or request.GET.get("next"))
    if not pending and not second_factor_missing(user):
        return redirect(next_url)
    if second_factor_enrolled(user):
        return _verify(request, user, pending, next_url)
    return _enrol(request, user, pending, next_url)


def _verify(
    request: HttpRequest, user: User, pending: dict[str, Any], next_url: str
) -> HttpResponse:
    error, status = "", 200
    if request.method == "POST":
        try:
            device = second_factor_verify(user=user, code=request.POST.get("code", ""))
        except BillingDeskError as exc:
            error, status = exc.message, exc.status
        else:
            _sign_in(request, user, device, pending)
            return redirect(next_url)
    return render(
        request,
        "two_factor/verify.html",
        {"who": user.get_username(), "error": error, "next": next_url},
        status=status,
    )


def _enrol(
    request: HttpRequest, user: User, pending: dict[str, Any], next_url: str
) -> HttpResponse:
    error, status = "", 200
    if request.method == "POST":
        try:
            device, codes = totp_enrolment_confirm(
                user=user,
                key=_session_key(request, user, replacing=False),
                code=request.POST.get("code", ""),
            )
        except BillingDeskError as exc:
            error, status = exc.message, exc.status
        else:
            _sign_in(request, user, device, pending)
            return render(
                request,
                "two_factor/recovery_codes.html",
                {"codes": codes, "next": next_url, "enrolled": True},
            )
    try:
        key = _enrolment_key(request, user, replacing=False)
    except Conflict:  # enrolled meanwhile (another tab): enter a code instead
        return redirect(two_factor_url(next_url))
    return _enrol_page(request, user, key, error, status, action=two_factor_url(next_url))


def _enrol_page(
    request: HttpRequest,
    user: User,
    key: str,
    error: str,
    status: int,
    *,
    action: str,
    replacing: bool = False,
) -> HttpResponse:
    device = TOTPDevice(user=user, key=key)  # not saved: only for the QR code and the text
    return render(
        request,
        "two_factor/enrol.html",
        {
            "who": user.get_username(),
            "qr_svg": totp_qr_svg(device),
            "secret": _secret_text(device),
            "error": error,
            "action": action,
            "replacing": replacing,
        },
        status=status,
    )


@sensitive_post_parameters("code")
@never_cache
@require_http_methods(["GET", "POST"])
def recovery_codes(request: HttpRequest) -> HttpResponse:
    """How many recovery codes are left; POST replaces them all (shown once)."""
    if not request.user.is_authenticated:
        return redirect_to_login(request.get_full_path())
    if not second_factor_verified(request.user):
        return redirect(two_factor_url(request.get_full_path()))
    error, status = "", 200
    if request.method == "POST":
        try:
            codes = recovery_codes_regenerate(
                user=request.user, current_code=request.POST.get("code", "")
            )
        except BillingDeskError as exc:
            error, status = exc.message, exc.status
        else:
            return render(
                request,
                "two_factor/recovery_codes.html",
                {
                    "codes": codes,
                    "next": resolve_url(settings.LOGIN_REDIRECT_URL),
                    "enrolled": False,
                },
            )
    return render(
        request,
        "two_factor/recovery.html",
        {"left": recovery_codes_left(request.user), "error": error},
        status=status,
    )


@sensitive_post_parameters("code", "current_code")
@never_cache
@require_http_methods(["GET", "POST"])
def replace_authenticator(request: HttpRequest) -> HttpResponse:
    """A verified user sets up a new authenticator app in place of the old one (a new phone,
    or a lost one after signing in with a recovery code). Recovery codes are kept."""
    if not request.user.is_authenticated:
        return redirect_to_login(request.get_full_path())
    if not second_factor_verified(request.user):
        return redirect(two_factor_url(request.get_full_path()))
    user: User = request.user
    error, status = "", 200
    if request.method == "POST":
        try:
            device, _codes = totp_enrolment_confirm(
                user=user,
                key=_session_key(request, user, replacing=True),
                code=request.POST.get("code", ""),
                replacing=True,
                current_code=request.POST.get("current_code", ""),
            )
        except BillingDeskError as exc:
            error, status = exc.message, exc.status
        else:
            request.session.pop(ENROL_KEY, None)
            otp_login(request, device)  # the old device is gone: the session keeps the new one
            messages.success(request, _("Your new authenticator app is set up."))
            return redirect("two-factor-recovery")
    key = _enrolment_key(request, user, replacing=True)
    return _enrol_page(
        request,
        user,
        key,
        error,
        status,
        action=reverse("two-factor-authenticator"),
        replacing=True,
    )


def verified_approver_required(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """``login_required``, and a verified second factor for approvers and staff.

    A request without one is sent to the second-factor step and comes back by GET: a
    decision posted from an unverified session is never carried out, it is made again.
    """

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        if second_factor_missing(request.user):
            return redirect(two_factor_url(request.get_full_path()))
        return view(request, *args, **kwargs)

    return wrapper
