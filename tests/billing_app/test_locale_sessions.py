"""The agent's language from the helpdesk profile to every request (issue 16).

Zendesk's ``user.locale`` and Freshdesk's ``contact.language`` (read server-side at sign-in,
bodies shaped like the real APIs') are signed into the app session token; the panel page
and every API answer are in that language — whatever the browser's ``Accept-Language``
or language cookie say — and nothing of it leaks into the next request. A language
Billing Desk has no catalog for is English. A new profile language arrives with the next
sign-in, also when the agent's grant is served from the auth cache.
"""

from __future__ import annotations

import json

import pytest
from django.core import signing
from django.core.cache import cache
from django.utils import translation
from rest_framework.exceptions import MethodNotAllowed

from billing_app.locales import customer_language, language_normalise, message_language
from billing_app.models import AgentMembership
from helpdesk_connectors import sessions

from ..helpdesk_connectors import conftest as helpdesk
from ..helpdesk_connectors.conftest import freshdesk_device_enroll
from ..helpdesk_support import FRESHDESK_DOMAIN, FRESHDESK_SECRET

# The connector tests' fixtures (keys, installations, signed tokens, the helpdesks' APIs).
rsa_key = helpdesk.rsa_key
public_pem = helpdesk.public_pem
zendesk_installation = helpdesk.zendesk_installation
zendesk_token = helpdesk.zendesk_token
zendesk_agent_api = helpdesk.zendesk_agent_api
freshdesk_installation = helpdesk.freshdesk_installation
freshdesk_agent_api = helpdesk.freshdesk_agent_api
SIDEBAR = "/zendesk/sidebar/"
FRESHDESK_SESSION = "/freshdesk/session/"
FRESHDESK_PANEL = "/freshdesk/panel/"
ME = "/api/v1/me/"
GERMAN_REFUSAL = "Ihre Rolle oder Ihr Zugriff hat sich geändert; öffnen Sie die App erneut."


@pytest.fixture(autouse=True)
def _clean_cache_and_language():
    cache.clear()
    yield
    cache.clear()
    translation.activate("en")


def zendesk_open(client, zendesk_token, **headers):
    response = client.post(SIDEBAR, {"token": zendesk_token(), "ticket_id": "4711"}, **headers)
    assert response.status_code == 200, response.content
    return response


def token_of(response) -> str:
    return response.context["app_token"]


def api(client, token, method="get", path=ME, **headers):
    return getattr(client, method)(path, HTTP_AUTHORIZATION=f"Bearer {token}", **headers)


def message(response) -> str:
    return response.json()["error"]["message"]


def method_not_allowed(language: str) -> str:
    with translation.override(language):
        return str(MethodNotAllowed("DELETE").detail)


def test_zendesk_user_locale_de_opens_a_german_panel_and_german_api_answers(
    client, zendesk_installation, zendesk_token, zendesk_agent_api
):
    # given Zendesk says agent 35436's locale is "de" (the browser asks for English)
    zendesk_agent_api(35436, locale="de")

    # when the sidebar opens
    response = zendesk_open(client, zendesk_token, HTTP_ACCEPT_LANGUAGE="en")

    # then the panel page is German, and the token carries the language
    assert response["Content-Language"] == "de"
    assert '<html lang="de"' in response.content.decode()
    token = token_of(response)
    assert sessions.verify(token).language == "de"

    # and the API answers in German whatever the request says
    me = api(client, token, HTTP_ACCEPT_LANGUAGE="en", HTTP_COOKIE="django_language=en")
    assert me.status_code == 200
    assert me["Content-Language"] == "de"
    refused = api(client, token, "delete", HTTP_ACCEPT_LANGUAGE="en")
    assert refused.status_code == 405
    assert message(refused) == method_not_allowed("de") != method_not_allowed("en")
    # a refusal of the grant is in the agent's language too
    AgentMembership.objects.filter(user__username="zendesk:acme:35436").update(role_version=99)
    gone = api(client, token)
    assert gone.status_code == 401
    assert message(gone) == GERMAN_REFUSAL


@pytest.mark.parametrize("locale", ["de-DE", "de_AT", "DE"])
def test_regional_german_locales_are_german(
    client, zendesk_installation, zendesk_token, zendesk_agent_api, locale
):
    zendesk_agent_api(35436, locale=locale)
    assert sessions.verify(token_of(zendesk_open(client, zendesk_token))).language == "de"


