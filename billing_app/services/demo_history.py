"""A realistic, deterministic history for the demo workspace, so its dashboard is populated.

``demo_history_seed`` writes months of the records the dashboard aggregates —
helpdesk tickets across the billing categories (resolution times, escalations,
CSAT), billing actions of many kinds and outcomes with durations, approval
requests with decision times, provider calls, Stripe webhook events, and
mirrored customers with failed and recovered payments — drawn from a random
generator seeded with the workspace's slug, so the same demo always shows the
same figures. The shapes follow the brief's dashboard (category mix, resolution
times per category, auto-resolved shares, response times); the numbers are the
generator's, and the dashboard computes every figure from these rows like any
other.

Idempotent: a workspace that already has demo history is left alone.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone

from ..catalog import ActionKind, Role
from ..models import (
    ApprovalRequest,
    BillingAction,
    HelpdeskTicket,
    MirrorCustomer,
    ProviderCall,
    StripeEvent,
    TicketCategory,
    Workspace,
)
from ..selectors.months import Month

MARKER = "demo-history"

# category: (weight, average resolution minutes, auto-resolve probability, action kinds)
CATEGORY_PROFILE: dict[str, tuple[int, float, float, tuple[str, ...]]] = {
    TicketCategory.PAYMENT_FAILED: (234, 3.1, 0.67, ("generate_payment_link",)),
    TicketCategory.INVOICE_DISCREPANCY: (156, 5.4, 0.45, ("resend_invoice", "apply_credit")),
    TicketCategory.PLAN_CHANGE_REQUEST: (123, 2.8, 0.89, ("change_plan",)),
    TicketCategory.REFUND_REQUEST: (89, 6.2, 0.23, ("issue_refund",)),
    TicketCategory.OVERCHARGE_DISPUTE: (67, 7.1, 0.34, ("apply_credit",)),
    TicketCategory.DUPLICATE_CHARGE: (45, 2.3, 0.91, ("refund_duplicate_charge",)),
    TicketCategory.PAYMENT_METHOD_UPDATE: (38, 1.9, 0.95, ("update_payment_method",)),
    TicketCategory.TAX_QUESTION: (34, 8.5, 0.12, ("send_tax_invoice",)),
    TicketCategory.OTHER_BILLING: (104, 4.8, 0.56, ("resend_invoice", "extend_trial")),
}
SUBJECTS: dict[str, str] = {
    TicketCategory.PAYMENT_FAILED: "My payment failed",
    TicketCategory.INVOICE_DISCREPANCY: "Question about my invoice",
    TicketCategory.PLAN_CHANGE_REQUEST: "I want to change my plan",
    TicketCategory.REFUND_REQUEST: "I want a refund",
    TicketCategory.OVERCHARGE_DISPUTE: "I was overcharged",
    TicketCategory.DUPLICATE_CHARGE: "I was charged twice",
    TicketCategory.PAYMENT_METHOD_UPDATE: "Update my card",
    TicketCategory.TAX_QUESTION: "I need a tax invoice",
    TicketCategory.OTHER_BILLING: "Billing question",
}
OTHER_SUBJECTS = (
    "Cannot log in",
    "Feature request",
    "Export is slow",
    "Bug in reports",
    "SSO setup",
)
REFUND_REASONS = (
    ("service_outage", 18),
    ("billing_error", 12),
    ("dissatisfaction", 8),
    ("duplicate", 5),
    ("other", 2),
)
# operation: (share of calls, mean ms)
OPERATIONS = (
    ("fetch_customer_bundle", 60, 340),
    ("create_payment_link", 12, 280),
    ("resend_invoice", 8, 420),
    ("refund", 6, 1200),
    ("apply_credit", 4, 380),
    ("change_plan", 4, 900),
    ("preview_plan_change", 4, 650),
    ("payment_method_update_link", 2, 310),
)
DECLINES = (
    ("expired_card", 38),
    ("insufficient_funds", 29),
    ("generic_decline", 19),
    ("incorrect_number", 10),
    ("processing_error", 4),
)


@dataclass(frozen=True)
class DemoHistory:
    created: bool
    tickets: int = 0
    actions: int = 0
    approvals: int = 0
    provider_calls: int = 0
    events: int = 0
    failures: int = 0


def _weighted(rng: random.Random, pairs: Any) -> Any:
    items, weights = zip(*[(p[0], p[1]) for p in pairs], strict=True)
    return rng.choices(items, weights=weights, k=1)[0]


def _moment(rng: random.Random, month: Month, until: datetime) -> datetime:
    end = min(month.end, until)
    if end <= month.start + timedelta(seconds=120):
        return month.start
    span = int((end - month.start).total_seconds()) - 60
    return month.start + timedelta(seconds=rng.randrange(span))


class _Writer:
    """Collects rows and writes them in bulk, then restores the historical timestamps."""

    def __init__(self, workspace: Workspace, actor: User, installation: Any):
        self.workspace, self.actor, self.installation = workspace, actor, installation
        self.tickets: list[HelpdeskTicket] = []
        self.actions: list[BillingAction] = []
        self.action_times: dict[Any, datetime] = {}
        self.approvals: list[tuple[ApprovalRequest, datetime]] = []
        self.calls: list[ProviderCall] = []
        self.events: list[tuple[StripeEvent, datetime]] = []
        self.serial = 0

    def action(
        self,
        kind: str,
        at: datetime,
        *,
        ticket: str = "",
        status: str = BillingAction.Status.SUCCEEDED,
        decision: str = BillingAction.Decision.ALLOW,
        amount: int | None = None,
        params: dict | None = None,
        result: dict | None = None,
        duration_ms: int | None = None,
        role: str = Role.L2,
    ) -> BillingAction:
        self.serial += 1
        row = BillingAction(
            workspace=self.workspace,
            installation=self.installation,
            actor=self.actor,
            actor_role=role,
            ticket_id=ticket,
            customer_id=f"cus_hist_{self.serial % 97:03d}",
            kind=kind,
            params=params or {},
            amount=amount,
            currency=self.workspace.base_currency if amount is not None else "",
            amount_base=amount,
            status=status,
            decision=decision,
            idempotency_key=f"{MARKER}-{self.serial}",
            request_fingerprint=f"{MARKER}-{self.serial}",
            provider=self.workspace.provider,
            result=result or {},
            duration_ms=duration_ms,
            started_at=at,
            completed_at=at + timedelta(milliseconds=duration_ms or 0),
        )
        self.actions.append(row)
        self.action_times[row.pk] = at
        return row

    def save(self) -> None:
        HelpdeskTicket.objects.bulk_create(self.tickets, batch_size=500)
        BillingAction.objects.bulk_create(self.actions, batch_size=500)
        for row in self.actions:  # auto_now_add set "now": put the history back
            row.created_at = self.action_times[row.pk]
        BillingAction.objects.bulk_update(self.actions, ["created_at"], batch_size=500)
        requests = [a for a, _ in self.approvals]
        ApprovalRequest.objects.bulk_create(requests, batch_size=500)
        for request, created in self.approvals:
            request.created_at = created
        ApprovalRequest.objects.bulk_update(requests, ["created_at"], batch_size=500)
        ProviderCall.objects.bulk_create(self.calls, batch_size=1000)
        events = [e for e, _ in self.events]
        StripeEvent.objects.bulk_create(events, batch_size=500)
        for event, received in self.events:
            event.received_at = received
        StripeEvent.objects.bulk_update(events, ["received_at"], batch_size=500)


def _seed_month(
    writer: _Writer, rng: random.Random, month: Month, until: datetime, scale: float
) -> int:
    """One month of tickets, actions, approvals, calls and events; returns failures made."""
    ws = writer.workspace
    n_billing = max(1, int(110 * scale))
    n_other = max(1, int(n_billing * 7.3))
    categories = [(c, p[0]) for c, p in CATEGORY_PROFILE.items()]
    for i in range(n_other):
        created = _moment(rng, month, until)
        solved = rng.random() < 0.9
        writer.tickets.append(
            HelpdeskTicket(
                workspace=ws,
                installation=writer.installation,
                external_id=f"{MARKER}-{month.key}-o{i}",
                subject=rng.choice(OTHER_SUBJECTS),
                status="solved" if solved else "open",
                tags=["support"],
                created_at=created,
                updated_at=created,
                solved_at=created + timedelta(hours=rng.uniform(0.2, 30)) if solved else None,
                resolution_seconds=int(rng.uniform(600, 100000)) if solved else None,
                csat_score=rng.choice((3, 4, 4, 5, 5)) if solved and rng.random() < 0.4 else None,
            )
        )
    for i in range(n_billing):
        category = _weighted(rng, categories)
        _, minutes, auto_p, kinds = CATEGORY_PROFILE[category]
        ticket_id = f"{MARKER}-{month.key}-b{i}"
        created = _moment(rng, month, until)
        solved = rng.random() < 0.95
        seconds = max(30, int(rng.gauss(minutes * 60, minutes * 15)))
        escalate = rng.random() < 0.15
        helpdesk_escalated = escalate and rng.random() < 0.3
        writer.tickets.append(
            HelpdeskTicket(
                workspace=ws,
                installation=writer.installation,
                external_id=ticket_id,
                subject=SUBJECTS[category],
                status="solved" if solved else "open",
                tags=[category.replace("_request", "").replace("_question", ""), "billing"],
                category=category,
                is_billing=True,
                created_at=created,
                updated_at=created + timedelta(seconds=seconds),
                solved_at=created + timedelta(seconds=seconds) if solved else None,
                resolution_seconds=seconds if solved else None,
                escalated=helpdesk_escalated,
                csat_score=(
                    _weighted(rng, ((5, 55), (4, 30), (3, 10), (2, 3), (1, 2)))
                    if solved and rng.random() < 0.6
                    else None
                ),
            )
        )
        at = created + timedelta(seconds=min(seconds - 5, rng.randint(20, 120)))
        if escalate and not helpdesk_escalated:
            _escalated_action(writer, rng, category, ticket_id, at)
        elif not escalate and rng.random() < auto_p:
            _direct_action(writer, rng, rng.choice(kinds), ticket_id, at)
    # Actions without a synced ticket (panel use on tickets outside the export window).
    for _ in range(int(40 * scale)):
        kind = rng.choice(("generate_payment_link", "resend_invoice", "update_payment_method"))
        _direct_action(writer, rng, kind, "", _moment(rng, month, until))
    # Provider calls and webhook events.
    for _ in range(int(900 * scale)):
        operation = _weighted(rng, [(o, share) for o, share, _ in OPERATIONS])
        mean = next(ms for o, _, ms in OPERATIONS if o == operation)
        roll = rng.random()
        outcome = "unavailable" if roll < 0.0005 else "error" if roll < 0.01 else "ok"
        writer.calls.append(
            ProviderCall(
                workspace=ws,
                provider=ws.provider,
                operation=operation,
                duration_ms=max(20, int(rng.lognormvariate(0, 0.35) * mean)),
                outcome=outcome,
                error_code={"ok": "", "error": "card_declined", "unavailable": "timeout"}[outcome],
                created_at=_moment(rng, month, until),
            )
        )
    for i in range(int(600 * scale)):
        received = _moment(rng, month, until)
        status = "failed" if rng.random() < 0.001 else "processed"
        event = StripeEvent(
            workspace=ws,
            event_id=f"evt_{MARKER}_{month.key}_{i}",
            type=rng.choice(("invoice.paid", "charge.succeeded", "customer.updated")),
            created=received,
            payload={"id": f"evt_{MARKER}_{month.key}_{i}", "object": "event"},
            status=status,
            attempts=1,
            processed_at=received,
        )
        writer.events.append((event, received))
    _seed_payments(ws, rng, month, until, int(300 * scale))
    return _seed_failures(ws, rng, month, until, int(26 * scale))


def _seed_payments(
    workspace: Workspace, rng: random.Random, month: Month, until: datetime, count: int
) -> None:
    """Ordinary successful renewals: most charges succeed (payment processing success)."""
    from .mirror import mirror_upsert

    for i in range(count):
        paid = _moment(rng, month, until)
        amount = rng.choice((4900, 9900, 24000, 49000, 120000))
        mirror_upsert(
            workspace=workspace,
            obj={
                "id": f"ch_hist_{month.key.replace('-', '')}_ok{i}",
                "object": "charge",
                "customer": f"cus_hist_{i % 97:03d}",
                "amount": amount,
                "amount_captured": amount,
                "currency": workspace.base_currency.lower(),
                "status": "succeeded",
                "paid": True,
                "created": int(paid.timestamp()),
                "outcome": {"type": "authorized"},
            },
            source_updated=int(paid.timestamp()),
        )


def _direct_action(
    writer: _Writer, rng: random.Random, kind: str, ticket: str, at: datetime
) -> None:
    ms = {"issue_refund": 2100, "refund_duplicate_charge": 1900, "change_plan": 1800}.get(kind, 900)
    status = BillingAction.Status.SUCCEEDED if rng.random() < 0.985 else BillingAction.Status.FAILED
    params: dict[str, Any] = {}
    result: dict[str, Any] = {}
    amount = None
    if kind == ActionKind.APPLY_CREDIT:
        amount = rng.randrange(1000, 9900, 100)
    elif kind in (ActionKind.ISSUE_REFUND, ActionKind.REFUND_DUPLICATE_CHARGE):
        amount = rng.randrange(2000, 60000, 100)
        params["reason"] = (
            "duplicate"
            if kind == ActionKind.REFUND_DUPLICATE_CHARGE
            else _weighted(rng, REFUND_REASONS)
        )
    elif kind == ActionKind.CHANGE_PLAN:
        upgrade = rng.random() < 0.66
        result = {
            "direction": "upgrade" if upgrade else "downgrade",
            "mrr_delta": (1 if upgrade else -1) * rng.choice((20000, 35000, 50000)),
        }
    writer.action(
        kind,
        at,
        ticket=ticket,
        status=status,
        amount=amount,
        params=params,
        result=result if status == BillingAction.Status.SUCCEEDED else {},
        duration_ms=max(80, int(rng.gauss(ms, ms / 4))),
    )


def _escalated_action(
    writer: _Writer, rng: random.Random, category: str, ticket: str, at: datetime
) -> None:
    refund = category in (TicketCategory.REFUND_REQUEST, TicketCategory.DUPLICATE_CHARGE) or (
        rng.random() < 0.4
    )
    kind = ActionKind.ISSUE_REFUND if refund else ActionKind.APPLY_CREDIT
    amount = rng.randrange(20000, 250000, 100)
    decided = at + timedelta(minutes=rng.uniform(20, 260))
    outcome = _weighted(rng, (("manager", 70), ("vp", 18), ("denied", 12)))
    approved = outcome != "denied"
    action = writer.action(
        kind,
        at,
        ticket=ticket,
        role=Role.L1,
        decision=BillingAction.Decision.APPROVAL,
        status=BillingAction.Status.SUCCEEDED if approved else BillingAction.Status.DENIED,
        amount=amount,
        params={"reason": _weighted(rng, REFUND_REASONS)} if refund else {},
        duration_ms=max(200, int(rng.gauss(2100, 400))) if approved else None,
    )
    role = {"manager": Role.MANAGER, "vp": Role.VP}.get(outcome, Role.MANAGER)
    writer.approvals.append(
        (
            ApprovalRequest(
                action=action,
                workspace=writer.workspace,
                required_roles=[role.value],
                reason="above the agent's limit",
                status="approved" if approved else "denied",
                decided_role=role.value,
                decided_at=decided,
                comment="" if approved else "outside the refund policy",
                expires_at=at + timedelta(hours=writer.workspace.approval_ttl_hours),
            ),
            at,
        )
    )


def _seed_failures(
    workspace: Workspace, rng: random.Random, month: Month, until: datetime, count: int
) -> int:
    """Mirrored subscriptions with failed payments: most recovered, some churned."""
    from .mirror import mirror_upsert

    made = 0
    for i in range(count):
        failed_at = _moment(rng, month, until - timedelta(hours=1))
        key = f"{month.key.replace('-', '')}_{i}"
        customer, sub, invoice = f"cus_hist_{key}", f"sub_hist_{key}", f"in_hist_{key}"
        amount = rng.choice((4900, 9900, 24000, 49000, 120000))
        decline = _weighted(rng, DECLINES)
        roll = rng.random()
        recovered = roll < 0.78
        churned = not recovered and roll < 0.84
        ts = int(failed_at.timestamp())
        recovered_at = failed_at + timedelta(hours=rng.uniform(2, 60))
        recovered_at = min(recovered_at, until - timedelta(minutes=1))
        ended = failed_at + timedelta(days=rng.uniform(1, 6)) if churned else None
        if ended is not None and ended >= until:
            ended = None
        price = {
            "id": f"price_hist_{amount}",
            "object": "price",
            "currency": workspace.base_currency.lower(),
            "unit_amount": amount,
            "recurring": {"interval": "month", "interval_count": 1},
            "product": "prod_hist",
            "active": True,
        }
        objects: list[dict[str, Any]] = [
            {
                "id": customer,
                "object": "customer",
                "email": f"history-{key}@customers.example",
                "name": f"History Customer {key}",
                "created": ts - 86400 * 200,
                "currency": workspace.base_currency.lower(),
            },
            {
                "id": sub,
                "object": "subscription",
                "customer": customer,
                "status": "canceled" if ended else "active" if recovered else "past_due",
                "currency": workspace.base_currency.lower(),
                "created": ts - 86400 * 200,
                "start_date": ts - 86400 * 200,
                "ended_at": int(ended.timestamp()) if ended else None,
                "canceled_at": int(ended.timestamp()) if ended else None,
                "cancellation_details": {"reason": "payment_failed"} if ended else {},
                "items": {
                    "object": "list",
                    "has_more": False,
                    "data": [
                        {
                            "id": f"si_hist_{key}",
                            "object": "subscription_item",
                            "price": price,
                            "quantity": 1,
                        }
                    ],
                },
            },
            {
                "id": invoice,
                "object": "invoice",
                "customer": customer,
                "subscription": sub,
                "status": "paid" if recovered else "open",
                "currency": workspace.base_currency.lower(),
                "amount_due": amount,
                "total": amount,
                "subtotal": amount,
                "attempt_count": 1 if recovered else 3,
                "created": ts - 60,
                "status_transitions": {"paid_at": int(recovered_at.timestamp())}
                if recovered
                else {},
            },
            {
                "id": f"ch_hist_{key}_f",
                "object": "charge",
                "customer": customer,
                "invoice": invoice,
                "amount": amount,
                "currency": workspace.base_currency.lower(),
                "status": "failed",
                "paid": False,
                "created": ts,
                "failure_code": "expired_card" if decline == "expired_card" else "card_declined",
                "failure_message": "Your card was declined.",
                "outcome": {"type": "issuer_declined", "reason": decline},
            },
        ]
        if recovered:
            objects.append(
                {
                    "id": f"ch_hist_{key}_s",
                    "object": "charge",
                    "customer": customer,
                    "invoice": invoice,
                    "amount": amount,
                    "amount_captured": amount,
                    "currency": workspace.base_currency.lower(),
                    "status": "succeeded",
                    "paid": True,
                    "created": int(recovered_at.timestamp()),
                    "outcome": {"type": "authorized"},
                }
            )
        for obj in objects:
            mirror_upsert(workspace=workspace, obj=obj, source_updated=ts)
        made += 1
    return made


@transaction.atomic
def demo_history_seed(
    *, workspace: Workspace, months: int = 3, as_of: datetime | None = None, scale: float = 1.0
) -> DemoHistory:
    """``months`` of history up to ``as_of`` (default now) for ``workspace``; idempotent."""
    if BillingAction.objects.filter(
        workspace=workspace, idempotency_key__startswith=f"{MARKER}-"
    ).exists():
        return DemoHistory(created=False)
    link = workspace.installation_links.select_related("installation").first()
    if link is None:
        raise ValueError(f"workspace {workspace.slug} has no helpdesk installation to seed")
    until = (as_of or timezone.now()).astimezone(UTC)
    rng = random.Random(f"{MARKER}:{workspace.slug}")  # noqa: S311 - demo data, not security
    actor, _ = User.objects.get_or_create(
        username=f"{MARKER}:{workspace.slug}"[:150],
        defaults={"first_name": "Demo", "last_name": "Agents", "is_active": False},
    )
    writer = _Writer(workspace, actor, link.installation)
    current = Month.of(until)
    failures = 0
    for offset in range(months - 1, -1, -1):
        failures += _seed_month(writer, rng, current.shift(-offset), until, scale)
    writer.save()
    # The payment-failure records (and their recoveries) of the mirrored failures, as the
    # payment-failure workflow keeps them: the dashboard counts failures from those.
    from .payment_failures import payment_failures_sync

    payment_failures_sync(
        workspace=workspace,
        customer_ids=MirrorCustomer.objects.filter(
            workspace=workspace, stripe_id__startswith="cus_hist_"
        ).values_list("stripe_id", flat=True),
    )
    return DemoHistory(
        created=True,
        tickets=len(writer.tickets),
        actions=len(writer.actions),
        approvals=len(writer.approvals),
        provider_calls=len(writer.calls),
        events=len(writer.events),
        failures=failures,
    )
