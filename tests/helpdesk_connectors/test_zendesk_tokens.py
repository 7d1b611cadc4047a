"""Zendesk signed-URL tokens are single use and short-lived (issue 12).

A token that opened the panel once is refused the second time (401, code
``token_replayed``), also without the cache and when replayed concurrently (the
database's unique constraint decides), and a token whose ``exp - iat`` exceeds a
signed URL's lifetime plus the leeway — a 10-year ``exp`` — is refused before
Zendesk's API is asked anything.
"""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.utils import timezone

from helpdesk_connectors.entry import EntryRejected
from helpdesk_connectors.models import ConsumedEntryToken
from helpdesk_connectors.zendesk import single_use
from helpdesk_connectors.zendesk.connector import LEEWAY_SECONDS
from tests.concurrency import run_at_once

SIDEBAR = "/zendesk/sidebar/"
TEN_YEARS = 10 * 365 * 24 * 3600


def enter(client, token: str):
    """Zendesk's form POST, from a client that asks for JSON (not the iframe's HTML)."""
    return client.post(SIDEBAR, {"token": token}, HTTP_ACCEPT="application/json")


def assert_refused(response, code: str) -> None:
    # a 401 with the JSON error envelope naming the reason
    assert response.status_code == 401
    assert f'error="{code}"' in response["WWW-Authenticate"]
    assert response["Content-Type"].startswith("application/json")
    assert response.json()["error"]["code"] == code


@pytest.fixture
def agent(zendesk_installation, zendesk_agent_api, panel_template):
    zendesk_agent_api(35436)


def test_a_replayed_token_is_refused_the_second_time(client, agent, zendesk_token):
    # given a token that opened the panel
    token = zendesk_token()
    assert enter(client, token).status_code == 200
    sessions = User.objects.filter(username__startswith="zendesk:").count()

    # when the same token is posted again
    replay = enter(client, token)

    # then it is a 401 with a clear code, and no new session or user is made
    assert_refused(replay, "token_replayed")
    assert ConsumedEntryToken.objects.count() == 1
    assert User.objects.filter(username__startswith="zendesk:").count() == sessions


def test_a_token_without_jti_is_single_use_too(client, agent, zendesk_token):
    token = zendesk_token(jti=None)
    assert enter(client, token).status_code == 200
    assert_refused(enter(client, token), "token_replayed")


def test_two_distinct_tokens_of_one_agent_both_open_the_panel(client, agent, zendesk_token):
    assert enter(client, zendesk_token()).status_code == 200
    assert enter(client, zendesk_token()).status_code == 200
    assert ConsumedEntryToken.objects.count() == 2


def test_the_replay_is_refused_without_the_cache(client, agent, zendesk_token, settings):
    # given a cache that keeps nothing (Redis down degrades to misses)
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.dummy.DummyCache"}}
    token = zendesk_token()
    assert enter(client, token).status_code == 200

    # then the database still refuses the replay
    assert_refused(enter(client, token), "token_replayed")


def test_a_ten_year_token_is_refused_before_zendesk_is_asked(
    client, http, zendesk_installation, zendesk_token, panel_template
):
    now = int(time.time())

    response = enter(client, zendesk_token(iat=now, exp=now + TEN_YEARS))

    assert_refused(response, "token_lifetime_too_long")
    assert not [c for c in http.calls if "/api/v2/users/" in c.request.url]
    assert not ConsumedEntryToken.objects.exists()
    assert not User.objects.filter(username__startswith="zendesk:").exists()


def test_the_lifetime_limit_is_the_setting_plus_the_leeway(client, agent, zendesk_token, settings):
    # given signed URLs configured to live 120 s
    settings.ZENDESK_TOKEN_MAX_LIFETIME_SECONDS = 120
    now = int(time.time())

    # then 120 s + leeway is accepted and one second more is refused
    limit = 120 + LEEWAY_SECONDS
    assert enter(client, zendesk_token(iat=now, exp=now + limit)).status_code == 200
    assert_refused(
        enter(client, zendesk_token(iat=now, exp=now + limit + 1)), "token_lifetime_too_long"
    )


def test_expired_records_are_pruned_when_a_token_is_accepted(client, agent, zendesk_token):
    # given the record of a token that expired long ago
    ConsumedEntryToken.objects.create(
        connector="zendesk", digest="0" * 64, expires_at=timezone.now() - timedelta(hours=1)
    )

    assert enter(client, zendesk_token()).status_code == 200

    # then only the new token's record is left
    assert list(ConsumedEntryToken.objects.values_list("connector", flat=True)) == ["zendesk"]
    assert not ConsumedEntryToken.objects.filter(digest="0" * 64).exists()
    assert single_use.consumed_tokens_prune() == 0


def test_the_record_lives_until_exp_plus_leeway(client, agent, zendesk_token):
    now = int(time.time())
    assert enter(client, zendesk_token(iat=now, exp=now + 300)).status_code == 200
    record = ConsumedEntryToken.objects.get()
    assert record.expires_at.timestamp() == now + 300 + LEEWAY_SECONDS


@pytest.mark.postgres
@pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="needs PostgreSQL (DATABASE_URL) for concurrent transactions",
)
@pytest.mark.django_db(transaction=True)
def test_concurrent_replays_let_exactly_one_through():
    # given one token's claims presented by 8 requests at the same moment
    now = int(time.time())
    claims = {"iss": "acme.zendesk.com", "iat": now, "exp": now + 300, "jti": "one-token"}
    count = 8

    def consume(_i: int) -> str:
        try:
            single_use.token_consume(connector="zendesk", claims=claims, leeway=LEEWAY_SECONDS)
        except EntryRejected as exc:
            return exc.code
        return "accepted"

    # when they all consume it at once
    results = run_at_once(count, consume)

    # then the unique constraint lets exactly one through
    assert sorted(results, key=str) == ["accepted"] + ["token_replayed"] * (count - 1)
    assert ConsumedEntryToken.objects.count() == 1
