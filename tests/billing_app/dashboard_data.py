"""A fixed data set for January 2026 whose every dashboard and report figure is known.

The expected figures are worked out by hand in ``test_dashboard.py`` and
``test_report.py``; this module only writes the records. Timestamps that the
models set themselves (``auto_now_add``) are overwritten with ``update()`` so
that each record lands in the month the data set says.
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from django.contrib.auth.models import User
from django.db import connection

from billing_app.models import (
    ApprovalRequest,
    BillingAction,
    CurrencyRate,
    HelpdeskTicket,
    MirrorCharge,
    MirrorInvoice,
    MirrorPrice,
    MirrorSubscription,
    MirrorSubscriptionItem,
    PaymentFailure,
    ProviderCall,
    StripeEvent,
)
from billing_app.models.rollups import provider_call_rolled_up
from billing_app.money import Money
from billing_app.services.rollups import rollups_action_changed, rollups_tickets_changed

_seq = itertools.count(1)


def at(day: int, hour: int = 10, month: int = 1, year: int = 2026) -> datetime:
    return datetime(year, month, day, hour, tzinfo=UTC)


def installation_of(workspace):
    return workspace.installation_links.select_related("installation").first().installation


def ticket(
    workspace,
    external_id: str,
    *,
    category: str = "",
    created: datetime,
    resolution: int | None = None,
    csat: int | None = None,
    escalated: bool = False,
    status: str | None = None,
) -> HelpdeskTicket:
    solved = created + timedelta(seconds=resolution) if resolution is not None else None
    row = HelpdeskTicket.objects.create(
        workspace=workspace,
        installation=installation_of(workspace),
        external_id=external_id,
        subject=f"Ticket {external_id}",
        status=status or ("solved" if solved else "open"),
        tags=[],
        category=category,
        is_billing=bool(category),
        created_at=created,
        updated_at=solved or created,
        solved_at=solved,
        resolution_seconds=resolution,
        escalated=escalated,
        csat_score=csat,
    )
    # As the ticket sync does: the write and its roll-up together.
    rollups_tickets_changed(workspace=workspace, tickets=HelpdeskTicket.objects.filter(pk=row.pk))
    return row


def actor() -> User:
    return User.objects.create(username=f"agent-{next(_seq)}")


def action(
    workspace,
    user,
    kind: str,
    *,
    created: datetime,
    ticket_id: str = "",
    status: str = "succeeded",
    decision: str = "allow",
    duration_ms: int | None = None,
    amount_base: int | None = None,
    params: dict | None = None,
    result: dict | None = None,
    approval: tuple[str, str, datetime, datetime | None] | None = None,
    handling: float | None = None,
    completed: datetime | None = None,
    customer_id: str = "cus_test",
) -> BillingAction:
    """``approval`` = (status, decided_role, created, decided_at); ``handling`` = minutes
    from the panel's open to the agent's part done (its completion, or its submission for
    an approval), negative for a panel-open time after it."""
    n = next(_seq)
    row = BillingAction.objects.create(
        workspace=workspace,
        installation=installation_of(workspace),
        actor=user,
        actor_role="l2",
        ticket_id=ticket_id,
        customer_id=customer_id,
        kind=kind,
        params=params or {},
        amount=amount_base,
        currency=workspace.base_currency if amount_base is not None else "",
        amount_base=amount_base,
        status=status,
        decision=decision,
        idempotency_key=f"key-{n}",
        request_fingerprint=f"fp-{n}",
        result=result or {},
        duration_ms=duration_ms,
    )
    end = created if decision == "approval" or completed is None else completed
    BillingAction.objects.filter(pk=row.pk).update(
        created_at=created,
        completed_at=completed,
        handling_started_at=end - timedelta(minutes=handling) if handling is not None else None,
    )
    if approval is not None:
        a_status, role, a_created, decided = approval
        request = ApprovalRequest.objects.create(
            action=row,
            workspace=workspace,
            required_roles=[role or "manager"],
            reason="above the agent's limit",
            status=a_status,
            decided_role=role if decided else "",
            decided_at=decided,
            expires_at=a_created + timedelta(hours=72),
        )
        ApprovalRequest.objects.filter(pk=request.pk).update(created_at=a_created)
    rollups_action_changed(action_id=row.pk)  # as the action services do after a write
    return row


def call(workspace, operation: str, duration_ms: int, outcome: str = "ok", *, created=None):
    values = {
        "workspace_id": workspace.pk,
        "provider": "sandbox",
        "operation": operation,
        "duration_ms": duration_ms,
        "outcome": outcome,
        "error_code": "" if outcome == "ok" else "x",
        "created_at": created or at(12),
    }
    row = ProviderCall.objects.create(**values)
    provider_call_rolled_up(connection, values)  # as the provider call recorder does
    return row


def event(workspace, status: str, *, received: datetime):
    n = next(_seq)
    row = StripeEvent.objects.create(
        workspace=workspace,
        event_id=f"evt_{n}",
        type="invoice.paid",
        created=received,
        payload={"id": f"evt_{n}"},
        status=status,
    )
    StripeEvent.objects.filter(pk=row.pk).update(received_at=received)
    return row


def subscription(
    workspace,
    sub_id: str,
    customer: str,
    *,
    unit_amount: int,
    quantity: int = 1,
    interval: str = "month",
    currency: str = "USD",
    status: str = "active",
    ended: datetime | None = None,
    price_id: str | None = None,
):
    MirrorSubscription.objects.create(
        workspace=workspace,
        stripe_id=sub_id,
        customer_id=customer,
        status=status,
        currency=currency,
        ended_at=ended,
        canceled_at=ended,
    )
    MirrorSubscriptionItem.objects.create(
        workspace=workspace,
        stripe_id=f"si_{sub_id}",
        subscription_id=sub_id,
        price_id=price_id or f"price_{sub_id}",
        quantity=quantity,
        unit_amount=unit_amount,
        currency=currency,
        recurring_interval=interval,
    )


def invoice(workspace, invoice_id: str, customer: str, sub_id: str = "", *, paid_at=None):
    MirrorInvoice.objects.create(
        workspace=workspace,
        stripe_id=invoice_id,
        customer_id=customer,
        subscription_id=sub_id,
        status="paid" if paid_at else "open",
        currency="USD",
        paid_at=paid_at,
    )


def charge(
    workspace,
    charge_id: str,
    *,
    created: datetime,
    status: str,
    invoice_id: str = "",
    customer: str = "cus_x",
    decline: str = "",
    failure: str = "",
):
    MirrorCharge.objects.create(
        workspace=workspace,
        stripe_id=charge_id,
        created=created,
        customer_id=customer,
        invoice_id=invoice_id,
        amount=1000,
        currency="USD",
        status=status,
        paid=status == "succeeded",
        decline_code=decline,
        failure_code=failure or ("card_declined" if status == "failed" else ""),
    )


def failure(
    workspace,
    key: str,
    *,
    failed: datetime,
    category: str,
    customer: str = "cus_x",
    sub_id: str = "",
    invoice_id: str = "",
    recovered: datetime | None = None,
    by_agent: bool = False,
) -> PaymentFailure:
    return PaymentFailure.objects.create(
        workspace=workspace,
        customer_id=customer,
        subscription_id=sub_id,
        invoice_id=invoice_id,
        charge_id=key,
        attempt_key=key,
        amount=1000,
        currency="USD",
        reason_category=category,
        reason=category.replace("_", " ").capitalize(),
        failed_at=failed,
        recovered_at=recovered,
        recovered_by=("agent_action" if by_agent else "payment") if recovered else "",
        time_to_recover=recovered - failed if recovered else None,
    )


def build_january(workspace) -> None:
    """The data set described in ``test_dashboard.py`` (January 2026, plus noise outside it)."""
    user = actor()
    # Tickets: 10 billing + 10 non-billing in January.
    ticket(workspace, "1", category="payment_failed", created=at(3), resolution=120, csat=5)
    ticket(workspace, "2", category="payment_failed", created=at(4), resolution=240, csat=4)
    ticket(workspace, "3", category="refund_request", created=at(5), resolution=600, csat=3)
    ticket(workspace, "4", category="refund_request", created=at(6), resolution=360)
    ticket(workspace, "5", category="plan_change_request", created=at(7), resolution=180, csat=5)
    ticket(workspace, "6", category="plan_change_request", created=at(8))
    ticket(
        workspace,
        "7",
        category="overcharge_dispute",
        created=at(9),
        resolution=420,
        csat=2,
        escalated=True,
    )
    ticket(workspace, "8", category="invoice_discrepancy", created=at(10), resolution=300, csat=4)
    ticket(workspace, "9", category="tax_question", created=at(11), resolution=60)
    ticket(workspace, "10", category="other_billing", created=at(31, 23), resolution=120, csat=5)
    for n in range(10):
        ticket(workspace, f"n{n}", created=at(12 + n), resolution=30, csat=1)
    # Outside January: not counted.
    ticket(workspace, "dec", category="payment_failed", created=at(31, 23, 12, 2025), resolution=9)
    ticket(workspace, "feb", category="payment_failed", created=at(1, 0, 2), resolution=9)

    # Actions.
    action(
        workspace,
        user,
        "generate_payment_link",
        created=at(3),
        ticket_id="1",
        duration_ms=800,
        handling=1.0,
    )
    action(
        workspace,
        user,
        "generate_payment_link",
        created=at(4),
        ticket_id="999",
        status="failed",
        duration_ms=1200,
        handling=0.6,
    )
    action(
        workspace,
        user,
        "issue_refund",
        created=at(5),
        ticket_id="3",
        decision="approval",
        duration_ms=2000,
        amount_base=25000,
        params={"reason": "billing_error"},
        approval=("approved", "manager", at(10, 10), at(10, 12)),
        # 3 minutes to the request's submission; it ran 5 days later, after approval
        handling=3.0,
        completed=at(10, 12),
    )
    action(
        workspace,
        user,
        "issue_refund",
        created=at(6),
        ticket_id="4",
        duration_ms=1000,
        amount_base=5000,
        params={"reason": "service_outage"},
        handling=2.0,
    )
    action(
        workspace,
        user,
        "change_plan",
        created=at(7),
        ticket_id="5",
        duration_ms=1500,
        params={"subscription_id": "sub_up", "price_id": "price_enterprise"},
        result={"direction": "upgrade", "mrr_delta": 20000, "mrr_currency": "USD"},
        handling=1.5,
    )
    action(
        workspace,
        user,
        "change_plan",
        created=at(8),
        ticket_id="6",
        duration_ms=1000,
        params={"subscription_id": "sub_down", "price_id": "price_small"},
        result={
            "direction": "downgrade",
            "new_price_id": "price_small",
            "previous_price_id": "price_big",
            "mrr_delta": -5000,  # price_small $50 − price_big $100, quantity 1
            "mrr_currency": "USD",
        },
    )
    action(
        workspace,
        user,
        "apply_credit",
        created=at(10),
        ticket_id="8",
        duration_ms=600,
        amount_base=5000,
    )
    # A panel-open time after the action (clock skew): left out of the average.
    action(
        workspace,
        user,
        "resend_invoice",
        created=at(31, 23),
        ticket_id="10",
        duration_ms=400,
        handling=-5.0,
    )
    action(
        workspace,
        user,
        "issue_refund",
        created=at(12),
        ticket_id="555",
        status="denied",
        decision="approval",
        amount_base=150000,
        params={"reason": "dissatisfaction"},
        approval=("denied", "vp", at(12, 9), at(12, 13)),
    )
    action(
        workspace,
        user,
        "apply_credit",
        created=at(15),
        ticket_id="556",
        decision="approval",
        duration_ms=900,
        amount_base=60000,
        approval=("approved", "vp", at(15, 8), at(15, 14)),
    )
    action(
        workspace,
        user,
        "issue_refund",
        created=at(16),
        status="not_permitted",
        decision="deny",
        amount_base=1000,
    )
    action(
        workspace,
        user,
        "refund_duplicate_charge",
        created=at(17),
        duration_ms=1100,
        amount_base=3000,
    )
    action(
        workspace,
        user,
        "issue_refund",
        created=at(18),
        status="pending_approval",
        decision="approval",
        amount_base=9000,
        params={"reason": "other"},
        approval=("pending", "", at(18), None),
    )
    # Outside January.
    action(workspace, user, "resend_invoice", created=at(31, 23, 12, 2025), duration_ms=10)
    action(workspace, user, "issue_refund", created=at(1, 0, 2), amount_base=777, duration_ms=10)

    # Mirror: subscriptions, invoices and charges.
    CurrencyRate.objects.create(workspace=workspace, currency="EUR", rate=Decimal("1.1"))
    subscription(workspace, "sub_1", "cus_1", unit_amount=10000, quantity=2)
    subscription(workspace, "sub_2", "cus_2", unit_amount=120000, interval="year")
    MirrorSubscription.objects.filter(workspace=workspace, stripe_id="sub_2").update(
        status="canceled", ended_at=at(20), canceled_at=at(20)
    )
    subscription(workspace, "sub_3", "cus_3", unit_amount=5000, currency="EUR")
    subscription(workspace, "sub_down", "cus_5", unit_amount=5000, price_id="price_small")
    MirrorPrice.objects.create(
        workspace=workspace,
        stripe_id="price_small",
        currency="USD",
        unit_amount=5000,
        recurring_interval="month",
    )
    MirrorPrice.objects.create(
        workspace=workspace,
        stripe_id="price_big",
        currency="USD",
        unit_amount=10000,
        recurring_interval="month",
    )
    invoice(workspace, "in_1", "cus_1", "sub_1")
    invoice(workspace, "in_2", "cus_2", "sub_2")
    invoice(workspace, "in_3", "cus_3", "sub_3", paid_at=at(16))
    charge(
        workspace,
        "ch_f1",
        created=at(5),
        status="failed",
        invoice_id="in_1",
        decline="expired_card",
    )
    charge(workspace, "ch_s1", created=at(7), status="succeeded", invoice_id="in_1")
    charge(
        workspace,
        "ch_f2",
        created=at(10),
        status="failed",
        invoice_id="in_2",
        decline="insufficient_funds",
    )
    charge(
        workspace,
        "ch_f3",
        created=at(15),
        status="failed",
        invoice_id="in_3",
        decline="generic_decline",
    )
    charge(workspace, "ch_f4", created=at(20), status="failed", failure="processing_error")
    charge(workspace, "ch_s2", created=at(3), status="succeeded")
    charge(workspace, "ch_s3", created=at(4), status="succeeded")
    charge(
        workspace, "ch_d1", created=at(10, 10, 12, 2025), status="failed", decline="expired_card"
    )
    # The payment-failure records of those failed charges (services.payment_failures).
    failure(
        workspace,
        "ch_f1",
        failed=at(5),
        category="card_expired",
        customer="cus_1",
        sub_id="sub_1",
        invoice_id="in_1",
        recovered=at(7),
    )
    failure(
        workspace,
        "ch_f2",
        failed=at(10),
        category="insufficient_funds",
        customer="cus_2",
        sub_id="sub_2",
        invoice_id="in_2",
    )
    failure(
        workspace,
        "ch_f3",
        failed=at(15),
        category="card_declined",
        customer="cus_3",
        sub_id="sub_3",
        invoice_id="in_3",
        recovered=at(16),
        by_agent=True,
    )
    failure(workspace, "ch_f4", failed=at(20), category="other")
    failure(workspace, "ch_d1", failed=at(10, 10, 12, 2025), category="card_expired")

    # Provider calls and webhook events.
    for ms, outcome in ((300, "ok"), (400, "ok"), (300, "ok"), (400, "unavailable")):
        call(workspace, "fetch_customer_bundle", ms, outcome)
    call(workspace, "create_payment_link", 200)
    call(workspace, "create_payment_link", 300)
    call(workspace, "refund", 1000)
    call(workspace, "refund", 2000, "error")
    call(workspace, "resend_invoice", 100)
    call(workspace, "refund", 99999, "unavailable", created=at(1, 0, 2))  # February
    for _ in range(7):
        event(workspace, "processed", received=at(20))
    event(workspace, "ignored", received=at(21))
    event(workspace, "failed", received=at(22))
    event(workspace, "received", received=at(23))
    event(workspace, "failed", received=at(1, 0, 2))  # February


def build_noise(workspace) -> None:
    """Records of another tenant in the same month: must never show up in acme's figures."""
    user = actor()
    for n in range(5):
        ticket(workspace, str(n + 1), category="refund_request", created=at(5), resolution=5000)
    action(workspace, user, "issue_refund", created=at(5), ticket_id="1", amount_base=99900)
    charge(workspace, "ch_other", created=at(5), status="failed", decline="expired_card")
    failure(workspace, "ch_other", failed=at(5), category="card_expired")
    call(workspace, "fetch_customer_bundle", 5000, "unavailable")
    event(workspace, "failed", received=at(5))


