"""Finishing actions whose outcome Billing Desk does not know yet.

Two kinds: actions left ``executing`` (below), and actions ``outcome_unknown`` — a
write was sent to the provider and no answer came back (read timeout, connection
reset after sending, 5xx). ``actions_unknown_reconcile`` resolves the latter,
every 30 seconds from Celery beat, so an open action is settled within a minute
of the provider answering again:

1. The provider is searched for the write by the action id Billing Desk writes into
   its metadata (``find_action_write``). Found → ``succeeded`` with what was found.
2. Within Stripe's idempotency-key lifetime (24 hours; we stop an hour short), the
   provider call is replayed with the *same* provider idempotency key: Stripe
   returns its first answer instead of acting again — or acts now, once, if the
   first request never got through. An answer → ``succeeded``, or ``failed`` when
   Stripe definitively refused; no answer → still open.
3. After that, only the metadata search is valid (a replayed key would be a new
   request): proven absent → ``failed``; a kind that cannot be searched stays open
   and is logged for a person to settle.

Success is recorded by the same code as a normal success (``record_success``): the
audit result, the internal note and the customer message are written then, once.

Stale ``executing`` actions:

An action is ``executing`` only while one caller runs its provider call and records
the result. If that caller disappears — the process was killed, or the database
refused the audit write after the provider had acted — the row stays
``executing``: nothing was recorded as done, and nothing may be done twice.

``actions_stale_reconcile`` (a periodic task) takes over every action that has
been ``executing`` longer than ``BILLING_DESK_ACTION_STALE_SECONDS`` — with the
same conditional claim ``actions.action_await`` uses, so one taker wins — and
executes it again. The provider call carries the same provider idempotency key
(derived from the action id), so a provider that already acted returns its first
result (Stripe replays the key; a refund whose answer was lost is also found by
the action id in its metadata) and the action is recorded ``succeeded``; one that
never acted acts now, once.
"""

from __future__ import annotations

import logging
import time
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from ..catalog import ActionKind
from ..errors import (
    BillingDeskError,
    Conflict,
    PreconditionFailed,
    ProviderError,
    ProviderOutcomeUnknown,
    ProviderUnavailable,
)
from ..models import BillingAction
from ..providers import get_provider
from ..providers.base import WRITE_ABSENT, WriteFound
from .actions import (
    EXECUTORS,
    Run,
    action_claim,
    action_customer,
    action_execute,
    action_prepare,
    record_failure,
    record_success,
    stale_executing_before,
    to_json,
)
from .actions.mrr import mrr_recorded
from .audit import action_event, audit_append
from .mirror import mirror_provider_changes
from .self_service_refunds.status import self_service_refund_sync

logger = logging.getLogger(__name__)

# Stripe keeps an idempotency key 24 hours; replaying closer to that risks a new request.
IDEMPOTENCY_KEY_LIFETIME = timedelta(hours=23)


def actions_stale_reconcile(*, now: datetime | None = None, limit: int = 100) -> int:
    """Take over and finish stale ``executing`` actions; returns how many were taken over."""
    candidates = list(
        BillingAction.objects.filter(
            status=BillingAction.Status.EXECUTING, started_at__lt=stale_executing_before(now)
        ).values_list("pk", "started_at")[:limit]
    )
    taken = 0
    for action_id, started_at in candidates:
        status = BillingAction.Status.EXECUTING
        if not action_claim(action_id=action_id, status=status, started_at=started_at):
            # another taker (or the original caller) got there first
            continue
        taken += 1
        logger.warning("reconciling stale executing action %s", action_id)
        try:
            action_execute(action_id=action_id, takeover=True)
        except Exception:  # one bad action must not stop the others; it stays executing
            logger.exception("reconciling action %s failed", action_id)
        self_service_refund_sync(action_id=action_id)  # a customer's request follows it
    return taken


def actions_unknown_reconcile(*, now: datetime | None = None, limit: int = 100) -> int:
    """Resolve ``outcome_unknown`` actions with the provider; returns how many were settled."""
    now = now or timezone.now()
    candidates = list(
        BillingAction.objects.filter(status=BillingAction.Status.OUTCOME_UNKNOWN)
        .order_by("started_at")
        .values_list("pk", "started_at")[:limit]
    )
    settled = 0
    for action_id, started_at in candidates:
        # One resolver per action (an overlapping beat run, or two workers, skip what
        # another has claimed).
        status = BillingAction.Status.OUTCOME_UNKNOWN
        if not action_claim(action_id=action_id, status=status, started_at=started_at):
            continue
        try:
            action = action_outcome_resolve(action_id=action_id, now=now)
        except Exception:  # one bad action must not stop the others; it stays open
            logger.exception("resolving action %s with an unknown outcome failed", action_id)
            continue
        if action.status != BillingAction.Status.OUTCOME_UNKNOWN:
            settled += 1
            self_service_refund_sync(action_id=action_id)  # a customer's request follows it
    return settled


