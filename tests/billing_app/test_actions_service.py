"""``services.actions.action_submit``: every kind on the sandbox, preconditions, failures, retries."""

from __future__ import annotations

from datetime import timedelta

import pytest

from billing_app.catalog import ActionKind, Role
from billing_app.errors import (
    Conflict,
    NotFound,
    NotPermitted,
    PreconditionFailed,
    ProviderError,
    ProviderUnavailable,
    ValidationFailed,
)
from billing_app.models import (
    ActionPolicy,
    ApprovalRequest,
    BillingAction,
    CustomerFlag,
    MirrorRefund,
)
from billing_app.services.actions import action_submit, request_fingerprint
from billing_app.services.actions import run as actions_run
from billing_app.services.identity import AgentContext

from .actions_support import ProviderSpy, account_seed, next_key

K = ActionKind

# Params that every precondition accepts, per kind, with the customer they are for.
HAPPY: dict[ActionKind, tuple[str, dict]] = {
    K.GENERATE_PAYMENT_LINK: ("cus_acme", {"invoice_id": "in_acme_open"}),
    K.RESEND_INVOICE: ("cus_acme", {"invoice_id": "in_acme_paid"}),
    K.APPLY_CREDIT: ("cus_acme", {"amount": 5000, "currency": "USD", "description": "Outage"}),
    K.ISSUE_REFUND: (
        "cus_acme",
        {
            "charge_id": "ch_acme_paid",
            "amount": 10000,
            "currency": "USD",
            "reason": "service_outage",
        },
    ),
    K.EXTEND_TRIAL: ("cus_trial", {"subscription_id": "sub_trial", "days": 7}),
    K.PAUSE_SUBSCRIPTION: (
        "cus_acme",
        {"subscription_id": "sub_acme", "behavior": "keep_as_draft"},
    ),
    K.CHANGE_PLAN: ("cus_acme", {"subscription_id": "sub_acme", "price_id": "price_ultimate_seat"}),
    K.CANCEL_SUBSCRIPTION: (
        "cus_acme",
        {"subscription_id": "sub_acme", "reason": "too_expensive", "customer_requested": True},
    ),
    K.FORCE_CANCEL: (
        "cus_acme",
        {"subscription_id": "sub_acme", "reason": "other", "comment": "fraudulent signup"},
    ),
    K.UPDATE_PAYMENT_METHOD: ("cus_acme", {}),
    K.ADJUST_SEATS: ("cus_acme", {"subscription_id": "sub_acme", "quantity": 55}),
    K.APPLY_DISCOUNT: (
        "cus_acme",
        {
            "subscription_id": "sub_acme",
            "percent_off": "10",
            "duration": "repeating",
            "duration_in_months": 3,
        },
    ),
    K.REFUND_DUPLICATE_CHARGE: ("cus_acme", {"charge_ids": ["ch_acme_dup1", "ch_acme_dup2"]}),
    K.EXTEND_GRACE_PERIOD: (
        "cus_acme",
        {"subscription_id": "sub_acme", "days": 7, "invoice_id": "in_acme_open"},
    ),
    K.SEND_TAX_INVOICE: (
        "cus_acme",
        {"invoice_id": "in_acme_paid", "tax_id": {"type": "eu_vat", "value": "DE 123456789"}},
    ),
}


@pytest.fixture
def acme(workspace):
    return account_seed(workspace)


@pytest.fixture
def agent(workspace, sign_in):
    def make(role: Role, agent_id: str | None = None, ws=None) -> AgentContext:
        ws = ws or workspace
        membership, _ = sign_in(ws, role, agent_id)
        return AgentContext(
            user=membership.user,
            workspace=ws,
            membership=membership,
            installation=membership.installation,
            role=Role(role),
        )

    return make


@pytest.fixture
def spy(monkeypatch):
    spy = ProviderSpy()
    real = actions_run.get_provider
    monkeypatch.setattr(actions_run, "get_provider", lambda ws: spy.wrap(real(ws)))
    return spy


