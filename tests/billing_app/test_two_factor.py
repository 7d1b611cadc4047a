"""Approvers and staff sign in with a second factor (issue 17): the password step, enrolment
end to end, codes refused (wrong, reused, spent recovery code, throttled), and nothing of an
approver's opened by a password alone. TOTP codes come from the device's key at a frozen
moment (``two_factor_support.TotpClock``)."""

from __future__ import annotations

import re
from base64 import b32encode
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp import models as otp_models
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from billing_app.catalog import Role
from billing_app.errors import Conflict
from billing_app.roles import agent_role_assign
from billing_app.services.two_factor import (
    RECOVERY_CODE_COUNT,
    second_factor_reset,
    totp_enrolment_start,
)

from .two_factor_support import TotpClock, pending_device, verified_login

PASSWORD = "a-long-passphrase-42"


@pytest.fixture
def clock(monkeypatch):
    return TotpClock(monkeypatch)


@pytest.fixture
def vp(workspace):
    user = User.objects.create_user("vp-anna", password=PASSWORD, first_name="Anna")
    agent_role_assign(user=user, workspace=workspace, role=Role.VP, source="test")
    return user


@pytest.fixture
def throttle_clock(monkeypatch):
    """django-otp's throttling reads ``timezone.now()``: frozen, and moved by hand."""
    state = SimpleNamespace(now=datetime(2027, 1, 15, 12, 0, tzinfo=UTC))
    monkeypatch.setattr(otp_models, "timezone", SimpleNamespace(now=lambda: state.now))
    return state


def password_step(client: Client, username: str, next_url: str = "/approvals/"):
    return client.post(
        f"/accounts/login/?next={next_url}",
        {"username": username, "password": PASSWORD, "next": next_url},
    )


def signed_in(client: Client) -> bool:
    return "_auth_user_id" in client.session


def verified(client: Client) -> bool:
    return DEVICE_ID_SESSION_KEY in client.session


def enrolled_vp(vp, client: Client, clock: TotpClock) -> tuple[TOTPDevice, list[str]]:
    """Enrol ``vp`` through the pages; returns the device and the recovery codes shown."""
    password_step(client, vp.username)
    client.get("/accounts/two-factor/")
    page = client.post("/accounts/two-factor/", {"code": clock.code(pending_device(client))})
    device = TOTPDevice.objects.get(user=vp)
    codes = re.findall(r"<li><code>([a-z2-7]{8})</code></li>", page.content.decode())
    client.post("/accounts/logout/")
    return device, codes


# --- who needs it ------------------------------------------------------------------------


def test_a_user_who_is_neither_approver_nor_staff_signs_in_with_the_password_alone(db):
    User.objects.create_user("reader", password=PASSWORD)
    client = Client()

    response = password_step(client, "reader", "/dashboard/")

    assert response.status_code == 302 and response["Location"] == "/dashboard/"
    assert signed_in(client) and not verified(client)
    assert not TOTPDevice.objects.exists()


def test_an_approvers_password_alone_signs_nobody_in(vp):
    client = Client()

    response = password_step(client, vp.username)

    assert response.status_code == 302
    assert response["Location"] == "/accounts/two-factor/?next=%2Fapprovals%2F"
    assert not signed_in(client)
    # nothing of an approver's opens yet
    assert client.get("/approvals/")["Location"].startswith("/accounts/login/")
    assert client.get("/dashboard/").status_code == 302


def test_a_wrong_password_never_reaches_the_second_factor(vp):
    client = Client()
    response = client.post("/accounts/login/", {"username": vp.username, "password": "nope"})
    assert response.status_code == 200 and not signed_in(client)
    assert client.get("/accounts/two-factor/")["Location"].startswith("/accounts/login/")


def test_staff_need_the_second_factor_too(db):
    User.objects.create_user("ops", password=PASSWORD, is_staff=True)
    client = Client()
    assert password_step(client, "ops", "/admin/")["Location"].startswith("/accounts/two-factor/")
    assert not signed_in(client)


