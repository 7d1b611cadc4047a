"""The admin site asks staff for a verified second factor (issue 17).

``admin.site`` keeps its class's behaviour and every registration (ours, django-otp's
TOTP and static device admins, auth's users and groups); only two things change, by
giving the one site object this subclass (what django-otp's own docs do with
``OTPAdminSite``):

- ``has_permission``: active staff *and* a session verified by ``django_otp.login``;
- ``login``: the admin's own password form is not used — it would sign staff in with a
  password alone. Staff go through ``/accounts/login/`` (password, then the second
  factor, enrolling at once if they have none), or straight to the second-factor step
  when already signed in.

Resetting someone's second factor is deleting their devices here (``TOTP devices`` and
``Static devices``, filtered by user): they enrol again at their next sign-in. django-otp's
device admins are made delete-only (``_DeleteOnly``): an admin could otherwise add a device
with a key they chose, or move one to another user, and so pass someone else's second
factor. Devices are created only by the user's own enrolment.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from django.contrib import admin
from django.contrib.admin.exceptions import NotRegistered
from django.contrib.auth import REDIRECT_FIELD_NAME
from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme

from ..selectors.two_factor import second_factor_verified


class SecondFactorAdminSite(admin.AdminSite):
    def has_permission(self, request: HttpRequest) -> bool:
        return super().has_permission(request) and second_factor_verified(request.user)

    def login(self, request: HttpRequest, extra_context: Any = None) -> HttpResponse:
        next_url = request.GET.get(REDIRECT_FIELD_NAME) or request.POST.get(REDIRECT_FIELD_NAME)
        if not next_url or not url_has_allowed_host_and_scheme(
            next_url, allowed_hosts={request.get_host()}, require_https=request.is_secure()
        ):
            next_url = reverse("admin:index", current_app=self.name)
        if self.has_permission(request):
            return redirect(next_url)
        user = request.user
        if user.is_authenticated and user.is_active and user.is_staff:
            return redirect(f"{reverse('two-factor')}?{urlencode({'next': next_url})}")
        return redirect_to_login(next_url)


class _DeleteOnly:
    """Mixed into django-otp's device admins: list, view and delete — no add, no change."""

    def has_add_permission(self, request: HttpRequest, *args: Any) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


def _device_admins_delete_only() -> None:
    from django_otp.plugins.otp_static.models import StaticDevice
    from django_otp.plugins.otp_totp.models import TOTPDevice

    for model in (TOTPDevice, StaticDevice):
        try:
            current = admin.site.get_model_admin(model)
        except NotRegistered:
            continue
        if isinstance(current, _DeleteOnly):
            continue
        base = type(current)
        admin.site.unregister(model)
        admin.site.register(model, type(f"DeleteOnly{base.__name__}", (_DeleteOnly, base), {}))


def admin_site_require_second_factor() -> None:
    """Give ``admin.site`` the second-factor check and delete-only device admins
    (idempotent; called from ``urls``)."""
    if not isinstance(admin.site, SecondFactorAdminSite):
        admin.site.__class__ = SecondFactorAdminSite
    _device_admins_delete_only()
