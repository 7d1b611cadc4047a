"""Framing (CSP on panel pages, DENY elsewhere) and the demo system check."""

from __future__ import annotations

import pytest
from django.core import checks
from django.core.exceptions import ImproperlyConfigured

from helpdesk_connectors import framing
from helpdesk_connectors.checks import connectors_configured, demo_connector_off_in_production


def test_other_pages_keep_framing_denied(db, client):
    for path in [
        "/healthz",
        "/api/v1/me/",
        "/admin/login/",
        "/zendesk/sidebar/",
        "/freshdesk/session/",
    ]:
        response = client.get(path)
        assert response["X-Frame-Options"] == "DENY", path
        assert "frame-ancestors" not in response.get("Content-Security-Policy", ""), path


def test_frame_ancestors_value_drops_unsafe_sources(settings):
    settings.DEBUG = False
    assert framing.frame_ancestors_value(
        ["https://acme.zendesk.com", "https://acme.zendesk.com"]
    ) == ("frame-ancestors https://acme.zendesk.com")
    assert framing.frame_ancestors_value(
        ["https://a.com; script-src *", "http://plain.com", "*"]
    ) == ("frame-ancestors 'none'")
    assert framing.frame_ancestors_value([]) == "frame-ancestors 'none'"


def test_freshworks_origins_come_from_settings(settings):
    settings.FRESHWORKS_APP_FRAME_ORIGINS = ["https://apps.example-cdn.net/"]
    assert framing.freshworks_app_frame_origins() == ["https://apps.example-cdn.net"]


def test_freshworks_origin_defaults_to_the_cdn_freshworks_documents(settings):
    # developers.freshworks.com › Guides › Solve CORS errors: "The Freshworks apps are loaded
    # with a CDN domain d3h0owdjgzys62.cloudfront.net" (docs/threat-model.md)
    assert settings.FRESHWORKS_APP_FRAME_ORIGINS == ["https://d3h0owdjgzys62.cloudfront.net"]
    del settings.FRESHWORKS_APP_FRAME_ORIGINS
    assert framing.freshworks_app_frame_origins() == ["https://d3h0owdjgzys62.cloudfront.net"]


def test_freshworks_origins_from_the_environment(monkeypatch):
    from billing_app.settings import env_list

    monkeypatch.setenv(
        "BILLING_DESK_FRESHWORKS_APP_FRAME_ORIGINS", "https://a.example-cdn.net, https://b.net"
    )
    assert env_list("BILLING_DESK_FRESHWORKS_APP_FRAME_ORIGINS") == [
        "https://a.example-cdn.net",
        "https://b.net",
    ]


def test_no_freshworks_origin_leaves_only_the_account(settings):
    # the narrowest setting: an empty list; the panel then loads only where Freshdesk
    # itself is every ancestor
    settings.FRESHWORKS_APP_FRAME_ORIGINS = []
    assert framing.freshworks_app_frame_origins() == []


def test_freshdesk_panel_and_error_page_use_the_configured_origin(
    settings, client, freshdesk_installation
):
    from helpdesk_connectors.freshdesk.connector import FreshdeskConnector
    from helpdesk_connectors.freshdesk.views import error_frame_origins

    settings.FRESHWORKS_APP_FRAME_ORIGINS = ["https://apps.example-cdn.net"]
    assert FreshdeskConnector().frame_ancestors(freshdesk_installation) == [
        freshdesk_installation.base_url,
        "https://apps.example-cdn.net",
    ]
    assert error_frame_origins() == ["https://*.freshdesk.com", "https://apps.example-cdn.net"]
    response = client.post("/freshdesk/panel/", {"token": "forged"})
    assert response["Content-Security-Policy"].endswith(
        "frame-ancestors https://*.freshdesk.com https://apps.example-cdn.net"
    )


def test_demo_mode_with_debug_off_is_a_check_error(settings):
    settings.DEMO_MODE, settings.DEBUG = True, False
    errors = demo_connector_off_in_production(None)
    assert [e.id for e in errors] == ["helpdesk_connectors.E001"]
    assert errors[0].level == checks.ERROR


def test_demo_mode_with_debug_on_passes(settings):
    settings.DEMO_MODE, settings.DEBUG = True, True
    assert demo_connector_off_in_production(None) == []
    settings.DEMO_MODE, settings.DEBUG = False, False
    assert demo_connector_off_in_production(None) == []


def test_the_check_is_registered(settings):
    settings.DEMO_MODE, settings.DEBUG = True, False
    ids = [e.id for e in checks.run_checks(tags=[checks.Tags.security])]
    assert "helpdesk_connectors.E001" in ids


