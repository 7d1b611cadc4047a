"""Second factor, security review r3 (issue 17): the enrolment key lives only in the
session that asked for it, the user is emailed on every change of their second factor,
recovery codes never look like authenticator codes, and a password sign-in clears any
half-done second-factor step left in the session."""

from __future__ import annotations

import re
from base64 import b32decode

import pytest
from django.contrib.auth.models import User
from django.core import mail
from django.test import Client
from django_otp.oath import TOTP
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from billing_app.catalog import Role
from billing_app.roles import agent_role_assign
from billing_app.services import two_factor as service
from billing_app.services.two_factor import (
    CodeRefused,
    recovery_codes_regenerate,
    second_factor_verify,
    totp_enrolment_start,
)
from billing_app.web.two_factor import ENROL_KEY, PENDING_KEY

from .two_factor_support import TotpClock, pending_device

PASSWORD = "a-long-passphrase-42"


@pytest.fixture
def clock(monkeypatch):
    return TotpClock(monkeypatch)


@pytest.fixture
def vp(workspace):
    user = User.objects.create_user(
        "vp-anna", email="anna@acme.example", password=PASSWORD, first_name="Anna"
    )
    agent_role_assign(user=user, workspace=workspace, role=Role.VP, source="test")
    return user


def password_step(client: Client, username: str = "vp-anna"):
    return client.post(
        "/accounts/login/?next=/approvals/",
        {"username": username, "password": PASSWORD, "next": "/approvals/"},
    )


def key_shown(response) -> str:
    found = re.search(r'data-testid="totp-secret">([A-Z2-7 ]+)<', response.content.decode())
    assert found, "no key on the page"
    return found.group(1).replace(" ", "")


def enrol(client: Client, clock: TotpClock) -> list[str]:
    password_step(client)
    client.get("/accounts/two-factor/")
    page = client.post("/accounts/two-factor/", {"code": clock.code(pending_device(client))})
    return re.findall(r"<li><code>([a-z2-7]{8})</code></li>", page.content.decode())


# --- 1. the enrolment key cannot be read ahead of the user -----------------------------------


def test_a_password_only_attacker_cannot_preplant_the_enrolment_key(vp, clock):
    attacker, victim = Client(), Client()
    password_step(attacker)
    attacker_key = key_shown(attacker.get("/accounts/two-factor/?next=/approvals/"))
    assert not TOTPDevice.objects.filter(user=vp).exists()  # nothing stored for anyone

    password_step(victim)
    victim_key = key_shown(victim.get("/accounts/two-factor/?next=/approvals/"))
    assert victim_key != attacker_key  # each session its own key
    victim.post(
        "/accounts/two-factor/?next=/approvals/", {"code": clock.code(pending_device(victim))}
    )
    [device] = TOTPDevice.objects.filter(user=vp)
    assert device.confirmed and b32decode(attacker_key) != device.bin_key

    # later: the key read earlier gives codes that do not pass the second factor
    clock.advance(2)
    attacker2 = Client()
    password_step(attacker2)
    totp = TOTP(b32decode(attacker_key), 30, 0, 6, 0)
    totp.time = clock.now
    refused = attacker2.post(
        "/accounts/two-factor/?next=/approvals/", {"code": f"{totp.token():06d}"}
    )
    assert refused.status_code == 400
    assert attacker2.get("/approvals/").status_code == 302


def test_the_attackers_own_confirmed_key_is_the_one_enrolled_and_the_user_is_told(vp, clock):
    """First setup trusts whoever has the password first; the email makes it visible."""
    enrol(Client(), clock)

    [message] = mail.outbox
    assert message.to == ["anna@acme.example"]
    assert "second factor was set up" in message.subject
    assert "someone else knows your password" in message.body


def test_a_key_from_another_session_cannot_be_confirmed(vp, clock):
    first, second = Client(), Client()
    password_step(first)
    first.get("/accounts/two-factor/")
    code = clock.code(pending_device(first))
    password_step(second)  # started no setup: no key in this session

    refused = second.post("/accounts/two-factor/", {"code": code})

    assert refused.status_code == 400 and b"Start again" in refused.content
    assert not TOTPDevice.objects.filter(user=vp).exists()


