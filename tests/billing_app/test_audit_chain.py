"""The tamper-evident audit trail (issue 17): every way of tampering is found at its row."""

from __future__ import annotations

import json

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from billing_app.audit_chain import canonical_json, chain_verify, entry_hash
from billing_app.catalog import ActionKind, Role
from billing_app.models import AuditChainHead, AuditEntry, AuditVerification, BillingAction
from billing_app.services.audit import Event, audit_append, audit_chain_backfill
from billing_app.services.audit_verify import audit_check
from tests.concurrency import run_at_once

from .actions_support import account_seed
from .test_actions_api import post_action, refund

K = ActionKind


@pytest.fixture
def trail(workspace, api_as):
    """An executed refund, an approved and a denied escalation, a refused request."""
    account_seed(workspace)
    manager = api_as(workspace, Role.MANAGER, agent_id="mgr-1")
    specialist = api_as(workspace, Role.SPECIALIST, agent_id="spec-1")
    assert post_action(manager, K.ISSUE_REFUND, refund(1000)).json()["status"] == "succeeded"
    for verb in ("approve", "deny"):
        body = post_action(specialist, K.ISSUE_REFUND, refund(120_000)).json()
        assert body["status"] == "pending_approval"
        decided = manager.post(
            f"/api/v1/approvals/{body['approval']['id']}/{verb}/", {"comment": "why"}, format="json"
        )
        assert decided.status_code == 200, decided.json()
    l1 = api_as(workspace, Role.L1, agent_id="l1-1")
    assert post_action(l1, K.ISSUE_REFUND, refund(1000)).status_code == 403
    return workspace


def entries(workspace) -> list[AuditEntry]:
    return list(AuditEntry.objects.filter(workspace=workspace).order_by("seq"))


def verify_fails(workspace) -> AuditVerification:
    with pytest.raises(CommandError) as raised:
        call_command("verify_audit", "--workspace", workspace.slug)
    assert raised.value.returncode == 1
    found = AuditVerification.objects.filter(workspace=workspace).latest("verified_at")
    assert not found.ok
    return found


def test_every_audited_change_is_one_entry_and_the_trail_verifies(trail, capsys):
    # given the trail, then each change of each action and request is an entry, in order
    events = [e.event for e in entries(trail)]
    assert events == [
        "action.submitted",
        "action.succeeded",
        "action.submitted",
        "approval.requested",
        "approval.approved",
        "action.approved",
        "action.succeeded",
        "action.submitted",
        "approval.requested",
        "approval.denied",
        "action.denied",
        "action.submitted",
    ]
    assert [e.seq for e in entries(trail)] == list(range(1, 13))
    head = AuditChainHead.objects.get(workspace=trail)
    assert (head.seq, head.last_hash) == (12, entries(trail)[-1].hash)

    # when verify_audit runs, then it passes and is recorded
    call_command("verify_audit", "--workspace", trail.slug)
    assert "ok, 12 entries" in capsys.readouterr().out
    recorded = AuditVerification.objects.get(workspace=trail)
    assert recorded.ok and recorded.head_seq == 12 and recorded.first_bad == ""


def _recontent(entry: AuditEntry, **changes) -> None:
    content = json.loads(entry.content)
    content["data"].update(changes)
    AuditEntry.objects.filter(pk=entry.pk).update(content=canonical_json(content))


def test_an_edited_entry_fails_at_that_entry(trail):
    _recontent(entries(trail)[1], amount=999)
    assert verify_fails(trail).first_bad == "entry 2"


def test_an_edited_hash_fails_at_that_entry(trail):
    AuditEntry.objects.filter(workspace=trail, seq=5).update(hash="0" * 64)
    assert verify_fails(trail).first_bad == "entry 5"


def test_a_deleted_entry_fails_where_it_was(trail):
    AuditEntry.objects.filter(workspace=trail, seq=4).delete()
    found = verify_fails(trail)
    assert found.first_bad == "entry 4" and "4 was expected" in found.reason


