"""Role and matrix changes made in admin join the audit chain; exports verify offline."""

from __future__ import annotations

import csv
import io
import json

from billing_app.audit_chain import chain_verify
from billing_app.catalog import ActionKind, Role
from billing_app.models import ActionPolicy, AuditEntry
from billing_app.services.audit_verify import audit_check

from .actions_support import account_seed
from .test_actions_api import post_action, refund
from .test_admin import form_data, url


def test_a_matrix_cell_edited_in_admin_is_an_audit_entry(admin_client, workspace):
    # given the matrix filtered to "change plan"
    list_url = url("billing_app_actionpolicy_changelist")
    query = f"?workspace__id__exact={workspace.pk}&action=change_plan"
    data = form_data(admin_client.get(list_url + query), "changelist-form")
    l2 = ActionPolicy.objects.get(workspace=workspace, action="change_plan", role="l2")
    row = next(k.split("-")[1] for k, v in data.items() if k.endswith("-id") and v == [str(l2.pk)])

    # when the admin sets L2 to "not permitted"
    data[f"form-{row}-effect"] = ["deny"]
    data["_save"] = ["Save"]
    assert admin_client.post(list_url + query, data).status_code == 302

    # then the change is in the workspace's chain, with the cell as it now is
    entry = AuditEntry.objects.get(workspace=workspace, event="admin.changed")
    content = json.loads(entry.content)
    assert entry.subject_id == f"billing_app.actionpolicy:{l2.pk}"
    assert content["data"]["fields"]["effect"] == "deny"
    assert audit_check(workspace=workspace).ok


def test_the_exports_carry_the_hashes_and_verify_offline(admin_client, workspace, api_as):
    # given a workspace with audited actions
    account_seed(workspace)
    manager = api_as(workspace, Role.MANAGER)
    post_action(manager, ActionKind.ISSUE_REFUND, refund(1000))
    post_action(manager, ActionKind.ISSUE_REFUND, refund(2000))

    # when an auditor downloads the CSV and the JSON
    as_csv = admin_client.get(url("billing_app_auditentry_export", workspace.slug, "csv"))
    as_json = admin_client.get(url("billing_app_auditentry_export", workspace.slug, "json"))

    # then both verify with the pure recipe alone, and a changed cell is found at its row
    rows = list(csv.DictReader(io.StringIO(as_csv.content.decode())))
    assert [int(r["seq"]) for r in rows] == [1, 2, 3, 4]
    assert chain_verify(rows) is None
    body = json.loads(as_json.content)
    assert body["head"] == {"seq": 4, "hash": rows[-1]["hash"]}
    assert chain_verify(body["entries"], anchor=(body["head"]["seq"], body["head"]["hash"])) is None
    rows[2]["content"] = rows[2]["content"].replace('"amount":2000', '"amount":20')
    assert chain_verify(rows).seq == 3
    del body["entries"][-1]  # a truncated export misses the head it names
    assert chain_verify(body["entries"], anchor=(4, body["head"]["hash"])) is not None


def test_the_export_needs_the_admin(client, workspace):
    response = client.get(url("billing_app_auditentry_export", workspace.slug, "csv"))
    assert response.status_code == 302  # to the admin's login