def test_starting_a_setup_deletes_the_users_unconfirmed_devices(vp):
    TOTPDevice.objects.create(user=vp, name="left over", confirmed=False)
    key = totp_enrolment_start(user=vp)
    assert not TOTPDevice.objects.filter(user=vp).exists()
    assert len(key) == 40


def test_confirming_never_stores_a_device_before_the_code_matches(vp, clock):
    client = Client()
    password_step(client)
    client.get("/accounts/two-factor/")
    for _ in range(3):
        client.post("/accounts/two-factor/", {"code": "123456"})
    assert not TOTPDevice.objects.filter(user=vp).exists()


# --- emails on every change --------------------------------------------------------------------


def test_replacing_the_authenticator_and_new_recovery_codes_email_the_user(vp, clock):
    client = Client()
    codes = enrol(client, clock)
    mail.outbox.clear()
    # signed in and verified (enrolment signs in): replace the authenticator
    client.get("/accounts/two-factor/authenticator/")
    clock.advance()
    client.post(
        "/accounts/two-factor/authenticator/",
        {"code": clock.code(pending_device(client)), "current_code": codes[0]},
    )
    client.post("/accounts/two-factor/recovery-codes/", {"code": codes[1]})

    subjects = [m.subject for m in mail.outbox]
    assert subjects == [
        "Billing Desk: your authenticator app was replaced",
        "Billing Desk: new recovery codes",
    ]
    assert all(m.to == ["anna@acme.example"] for m in mail.outbox)


def test_no_email_address_no_email_and_the_change_stands(vp, clock):
    User.objects.filter(pk=vp.pk).update(email="")
    assert len(enrol(Client(), clock)) == 10
    assert mail.outbox == []


def test_a_failing_mail_server_does_not_undo_the_change(vp, clock, monkeypatch):
    def broken(*args, **kwargs):
        raise OSError("relay down")

    monkeypatch.setattr(service, "send_mail", broken)
    assert len(enrol(Client(), clock)) == 10
    assert TOTPDevice.objects.get(user=vp).confirmed


def test_new_recovery_codes_need_a_current_code(vp, clock):
    codes = enrol(Client(), clock)
    with pytest.raises(CodeRefused):
        recovery_codes_regenerate(user=vp, current_code="")
    assert sorted(StaticToken.objects.filter(device__user=vp).values_list("token", flat=True)) == (
        sorted(codes)
    )


# --- recovery codes always usable ---------------------------------------------------------------


def test_recovery_codes_always_hold_a_letter(vp, monkeypatch):
    draws = iter(["23456723", "77777777", "abc23456"] + ["k2k2k2k2"] * 20)
    monkeypatch.setattr(StaticToken, "random_token", staticmethod(lambda: next(draws)))
    with service.transaction.atomic():
        codes = service._recovery_codes_replace(vp)
    assert codes[0] == "abc23456"
    assert all(not c.isdigit() for c in codes)


def test_an_all_digit_recovery_code_stored_earlier_still_signs_in(vp):
    TOTPDevice.objects.create(user=vp, name="Authenticator app", confirmed=True)
    device = StaticDevice.objects.create(user=vp, name="Recovery codes", confirmed=True)
    device.token_set.create(token="23456723")

    assert second_factor_verify(user=vp, code="2345 6723") == device
    assert not device.token_set.exists()


# --- a password sign-in clears a half-done second-factor step -----------------------------------


def test_a_password_sign_in_removes_any_pending_second_factor_entry(vp, db):
    plain = User.objects.create_user("clerk", password=PASSWORD)
    client = Client()
    password_step(client)
    client.get("/accounts/two-factor/")
    assert PENDING_KEY in client.session and ENROL_KEY in client.session

    client.post("/accounts/login/", {"username": plain.username, "password": PASSWORD})

    assert client.session["_auth_user_id"] == str(plain.pk)
    assert PENDING_KEY not in client.session and ENROL_KEY not in client.session
    # and the VP's step is not reachable from this session any more
    assert client.get("/accounts/two-factor/").status_code == 302
