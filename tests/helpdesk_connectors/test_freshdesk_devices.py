"""Freshdesk agents proven once per device (issue 17): an emailed code, then a device credential.

The app frame calls three templates through Freshworks' request proxy, each with the shared
secret in ``Authorization: BillingDeskSecret …``: ``startEnrollment`` (a code goes to the
agent's email as Freshdesk's API gives it), ``verifyEnrollment`` (the code → a device
credential) and ``createSession`` (the credential → an app session). Freshdesk's API is
answered by ``responses`` with the real shape (``contact.email``); mail is Django's locmem
outbox.
"""

from __future__ import annotations

import json
import logging
import re
from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.core import mail
from django.db import connection
from django.utils import timezone

from billing_app.models import Workspace
from billing_app.services.workspaces import installation_add
from helpdesk_connectors.freshdesk import devices
from helpdesk_connectors.freshdesk.connector import SECRET_SCHEME
from helpdesk_connectors.models import DeviceCredential, DeviceEnrollment
from tests.helpdesk_support import (
    FRESHDESK_DOMAIN,
    FRESHDESK_SECRET,
)

from .conftest import (
    FRESHDESK_BASE,
    freshdesk_agent,
)

START = "/freshdesk/enroll/start/"
VERIFY = "/freshdesk/enroll/verify/"
SESSION = "/freshdesk/session/"
AGENT = 43000123
OTHER_AGENT = 43000456


def _post(client, path, body, secret=FRESHDESK_SECRET, **headers):
    if secret is not None:
        headers["HTTP_AUTHORIZATION"] = f"{SECRET_SCHEME} {secret}"
    return client.post(path, data=json.dumps(body), content_type="application/json", **headers)


def _start(client, agent_id=AGENT, domain=FRESHDESK_DOMAIN, **kw):
    return _post(client, START, {"agent_id": agent_id, "domain": domain}, **kw)


def _verify(client, enrollment, code, agent_id=AGENT, domain=FRESHDESK_DOMAIN, **kw):
    body = {"agent_id": agent_id, "domain": domain, "enrollment": enrollment, "code": code}
    return _post(client, VERIFY, body, **kw)


def _session(client, credential, agent_id=AGENT, domain=FRESHDESK_DOMAIN, **kw):
    body = {"agent_id": agent_id, "domain": domain, "ticket_id": 812}
    if credential is not None:
        body["device_credential"] = credential
    return _post(client, SESSION, body, **kw)


def _code(message) -> str:
    return re.search(r"\b(\d{6})\b", message.body).group(1)


def _error(response) -> str:
    return response.json()["error"]["code"]


def _no_session_user():
    return not User.objects.filter(username__startswith="freshdesk:").exists()


@pytest.fixture
def agents(http, freshdesk_agent_api):
    """Freshdesk's answers for two agents of the account (maria and tom)."""
    freshdesk_agent_api(AGENT)
    freshdesk_agent_api(OTHER_AGENT, contact={"email": "tom@acme.example", "name": "Tom Ng"})


@pytest.fixture
def enroll(client, freshdesk_installation, agents):
    """The whole enrollment of one agent: code by email, code typed, credential returned."""

    def run(agent_id=AGENT):
        started = _start(client, agent_id)
        assert started.status_code == 200, started.content
        verified = _verify(client, started.json()["enrollment"], _code(mail.outbox[-1]), agent_id)
        assert verified.status_code == 200, verified.content
        return verified.json()["device_credential"]

    return run


# --- end to end ------------------------------------------------------------------------------------


