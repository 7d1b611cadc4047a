"""Executing an action that is ``executing``: right after submission, after an approval,
or on taking over one whose worker died; and waiting for one another request runs."""

from __future__ import annotations

import logging
import time
from typing import Any

from django.utils.translation import gettext as _

from ... import words as W
from ...catalog import ActionKind
from ...errors import (
    BillingDeskError,
    Conflict,
    PreconditionFailed,
    ProviderError,
    ProviderOutcomeUnknown,
)
from ...models import BillingAction
from ...words import with_words
from .executors import EXECUTORS
from .keys import action_claim, setting_int, stale_executing_before
from .outcomes import hold_unknown, record_refusal, record_success
from .preconditions import Prepared, action_customer, action_prepare
from .run import Run, action_provider

log = logging.getLogger(__name__)


def action_await(*, action_id: Any, timeout: float | None = None) -> BillingAction:
    """Wait (bounded) for an action another request is executing; return its final state.

    The executor holds no lock during its provider call, so there is nothing to
    block on: poll with a short back-off. An action left ``executing`` longer than
    ``BILLING_DESK_ACTION_STALE_SECONDS`` (its worker died mid-call) is taken over
    and executed again with the same provider idempotency key, which makes the
    provider return its first result instead of acting twice.
    """
    wait = setting_int("BILLING_DESK_ACTION_WAIT_SECONDS", 30) if timeout is None else timeout
    deadline = time.monotonic() + wait
    delay = 0.02
    while True:
        action = BillingAction.objects.select_related("workspace").get(pk=action_id)
        if action.status != BillingAction.Status.EXECUTING:
            return action
        stale = bool(action.started_at and action.started_at < stale_executing_before())
        if stale and action_claim(
            action_id=action.pk, status=BillingAction.Status.EXECUTING, started_at=action.started_at
        ):
            log.warning("taking over stale executing action %s", action.pk)
            return action_execute(action_id=action.pk, takeover=True)
        if time.monotonic() >= deadline:
            raise Conflict(
                _(
                    "The first request with this idempotency key is still being processed; "
                    "try again shortly."
                ),
                code="action_in_progress",
                details={"action_id": str(action.pk)},
            )
        time.sleep(delay)
        delay = min(delay * 2, 0.5)


def action_execute(*, action_id: Any, takeover: bool = False) -> BillingAction:
    """Execute an action this caller has moved to ``executing`` (an approval, a takeover).

    Preconditions are checked again: the billing state may have changed while the
    request waited for approval. A ``takeover`` (the first executor died or lost the
    database mid-action) may follow a write the provider already made: our own checks
    then see its effect (``same_quantity``, ``already_paused``…) and the provider may
    refuse the replay, so neither can prove that nothing happened — the action is held
    ``outcome_unknown`` and reconciliation decides from what the provider has.
    """
    started = time.monotonic()
    action = BillingAction.objects.select_related("workspace", "actor").get(pk=action_id)
    if action.status != BillingAction.Status.EXECUTING:
        return action
    try:
        customer = action_customer(action.workspace, action.customer_id)
        prepared = action_prepare(
            kind=ActionKind(action.kind),
            workspace=action.workspace,
            customer=customer,
            params=action.params,
            exclude_action_id=action.pk,
        )
        if prepared.amount is not None and (
            prepared.amount.amount != action.amount or prepared.amount.currency != action.currency
        ):
            raise with_words(
                PreconditionFailed("", code="state_changed"),
                W.gettext(
                    "The amount is now %(amount)s, not what was approved.", amount=prepared.amount
                ),
            )
    except BillingDeskError as exc:
        return record_refusal(action, exc, started=started, provider_ms=0, may_have_acted=takeover)
    return execute_prepared(action=action, prepared=prepared, started=started, takeover=takeover)


def execute_prepared(
    *, action: BillingAction, prepared: Prepared, started: float, takeover: bool = False
) -> BillingAction:
    """Run the kind's executor and record what it did. A ``takeover`` follows an executor
    that died, whose write may already have happened: no error then proves nothing did."""
    try:
        provider = action_provider(action.workspace)
    except BillingDeskError as exc:  # not configured (no key, unknown provider): nothing sent
        return record_refusal(action, exc, started=started, provider_ms=0, may_have_acted=takeover)
    run = Run(action, prepared, provider)
    try:
        result, object_id = EXECUTORS[ActionKind(action.kind)](run)
    except ProviderOutcomeUnknown as exc:  # sent, no answer: held open, never "failed"
        return hold_unknown(
            action, exc, started=started, provider_ms=run.provider_ms, recorded=run.recorded
        )
    except BillingDeskError as exc:  # the provider refused, or the state changed under us
        return record_refusal(
            action,
            exc,
            started=started,
            provider_ms=run.provider_ms,
            may_have_acted=takeover,
            recorded=run.recorded,
        )
    except Exception as exc:
        log.exception("action %s failed unexpectedly", action.pk)
        error = with_words(
            ProviderError("", code="internal_error"),
            W.gettext("Unexpected error: %(error)s.", error=type(exc).__name__),
        )
        # After a provider call answered, the money may have moved: never "failed" then.
        return record_refusal(
            action,
            error,
            started=started,
            provider_ms=run.provider_ms,
            may_have_acted=takeover or run.calls > 0,
            recorded=run.recorded,
        )
    return record_success(action, result, object_id, run=run, started=started)
