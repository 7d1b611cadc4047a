"""Billing actions: one path for every kind of ``catalog.ActionKind``.

validate params → check preconditions against the mirror → policy → record the
attempt → execute now or escalate → provider → audit → note → customer message.

Exactly once (DESIGN.md section 9, STYLE.md 11):

* The ``BillingAction`` row is INSERTed first, in its own short transaction (it
  commits before the provider is called: a crash after the provider acted leaves a
  row to reconcile), and the unique constraint (workspace, idempotency_key) decides
  who owns the submission. Only the inserter (or, for an escalated action, the one approver
  whose conditional ``pending_approval → executing`` update matched) calls the
  provider. Every other concurrent or repeated submission with the same key
  loads the row and answers with it: same agent and fingerprint → the first
  answer (waiting, bounded, while it is still ``executing``); another payload →
  ``Conflict`` ``idempotency_key_reused``; another agent → ``Conflict``
  ``idempotency_key_owned_by_another_agent`` (a key is never a way to read or
  replay someone else's action).
* Decisions that count history (the refund pattern, a charge's refundable
  remainder) are taken under a per-customer lock (``services.locks``): the
  policy is evaluated and the row INSERTed in one short transaction that first
  locks the customer's ``CustomerLock`` row, and the history counts refunds
  still in flight (executing, outcome unknown, pending approval). N concurrent
  submissions for one customer get the decisions they would get one by one.
* No database lock is held while the provider is called: the decision lock is
  released when the INSERT commits, the status transition is the guard, so a
  slow provider never blocks the table or the customer.
* The provider's idempotency key is derived from the action id
  (``billing-desk-<action id>-<kind>``), so a retry after a timeout — ours, or a
  takeover of an action whose worker died mid-call — cannot move money twice.
* The outcome is one transaction after the provider answered: a conditional UPDATE
  (still open → succeeded or failed: the first recorder wins), the note's outbox row,
  the roll-ups and the context's staleness mark (``outcomes``).
* A failure leaves the action ``failed`` with the provider's error; nothing is
  recorded as done that was not done.
* Nothing is recorded as *not* done that may have been: a write sent without an
  answer (``ProviderOutcomeUnknown``: read timeout, reset after sending, 5xx)
  leaves the action ``outcome_unknown`` — no audit result, note or customer
  message yet. ``services.reconcile`` resolves it with the provider (same
  provider idempotency key, or the action id in the provider's metadata) and
  only then records success or failure. Meanwhile ``decision.open_outcome_guard``
  refuses the same money action on the same charge, subscription or balance
  under a new key (409 ``action_outcome_unknown``): that resubmission is how a
  lost answer used to become a second refund.


Modules (each imports only those listed before it):

* ``kinds`` — groups of kinds and statuses; ``keys`` — the request fingerprint,
  the provider idempotency key, the claim of an open action, the stale threshold.
* ``params`` — the parameters of each kind, validated by one serializer per kind.
* ``refunds`` — what has left a charge and the customer's refund history.
* ``preconditions`` — the checks against the mirror (``action_prepare``).
* ``run`` — one execution's provider calls (the provider, keys, bounded retries).
* ``outcomes`` — recording ``succeeded``, ``failed`` or ``outcome_unknown``.
* ``executors`` — one executor per kind; ``mrr`` — the MRR change they record.
* ``execution`` — executing an ``executing`` action; waiting for one in progress.
* ``decision`` — ``action_decide``, the one decision the submission and the dry run
  share (open-outcome guard, preconditions, history, matrix), and ``action_dry_run``.
* ``reads`` — the submission's one read under the lock: customer, replay, open outcome,
  the matrix as it applies to the request.
* ``submit`` — ``action_submit`` and the hand-off to ``services.approvals``.
* ``preview`` — the plan-change preview.

``services.approvals`` and ``services.reconcile`` import this package; it imports
neither.
"""

from __future__ import annotations

from ...clock import billing_now
from .decision import DryRun, action_decide, action_dry_run
from .execution import action_await, action_execute, execute_prepared
from .executors import EXECUTORS
from .keys import (
    action_claim,
    provider_deadline_seconds,
    provider_idempotency_key,
    provider_retries,
    request_fingerprint,
    stale_executing_before,
)
from .kinds import (
    OPEN,
    REFUND_KINDS,
    REFUNDS_IN_FLIGHT,
    SUBSCRIPTION_KINDS,
    TERMINAL,
)
from .outcomes import (
    hold_unknown,
    record_failure,
    record_refusal,
    record_success,
    to_json,
)
from .params import REFUND_REASONS, action_params_validate
from .preconditions import (
    Prepared,
    action_customer,
    action_prepare,
    plan_item,
    subscription_items,
)
from .preview import plan_change_preview
from .refunds import refund_history, refundable, refunded_amount
from .run import Run, action_provider
from .submit import action_submit, approval_request_create

__all__ = [
    "EXECUTORS",
    "OPEN",
    "REFUNDS_IN_FLIGHT",
    "REFUND_KINDS",
    "REFUND_REASONS",
    "SUBSCRIPTION_KINDS",
    "TERMINAL",
    "DryRun",
    "Prepared",
    "Run",
    "action_await",
    "action_claim",
    "action_customer",
    "action_decide",
    "action_dry_run",
    "action_execute",
    "action_params_validate",
    "action_prepare",
    "action_provider",
    "action_submit",
    "approval_request_create",
    "billing_now",
    "execute_prepared",
    "hold_unknown",
    "plan_change_preview",
    "plan_item",
    "provider_deadline_seconds",
    "provider_idempotency_key",
    "provider_retries",
    "record_failure",
    "record_refusal",
    "record_success",
    "refund_history",
    "refundable",
    "refunded_amount",
    "request_fingerprint",
    "stale_executing_before",
    "subscription_items",
    "to_json",
]
