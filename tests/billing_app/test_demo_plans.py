"""The demo's plan list reads right (issue 14: Starter at $2,450/month above Business).

The demo sells two plan families (``billing_app.demo.catalog``): per-seat plans
(Business, Enterprise Pro, Enterprise Plus) and flat plans (Starter, Pro, Team); the
plan-change form offers a subscription the plans of its own family, priced for its seats.
"""

from __future__ import annotations

import pytest

from billing_app.models import MirrorProduct
from billing_app.selectors.plans import plan_options

from .context_support import forget_provider_health, seed_brief_day


@pytest.fixture
def seeded(db, settings):
    yield seed_brief_day(settings)
    forget_provider_health()


def _plans(workspace, customer_id):
    options = plan_options(workspace=workspace, customer_id=customer_id)
    return [(p["name"], p["amount"]["display"], p["current"]) for p in options["plans"]]


def test_acme_50_seats_sees_the_per_seat_ladder_cheapest_first(seeded):
    assert _plans(seeded.workspace, "cus_sbx_acme") == [
        ("Business", "$1,500.00", False),
        ("Enterprise Pro", "$2,400.00", True),  # the brief's $2,400/month
        ("Enterprise Plus", "$3,200.00", False),
    ]


def test_a_one_seat_flat_plan_sees_the_flat_ladder_at_its_own_prices(seeded):
    assert _plans(seeded.workspace, "cus_sbx_northwind") == [
        ("Starter", "$49.00", False),
        ("Pro", "$149.00", True),
        ("Team", "$299.00", False),
    ]


def test_plans_without_a_pricing_family_are_offered_to_everyone(seeded):
    # given a workspace's own plan product that names no family (a real Stripe catalog)
    MirrorProduct.objects.filter(stripe_id="prod_sbx_starter").update(metadata={})

    # then it is offered beside either family
    assert "Starter" in [name for name, _, _ in _plans(seeded.workspace, "cus_sbx_acme")]
    assert "Starter" in [name for name, _, _ in _plans(seeded.workspace, "cus_sbx_northwind")]
