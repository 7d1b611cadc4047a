"""Submission: validate → idempotency → decide under the customer's lock → INSERT →
execute now, or hand off to an approver (``ApprovalRequest``), or refuse.

The approval hand-off lives here, not in ``services.approvals``: submitting only
writes the request; ``services.approvals`` decides it and calls back into this
package to execute, so the two import each other in one direction only.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db import IntegrityError
from django.utils import timezone

from ...catalog import ActionKind, Role
from ...errors import Conflict, NotPermitted, ValidationFailed
from ...models import ApprovalRequest, BillingAction
from ...money import Money, convert
from ...policy import Allow, Decision, Deny, NeedsApproval, PolicyRules
from .. import notes
from ..context_cache import customer_context_invalidate
from ..identity import AgentContext
from ..locks import customer_decision_lock
from ..policy import policy_rules_load
from ..rollups import rollups_action_changed
from .decision import action_decide, not_permitted_error
from .execution import action_await, execute_prepared
from .keys import request_fingerprint
from .kinds import REFUND_KINDS, action_kind_parse
from .params import action_params_validate
from .preconditions import action_customer


def approval_request_create(*, action: BillingAction, decision: NeedsApproval) -> ApprovalRequest:
    """Escalate ``action`` (already saved as ``pending_approval``) to the roles the policy named;
    the requester's ticket gets a note that approval was asked for, in the same transaction."""
    workspace = action.workspace
    approval = ApprovalRequest.objects.create(
        action=action,
        workspace=workspace,
        required_roles=[Role(r).value for r in decision.approver_roles],
        reason=decision.reason,
        expires_at=timezone.now() + timedelta(hours=workspace.approval_ttl_hours),
    )
    notes.approval_request_note_enqueue(approval=approval)
    return approval


def _amount_base(amount: Money | None, rules: PolicyRules) -> int | None:
    if amount is None:
        return None
    if amount.currency == rules.base_currency:
        return amount.amount
    rate = rules.rates.get(amount.currency)
    return convert(amount.amount, amount.currency, rules.base_currency, rate) if rate else None


def _decision_fields(decision: Decision) -> tuple[str, str, BillingAction.Status]:
    if isinstance(decision, Allow):
        return BillingAction.Decision.ALLOW, decision.reason, BillingAction.Status.EXECUTING
    if isinstance(decision, NeedsApproval):
        return (
            BillingAction.Decision.APPROVAL,
            decision.reason,
            BillingAction.Status.PENDING_APPROVAL,
        )
    return BillingAction.Decision.DENY, decision.reason, BillingAction.Status.NOT_PERMITTED


def _replay(existing: BillingAction, fingerprint: str, *, actor_id: Any) -> BillingAction:
    """The first answer for a repeated idempotency key, to the agent who sent it first.

    Keys are unique per workspace, not per agent, so a key names one action. Another
    agent's key is refused before the payload is compared: it never replays someone
    else's action (an L1 agent would otherwise get a Manager's executed refund back as
    their own), and the refusal says nothing about that action or whether the payload
    matched. The same agent with another payload is refused too.
    """
    if existing.actor_id != actor_id:
        raise Conflict(
            "This idempotency key was already used by another agent; send a new key.",
            code="idempotency_key_owned_by_another_agent",
        )
    if existing.request_fingerprint != fingerprint:
        raise Conflict(
            "This idempotency key was already used for a different request.",
            code="idempotency_key_reused",
            details={"action_id": str(existing.pk)},
        )
    if existing.status == BillingAction.Status.EXECUTING:
        existing = action_await(action_id=existing.pk)
    existing.replayed = True  # type: ignore[attr-defined]
    if existing.status == BillingAction.Status.NOT_PERMITTED:
        raise _not_permitted(existing)
    return existing


def _not_permitted(action: BillingAction) -> NotPermitted:
    return not_permitted_error(action.decision_reason, action_id=str(action.pk))


# The panel's open time is kept only when it is plausible: in the past, within a day.
HANDLING_START_MAX_AGE = timedelta(hours=24)


def handling_start_accept(value: datetime | None, *, now: datetime) -> datetime | None:
    """``value`` (when the agent opened the panel on this ticket) if it is in the past and
    at most 24 hours old, else ``None``: a bad or stale time is dropped, never an error."""
    if value is None:
        return None
    if timezone.is_naive(value):
        value = timezone.make_aware(value, UTC)
    if value > now or now - value > HANDLING_START_MAX_AGE:
        return None
    return value