@pytest.mark.parametrize(
    ("locale", "signed"), [("pt-BR", ""), ("en-US", "en"), ("", ""), (None, ""), ("x" * 80, "")]
)
def test_a_locale_without_a_catalog_is_english(
    client, zendesk_installation, zendesk_token, zendesk_agent_api, locale, signed
):
    # given a Zendesk agent whose locale we have no German for (or none at all)
    zendesk_agent_api(35436, locale=locale)

    # when the panel opens from a German browser
    response = zendesk_open(client, zendesk_token, HTTP_ACCEPT_LANGUAGE="de")

    # then the panel and the API are English (the profile decides, not the browser)
    assert response["Content-Language"] == "en"
    assert '<html lang="en"' in response.content.decode()
    token = token_of(response)
    assert sessions.verify(token).language == signed
    refused = api(client, token, "delete", HTTP_ACCEPT_LANGUAGE="de")
    assert message(refused) == method_not_allowed("en")


def test_freshdesk_contact_language_de_gives_a_german_session_and_panel(
    client, freshdesk_installation, freshdesk_agent_api
):
    # given Freshdesk says agent 43000123's contact.language is "de"
    freshdesk_agent_api(43000123, contact={"language": "de"})
    device = freshdesk_device_enroll(freshdesk_installation)  # this browser is enrolled (issue 17)

    # when the app frame asks for a session, then opens the panel with it
    body = {"agent_id": 43000123, "domain": FRESHDESK_DOMAIN, "ticket_id": 812}
    session = client.post(
        FRESHDESK_SESSION,
        data=json.dumps({**body, "device_credential": device}),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"BillingDeskSecret {FRESHDESK_SECRET}",
    )
    assert session.status_code == 200, session.content
    token = session.json()["token"]
    assert sessions.verify(token).language == "de"
    panel = client.post(
        FRESHDESK_PANEL, {"token": token, "ticket_id": "812"}, HTTP_ACCEPT_LANGUAGE="en"
    )

    # then the panel page and the API are German
    assert panel.status_code == 200, panel.content
    assert panel["Content-Language"] == "de"
    assert '<html lang="de"' in panel.content.decode()
    assert message(api(client, token, "delete")) == method_not_allowed("de")


def test_the_client_cannot_change_the_tokens_language(
    client, zendesk_installation, zendesk_token, zendesk_agent_api
):
    # given an English agent's token
    zendesk_agent_api(35436, locale="en-US")
    token = token_of(zendesk_open(client, zendesk_token))

    # when the client asks for German every way a browser can
    refused = api(
        client,
        token,
        "delete",
        HTTP_ACCEPT_LANGUAGE="de-DE,de;q=0.9",
        HTTP_COOKIE="django_language=de",
        QUERY_STRING="lang=de",
    )

    # then the answer is English
    assert refused["Content-Language"] == "en"
    assert message(refused) == method_not_allowed("en")

    # and a token whose claims were edited to say German is refused outright
    payload = signing.loads(token, salt=sessions.SALT)
    payload["l"] = "de"
    unsigned, _, _signature = token.rpartition(":")
    forged_body = signing.dumps(payload, salt=sessions.SALT, compress=True).rsplit(":", 2)[0]
    forged = f"{forged_body}:{unsigned.rsplit(':', 1)[1]}:{_signature}"
    assert api(client, forged).status_code == 401


def test_the_language_does_not_leak_into_the_next_request(
    client, zendesk_installation, zendesk_token, zendesk_agent_api
):
    zendesk_agent_api(35436, locale="de")
    token = token_of(zendesk_open(client, zendesk_token))
    assert api(client, token)["Content-Language"] == "de"

    # the request finished: the thread is back in the language it had before
    assert translation.get_language() != "de"
    # and an anonymous request from an English browser is English
    refused = client.delete(ME, HTTP_ACCEPT_LANGUAGE="en")
    assert refused["Content-Language"] == "en"


