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
other. Plan changes, seat changes and discounts act on the history customers'
subscriptions and record their MRR change from those subscriptions' prices
(``history.subscriptions``), as executed actions do.

Idempotent: a workspace that already has demo history is left alone.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.contrib.auth.models import User
from django.db import transaction

from ...clock import billing_now
from ...models import (
    BillingAction,
    HelpdeskTicket,
    MirrorCustomer,
    ProviderCall,
    StripeEvent,
    Workspace,
)
from ...selectors.months import Month
from ...services.payment_failures import payment_failures_sync
from ...services.rollups import rollups_rebuild
from .actions import direct_action, escalated_action
from .payments import agent_recoveries_link, failures_seed, payments_seed
from .profile import CATEGORY_PROFILE, MARKER, OPERATIONS, OTHER_SUBJECTS, SUBJECTS
from .writer import HistoryWriter, moment, weighted


@dataclass(frozen=True)
class DemoHistory:
    created: bool
    tickets: int = 0
    actions: int = 0
    approvals: int = 0
    provider_calls: int = 0
    events: int = 0
    failures: int = 0


def month_seed(
    writer: HistoryWriter, rng: random.Random, month: Month, until: datetime, scale: float
) -> int:
    """One month of tickets, actions, approvals, calls and events; returns failures made."""
    ws = writer.workspace
    n_billing = max(1, int(110 * scale))
    n_other = max(1, int(n_billing * 7.3))
    categories = [(c, p[0]) for c, p in CATEGORY_PROFILE.items()]
    for i in range(n_other):
        created = moment(rng, month, until)
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
        category = weighted(rng, categories)
        _, minutes, auto_p, kinds = CATEGORY_PROFILE[category]
        ticket_id = f"{MARKER}-{month.key}-b{i}"
        created = moment(rng, month, until)
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
                    weighted(rng, ((5, 55), (4, 30), (3, 10), (2, 3), (1, 2)))
                    if solved and rng.random() < 0.6
                    else None
                ),
            )
        )
        at = created + timedelta(seconds=min(seconds - 5, rng.randint(20, 120)))
        if escalate and not helpdesk_escalated:
            escalated_action(writer, rng, category, ticket_id, at)
        elif not escalate and rng.random() < auto_p:
            direct_action(writer, rng, rng.choice(kinds), ticket_id, at)
    # Actions without a synced ticket (panel use on tickets outside the export window).
    for _ in range(int(40 * scale)):
        kind = rng.choice(("generate_payment_link", "resend_invoice", "update_payment_method"))
        direct_action(writer, rng, kind, "", moment(rng, month, until))
    # Provider calls and webhook events.
    for _ in range(int(900 * scale)):
        operation = weighted(rng, [(o, share) for o, share, _ in OPERATIONS])
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
                created_at=moment(rng, month, until),
            )
        )
    for i in range(int(600 * scale)):
        received = moment(rng, month, until)
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
    payments_seed(ws, rng, month, until, int(300 * scale))
    return failures_seed(ws, rng, month, until, int(26 * scale), writer=writer)


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
    until = (as_of or billing_now(workspace)).astimezone(UTC)
    rng = random.Random(f"{MARKER}:{workspace.slug}")  # noqa: S311 - demo data, not security
    actor, _ = User.objects.get_or_create(
        username=f"{MARKER}:{workspace.slug}"[:150],
        defaults={"first_name": "Demo", "last_name": "Agents", "is_active": False},
    )
    writer = HistoryWriter(workspace, actor, link.installation)
    current = Month.of(until)
    failures = 0
    for offset in range(months - 1, -1, -1):
        failures += month_seed(writer, rng, current.shift(-offset), until, scale)
    writer.save()
    # The payment-failure records (and their recoveries) of the mirrored failures, as the
    # payment-failure workflow keeps them: the dashboard counts failures from those.

    payment_failures_sync(
        workspace=workspace,
        customer_ids=MirrorCustomer.objects.filter(
            workspace=workspace, stripe_id__startswith="cus_hist_"
        ).values_list("stripe_id", flat=True),
    )
    agent_recoveries_link(writer)
    rollups_rebuild(workspace=workspace)  # the history was bulk-written: roll it up once
    return DemoHistory(
        created=True,
        tickets=len(writer.tickets),
        actions=len(writer.actions),
        approvals=len(writer.approvals),
        provider_calls=len(writer.calls),
        events=len(writer.events),
        failures=failures,
    )