def action_submit(
    *,
    context: AgentContext,
    kind: ActionKind | str,
    customer_id: str,
    ticket_id: str,
    params: Mapping[str, Any] | None,
    idempotency_key: str,
    handling_started_at: datetime | None = None,
) -> BillingAction:
    """Submit one billing action for the calling agent; returns the recorded action.

    The result's ``status`` is ``succeeded``, ``failed`` or ``pending_approval``;
    a role that may neither do nor request it gets ``NotPermitted`` (the attempt
    is recorded first). Bad params, ids of another customer and unmet
    preconditions raise before anything is recorded or sent to the provider.
    The returned action carries ``replayed=True`` when the idempotency key had
    been used before for the same request (the first answer comes back).
    ``handling_started_at`` (the panel's open on this ticket) is stored when plausible
    (``handling_start_accept``); it is not part of the request's fingerprint.
    """
    started = time.monotonic()
    workspace, user, role = context.workspace, context.user, context.role
    kind = action_kind_parse(kind)
    key = (idempotency_key or "").strip()
    if not key or len(key) > 255:
        raise ValidationFailed(
            "An idempotency_key of 1 to 255 characters is required.", code="idempotency_key_invalid"
        )
    clean = action_params_validate(kind=kind, params=params)
    fingerprint = request_fingerprint(kind=kind.value, customer_id=customer_id, params=clean)

    existing = BillingAction.objects.filter(workspace=workspace, idempotency_key=key).first()
    if existing is not None:
        return _replay(existing, fingerprint, actor_id=user.pk)

    customer = action_customer(workspace, customer_id)
    rules = policy_rules_load(workspace=workspace)
    try:
        # Decide and INSERT under the customer's decision lock (services.locks): the history
        # read here counts every earlier submission for this customer, in flight or done, as
        # if they had come one by one. The lock is released on commit, before any provider call.
        with customer_decision_lock(workspace=workspace, customer_id=customer_id):
            # A twin with this key may have committed while we waited for the lock.
            existing = BillingAction.objects.filter(
                workspace=workspace, idempotency_key=key
            ).first()
            if existing is None:
                # The one decision the dry run also gives (decision.action_decide).
                decided = action_decide(
                    context=context, kind=kind, customer=customer, params=clean, rules=rules
                )
                prepared, decision = decided.prepared, decided.decision
                outcome, reason, status = _decision_fields(decision)
                now = timezone.now()
                action = BillingAction(
                    workspace=workspace,
                    installation=context.installation if context.installation else None,
                    actor=user,
                    actor_role=role.value,
                    ticket_id=str(ticket_id or "")[:64],
                    customer_id=customer_id,
                    kind=kind.value,
                    params=clean,
                    amount=prepared.amount.amount if prepared.amount else None,
                    currency=prepared.amount.currency if prepared.amount else "",
                    amount_base=_amount_base(prepared.amount, rules),
                    status=status,
                    decision=outcome,
                    decision_reason=reason,
                    idempotency_key=key,
                    request_fingerprint=fingerprint,
                    provider=workspace.provider,
                    started_at=now if status == BillingAction.Status.EXECUTING else None,
                    handling_started_at=handling_start_accept(handling_started_at, now=now),
                    # The charge a refund leaves, known before the provider answers, so the
                    # refundable remainder counts it while it is in flight.
                    result=(
                        {"charge_id": prepared.charge.stripe_id}
                        if kind.value in REFUND_KINDS and prepared.charge
                        else {}
                    ),
                )
                if status == BillingAction.Status.NOT_PERMITTED:
                    action.completed_at = now
                action.save(force_insert=True)
                if isinstance(decision, NeedsApproval):
                    approval_request_create(action=action, decision=decision)
                rollups_action_changed(action_id=action.pk)
    except IntegrityError:
        existing = BillingAction.objects.filter(workspace=workspace, idempotency_key=key).first()
        if existing is None:  # not the idempotency constraint
            raise
    if existing is not None:
        return _replay(existing, fingerprint, actor_id=user.pk)
    action.replayed = False  # type: ignore[attr-defined]
    customer_context_invalidate(workspace_id=workspace.pk, customer_id=customer_id)

    if isinstance(decision, Deny):
        _finish_timing(action, started)
        raise _not_permitted(action)
    if isinstance(decision, NeedsApproval):
        _finish_timing(action, started)
        return action
    return execute_prepared(action=action, prepared=prepared, started=started)


def _finish_timing(action: BillingAction, started: float) -> None:
    action.duration_ms = int((time.monotonic() - started) * 1000)
    BillingAction.objects.filter(pk=action.pk).update(duration_ms=action.duration_ms)
