"""The customer's card pages: a signed link or nothing, CSRF, no data, a fresh provider session.

Stripe is intercepted with ``responses`` (the Billing Portal session shaped like Stripe's own
fixture); the sandbox answers for itself. Every refusal is checked to leave nothing behind:
no opt-out row, no provider call.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import pytest
from django.core import signing
from django.core.cache import cache
from django.test import Client
from requests.exceptions import ConnectionError as RequestsConnectionError

from billing_app.models import CustomerOptOut
from billing_app.providers.stripe.client import StripeHttpClient
from billing_app.services.card_prompts import card_unsubscribe_url, card_update_url
from billing_app.services.card_prompts.links import UPDATE_LINK_MAX_AGE, UPDATE_SALT
from billing_app.services.card_prompts.portal import MINTS_PER_HOUR
from billing_app.services.mirror import mirror_upsert

from .stripe_support import StripeMock, load, make_stripe_workspace, params_of

ACME = "cus_RbAcmeCorp0001"


@pytest.fixture(autouse=True)
def _no_backoff(monkeypatch):
    monkeypatch.setattr(StripeHttpClient, "backoff_scale", 0.0)


@pytest.fixture
def ws(make_workspace):
    workspace = make_workspace("acme-cards")
    mirror_upsert(workspace=workspace, obj=load("customer"))
    cache.delete(f"card_link_mints:{workspace.pk}:{ACME}")
    return workspace


@pytest.fixture
def browser():
    return Client(enforce_csrf_checks=True)


def _path(url: str) -> str:
    return urlsplit(url).path


def _post_form(browser, path):
    """GET the page, then POST its form with the CSRF token it carries (as a browser does)."""
    page = browser.get(path)
    assert page.status_code == 200
    token = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', page.content).group(1)
    return browser.post(path, {"csrfmiddlewaretoken": token.decode()})


def _assert_generic_refusal(response):
    assert response.status_code == 404
    assert b"This link is not valid" in response.content
    for secret in (b"Acme", b"billing@acme.example", b"cus_", b"4242"):
        assert secret not in response.content
    assert "default-src 'none'" in response["Content-Security-Policy"]


def test_the_update_page_asks_then_redirects_to_a_fresh_sandbox_session(ws, browser):
    path = _path(card_update_url(workspace=ws, customer_id=ACME))
    page = browser.get(path)
    assert page.status_code == 200
    csp = page["Content-Security-Policy"]
    assert "default-src 'none'" in csp and "frame-ancestors 'none'" in csp
    assert "script-src" not in csp  # no script at all
    assert page["X-Frame-Options"] == "DENY"
    # same-origin, not no-referrer: with no-referrer Chromium sends "Origin: null" on the
    # form's POST and Django's CSRF check refuses it (tests/browser/test_card_pages.py)
    assert page["Referrer-Policy"] == "same-origin"
    assert "no-store" in page["Cache-Control"] or "max-age=0" in page["Cache-Control"]
    assert b"<script" not in page.content and b"billing@acme.example" not in page.content

    # A POST without the CSRF token changes nothing
    assert browser.post(path).status_code == 403

    done = _post_form(browser, path)
    assert done.status_code == 303
    assert done["Location"].startswith("https://sandbox.")
    assert "flow=payment_method_update" in done["Location"]
    # Each click is a new session
    again = _post_form(browser, path)
    assert again["Location"] != done["Location"]


def test_the_update_page_mints_a_stripe_billing_portal_session(make_workspace, browser, http):
    ws = make_stripe_workspace(make_workspace)
    mirror_upsert(workspace=ws, obj=load("customer"))
    cache.delete(f"card_link_mints:{ws.pk}:{ACME}")
    stripe = StripeMock(http)
    stripe.on("POST", "/v1/billing_portal/sessions", load("billing_portal_session"))
    path = _path(card_update_url(workspace=ws, customer_id=ACME))

    response = _post_form(browser, path)

    assert response.status_code == 303
    assert response["Location"] == "https://billing.stripe.com/p/session/test_YWNtZXBvcnRhbDAwMDE"
    (call,) = stripe.requests_to("POST", "/v1/billing_portal/sessions")
    params = params_of(call)
    assert params["customer"] == ACME
    assert params["flow_data[type]"] == "payment_method_update"
    assert params["return_url"].startswith("http://127.0.0.1:8000/billing/card/")
    assert params["return_url"].endswith("/done/")
    assert call.request.headers["Idempotency-Key"].startswith(f"cardlink:{ws.pk}:")
    assert browser.get(_path(params["return_url"])).status_code == 200


def test_stripe_unreachable_shows_try_again_and_nothing_else(make_workspace, browser, http):
    ws = make_stripe_workspace(make_workspace)
    mirror_upsert(workspace=ws, obj=load("customer"))
    cache.delete(f"card_link_mints:{ws.pk}:{ACME}")
    StripeMock(http).on(
        "POST", "/v1/billing_portal/sessions", exc=RequestsConnectionError("refused")
    )
    response = _post_form(browser, _path(card_update_url(workspace=ws, customer_id=ACME)))
    assert response.status_code == 503
    assert b"could not be reached" in response.content


def test_forged_altered_expired_and_foreign_links_get_one_generic_page(ws, browser, monkeypatch):
    good = _path(card_update_url(workspace=ws, customer_id=ACME))
    token = good.split("/")[3]
    payload, stamp, mac = token.split(":")
    forged = signing.dumps({"w": ws.pk, "c": ACME}, key="not-our-secret", salt=UPDATE_SALT)
    unsubscribe_token = _path(card_unsubscribe_url(workspace=ws, customer_id=ACME)).split("/")[4]
    other_customer = _path(card_update_url(workspace=ws, customer_id="cus_unknown"))
    for path in (
        f"/billing/card/{forged}/",
        f"/billing/card/{payload}:{stamp}:{mac[:-2]}xx/",
        f"/billing/card/{unsubscribe_token}/",  # another purpose's token
        other_customer,  # signed, but no such customer
        "/billing/card/garbage/",
    ):
        _assert_generic_refusal(browser.get(path))

    # Expired: the signer's clock moved past the link's life
    import time as real_time

    later = real_time.time() + UPDATE_LINK_MAX_AGE.total_seconds() + 60
    monkeypatch.setattr(signing.time, "time", lambda: later)
    _assert_generic_refusal(browser.get(good))
    assert browser.post(good).status_code in (403, 404)


def test_a_deleted_customer_or_inactive_workspace_reveals_nothing(ws, browser):
    path = _path(card_update_url(workspace=ws, customer_id=ACME))
    ws.is_active = False
    ws.save(update_fields=["is_active"])
    _assert_generic_refusal(browser.get(path))
    ws.is_active = True
    ws.save(update_fields=["is_active"])
    mirror_upsert(workspace=ws, obj={"id": ACME, "object": "customer", "deleted": True})
    _assert_generic_refusal(browser.get(path))


def test_minting_is_rate_limited_per_customer(ws, browser):
    path = _path(card_update_url(workspace=ws, customer_id=ACME))
    for _ in range(MINTS_PER_HOUR):
        assert _post_form(browser, path).status_code == 303
    refused = _post_form(browser, path)
    assert refused.status_code == 429
    assert b"Too many attempts" in refused.content


def test_unsubscribe_page_asks_then_records_once(ws, browser):
    path = _path(card_unsubscribe_url(workspace=ws, customer_id=ACME))
    assert browser.get(path).status_code == 200
    assert not CustomerOptOut.objects.exists()  # a GET (a mail scanner) changes nothing
    assert browser.post(path).status_code == 403  # CSRF
    assert not CustomerOptOut.objects.exists()
    done = _post_form(browser, path)
    assert done.status_code == 200 and b"You are unsubscribed" in done.content
    _post_form(browser, path)
    assert list(CustomerOptOut.objects.values_list("workspace_id", "customer_id")) == [
        (ws.pk, ACME)
    ]


def test_one_click_unsubscribe_is_csrf_exempt_but_needs_the_token(ws, browser):
    path = _path(card_unsubscribe_url(workspace=ws, customer_id=ACME)) + "one-click/"
    update_token = _path(card_update_url(workspace=ws, customer_id=ACME)).split("/")[3]

    assert browser.get(path).status_code == 405
    bad = browser.post(
        f"/billing/card/unsubscribe/{update_token}/one-click/",
        "List-Unsubscribe=One-Click",
        content_type="application/x-www-form-urlencoded",
    )
    assert bad.status_code == 404 and not CustomerOptOut.objects.exists()

    ok = browser.post(
        path, "List-Unsubscribe=One-Click", content_type="application/x-www-form-urlencoded"
    )
    assert ok.status_code == 204
    assert CustomerOptOut.objects.filter(workspace=ws, customer_id=ACME).count() == 1


def test_pages_speak_german(ws):
    path = _path(card_update_url(workspace=ws, customer_id=ACME))
    page = Client().get(path, HTTP_ACCEPT_LANGUAGE="de")
    assert page.status_code == 200
    assert page["Content-Language"] == "de"


def test_the_return_url_shows_the_thank_you_page_and_opens_nothing(ws, browser, monkeypatch):
    # The provider's "return" link carries a token of its own (review of issue 18: it was an
    # update token signed afresh, so an expiring mailed link renewed itself through it)
    captured = {}

    def fake_session(*, claim, return_url):
        captured["return_url"] = return_url
        return "https://billing.stripe.com/p/session/test_x"

    monkeypatch.setattr("billing_app.web.card_prompts.card_update_session_create", fake_session)
    update = _path(card_update_url(workspace=ws, customer_id=ACME))
    assert _post_form(browser, update).status_code == 303
    done = _path(captured["return_url"])
    assert done.endswith("/done/")

    assert browser.get(done).status_code == 200  # the thank-you page
    returned = done.removesuffix("done/")  # the same token on the update page
    _assert_generic_refusal(browser.get(returned))
    _assert_generic_refusal(Client().post(returned))
    # and a mailed update link is no thank-you token either
    _assert_generic_refusal(browser.get(f"{update}done/"))
