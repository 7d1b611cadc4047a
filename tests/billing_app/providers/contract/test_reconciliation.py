"""Contract: ``find_action_write`` — what an action whose answer was lost did.

A provider may be unable to search (``None``: the in-process sandbox never loses an
answer), but one that answers must never claim a write that did not happen, nor miss
one that did: found means the very object the action created or changed.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from billing_app.money import Money
from billing_app.providers.base import WRITE_ABSENT, WriteFound

from .world import ACME, CH_PAID, SUB

ACTION = "5b7f1c8e-0000-4000-8000-00000000ac71"
OTHER = "5b7f1c8e-0000-4000-8000-0000000000ff"


def key(kind):
    return f"billing-desk-{ACTION}-{kind}"


def find(harness, kind, action=ACTION, **params):
    return harness.provider.find_action_write(
        action_id=action,
        kind=kind,
        customer_id=ACME,
        params=params,
        charge_id=params.get("charge_id", ""),
    )


def test_a_refund_is_found_by_its_action_and_no_other(harness):
    made = harness.provider.refund(
        charge_id=CH_PAID,
        amount=Money(5000, "USD"),
        reason="duplicate",
        idempotency_key=key("issue_refund"),
        metadata={"billing_desk_action": ACTION},
    )
    found = find(harness, "issue_refund", charge_id=CH_PAID)
    assert found is None or (isinstance(found, WriteFound) and found.object_id == made.refund_id)
    assert find(harness, "issue_refund", OTHER, charge_id=CH_PAID) in (None, WRITE_ABSENT)


def test_a_credit_is_found_by_its_action_and_no_other(harness):
    made = harness.provider.apply_credit(
        customer_id=ACME, amount=Money(2500, "USD"), description="", idempotency_key=key("credit")
    )
    found = find(harness, "apply_credit")
    assert found is None or (
        isinstance(found, WriteFound) and found.object_id == made.transaction_id
    )
    assert find(harness, "apply_credit", OTHER) in (None, WRITE_ABSENT)


@pytest.mark.parametrize("kind", ["pause_subscription"])
def test_a_subscription_change_is_found_by_its_action_and_no_other(harness, kind):
    assert find(harness, kind, subscription_id=SUB) in (None, WRITE_ABSENT)
    harness.provider.pause_subscription(
        subscription_id=SUB,
        behavior="void",
        resumes_at=harness.now + timedelta(days=3),
        idempotency_key=key(kind),
    )
    found = find(harness, kind, subscription_id=SUB)
    assert found is None or (isinstance(found, WriteFound) and found.object_id == SUB)
    assert find(harness, kind, OTHER, subscription_id=SUB) in (None, WRITE_ABSENT)


def _other_key(kind):
    return f"billing-desk-{OTHER}-{kind}"


def _paused(harness):
    harness.provider.pause_subscription(
        subscription_id=SUB,
        behavior="void",
        resumes_at=harness.now + timedelta(days=3),
        idempotency_key=_other_key("pause_subscription"),
    )


def _ending(harness):
    harness.provider.cancel_subscription(
        subscription_id=SUB,
        at_period_end=True,
        reason="too_expensive",
        comment="",
        idempotency_key=_other_key("cancel_subscription"),
    )


@pytest.mark.parametrize(
    ("kind", "before", "write"),
    [
        ("resume_subscription", _paused, "resume_subscription"),
        ("undo_cancellation", _ending, "undo_cancellation"),
    ],
)
def test_an_undo_is_found_by_its_action_and_no_other(harness, kind, before, write):
    # given a subscription paused or set to end by another action
    before(harness)
    # then, before the undo, this action wrote nothing (a lost answer can be settled)
    assert find(harness, kind, subscription_id=SUB) in (None, WRITE_ABSENT)

    # when the undo is written under this action's key
    getattr(harness.provider, write)(subscription_id=SUB, idempotency_key=key(kind))

    # then it is found, and the earlier action's write is not taken for it
    found = find(harness, kind, subscription_id=SUB)
    assert found is None or (isinstance(found, WriteFound) and found.object_id == SUB)
    assert harness.name == "sandbox" or isinstance(found, WriteFound)