def test_connector_settings_are_checked(settings):
    assert connectors_configured(None) == []
    settings.HELPDESK_CONNECTORS = {
        "zendesk": "helpdesk_connectors.freshdesk.connector.FreshdeskConnector",
        "ghost": "helpdesk_connectors.nowhere.Ghost",
    }
    ids = sorted(e.id for e in connectors_configured(None))
    assert ids == ["helpdesk_connectors.E002", "helpdesk_connectors.E003"]


# --- the frame-origin setting: exact https origins only ---------------------------------------

BAD_FRAME_ORIGINS = [
    "https://*",
    "https://*.cloudfront.net",
    "*",
    "https://d3h0owdjgzys62.cloudfront.*",
    "http://d3h0owdjgzys62.cloudfront.net",
    "d3h0owdjgzys62.cloudfront.net",
    "//d3h0owdjgzys62.cloudfront.net",
    "wss://d3h0owdjgzys62.cloudfront.net",
    "https://d3h0owdjgzys62.cloudfront.net/app-assets",
    "https://d3h0owdjgzys62.cloudfront.net/?x=1",
    "https://d3h0owdjgzys62.cloudfront.net#frame",
    "https://user@d3h0owdjgzys62.cloudfront.net",
    "https://d3h0owdjgzys62.cloudfront.net:0",
    "https://d3h0owdjgzys62.cloudfront.net:99999",
    "https://d3h0owdjgzys62.cloudfront.net:443x",
    "https://cdn",
    "https://203.0.113.7",
    "https://-bad.example.net",
    "https://a.example.net https://b.example.net",
    "https://a.example.net;script-src *",
    "'self'",
    "https:",
]


@pytest.mark.parametrize("origin", BAD_FRAME_ORIGINS)
def test_a_frame_origin_that_is_not_exactly_https_host_is_refused(settings, origin):
    settings.FRESHWORKS_APP_FRAME_ORIGINS = ["https://d3h0owdjgzys62.cloudfront.net", origin]

    # the system check names the setting and the value
    errors = framing.freshworks_frame_origins_valid(None)
    assert [e.id for e in errors] == ["helpdesk_connectors.E005"]
    assert "FRESHWORKS_APP_FRAME_ORIGINS" in errors[0].msg and repr(origin) in errors[0].msg
    # and the panel never sends it: reading the setting refuses it
    with pytest.raises(ImproperlyConfigured, match="FRESHWORKS_APP_FRAME_ORIGINS"):
        framing.freshworks_app_frame_origins()


def test_a_wildcard_origin_is_named_as_a_wildcard(settings):
    settings.FRESHWORKS_APP_FRAME_ORIGINS = ["https://*.cloudfront.net"]
    (error,) = framing.freshworks_frame_origins_valid(None)
    assert "wildcard" in error.msg


@pytest.mark.parametrize(
    ("configured", "read"),
    [
        (["https://d3h0owdjgzys62.cloudfront.net"], ["https://d3h0owdjgzys62.cloudfront.net"]),
        (["https://Apps.Example-CDN.net/"], ["https://apps.example-cdn.net"]),
        (["https://apps.example-cdn.net:8443"], ["https://apps.example-cdn.net:8443"]),
        (["", "https://a.example.net"], ["https://a.example.net"]),
        ([], []),
    ],
)
def test_exact_https_origins_pass(settings, configured, read):
    settings.FRESHWORKS_APP_FRAME_ORIGINS = configured
    assert framing.freshworks_frame_origins_valid(None) == []
    assert framing.freshworks_app_frame_origins() == read


def test_a_single_string_setting_is_refused(settings):
    settings.FRESHWORKS_APP_FRAME_ORIGINS = "https://d3h0owdjgzys62.cloudfront.net"
    assert [e.id for e in framing.freshworks_frame_origins_valid(None)] == [
        "helpdesk_connectors.E005"
    ]


def test_the_frame_origin_check_is_registered(settings):
    settings.FRESHWORKS_APP_FRAME_ORIGINS = ["https://*.cloudfront.net"]
    ids = [e.id for e in checks.run_checks(tags=[checks.Tags.security])]
    assert "helpdesk_connectors.E005" in ids


def test_a_freshdesk_error_page_is_never_framed_by_a_wildcard_setting(settings, client):
    settings.FRESHWORKS_APP_FRAME_ORIGINS = ["https://*.cloudfront.net"]
    client.raise_request_exception = False
    response = client.post("/freshdesk/panel/", {"token": "forged"})
    assert "cloudfront" not in response.get("Content-Security-Policy", "")
