"""The transactional outbox: the row is the truth, the broker only a doorbell (DESIGN.md 9).

Why: with Redis down for 18 s, notes enqueued with ``on_commit(task.delay)`` stayed
``pending`` for good (the message was never sent and nothing looked again), the
webhook endpoint answered HTML 500 (``delay`` raised inside ``on_commit``), and a
worker killed mid-task held its message for the broker's visibility timeout.

The shape of one side effect:

1. ``outbox_enqueue`` writes an ``OutboxMessage`` **in the caller's transaction**, so
   the effect exists exactly when the change it reports exists (a rolled-back
   action leaves no note to post). ``dedupe_key`` is unique: enqueueing the same
   effect twice finds the first row.
2. After commit it rings the doorbell — ``tasks.outbox.outbox_deliver_task``, named
   through ``billing_app.queue`` (a service never imports a task) — and a
   broker error is logged in one line and swallowed: the request that made the
   change never fails because the broker is down; the row stays ``pending``.
3. ``outbox_message_deliver`` **claims** the row with one conditional UPDATE
   (``pending`` and due, or ``sending`` with a lapsed lease → ``sending`` until
   ``now + LEASE``). The database serialises UPDATEs of one row and re-checks the
   WHERE clause, so of two workers (the doorbell's task and the re-drive, or two
   re-drive runs) exactly one gets ``1`` and delivers; the other skips. A worker
   killed after claiming holds the row only until its lease lapses.
4. Success → ``done``. A retryable failure (helpdesk timeout, 429, 5xx; Stripe
   unavailable; anything unexpected) → ``pending`` again with ``next_attempt_at``
   after an exponential backoff that honours ``Retry-After``; a refusal, or the
   last attempt → ``failed`` and the kind's give-up hook (the domain row says so).
   Each kind's deliver and give-up hooks are registered by the module that owns the
   kind (``outbox_handler_register``), so the outbox imports none of them.
5. ``outbox_redrive`` — Celery beat, every minute — delivers every row due, and
   re-drives ``StripeEvent`` rows that are still ``received`` or ``failed`` with
   attempts left (those rows already are their own outbox).

Retries are scheduled by the row (``next_attempt_at``) and not by Celery's
``countdown``: one scheduler, which survives a broker restart, and no ETA message
sitting unacknowledged in Redis past its ``visibility_timeout`` (Redis would hand
it to a second worker). Delivery is therefore at least once; helpdesk notes are
made exactly once on the ticket by a marker line and a read of the ticket before
any re-post whose earlier outcome is unknown (``services.notes``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from django.db import transaction
from django.db.models import F, Min, Q
from django.utils import timezone

from helpdesk_connectors.base import HelpdeskApiError

from ..errors import BillingDeskError, ProviderUnavailable
from ..models import OutboxMessage, StripeEvent
from ..queue import task_named

logger = logging.getLogger(__name__)

# A claim lapses after this: longer than one delivery can take (a few helpdesk calls of at
# most HELPDESK_HTTP_TIMEOUT_SECONDS each, soft time limit of the task below it), short
# enough that a killed worker's note goes out within minutes.
LEASE = timedelta(minutes=5)
# Attempts before giving up (the first post plus six retries, as the note task had).
MAX_ATTEMPTS = 7
BACKOFF_BASE_SECONDS = 30
BACKOFF_MAX_SECONDS = 3600
# A fresh row is left to its doorbell for this long before the re-drive may take it.
DOORBELL_GRACE = timedelta(seconds=60)
# The beat period of ``outbox_redrive_task`` (settings.CELERY_BEAT_SCHEDULE).
REDRIVE_PERIOD_SECONDS = 60
REDRIVE_BATCH = 200
# A run stops taking new rows after this, so runs do not pile up behind a slow helpdesk.
REDRIVE_BUDGET_SECONDS = 45.0
# The doorbell's task (``tasks.outbox``), named: a service never imports a task.
DELIVER_TASK = "billing_app.tasks.outbox.outbox_deliver_task"
# Alert when work has been due for longer than this without being re-driven: five missed
# re-drive periods means beat or the workers are not running (backoff alone never causes it).
OVERDUE_ALERT_SECONDS = 5 * REDRIVE_PERIOD_SECONDS


def backoff_seconds(*, attempts: int, retry_after: float | None = None) -> int:
    """After ``attempts`` failed attempts: 30 s, 60 s, 120 s … ≤ 1 h, never sooner than ``Retry-After``."""
    backoff = min(BACKOFF_BASE_SECONDS * (2 ** max(attempts - 1, 0)), BACKOFF_MAX_SECONDS)
    return int(max(backoff, retry_after or 0))


# --- 1 and 2: write the row, ring the doorbell -------------------------------------------------


def _ring(message_id: str) -> None:
    """Send the doorbell; the broker being down is logged in one line, never raised."""
    try:
        task_named(DELIVER_TASK).delay(message_id)
    except Exception as exc:  # kombu OperationalError, redis ConnectionError, DNS ...
        logger.warning(
            "outbox doorbell not sent for %s (%s); the re-drive will deliver it",
            message_id,
            type(exc).__name__,
        )


def outbox_enqueue(
    *,
    workspace_id: int,
    kind: str,
    target_id: str,
    dedupe_key: str,
    payload: dict[str, Any] | None = None,
) -> tuple[OutboxMessage, bool]:
    """Record one side effect in the caller's transaction; ``(message, created)``.

    The doorbell rings after the outermost transaction commits (at once outside
    one). An effect already recorded under ``dedupe_key`` is returned untouched.
    Two statements, no savepoint: ``INSERT … ON CONFLICT DO NOTHING`` (a concurrent
    twin waits for the first to commit, then does nothing — it never aborts the
    caller's transaction) and the row by its key, ours or the first's.
    """
    fresh = OutboxMessage(
        workspace_id=workspace_id,
        kind=kind,
        target_id=str(target_id)[:64],
        dedupe_key=dedupe_key[:255],
        payload=payload or {},
        next_attempt_at=timezone.now() + DOORBELL_GRACE,
    )
    OutboxMessage.objects.bulk_create([fresh], ignore_conflicts=True)
    message = OutboxMessage.objects.get(dedupe_key=fresh.dedupe_key)
    created = message.pk == fresh.pk
    if created:
        transaction.on_commit(partial(_ring, str(message.pk)))
    return message, created


def outbox_enqueue_new(
    *,
    workspace_id: int,
    kind: str,
    target_id: str,
    dedupe_key: str,
    payload: dict[str, Any] | None = None,
) -> OutboxMessage:
    """``outbox_enqueue`` in one statement, for a caller whose ``dedupe_key`` is new by
    construction (the actions service: its conditional status UPDATE, in the same
    transaction, makes ``<action>:<status>`` happen once).

    ``INSERT … ON CONFLICT DO NOTHING``: no ``SELECT`` first and no savepoint, and a
    conflicting row (which the caller's guard rules out) is left untouched — the
    doorbell then rings for an id that does not exist, and its task skips it.
    """
    message = OutboxMessage(
        workspace_id=workspace_id,
        kind=kind,
        target_id=str(target_id)[:64],
        dedupe_key=dedupe_key[:255],
        payload=payload or {},
        next_attempt_at=timezone.now() + DOORBELL_GRACE,
    )
    OutboxMessage.objects.bulk_create([message], ignore_conflicts=True)
    transaction.on_commit(partial(_ring, str(message.pk)))
    return message


# --- 3 and 4: claim, deliver, record ------------------------------------------------------------


def outbox_claim(*, message_id: Any, now: datetime | None = None, first: bool = False) -> bool:
    """Take the row for one attempt; True for exactly one of any number of concurrent callers.

    ``first``: the doorbell's own attempt may run before ``next_attempt_at`` (the grace
    that keeps the re-drive off fresh rows), but only while no attempt has been made.
    """
    now = now or timezone.now()
    due = Q(status=OutboxMessage.Status.PENDING, next_attempt_at__lte=now) | Q(
        status=OutboxMessage.Status.SENDING, lease_until__lte=now
    )
    if first:
        due |= Q(status=OutboxMessage.Status.PENDING, attempts=0)
    return bool(
        OutboxMessage.objects.filter(pk=message_id)
        .filter(due)
        .update(
            status=OutboxMessage.Status.SENDING,
            lease_until=now + LEASE,
            attempts=F("attempts") + 1,
        )
    )


@dataclass(frozen=True)
class Handler:
    """How one kind is delivered, and what its domain row records when the outbox gives up."""

    deliver: Callable[[OutboxMessage], str]
    give_up: Callable[[OutboxMessage, Exception], None]


_HANDLERS: dict[str, Handler] = {}


def outbox_handler_register(
    *,
    kind: str,
    deliver: Callable[[OutboxMessage], str],
    give_up: Callable[[OutboxMessage, Exception], None],
) -> None:
    """Register how ``kind`` is delivered (at import of the module that owns the kind).

    The owners — ``services.notes`` (action and approval notes) and
    ``services.payment_failures`` (escalation, invoice resolve) — import the outbox to
    write their messages; the outbox finds their handlers here instead of importing
    them back. Django imports both when it starts (``BillingAppConfig.ready``).
    """
    _HANDLERS[kind] = Handler(deliver, give_up)


def _retryable(exc: Exception) -> bool:
    if isinstance(exc, HelpdeskApiError):
        return exc.retryable
    if isinstance(exc, ProviderUnavailable):
        return True
    # A domain refusal is final; anything else (a bug, a database blip) is kept for another
    # attempt, bounded by MAX_ATTEMPTS.
    return not isinstance(exc, BillingDeskError)


def _describe(exc: Exception) -> str:
    code = getattr(exc, "code", "") or type(exc).__name__
    return f"{code}: {getattr(exc, 'message', '') or exc}"[:2000]


def outbox_message_deliver(
    *, message_id: Any, now: datetime | None = None, first: bool = False
) -> str:
    """Claim and deliver one row; returns its status afterwards, or ``"skipped"`` when
    another worker holds it, it is not due, or it is already done."""
    now = now or timezone.now()
    if not outbox_claim(message_id=message_id, now=now, first=first):
        return "skipped"
    message = OutboxMessage.objects.get(pk=message_id)
    handler = _HANDLERS.get(message.kind)
    try:
        if handler is None:
            raise BillingDeskError(f"No outbox handler for {message.kind!r}.", code="unknown_kind")
        ref = handler.deliver(message) or ""
    except Exception as exc:
        return _after_failure(message, exc, handler, now)
    OutboxMessage.objects.filter(pk=message.pk).update(
        status=OutboxMessage.Status.DONE,
        done_at=timezone.now(),
        lease_until=None,
        outcome_unknown=False,
        last_error="",
        result_ref=str(ref)[:255],
    )
    return OutboxMessage.Status.DONE


def _after_failure(
    message: OutboxMessage, exc: Exception, handler: Handler | None, now: datetime
) -> str:
    error = _describe(exc)
    if _retryable(exc) and message.attempts < MAX_ATTEMPTS:
        wait = backoff_seconds(
            attempts=message.attempts, retry_after=getattr(exc, "retry_after", None)
        )
        OutboxMessage.objects.filter(pk=message.pk, status=OutboxMessage.Status.SENDING).update(
            status=OutboxMessage.Status.PENDING,
            next_attempt_at=now + timedelta(seconds=wait),
            lease_until=None,
            last_error=error,
        )
        logger.warning(
            "outbox %s %s attempt %s failed (%s); next in %ss",
            message.kind,
            message.pk,
            message.attempts,
            error.split(":")[0],
            wait,
        )
        return OutboxMessage.Status.PENDING
    OutboxMessage.objects.filter(pk=message.pk).exclude(status=OutboxMessage.Status.DONE).update(
        status=OutboxMessage.Status.FAILED, lease_until=None, last_error=error
    )
    logger.warning(
        "outbox %s %s gave up after %s attempts (%s)",
        message.kind,
        message.pk,
        message.attempts,
        error.split(":")[0],
    )
    if handler is not None:
        handler.give_up(message, exc)
    return OutboxMessage.Status.FAILED


# --- 5: the re-drive ----------------------------------------------------------------------------


@dataclass(frozen=True)
class RedriveResult:
    delivered: int
    retried: int
    failed: int
    skipped: int
    stripe_events: int


def _due(now: datetime) -> Q:
    return Q(status=OutboxMessage.Status.PENDING, next_attempt_at__lte=now) | Q(
        status=OutboxMessage.Status.SENDING, lease_until__lte=now
    )


def outbox_redrive(*, now: datetime | None = None, limit: int = REDRIVE_BATCH) -> RedriveResult:
    """Deliver every row due (oldest first), then re-drive the Stripe events left behind.

    Safe to run concurrently with itself and with the doorbells' tasks: each row is
    claimed before it is delivered (``outbox_claim``).
    """
    from .webhooks import stripe_events_requeue

    now = now or timezone.now()
    ids = list(
        OutboxMessage.objects.filter(_due(now))
        .order_by("next_attempt_at")
        .values_list("pk", flat=True)[:limit]
    )
    counts = {"done": 0, "pending": 0, "failed": 0, "skipped": 0}
    started = time.monotonic()
    for message_id in ids:
        if time.monotonic() - started > REDRIVE_BUDGET_SECONDS:
            break
        outcome = outbox_message_deliver(message_id=message_id, now=now)
        counts[outcome] = counts.get(outcome, 0) + 1
    events = stripe_events_requeue(now=now)
    if ids or events:
        logger.info(
            "outbox re-drive: %s delivered, %s retried later, %s failed, %s skipped, "
            "%s stripe events",
            counts["done"],
            counts["pending"],
            counts["failed"],
            counts["skipped"],
            events,
        )
    return RedriveResult(
        delivered=counts["done"],
        retried=counts["pending"],
        failed=counts["failed"],
        skipped=counts["skipped"],
        stripe_events=events,
    )


# --- the alert figure ---------------------------------------------------------------------------


def outbox_backlog(*, now: datetime | None = None) -> dict[str, Any]:
    """What /readyz and the admin show: pending work, and work overdue for the re-drive.

    ``overdue`` counts rows due for longer than ``OVERDUE_ALERT_SECONDS`` and Stripe
    events received that long ago and not yet processed: above zero, beat or the
    workers are not running (a helpdesk outage only moves ``next_attempt_at`` forward).
    """
    now = now or timezone.now()
    alert_before = now - timedelta(seconds=OVERDUE_ALERT_SECONDS)
    open_rows = OutboxMessage.objects.filter(
        status__in=[OutboxMessage.Status.PENDING, OutboxMessage.Status.SENDING]
    )
    overdue = open_rows.filter(
        Q(status=OutboxMessage.Status.PENDING, next_attempt_at__lte=alert_before)
        | Q(status=OutboxMessage.Status.SENDING, lease_until__lte=alert_before)
    ).count()
    events_overdue = StripeEvent.objects.filter(
        status=StripeEvent.Status.RECEIVED, received_at__lte=alert_before
    ).count()
    oldest = open_rows.aggregate(oldest=Min("created_at"))["oldest"]
    return {
        "pending": open_rows.count(),
        "failed": OutboxMessage.objects.filter(status=OutboxMessage.Status.FAILED).count(),
        "overdue": overdue + events_overdue,
        "oldest_pending_seconds": int((now - oldest).total_seconds()) if oldest else 0,
        "alert_after_seconds": OVERDUE_ALERT_SECONDS,
    }
