"""The demo's seeded history: every dashboard section populated, deterministic, idempotent."""

from datetime import UTC, datetime

from billing_app import models
from billing_app.demo.history import MARKER, demo_history_seed
from billing_app.selectors.dashboard import dashboard_build
from billing_app.selectors.months import Month

AS_OF = datetime(2026, 1, 20, 12, tzinfo=UTC)
DECEMBER = Month(2025, 12)


def _figures(workspace):
    figures = dashboard_build(workspace=workspace, month=DECEMBER)
    figures.pop("generated_at")
    return figures


def _forget_history(workspace):
    models.BillingAction.objects.filter(workspace=workspace).delete()
    models.HelpdeskTicket.objects.filter(workspace=workspace).delete()
    models.ProviderCall.objects.filter(workspace=workspace).delete()
    models.StripeEvent.objects.filter(workspace=workspace).delete()
    models.PaymentFailure.objects.filter(workspace=workspace).delete()
    for model in (
        models.MirrorCustomer,
        models.MirrorSubscription,
        models.MirrorSubscriptionItem,
        models.MirrorPrice,
        models.MirrorInvoice,
        models.MirrorCharge,
    ):
        model.objects.filter(workspace=workspace).delete()


def test_demo_history_populates_every_section(workspace):
    # given three months of history up to 20 January
    seeded = demo_history_seed(workspace=workspace, months=3, as_of=AS_OF, scale=0.3)

    # when the dashboard of December (a complete month) is computed
    figures = dashboard_build(workspace=workspace, month=DECEMBER)

    # then every section has figures computed from the seeded rows
    assert seeded.created and seeded.tickets > 0 and seeded.failures > 0
    assert figures["tickets"]["billing"] > 0
    assert figures["tickets"]["csat"] is not None
    assert figures["tickets"]["escalated"] > 0
    assert sum(c["auto_resolved"] for c in figures["categories"]) > 0
    assert figures["actions"]["total"] > 0
    assert figures["actions"]["avg_approval_hours"] is not None
    assert figures["refunds"]["count"] > 0
    assert figures["payment_failures"]["count"] > 0
    assert figures["payment_failures"]["recovered"] > 0
    assert figures["health"]["uptime_pct"] is not None
    assert figures["health"]["webhooks"]["success_rate_pct"] is not None
    # and nothing is dated after as_of
    assert not models.HelpdeskTicket.objects.filter(created_at__gt=AS_OF).exists()
    assert not models.BillingAction.objects.filter(created_at__gt=AS_OF).exists()
    assert not models.ProviderCall.objects.filter(created_at__gt=AS_OF).exists()


def test_demo_history_is_deterministic_and_idempotent(workspace):
    demo_history_seed(workspace=workspace, months=2, as_of=AS_OF, scale=0.2)
    first = _figures(workspace)

    # a second call changes nothing
    assert demo_history_seed(workspace=workspace, months=2, as_of=AS_OF, scale=0.2).created is False
    assert _figures(workspace) == first

    # seeding again from scratch gives the same figures
    _forget_history(workspace)
    assert demo_history_seed(workspace=workspace, months=2, as_of=AS_OF, scale=0.2).created
    assert _figures(workspace) == first
    assert models.BillingAction.objects.filter(idempotency_key__startswith=MARKER).exists()
