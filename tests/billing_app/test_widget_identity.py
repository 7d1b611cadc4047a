"""The billing widget refuses unsigned and wrongly signed identities and foreign origins
(issue 18), before it reads or writes anything; CORS only for the allowed origin."""

from __future__ import annotations

import pytest

from billing_app.errors import ValidationFailed
from billing_app.models import BillingWidgetEvent, OutboxMessage, SelfServiceLink
from billing_app.selectors.widget import origin_normalise, widget_origins
from billing_app.services.widget import (
    widget_identity_sign,
    widget_identity_valid,
    widget_origins_validate,
    widget_secret_rotate,
)

from .actions_support import account_seed
from .widget_support import ORIGIN, SECRET, call, sign, widget_enable


@pytest.fixture
def widget(workspace):
    account_seed(workspace)
    return widget_enable(workspace)


def nothing_happened():
    assert BillingWidgetEvent.objects.count() == 0
    assert not OutboxMessage.objects.filter(kind=OutboxMessage.Kind.CUSTOMER_TICKET).exists()
    assert SelfServiceLink.objects.count() == 0


def test_the_signature_is_the_hex_hmac_sha256_of_the_customer_id():
    # given the documented recipe, computed independently
    expected = sign("cus_acme")

    # then our helper agrees, and the check is exact
    assert widget_identity_sign(secret=SECRET, customer_id="cus_acme") == expected
    assert widget_identity_valid(secret=SECRET, customer_id="cus_acme", signature=expected)
    assert widget_identity_valid(secret=SECRET, customer_id="cus_acme", signature=expected.upper())
    assert not widget_identity_valid(secret=SECRET, customer_id="cus_other", signature=expected)
    assert not widget_identity_valid(secret="", customer_id="cus_acme", signature=expected)
    assert not widget_identity_valid(secret=SECRET, customer_id="cus_acme", signature=expected[:-1])


@pytest.mark.parametrize(
    "endpoint", ["start/", "open/", "answers/invoices/", "answers/refund/", "contact/"]
)
@pytest.mark.parametrize(
    "signature",
    ["", "not-hex", sign("cus_other"), sign("cus_acme", secret="1e" * 32), None],
    ids=["empty", "not-hex", "other-customer", "other-secret", "absent"],
)
def test_unsigned_or_wrongly_signed_identities_are_refused(client, widget, endpoint, signature):
    # when the widget calls with no or a wrong signature (from the allowed origin)
    body = {"signature": signature} if signature is not None else {"signature": ""}
    response = call(client, widget.workspace, endpoint, message="help", **body)

    # then 401, readable by the allowed page (CORS for it) so the script can hide itself
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "identity_invalid"
    assert response["Access-Control-Allow-Origin"] == ORIGIN
    # and nothing is recorded, no link minted, no ticket queued
    nothing_happened()


def test_a_customer_id_that_is_not_a_string_is_refused(client, widget):
    response = call(client, widget.workspace, "start/", customer=["cus_acme"], signature="ab" * 32)
    assert response.status_code == 401
    nothing_happened()


@pytest.mark.parametrize(
    "origin",
    [
        "https://evil.example",
        "https://app.acme-product.example.evil.example",
        "http://app.acme-product.example",  # another scheme is another origin
        "https://app.acme-product.example:8443",
        "null",
        "",
        None,
    ],
)
def test_a_foreign_or_missing_origin_is_refused_without_cors_headers(client, widget, origin):
    # when a correctly signed call comes from a page the workspace does not allow
    response = call(client, widget.workspace, "answers/invoices/", origin=origin)

    # then 403, and the browser lets that page read nothing (no CORS headers at all)
    assert response.status_code == 403
    assert "Access-Control-Allow-Origin" not in response
    assert "Access-Control-Allow-Credentials" not in response
    assert "Origin" in response["Vary"]
    nothing_happened()


def test_the_allowed_origin_is_echoed_exactly_without_credentials(client, widget):
    response = call(client, widget.workspace, "start/")

    assert response.status_code == 200
    assert response["Access-Control-Allow-Origin"] == ORIGIN
    assert "Access-Control-Allow-Credentials" not in response
    assert "Origin" in response["Vary"]
    assert response["Cache-Control"] == "no-store"
    assert not response.cookies  # no session, no CSRF cookie: nothing ambient to ride on


