"""Refund-request links (issue 18): signed, expiring, revocable, audited, rate-limited; the
page behind a bad link reveals nothing."""

from __future__ import annotations

from datetime import timedelta
from unittest import mock
from urllib.parse import urlsplit

import pytest
from django.core import signing
from django.utils import timezone

from billing_app.errors import NotFound
from billing_app.models import AuditEntry, SelfServiceLink
from billing_app.services.customer_tickets import refund_link_create
from billing_app.services.refund_links import (
    LINK_SALT,
    LINKS_PER_CUSTOMER_PER_HOUR,
    LinkRateLimited,
    refund_link_read,
    refund_link_revoke,
    refund_link_token,
    refund_link_url,
)
from tests.billing_app.actions_support import account_seed


@pytest.fixture
def seeded(workspace):
    account_seed(workspace)
    return workspace


def _token(url: str) -> str:
    return url.rstrip("/").rsplit("/", 1)[-1]


def test_a_link_is_created_audited_and_read_back(seeded, settings):
    link, url = refund_link_create(workspace=seeded, customer_id="cus_acme", source="panel")
    assert url.startswith(f"{settings.PUBLIC_BASE_URL}/billing/refund/")
    assert link.expires_at - timezone.now() > timedelta(days=seeded.self_service_link_days - 1)
    assert refund_link_read(_token(url)) == link
    entry = AuditEntry.objects.get(subject_type="self_service_link")
    assert entry.event == "self_service_link.created" and entry.subject_id == str(link.pk)
    # The token names the link only: no customer, email or amount in it.
    payload = signing.loads(_token(url), salt=LINK_SALT)
    assert payload == {"l": str(link.pk)}


def test_a_link_has_one_url_whenever_it_is_asked_for(seeded):
    link, url = refund_link_create(workspace=seeded, customer_id="cus_acme", source="panel")
    # Django's signer would stamp the clock's second; the link's token carries its creation.
    with mock.patch("django.core.signing.time.time", return_value=link.created_at.timestamp() + 7):
        assert refund_link_url(link) == url
    # Still Django's format, read by ``signing.loads`` with its maximum age.
    loaded = signing.loads(_token(url), salt=LINK_SALT, max_age=timedelta(seconds=60))
    assert loaded == {"l": str(link.pk)}


def test_an_unknown_customer_gets_no_link(seeded):
    with pytest.raises(NotFound):
        refund_link_create(workspace=seeded, customer_id="cus_nobody", source="panel")
    assert not SelfServiceLink.objects.exists()


def test_another_workspaces_customer_gets_no_link(seeded, make_workspace):
    other = make_workspace("globex")
    with pytest.raises(NotFound):
        refund_link_create(workspace=other, customer_id="cus_acme", source="panel")


@pytest.mark.parametrize(
    "mangle",
    [
        lambda t: t[:-2] + ("AA" if not t.endswith("AA") else "BB"),  # altered signature
        lambda t: "x" + t,  # altered payload
        lambda t: signing.dumps({"l": t}, salt="billing_app.card_prompts.update"),  # other salt
        lambda t: "",
        lambda t: "a" * 600,
    ],
)
def test_a_forged_or_foreign_token_reads_as_nothing(seeded, mangle):
    link, url = refund_link_create(workspace=seeded, customer_id="cus_acme", source="panel")
    assert refund_link_read(mangle(_token(url))) is None


def test_an_expired_link_reads_as_nothing(seeded):
    link, url = refund_link_create(workspace=seeded, customer_id="cus_acme", source="panel")
    assert refund_link_read(_token(url), now=link.expires_at - timedelta(seconds=1)) == link
    assert refund_link_read(_token(url), now=link.expires_at) is None


def test_a_revoked_link_reads_as_nothing_and_the_revocation_is_audited(seeded):
    link, url = refund_link_create(workspace=seeded, customer_id="cus_acme", source="panel")
    refund_link_revoke(link=link)
    refund_link_revoke(link=link)  # twice: one revocation
    assert refund_link_read(_token(url)) is None
    assert AuditEntry.objects.filter(event="self_service_link.revoked").count() == 1


def test_a_deleted_row_reads_as_nothing(seeded):
    link, url = refund_link_create(workspace=seeded, customer_id="cus_acme", source="panel")
    token = refund_link_token(link)
    SelfServiceLink.objects.filter(pk=link.pk).delete()
    assert refund_link_read(token) is None


def test_links_per_customer_are_rate_limited(seeded):
    for _ in range(LINKS_PER_CUSTOMER_PER_HOUR):
        refund_link_create(workspace=seeded, customer_id="cus_acme", source="widget")
    with pytest.raises(LinkRateLimited) as excinfo:
        refund_link_create(workspace=seeded, customer_id="cus_acme", source="widget")
    assert excinfo.value.status == 429
    # Another customer is not held back; an hour later this one is not either.
    refund_link_create(workspace=seeded, customer_id="cus_other", source="widget")
    later = timezone.now() + timedelta(hours=1, seconds=1)
    refund_link_create(workspace=seeded, customer_id="cus_acme", source="widget", now=later)


def test_an_unknown_source_is_refused(seeded):
    with pytest.raises(Exception) as excinfo:
        refund_link_create(workspace=seeded, customer_id="cus_acme", source="carrier-pigeon")
    assert getattr(excinfo.value, "code", "") == "invalid_source"


@pytest.mark.parametrize("token", ["nonsense", "a" * 300])
def test_the_page_behind_a_bad_link_is_generic(client, seeded, token):
    response = client.get(f"/billing/refund/{token}/")
    assert response.status_code == 404
    body = response.content.decode()
    assert "This link is not valid" in body and "Acme" not in body
    assert "frame-ancestors 'none'" in response["Content-Security-Policy"]


def test_the_page_behind_an_expired_link_is_the_same_generic_page(client, seeded):
    link, url = refund_link_create(workspace=seeded, customer_id="cus_acme", source="panel")
    SelfServiceLink.objects.filter(pk=link.pk).update(expires_at=timezone.now())
    expired = client.get(urlsplit(url).path)
    forged = client.get("/billing/refund/nonsense/")
    assert expired.status_code == forged.status_code == 404
    assert expired.content == forged.content