def submit(context, kind, params=None, customer="cus_acme", key=None):
    return action_submit(
        context=context,
        kind=kind,
        customer_id=customer,
        ticket_id="1001",
        params=params if params is not None else HAPPY[kind][1],
        idempotency_key=key or next_key(),
    )


# Force cancel goes to Legal; resume and keep need a paused or ending subscription
# (test_actions_resume_keep.py and test_actions_dry_run.py cover them).
@pytest.mark.parametrize(
    "kind",
    [
        k
        for k in ActionKind
        if k not in (K.FORCE_CANCEL, K.RESUME_SUBSCRIPTION, K.UNDO_CANCELLATION)
    ],
)
def test_every_kind_executes_for_a_specialist_within_limits(kind, acme, agent, spy):
    # given a Billing Specialist and params within every limit
    specialist = agent(Role.SPECIALIST)
    customer, params = HAPPY[kind]

    # when they submit the action
    action = submit(specialist, kind, params, customer=customer)

    # then it executed once, on the provider, with the key derived from the action id
    assert action.status == BillingAction.Status.SUCCEEDED, (
        action.error_code,
        action.error_message,
    )
    assert action.decision == BillingAction.Decision.ALLOW
    writes = spy.writes()
    assert writes, "no provider write"
    assert all(
        kw["idempotency_key"].startswith(f"billing-desk-{action.id}-{kind.value}")
        for _, kw in writes
    )
    assert action.provider_object_id
    assert action.started_at and action.completed_at and action.duration_ms is not None
    assert action.provider_ms is not None
    assert action.note_status == BillingAction.NoteStatus.PENDING
    stored = BillingAction.objects.get(pk=action.pk)
    assert stored.status == BillingAction.Status.SUCCEEDED
    assert stored.result == action.result


def test_refund_moves_money_once_and_records_our_reason(acme, agent, spy):
    action = submit(agent(Role.MANAGER), K.ISSUE_REFUND)

    assert action.result["amount"]["amount"] == 10000
    assert action.result["billing_desk_reason"] == "service_outage"
    ((method, kwargs),) = spy.writes()
    assert method == "refund"
    assert kwargs["reason"] == "requested_by_customer"  # Stripe's enum
    assert kwargs["metadata"]["billing_desk_reason"] == "service_outage"
    assert kwargs["idempotency_key"] == f"billing-desk-{action.id}-issue_refund"
    assert MirrorRefund.objects.filter(charge_id="ch_acme_paid", amount=10000).count() == 1
    assert action.customer_message.startswith("We've processed your refund of $100.00.")


def test_duplicate_refund_refunds_the_later_charge_and_flags_monitoring(
    acme, agent, spy, workspace
):
    # given the pair listed in either order
    params = {"charge_ids": ["ch_acme_dup2", "ch_acme_dup1"]}

    action = submit(agent(Role.MANAGER), K.REFUND_DUPLICATE_CHARGE, params)

    assert action.status == "succeeded"
    ((_, kwargs),) = spy.writes("refund")
    assert kwargs["charge_id"] == "ch_acme_dup2"  # the later one
    assert kwargs["reason"] == "duplicate"
    assert kwargs["amount"].amount == 4900
    flag = CustomerFlag.objects.get(workspace=workspace, customer_id="cus_acme")
    assert flag.kind == "payment_monitoring"
    assert flag.active_until - acme.now > timedelta(days=29)
    assert action.customer_message.startswith("We found a duplicate charge of $49.00.")


def test_plan_upgrade_pins_the_previews_proration_date(acme, agent, spy):
    action = submit(agent(Role.L2), K.CHANGE_PLAN)

    assert action.status == "succeeded", action.error_message
    preview_calls = [kw for name, kw in spy.calls if name == "preview_plan_change"]
    ((_, change),) = spy.writes("change_plan")
    assert preview_calls
    assert change["proration_date"] is not None
    assert action.result["direction"] == "upgrade"
    assert action.result["previous_price_id"] == "price_pro_seat"
    assert action.customer_message.startswith(
        "Your plan has been updated from Enterprise Pro to Enterprise Ultimate."
    )