# --- enrolment ---------------------------------------------------------------------------


def test_enrolment_end_to_end(vp, clock):
    client = Client()
    password_step(client, vp.username)

    # the step shows a QR code (inline SVG) and the key in text, and signs nobody in
    page = client.get("/accounts/two-factor/?next=/approvals/")
    html = page.content.decode()
    # nothing is stored before the code is confirmed: the key lives in this session only
    assert page.status_code == 200 and not TOTPDevice.objects.filter(user=vp).exists()
    assert "<svg" in html and 'data-testid="totp-qr"' in html
    pending = pending_device(client)
    secret = b32encode(pending.bin_key).decode()
    shown = re.search(r'data-testid="totp-secret">([A-Z2-7 ]+)<', html).group(1)
    assert shown.replace(" ", "") == secret
    # reloading shows the same key
    again = client.get("/accounts/two-factor/").content.decode()
    assert re.search(r'data-testid="totp-secret">([A-Z2-7 ]+)<', again).group(1) == shown

    # a wrong code is refused, nothing granted
    refused = client.post("/accounts/two-factor/", {"code": "000000"})
    assert refused.status_code == 400
    assert b"That code is not valid" in refused.content
    assert not signed_in(client) and not TOTPDevice.objects.filter(user=vp).exists()

    # the app's code confirms it: signed in, verified, recovery codes shown once
    response = client.post("/accounts/two-factor/", {"code": clock.code(pending)})
    assert response.status_code == 200
    codes = re.findall(r"<li><code>([a-z2-7]{8})</code></li>", response.content.decode())
    assert len(codes) == RECOVERY_CODE_COUNT == len(set(codes))
    assert sorted(StaticToken.objects.filter(device__user=vp).values_list("token", flat=True)) == (
        sorted(codes)
    )
    device = TOTPDevice.objects.get(user=vp)
    assert device.confirmed and device.key == pending.key
    assert signed_in(client) and verified(client)
    assert client.session[DEVICE_ID_SESSION_KEY] == device.persistent_id
    assert b'href="/approvals/"' in response.content
    assert client.get("/approvals/").status_code == 200


def test_enrolment_is_only_for_a_user_with_no_second_factor(vp, clock):
    device, _codes = enrolled_vp(vp, Client(), clock)

    # the password alone does not add another authenticator
    with pytest.raises(Conflict):
        totp_enrolment_start(user=vp)
    client = Client()
    password_step(client, vp.username)
    page = client.get("/accounts/two-factor/")
    assert b"<svg" not in page.content and b"Enter the 6-digit code" in page.content
    assert TOTPDevice.objects.filter(user=vp).count() == 1


def test_a_session_fixed_before_the_password_is_not_the_one_that_signs_in(vp):
    client = Client()
    client.get("/accounts/login/")
    client.session.save()
    before = client.cookies["sessionid"].value if "sessionid" in client.cookies else None
    password_step(client, vp.username)
    assert client.cookies["sessionid"].value != before


# --- entering a code ---------------------------------------------------------------------


def test_sign_in_with_the_authenticator_code(vp, clock):
    device, _codes = enrolled_vp(vp, Client(), clock)
    clock.advance()
    client = Client()
    password_step(client, vp.username)

    response = client.post("/accounts/two-factor/", {"code": clock.code(device)})

    assert response.status_code == 302 and response["Location"] == "/approvals/"
    assert signed_in(client) and verified(client)


def test_a_code_is_accepted_once(vp, clock):
    device, _codes = enrolled_vp(vp, Client(), clock)
    # the very code used to enrol (same 30 s step) is spent: django-otp's last_t
    client = Client()
    password_step(client, vp.username)
    reused = client.post("/accounts/two-factor/", {"code": clock.code(device)})
    assert reused.status_code == 400 and not signed_in(client)
    assert b"already used" in reused.content

    clock.advance()
    TOTPDevice.objects.filter(pk=device.pk).update(throttling_failure_count=0)
    assert client.post("/accounts/two-factor/", {"code": clock.code(device)}).status_code == 302