def test_preflight_is_answered_for_the_allowed_origin_only(client, widget):
    url = f"/widget/api/v1/{widget.workspace.slug}/answers/invoices/"
    preflight = {
        "HTTP_ACCESS_CONTROL_REQUEST_METHOD": "POST",
        "HTTP_ACCESS_CONTROL_REQUEST_HEADERS": "content-type",
    }

    allowed = client.options(url, HTTP_ORIGIN=ORIGIN, **preflight)
    foreign = client.options(url, HTTP_ORIGIN="https://evil.example", **preflight)

    assert allowed.status_code == 204
    assert allowed["Access-Control-Allow-Origin"] == ORIGIN
    assert allowed["Access-Control-Allow-Methods"] == "POST"
    assert allowed["Access-Control-Allow-Headers"] == "Content-Type"
    assert "Access-Control-Allow-Credentials" not in allowed
    assert "Origin" in allowed["Vary"]
    assert foreign.status_code == 403
    assert "Access-Control-Allow-Origin" not in foreign


def test_a_disabled_widget_an_unknown_workspace_or_no_secret_answers_nothing(
    client, widget, make_workspace
):
    # given a disabled widget, a workspace without one, and one without a secret
    widget.enabled = False
    widget.save()
    bare = make_workspace("bare")
    secretless = make_workspace("secretless")
    widget_enable(secretless, secret="")

    for workspace in (widget.workspace, bare, secretless):
        response = call(client, workspace, "start/")
        # then the same refusal as a foreign origin: nothing to read for anyone
        assert response.status_code == 403
        assert "Access-Control-Allow-Origin" not in response
    nothing_happened()


def test_a_signature_for_one_workspace_is_refused_by_another(client, widget, make_workspace):
    # given another workspace with the same customer id in its mirror, its own secret
    other = make_workspace("globex")
    account_seed(other)
    widget_enable(other, secret="2d" * 32)

    # when the first workspace's signature is used against the other's slug
    response = call(client, other, "answers/invoices/", signature=sign("cus_acme"))

    # then it is refused: secrets are per workspace
    assert response.status_code == 401
    nothing_happened()


def test_rotating_the_secret_voids_every_earlier_signature(client, widget):
    old = sign("cus_acme")
    secret = widget_secret_rotate(widget=widget)

    assert call(client, widget.workspace, "start/", signature=old).status_code == 401
    fresh = call(client, widget.workspace, "start/", signature=sign("cus_acme", secret))
    assert fresh.status_code == 200
    # and the secret is stored encrypted (not the plaintext in the column)
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT identity_secret FROM billing_app_billingwidget WHERE id = %s", [widget.pk]
        )
        (stored,) = cursor.fetchone()
    assert secret not in stored


def test_a_signed_customer_not_in_the_workspace_gets_404(client, widget):
    response = call(client, widget.workspace, "start/", customer="cus_nobody")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "customer_unknown"
    nothing_happened()


def test_bodies_that_are_not_a_json_object_are_refused_cleanly(client, widget):
    url = f"/widget/api/v1/{widget.workspace.slug}/start/"
    as_form = client.post(url, data={"customer": "cus_acme"}, HTTP_ORIGIN=ORIGIN)
    not_json = client.post(url, data="{", content_type="application/json", HTTP_ORIGIN=ORIGIN)
    a_list = client.post(url, data="[]", content_type="application/json", HTTP_ORIGIN=ORIGIN)
    get = client.get(url, HTTP_ORIGIN=ORIGIN)

    assert as_form.status_code == 415
    assert not_json.status_code == 400
    assert a_list.status_code == 400
    assert get.status_code == 405
    for response in (as_form, not_json, a_list, get):
        assert response.json()["error"]["code"]
    nothing_happened()


@pytest.mark.parametrize(
    ("value", "origin"),
    [
        ("https://app.example.com", "https://app.example.com"),
        ("HTTPS://App.Example.com:443/", "https://app.example.com"),
        ("http://localhost:8000", "http://localhost:8000"),
        ("http://127.0.0.1:80", "http://127.0.0.1"),
        ("https://app.example.com/path", ""),
        ("https://*.example.com", ""),
        ("null", ""),
        ("ftp://files.example.com", ""),
        ("https://user@app.example.com", ""),
        ("", ""),
    ],
)
def test_origins_are_compared_as_browsers_send_them(value, origin):
    assert origin_normalise(value) == origin


def test_the_admin_rule_refuses_what_is_not_an_origin_and_normalises_the_rest(widget):
    assert (
        widget_origins_validate(text="HTTPS://Shop.Example\n\nhttps://shop.example/\n")
        == "https://shop.example"
    )
    with pytest.raises(ValidationFailed) as refused:
        widget_origins_validate(text="https://shop.example\nhttps://*.example.com")
    assert refused.value.code == "invalid_origin"
    widget.allowed_origins = "https://a.example\nnot an origin\nhttps://b.example:8443"
    assert widget_origins(widget) == {"https://a.example", "https://b.example:8443"}
