"""The plan-change form's options (``selectors.plans.plan_options``), beyond the API tests."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from billing_app.models import MirrorSubscription
from billing_app.selectors.plans import plan_options

from .context_support import seed_brief_day

ACME = "cus_sbx_acme"


@pytest.fixture
def seeded(db, settings):
    return seed_brief_day(settings)


def test_options_are_for_the_subscription_the_panel_changes_not_an_older_add_on_one(seeded):
    # given Acme's yearly add-on subscription is older than its plan subscription
    older = datetime(2023, 1, 1, tzinfo=UTC)
    addons = MirrorSubscription.objects.get(stripe_id="sub_sbx_acme_addons")
    addons.created = older
    addons.data = {**addons.data, "created": int(older.timestamp())}
    addons.save(update_fields=["created", "data"])

    # when the panel asks what Acme can change to
    options = plan_options(workspace=seeded.workspace, customer_id=ACME)

    # then the options are those of the plan subscription (the context's primary one):
    # its 50 seats, its monthly interval, its current price marked
    assert (options["subscription_id"], options["quantity"]) == ("sub_sbx_acme_plan", 50)
    assert {p["interval"] for p in options["plans"]} == {"month"}
    assert [p["id"] for p in options["plans"] if p["current"]] == [
        "price_sbx_enterprise_pro__monthly"
    ]


def test_a_customer_without_a_live_subscription_gets_every_plan_at_one_seat(seeded):
    # given Acme's subscriptions have all ended
    MirrorSubscription.objects.filter(workspace=seeded.workspace, customer_id=ACME).update(
        status="canceled"
    )
    for sub in MirrorSubscription.objects.filter(workspace=seeded.workspace, customer_id=ACME):
        sub.data = {**sub.data, "status": "canceled"}
        sub.save(update_fields=["data"])

    # when the panel asks for the plans
    options = plan_options(workspace=seeded.workspace, customer_id=ACME)

    # then there is no subscription to change, and plans of every interval are listed
    assert (options["subscription_id"], options["quantity"]) == (None, 1)
    assert {p["interval"] for p in options["plans"]} >= {"month", "year"}
    assert not any(p["current"] for p in options["plans"])
