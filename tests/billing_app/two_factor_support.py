"""Second-factor helpers for tests (issue 17): a signed-in *and verified* session, and TOTP
codes computed from a device's key at a frozen moment (no clock races)."""

from __future__ import annotations

from types import SimpleNamespace

from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp import models as totp_models
from django_otp.plugins.otp_totp.models import TOTPDevice

# A fixed moment, far from a 30-second step boundary (1_800_000_000 = step 60_000_000 + 0 s).
FROZEN_AT = 1_800_000_015.0


def verified_login(client, user) -> TOTPDevice:
    """``client.force_login(user)`` plus a confirmed authenticator that verified this session
    (what ``django_otp.login`` stores), as approvers and staff need for /approvals/ and admin."""
    device = TOTPDevice.objects.filter(user=user, confirmed=True).first()
    if device is None:
        device = TOTPDevice.objects.create(user=user, name="Test authenticator", confirmed=True)
    client.force_login(user)
    session = client.session
    session[DEVICE_ID_SESSION_KEY] = device.persistent_id
    session.save()
    return device


class TotpClock:
    """The clock django-otp's TOTP device reads, frozen; ``advance`` moves it by whole steps."""

    def __init__(self, monkeypatch, at: float = FROZEN_AT):
        self.now = at
        monkeypatch.setattr(totp_models, "time", SimpleNamespace(time=lambda: self.now))

    def advance(self, steps: int = 1, step: int = 30) -> None:
        self.now += steps * step

    def code(self, device: TOTPDevice, *, steps: int = 0) -> str:
        """The code the user's app shows now (or ``steps`` later)."""
        totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
        totp.time = self.now + steps * device.step
        return f"{totp.token():0{device.digits}d}"


def pending_device(client) -> TOTPDevice:
    """The authenticator this client's session is setting up (not stored until confirmed:
    its key lives in the session, ``web.two_factor.ENROL_KEY``), for ``TotpClock.code``."""
    from billing_app.web.two_factor import ENROL_KEY

    return TOTPDevice(key=client.session[ENROL_KEY]["key"])
