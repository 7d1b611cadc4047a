"""Recording what an execution did: ``succeeded``, ``failed`` or held ``outcome_unknown``.

Every outcome is written under a row lock on the action and only while the action
is still open (``executing`` or ``outcome_unknown``), so the first recorder wins and
nothing is recorded as done that was not done — or as not done that may have been.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import fields, is_dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db import DatabaseError, close_old_connections, connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from ... import words as W
from ...catalog import ActionKind
from ...clock import billing_now
from ...errors import BillingDeskError, ProviderError, ProviderOutcomeUnknown
from ...models import BillingAction, CustomerFlag
from ...money import Money
from ...selectors.action_messages import customer_message_for
from ...words import Words, error_words, with_words
from .. import notes
from ..audit import action_event, audit_append
from ..context_cache import customer_context_invalidate
from ..rollups import rollups_action_recorded, rollups_outcome_update
from .kinds import OPEN
from .run import Run

log = logging.getLogger(__name__)


def to_json(value: Any) -> Any:
    """A provider result (dataclasses, ``Money``, datetimes) as JSON for ``BillingAction.result``."""
    if isinstance(value, Money):
        return value.to_dict()
    if is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_json(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Decimal):
        return format(value.normalize(), "f")
    if isinstance(value, Mapping):
        return {str(k): to_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_json(v) for v in value]
    return value


def record_success(
    action: BillingAction, result: dict[str, Any], object_id: str, *, run: Run, started: float
) -> BillingAction:
    """Record what the provider did. The money has moved: never record a failure here.

    A database error is retried once on a fresh connection; if the audit row still
    cannot be written, the action stays ``executing`` and the caller gets 503
    ``action_not_recorded``. A retry with the same idempotency key, or the periodic
    reconciliation (``services.reconcile``), takes it over once it is stale and
    replays the provider call with the same provider idempotency key — which
    returns the first result instead of acting twice — then records it.
    """
    for attempt in (1, 2):
        try:
            return _succeed(action, result, object_id, run=run, started=started)
        except DatabaseError:
            log.exception("action %s: recording the provider's result failed", action.pk)
            if attempt == 1 and not connection.in_atomic_block:
                close_old_connections()  # drop a broken connection; the retry reconnects
    raise BillingDeskError(
        _(
            "The billing provider carried this out, but it could not be recorded yet. It will "
            "be reconciled; retry with the same idempotency key, never with a new one."
        ),
        code="action_not_recorded",
        status=503,
        details={"action_id": str(action.pk), "provider_object_id": object_id},
    )


class _Lost(Exception):
    """Another recorder finished the action first: roll back what this one wrote."""


def _succeed(
    action: BillingAction, result: dict[str, Any], object_id: str, *, run: Run, started: float
) -> BillingAction:
    """One transaction after the provider answered: the outcome, its note, the stale context.

    The outcome is a conditional UPDATE (``status`` still open), which is the guard a
    ``SELECT … FOR UPDATE`` and a save used to be: of any number of recorders — this
    request, a takeover, reconciliation — exactly one matches; the others roll back
    and return the winner's row. The note's outbox row is INSERTed first, in the same
    transaction (its text is written when it is delivered: ``notes.action_note_record``),
    so the note exists exactly when the outcome does.
    """
    values: dict[str, Any] = {
        "status": BillingAction.Status.SUCCEEDED,
        "result": result,
        "provider_object_id": object_id[:255],
        "provider_ms": run.provider_ms,
        "completed_at": timezone.now(),
        "error_code": "",
        "error_message": "",
        "words": _without_error(action),
    }
    previous = {
        name: getattr(action, name)
        for name in (*values, "customer_message", "note_status", "duration_ms")
    }
    for name, value in values.items():
        setattr(action, name, value)
    try:
        # Read before the transaction (the playbook's wording): the transaction only writes.
        customer = run.prepared.customer if run.prepared is not None else None
        values["customer_message"] = action.customer_message = customer_message_for(
            action=action, customer=customer
        )
        with transaction.atomic():
            if notes.action_note_record(action=action):
                values["note_status"] = BillingAction.NoteStatus.PENDING
            values["duration_ms"] = int((time.monotonic() - started) * 1000)
            for name, value in values.items():
                setattr(action, name, value)
            # The UPDATE and the roll-ups' upkeep in one statement (PostgreSQL); the
            # monitoring flag, when there is one, comes after it.
            if not rollups_outcome_update(action, values, open_statuses=OPEN):
                raise _Lost
            _after_success(action)
            customer_context_invalidate(
                workspace_id=action.workspace_id, customer_id=action.customer_id
            )
            # The audit chain's head is locked last, after the roll-ups (one lock order
            # everywhere: docs/audit.md).
            audit_append(
                workspace_id=action.workspace_id, events=[action_event("action.succeeded", action)]
            )
    except _Lost:
        for name, value in previous.items():
            setattr(action, name, value)
        return _winner(action)
    except BaseException:
        for name, value in previous.items():
            setattr(action, name, value)
        raise
    for name, value in values.items():
        setattr(action, name, value)
    return action


def _winner(action: BillingAction) -> BillingAction:
    """The action as whoever finished it first recorded it."""
    found = BillingAction.objects.select_related("workspace").get(pk=action.pk)
    found.replayed = getattr(action, "replayed", False)  # type: ignore[attr-defined]
    return found


def _after_success(action: BillingAction) -> None:
    """Local records an action leaves besides the provider's: the 30-day monitoring flag."""
    if action.kind == ActionKind.REFUND_DUPLICATE_CHARGE:
        workspace = action.workspace
        CustomerFlag.objects.update_or_create(
            workspace=workspace,
            customer_id=action.customer_id,
            kind=CustomerFlag.Kind.PAYMENT_MONITORING,
            defaults={
                "active_until": billing_now(workspace)
                + timedelta(days=workspace.payment_monitoring_days),
                "reason": f"duplicate charge {action.result.get('charge_id', '')} refunded",
                "action": action,
                "set_by": action.actor,
            },
        )


