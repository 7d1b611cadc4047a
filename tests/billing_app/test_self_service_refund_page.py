"""The customer's refund page, the agents' endpoint that makes its link, and the command."""

from __future__ import annotations

import json
from io import StringIO
from urllib.parse import urlsplit

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client

from billing_app.catalog import Role
from billing_app.models import (
    AuditEntry,
    BillingAction,
    SelfServiceLink,
    SelfServiceRefundRequest,
)
from billing_app.services.refund_links import refund_link_create, refund_link_revoke

from . import self_service_refund_support as support

Status = SelfServiceRefundRequest.Status


# The fixtures, shared with the other self-service refund tests.
spy = support.spy
acme = support.acme_limited


@pytest.fixture
def page(acme):
    link, url = refund_link_create(workspace=acme, customer_id="cus_acme", source="panel")
    return link, urlsplit(url).path


def _csrf_client():
    return Client(enforce_csrf_checks=True)


def _post(client, path, **data):
    get = client.get(path)
    token = get.cookies["csrftoken"].value
    return client.post(path, {"csrfmiddlewaretoken": token, **data})


def test_the_page_lists_the_customers_payments_with_what_a_request_would_do(client, page):
    link, path = page
    response = client.get(path)
    assert response.status_code == 200
    body = response.content.decode()
    assert 'data-testid="form-ch_acme_dup1"' in body  # eligible
    assert "It is refunded as soon as you send the request." in body
    assert "Our billing team reviews it and replies by email." in body  # ch_acme_paid
    assert 'data-testid="reason-ch_acme_disputed"' in body and "disputed" in body
    assert "ch_other_paid" not in body  # another customer's payment
    assert "<script" not in body
    # The card pages' frame, with the refund page's own title, styles and class.
    assert "<title>Request a refund</title>" in body
    assert "self_service/card.css" in body and "self_service/refund.css" in body
    assert '<main class="card-page refund-page">' in body
    csp = response["Content-Security-Policy"]
    assert "default-src 'none'" in csp and "frame-ancestors 'none'" in csp
    assert "script-src" not in csp
    assert response["Referrer-Policy"] == "same-origin"
    assert "no-store" in response["Cache-Control"] or "max-age=0" in response["Cache-Control"]


def test_a_get_changes_nothing(client, page, spy):
    link, path = page
    client.get(path)
    client.get(path)
    assert not SelfServiceRefundRequest.objects.exists() and spy.writes() == []


def test_a_post_without_csrf_is_refused_and_nothing_happens(page, spy):
    link, path = page
    response = _csrf_client().post(path, {"charge_id": "ch_acme_dup1", "reason": "other"})
    assert response.status_code == 403
    assert not SelfServiceRefundRequest.objects.exists() and spy.writes() == []


def test_a_request_within_the_limit_is_refunded_and_the_page_says_so(page, spy):
    link, path = page
    client = _csrf_client()
    response = _post(
        client, path, charge_id="ch_acme_dup1", reason="charged_twice", comment="Twice!"
    )
    assert response.status_code == 303 and response["Location"] == path
    request = SelfServiceRefundRequest.objects.get()
    assert request.status == Status.REFUNDED
    assert len(spy.writes("refund")) == 1
    body = client.get(path).content.decode()
    assert 'data-testid="status-ch_acme_dup1"' in body and "Refunded" in body
    assert "We&#x27;ve processed your refund of $49.00." in body

    # a second post (back button, double click) makes no second refund
    _post(client, path, charge_id="ch_acme_dup1", reason="other")
    assert SelfServiceRefundRequest.objects.count() == 1 and len(spy.writes("refund")) == 1


def test_a_request_above_the_limit_is_with_an_agent(page, spy):
    link, path = page
    client = _csrf_client()
    _post(client, path, charge_id="ch_acme_paid", reason="wrong_amount")
    body = client.get(path).content.decode()
    assert "With an agent" in body and "Your request is with our billing team." in body
    assert spy.writes() == []


def test_another_customers_charge_is_a_400_and_nothing_is_recorded(page, spy):
    link, path = page
    response = _post(_csrf_client(), path, charge_id="ch_other_paid", reason="other")
    assert response.status_code == 400
    assert "No such payment." in response.content.decode()
    assert not SelfServiceRefundRequest.objects.exists() and not BillingAction.objects.exists()


def test_a_revoked_link_takes_no_request(page, spy):
    link, path = page
    client = _csrf_client()
    token = client.get(path).cookies["csrftoken"].value
    refund_link_revoke(link=link)
    response = client.post(
        path, {"csrfmiddlewaretoken": token, "charge_id": "ch_acme_dup1", "reason": "other"}
    )
    assert response.status_code == 404 and "Acme" not in response.content.decode()
    assert not SelfServiceRefundRequest.objects.exists() and spy.writes() == []