BAD_PARAMS = [
    (K.GENERATE_PAYMENT_LINK, {"invoice_id": "in with spaces"}, "invalid"),
    (K.RESEND_INVOICE, {}, "required"),
    (K.APPLY_CREDIT, {"amount": 0, "currency": "USD"}, "min_value"),
    (K.APPLY_CREDIT, {"amount": "12.50", "currency": "USD"}, "invalid"),
    (K.APPLY_CREDIT, {"amount": 100, "currency": "U$D"}, "invalid_currency"),
    (
        K.ISSUE_REFUND,
        {"charge_id": "ch_acme_paid", "amount": 100, "currency": "USD", "reason": "because"},
        "invalid_choice",
    ),
    (
        K.ISSUE_REFUND,
        {"charge_id": "ch_acme_paid", "amount": -5, "currency": "USD", "reason": "other"},
        "min_value",
    ),
    (
        K.ISSUE_REFUND,
        {"charge_id": "ch_acme_paid", "amount": 5, "currency": "USD", "reason": "other", "x": 1},
        "unknown_parameter",
    ),
    (K.EXTEND_TRIAL, {"subscription_id": "sub_trial", "days": 0}, "min_value"),
    (
        K.PAUSE_SUBSCRIPTION,
        {"subscription_id": "sub_acme", "behavior": "forever"},
        "invalid_choice",
    ),
    (
        K.PAUSE_SUBSCRIPTION,
        {"subscription_id": "sub_acme", "behavior": "void", "resumes_at": "2020-01-01T00:00:00Z"},
        "resume_in_past",
    ),
    (K.CHANGE_PLAN, {"subscription_id": "sub_acme"}, "required"),
    (K.CANCEL_SUBSCRIPTION, {"subscription_id": "sub_acme", "reason": "meh"}, "invalid_choice"),
    (K.FORCE_CANCEL, {"subscription_id": "sub_acme", "reason": "other"}, "required"),
    (K.UPDATE_PAYMENT_METHOD, {"return_url": "not a url"}, "invalid"),
    (K.ADJUST_SEATS, {"subscription_id": "sub_acme", "quantity": 0}, "min_value"),
    (
        K.APPLY_DISCOUNT,
        {"subscription_id": "sub_acme", "percent_off": "0", "duration": "once"},
        "min_value",
    ),
    (
        K.APPLY_DISCOUNT,
        {"subscription_id": "sub_acme", "percent_off": "100.5", "duration": "once"},
        "max_value",
    ),
    (
        K.APPLY_DISCOUNT,
        {"subscription_id": "sub_acme", "percent_off": "10", "duration": "repeating"},
        "months_required",
    ),
    (
        K.APPLY_DISCOUNT,
        {
            "subscription_id": "sub_acme",
            "percent_off": "10",
            "duration": "once",
            "duration_in_months": 2,
        },
        "months_not_allowed",
    ),
    (K.REFUND_DUPLICATE_CHARGE, {"charge_ids": ["ch_acme_dup1"]}, "min_length"),
    (
        K.REFUND_DUPLICATE_CHARGE,
        {"charge_ids": ["ch_acme_dup1", "ch_acme_dup1"]},
        "same_charge_twice",
    ),
    (K.EXTEND_GRACE_PERIOD, {"subscription_id": "sub_acme", "days": 61}, "max_value"),
    (
        K.SEND_TAX_INVOICE,
        {"invoice_id": "in_acme_paid", "tax_id": {"type": "gb_vat", "value": "GB12"}},
        "invalid_tax_id",
    ),
    (
        K.SEND_TAX_INVOICE,
        {"invoice_id": "in_acme_paid", "tax_id": {"type": "au_abn", "value": "12345678912"}},
        "invalid_tax_id",
    ),
    (
        K.SEND_TAX_INVOICE,
        {"invoice_id": "in_acme_paid", "tax_id": {"type": "br_cnpj", "value": "1"}},
        "unsupported_tax_id_type",
    ),
    (
        K.SEND_TAX_INVOICE,
        {"invoice_id": "in_acme_paid", "address": {"line1": "1 Main St", "country": "USA"}},
        "invalid",
    ),
]