def test_enrollment_end_to_end_on_the_freshdesk_entry(client, http, freshdesk_installation, agents):
    # given an agent whose browser is not enrolled: the session entry asks for enrollment
    refused = _session(client, None)
    assert refused.status_code == 401
    assert _error(refused) == "device_enrollment_required"
    assert _no_session_user()

    # when the frame asks for a code
    started = _start(client)

    # then it goes to the agent's own address as Freshdesk's API gives it, and the frame only
    # learns which inbox to look in
    assert started.status_code == 200, started.content
    body = started.json()
    assert set(body) == {"enrollment", "email", "expires_in"}
    assert body["email"] == "m•••@acme.example"
    assert body["expires_in"] == 600
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == ["maria@acme.example"]
    assert "Billing Desk" in mail.outbox[0].subject
    code = _code(mail.outbox[0])
    assert code not in json.dumps(body)
    agent_read = next(c for c in http.calls if c.request.url.endswith(f"/api/v2/agents/{AGENT}"))
    assert agent_read.request.headers["Authorization"].startswith("Basic ")  # the server's key

    # when the agent types the code
    verified = _post(
        client,
        VERIFY,
        {
            "agent_id": AGENT,
            "domain": FRESHDESK_DOMAIN,
            "enrollment": body["enrollment"],
            "code": code,
            "device_label": "Mozilla/5.0 (Macintosh) Chrome/131",
        },
    )

    # then a device credential is issued; only its digest is stored
    assert verified.status_code == 200, verified.content
    secret = verified.json()["device_credential"]
    assert len(secret) >= 43  # 32 random bytes, URL-safe base64
    credential = DeviceCredential.objects.get()
    assert credential.digest == devices.digest(secret) and secret not in credential.digest
    assert (credential.agent_id, credential.installation) == (str(AGENT), freshdesk_installation)
    assert credential.device_label == "Mozilla/5.0 (Macintosh) Chrome/131"
    enrollment = DeviceEnrollment.objects.get()
    assert (
        code not in enrollment.code_digest and body["enrollment"] not in enrollment.attempt_digest
    )

    # and with it (and the shared secret) the session entry answers, recording the use
    session = _session(client, secret)
    assert session.status_code == 200, session.content
    assert set(session.json()) == {"token", "expires_at", "expires_in"}
    credential.refresh_from_db()
    assert credential.last_used_at is not None
    me = client.get("/api/v1/me/", HTTP_AUTHORIZATION=f"Bearer {session.json()['token']}")
    assert me.status_code == 200


def test_the_code_email_follows_the_agents_freshdesk_language(client, freshdesk_installation, http):
    http.get(
        f"{FRESHDESK_BASE}/api/v2/agents/{AGENT}",
        json=freshdesk_agent(AGENT, contact={"language": "de-DE"}),
    )
    assert _start(client).status_code == 200
    message = mail.outbox[0]
    # the code is in the body only: subjects show in notifications and mailbox lists
    assert re.search(r"\d{6}", message.body)
    assert not re.search(r"\d", message.subject)
    assert "Billing Desk" in message.body


def test_the_frame_cannot_choose_the_address(client, freshdesk_installation, agents):
    response = _post(
        client,
        START,
        {"agent_id": AGENT, "domain": FRESHDESK_DOMAIN, "email": "attacker@evil.example"},
    )
    assert response.status_code == 200
    assert [m.to for m in mail.outbox] == [["maria@acme.example"]]


# --- impersonation ---------------------------------------------------------------------------------


def test_agent_As_credential_with_agent_Bs_id_gets_no_session(client, enroll):
    secret_a = enroll(AGENT)

    response = _session(client, secret_a, agent_id=OTHER_AGENT)

    assert response.status_code == 401
    assert _error(response) == "device_credential_mismatch"
    assert _no_session_user()


def test_agent_As_code_cannot_enroll_agent_B(client, freshdesk_installation, agents):
    started = _start(client, AGENT)
    code = _code(mail.outbox[0])

    response = _verify(client, started.json()["enrollment"], code, agent_id=OTHER_AGENT)

    assert response.status_code == 401
    assert _error(response) == "enrollment_unknown"
    assert not DeviceCredential.objects.exists()
    # and agent A's attempt still works for A
    assert _verify(client, started.json()["enrollment"], code).status_code == 200


def test_another_installations_credential_is_refused(client, enroll, workspace, http):
    secret = enroll(AGENT)
    other = installation_add(
        workspace=Workspace.objects.create(name="Globex", slug="globex"),
        connector="freshdesk",
        domain="globex.freshdesk.com",
        shared_secret="globex-shared-secret-1234567",
        api_email="admin@globex.example",
        api_token="globexKey",
    )

    response = _session(client, secret, domain=other.domain, secret="globex-shared-secret-1234567")

    assert response.status_code == 401
    assert _error(response) == "device_credential_mismatch"
    assert not User.objects.filter(username__startswith="freshdesk:globex").exists()


