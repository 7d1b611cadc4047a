"""The snapshot build's fast JSON conversion (``selectors.context.serialize_fast``) equals
the API's serializer exactly, and the answer spliced from the stored text is the answer a
from-scratch build gives (issue 15)."""

from __future__ import annotations

import json
import zoneinfo
from datetime import UTC, date, datetime

import pytest
from django.utils import timezone
from rest_framework.renderers import JSONRenderer

from billing_app.catalog import Role
from billing_app.models import (
    CustomerSnapshot,
    MirrorCustomer,
)
from billing_app.providers.sandbox.control import sandbox_control_set
from billing_app.selectors.context import customer_context
from billing_app.selectors.context.serialize import PER_REQUEST_FIELDS, ContextSerializer
from billing_app.selectors.context.serialize_fast import context_to_json
from billing_app.services import refresh
from billing_app.services.snapshots import context_body

from .context_support import (
    FakeStripe,
    acme_refund_awaiting_approval_under_monitoring,
    forget_provider_health,
    seed_brief_day,
    stripe_acme_bundle,
)
from .stripe_support import make_stripe_workspace

CONTEXT = "/api/v1/customers/{}/context/"
STRIPE_ACME = "cus_RbAcmeCorp0001"


@pytest.fixture(autouse=True)
def _forget_provider_health(db):
    yield
    forget_provider_health()


@pytest.fixture
def seeded(db, settings):
    return seed_brief_day(settings)


def drf(context: dict) -> dict:
    """What the API's serializer gives, minus the per-request fields."""
    data = dict(ContextSerializer(context).data)
    for name in PER_REQUEST_FIELDS:
        data.pop(name)
    return data


def assert_exact(context: dict) -> None:
    fast = context_to_json(context)
    slow = drf(context)
    assert fast == slow
    # and the same types, keys in the same order (True == 1 and 1.0 == 1 for ==)
    assert json.dumps(fast) == json.dumps(slow)
    assert context_body(context) == JSONRenderer().render(slow).decode()


def contexts(workspace, **kwargs) -> list[dict]:
    return [
        customer_context(workspace=workspace, customer=customer, **kwargs)
        for customer in MirrorCustomer.objects.filter(workspace=workspace).order_by("stripe_id")
    ]


def test_every_demo_customer_converts_exactly_as_the_serializer(seeded):
    built = contexts(seeded.workspace)
    assert len(built) >= 10
    for context in built:
        assert_exact(context)


def test_every_demo_customer_converts_exactly_in_another_time_zone(seeded):
    # DRF writes datetimes in the current time zone; so does the conversion
    with timezone.override(zoneinfo.ZoneInfo("America/New_York")):
        for context in contexts(seeded.workspace):
            assert_exact(context)


def test_approvals_actions_monitoring_and_an_outage_convert_exactly(seeded, sign_in):
    workspace = seeded.workspace
    membership, _ = sign_in(workspace, Role.L1, agent_id="77")
    acme_refund_awaiting_approval_under_monitoring(workspace, membership.user)
    sandbox_control_set(workspace=workspace, down=True, reason="drill")
    for context in contexts(workspace, provider_status="unavailable"):
        assert_exact(context)


def test_a_stripe_customer_converts_exactly(make_workspace, monkeypatch):
    workspace = make_stripe_workspace(make_workspace)
    fake = FakeStripe(workspace, bundles={STRIPE_ACME: stripe_acme_bundle()})
    monkeypatch.setattr(refresh, "get_provider", lambda ws: fake)
    refresh.customer_refresh(workspace_id=workspace.pk, customer_id=STRIPE_ACME)
    [context] = contexts(workspace)
    assert_exact(context)