@pytest.mark.parametrize(("kind", "params", "code"), BAD_PARAMS)
def test_bad_params_are_refused_with_a_code_and_nothing_happens(
    kind, params, code, acme, agent, spy
):
    customer = HAPPY[kind][0]
    with pytest.raises(ValidationFailed) as raised:
        submit(agent(Role.SPECIALIST), kind, params, customer=customer)
    assert raised.value.code == "invalid_params"
    assert raised.value.details["first_code"] == code
    assert not BillingAction.objects.exists()
    assert spy.calls == []


def test_unknown_kind_and_missing_key_are_refused(acme, agent, spy):
    manager = agent(Role.MANAGER)
    with pytest.raises(ValidationFailed) as raised:
        submit(manager, "wire_money", {})
    assert raised.value.code == "unknown_kind"
    with pytest.raises(ValidationFailed) as raised:
        submit(manager, K.RESEND_INVOICE, key=" ")
    assert raised.value.code == "idempotency_key_invalid"
    assert not BillingAction.objects.exists()


FOREIGN_IDS = [
    (
        K.ISSUE_REFUND,
        {"charge_id": "ch_other_paid", "amount": 100, "currency": "USD", "reason": "other"},
        "charge_not_found",
    ),
    (K.RESEND_INVOICE, {"invoice_id": "in_other_open"}, "invoice_not_found"),
    (K.GENERATE_PAYMENT_LINK, {"invoice_id": "in_other_open"}, "invoice_not_found"),
    (K.ADJUST_SEATS, {"subscription_id": "sub_other", "quantity": 6}, "subscription_not_found"),
    (
        K.CANCEL_SUBSCRIPTION,
        {"subscription_id": "sub_other", "reason": "unused"},
        "subscription_not_found",
    ),
    (
        K.REFUND_DUPLICATE_CHARGE,
        {"charge_ids": ["ch_acme_dup1", "ch_other_paid"]},
        "charge_not_found",
    ),
    (K.CHANGE_PLAN, {"subscription_id": "sub_acme", "price_id": "price_nope"}, "price_not_found"),
    (
        K.EXTEND_GRACE_PERIOD,
        {"subscription_id": "sub_acme", "days": 3, "invoice_id": "in_other_open"},
        "invoice_not_found",
    ),
]


@pytest.mark.parametrize(("kind", "params", "code"), FOREIGN_IDS)
def test_ids_of_another_customer_are_not_found(kind, params, code, acme, agent, spy):
    with pytest.raises(NotFound) as raised:
        submit(agent(Role.SPECIALIST), kind, params)
    assert raised.value.code == code
    assert not BillingAction.objects.exists()
    assert spy.calls == []


def test_customer_of_another_workspace_is_not_found(acme, agent, make_workspace, spy):
    # given a second workspace whose agent names Acme's customer id
    other = make_workspace("globex")
    with pytest.raises(NotFound) as raised:
        submit(agent(Role.SPECIALIST, ws=other), K.RESEND_INVOICE)
    assert raised.value.code == "customer_not_found"
    assert not BillingAction.objects.exists()