def test_a_recovery_code_signs_in_once(vp, clock):
    _device, codes = enrolled_vp(vp, Client(), clock)
    client = Client()
    password_step(client, vp.username)

    response = client.post(
        "/accounts/two-factor/", {"code": codes[0].upper()[:4] + " " + codes[0][4:]}
    )

    assert response.status_code == 302 and verified(client)
    assert StaticToken.objects.filter(device__user=vp).count() == RECOVERY_CODE_COUNT - 1

    # the same code again is refused
    client.post("/accounts/logout/")
    again = Client()
    password_step(again, vp.username)
    refused = again.post("/accounts/two-factor/", {"code": codes[0]})
    assert refused.status_code == 400 and not signed_in(again)


def test_too_many_wrong_codes_lock_the_device_for_a_while(vp, clock, throttle_clock):
    device, _codes = enrolled_vp(vp, Client(), clock)
    clock.advance()
    client = Client()
    password_step(client, vp.username)
    for _ in range(4):
        client.post("/accounts/two-factor/", {"code": "123456"})
        throttle_clock.now += timedelta(seconds=30)  # past each lock: every attempt counts
    client.post("/accounts/two-factor/", {"code": "123456"})  # 5th failure: locked for 16 s

    # even the right code is refused while locked, with how long to wait
    locked = client.post("/accounts/two-factor/", {"code": clock.code(device)})
    assert locked.status_code == 429
    assert b"Too many wrong codes. Wait 16 seconds, then try again." in locked.content
    assert not signed_in(client)
    device.refresh_from_db()
    assert device.throttling_failure_count == 5

    # after the lock, the right code works and the count starts again
    throttle_clock.now += timedelta(seconds=17)
    assert client.post("/accounts/two-factor/", {"code": clock.code(device)}).status_code == 302
    device.refresh_from_db()
    assert device.throttling_failure_count == 0


def test_the_password_step_expires(vp, clock, monkeypatch):
    device, _codes = enrolled_vp(vp, Client(), clock)
    clock.advance()
    client = Client()
    password_step(client, vp.username)
    session = client.session
    session["two_factor_pending"]["at"] -= 11 * 60
    session.save()

    response = client.post("/accounts/two-factor/", {"code": clock.code(device)})

    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")
    assert not signed_in(client)


def test_a_changed_password_ends_the_password_step(vp, clock):
    device, _codes = enrolled_vp(vp, Client(), clock)
    clock.advance()
    client = Client()
    password_step(client, vp.username)
    vp.set_password("another-long-passphrase-7")
    vp.save()

    response = client.post("/accounts/two-factor/", {"code": clock.code(device)})

    assert response["Location"].startswith("/accounts/login/") and not signed_in(client)


def test_next_never_leaves_the_site(vp, clock):
    device, _codes = enrolled_vp(vp, Client(), clock)
    clock.advance()
    client = Client()
    password_step(client, vp.username, "https://evil.example/")
    response = client.post("/accounts/two-factor/", {"code": clock.code(device)})
    assert response["Location"] == "/approvals/"


# --- sessions signed in without it; recovery codes; reset ----------------------------------


def test_a_signed_in_approver_without_the_second_factor_is_sent_to_it(vp, clock):
    device, _codes = enrolled_vp(vp, Client(), clock)
    clock.advance()
    client = Client()
    client.force_login(vp)  # e.g. signed in before second factors were required

    response = client.get("/approvals/?decided=mine")

    assert response["Location"] == "/accounts/two-factor/?next=%2Fapprovals%2F%3Fdecided%3Dmine"
    done = client.post(response["Location"], {"code": clock.code(device)})
    assert done["Location"] == "/approvals/?decided=mine"
    assert client.get("/approvals/").status_code == 200


