"""The demo's VP approver and the second factor, in a browser (issue 17): signing in with
the password alone reaches no approval; the first sign-in enrols an authenticator app (the
code is computed from the key the page shows, at a frozen moment), shows the recovery
codes, and only then the VP decides the request on /approvals/."""

from __future__ import annotations

from base64 import b32decode

import pytest
from django.contrib.auth.models import User
from django_otp.oath import TOTP

from billing_app.catalog import Role
from billing_app.demo.seed import APPROVER_USERNAME
from billing_app.models import ApprovalRequest, BillingAction
from billing_app.services.actions import action_submit
from tests.billing_app.two_factor_support import TotpClock

from .support import demo_context

expect = pytest.importorskip(
    "playwright.sync_api", reason="playwright is not installed: pip install -e '.[dev]'"
).expect

pytestmark = pytest.mark.browser

PASSWORD = "a-long-demo-passphrase-17"


@pytest.fixture
def vp_request(sandbox) -> BillingAction:
    """A Billing Specialist's $600 credit on Acme Corp (above $500): it waits for a VP."""
    action = action_submit(
        context=demo_context(sandbox.workspace, Role.SPECIALIST),
        kind="apply_credit",
        customer_id=sandbox.acme_id,
        ticket_id="1001",
        params={"amount": 60000, "currency": "USD", "description": "Outage credit"},
        idempotency_key="browser-2fa-credit",
    )
    assert action.status == BillingAction.Status.PENDING_APPROVAL
    assert action.approval.required_roles == ["vp"]
    return action


@pytest.fixture
def vp(sandbox):
    """The demo's VP approver (seeded with no second factor), with a password we know."""
    user = User.objects.get(username=APPROVER_USERNAME)
    user.set_password(PASSWORD)
    user.save()
    return user


def password_step(page) -> None:
    page.get_by_label("User name").fill(APPROVER_USERNAME)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()


def test_the_password_alone_reaches_no_decision(page, vp, vp_request):
    detail = f"/approvals/{vp_request.approval.pk}/"
    page.goto(detail)
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    password_step(page)

    # the second-factor step (enrolment: the VP has none yet), not the request
    expect(page.get_by_role("heading", name="Set up your second factor")).to_be_visible()
    expect(page.get_by_test_id("totp-qr").locator("svg")).to_be_visible()
    # going to the request instead leads back to the sign-in, and a wrong code is refused
    page.goto(detail)
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    expect(page.get_by_role("button", name="Approve and execute")).to_have_count(0)
    page.goto("/accounts/two-factor/")
    page.get_by_label("Code from the app").fill("000000")
    page.get_by_role("button", name="Confirm and sign in").click()
    expect(page.get_by_test_id("two-factor-error")).to_contain_text("That code is not valid")
    page.goto(detail)
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()

    assert ApprovalRequest.objects.get(pk=vp_request.approval.pk).status == "pending"
    assert BillingAction.objects.get(pk=vp_request.pk).status == "pending_approval"


def test_the_vp_enrols_then_decides(page, vp, vp_request, monkeypatch):
    clock = TotpClock(monkeypatch)  # the live server runs in this process: same frozen clock
    page.goto("/approvals/")
    password_step(page)

    # enrolment: the key as the page shows it is what the authenticator app would read
    expect(page.get_by_role("heading", name="Set up your second factor")).to_be_visible()
    secret = page.get_by_test_id("totp-secret").inner_text().replace(" ", "")
    code = _code_for(secret, clock)
    page.get_by_label("Code from the app").fill(code)
    page.get_by_role("button", name="Confirm and sign in").click()

    # ten recovery codes, shown once, then on to the queue
    expect(page.get_by_role("heading", name="Your recovery codes")).to_be_visible()
    expect(page.get_by_test_id("recovery-codes").locator("li")).to_have_count(10)
    page.get_by_test_id("continue").click()

    queue = page.get_by_test_id("queue")
    expect(queue).to_contain_text("Acme Corp")
    queue.get_by_role("link", name="Review and decide").click()
    page.get_by_label("Comment").fill("Outage confirmed")
    page.get_by_role("button", name="Approve and execute").click()
    expect(page.locator(".messages .success")).to_contain_text("Approved.")

    action = BillingAction.objects.get(pk=vp_request.pk)
    assert action.status == BillingAction.Status.SUCCEEDED
    assert action.approved_by == vp
    assert page.console_errors == []

    # signing in again takes a new code (the enrolment's is spent)
    page.get_by_test_id("sign-out").click()
    page.goto("/approvals/")
    password_step(page)
    expect(page.get_by_role("heading", name="Second factor")).to_be_visible()
    page.get_by_label("Code", exact=True).fill(code)
    page.get_by_role("button", name="Verify").click()
    expect(page.get_by_test_id("two-factor-error")).to_contain_text("already used")
    page.goto("/approvals/")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()


def _code_for(secret_b32: str, clock: TotpClock) -> str:
    """What an authenticator app given this key shows at the clock's moment."""
    totp = TOTP(b32decode(secret_b32), 30, 0, 6, 0)
    totp.time = clock.now
    return f"{totp.token():06d}"
