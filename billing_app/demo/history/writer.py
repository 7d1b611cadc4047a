"""Collects the history's rows and writes them in bulk, with their historical timestamps."""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from typing import Any

from django.contrib.auth.models import User

from ...catalog import Role
from ...models import (
    ApprovalRequest,
    BillingAction,
    HelpdeskTicket,
    ProviderCall,
    StripeEvent,
    Workspace,
)
from ...selectors.months import Month
from ...services.audit import audit_chain_backfill
from .profile import HANDLING_MINUTES, HISTORY_CUSTOMERS, MARKER, UNTIMED_SHARE
from .subscriptions import HistorySubscription, history_subscription


def weighted(rng: random.Random, pairs: Any) -> Any:
    items, weights = zip(*[(p[0], p[1]) for p in pairs], strict=True)
    return rng.choices(items, weights=weights, k=1)[0]


def moment(rng: random.Random, month: Month, until: datetime) -> datetime:
    """A random moment of ``month`` before ``until``."""
    end = min(month.end, until)
    if end <= month.start + timedelta(seconds=120):
        return month.start
    span = int((end - month.start).total_seconds()) - 60
    return month.start + timedelta(seconds=rng.randrange(span))


class HistoryWriter:
    """Collects rows and writes them in bulk, then restores the historical timestamps."""

    def __init__(self, workspace: Workspace, actor: User, installation: Any):
        self.workspace, self.actor, self.installation = workspace, actor, installation
        self.tickets: list[HelpdeskTicket] = []
        self.actions: list[BillingAction] = []
        self.action_times: dict[Any, datetime] = {}
        self.approvals: list[tuple[ApprovalRequest, datetime]] = []
        self.calls: list[ProviderCall] = []
        self.events: list[tuple[StripeEvent, datetime]] = []
        self.subscriptions: dict[int, HistorySubscription] = {}
        self.serial = 0
        # Handling times draw from their own generator, so the other figures stay the same.
        self.handling_rng = random.Random(f"{MARKER}:handling:{workspace.slug}")  # noqa: S311
        self.recovery_rng = random.Random(f"{MARKER}:recovery:{workspace.slug}")  # noqa: S311
        # Failure attempt key → the agent's action its recovery followed.
        self.recoveries: dict[str, BillingAction] = {}

    def handling_started(self, kind: str, end: datetime) -> datetime | None:
        """When the agent opened the panel for an action whose agent part ended at ``end``
        (None for the few actions taken without the panel's open time)."""
        rng = self.handling_rng
        if rng.random() < UNTIMED_SHARE:
            return None
        mean = HANDLING_MINUTES.get(kind, 1.5) * 60
        return end - timedelta(seconds=max(10.0, rng.gauss(mean, mean / 4)))

    def next_customer(self) -> int:
        """The history customer the next action is for (actions take turns over them)."""
        return (self.serial + 1) % HISTORY_CUSTOMERS

    def subscription(self, customer: int) -> HistorySubscription:
        """That customer's subscription as the history has changed it so far."""
        return self.subscriptions.get(customer) or history_subscription(customer)

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
        customer_id: str = "",
    ) -> BillingAction:
        customer = self.next_customer()
        self.serial += 1
        completed = at + timedelta(milliseconds=duration_ms or 0)
        # The agent's part ends at the request's submission when it went for approval.
        agent_done = at if decision == BillingAction.Decision.APPROVAL else completed
        row = BillingAction(
            workspace=self.workspace,
            installation=self.installation,
            actor=self.actor,
            actor_role=role,
            ticket_id=ticket,
            customer_id=customer_id or f"cus_hist_{customer:03d}",
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
            completed_at=completed,
            handling_started_at=self.handling_started(kind, agent_done),
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
        # The history joins the workspace's audit chain, as a migration's backfill would.
        audit_chain_backfill(workspace_id=self.workspace.pk)
        ProviderCall.objects.bulk_create(self.calls, batch_size=1000)
        events = [e for e, _ in self.events]
        StripeEvent.objects.bulk_create(events, batch_size=500)
        for event, received in self.events:
            event.received_at = received
        StripeEvent.objects.bulk_update(events, ["received_at"], batch_size=500)