def _without_error(action: BillingAction) -> dict[str, Any]:
    return {k: v for k, v in (action.words or {}).items() if k != "error"}


def _with_error(action: BillingAction, exc: BillingDeskError) -> tuple[str, dict[str, Any]]:
    """The error as stored: English text (audit, exports), and its words when it has them
    (each reader's language). A message with no words is stored as it came."""
    words = exc.words if isinstance(exc.words, Words) else None
    text = words.english() if words else str(exc.message)
    stored = _without_error(action)
    if words:
        stored["error"] = words.to_json()
    return text, stored


def record_failure(
    action: BillingAction, exc: BillingDeskError, *, started: float, provider_ms: int
) -> BillingAction:
    details: dict[str, Any] = {"code": exc.code}
    if isinstance(exc, ProviderError):
        details.update(
            provider_code=exc.provider_code, decline_code=exc.decline_code, retryable=exc.retryable
        )
    error_message, words = _with_error(action, exc)
    values: dict[str, Any] = {
        "status": BillingAction.Status.FAILED,
        "error_code": exc.code[:64],
        "error_message": error_message,
        "words": words,
        "result": {"error": details},
        "provider_ms": provider_ms,
        "completed_at": timezone.now(),
        "duration_ms": int((time.monotonic() - started) * 1000),
    }
    # A conditional UPDATE: only while the action is open, so the first recorder wins.
    previous = {name: getattr(action, name) for name in values}
    for name, value in values.items():
        setattr(action, name, value)
    try:
        with transaction.atomic():
            # The UPDATE and the roll-ups' upkeep in one statement (PostgreSQL).
            won = rollups_outcome_update(action, values, open_statuses=OPEN)
            if won:
                customer_context_invalidate(
                    workspace_id=action.workspace_id, customer_id=action.customer_id
                )
                # The audit chain's head last, after the roll-ups (docs/audit.md).
                audit_append(
                    workspace_id=action.workspace_id,
                    events=[action_event("action.failed", action)],
                )
    except BaseException:
        for name, value in previous.items():
            setattr(action, name, value)
        raise
    if not won:
        for name, value in previous.items():
            setattr(action, name, value)
        return _winner(action)
    return action


def hold_unknown(
    action: BillingAction,
    exc: ProviderOutcomeUnknown,
    *,
    started: float,
    provider_ms: int,
    recorded: Mapping[str, Any] | None = None,
) -> BillingAction:
    """The provider may have acted: keep the action open as ``outcome_unknown``.

    The error says so honestly; no audit result, note or customer message is written
    until reconciliation (``services.reconcile``) learns what the provider did.
    ``completed_at`` stays empty: the action is not finished. ``recorded`` (what the
    executor learned before its write, such as the MRR change) is kept for it.
    """
    details: dict[str, Any] = {
        "code": exc.code,
        "provider_code": exc.provider_code,
        "error_class": (exc.details or {}).get("error_class", ""),
    }
    with transaction.atomic():
        locked = BillingAction.objects.select_for_update().get(pk=action.pk)
        if locked.status not in OPEN:
            return locked
        locked.status = BillingAction.Status.OUTCOME_UNKNOWN
        locked.error_code = exc.code[:64]
        locked.error_message, locked.words = _with_error(locked, exc)
        # Keep what submission recorded (a refund's charge_id): the guard and the
        # refundable remainder read it while the outcome is open.
        # ``sent_at`` dates the provider idempotency key (reconciliation replays it for 23 h).
        sent_at = (locked.result or {}).get("sent_at") or (
            locked.started_at or timezone.now()
        ).isoformat()
        locked.result = {
            **(locked.result or {}),
            **(recorded or {}),
            "error": details,
            "sent_at": sent_at,
        }
        locked.provider_ms = (locked.provider_ms or 0) + provider_ms
        locked.duration_ms = int((time.monotonic() - started) * 1000)
        locked.save()
        rollups_action_recorded(locked)
        customer_context_invalidate(
            workspace_id=locked.workspace_id, customer_id=locked.customer_id
        )
        # The audit chain's head last, after the roll-ups (docs/audit.md).
        audit_append(
            workspace_id=locked.workspace_id,
            events=[action_event("action.outcome_unknown", locked)],
        )
    log.warning("action %s: provider outcome unknown (%s)", locked.pk, details["error_class"])
    locked.replayed = getattr(action, "replayed", False)  # type: ignore[attr-defined]
    return locked


def record_refusal(
    action: BillingAction,
    exc: BillingDeskError,
    *,
    started: float,
    provider_ms: int,
    may_have_acted: bool,
    recorded: Mapping[str, Any] | None = None,
) -> BillingAction:
    """``failed`` when nothing can have happened; held ``outcome_unknown`` when it may have.

    It may have when a provider call answered before the error, or when this execution
    takes over from one that died (an earlier attempt may have acted).
    """
    if may_have_acted:
        unknown = with_words(
            ProviderOutcomeUnknown(
                "", details={"error_class": type(exc).__name__, "cause": exc.code}
            ),
            W.gettext(
                "Billing Desk could not confirm what the billing provider did (%(error)s); it "
                "is confirming it. Do not submit it again.",
                error=error_words(exc),
            ),
        )
        return hold_unknown(
            action, unknown, started=started, provider_ms=provider_ms, recorded=recorded
        )
    return record_failure(action, exc, started=started, provider_ms=provider_ms)