def test_a_stolen_shared_secret_alone_gets_nothing(client, freshdesk_installation, agents):
    for credential in [None, "", "guessed-credential", "x" * 5000, 12345]:
        response = _session(client, credential)
        assert response.status_code in (401, 413)
        assert _error(response) in devices.CREDENTIAL_CODES | {"body_too_large"}
    assert _no_session_user()


def test_enrollment_endpoints_need_the_shared_secret(client, http, freshdesk_installation, agents):
    assert _error(_start(client, secret="wrong")) == "bad_secret"
    assert _error(_verify(client, "x", "123456", secret=None)) == "bad_secret"
    assert not mail.outbox
    assert not http.calls


# --- revocation and expiry ---------------------------------------------------------------------------


def test_a_revoked_credential_is_refused(client, enroll):
    secret = enroll()
    devices.credentials_revoke(DeviceCredential.objects.all())

    response = _session(client, secret)

    assert response.status_code == 401
    assert _error(response) == "device_credential_revoked"


def test_the_credential_expires_after_the_workspaces_days(client, enroll, workspace):
    secret = enroll()
    assert devices.credential_days(DeviceCredential.objects.get().installation) == 90
    DeviceCredential.objects.update(created_at=timezone.now() - timedelta(days=89))
    assert _session(client, secret).status_code == 200

    Workspace.objects.filter(pk=workspace.pk).update(device_credential_days=30)
    response = _session(client, secret)

    assert response.status_code == 401
    assert _error(response) == "device_credential_expired"


def test_without_a_workspace_the_lifetime_is_90_days(freshdesk_installation):
    from billing_app.models import WorkspaceInstallation

    WorkspaceInstallation.objects.filter(installation=freshdesk_installation).delete()
    assert devices.credential_days(freshdesk_installation) == 90


def _admin_action(model, action, queryset, rf, admin_user):
    """Run a Django admin action as the superuser would (the admin's sign-in, second factor
    included, is tested with the admin site)."""
    from django.contrib import admin
    from django.contrib.messages.storage.fallback import FallbackStorage

    model_admin = admin.site._registry[model]
    request = rf.post("/admin/")
    request.user = admin_user
    request.session = {}
    request._messages = FallbackStorage(request)
    getattr(model_admin, action)(request, queryset)
    return model_admin, request


def test_admin_revokes_per_agent_and_per_installation(client, enroll, rf, admin_user):
    first, second, other = enroll(AGENT), enroll(AGENT), enroll(OTHER_AGENT)
    one = DeviceCredential.objects.filter(digest=devices.digest(first))

    _admin_action(DeviceCredential, "revoke_all_of_agent", one, rf, admin_user)

    assert _error(_session(client, first)) == "device_credential_revoked"
    assert _error(_session(client, second)) == "device_credential_revoked"
    assert _session(client, other, agent_id=OTHER_AGENT).status_code == 200

    _admin_action(DeviceCredential, "revoke_all_of_installation", one, rf, admin_user)
    assert _error(_session(client, other, agent_id=OTHER_AGENT)) == "device_credential_revoked"


def test_admin_revokes_one_credential(client, enroll, rf, admin_user):
    first, second = enroll(AGENT), enroll(AGENT)
    one = DeviceCredential.objects.filter(digest=devices.digest(first))
    model_admin, _request = _admin_action(DeviceCredential, "revoke", one, rf, admin_user)
    assert _error(_session(client, first)) == "device_credential_revoked"
    assert _session(client, second).status_code == 200
    # the admin never shows the digest, and cannot add a credential by hand
    assert "digest" in model_admin.exclude
    assert model_admin.state(one.get()) == "revoked"


def test_admin_installation_action_revokes_every_credential(client, enroll, rf, admin_user):
    from helpdesk_connectors.models import Installation

    secret = enroll()
    installations = Installation.objects.filter(device_credentials__isnull=False).distinct()
    _admin_action(Installation, "revoke_device_credentials", installations, rf, admin_user)
    assert _error(_session(client, secret)) == "device_credential_revoked"


# --- codes: wrong, expired, reused --------------------------------------------------------------------


def test_wrong_code_is_refused_and_issues_nothing(client, freshdesk_installation, agents):
    started = _start(client).json()
    code = _code(mail.outbox[0])
    wrong = f"{(int(code) + 1) % 10**6:06d}"

    response = _verify(client, started["enrollment"], wrong)

    assert response.status_code == 401
    assert _error(response) == "code_wrong"
    assert response.json()["error"]["details"] == {"attempts_left": 4}
    assert not DeviceCredential.objects.exists()