def test_a_deleted_last_entry_is_found(trail):
    AuditEntry.objects.filter(workspace=trail, seq=12).delete()
    assert verify_fails(trail).first_bad == "entry 12"


def test_swapped_entries_fail_at_the_first(trail):
    a, b = (
        AuditEntry.objects.get(workspace=trail, seq=3),
        AuditEntry.objects.get(workspace=trail, seq=7),
    )
    AuditEntry.objects.filter(pk=a.pk).update(seq=-1)
    AuditEntry.objects.filter(pk=b.pk).update(seq=3)
    AuditEntry.objects.filter(pk=a.pk).update(seq=7)
    assert verify_fails(trail).first_bad == "entry 3"


def test_a_forged_entry_fails_at_that_entry(trail):
    # a forger without the chain's arithmetic: inserted in the middle, numbers shifted
    for entry in reversed(entries(trail)[5:]):
        AuditEntry.objects.filter(pk=entry.pk).update(seq=entry.seq + 1)
    previous = AuditEntry.objects.get(workspace=trail, seq=5)
    AuditEntry.objects.create(
        workspace=trail,
        seq=6,
        event="action.succeeded",
        subject_type="billing_action",
        subject_id="forged",
        content=canonical_json({"data": {}}),
        prev_hash=previous.hash,
        hash="f" * 64,
        created_at=previous.created_at,
    )
    assert verify_fails(trail).first_bad == "entry 6"


def test_a_forged_entry_with_the_right_arithmetic_at_the_end_is_found(trail):
    last = entries(trail)[-1]
    content = canonical_json({"event": "action.succeeded", "data": {}})
    AuditEntry.objects.create(
        workspace=trail,
        seq=13,
        event="action.succeeded",
        subject_type="billing_action",
        subject_id="forged",
        content=content,
        prev_hash=last.hash,
        hash=entry_hash(prev_hash=last.hash, seq=13, content=content),
        created_at=last.created_at,
    )
    assert verify_fails(trail).first_bad == "entry 13"


def test_a_rewritten_chain_is_found_by_the_last_verification(trail):
    # given a verified trail, when someone rewrites an entry and every hash after it, and
    # the head, then the hash recorded by the last verification no longer matches
    call_command("verify_audit", "--workspace", trail.slug)
    rows = entries(trail)
    content = json.loads(rows[0].content)
    content["data"]["amount"] = 1
    rows[0].content = canonical_json(content)
    prev = ""
    for row in rows:
        row.prev_hash = prev
        row.hash = prev = entry_hash(prev_hash=prev, seq=row.seq, content=row.content)
        row.save()
    AuditChainHead.objects.filter(workspace=trail).update(last_hash=prev)
    assert verify_fails(trail).first_bad == "entry 12"


def test_an_edited_action_fails_at_that_action(trail):
    action = BillingAction.objects.filter(workspace=trail, status="succeeded").earliest(
        "created_at"
    )
    BillingAction.objects.filter(pk=action.pk).update(amount=1)
    found = verify_fails(trail)
    assert found.first_bad == f"billing_action {action.pk}" and "amount" in found.reason


def test_a_deleted_action_is_found(trail):
    action = BillingAction.objects.get(workspace=trail, status="not_permitted")
    BillingAction.objects.filter(pk=action.pk).delete()
    found = verify_fails(trail)
    assert found.first_bad == f"billing_action {action.pk}" and "deleted" in found.reason


def test_an_inserted_action_is_found(trail):
    action = BillingAction.objects.get(workspace=trail, status="not_permitted")
    action.pk, action.idempotency_key = None, "forged"
    action.id = __import__("uuid").uuid4()
    action.save(force_insert=True)
    found = verify_fails(trail)
    assert found.first_bad == f"billing_action {action.pk}"
    assert "no audit entry" in found.reason


