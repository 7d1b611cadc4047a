"""One lock order everywhere: the audit chain's head is locked after the roll-ups (issue 17).

Every audited transaction locks the workspace's ``AuditChainHead`` (its upsert) and most
also lock daily roll-up rows and the customer's snapshot. Two transactions taking them in
opposite orders deadlock on PostgreSQL; so each path appends to the chain last — after
its roll-ups, snapshot mark and monitoring flag (docs/audit.md, "Lock order"). Checked here
on the statements each path sends: within a transaction, nothing touches a roll-up, a
snapshot or a flag after the append. Paths: a submission (executed, escalated), an
outcome (success, failure, unknown), an approval decided, an approval expired.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from billing_app.catalog import ActionKind as K
from billing_app.catalog import Role
from billing_app.errors import ProviderError
from billing_app.models import ApprovalRequest
from billing_app.services.approvals import approval_decide, approvals_expire

from .test_actions_api import post_action, refund
from .test_actions_unknown_outcome import (  # noqa: F401  (fixtures)
    CREDIT,
    acme,
    lost,
    specialist,
    spy,
    submit,
)

pytestmark = pytest.mark.django_db(transaction=True)

AUDIT_TABLE = "billing_app_audit"
LOCKED_BEFORE = ("rollup", "customersnapshot", "customerflag")
WRITES = ("INSERT", "UPDATE", "DELETE", "WITH")


def after_the_append(queries) -> tuple[int, list[str]]:
    """How many appends were seen, and the statements that touched a roll-up, snapshot or
    flag after an append in the same transaction (none when the order holds)."""
    appends, late, appended = 0, [], False
    for query in queries:
        sql = query["sql"]
        verb = sql.split(None, 1)[0].upper()
        if verb in ("BEGIN", "COMMIT", "ROLLBACK"):
            appended = False
        elif AUDIT_TABLE in sql and verb in WRITES:
            appends += not appended
            appended = True
        elif appended and any(table in sql.lower() for table in LOCKED_BEFORE):
            late.append(sql)
    return appends, late


def assert_appended_last(captured) -> None:
    appends, late = after_the_append(captured.captured_queries)
    assert appends >= 1
    assert late == [], "\n".join(late)


def test_an_executed_refund_and_an_escalation_append_after_their_roll_ups(workspace, api_as):
    from .actions_support import account_seed

    account_seed(workspace)
    manager = api_as(workspace, Role.MANAGER)
    specialist_client = api_as(workspace, Role.SPECIALIST, agent_id="spec-requester")

    with CaptureQueriesContext(connection) as executed:
        assert post_action(manager, K.ISSUE_REFUND, refund(1000)).status_code == 201
    assert_appended_last(executed)
    assert after_the_append(executed.captured_queries)[0] == 2  # submission and outcome

    with CaptureQueriesContext(connection) as escalated:
        body = post_action(specialist_client, K.ISSUE_REFUND, refund(120_000)).json()
    assert body["status"] == "pending_approval"
    assert_appended_last(escalated)

    # the Manager's decision (and the execution it starts)
    with CaptureQueriesContext(connection) as decided:
        approval_decide(
            approval_id=body["approval"]["id"],
            user=manager.membership.user,
            workspace=workspace,
            decision="approve",
        )
    assert_appended_last(decided)
    assert after_the_append(decided.captured_queries)[0] == 2  # decision and outcome


def test_an_expiry_appends_after_its_roll_ups(workspace, api_as):
    from .actions_support import account_seed

    account_seed(workspace)
    requester = api_as(workspace, Role.SPECIALIST, agent_id="spec-requester")
    body = post_action(requester, K.ISSUE_REFUND, refund(120_000)).json()
    ApprovalRequest.objects.filter(pk=body["approval"]["id"]).update(
        expires_at=timezone.now() - timedelta(minutes=1)
    )

    with CaptureQueriesContext(connection) as expired:
        assert approvals_expire() == 1
    assert_appended_last(expired)


@pytest.mark.parametrize(
    "failure",
    [
        pytest.param(lambda: ProviderError("Declined.", code="card_error"), id="failed"),
        pytest.param(lost, id="outcome unknown"),
    ],
)
def test_a_failed_or_unknown_outcome_appends_after_its_roll_ups(
    acme,  # noqa: F811
    specialist,  # noqa: F811
    spy,  # noqa: F811
    failure,
    settings,
):
    settings.BILLING_DESK_ACTION_PROVIDER_RETRIES = 0  # one attempt: the lost answer stays lost
    spy.fail("apply_credit", failure())

    with CaptureQueriesContext(connection) as captured:
        action = submit(specialist, K.APPLY_CREDIT, CREDIT)

    assert action.status in ("failed", "outcome_unknown")
    assert_appended_last(captured)
    assert after_the_append(captured.captured_queries)[0] == 2
