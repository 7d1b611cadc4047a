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

from django.conf import settings
from django.db import IntegrityError
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from ...catalog import ActionKind, Role
from ...errors import Conflict, NotPermitted, ValidationFailed
from ...models import ApprovalRequest, BillingAction, MirrorCustomer
from ...money import Money, convert
from ...policy import Allow, Decision, Deny, NeedsApproval, PolicyRules
from ...words import action_reason
from .. import notes
from ..audit import action_event, approval_event, audit_append
from ..context_cache import customer_context_invalidate
from ..identity import AgentContext
from ..locks import customer_decision_lock
from ..rollups import rollups_action_recorded
from .decision import action_decide, not_permitted_error, open_outcome_conflict
from .execution import action_await, execute_prepared
from .keys import request_fingerprint
from .kinds import REFUND_KINDS, action_kind_parse
from .params import action_params_validate
from .preconditions import Prepared, action_customer
from .reads import DecisionRead, decision_read


def approval_request_create(*, action: BillingAction, decision: NeedsApproval) -> ApprovalRequest:
    """Escalate ``action`` (already saved as ``pending_approval``) to the roles the policy named;
    the requester's ticket gets a note that approval was asked for, in the same transaction."""
    workspace = action.workspace
    approval = ApprovalRequest.objects.create(
        action=action,
        workspace=workspace,
        required_roles=[Role(r).value for r in decision.approver_roles],
        reason=stored_reason(decision),
        reason_words=decision.words.to_json() if decision.words else [],
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


def stored_reason(decision: Decision) -> str:
    """The reason as stored: in English (the site's language), whoever decided; readers show
    the stored words (``decision.words``) in their own language."""
    return decision.words.english() if decision.words else decision.reason


def _stored_words(decision: Decision) -> dict[str, Any]:
    """``BillingAction.words``: the requester's language (notes about the action are written
    in it, whoever records them) and the reason as words."""
    stored: dict[str, Any] = {"locale": translation.get_language() or settings.LANGUAGE_CODE}
    if decision.words:
        stored["decision"] = decision.words.to_json()
    return stored


def _decision_fields(decision: Decision) -> tuple[str, str, BillingAction.Status]:
    reason = stored_reason(decision)
    if isinstance(decision, Allow):
        return BillingAction.Decision.ALLOW, reason, BillingAction.Status.EXECUTING
    if isinstance(decision, NeedsApproval):
        return BillingAction.Decision.APPROVAL, reason, BillingAction.Status.PENDING_APPROVAL
    return BillingAction.Decision.DENY, reason, BillingAction.Status.NOT_PERMITTED


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
            _("This idempotency key was already used by another agent; send a new key."),
            code="idempotency_key_owned_by_another_agent",
        )
    if existing.request_fingerprint != fingerprint:
        raise Conflict(
            _("This idempotency key was already used for a different request."),
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
    return not_permitted_error(action_reason(action), action_id=str(action.pk))


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
            _("An idempotency_key of 1 to 255 characters is required."),
            code="idempotency_key_invalid",
        )
    clean = action_params_validate(kind=kind, params=params)
    fingerprint = request_fingerprint(kind=kind.value, customer_id=customer_id, params=clean)

    existing: BillingAction | None = None
    try:
        # Decide and INSERT under the customer's decision lock (services.locks): the history
        # read here counts every earlier submission for this customer, in flight or done, as
        # if they had come one by one. The lock is released on commit, before any provider
        # call. The first read under it (reads.decision_read) also says whether this key was
        # used — a twin may have committed while we waited — so a replay decides nothing.
        with customer_decision_lock(workspace=workspace, customer_id=customer_id):
            read = decision_read(
                workspace=workspace,
                customer_id=customer_id,
                key=key,
                kind=kind,
                params=clean,
                role=role,
            )
            if read.customer is None:  # no such customer; a replay of a key still answers
                existing = BillingAction.objects.filter(
                    workspace=workspace, idempotency_key=key
                ).first()
                if existing is None:
                    action_customer(workspace, customer_id)  # raises customer_not_found
            elif read.existing_id is not None:
                existing = BillingAction.objects.get(pk=read.existing_id)
            else:
                action, decision, prepared = _decide_and_record(
                    context=context,
                    kind=kind,
                    customer=read.customer,
                    read=read,
                    clean=clean,
                    key=key,
                    fingerprint=fingerprint,
                    ticket_id=ticket_id,
                    handling_started_at=handling_started_at,
                    started=started,
                )
    except IntegrityError:
        existing = BillingAction.objects.filter(workspace=workspace, idempotency_key=key).first()
        if existing is None:  # not the idempotency constraint
            raise
    if existing is not None:
        return _replay(existing, fingerprint, actor_id=user.pk)
    action.replayed = False  # type: ignore[attr-defined]

    if isinstance(decision, Deny):
        raise _not_permitted(action)
    if isinstance(decision, NeedsApproval):
        return action
    return execute_prepared(action=action, prepared=prepared, started=started)