def self_service_state(
    *,
    prompts_enabled: bool = False,
    prompts_sent: int = 0,
    update_rate_pct: float | None = None,
    refund_limit: int = 0,
    links_sent: int = 0,
    requests: int = 0,
    executed: int = 0,
    sent_to_agents_pct: float | None = None,
    widget_enabled: bool = False,
    visits: int = 0,
    answered_visits: int = 0,
    deflection_rate_pct: float | None = None,
) -> dict:
    """The parts of the dashboard's figures the self-service recommendations read (issue 18):
    the workspace's features and this month's Self-service figures; defaults: all off."""
    return {
        "workspace": {
            "features": {
                "card_prompts_enabled": prompts_enabled,
                "self_service_refund_limit": Money(refund_limit, "USD").to_dict(),
                "refund_links_sent": links_sent,
                "widget_enabled": widget_enabled,
            }
        },
        "self_service": {
            "card_prompts": {"current": {"sent": prompts_sent, "update_rate_pct": update_rate_pct}},
            "refund_requests": {
                "current": {
                    "requests": requests,
                    "executed": executed,
                    "sent_to_agents_pct": sent_to_agents_pct,
                }
            },
            "widget": {
                "current": {
                    "visits": visits,
                    "answered_visits": answered_visits,
                    "deflection_rate_pct": deflection_rate_pct,
                }
            },
        },
    }
