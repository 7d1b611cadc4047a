"""The context's time horizon (issue 15): a context built at T holds until the instant noted.

A snapshot of the context is served until the first instant at which one of its figures
would change without a write (``selectors.context.horizon``). These tests build the
context inside ``horizon_collect`` at fixed instants (never the wall clock, never a
sleep) and check both halves of "exact": built anywhere before the horizon the context
is the same, and built at the horizon it differs. Then one test per kind of boundary
pins the instant itself; and the number of queries of a build does not grow with the
customer's history.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test.utils import CaptureQueriesContext

from billing_app.models import (
    ApprovalRequest,
    BillingAction,
    CustomerFlag,
    MirrorBalanceTransaction,
    MirrorCharge,
    MirrorCustomer,
    MirrorInvoice,
    MirrorRefund,
    MirrorSubscription,
)
from billing_app.selectors.context import customer_context
from billing_app.selectors.context.horizon import TICK, horizon_collect
from billing_app.selectors.payments import payment_history_page

from .context_support import AS_OF, forget_provider_health, seed_brief_day

REAL = datetime(2026, 1, 15, 9, tzinfo=UTC)  # the wall clock the tests build at
FAR = timedelta(days=3650)  # "no horizon": nothing may change in ten years either


@pytest.fixture
def seeded(db, settings):
    return seed_brief_day(settings)


@pytest.fixture(autouse=True)
def _forget_provider_health(db):
    yield
    forget_provider_health()


def build(workspace, customer_id: str, now: datetime, real_now: datetime = REAL):
    """The context built at (``now``, ``real_now``) without its ``now`` field, and its horizon."""
    customer = MirrorCustomer.objects.get(workspace=workspace, stripe_id=customer_id)
    with horizon_collect(now=now, real_now=real_now) as horizon:
        ctx = customer_context(workspace=workspace, customer=customer, now=now, real_now=real_now)
    ctx.pop("now")
    return ctx, horizon


def differences(a: Any, b: Any, path: str = "") -> list[str]:
    """Where two contexts differ (for the failure messages)."""
    if isinstance(a, dict) and isinstance(b, dict):
        return [
            d for k in a.keys() | b.keys() for d in differences(a.get(k), b.get(k), f"{path}.{k}")
        ]
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return [d for i, (x, y) in enumerate(zip(a, b)) for d in differences(x, y, f"{path}[{i}]")]
    return [] if a == b else [path]


# --- the property: every demo customer, a few horizons ahead ---------------------------


def test_every_demo_context_holds_until_its_horizon_and_changes_at_it(seeded):
    workspace = seeded.workspace
    ids = list(
        MirrorCustomer.objects.filter(workspace=workspace)
        .order_by("stripe_id")
        .values_list("stripe_id", flat=True)
    )
    assert len(ids) >= 12
    for cid in ids:
        now, real = AS_OF, REAL
        for _ in range(4):  # walk a few horizons ahead on each clock
            base, h = build(workspace, cid, now, real)
            until, until_real = h.billing or now + FAR, h.real or real + FAR
            # before the horizon (a quarter, half the way, the last tick): the same context
            for at in (now + (until - now) / 4, now + (until - now) / 2, until - TICK):
                assert build(workspace, cid, at, real)[0] == base, (cid, at)
            for at in (real + (until_real - real) / 2, until_real - TICK):
                assert build(workspace, cid, now, at)[0] == base, (cid, at)
            # at the horizon: something shows differently (the noted instant is not early)
            if h.billing is not None:
                assert build(workspace, cid, until, real)[0] != base, (cid, until)
            if h.real is not None:
                assert build(workspace, cid, now, until_real)[0] != base, (cid, until_real)
            if h.billing is None and h.real is None:
                break
            now, real = until if h.billing else now, until_real if h.real else real


# --- one boundary of each kind, to the instant -----------------------------------------


def assert_boundary(
    workspace,
    customer_id: str,
    boundary: datetime,
    changed: Callable[[dict, dict], bool],
    *,
    real: bool = False,
    lead: timedelta = timedelta(seconds=1),
) -> None:
    """Built ``lead`` before ``boundary``, the horizon is ``boundary``: the context holds
    through the tick before and ``changed(before, after)`` at the boundary itself."""
    if real:
        base, h = build(workspace, customer_id, AS_OF, boundary - lead)
        assert h.real == boundary
        assert build(workspace, customer_id, AS_OF, boundary - TICK)[0] == base
        after = build(workspace, customer_id, AS_OF, boundary)[0]
    else:
        base, h = build(workspace, customer_id, boundary - lead)
        assert h.billing == boundary
        assert build(workspace, customer_id, boundary - TICK)[0] == base
        after = build(workspace, customer_id, boundary)[0]
    assert changed(base, after), differences(base, after)


def test_trial_comes_within_seven_days_of_its_end(seeded):
    # Umbrella Labs' trial ends three days after the brief's day, with no card on file
    sub = MirrorSubscription.objects.get(stripe_id="sub_sbx_umbrella")
    boundary = sub.trial_end - timedelta(days=7)

    def changed(before, after):
        reason = "trial ending without a payment method"
        return (
            reason not in before["churn_risk"]["reasons"]
            and reason in (after["churn_risk"]["reasons"])
        )

    assert_boundary(seeded.workspace, "cus_sbx_umbrella", boundary, changed)


def test_card_expires_at_the_first_instant_of_the_next_month(seeded):
    # Acme's Visa expires 03/2027: expired from April 1, 2027, 00:00 UTC
    def changed(before, after):
        return (
            before["account"]["payment_method"]["expired"] is False
            and after["account"]["payment_method"]["expired"] is True
        )

    assert_boundary(seeded.workspace, "cus_sbx_acme", datetime(2027, 4, 1, tzinfo=UTC), changed)


def test_a_failure_leaves_the_90_days_one_tick_after_90_days(seeded):
    # Northwind's two failed charges: the older leaves "failed payments in 90 days" first
    failed = MirrorCharge.objects.filter(customer_id="cus_sbx_northwind", status="failed")
    oldest = min(c.created for c in failed)
    boundary = oldest + timedelta(days=90) + TICK

    def changed(before, after):
        return (
            "2 failed payments in 90 days" in before["churn_risk"]["reasons"]
            and "1 failed payment in 90 days" in after["churn_risk"]["reasons"]
        )

    assert_boundary(seeded.workspace, "cus_sbx_northwind", boundary, changed)


def test_a_failure_leaves_the_12_months(seeded):
    failed = MirrorCharge.objects.filter(customer_id="cus_sbx_northwind", status="failed")
    boundary = min(c.created for c in failed) + timedelta(days=365) + TICK

    def changed(before, after):
        return (
            before["payment_status"]["failures_12m"] == 2
            and after["payment_status"]["failures_12m"] == 1
        )

    assert_boundary(seeded.workspace, "cus_sbx_northwind", boundary, changed)


def test_the_recent_failure_alert_leaves_with_its_30_days(seeded):
    # given Northwind's failed invoice settled (no open invoice with attempts left), the
    # failed payment alert rests on the latest charge alone: 30 days
    MirrorInvoice.objects.filter(customer_id="cus_sbx_northwind", status="open").update(
        status="void"
    )
    last = MirrorCharge.objects.filter(customer_id="cus_sbx_northwind").order_by("-created").first()
    assert last.status == "failed"
    boundary = last.created + timedelta(days=30) + TICK

    def changed(before, after):
        kinds = lambda ctx: {a["type"] for a in ctx["alerts"]}  # noqa: E731
        return "payment_failed" in kinds(before) and "payment_failed" not in kinds(after)

    assert_boundary(seeded.workspace, "cus_sbx_northwind", boundary, changed)


def test_a_duplicate_pair_leaves_with_its_earlier_charge(seeded):
    # Globex was charged twice three minutes apart the day before the brief's day
    earlier = MirrorCharge.objects.get(stripe_id="ch_sbx_globex_duplicate")
    pair = MirrorCharge.objects.filter(
        customer_id="cus_sbx_globex", status="succeeded", amount=earlier.amount
    ).exclude(pk=earlier.pk)
    first = max(c.created for c in pair if c.created <= earlier.created)
    boundary = first + timedelta(days=90) + TICK

    def changed(before, after):
        kinds = lambda ctx: {a["type"] for a in ctx["alerts"]}  # noqa: E731
        return "duplicate_charge" in kinds(before) and "duplicate_charge" not in kinds(after)

    assert_boundary(seeded.workspace, "cus_sbx_globex", boundary, changed)


def test_the_refund_pattern_ends_when_its_oldest_refund_leaves(seeded):
    # Wayne Services: three refunds within the workspace's 90 days
    workspace = seeded.workspace
    assert (workspace.refund_pattern_count, workspace.refund_pattern_days) == (3, 90)
    oldest = min(r.created for r in MirrorRefund.objects.filter(customer_id="cus_sbx_wayne"))
    boundary = oldest + timedelta(days=90) + TICK

    def changed(before, after):
        return "refund pattern (3 refunds in 90 days)" in before["churn_risk"]["reasons"] and not [
            r for r in after["churn_risk"]["reasons"] if r.startswith("refund pattern")
        ]

    assert_boundary(workspace, "cus_sbx_wayne", boundary, changed)


def test_payment_monitoring_ends_at_its_active_until(seeded):
    until = AS_OF + timedelta(days=30)
    CustomerFlag.objects.create(
        workspace=seeded.workspace,
        customer_id="cus_sbx_acme",
        kind=CustomerFlag.Kind.PAYMENT_MONITORING,
        active_until=until,
    )

    def changed(before, after):
        return (
            before["customer"]["monitoring_until"] == until.date().isoformat()
            and after["customer"]["monitoring_until"] is None
        )

    assert_boundary(seeded.workspace, "cus_sbx_acme", until, changed)


def test_months_active_grow_at_the_month_anniversary(seeded):
    # Acme started on March 15, 2024 (the subscription's start, before any payment)
    start = MirrorSubscription.objects.get(stripe_id="sub_sbx_acme_plan").start_date
    boundary = start.replace(year=2026, month=2)

    def changed(before, after):
        return after["lifetime_value"]["months_active"] == (
            before["lifetime_value"]["months_active"] + 1
        )

    assert_boundary(seeded.workspace, "cus_sbx_acme", boundary, changed)


def test_an_annual_contract_runs_to_the_next_anniversary(seeded):
    start = MirrorSubscription.objects.get(stripe_id="sub_sbx_acme_plan").start_date
    boundary = start.replace(year=2026)

    def changed(before, after):
        return (before["subscription"]["contract_end"], after["subscription"]["contract_end"]) == (
            "2026-03-15",
            "2027-03-15",
        )

    assert_boundary(seeded.workspace, "cus_sbx_acme", boundary, changed)


def test_a_percentage_discount_stops_counting_in_mrr_at_its_end(seeded):
    # given 20% off Acme's plan for three more days (an expanded discount on the subscription)
    end = AS_OF + timedelta(days=3)
    row = MirrorSubscription.objects.get(stripe_id="sub_sbx_acme_plan")
    discount = {
        "id": "di_horizon",
        "object": "discount",
        "coupon": {"id": "TWENTY", "percent_off": 20, "duration": "repeating"},
        "end": int(end.timestamp()),
    }
    MirrorSubscription.objects.filter(pk=row.pk).update(data={**row.data, "discounts": [discount]})

    def changed(before, after):
        mrr = lambda ctx: ctx["lifetime_value"]["mrr"]["amount"]  # noqa: E731
        return mrr(after) > mrr(before)

    assert_boundary(seeded.workspace, "cus_sbx_acme", end, changed)


def test_the_oldest_row_of_the_first_history_page_leaves_with_its_six_months(seeded):
    # Acme's first page: August 2025 to January 2026; the August invoice leaves first
    rows = build(seeded.workspace, "cus_sbx_acme", AS_OF)[0]["payment_history"]["items"]
    oldest = datetime.fromisoformat(rows[-1]["datetime"])
    boundary = oldest.replace(year=2026, month=2) + TICK  # six months on (no clamping)

    def changed(before, after):
        return [r["id"] for r in after["payment_history"]["items"]] == [
            r["id"] for r in before["payment_history"]["items"][:-1]
        ]

    assert_boundary(seeded.workspace, "cus_sbx_acme", boundary, changed)


def _action(workspace, *, status: str, created_at: datetime, kind: str = "issue_refund"):
    actor, _ = User.objects.get_or_create(username="horizon-agent")
    action = BillingAction.objects.create(
        workspace=workspace,
        actor=actor,
        actor_role="l1",
        customer_id="cus_sbx_acme",
        kind=kind,
        params={},
        amount=15_000,
        currency="USD",
        status=status,
        decision="approval" if status == "pending_approval" else "auto",
        idempotency_key=f"horizon-{status}-{created_at.isoformat()}",
        request_fingerprint="f",
    )
    BillingAction.objects.filter(pk=action.pk).update(created_at=created_at)
    return action


def test_an_approval_expires_on_the_wall_clock(seeded):
    workspace = seeded.workspace
    action = _action(workspace, status="pending_approval", created_at=REAL)
    expires = REAL + timedelta(hours=72)
    ApprovalRequest.objects.create(
        action=action,
        workspace=workspace,
        required_roles=["manager"],
        reason="Refunds need a Manager",
        expires_at=expires,
    )

    def changed(before, after):
        return len(before["pending_approvals"]) == 1 and after["pending_approvals"] == []

    assert_boundary(workspace, "cus_sbx_acme", expires, changed, real=True)


def test_an_action_leaves_the_recent_ones_after_90_days(seeded):
    workspace = seeded.workspace
    made = REAL - timedelta(days=10)
    _action(workspace, status="succeeded", created_at=made)
    boundary = made + timedelta(days=90) + TICK

    def changed(before, after):
        return len(before["recent_actions"]) == 1 and after["recent_actions"] == []

    assert_boundary(workspace, "cus_sbx_acme", boundary, changed, real=True)


# --- the first history page does not move with the clock ---------------------------------


def test_the_first_history_page_is_the_same_page_whatever_the_instant(seeded):
    # Two and three years on, nothing of Acme's is in the last six months
    later, latest = (
        build(seeded.workspace, "cus_sbx_acme", AS_OF + timedelta(days=d))[0]["payment_history"]
        for d in (730, 1095)
    )

    assert later["items"] == [] and later["next_cursor"]
    assert later == latest  # the cursor carries no clock: not "six months ago", not a signing time
    # and it starts at the newest row, which is older
    second = payment_history_page(
        workspace=seeded.workspace, customer_id="cus_sbx_acme", cursor=later["next_cursor"]
    )
    newest = build(seeded.workspace, "cus_sbx_acme", AS_OF)[0]["payment_history"]["items"][0]
    assert second["items"][0]["id"] == newest["id"]


# --- bounded: the build does not grow with history ---------------------------------------


def _history(workspace, customer_id: str, n: int) -> None:
    """``n`` paid invoices, ``n`` charges (a tenth failed) and ``n`` balance credits, monthly-ish."""
    MirrorCustomer.objects.create(
        workspace=workspace,
        stripe_id=customer_id,
        email=f"{customer_id}@example.com",
        name=customer_id,
        currency="usd",
        balance=-500,
        created=AS_OF - timedelta(days=n + 1),
    )
    day = lambda i: AS_OF - timedelta(days=i + 1)  # noqa: E731
    MirrorInvoice.objects.bulk_create(
        MirrorInvoice(
            workspace=workspace,
            stripe_id=f"in_{customer_id}_{i}",
            customer_id=customer_id,
            status="paid",
            currency="usd",
            amount_due=1_000,
            amount_paid=1_000,
            created=day(i),
            paid_at=day(i),
            payment_intent_id=f"pi_{customer_id}_{i}",
            data={"id": f"in_{customer_id}_{i}", "lines": {"data": [{"amount": 1_000}] * 5}},
        )
        for i in range(n)
    )
    MirrorCharge.objects.bulk_create(
        MirrorCharge(
            workspace=workspace,
            stripe_id=f"ch_{customer_id}_{i}",
            customer_id=customer_id,
            payment_intent_id=f"pi_{customer_id}_{i}",
            amount=1_000,
            amount_captured=1_000,
            currency="usd",
            status="failed" if i % 10 == 5 else "succeeded",
            created=day(i),
            card_brand="visa",
            card_last4="4242",
            data={"id": f"ch_{customer_id}_{i}", "outcome": {"type": "authorized"}},
        )
        for i in range(n)
    )
    MirrorBalanceTransaction.objects.bulk_create(
        MirrorBalanceTransaction(
            workspace=workspace,
            stripe_id=f"cbtxn_{customer_id}_{i}",
            customer_id=customer_id,
            amount=-10 if i % 2 else 10,
            currency="usd",
            type="adjustment" if i % 2 else "applied_to_invoice",
            created=day(i),
        )
        for i in range(n)
    )


def test_the_number_of_queries_does_not_grow_with_history(seeded):
    workspace = seeded.workspace
    _history(workspace, "cus_short", 10)
    _history(workspace, "cus_long", 500)

    counts = {}
    for cid in ("cus_short", "cus_long"):
        with CaptureQueriesContext(connection) as queries:
            ctx, _ = build(workspace, cid, AS_OF)
        counts[cid] = len(queries.captured_queries)
        # the credits on the balance are listed newest first, at most 20 (CHANGELOG, issue 15):
        # $5 of credit is 50 grants of 10 cents, of which the short history has 5
        listed = [c["id"] for c in ctx["credits"]["on_balance"]]
        granted = min(50, 10 if cid == "cus_short" else 500) // 2
        assert listed == [f"cbtxn_{cid}_{i}" for i in range(1, 2 * min(granted, 20), 2)]
        assert ctx["credits"]["applied_this_cycle"]["amount"] == 0  # no subscription, no cycle

    assert counts["cus_short"] == counts["cus_long"]
    assert counts["cus_long"] <= 12