PRECONDITIONS = [
    (
        K.ISSUE_REFUND,
        {"charge_id": "ch_acme_paid", "amount": 340001, "currency": "USD", "reason": "other"},
        "exceeds_refundable",
    ),
    (
        K.ISSUE_REFUND,
        {"charge_id": "ch_acme_disputed", "amount": 100, "currency": "USD", "reason": "other"},
        "charge_disputed",
    ),
    (
        K.ISSUE_REFUND,
        {"charge_id": "ch_acme_old", "amount": 100, "currency": "USD", "reason": "other"},
        "refund_window_passed",
    ),
    (
        K.ISSUE_REFUND,
        {"charge_id": "ch_acme_failed", "amount": 100, "currency": "USD", "reason": "other"},
        "charge_not_refundable",
    ),
    (K.EXTEND_TRIAL, {"subscription_id": "sub_acme", "days": 3}, "not_trialing"),
    (K.CHANGE_PLAN, {"subscription_id": "sub_acme", "price_id": "price_pro_seat"}, "same_price"),
    (
        K.CHANGE_PLAN,
        {"subscription_id": "sub_acme", "price_id": "price_legacy_seat"},
        "price_inactive",
    ),
    (
        K.CHANGE_PLAN,
        {"subscription_id": "sub_acme", "price_id": "price_onboarding"},
        "price_not_recurring",
    ),
    (
        K.CHANGE_PLAN,
        {"subscription_id": "sub_acme", "price_id": "price_pro_seat_eur"},
        "currency_mismatch",
    ),
    (K.ADJUST_SEATS, {"subscription_id": "sub_acme", "quantity": 40}, "below_seats_used"),
    (K.ADJUST_SEATS, {"subscription_id": "sub_acme", "quantity": 50}, "same_quantity"),
    (K.REFUND_DUPLICATE_CHARGE, {"charge_ids": ["ch_acme_dup1", "ch_acme_paid"]}, "not_duplicates"),
    (K.RESEND_INVOICE, {"invoice_id": "in_acme_draft"}, "invoice_not_sendable"),
    (K.GENERATE_PAYMENT_LINK, {"invoice_id": "in_acme_paid"}, "invoice_not_open"),
    (K.SEND_TAX_INVOICE, {"invoice_id": "in_acme_draft"}, "invoice_not_finalized"),
]


@pytest.mark.parametrize(("kind", "params", "code"), PRECONDITIONS)
def test_preconditions_are_checked_before_any_money_moves(kind, params, code, acme, agent, spy):
    with pytest.raises(PreconditionFailed) as raised:
        submit(agent(Role.SPECIALIST), kind, params)
    assert raised.value.code == code
    assert raised.value.status == 422
    assert not BillingAction.objects.exists()
    assert spy.calls == []


def test_credit_in_another_currency_than_the_customers_is_refused(acme, agent, spy):
    with pytest.raises(ValidationFailed) as raised:
        submit(agent(Role.MANAGER), K.APPLY_CREDIT, {"amount": 500, "currency": "EUR"})
    assert raised.value.code == "currency_mismatch"
    assert spy.calls == []


def test_a_second_refund_cannot_exceed_what_is_left(acme, agent, spy):
    manager = agent(Role.MANAGER)
    params = {
        "charge_id": "ch_acme_paid",
        "amount": 300000,
        "currency": "USD",
        "reason": "billing_error",
    }
    assert submit(manager, K.ISSUE_REFUND, params).status == "succeeded"

    with pytest.raises(PreconditionFailed) as raised:
        submit(manager, K.ISSUE_REFUND, params)
    assert raised.value.code == "exceeds_refundable"
    assert raised.value.details["refundable"]["amount"] == 40000
    assert len(spy.writes("refund")) == 1


def test_a_second_discount_is_refused_not_stacked_or_swapped(acme, agent, spy):
    # given a subscription an agent already gave 10 % off
    manager = agent(Role.MANAGER)
    assert submit(manager, K.APPLY_DISCOUNT).status == "succeeded"

    # when another 10 % is asked for (20 % together would be past an L2's limit)
    params = {"subscription_id": "sub_acme", "percent_off": "10", "duration": "forever"}
    with pytest.raises(PreconditionFailed) as raised:
        submit(manager, K.APPLY_DISCOUNT, params)

    # then it is refused before any call, naming the discount in force
    assert raised.value.code == "discount_exists"
    assert raised.value.details["discount_id"]
    assert len(spy.writes("apply_discount")) == 1
    assert BillingAction.objects.filter(kind=K.APPLY_DISCOUNT).count() == 1


