"""Where the second factor is enforced (issue 17): every approval decision from a password
session, the ``/approvals/`` pages, the approvals API's decide endpoints and Django admin —
each tried unauthenticated, unverified and verified, and each refusal changes nothing."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django_otp.plugins.otp_static.models import StaticDevice
from django_otp.plugins.otp_totp.models import TOTPDevice
from rest_framework.test import APIClient

from billing_app.catalog import ActionKind, Role
from billing_app.models import ApprovalRequest, BillingAction
from billing_app.services.actions import run as actions_run

from .actions_support import ProviderSpy, account_seed
from .test_actions_api import post_action
from .two_factor_support import verified_login


@pytest.fixture
def spy(monkeypatch):
    spy = ProviderSpy()
    real = actions_run.get_provider
    monkeypatch.setattr(actions_run, "get_provider", lambda ws: spy.wrap(real(ws)))
    return spy


@pytest.fixture
def vp_credit(workspace, api_as):
    """A Billing Specialist's $600 credit, waiting for a VP."""
    account_seed(workspace)
    body = post_action(
        api_as(workspace, Role.SPECIALIST),
        ActionKind.APPLY_CREDIT,
        {"amount": 60000, "currency": "USD"},
    ).json()
    assert body["approval"]["required_roles"] == ["vp"]
    return body


@pytest.fixture
def vp(workspace, sign_in):
    membership, _token = sign_in(workspace, Role.VP, "vp-1")
    return membership.user


def still_pending(body, spy) -> bool:
    approval = ApprovalRequest.objects.get(pk=body["approval"]["id"])
    action = BillingAction.objects.get(pk=body["id"])
    return (
        approval.status == "pending"
        and action.status == "pending_approval"
        and not spy.writes("apply_credit")
    )


# --- the /approvals/ pages -----------------------------------------------------------------


def test_an_unverified_approver_is_sent_to_the_second_factor_and_decides_nothing(
    vp, vp_credit, spy
):
    client = Client()
    client.force_login(vp)
    detail = f"/approvals/{vp_credit['approval']['id']}/"

    page = client.get("/approvals/")
    posted = client.post(detail, {"decision": "approve", "comment": ""})

    assert page.status_code == 302
    assert page["Location"] == "/accounts/two-factor/?next=%2Fapprovals%2F"
    assert posted.status_code == 302 and posted["Location"].startswith("/accounts/two-factor/")
    assert still_pending(vp_credit, spy)


def test_a_verified_approver_decides_on_the_page(vp, vp_credit, spy):
    client = Client()
    verified_login(client, vp)

    response = client.post(
        f"/approvals/{vp_credit['approval']['id']}/", {"decision": "approve", "comment": ""}
    )

    assert response.status_code == 302 and response["Location"] == "/approvals/"
    assert BillingAction.objects.get(pk=vp_credit["id"]).status == "succeeded"
    assert len(spy.writes("apply_credit")) == 1


def test_a_user_who_is_no_approver_needs_no_second_factor_for_the_empty_queue(db):
    client = Client()
    client.force_login(User.objects.create_user("reader"))
    page = client.get("/approvals/")
    assert page.status_code == 200
    assert b"You do not hold an approver role" in page.content


# --- the API's decide endpoints ------------------------------------------------------------


@pytest.mark.parametrize("verb", ["approve", "deny"])
def test_the_api_refuses_a_decision_from_an_unverified_password_session(vp, vp_credit, spy, verb):
    client = APIClient()
    client.force_login(vp)  # the Django session cookie of a password sign-in, no second factor

    response = client.post(
        f"/api/v1/approvals/{vp_credit['approval']['id']}/{verb}/",
        {"comment": "looks fine"},
        format="json",
    )

    assert response.status_code == 403
    error = response.json()["error"]
    assert error["code"] == "second_factor_required"
    assert "second factor" in error["message"]
    assert still_pending(vp_credit, spy)


def test_the_api_takes_no_password_session_even_a_verified_one(vp, vp_credit, spy):
    client = APIClient()
    verified_login(client, vp)

    response = client.post(
        f"/api/v1/approvals/{vp_credit['approval']['id']}/approve/", {}, format="json"
    )

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "not_authenticated"
    assert still_pending(vp_credit, spy)


def test_the_panels_app_session_still_decides(workspace, vp_credit, api_as, spy):
    # a helpdesk-proven identity (here the demo connector's; Zendesk-signed or a Freshdesk
    # device credential in production): see docs/two-factor.md for why it needs no TOTP
    approver = api_as(workspace, Role.VP, "vp-panel")

    response = approver.post(
        f"/api/v1/approvals/{vp_credit['approval']['id']}/approve/", {}, format="json"
    )

    assert response.status_code == 200, response.content
    assert BillingAction.objects.get(pk=vp_credit["id"]).status == "succeeded"


# --- Django admin ----------------------------------------------------------------------


@pytest.fixture
def staff(db):
    return User.objects.create_user("ops", is_staff=True, is_superuser=True)


