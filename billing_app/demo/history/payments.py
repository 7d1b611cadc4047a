"""The history's mirrored payments: ordinary renewals, and failed payments (most recovered).

About half the recoveries follow an agent's recovery action on the customer (a payment
link, a card-update link, a grace period) taken between the failure and the payment;
some unrecovered failures had one too. ``agent_recoveries_link`` then credits those
recoveries to the action, as the payment-failure workflow does when the payment arrives.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from typing import Any

from ...models import BillingAction, PaymentFailure, Workspace
from ...selectors.months import Month
from ...services.mirror import mirror_upsert
from .profile import (
    AGENT_RECOVERED_SHARE,
    AGENT_TRIED_UNRECOVERED_SHARE,
    DECLINES,
    RECOVERY_KINDS,
)
from .writer import HistoryWriter, moment, weighted


def payments_seed(
    workspace: Workspace, rng: random.Random, month: Month, until: datetime, count: int
) -> None:
    """Ordinary successful renewals: most charges succeed (payment processing success)."""

    for i in range(count):
        paid = moment(rng, month, until)
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


def _agent_intervention(
    writer: HistoryWriter,
    *,
    customer: str,
    attempt_key: str,
    failed_at: datetime,
    recovered_at: datetime | None,
    until: datetime,
) -> None:
    """Maybe an agent's recovery action on ``customer`` after its failure (own generator)."""
    rng = writer.recovery_rng
    if recovered_at is not None:
        if rng.random() >= AGENT_RECOVERED_SHARE:
            return
        at = failed_at + (recovered_at - failed_at) * rng.uniform(0.1, 0.7)
    else:
        if rng.random() >= AGENT_TRIED_UNRECOVERED_SHARE:
            return
        at = min(failed_at + timedelta(hours=rng.uniform(1, 30)), until - timedelta(minutes=2))
        if at <= failed_at:
            return
    kind = weighted(rng, RECOVERY_KINDS)
    action = writer.action(
        kind,
        at,
        customer_id=customer,
        duration_ms=max(80, int(rng.gauss(300, 60))),
    )
    if recovered_at is not None:
        writer.recoveries[attempt_key] = action


def agent_recoveries_link(writer: HistoryWriter) -> None:
    """After the failure records exist: date each history failure's record at its failure
    (the history happened then), and credit the recoveries that followed an agent's
    action to that action, as ``services.payment_failures`` does for a live payment."""
    failures = PaymentFailure.objects.filter(
        workspace=writer.workspace, customer_id__startswith="cus_hist_"
    )
    rows = list(failures.only("pk", "failed_at", "attempt_key"))
    for row in rows:
        row.created_at = row.failed_at
        row.updated_at = row.failed_at
    PaymentFailure.objects.bulk_update(rows, ["created_at", "updated_at"], batch_size=500)
    saved = {
        a.idempotency_key: a
        for a in BillingAction.objects.filter(
            workspace=writer.workspace,
            idempotency_key__in=[a.idempotency_key for a in writer.recoveries.values()],
        )
    }
    for attempt_key, action in writer.recoveries.items():
        failures.filter(attempt_key=attempt_key, recovered_at__isnull=False).update(
            recovered_by=PaymentFailure.RecoveredBy.AGENT_ACTION,
            recovery_action=saved[action.idempotency_key],
        )


def failures_seed(
    workspace: Workspace,
    rng: random.Random,
    month: Month,
    until: datetime,
    count: int,
    writer: HistoryWriter | None = None,
) -> int:
    """Mirrored subscriptions with failed payments: most recovered, some churned."""

    made = 0
    for i in range(count):
        failed_at = moment(rng, month, until - timedelta(hours=1))
        key = f"{month.key.replace('-', '')}_{i}"
        customer, sub, invoice = f"cus_hist_{key}", f"sub_hist_{key}", f"in_hist_{key}"
        amount = rng.choice((4900, 9900, 24000, 49000, 120000))
        decline = weighted(rng, DECLINES)
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
        if writer is not None:
            _agent_intervention(
                writer,
                customer=customer,
                attempt_key=f"ch_hist_{key}_f",
                failed_at=failed_at,
                recovered_at=recovered_at if recovered else None,
                until=until,
            )
        made += 1
    return made
