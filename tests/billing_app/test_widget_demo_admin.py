"""The billing widget's demo product page (demo mode only) and its admin (issue 18)."""

from __future__ import annotations

import json
import re

import pytest
from django.urls import reverse

from billing_app.demo.widget_seed import demo_widget_seed
from billing_app.models import AuditEntry, BillingWidget

from .context_support import seed_brief_day
from .widget_support import sign, widget_enable


@pytest.fixture
def demo_on(settings):
    settings.DEMO_MODE = True
    return settings


@pytest.fixture
def seeded(db, demo_on):
    return seed_brief_day(demo_on)


def test_the_demo_page_is_404_outside_demo_mode(db, client, settings):
    settings.DEMO_MODE = False
    assert client.get("/demo/widget/").status_code == 404


def test_the_seed_enables_the_demo_widget_for_the_demos_origins_and_keeps_its_secret(seeded):
    widget = BillingWidget.objects.get(workspace=seeded.workspace)
    assert widget.enabled
    origins = widget.allowed_origins.splitlines()
    assert "http://127.0.0.1:8000" in origins and "http://localhost:8000" in origins
    assert len(widget.identity_secret) == 64
    secret = widget.identity_secret

    demo_widget_seed(workspace=seeded.workspace)

    assert BillingWidget.objects.get(pk=widget.pk).identity_secret == secret


def test_the_demo_page_embeds_one_signed_script_tag_under_a_strict_csp(client, seeded):
    widget = BillingWidget.objects.get(workspace=seeded.workspace)

    response = client.get("/demo/widget/?customer=cus_sbx_northwind&lang=de")

    assert response.status_code == 200
    body = response.content.decode()
    tag = re.search(r"<script async src=\"/static/widget/billing-help.js\"[^>]*>", body)
    assert tag is not None
    assert 'data-workspace="acme"' in tag.group(0)
    assert 'data-customer="cus_sbx_northwind"' in tag.group(0)
    expected = sign("cus_sbx_northwind", widget.identity_secret)
    assert f'data-signature="{expected}"' in tag.group(0)
    assert 'data-lang="de"' in tag.group(0)
    # no inline script anywhere, and the page forbids it
    assert len(re.findall(r"<script", body)) == 1
    csp = response["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert "frame-ancestors 'none'" in csp and "object-src 'none'" in csp
    assert response["X-Frame-Options"] == "DENY"


def test_the_demo_page_signs_only_its_demo_customers(client, seeded):
    response = client.get("/demo/widget/?customer=cus_sbx_globex")
    # another customer id falls back to Acme Corp
    assert 'data-customer="cus_sbx_acme"' in response.content.decode()


def test_the_demo_host_page_links_to_the_widget_demo(client, seeded):
    body = client.get("/demo/").content.decode()
    assert f'href="{reverse("demo-widget")}' in body


def test_the_demo_page_says_what_to_do_before_the_seed(db, client, demo_on):
    response = client.get("/demo/widget/", HTTP_ACCEPT="text/html")
    assert response.status_code == 503
    assert "seed_demo" in response.content.decode()


# --- admin -------------------------------------------------------------------------------------


def test_the_admin_generates_a_secret_shows_it_once_and_audits_without_it(admin_client, workspace):
    widget = widget_enable(workspace, secret="")

    response = admin_client.post(
        reverse("admin:billing_app_billingwidget_changelist"),
        {"action": "generate_secret", "_selected_action": [widget.pk]},
    )

    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"] or "max-age=0" in response["Cache-Control"]
    widget.refresh_from_db()
    secret = widget.identity_secret
    assert len(secret) == 64
    assert secret in response.content.decode()
    # never again: the change page shows only that one is set
    change = admin_client.get(reverse("admin:billing_app_billingwidget_change", args=[widget.pk]))
    assert secret not in change.content.decode()
    assert f"…{secret[-4:]}" in change.content.decode()
    # on the workspace's audit chain, without the secret
    entry = AuditEntry.objects.filter(workspace=workspace, event="admin.changed").latest("seq")
    assert "identity secret rotated" in entry.content
    assert secret not in entry.content
    assert json.loads(entry.content)


def test_the_admin_refuses_an_origin_that_is_not_one(admin_client, workspace):
    widget = widget_enable(workspace)
    url = reverse("admin:billing_app_billingwidget_change", args=[widget.pk])

    bad = admin_client.post(
        url,
        {"workspace": workspace.pk, "enabled": "on", "allowed_origins": "https://*.example.com"},
    )
    good = admin_client.post(
        url,
        {
            "workspace": workspace.pk,
            "enabled": "on",
            "allowed_origins": "HTTPS://Shop.Example.com/\nhttp://localhost:8000",
        },
    )

    assert bad.status_code == 200 and "is not an origin" in bad.content.decode()
    assert good.status_code == 302
    widget.refresh_from_db()
    assert widget.allowed_origins == "https://shop.example.com\nhttp://localhost:8000"
    # the secret survived the edit (it is not a form field)
    assert widget.identity_secret


def test_widget_events_are_read_only_in_admin(admin_client, workspace):
    changelist = admin_client.get(reverse("admin:billing_app_billingwidgetevent_changelist"))
    assert changelist.status_code == 200
    add = admin_client.get(reverse("admin:billing_app_billingwidgetevent_add"))
    assert add.status_code == 403


# --- system check and outages --------------------------------------------------------------


def test_an_enabled_widget_that_can_answer_nobody_is_named_by_a_check(workspace, make_workspace):
    from billing_app.checks import billing_widget_ready

    widget_enable(workspace, secret="")
    ready = make_workspace("ready")
    widget_enable(ready)
    no_origin = make_workspace("no-origin")
    widget_enable(no_origin, origins="not an origin")

    warnings = billing_widget_ready(None)

    assert [w.id for w in warnings] == ["billing.W031", "billing.W031"]
    assert "'acme'" in warnings[0].msg and "an identity secret" in warnings[0].msg
    assert "'no-origin'" in warnings[1].msg and "an allowed origin" in warnings[1].msg


def test_a_database_outage_answers_503_in_the_envelope(client, workspace, monkeypatch):
    from django.db import OperationalError

    from billing_app.web import widget as widget_web

    from .actions_support import account_seed
    from .widget_support import ORIGIN, call

    account_seed(workspace)
    widget_enable(workspace)

    def down(**kwargs):
        raise OperationalError("connection refused")

    monkeypatch.setattr(widget_web, "widget_texts", down)

    response = call(client, workspace, "start/")

    assert response.status_code == 503
    assert response.json()["error"]["code"] == "service_unavailable"
    assert response["Access-Control-Allow-Origin"] == ORIGIN