def test_recovery_codes_are_replaced_after_verifying(vp, clock):
    _device, old = enrolled_vp(vp, Client(), clock)
    client = Client()
    assert client.get("/accounts/two-factor/recovery-codes/")["Location"].startswith(
        "/accounts/login/"
    )
    client.force_login(vp)
    assert client.get("/accounts/two-factor/recovery-codes/")["Location"].startswith(
        "/accounts/two-factor/"
    )
    verified_login(client, vp)
    assert (
        b"You have 10 unused recovery codes."
        in client.get("/accounts/two-factor/recovery-codes/").content
    )

    # a current code is needed: none, or a wrong one, changes nothing
    assert client.post("/accounts/two-factor/recovery-codes/").status_code == 400
    refused = client.post("/accounts/two-factor/recovery-codes/", {"code": "zzzzzzzz"})
    assert refused.status_code == 400 and b"That code is not valid" in refused.content
    assert StaticToken.objects.filter(device__user=vp).count() == RECOVERY_CODE_COUNT
    StaticDevice.objects.filter(user=vp).update(throttling_failure_count=0)

    page = client.post("/accounts/two-factor/recovery-codes/", {"code": old[0]})

    new = re.findall(r"<li><code>([a-z2-7]{8})</code></li>", page.content.decode())
    assert len(new) == RECOVERY_CODE_COUNT and not set(new) & set(old)
    tokens = set(StaticToken.objects.filter(device__user=vp).values_list("token", flat=True))
    assert tokens == set(new)
    assert StaticDevice.objects.filter(user=vp).count() == 1


def test_a_reset_user_enrols_again_at_the_next_sign_in(vp, clock):
    enrolled_vp(vp, Client(), clock)

    assert second_factor_reset(user=vp) == 2

    client = Client()
    password_step(client, vp.username)
    assert b"Set up your second factor" in client.get("/accounts/two-factor/").content
    assert not StaticToken.objects.filter(device__user=vp).exists()


def test_a_lost_phone_is_replaced_after_signing_in_with_a_recovery_code(vp, clock):
    old, codes = enrolled_vp(vp, Client(), clock)
    client = Client()
    # the password alone does not reach the page
    password_step(client, vp.username)
    assert client.get("/accounts/two-factor/authenticator/")["Location"].startswith(
        "/accounts/login/"
    )
    client.post("/accounts/two-factor/", {"code": codes[0]})
    assert verified(client)

    page = client.get("/accounts/two-factor/authenticator/")
    assert b"Set up a new authenticator app" in page.content and b"<svg" in page.content
    new = pending_device(client)
    assert list(TOTPDevice.objects.filter(user=vp)) == [old]  # nothing stored yet
    clock.advance()
    wrong_new = client.post(
        "/accounts/two-factor/authenticator/", {"code": "000000", "current_code": codes[1]}
    )
    assert wrong_new.status_code == 400
    # the new app's code alone is not enough: a current code of the old factor too
    no_current = client.post("/accounts/two-factor/authenticator/", {"code": clock.code(new)})
    assert no_current.status_code == 400
    assert list(TOTPDevice.objects.filter(user=vp)) == [old]
    done = client.post(
        "/accounts/two-factor/authenticator/",
        {"code": clock.code(new), "current_code": codes[1]},
    )

    assert done["Location"] == "/accounts/two-factor/recovery-codes/"
    [stored] = TOTPDevice.objects.filter(user=vp)
    assert stored.confirmed and stored.key == new.key
    assert not TOTPDevice.objects.filter(pk=old.pk).exists()
    # the recovery codes are kept (less the two used), and the session stays verified
    assert StaticToken.objects.filter(device__user=vp).count() == RECOVERY_CODE_COUNT - 2
    assert client.get("/approvals/").status_code == 200
