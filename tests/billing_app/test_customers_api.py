"""``/api/v1/customers/…``: lookup, pin, context and payment history over HTTP."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from guardian.shortcuts import remove_perm

from billing_app.catalog import Role
from billing_app.models import CustomerLink, MirrorCharge, MirrorCustomer, MirrorInvoice
from billing_app.providers.sandbox import objects as o
from billing_app.roles import workspace_role_groups
from billing_app.services import refresh
from billing_app.services.context_cache import customer_context_invalidate
from billing_app.services.mirror import mirror_upsert

from .context_support import (
    AS_OF,
    FakeStripe,
    forget_provider_health,
    seed_brief_day,
    stripe_acme_bundle,
)
from .stripe_support import make_stripe_workspace


@pytest.fixture
def seeded(db, settings):
    return seed_brief_day(settings)


ACME = "cus_sbx_acme"
STRIPE_ACME = "cus_RbAcmeCorp0001"


@pytest.fixture(autouse=True)
def _forget_provider_health(db):
    yield
    forget_provider_health()


def url(customer_id, what):
    return f"/api/v1/customers/{customer_id}/{what}/"


def error_code(response):
    return response.json()["error"]["code"]


# --- authentication, tenancy, permissions ----------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/api/v1/customers/lookup/?email=billing@acme.example"),
        ("post", url(ACME, "link")),
        ("get", url(ACME, "context")),
        ("get", url(ACME, "payments")),
    ],
)
def test_unauthenticated_requests_are_401(seeded, client, method, path):
    response = getattr(client, method)(
        path,
        {"email": "x@example.com"} if method == "post" else None,
        content_type="application/json",
    )

    assert response.status_code == 401
    assert error_code(response) == "not_authenticated"
    assert not CustomerLink.objects.exists()


def test_another_tenants_customer_is_404_and_nothing_leaks(seeded, make_workspace, api_as):
    # given another workspace with a customer of its own
    other = make_workspace("globex-co")
    mirror_upsert(
        workspace=other,
        obj=o.customer(
            id="cus_other_1",
            name="Other Co",
            email="ap@other.example",
            created=AS_OF,
            currency="usd",
        ),
    )
    acme_agent = api_as(seeded.workspace, Role.MANAGER)
    other_agent = api_as(other, Role.MANAGER)

    # when each asks for the other's customer
    responses = [
        acme_agent.get(url("cus_other_1", "context")),
        acme_agent.get(url("cus_other_1", "payments")),
        acme_agent.post(url("cus_other_1", "link"), {"email": "a@b.example"}, format="json"),
        other_agent.get(url(ACME, "context")),
        other_agent.get(url(ACME, "payments")),
    ]

    # then every answer is 404, and nothing was copied or pinned across tenants
    assert [r.status_code for r in responses] == [404] * 5
    assert {error_code(r) for r in responses} == {"customer_not_found"}
    assert not MirrorCustomer.objects.filter(
        workspace=seeded.workspace, stripe_id="cus_other_1"
    ).exists()
    assert not MirrorCustomer.objects.filter(workspace=other, stripe_id=ACME).exists()
    assert not CustomerLink.objects.exists()
    lookup = acme_agent.get("/api/v1/customers/lookup/", {"email": "ap@other.example"})
    assert lookup.json()["matches"] == []


def test_a_role_without_view_billing_reads_nothing(seeded, api_as):
    # given the L1 role lost the view_billing permission in this workspace
    group = workspace_role_groups(seeded.workspace)[Role.L1]
    remove_perm("billing_app.view_billing", group, seeded.workspace)
    agent = api_as(seeded.workspace, Role.L1)

    # then customers do not exist for them, and the lookup is forbidden
    assert agent.get(url(ACME, "context")).status_code == 404
    assert agent.get(url(ACME, "payments")).status_code == 404
    pin = agent.post(url(ACME, "link"), {"email": "x@example.com"}, format="json")
    assert pin.status_code == 404
    lookup = agent.get("/api/v1/customers/lookup/", {"email": "billing@acme.example"})
    assert (lookup.status_code, error_code(lookup)) == (403, "not_permitted")
    assert not CustomerLink.objects.exists()
    # nor do the previews, or an action's details
    for what in ("seats/preview", "discount/preview"):
        preview = agent.post(url(ACME, what), {"subscription_id": "sub_x"}, format="json")
        assert preview.status_code in (400, 404), preview.json()
        if preview.status_code == 400:
            full = {"subscription_id": "sub_x", "quantity": 5, "percent_off": 10}
            full["duration"] = "once"
            assert agent.post(url(ACME, what), full, format="json").status_code == 404
    detail = agent.get("/api/v1/actions/00000000-0000-4000-8000-000000000001/")
    assert (detail.status_code, error_code(detail)) == (403, "not_permitted")


# --- lookup and pins -------------------------------------------------------------------


def test_lookup_by_email_returns_every_match_with_what_to_pick_by(seeded, api_as):
    response = api_as(seeded.workspace, Role.L1).get(
        "/api/v1/customers/lookup/", {"email": "Billing@Stark.example", "ticket_id": "1009"}
    )

    assert response.status_code == 200
    body = response.json()
    assert [(m["name"], m["plan"]["display"], m["created"]) for m in body["matches"]] == [
        ("Stark Industries", "Pro ($149/month)", "2025-10-09"),
        ("Stark Retail", "Starter ($49/month)", "2024-09-15"),
    ]
    assert (body["ticket_id"], body["source"], body["pinned_customer_id"]) == (
        "1009",
        "mirror",
        None,
    )


def test_lookup_by_helpdesk_organization(seeded, api_as):
    response = api_as(seeded.workspace, Role.L1).get(
        "/api/v1/customers/lookup/", {"organization_id": "org-acme"}
    )

    assert [m["id"] for m in response.json()["matches"]] == [ACME]


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"email": "not-an-email"}, "invalid_email"),
        ({}, "lookup_key_required"),
        ({"email": "  "}, "lookup_key_required"),
    ],
)
def test_bad_lookups_are_400(seeded, api_as, params, code):
    response = api_as(seeded.workspace, Role.L1).get("/api/v1/customers/lookup/", params)

    assert (response.status_code, error_code(response)) == (400, code)


def test_pin_then_lookup_finds_the_pinned_customer_first(seeded, api_as):
    agent = api_as(seeded.workspace, Role.L2)

    pinned = agent.post(
        url("cus_sbx_stark_retail", "link"), {"email": "Tony@Stark.example"}, format="json"
    )
    moved = agent.post(
        url("cus_sbx_stark_ind", "link"), {"email": "tony@stark.example"}, format="json"
    )

    assert pinned.status_code == moved.status_code == 200
    assert moved.json()["key_value"] == "tony@stark.example"
    assert CustomerLink.objects.get().customer_id == "cus_sbx_stark_ind"  # one pin per email
    body = agent.get("/api/v1/customers/lookup/", {"email": "tony@stark.example"}).json()
    assert body["pinned_customer_id"] == "cus_sbx_stark_ind"
    assert [m["id"] for m in body["matches"]] == ["cus_sbx_stark_ind"]
    org = agent.post(url(ACME, "link"), {"organization_id": "zd-org-42"}, format="json")
    assert org.json()["key_type"] == "organization"
    assert (
        agent.get("/api/v1/customers/lookup/", {"organization_id": "zd-org-42"}).json()[
            "pinned_customer_id"
        ]
        == ACME
    )


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"email": "a@b.example", "organization_id": "7"}, "link_key_required"),
        ({}, "link_key_required"),
        ({"email": "nope"}, "invalid_email"),
        ({"email": ["a@b.example"]}, "invalid"),
    ],
)
def test_bad_pins_are_400_and_change_nothing(seeded, api_as, body, code):
    response = api_as(seeded.workspace, Role.L2).post(url(ACME, "link"), body, format="json")

    assert (response.status_code, error_code(response)) == (400, code)
    assert not CustomerLink.objects.exists()


def test_lookup_falls_back_to_the_provider_for_an_unknown_email(
    make_workspace, api_as, monkeypatch
):
    # given a Stripe workspace whose mirror is still empty
    workspace = make_stripe_workspace(make_workspace)
    fake = FakeStripe(workspace, bundles={STRIPE_ACME: stripe_acme_bundle()})
    monkeypatch.setattr("billing_app.services.customers.get_provider", lambda ws: fake)
    agent = api_as(workspace, Role.L1)

    body = agent.get("/api/v1/customers/lookup/", {"email": "billing@acme.example"}).json()

    assert body["source"] == "provider"
    assert [m["id"] for m in body["matches"]] == [STRIPE_ACME]
    assert not MirrorCustomer.objects.filter(workspace=workspace).exists()  # the lookup only reads

    fake.down = True
    down = agent.get("/api/v1/customers/lookup/", {"email": "billing@acme.example"}).json()
    assert (down["matches"], down["provider_status"]) == ([], "unavailable")


# --- context ---------------------------------------------------------------------------


def test_context_endpoint_answers_the_panel(seeded, api_as):
    response = api_as(seeded.workspace, Role.L1).get(url(ACME, "context"))

    assert response.status_code == 200
    body = response.json()
    assert body["account"]["plan"]["display"] == "Enterprise Pro ($2,400/month)"
    assert body["lifetime_value"]["total_revenue"]["amount"] == 13_680_000
    assert (body["stale"], body["refreshing"], body["provider_status"]) == (False, False, "ok")
    assert body["as_of"].endswith("Z")
    assert len(body["payment_history"]["items"]) == 6


def _more_history(workspace, count):
    customer = MirrorCustomer.objects.get(workspace=workspace, stripe_id=ACME).data
    pm = customer["invoice_settings"]["default_payment_method"]
    for n in range(count):
        when = AS_OF - timedelta(days=40 + n)
        invoice = o.invoice(
            id=f"in_extra_{n}",
            customer=customer,
            number=f"X-{n}",
            created=when,
            status="paid",
            period_start=when,
            period_end=when,
            paid_at=when,
            payment_intent=f"pi_extra_{n}",
            lines=[
                o.line_item(
                    id=f"il_extra_{n}",
                    invoice_id=f"in_extra_{n}",
                    amount=1_000,
                    currency="usd",
                    description="One-off",
                    period_start=when,
                    period_end=when,
                )
            ],
        )
        mirror_upsert(workspace=workspace, obj=invoice)
        mirror_upsert(
            workspace=workspace,
            obj=o.charge(
                id=f"ch_extra_{n}",
                customer_id=ACME,
                amount=1_000,
                currency="usd",
                created=when,
                payment_method=pm,
                payment_intent=f"pi_extra_{n}",
            ),
        )


def test_context_query_count_is_bounded_and_independent_of_history(
    seeded, api_as, django_assert_max_num_queries
):
    agent = api_as(seeded.workspace, Role.L1)
    agent.get(url(ACME, "context"))  # warm caches (content types, permissions)
    # both reads below rebuild the snapshot (a write marked it stale): like for like
    customer_context_invalidate(workspace_id=seeded.workspace.pk, customer_id=ACME)

    with CaptureQueriesContext(connection) as before:
        assert agent.get(url(ACME, "context")).status_code == 200
    _more_history(seeded.workspace, 50)
    assert MirrorInvoice.objects.filter(customer_id=ACME).count() == 62
    # a rebuild: the snapshot read, the freshness checks, the build and its store
    with django_assert_max_num_queries(17), CaptureQueriesContext(connection) as after:
        response = agent.get(url(ACME, "context"))

    assert response.status_code == 200
    assert len(after.captured_queries) == len(before.captured_queries)
    assert response.json()["lifetime_value"]["total_revenue"]["amount"] == 13_680_000 + 50 * 1_000


def test_stale_context_answers_at_once_and_refreshes_in_the_background(
    seeded, api_as, django_capture_on_commit_callbacks
):
    # given Acme's mirror was last synced an hour ago
    old = timezone.now() - timedelta(hours=1)
    MirrorCustomer.objects.filter(stripe_id=ACME).update(bundle_synced_at=old)
    customer_context_invalidate(workspace_id=seeded.workspace.pk, customer_id=ACME)
    agent = api_as(seeded.workspace, Role.L1)

    # when two panels open it at once
    with django_capture_on_commit_callbacks() as queued:
        first = agent.get(url(ACME, "context")).json()
        second = agent.get(url(ACME, "context")).json()

    # then both answer from the mirror at once, and one refresh is queued
    assert (first["stale"], first["refreshing"]) == (True, True)
    assert (second["stale"], second["refreshing"]) == (True, True)
    assert first["lifetime_value"]["total_revenue"]["amount"] == 13_680_000
    assert len(queued) == 1
    assert MirrorCustomer.objects.get(stripe_id=ACME).bundle_synced_at == old

    # when the queued refresh runs
    queued[0]()

    # then the mirror is fresh again and the next answer is not stale
    assert MirrorCustomer.objects.get(stripe_id=ACME).bundle_synced_at > old
    third = agent.get(url(ACME, "context")).json()
    assert (third["stale"], third["refreshing"]) == (False, False)


def test_a_customer_not_mirrored_yet_is_fetched_from_the_provider(
    make_workspace, api_as, monkeypatch
):
    # given a Stripe workspace that has never seen this customer
    workspace = make_stripe_workspace(make_workspace)
    fake = FakeStripe(workspace, bundles={STRIPE_ACME: stripe_acme_bundle()})
    monkeypatch.setattr(refresh, "get_provider", lambda ws: fake)
    agent = api_as(workspace, Role.L1)

    # when the panel opens it
    response = agent.get(url(STRIPE_ACME, "context"))

    # then the bundle was fetched once, mirrored, and answered
    assert response.status_code == 200
    body = response.json()
    assert fake.calls == [("fetch_customer_bundle", STRIPE_ACME)]
    assert body["customer"]["name"] == "Acme Corp"
    assert body["account"]["plan"]["display"] == "Enterprise Pro ($2,400/month)"
    assert body["lifetime_value"]["mrr"]["amount"] == 340_000
    assert len(body["subscription"]["addons"]) == 3
    assert (body["stale"], body["provider_status"]) == (False, "ok")
    mirrored = MirrorCustomer.objects.get(workspace=workspace, stripe_id=STRIPE_ACME)
    assert mirrored.bundle_synced_at is not None
    assert MirrorCharge.objects.filter(workspace=workspace, customer_id=STRIPE_ACME).count() == 1

    # and an id the provider does not know is a 404
    missing = agent.get(url("cus_NotInThisAccount", "context"))
    assert (missing.status_code, error_code(missing)) == (404, "customer_not_found")


def test_provider_down_with_nothing_mirrored_is_503(make_workspace, api_as, monkeypatch):
    workspace = make_stripe_workspace(make_workspace)
    fake = FakeStripe(workspace, bundles={STRIPE_ACME: stripe_acme_bundle()}, down=True)
    monkeypatch.setattr(refresh, "get_provider", lambda ws: fake)

    response = api_as(workspace, Role.L1).get(url(STRIPE_ACME, "context"))

    assert (response.status_code, error_code(response)) == (503, "provider_unavailable")
    assert not MirrorCustomer.objects.filter(workspace=workspace).exists()


def test_provider_down_with_stale_data_shows_the_mirror_with_a_banner(
    make_workspace, api_as, monkeypatch, django_capture_on_commit_callbacks
):
    # given a mirrored, stale customer and Stripe not answering
    workspace = make_stripe_workspace(make_workspace)
    fake = FakeStripe(workspace, bundles={STRIPE_ACME: stripe_acme_bundle()})
    monkeypatch.setattr(refresh, "get_provider", lambda ws: fake)
    agent = api_as(workspace, Role.L1)
    agent.get(url(STRIPE_ACME, "context"))
    MirrorCustomer.objects.filter(stripe_id=STRIPE_ACME).update(
        bundle_synced_at=timezone.now() - timedelta(hours=2)
    )
    customer_context_invalidate(workspace_id=workspace.pk, customer_id=STRIPE_ACME)
    fake.down = True

    # when the panel opens it and the background refresh fails
    with django_capture_on_commit_callbacks(execute=True):
        agent.get(url(STRIPE_ACME, "context"))
    response = agent.get(url(STRIPE_ACME, "context"))

    # then the mirrored data is shown, flagged, with the banner alert
    body = response.json()
    assert response.status_code == 200
    assert (body["provider_status"], body["stale"]) == ("unavailable", True)
    assert body["alerts"][0]["type"] == "provider_down"
    assert body["account"]["plan"]["display"] == "Enterprise Pro ($2,400/month)"


# --- payments --------------------------------------------------------------------------


def test_payments_page_with_a_cursor(seeded, api_as):
    agent = api_as(seeded.workspace, Role.L1)

    first = agent.get(url(ACME, "payments")).json()
    second = agent.get(url(ACME, "payments"), {"cursor": first["next_cursor"]}).json()

    assert [r["invoice_number"] for r in first["items"]][-1] == "INV-2025-08"
    assert [r["invoice_number"] for r in second["items"]][0] == "INV-2025-07"
    assert len(first["items"]) + len(second["items"]) == 12
    assert second["next_cursor"] is None


@pytest.mark.parametrize("cursor", ["garbage", "eyJjIjoiY3VzX3NieF9hY21lIn0:1abc:xyz"])
def test_a_bad_cursor_is_400(seeded, api_as, cursor):
    response = api_as(seeded.workspace, Role.L1).get(url(ACME, "payments"), {"cursor": cursor})

    assert (response.status_code, error_code(response)) == (400, "invalid_cursor")


def test_a_cursor_of_another_customer_is_refused(seeded, api_as):
    agent = api_as(seeded.workspace, Role.L1)
    acme_cursor = agent.get(url(ACME, "payments")).json()["next_cursor"]

    response = agent.get(url("cus_sbx_globex", "payments"), {"cursor": acme_cursor})

    assert (response.status_code, error_code(response)) == (400, "invalid_cursor")


def test_the_openapi_schema_documents_the_customer_endpoints(db, client):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/json").json()

    paths = schema["paths"]
    assert "/api/v1/customers/lookup/" in paths
    for what in ("link", "context", "payments"):
        assert any(p.endswith(f"/{what}/") and "customer_id" in p for p in paths)
    context = next(p for p in paths if p.endswith("/context/"))
    assert "200" in paths[context]["get"]["responses"]