def test_expired_code_is_refused(client, freshdesk_installation, agents):
    started = _start(client).json()
    DeviceEnrollment.objects.update(expires_at=timezone.now() - timedelta(seconds=1))

    response = _verify(client, started["enrollment"], _code(mail.outbox[0]))

    assert _error(response) == "code_expired"
    assert not DeviceCredential.objects.exists()


def test_reused_code_is_refused(client, freshdesk_installation, agents):
    started = _start(client).json()
    code = _code(mail.outbox[0])
    assert _verify(client, started["enrollment"], code).status_code == 200

    again = _verify(client, started["enrollment"], code)

    assert again.status_code == 401
    assert _error(again) == "code_used"
    assert DeviceCredential.objects.count() == 1


def test_unknown_attempt_is_refused(client, freshdesk_installation, agents):
    response = _verify(client, "made-up-attempt", "123456")
    assert _error(response) == "enrollment_unknown"
    assert _error(_verify(client, "", "123456")) == "enrollment_unknown"


# --- rate limits and the lock ---------------------------------------------------------------------------


def test_codes_sent_per_agent_per_hour_are_limited(client, freshdesk_installation, agents):
    for _ in range(devices.MAX_SENDS_PER_HOUR):
        assert _start(client).status_code == 200

    refused = _start(client)

    assert refused.status_code == 429
    assert _error(refused) == "enrollment_rate_limited"
    assert refused["Retry-After"] == "3600"
    assert len(mail.outbox) == devices.MAX_SENDS_PER_HOUR
    # another agent is not affected
    assert _start(client, OTHER_AGENT).status_code == 200
    # an hour later the agent may ask again
    DeviceEnrollment.objects.update(created_at=timezone.now() - timedelta(hours=1, seconds=1))
    assert _start(client).status_code == 200


def test_too_many_wrong_codes_lock_the_agent(client, freshdesk_installation, agents, caplog):
    started = _start(client).json()
    code = _code(mail.outbox[0])
    wrong = f"{(int(code) + 1) % 10**6:06d}"

    with caplog.at_level(logging.WARNING, logger="helpdesk_connectors.freshdesk.devices"):
        answers = [_verify(client, started["enrollment"], wrong) for _ in range(5)]

    assert [_error(a) for a in answers] == ["code_wrong"] * 4 + ["enrollment_locked"]
    assert answers[-1].status_code == 429
    assert int(answers[-1]["Retry-After"]) > 0
    assert any("locked" in r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)
    # locked: even the right code is refused, and no new code is sent
    right = _verify(client, started["enrollment"], code)
    assert (right.status_code, _error(right)) == (429, "enrollment_locked")
    assert _error(_start(client)) == "enrollment_locked"
    assert len(mail.outbox) == 1
    assert not DeviceCredential.objects.exists()
    # after the lock period a new code can be asked for
    DeviceEnrollment.objects.update(locked_until=timezone.now() - timedelta(seconds=1))
    assert _start(client).status_code == 200


def test_a_code_cannot_be_guessed_past_its_tries_even_without_the_lock(
    client, freshdesk_installation, agents
):
    # the try is reserved before the comparison: a code whose tries are spent is locked
    started = _start(client).json()
    DeviceEnrollment.objects.update(attempts=devices.MAX_ATTEMPTS)
    response = _verify(client, started["enrollment"], _code(mail.outbox[0]))
    assert _error(response) == "enrollment_locked"
    assert not DeviceCredential.objects.exists()


def test_email_failure_answers_503_and_counts_nothing(
    client, freshdesk_installation, agents, settings, monkeypatch
):
    def broken(*args, **kwargs):
        raise OSError("smtp down")

    monkeypatch.setattr(devices, "send_mail", broken)
    for _ in range(devices.MAX_SENDS_PER_HOUR + 1):
        response = _start(client)
        assert response.status_code == 503
        assert _error(response) == "email_unavailable"
    # the failed attempts are kept, marked, and count nothing against the agent
    assert DeviceEnrollment.objects.count() == devices.MAX_SENDS_PER_HOUR + 1
    assert not DeviceEnrollment.objects.filter(send_failed_at__isnull=True).exists()
    monkeypatch.undo()
    assert _start(client).status_code == 200