def _decide_and_record(
    *,
    context: AgentContext,
    kind: ActionKind,
    customer: MirrorCustomer,
    read: DecisionRead,
    clean: dict[str, Any],
    key: str,
    fingerprint: str,
    ticket_id: str,
    handling_started_at: datetime | None,
    started: float,
) -> tuple[BillingAction, Decision, Prepared]:
    """Inside the decision lock: decide, INSERT the action, and for an escalation or a
    refusal everything it leaves (the request, its note, the stale context) — one commit.

    An action that executes now leaves the context and the roll-ups to its outcome's
    transaction: one invalidation and one roll-up report per action, not two.
    """
    workspace, user, role = context.workspace, context.user, context.role
    customer_id = customer.stripe_id
    if customer.deleted:
        action_customer(workspace, customer_id)  # raises customer_deleted
    if read.open_action_id is not None:
        raise open_outcome_conflict(
            BillingAction.objects.get(pk=read.open_action_id), read.open_noun
        )
    assert read.rules is not None
    # The one decision the dry run also gives (decision.action_decide).
    decided = action_decide(
        context=context, kind=kind, customer=customer, params=clean, rules=read.rules, guarded=True
    )
    prepared, decision = decided.prepared, decided.decision
    outcome, reason, status = _decision_fields(decision)
    now = timezone.now()
    executing = status == BillingAction.Status.EXECUTING
    action = BillingAction(
        workspace=workspace,
        installation=context.installation if context.installation else None,
        actor=user,
        actor_role=role.value,
        channel=(
            BillingAction.Channel.AGENT
            if context.self_service_limit is None
            else BillingAction.Channel.SELF_SERVICE
        ),
        ticket_id=str(ticket_id or "")[:64],
        customer_id=customer_id,
        kind=kind.value,
        params=clean,
        amount=prepared.amount.amount if prepared.amount else None,
        currency=prepared.amount.currency if prepared.amount else "",
        amount_base=_amount_base(prepared.amount, read.rules),
        status=status,
        decision=outcome,
        decision_reason=reason,
        words=_stored_words(decision),
        idempotency_key=key,
        request_fingerprint=fingerprint,
        provider=workspace.provider,
        started_at=now if executing else None,
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
    if not executing:  # its handling ends here: timed now, not by an UPDATE after commit
        action.duration_ms = int((time.monotonic() - started) * 1000)
    action.save(force_insert=True)
    audited = [action_event("action.submitted", action, actor_id=user.pk)]
    if isinstance(decision, NeedsApproval):
        approval = approval_request_create(action=action, decision=decision)
        audited.append(approval_event("approval.requested", approval, actor_id=user.pk))
    else:
        # No approval request exists: the API's answer reads none without asking.
        BillingAction.approval.related.set_cached_value(action, None)
    if not executing:
        # An action that executes now is reported by its outcome's transaction (record_success,
        # record_failure, hold_unknown — reconciliation's too), once, with what it did.
        if status != BillingAction.Status.NOT_PERMITTED:  # a refused action is in no figure
            rollups_action_recorded(action)
        customer_context_invalidate(workspace_id=workspace.pk, customer_id=customer_id)
    # The audit chain's entries commit with the action (services.audit: one statement). The
    # head is locked last, after the roll-ups: one lock order everywhere (docs/audit.md).
    audit_append(workspace_id=workspace.pk, events=audited)
    return action, decision, prepared