def test_the_page_is_rate_limited_per_link(page, spy, monkeypatch):
    from billing_app.services.self_service_refunds import requests as ss_requests

    monkeypatch.setattr(ss_requests, "REQUESTS_PER_LINK_PER_HOUR", 1)
    link, path = page
    client = _csrf_client()
    _post(client, path, charge_id="ch_acme_dup1", reason="other")
    response = _post(client, path, charge_id="ch_acme_dup2", reason="other")
    assert response.status_code == 429 and response["Retry-After"] == "3600"
    assert "Too many requests from this link." in response.content.decode()


def test_the_page_speaks_the_customers_language(client, acme, page):
    from billing_app.models import MirrorCustomer

    customer = MirrorCustomer.objects.get(workspace=acme, stripe_id="cus_acme")
    customer.data = {**customer.data, "preferred_locales": ["de-DE"]}
    customer.save(update_fields=["data"])
    link, path = page
    assert '<html lang="de">' in client.get(path).content.decode()


def test_put_is_not_allowed(client, page):
    link, path = page
    assert client.put(path).status_code == 405


# --- POST /api/v1/customers/<id>/refund-link/ ------------------------------------------------


def test_an_agent_creates_a_link_audited_with_sender_and_ticket(api_as, acme, settings):
    client = api_as(acme, Role.SPECIALIST)
    response = client.post(
        "/api/v1/customers/cus_acme/refund-link/", {"ticket_id": "1001"}, format="json"
    )
    assert response.status_code == 201, response.content
    data = response.json()
    assert data["url"].startswith(f"{settings.PUBLIC_BASE_URL}/billing/refund/")
    link = SelfServiceLink.objects.get(pk=data["link_id"])
    assert link.created_by == client.membership.user and link.ticket_id == "1001"
    assert link.installation is not None and link.source == "panel"
    entry = AuditEntry.objects.get(event="self_service_link.created")
    content = json.loads(entry.content)
    assert content["actor"] == client.membership.user.pk
    assert content["data"]["ticket_id"] == "1001" and content["data"]["customer_id"] == "cus_acme"


def test_a_customer_of_another_workspace_is_404(api_as, acme, make_workspace):
    other = make_workspace("globex")
    response = api_as(other, Role.MANAGER).post(
        "/api/v1/customers/cus_acme/refund-link/", {}, format="json"
    )
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "customer_not_found"
    assert not SelfServiceLink.objects.exists()


def test_without_a_session_the_endpoint_is_401(acme):
    from rest_framework.test import APIClient

    response = APIClient().post("/api/v1/customers/cus_acme/refund-link/", {}, format="json")
    assert response.status_code == 401 and not SelfServiceLink.objects.exists()


def test_a_role_without_view_billing_gets_404_and_no_link(api_as, acme):
    from guardian.shortcuts import remove_perm

    client = api_as(acme, Role.L1)
    for group in client.membership.user.groups.all():
        remove_perm("view_billing", group, acme)
    response = client.post("/api/v1/customers/cus_acme/refund-link/", {}, format="json")
    assert response.status_code == 404 and not SelfServiceLink.objects.exists()


def test_the_endpoint_is_rate_limited(api_as, acme, monkeypatch):
    from billing_app.services import refund_links as links

    monkeypatch.setattr(links, "LINKS_PER_CUSTOMER_PER_HOUR", 1)
    client = api_as(acme, Role.MANAGER)
    assert (
        client.post("/api/v1/customers/cus_acme/refund-link/", {}, format="json").status_code == 201
    )
    refused = client.post("/api/v1/customers/cus_acme/refund-link/", {}, format="json")
    assert refused.status_code == 429
    assert refused.json()["error"]["code"] == "refund_link_rate_limited"


def test_a_bad_ticket_id_is_400(api_as, acme):
    response = api_as(acme, Role.MANAGER).post(
        "/api/v1/customers/cus_acme/refund-link/", {"ticket_id": "<script>"}, format="json"
    )
    assert response.status_code == 400 and not SelfServiceLink.objects.exists()


# --- manage.py self_service_refund_link ------------------------------------------------------


def test_the_command_prints_a_link(acme):
    out = StringIO()
    call_command(
        "self_service_refund_link",
        "--workspace",
        acme.slug,
        "--customer",
        "cus_acme",
        "--json",
        "--source",
        "macro",
        stdout=out,
    )
    data = json.loads(out.getvalue())
    link = SelfServiceLink.objects.get(pk=data["link_id"])
    assert link.source == "macro" and link.created_by is None
    assert data["url"].endswith("/")


def test_the_command_refuses_an_unknown_customer(acme):
    with pytest.raises(CommandError, match="No such customer"):
        call_command("self_service_refund_link", "--workspace", acme.slug, "--customer", "cus_x")