def test_inactive_or_unknown_agents_get_no_code(client, http, freshdesk_installation):
    http.get(
        f"{FRESHDESK_BASE}/api/v2/agents/{AGENT}",
        json=freshdesk_agent(AGENT, contact={"active": False}),
    )
    http.get(f"{FRESHDESK_BASE}/api/v2/agents/43000999", json={"code": "access_denied"}, status=404)
    assert _error(_start(client)) == "agent_inactive"
    assert _error(_start(client, 43000999)) == "unknown_agent"
    assert not mail.outbox


def test_old_enrollments_are_pruned_when_a_code_is_sent(client, freshdesk_installation, agents):
    assert _start(client).status_code == 200
    old = timezone.now() - devices.KEEP_ENROLLMENTS - timedelta(seconds=1)
    DeviceEnrollment.objects.update(created_at=old)
    assert _start(client, OTHER_AGENT).status_code == 200
    assert list(DeviceEnrollment.objects.values_list("agent_id", flat=True)) == [str(OTHER_AGENT)]


def test_mask_email():
    assert devices.mask_email("maria@acme.example") == "m•••@acme.example"
    assert devices.mask_email("a@acme.com") == "a•••@acme.com"
    assert devices.mask_email("broken") == "•••"


# --- races (PostgreSQL: real concurrent transactions) ------------------------------------------------


@pytest.mark.postgres
@pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="needs PostgreSQL (DATABASE_URL) for concurrent transactions",
)
@pytest.mark.django_db(transaction=True)
def test_two_verifications_of_one_code_issue_one_credential(freshdesk_installation, agents):
    from concurrent.futures import ThreadPoolExecutor
    from threading import Barrier

    started = devices.enrollment_start(freshdesk_installation, str(AGENT))
    code = _code(mail.outbox[0])
    barrier = Barrier(8)

    def verify(_):
        from django.db import connections

        try:
            barrier.wait()
            return devices.enrollment_verify(
                freshdesk_installation, str(AGENT), started.attempt, code
            ).secret
        except devices.DeviceRefused as exc:
            return exc.code
        finally:
            connections.close_all()

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(verify, range(8)))

    issued = [r for r in results if r not in {"code_used", "enrollment_locked"}]
    assert len(issued) == 1, results
    assert DeviceCredential.objects.count() == 1


def test_admin_pages_show_devices_and_enrollments_without_secrets(admin_client, enroll):
    secret = enroll()
    credential = DeviceCredential.objects.get()
    enrollment = DeviceEnrollment.objects.get()
    pages = [
        "/admin/helpdesk_connectors/devicecredential/",
        f"/admin/helpdesk_connectors/devicecredential/{credential.pk}/change/",
        "/admin/helpdesk_connectors/deviceenrollment/",
        f"/admin/helpdesk_connectors/deviceenrollment/{enrollment.pk}/change/",
    ]
    for page in pages:
        response = admin_client.get(page)
        assert response.status_code == 200, page
        html = response.content.decode()
        assert "m•••@acme.example" in html, page
        for hidden in [
            secret,
            credential.digest,
            enrollment.code_digest,
            enrollment.attempt_digest,
        ]:
            assert hidden not in html, page
    assert "in force" in admin_client.get(pages[0]).content.decode()
    assert admin_client.get("/admin/helpdesk_connectors/devicecredential/add/").status_code == 403


@pytest.mark.postgres
@pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="needs PostgreSQL (DATABASE_URL) for concurrent transactions",
)
@pytest.mark.django_db(transaction=True)
def test_parallel_requests_for_codes_send_no_more_than_the_limit(freshdesk_installation, agents):
    from concurrent.futures import ThreadPoolExecutor
    from threading import Barrier

    barrier = Barrier(8)

    def start(_):
        from django.db import connections

        try:
            barrier.wait()
            devices.enrollment_start(freshdesk_installation, str(AGENT))
            return "sent"
        except devices.DeviceRefused as exc:
            return exc.code
        finally:
            connections.close_all()

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(start, range(8)))

    assert results.count("sent") == devices.MAX_SENDS_PER_HOUR, results
    assert set(results) == {"sent", "enrollment_rate_limited"}
    assert DeviceEnrollment.objects.count() == devices.MAX_SENDS_PER_HOUR
    assert len(mail.outbox) == devices.MAX_SENDS_PER_HOUR
