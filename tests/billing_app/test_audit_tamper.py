"""Tampering with any audit row in any way makes ``verify_audit`` fail at that row (issue 17).

The trail (``test_audit_chain.trail``) is twelve entries in one workspace:

    1 action.submitted   refund A (Manager, executes)      7 action.succeeded  B
    2 action.succeeded   A                                  8 action.submitted  C
    3 action.submitted   refund B (Specialist, escalated)   9 approval.requested C
    4 approval.requested B                                 10 approval.denied   C
    5 approval.approved  B                                 11 action.denied     C
    6 action.approved    B                                 12 action.submitted  D (L1, refused)

Each case tampers with the database the way someone with write access could — an
entry's hashed content, its hash, its chain link, its number, its other columns; entries
deleted, swapped, inserted, cut off; the chain's head; the audited rows themselves —
then runs ``manage.py verify_audit --workspace acme`` and checks that it exits with
status 1, prints the first bad row, and records that row, which is the one tampered with
(or, for a row that is gone, the place where it was). Admin changes' entries are the
same entries: ``test_audit_admin`` tampers with those.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable
from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.db import transaction

from billing_app.audit_chain import canonical_json, entry_hash
from billing_app.models import (
    ApprovalRequest,
    AuditChainHead,
    AuditEntry,
    AuditVerification,
    BillingAction,
)
from billing_app.services.audit import AuditChainBroken, Event, audit_append

from .test_audit_chain import trail  # noqa: F401  (the fixture)


def entry(workspace, seq: int) -> AuditEntry:
    return AuditEntry.objects.get(workspace=workspace, seq=seq)


def set_columns(number: int, **columns) -> Callable:
    def tamper(workspace):
        AuditEntry.objects.filter(workspace=workspace, seq=number).update(**columns)

    return tamper


def edit_content(seq: int, edit: Callable[[dict], None], *, raw: bool = False) -> Callable:
    def tamper(workspace):
        row = entry(workspace, seq)
        content = json.loads(row.content)
        edit(content)
        text = json.dumps(content) if raw else canonical_json(content)
        AuditEntry.objects.filter(pk=row.pk).update(content=text)

    return tamper


def delete_entries(*seqs: int) -> Callable:
    def tamper(workspace):
        AuditEntry.objects.filter(workspace=workspace, seq__in=seqs).delete()

    return tamper


def swap(a: int, b: int) -> Callable:
    def tamper(workspace):
        first, second = entry(workspace, a), entry(workspace, b)
        AuditEntry.objects.filter(pk=first.pk).update(seq=-1)
        AuditEntry.objects.filter(pk=second.pk).update(seq=a)
        AuditEntry.objects.filter(pk=first.pk).update(seq=b)

    return tamper


def renumber(seq: int, to: int) -> Callable:
    return set_columns(seq, seq=to)


def forge_between(after: int, *, arithmetic: bool) -> Callable:
    """Insert a forged entry after ``after``, numbers after it shifted up; with the chain's
    arithmetic (its own hash right, linked to the previous) or without."""

    def tamper(workspace):
        for row in AuditEntry.objects.filter(workspace=workspace, seq__gt=after).order_by("-seq"):
            AuditEntry.objects.filter(pk=row.pk).update(seq=row.seq + 1)
        previous = entry(workspace, after)
        content = canonical_json(
            {**json.loads(previous.content), "event": "action.succeeded", "subject_id": "forged"}
        )
        AuditEntry.objects.create(
            workspace=workspace,
            seq=after + 1,
            event="action.succeeded",
            subject_type=previous.subject_type,
            subject_id="forged",
            content=content,
            prev_hash=previous.hash,
            hash=entry_hash(prev_hash=previous.hash, seq=after + 1, content=content)
            if arithmetic
            else "f" * 64,
            created_at=previous.created_at,
        )

    return tamper


def forge_at_the_end(workspace) -> None:
    last = entry(workspace, 12)
    content = json.loads(last.content)
    content["data"]["amount"] = 1
    text = canonical_json(content)
    AuditEntry.objects.create(
        workspace=workspace,
        seq=13,
        event=last.event,
        subject_type=last.subject_type,
        subject_id=last.subject_id,
        content=text,
        prev_hash=last.hash,
        hash=entry_hash(prev_hash=last.hash, seq=13, content=text),
        created_at=last.created_at,
    )


def set_head(**fields) -> Callable:
    def tamper(workspace):
        AuditChainHead.objects.filter(workspace=workspace).update(**fields)

    return tamper


def delete_head(workspace):
    AuditChainHead.objects.filter(workspace=workspace).delete()


def amount(value):
    return lambda c: c["data"].update(amount=value)


# (case, tamper, first bad row, words of the reason)
ENTRY_CASES = [
    # the hashed content, at the first, a middle and the last entry
    ("content of the first", edit_content(1, amount(1)), "entry 1", "hash does not match"),
    ("content of a middle", edit_content(6, amount(1)), "entry 6", "hash does not match"),
    ("content of the last", edit_content(12, amount(1)), "entry 12", "hash does not match"),
    (
        "content's actor",
        edit_content(5, lambda c: c.update(actor=None)),
        "entry 5",
        "hash does not match",
    ),
    (
        "content's time",
        edit_content(2, lambda c: c.update(at="2020-01-01T00:00:00+00:00")),
        "entry 2",
        "hash does not match",
    ),
    (
        "content made non-canonical",
        edit_content(4, lambda c: None, raw=True),
        "entry 4",
        "not canonical",
    ),
    ("content not JSON", set_columns(7, content="{broken"), "entry 7", "not JSON"),
    # the hash and the link to the previous entry
    ("hash of the first", set_columns(1, hash="0" * 64), "entry 1", "hash does not match"),
    ("hash of a middle", set_columns(5, hash="0" * 64), "entry 5", "hash does not match"),
    ("hash of the last", set_columns(12, hash="0" * 64), "entry 12", "hash does not match"),
    ("prev_hash of the first", set_columns(1, prev_hash="0" * 64), "entry 1", "prev_hash"),
    ("prev_hash of a middle", set_columns(8, prev_hash="0" * 64), "entry 8", "prev_hash"),
    # the other columns: what admin lists and filters on
    ("event column", set_columns(3, event="action.succeeded"), "entry 3", "columns differ"),
    ("subject type column", set_columns(3, subject_type="admin"), "entry 3", "columns differ"),
    ("subject id column", set_columns(9, subject_id="other"), "entry 9", "columns differ"),
    (
        "time column",
        lambda ws: AuditEntry.objects.filter(workspace=ws, seq=10).update(
            created_at=entry(ws, 10).created_at - timedelta(days=1)
        ),
        "entry 10",
        "columns differ",
    ),
    # numbers: renumbered, swapped
    ("seq of a middle renumbered away", renumber(6, 600), "entry 6", "6 was expected"),
    ("seq of the first renumbered", renumber(1, 0), "entry 1", "1 was expected"),
    ("two entries swapped", swap(3, 7), "entry 3", "prev_hash"),
    ("neighbours swapped", swap(11, 12), "entry 11", "prev_hash"),
    # deleted
    ("first deleted", delete_entries(1), "entry 1", "1 was expected"),
    ("a middle deleted", delete_entries(6), "entry 6", "6 was expected"),
    ("the last deleted", delete_entries(12), "entry 12", "missing"),
    ("the tail cut off", delete_entries(10, 11, 12), "entry 10", "from 10 on are missing"),
    ("all deleted", delete_entries(*range(1, 13)), "entry 1", "from 1 on are missing"),
    # inserted
    ("forged in the middle", forge_between(5, arithmetic=False), "entry 6", "hash does not match"),
    (
        "forged in the middle, arithmetic right",
        forge_between(5, arithmetic=True),
        "entry 6",
        "inserted",
    ),
    ("forged at the end, arithmetic right", forge_at_the_end, "entry 13", "end moved"),
    # the chain's head
    ("head's seq", set_head(seq=11), "entry 12", "end moved"),
    ("head's hash", set_head(last_hash="0" * 64), "entry 12", "end moved"),
    ("head ahead", set_head(seq=20), "entry 13", "missing"),
    ("head deleted", delete_head, "entry 12", "head is missing"),
    ("head reset", set_head(seq=0, previous_hash="", last_hash=""), "entry 12", "head was reset"),
]


def verify_fails_at(workspace, capsys) -> AuditVerification:
    with pytest.raises(CommandError) as raised:
        call_command("verify_audit", "--workspace", workspace.slug)
    assert raised.value.returncode == 1
    found = AuditVerification.objects.filter(workspace=workspace).latest("verified_at", "pk")
    assert not found.ok
    printed = capsys.readouterr().err
    assert f"acme: BROKEN at {found.first_bad}: {found.reason}" in printed
    assert f"at {found.first_bad}" in str(raised.value)
    return found


@pytest.mark.parametrize(
    ("tamper", "first_bad", "reason"),
    [pytest.param(t, b, r, id=c) for c, t, b, r in ENTRY_CASES],
)
def test_tampering_with_an_entry_fails_at_that_entry(trail, capsys, tamper, first_bad, reason):  # noqa: F811
    # given the trail, verified once (so the next run also holds it to that anchor)
    call_command("verify_audit", "--workspace", trail.slug)

    # when an entry is tampered with
    tamper(trail)

    # then verify_audit exits 1 and names it
    found = verify_fails_at(trail, capsys)
    assert found.first_bad == first_bad
    assert reason in found.reason


def _action(workspace, status: str) -> BillingAction:
    return BillingAction.objects.filter(workspace=workspace, status=status).earliest("created_at")


def _approval(workspace, status: str) -> ApprovalRequest:
    return ApprovalRequest.objects.get(workspace=workspace, status=status)


ROW_CASES = [
    # (case, model, status, change)  an action's or approval's audited field edited
    ("action amount", BillingAction, "succeeded", {"amount": 1}),
    ("action status", BillingAction, "not_permitted", {"status": "succeeded"}),
    ("action actor role", BillingAction, "succeeded", {"actor_role": "vp"}),
    ("action decision", BillingAction, "denied", {"decision": "allow"}),
    ("action params", BillingAction, "succeeded", {"params": {"amount": 5}}),
    ("action provider id", BillingAction, "succeeded", {"provider_object_id": "re_x"}),
    ("approval status", ApprovalRequest, "denied", {"status": "approved"}),
    ("approval comment", ApprovalRequest, "approved", {"comment": "rewritten"}),
    ("approval decided role", ApprovalRequest, "approved", {"decided_role": "vp"}),
]


@pytest.mark.parametrize(
    ("model", "status", "change"),
    [pytest.param(m, s, c, id=n) for n, m, s, c in ROW_CASES],
)
def test_an_edited_audited_row_fails_at_that_row(trail, capsys, model, status, change):  # noqa: F811
    row = model.objects.filter(workspace=trail, status=status).earliest("created_at")
    model.objects.filter(pk=row.pk).update(**change)

    found = verify_fails_at(trail, capsys)

    kind = "billing_action" if model is BillingAction else "approval_request"
    assert found.first_bad == f"{kind} {row.pk}"
    assert f": {', '.join(sorted(change))}" in found.reason


@pytest.mark.parametrize(
    ("model", "status"),
    [
        pytest.param(BillingAction, "not_permitted", id="refused action"),
        pytest.param(BillingAction, "succeeded", id="executed action"),
        pytest.param(ApprovalRequest, "approved", id="approval request"),
    ],
)
def test_a_deleted_audited_row_is_named(trail, capsys, model, status):  # noqa: F811
    row = model.objects.filter(workspace=trail, status=status).earliest("created_at")
    model.objects.filter(pk=row.pk).delete()

    found = verify_fails_at(trail, capsys)

    kind = "billing_action" if model is BillingAction else "approval_request"
    assert found.first_bad == f"{kind} {row.pk}" and "deleted" in found.reason


def test_a_row_inserted_without_an_entry_is_named(trail, capsys):  # noqa: F811
    action = _action(trail, "not_permitted")
    action.id, action.idempotency_key = uuid.uuid4(), "forged"
    action.save(force_insert=True)

    found = verify_fails_at(trail, capsys)

    assert found.first_bad == f"billing_action {action.pk}" and "no audit entry" in found.reason


def test_the_first_bad_row_is_the_earliest_of_several(trail, capsys):  # noqa: F811
    # given tampering in three places: an action, entry 9's columns, entry 4's content
    BillingAction.objects.filter(pk=_action(trail, "succeeded").pk).update(amount=1)
    set_columns(9, event="x")(trail)
    edit_content(4, amount(1))(trail)

    # then the chain's earliest break is reported first
    assert verify_fails_at(trail, capsys).first_bad == "entry 4"


def test_an_untouched_trail_verifies_with_every_workspace(trail, make_workspace, capsys):  # noqa: F811
    # given a second workspace with no entries at all
    make_workspace("globex")

    # when verify_audit runs over every workspace, then both verify and exit 0
    call_command("verify_audit")
    out = capsys.readouterr().out
    assert "acme: ok, 12 entries" in out and "globex: ok, 0 entries" in out


def test_without_workspace_every_broken_workspace_is_named(trail, make_workspace, capsys):  # noqa: F811
    make_workspace("globex")
    set_columns(2, hash="0" * 64)(trail)

    with pytest.raises(CommandError) as raised:
        call_command("verify_audit")

    assert raised.value.returncode == 1
    assert "acme (at entry 2)" in str(raised.value) and "globex" not in str(raised.value)


def test_an_unknown_workspace_is_refused(db):
    with pytest.raises(CommandError, match="No workspace"):
        call_command("verify_audit", "--workspace", "nope")


@pytest.mark.parametrize(
    "tamper",
    [
        pytest.param(delete_head, id="head deleted"),
        pytest.param(set_head(seq=0, previous_hash="", last_hash=""), id="head reset"),
    ],
)
def test_appending_after_the_head_was_deleted_or_reset_is_refused_not_restarted(
    trail,  # noqa: F811
    caplog,
    tamper,
):
    # given the trail whose head is gone (or reset to nothing)
    tamper(trail)
    before = list(AuditEntry.objects.filter(workspace=trail).values_list("seq", "hash"))

    # when anything audited is appended
    with (
        caplog.at_level(logging.ERROR, logger="billing_app.services.audit"),
        pytest.raises(AuditChainBroken),
        transaction.atomic(),
    ):
        audit_append(workspace_id=trail.pk, events=[Event("test.event", "admin", "x", {"n": 1})])

    # then nothing is written (no second entry 1, no restarted chain), and it is logged
    assert list(AuditEntry.objects.filter(workspace=trail).values_list("seq", "hash")) == before
    assert any("behind its entries" in r.getMessage() for r in caplog.records)
