"""The decision a billing action gets — one function for the execution and the dry run.

``action_decide`` runs every check that decides what a submission does, in the order
the submission runs them: the open-outcome guard, the preconditions against the mirror
(``action_prepare``: ownership, refund window, refundable remainder counting refunds in
flight, seats in use, subscription state...), the customer's refund history (in-flight
refunds counted) and the permission matrix (``policy.decide``: the role's cell, its
limit in the workspace's base currency with the admin's exchange rates — no rate is an
approval, fail safe — the approval route, and the role group's guardian permission).

``action_submit`` calls it under the customer's decision lock and then records and
executes; ``action_dry_run`` calls it and writes nothing. The dry run's answer is the
execution's by construction: there is no second copy of the rules to drift.

What the dry run cannot foresee is the provider's own answer at execution (Stripe down,
a card declined, Stripe's checks on the live object): the execution may then fail, and
says so.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils.translation import gettext as _
from django.utils.translation import pgettext

from ... import words as W
from ...action_words import language
from ...catalog import KIND_POLICY_ACTION, ActionKind, PolicyAction, Role
from ...clock import billing_now
from ...errors import (
    BillingDeskError,
    Conflict,
    NotFound,
    NotPermitted,
    PreconditionFailed,
    ValidationFailed,
)
from ...models import BillingAction, MirrorCustomer
from ...money import Money
from ...policy import (
    ActionRequest,
    Allow,
    Decision,
    Deny,
    History,
    NeedsApproval,
    PolicyRules,
    decide,
    measure,
    route_for,
)
from ...vocabulary import action_label
from ..identity import AgentContext
from ..policy import policy_rules_load
from .keys import stale_executing_before
from .kinds import REFUND_KINDS, SUBSCRIPTION_KINDS, action_kind_parse
from .params import action_params_validate
from .preconditions import Prepared, action_customer, action_prepare
from .refunds import RefundLedger


def open_outcome_scope(
    *, workspace: Any, kind: ActionKind, customer_id: str, params: Mapping[str, Any]
) -> tuple[QuerySet[BillingAction], str] | None:
    """The open actions on the request's object, oldest first, and the object in words;
    ``None`` for a kind that moves nothing open-ended (a link, an invoice resend).

    Open: ``outcome_unknown`` (sent, no answer: the provider may have acted), or
    ``executing`` for longer than ``BILLING_DESK_ACTION_STALE_SECONDS`` (its worker
    died mid-call: equally unknown). A fresh ``executing`` action is not open here:
    the decision lock already counts it as in flight, so concurrent submissions keep
    the decisions they would get one by one. Same object: a refund on the same charge,
    any subscription change on the same subscription, a credit on the same customer.
    """
    if kind.value in REFUND_KINDS:
        charges = list(params.get("charge_ids") or [params.get("charge_id")])
        scope = Q(kind__in=REFUND_KINDS) & (
            Q(result__charge_id__in=charges) | Q(params__charge_id__in=charges)
        )
        noun = _("this payment")
    elif kind.value in SUBSCRIPTION_KINDS:
        scope = Q(kind__in=SUBSCRIPTION_KINDS, params__subscription_id=params["subscription_id"])
        noun = _("this subscription")
    elif kind == ActionKind.APPLY_CREDIT:
        scope = Q(kind=ActionKind.APPLY_CREDIT.value, customer_id=customer_id)
        noun = _("this customer's balance")
    else:
        return None
    stale = stale_executing_before()
    actions = (
        BillingAction.objects.filter(workspace=workspace, customer_id=customer_id)
        .filter(
            Q(status=BillingAction.Status.OUTCOME_UNKNOWN)
            | Q(status=BillingAction.Status.EXECUTING, started_at__lt=stale)
        )
        .filter(scope)
        .order_by("created_at")
    )
    return actions, noun


def _action_words(kind: str) -> str:
    """``issue_refund`` → ``issue refund`` (in another language: the action's label)."""
    if language() == "en":
        return kind.replace("_", " ")
    return str(action_label(kind))


def open_outcome_conflict(open_action: BillingAction, noun: str) -> Conflict:
    """The 409 ``action_outcome_unknown`` for a request on an object with an open action."""
    return Conflict(
        _(
            "An earlier %(action)s on %(object)s is still being confirmed with Stripe. Billing "
            "Desk will finish it as soon as Stripe answers; do not submit it again."
        )
        % {"action": _action_words(open_action.kind), "object": noun},
        code="action_outcome_unknown",
        details={"action_id": str(open_action.pk), "status": open_action.status},
    )


def open_outcome_guard(
    *, workspace: Any, kind: ActionKind, customer_id: str, params: Mapping[str, Any]
) -> None:
    """Refuse (409 ``action_outcome_unknown``) a money action on an object that has one open
    (``open_outcome_scope``). Called under the customer's decision lock, before the row is
    inserted; the submission folds the same query into its decision read
    (``reads.decision_read``)."""
    found = open_outcome_scope(
        workspace=workspace, kind=kind, customer_id=customer_id, params=params
    )
    if found is None:
        return
    actions, noun = found
    open_action = actions.first()
    if open_action is not None:
        raise open_outcome_conflict(open_action, noun)


@dataclass(frozen=True)
class Decided:
    """What ``action_decide`` found: the objects to act on and the matrix's decision."""

    kind: ActionKind
    policy_action: PolicyAction
    prepared: Prepared
    decision: Decision


def action_decide(
    *,
    context: AgentContext,
    kind: ActionKind,
    customer: MirrorCustomer,
    params: Mapping[str, Any],
    rules: PolicyRules,
    guarded: bool = False,
) -> Decided:
    """Decide one validated request for the calling agent; raise what the execution raises.

    Raises ``Conflict`` (an open outcome on the same object), ``PreconditionFailed``,
    ``NotFound`` or ``ValidationFailed`` (from the preconditions); a refused matrix
    cell is returned as ``Deny``, not raised — the caller records or reports it.
    Reads only; ``action_submit`` holds the customer's decision lock around it, and
    passes ``guarded=True`` when its decision read already ran the open-outcome guard.
    The billing clock is read once, and a refund's history and refundable remainder
    come from one ``RefundLedger`` (two reads).
    """
    workspace = context.workspace
    customer_id = customer.stripe_id
    policy_action = KIND_POLICY_ACTION[kind]
    if not guarded:
        open_outcome_guard(workspace=workspace, kind=kind, customer_id=customer_id, params=params)
    now = billing_now(workspace)
    ledger = (
        RefundLedger(
            workspace=workspace,
            customer_id=customer_id,
            charge_ids=list(params.get("charge_ids") or [params.get("charge_id") or ""]),
            billing_now=now,
        )
        if policy_action == PolicyAction.ISSUE_REFUND
        else None
    )
    prepared = action_prepare(
        kind=kind, workspace=workspace, customer=customer, params=params, now=now, ledger=ledger
    )
    history = ledger.history() if ledger is not None else History()
    decision = decide(
        role=context.role,
        request=prepared.request,
        history=history,
        rules=rules,
        permitted=context.may(policy_action.value),
    )
    if context.self_service_limit is not None:
        decision = self_service_cap(
            decision, request=prepared.request, rules=rules, limit=context.self_service_limit
        )
    return Decided(kind=kind, policy_action=policy_action, prepared=prepared, decision=decision)


SELF_SERVICE_LIMIT = "above_self_service_limit"


def self_service_cap(
    decision: Decision, *, request: ActionRequest, rules: PolicyRules, limit: int
) -> Decision:
    """A customer's own request executes only within the workspace's self-service limit.

    An ``Allow`` for a refund above ``limit`` (base-currency minor units; 0 sends every
    refund to agents), or one that cannot be valued (no exchange rate), becomes
    ``NeedsApproval`` with the refund route's approvers for its size. Stricter answers
    (approval, refusal) stand. Applied inside ``action_decide``, so the dry run the page
    shows and the execution agree by construction.
    """
    if not isinstance(decision, Allow) or request.action != PolicyAction.ISSUE_REFUND:
        return decision
    measured = measure(request, rules)
    if measured.value is not None and measured.value <= limit:
        return decision
    words = W.gettext(
        "%(size)s is above the self-service limit (%(limit)s) — an agent decides",
        size=measured.words,
        limit=Money(limit, rules.base_currency),
    )
    approvers = route_for(request.action, measured.value, rules)
    return NeedsApproval(approvers, str(words), SELF_SERVICE_LIMIT, words)


def not_permitted_error(reason: str, **details: Any) -> NotPermitted:
    """The 403 a refused matrix cell answers (``action_submit``; the dry run names its code)."""
    return NotPermitted(
        _("Not permitted: %(reason)s.") % {"reason": reason}, details={**details, "reason": reason}
    )


# -- the dry run ------------------------------------------------------------------------

EXECUTE, APPROVAL, REFUSED = "execute", "approval", "refused"


@dataclass(frozen=True)
class DryRun:
    """What ``POST actions/`` would do with this request now, in words and codes.

    ``outcome``: ``execute`` (the execution answers ``succeeded``, unless the provider
    then fails), ``approval`` (``pending_approval``, to ``approver_roles``) or
    ``refused`` (the execution answers ``status`` with error ``code``). ``code`` is the
    policy's reason code for execute/approval (``within_limit``, ``refund_pattern``,
    ``no_exchange_rate``...), the execution's error code when refused (``not_permitted``,
    ``refund_window_passed``...). ``headline`` and ``message`` are for the agent.
    """

    outcome: str
    code: str
    reason: str
    headline: str
    message: str
    approver_roles: tuple[Role, ...] = ()
    status: int | None = None
    details: dict[str, Any] = field(default_factory=dict)


def _approvers_words(roles: tuple[Role, ...]) -> str:
    one = [pgettext("approver", "a %(role)s") % {"role": role.label} for role in roles]
    return _(" or ").join(one) or _("an approver")


def _sentence(text: str) -> str:
    text = text.strip()
    return text if text.endswith((".", "!", "?")) else f"{text}."


def dry_run_from_decision(decision: Decision) -> DryRun:
    if isinstance(decision, Allow):
        return DryRun(
            outcome=EXECUTE,
            code=decision.code,
            reason=decision.reason,
            headline=_("Happens now"),
            message=_sentence(_("Happens now: %(reason)s") % {"reason": decision.reason}),
        )
    if isinstance(decision, NeedsApproval):
        headline = _("Goes to %(approvers)s for approval") % {
            "approvers": _approvers_words(decision.approver_roles)
        }
        return DryRun(
            outcome=APPROVAL,
            code=decision.code,
            reason=decision.reason,
            headline=headline,
            message=_sentence(
                _("%(headline)s — %(reason)s") % {"headline": headline, "reason": decision.reason}
            ),
            approver_roles=decision.approver_roles,
        )
    assert isinstance(decision, Deny)
    error = not_permitted_error(decision.reason, rule=decision.code)
    return DryRun(
        outcome=REFUSED,
        code=error.code,
        reason=decision.reason,
        headline=_("Not possible"),
        message=_sentence(_("Not possible: %(reason)s") % {"reason": decision.reason}),
        status=error.status,
        details={"rule": decision.code},
    )


def _refused(error: BillingDeskError) -> DryRun:
    return DryRun(
        outcome=REFUSED,
        code=error.code,
        reason=str(error.message),
        headline=_("Not possible"),
        message=_sentence(_("Not possible: %(reason)s") % {"reason": error.message}),
        status=error.status,
        details=error.details if isinstance(error.details, dict) else {},
    )


def action_dry_run(
    *,
    context: AgentContext,
    kind: ActionKind | str,
    customer_id: str,
    params: Mapping[str, Any] | None,
) -> DryRun:
    """What submitting this request now would do — without writing or calling the provider.

    The same steps as ``action_submit`` in the same order (kind, params, customer,
    rules, then ``action_decide``). A request the execution refuses — bad parameters
    (400), an open outcome (409), a precondition (422), the matrix (403) — is a
    ``refused`` answer with the execution's code, status and message, and so is a
    charge, invoice or price that is not this customer's (404). An unknown kind and a
    customer not in this workspace raise as they do on execution (400, 404).
    Everything runs in a transaction rolled back at the end: a dry run never writes.
    """
    parsed = action_kind_parse(kind)
    with transaction.atomic():
        try:
            clean = action_params_validate(kind=parsed, params=params)
            customer = action_customer(context.workspace, customer_id)
        except (ValidationFailed, PreconditionFailed) as error:
            transaction.set_rollback(True)
            return _refused(error)
        rules = policy_rules_load(workspace=context.workspace)
        try:
            decided = action_decide(
                context=context, kind=parsed, customer=customer, params=clean, rules=rules
            )
        except (ValidationFailed, PreconditionFailed, Conflict, NotFound) as error:
            # NotFound here is an object of the request (charge, invoice, price...) that is
            # not this customer's: the execution's 404, said in words.
            answer = _refused(error)
        else:
            answer = dry_run_from_decision(decided.decision)
        transaction.set_rollback(True)
    return answer