def test_a_new_profile_language_arrives_with_the_next_sign_in_through_the_auth_cache(
    client, settings, zendesk_installation, zendesk_token, zendesk_agent_api, http
):
    # given the app session cache is on, and an English agent's grant is cached
    settings.APP_SESSION_CACHE_SECONDS = 120
    zendesk_agent_api(35436, locale="en-US")
    english = token_of(zendesk_open(client, zendesk_token))
    assert api(client, english).status_code == 200
    assert api(client, english)["Content-Language"] == "en"

    # when the agent switches their Zendesk profile to German and opens a ticket again
    # (after the connector's minute-long profile cache: the next Zendesk read)
    http.reset()
    zendesk_agent_api(35436, locale="de")
    cache.delete(f"hd:zendesk:agent:{zendesk_installation.pk}:{zendesk_installation.version}:35436")
    german = token_of(zendesk_open(client, zendesk_token))

    # then the new session is German — the cached grant holds no language to go stale
    assert sessions.verify(german).language == "de"
    assert api(client, german)["Content-Language"] == "de"
    assert message(api(client, german, "delete")) == method_not_allowed("de")
    # and the earlier token stays what it was signed as until it expires
    assert api(client, english)["Content-Language"] == "en"


def test_the_demo_agent_speaks_the_host_pages_language(client, settings, make_workspace):
    settings.DEMO_MODE = True
    workspace = make_workspace("demo-lang")

    def demo_session(**extra):
        body = {"role": "l1", "workspace": workspace.slug, **extra}
        return client.post("/demo/session/", data=json.dumps(body), content_type="application/json")

    # the session body's lang, else the language the host page's switcher stored
    assert sessions.verify(demo_session(lang="de").json()["token"]).language == "de"
    assert sessions.verify(demo_session().json()["token"]).language == "en"
    host = client.get("/demo/", {"lang": "de"})
    assert host.cookies["django_language"].value == "de"
    assert sessions.verify(demo_session().json()["token"]).language == "de"
    # a tag that is not one is refused
    assert demo_session(lang="<script>").status_code == 401


def test_an_entry_refused_before_any_agent_is_known_answers_in_the_browsers_language(
    client, zendesk_installation
):
    # no verified agent yet: the page the sidebar shows follows the browser's Accept-Language
    response = client.post(SIDEBAR, {}, HTTP_ACCEPT="text/html", HTTP_ACCEPT_LANGUAGE="de")
    assert response.status_code == 401
    page = response.content.decode()
    assert '<html lang="de"' in page
    assert "Billing Desk konnte diese Sitzung nicht überprüfen" in page
    assert "Laden Sie das Ticket neu" in page
    english = client.post(SIDEBAR, {}, HTTP_ACCEPT="text/html", HTTP_ACCEPT_LANGUAGE="en")
    assert "Billing Desk could not verify this session" in english.content.decode()


def test_only_a_configured_language_is_signed_and_a_malformed_claim_is_refused(db):
    german = sessions.mint(
        user_id=1, installation_id=None, installation_version=None, grant={}, language="de"
    )
    assert german.language == "de" and sessions.verify(german.token).language == "de"
    # a language without a catalog is not signed at all: the session is in the default one
    french = sessions.mint(
        user_id=1, installation_id=None, installation_version=None, grant={}, language="fr"
    )
    assert french.language == "" and "l" not in signing.loads(french.token, salt=sessions.SALT)
    # a signed claim of the wrong type is malformed
    odd = signing.dumps({"u": 1, "i": None, "iv": None, "g": {}, "l": 5}, salt=sessions.SALT)
    with pytest.raises(sessions.InvalidSession, match="malformed claims"):
        sessions.verify(odd)


@pytest.mark.parametrize(
    ("tag", "language"),
    [
        ("de", "de"),
        ("de-DE", "de"),
        ("de_AT", "de"),
        ("DE-ch", "de"),
        ("en-US", "en"),
        ("en", "en"),
        ("pt-BR", ""),
        ("", ""),
        (None, ""),
        (7, ""),
        ("de DE", ""),
        ("x" * 80, ""),
    ],
)
def test_helpdesk_and_stripe_tags_become_our_languages(tag, language):
    assert language_normalise(tag) == language


def test_the_customers_language_from_stripe_preferred_locales():
    assert customer_language(["fr-FR", "de-DE", "en"]) == "de"  # the first we have
    assert customer_language([]) == customer_language(None) == ""
    assert message_language(preferred_locales=["de-DE"], agent_language="en") == "de"
    assert message_language(preferred_locales=["fr"], agent_language="de-AT") == "de"
    assert message_language(preferred_locales=[], agent_language="pt-BR") == "en"