def test_the_backfill_covers_rows_written_without_entries(workspace, api_as):
    # given actions written before the chain (their entries removed, the head reset)
    account_seed(workspace)
    manager = api_as(workspace, Role.MANAGER)
    post_action(manager, K.ISSUE_REFUND, refund(1000))
    AuditEntry.objects.all().delete()
    AuditChainHead.objects.all().delete()

    # when the migration's backfill runs, then the trail verifies
    assert audit_chain_backfill(workspace_id=workspace.pk) == 1
    assert audit_check(workspace=workspace).ok


def test_the_offline_recipe_verifies_rows_as_exported(trail):
    rows = [
        {"seq": e.seq, "content": e.content, "prev_hash": e.prev_hash, "hash": e.hash}
        for e in entries(trail)
    ]
    assert chain_verify(rows) is None
    edited = json.loads(rows[3]["content"])
    edited["data"]["status"] = "approved"
    rows[3]["content"] = canonical_json(edited)
    assert chain_verify(rows).seq == 4


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor != "postgresql", reason="needs PostgreSQL row locks")
def test_concurrent_appends_keep_one_chain(make_workspace):
    # given a workspace, when forty transactions append at once (two entries each)
    from django.db import transaction

    workspace = make_workspace("race")

    def append(i: int) -> None:
        with transaction.atomic():
            audit_append(
                workspace_id=workspace.pk,
                events=[Event("test.append", "test", f"{i}-{k}", {"i": i, "k": k}) for k in (1, 2)],
            )

    results = run_at_once(40, append)

    # then none failed and the entries form one unbroken chain of 80
    assert [r for r in results if isinstance(r, BaseException)] == []
    assert audit_check(workspace=workspace).ok
    assert [e.seq for e in entries(workspace)] == list(range(1, 81))


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor != "postgresql", reason="needs PostgreSQL row locks")
@pytest.mark.parametrize("first", [True, False], ids=["the chain's first entry", "a later entry"])
def test_a_second_appender_waits_for_the_first_to_commit_then_chains_to_it(make_workspace, first):
    """Deterministic, no sleeps: A appends and holds its transaction open until told; B,
    appending meanwhile with a lock timeout, must fail waiting (it neither forks the chain
    nor reads A's uncommitted end); after A commits, B's entry chains to A's."""
    import threading

    from django.db import OperationalError, transaction

    workspace = make_workspace("race")
    if not first:
        with transaction.atomic():
            audit_append(workspace_id=workspace.pk, events=[Event("test.append", "test", "0", {})])
    holding, release = threading.Event(), threading.Event()
    failures: list[BaseException] = []

    def appender_a() -> None:
        try:
            with transaction.atomic():
                audit_append(
                    workspace_id=workspace.pk, events=[Event("test.append", "test", "A", {})]
                )
                holding.set()
                assert release.wait(timeout=60)
        except BaseException as exc:  # reported below
            failures.append(exc)
            holding.set()
        finally:
            from django.db import connections

            connections.close_all()

    a = threading.Thread(target=appender_a)
    a.start()
    try:
        assert holding.wait(timeout=60) and not failures
        # when B appends while A holds the chain's head: it waits (here: until its timeout)
        with pytest.raises(OperationalError, match="lock timeout"), transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL lock_timeout = '200ms'")
            audit_append(workspace_id=workspace.pk, events=[Event("test.append", "test", "B", {})])
    finally:
        release.set()
        a.join(timeout=60)
    assert not failures and not a.is_alive()

    # then, A committed, B's append goes after A's and the chain is one
    with transaction.atomic():
        audit_append(workspace_id=workspace.pk, events=[Event("test.append", "test", "B", {})])
    rows = entries(workspace)
    subjects = [e.subject_id for e in rows]
    assert subjects == (["A", "B"] if first else ["0", "A", "B"])
    assert rows[-1].prev_hash == rows[-2].hash
    assert audit_check(workspace=workspace).ok