def test_trial_extension_and_cancellation_state_checks(acme, agent, spy):
    manager = agent(Role.MANAGER)
    params = {"subscription_id": "sub_acme", "reason": "unused", "customer_requested": True}
    assert submit(manager, K.CANCEL_SUBSCRIPTION, params).status == "succeeded"
    with pytest.raises(PreconditionFailed) as raised:
        submit(manager, K.CANCEL_SUBSCRIPTION, params)
    assert raised.value.code == "cancel_already_scheduled"

    pause = {"subscription_id": "sub_trial", "behavior": "void"}
    assert submit(manager, K.PAUSE_SUBSCRIPTION, pause, customer="cus_trial").status == "succeeded"
    with pytest.raises(PreconditionFailed) as raised:
        submit(manager, K.PAUSE_SUBSCRIPTION, pause, customer="cus_trial")
    assert raised.value.code == "already_paused"


# --- idempotency -----------------------------------------------------------------------------


def test_same_key_returns_the_first_answer_with_one_provider_call(acme, agent, spy):
    manager = agent(Role.MANAGER)
    first = submit(manager, K.ISSUE_REFUND, key="double-click")
    again = submit(manager, K.ISSUE_REFUND, key="double-click")

    assert again.pk == first.pk
    assert again.replayed is True and first.replayed is False
    assert again.status == "succeeded"
    assert len(spy.writes("refund")) == 1
    assert BillingAction.objects.count() == 1


def test_same_key_with_another_payload_is_a_conflict(acme, agent, spy):
    manager = agent(Role.MANAGER)
    submit(manager, K.ISSUE_REFUND, key="k1")
    other = {**HAPPY[K.ISSUE_REFUND][1], "amount": 20000}
    with pytest.raises(Conflict) as raised:
        submit(manager, K.ISSUE_REFUND, other, key="k1")
    assert raised.value.code == "idempotency_key_reused"
    assert len(spy.writes("refund")) == 1


def test_fingerprint_is_canonical():
    a = request_fingerprint(kind="x", customer_id="c", params={"a": 1, "b": "2"})
    b = request_fingerprint(kind="x", customer_id="c", params={"b": "2", "a": 1})
    assert a == b
    assert a != request_fingerprint(kind="x", customer_id="d", params={"a": 1, "b": "2"})


# --- failures and retries ---------------------------------------------------------------------


def test_provider_refusal_leaves_the_action_failed_and_nothing_done(acme, agent, spy):
    spy.fail(
        "refund",
        ProviderError(
            "Your card was declined.",
            code="card_error",
            provider_code="card_declined",
            decline_code="do_not_honor",
        ),
    )
    action = submit(agent(Role.MANAGER), K.ISSUE_REFUND)

    assert action.status == BillingAction.Status.FAILED
    assert action.error_code == "card_error"
    assert action.error_message == "Your card was declined."
    assert action.result["error"]["decline_code"] == "do_not_honor"
    assert action.customer_message == ""
    assert not MirrorRefund.objects.exists()
    assert len(spy.writes("refund")) == 1  # a refusal is not retried


def test_timeout_is_retried_with_the_same_key(acme, agent, spy):
    spy.fail("refund", ProviderUnavailable("Timed out."))
    action = submit(agent(Role.MANAGER), K.ISSUE_REFUND)

    assert action.status == "succeeded"
    keys = [kw["idempotency_key"] for _, kw in spy.writes("refund")]
    assert keys == [f"billing-desk-{action.id}-issue_refund"] * 2
    assert MirrorRefund.objects.filter(charge_id="ch_acme_paid").count() == 1


def test_timeouts_past_the_retries_fail_cleanly(acme, agent, spy, settings):
    settings.BILLING_DESK_ACTION_PROVIDER_RETRIES = 2
    spy.fail(
        "refund", *[ProviderUnavailable("Timed out.", provider_code="timeout") for _ in range(3)]
    )
    action = submit(agent(Role.MANAGER), K.ISSUE_REFUND)

    assert action.status == "failed"
    assert action.error_code == "provider_unavailable"
    assert len({kw["idempotency_key"] for _, kw in spy.writes("refund")}) == 1
    assert len(spy.writes("refund")) == 3
    assert not MirrorRefund.objects.exists()