def action_outcome_resolve(*, action_id: Any, now: datetime | None = None) -> BillingAction:
    """Ask the provider what one ``outcome_unknown`` action did, and record it if it answers.

    The key's age is counted from ``result.sent_at`` (when the action was first held
    open; ``started_at`` moves with each claim), else from ``created_at``.
    """
    started = time.monotonic()
    now = now or timezone.now()
    action = BillingAction.objects.select_related("workspace", "actor").get(pk=action_id)
    if action.status != BillingAction.Status.OUTCOME_UNKNOWN:
        return action
    provider = get_provider(action.workspace)
    charge_id = str((action.result or {}).get("charge_id") or action.params.get("charge_id") or "")

    try:
        found = provider.find_action_write(
            action_id=str(action.pk),
            kind=action.kind,
            customer_id=action.customer_id,
            params=dict(action.params),
            charge_id=charge_id,
        )
    except ProviderUnavailable:
        return action  # the provider is still not answering: try again next round
    except BillingDeskError as exc:
        logger.warning("action %s: searching the provider failed: %s", action.pk, exc.code)
        found = None
    if isinstance(found, WriteFound):
        logger.info("action %s: found %s by its metadata", action.pk, found.object_id)
        mirror_provider_changes(workspace=action.workspace, result=found)
        # The MRR change the executor recorded before its write was lost.
        result = to_json(found.result) | mrr_recorded(action.result) | {"reconciled": "metadata"}
        return record_success(
            action, result, found.object_id, run=Run(action, None, provider), started=started
        )

    if _first_sent(action) < now - IDEMPOTENCY_KEY_LIFETIME:
        if found == WRITE_ABSENT:
            return record_failure(
                action,
                BillingDeskError(
                    "Stripe has no record of this action: it was not carried out.",
                    code="provider_no_record",
                    status=502,
                ),
                started=started,
                provider_ms=0,
            )
        logger.warning(
            "action %s: outcome still unknown after the provider's key expired; "
            "a person must check the billing system",
            action.pk,
        )
        return action

    # Replay with the same provider idempotency key.
    try:
        prepared = action_prepare(
            kind=ActionKind(action.kind),
            workspace=action.workspace,
            customer=action_customer(action.workspace, action.customer_id),
            params=action.params,
            exclude_action_id=action.pk,
        )
    except BillingDeskError as exc:
        # The mirror may already show our own lost write (already refunded, already
        # canceled): only a search that proved absence makes this a failure.
        return _settle_refusal(action, exc, found, started=started, provider_ms=0)
    run = Run(action, prepared, provider)
    try:
        result, object_id = EXECUTORS[ActionKind(action.kind)](run)
    except ProviderUnavailable as exc:  # unknown again, or not reachable: still open
        _touch(action, exc)
        return BillingAction.objects.get(pk=action.pk)
    except BillingDeskError as exc:
        return _settle_refusal(action, exc, found, started=started, provider_ms=run.provider_ms)
    logger.info("action %s: the provider answered the replayed key", action.pk)
    return record_success(action, result, object_id, run=run, started=started)


def _first_sent(action: BillingAction) -> datetime:
    value = (action.result or {}).get("sent_at")
    try:
        return datetime.fromisoformat(value) if value else action.created_at
    except (TypeError, ValueError):
        return action.created_at


def _settle_refusal(
    action: BillingAction,
    exc: BillingDeskError,
    found: object,
    *,
    started: float,
    provider_ms: int,
) -> BillingAction:
    """A replay was refused: failed if that is conclusive, else still open.

    Conclusive: the search proved no write exists, or Stripe itself refused the
    replayed request (with the same key Stripe replays its first answer, so its 4xx
    is the first request's fate). Our own precondition checks are not: the state
    they see may be the lost write's doing.
    """
    stripe_refused = isinstance(exc, ProviderError) and not isinstance(
        exc, ProviderUnavailable | ProviderOutcomeUnknown
    )
    # A Conflict (Stripe's idempotency error) means the first request is still running
    # at Stripe, or ran with these very keys: never proof that nothing happened.
    conclusive = found == WRITE_ABSENT or (
        stripe_refused and not isinstance(exc, PreconditionFailed)
    )
    if conclusive and not isinstance(exc, Conflict):
        return record_failure(action, exc, started=started, provider_ms=provider_ms)
    logger.warning("action %s: replay refused (%s); outcome still unknown", action.pk, exc.code)
    _touch(action, exc)
    return BillingAction.objects.get(pk=action.pk)


def _touch(action: BillingAction, exc: BillingDeskError) -> None:
    """Keep the action open, noting the latest attempt (never claiming nothing changed)."""
    with transaction.atomic():
        touched = BillingAction.objects.filter(
            pk=action.pk, status=BillingAction.Status.OUTCOME_UNKNOWN
        ).update(
            result={
                **(action.result or {}),
                "reconcile": {"last_code": exc.code, "at": timezone.now().isoformat()},
            }
        )
        if touched:  # the chain records the row as it now is
            row = BillingAction.objects.get(pk=action.pk)
            audit_append(
                workspace_id=row.workspace_id, events=[action_event("action.reconciling", row)]
            )


def actions_reconcile(*, now: datetime | None = None) -> dict[str, int]:
    """Both reconciliations, as the periodic task runs them."""
    return {
        "unknown_settled": actions_unknown_reconcile(now=now),
        "stale_taken_over": actions_stale_reconcile(now=now),
    }