def test_admin_sends_the_anonymous_through_the_sign_in_with_a_second_factor(db):
    client = Client()
    first = client.get("/admin/")
    assert first["Location"] == "/admin/login/?next=/admin/"
    login = client.get(first["Location"])
    assert login.status_code == 302 and login["Location"] == "/accounts/login/?next=/admin/"


def test_admin_refuses_staff_without_a_verified_second_factor(staff):
    client = Client()
    client.force_login(staff)

    index = client.get("/admin/")
    change = client.get("/admin/billing_app/workspace/")
    login = client.get("/admin/login/?next=/admin/billing_app/workspace/")

    assert index.status_code == 302 and change.status_code == 302
    assert login["Location"] == "/accounts/two-factor/?next=%2Fadmin%2Fbilling_app%2Fworkspace%2F"
    # nothing is written through admin either
    posted = client.post("/admin/billing_app/workspace/add/", {"slug": "x", "name": "X"})
    assert posted.status_code == 302 and not posted["Location"].startswith("/admin/billing_app/")


def test_admin_opens_for_verified_staff_and_lists_the_second_factor_devices(staff):
    client = Client()
    verified_login(client, staff)

    index = client.get("/admin/")

    assert index.status_code == 200
    html = index.content.decode()
    assert "/admin/otp_totp/totpdevice/" in html and "/admin/otp_static/staticdevice/" in html
    assert client.get("/admin/login/?next=/admin/")["Location"] == "/admin/"


def test_an_admin_resets_an_approvers_second_factor(staff, vp):
    TOTPDevice.objects.create(user=vp, name="Authenticator app", confirmed=True)
    StaticDevice.objects.create(user=vp, name="Recovery codes", confirmed=True)
    admin = Client()
    verified_login(admin, staff)
    device = TOTPDevice.objects.get(user=vp)

    listing = admin.get(f"/admin/otp_totp/totpdevice/?user__id__exact={vp.pk}")
    assert listing.status_code == 200
    response = admin.post(f"/admin/otp_totp/totpdevice/{device.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302
    admin.post(
        "/admin/otp_static/staticdevice/",
        {
            "action": "delete_selected",
            "_selected_action": [str(d.pk) for d in StaticDevice.objects.filter(user=vp)],
            "post": "yes",
        },
    )

    assert not TOTPDevice.objects.filter(user=vp).exists()
    assert not StaticDevice.objects.filter(user=vp).exists()


# --- the dashboard, the monthly report and their APIs (security review r3) -------------------

WEB_ROUTES = ["/dashboard/", "/reports/monthly/", "/reports/monthly/2026-01/"]
API_ROUTES = ["/api/v1/dashboard/", "/api/v1/reports/monthly/?month=2026-01&format=csv"]


@pytest.fixture(params=["vp", "staff"])
def password_user(request, vp, staff):
    return {"vp": vp, "staff": staff}[request.param]


@pytest.mark.parametrize("url", WEB_ROUTES)
def test_dashboard_and_report_pages_send_an_unverified_session_to_the_second_factor(
    password_user, url
):
    client = Client()
    client.force_login(password_user)

    response = client.get(url)

    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/two-factor/?next=")


@pytest.mark.parametrize("url", API_ROUTES)
def test_report_apis_refuse_an_unverified_password_session(password_user, url):
    client = Client()
    client.force_login(password_user)

    response = client.get(url)

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "second_factor_required"


@pytest.mark.parametrize("url", WEB_ROUTES + API_ROUTES)
def test_dashboard_report_and_apis_open_for_a_verified_session(password_user, url):
    client = Client()
    verified_login(client, password_user)

    response = client.get(url, follow=url == "/reports/monthly/")

    assert response.status_code == 200


@pytest.mark.parametrize("url", API_ROUTES)
def test_report_apis_still_answer_the_panels_app_session(workspace, api_as, url):
    response = api_as(workspace, Role.MANAGER).get(url)
    assert response.status_code == 200


# --- django-otp's device admins: look and delete, never add or edit --------------------------


def test_device_admins_are_delete_only(staff, vp):
    device = TOTPDevice.objects.create(user=vp, name="Authenticator app", confirmed=True)
    admin = Client()
    verified_login(admin, staff)

    add_totp = admin.get("/admin/otp_totp/totpdevice/add/")
    add_static = admin.get("/admin/otp_static/staticdevice/add/")
    posted = admin.post(
        "/admin/otp_totp/totpdevice/add/",
        {"user": vp.pk, "name": "planted", "key": "00" * 20, "confirmed": "on"},
    )
    change = admin.post(
        f"/admin/otp_totp/totpdevice/{device.pk}/change/",
        {"user": staff.pk, "name": "moved", "confirmed": "on"},
    )

    assert add_totp.status_code == 403 and add_static.status_code == 403
    assert posted.status_code == 403
    assert change.status_code == 403
    device.refresh_from_db()
    assert device.user_id == vp.pk and device.name == "Authenticator app"
    assert list(TOTPDevice.objects.filter(user=vp)) == [device]