def test_sandbox_down_fails_the_action_and_records_nothing_as_done(acme, agent, workspace):
    from billing_app.providers.sandbox.control import sandbox_control_set

    sandbox_control_set(workspace=workspace, down=True, reason="maintenance")
    action = submit(agent(Role.MANAGER), K.APPLY_CREDIT)

    assert action.status == "failed"
    assert action.error_code == "provider_unavailable"
    assert action.provider_object_id == ""


# --- policy, escalation, refusal ---------------------------------------------------------------


def test_refund_pattern_sends_even_a_manager_to_review(acme, agent, spy, workspace):
    for n in range(3):
        MirrorRefund.objects.create(
            workspace=workspace,
            stripe_id=f"re_past_{n}",
            charge_id="ch_acme_paid",
            amount=100,
            currency="USD",
            status="succeeded",
            created=acme.now - timedelta(days=5 + n),
        )
    action = submit(
        agent(Role.MANAGER), K.ISSUE_REFUND, {**HAPPY[K.ISSUE_REFUND][1], "amount": 100}
    )

    assert action.status == BillingAction.Status.PENDING_APPROVAL
    assert "refund pattern" in action.decision_reason
    assert action.approval.required_roles == ["manager"]
    assert spy.writes() == []


def test_escalation_creates_an_approval_request_that_expires(acme, agent, spy, workspace):
    # given an admin who lets L1 escalate credits (❌ in the brief: the per-cell option)
    ActionPolicy.objects.filter(workspace=workspace, action="apply_credit", role="l1").update(
        effect="request"
    )

    action = submit(agent(Role.L1), K.APPLY_CREDIT)

    approval = ApprovalRequest.objects.get(action=action)
    assert action.status == "pending_approval"
    assert approval.required_roles == ["manager"]
    assert approval.status == "pending"
    ttl = approval.expires_at - approval.created_at
    assert timedelta(hours=71, minutes=59) < ttl <= timedelta(hours=72)
    assert spy.writes() == []


def test_not_permitted_is_recorded_and_raised(acme, agent, spy, workspace):
    # given refunds are not permitted for L1 (the brief's ❌, the default)
    assert ActionPolicy.objects.get(
        workspace=workspace, action="issue_refund", role="l1"
    ).effect == ("deny")

    with pytest.raises(NotPermitted) as raised:
        submit(agent(Role.L1), K.ISSUE_REFUND, key="nope")

    action = BillingAction.objects.get(idempotency_key="nope")
    assert action.status == BillingAction.Status.NOT_PERMITTED
    assert raised.value.details["action_id"] == str(action.pk)
    assert "may not issue refund" in raised.value.details["reason"]
    assert spy.calls == []


def test_approver_only_roles_hold_no_action_permission(acme, agent, spy):
    with pytest.raises(NotPermitted):
        submit(agent(Role.VP), K.RESEND_INVOICE)
    assert BillingAction.objects.get().status == "not_permitted"


def test_foreign_currency_amount_without_rate_needs_approval(acme, agent, spy, workspace):
    from billing_app.services.mirror import mirror_upsert

    from .actions_support import charge, customer

    mirror_upsert(
        workspace=workspace,
        obj=customer("cus_eu", "EU GmbH", "a@eu.example", acme.now, currency="eur"),
    )
    mirror_upsert(
        workspace=workspace, obj=charge("ch_eu", "cus_eu", 5000, acme.now, currency="eur")
    )
    params = {"charge_id": "ch_eu", "amount": 1000, "currency": "EUR", "reason": "other"}
    action = submit(agent(Role.MANAGER), K.ISSUE_REFUND, params, customer="cus_eu")

    # a Manager's refunds have no limit, but an amount that cannot be valued is never direct
    assert action.status == "pending_approval"
    assert "no exchange rate" in action.decision_reason
    assert action.amount_base is None