def test_odd_shapes_convert_exactly():
    # missing nullable keys, None everywhere it may be, naive and aware datetimes, floats,
    # numbers as strings, undeclared keys, an empty payment page, unicode line separators
    money = {"amount": "1200", "currency": "USD", "exponent": 2, "display": "$12.00", "x": 1}
    context = {
        "customer": {
            "id": 42,
            "name": "Ünïcode\u2028Line",
            "email": "",
            "address": {k: "" for k in ("line1", "line2", "city", "state", "postal_code")}
            | {"country": "FR"},
            "address_display": "",
            "currency": "eur",
            "currency_exponent": 2,
            "tax_exempt": "none",
            "tax_ids": [{"id": None, "type": "eu_vat", "value": "FR123"}],
            "deleted": 0,
            "delinquent": "true",
            "created": date(2024, 2, 29),
            "monitoring_until": None,
        },
        "as_of": datetime(2026, 1, 15, 12, tzinfo=UTC),
        "stale": False,
        "refreshing": False,
        "provider_status": "ok",
        "now": datetime(2026, 1, 15, 12, tzinfo=UTC),
        "account": {
            "plan": None,
            "billing_cycle": None,
            "renews_at": None,
            "ends_at": None,
            "payment_method": None,
            "billing_email": "",
            "billing_address": "",
        },
        "payment_status": {
            "last_payment": None,
            "next_invoice": None,
            "outstanding_balance": money,
            "failures_12m": 0,
        },
        "payment_history": {"items": [], "next_cursor": None},
        "credits": {
            "available": money,
            "applied_this_cycle": money,
            "on_balance": [
                {"id": "c", "amount": money, "granted": money, "description": None, "date": None}
            ],
            "pending": [],
        },
        "subscription": None,
        "subscriptions": [],
        "lifetime_value": {
            "total_revenue": money,
            "months_active": 3,
            "mrr": money,
            "arr": money,
        },
        "churn_risk": {"level": "low", "label": "Low", "score": 0, "reasons": []},
        "alerts": [
            {
                "type": "payment_failed",
                "severity": "danger",
                "message": "m",
                "data": {"nested": [1, 2.5, None, "x"]},
            }
        ],
        "pending_approvals": [
            {
                "id": 1,
                "action_id": "a",
                "kind": "issue_refund",
                "amount": None,
                "requested_by": "x",
                "required_roles": ["manager"],
                "reason": "",
                "expires_at": datetime(2026, 1, 18, 12, 30, 15, 123456, tzinfo=UTC),
                "created_at": datetime(2026, 1, 15, 12, 0),
            }
        ],
        "recent_actions": [],
        "undeclared": "dropped",
    }
    assert_exact(context)
    with timezone.override(zoneinfo.ZoneInfo("Asia/Tokyo")):
        assert_exact(context)


def test_a_missing_required_key_fails_as_the_serializer_does():
    with pytest.raises(KeyError):
        context_to_json({"as_of": None})
    with pytest.raises(KeyError):
        ContextSerializer({"as_of": None}).data  # noqa: B018


def test_the_spliced_answer_is_the_json_of_a_from_scratch_build(seeded, api_as):
    agent = api_as(seeded.workspace, Role.MANAGER)
    for customer in MirrorCustomer.objects.filter(workspace=seeded.workspace):
        # a stored snapshot served (built at write time, or by the first read)
        agent.get(CONTEXT.format(customer.stripe_id))
        response = agent.get(CONTEXT.format(customer.stripe_id))
        assert response.status_code == 200
        assert response["Content-Type"] == "application/json"
        answer = json.loads(response.content)
        snapshot = CustomerSnapshot.objects.get(
            workspace=seeded.workspace, customer_id=customer.stripe_id
        )
        assert response.content.endswith(snapshot.body[1:].encode())
        context = customer_context(
            workspace=seeded.workspace,
            customer=customer,
            now=datetime.fromisoformat(answer["now"]),
            real_now=snapshot.built_at,
            stale=answer["stale"],
            refreshing=answer["refreshing"],
            provider_status=answer["provider_status"],
        )
        expected = json.loads(JSONRenderer().render(ContextSerializer(context).data))
        assert answer == expected
        assert list(answer)[:4] == list(PER_REQUEST_FIELDS)
        assert set(answer) == set(ContextSerializer().fields)
