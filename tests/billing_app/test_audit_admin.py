"""Role and matrix changes made in admin join the audit chain; exports verify offline.

Each way admin changes who may do what — a membership's role (form, bulk action,
removal), a matrix cell or approval route (its page, the list, inline on the workspace,
the product default, provisioning), a role mapping rule (per-agent overrides included),
a workspace's settings, a currency rate, a user's role groups, flags and permissions —
appends an entry to the chains it governs, with the row's values; each entry is then
part of what ``verify_audit`` proves (an edited admin entry fails at that entry).
"""

from __future__ import annotations

import csv
import io
import json

import pytest
from django.contrib.auth.models import Group, User
from django.core.management import CommandError, call_command

from billing_app.audit_chain import canonical_json, chain_verify
from billing_app.catalog import ActionKind, Role
from billing_app.models import (
    ActionPolicy,
    AgentMembership,
    ApprovalRoute,
    AuditEntry,
    AuditVerification,
    CurrencyRate,
    RoleMappingRule,
    Workspace,
)
from billing_app.roles import role_group_name
from billing_app.services.audit_verify import audit_check

from .actions_support import account_seed
from .test_actions_api import post_action, refund
from .test_admin import form_data, url


def admin_entries(workspace, event: str | None = None) -> list[tuple[str, str, dict]]:
    """The workspace's admin entries as (event, subject, data), in chain order."""
    rows = AuditEntry.objects.filter(workspace=workspace, subject_type="admin").order_by("seq")
    return [
        (e.event, e.subject_id, json.loads(e.content)["data"])
        for e in rows
        if event is None or e.event == event
    ]


def verifies(workspace) -> bool:
    return audit_check(workspace=workspace).ok


def tampering_is_found(workspace, subject_id: str) -> None:
    """Edit the admin entry of ``subject_id`` (its recorded values): verification fails there."""
    entry = AuditEntry.objects.filter(workspace=workspace, subject_id=subject_id).latest("seq")
    content = json.loads(entry.content)
    content["data"]["repr"] = "something else"
    AuditEntry.objects.filter(pk=entry.pk).update(content=canonical_json(content))
    found = audit_check(workspace=workspace)
    assert (found.ok, found.first_bad) == (False, f"entry {entry.seq}")


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


# -- the matrix -------------------------------------------------------------------------------


@pytest.fixture
def three(make_workspace):
    """acme and globex active, dormant inactive."""
    acme, globex = make_workspace("acme"), make_workspace("globex")
    dormant = make_workspace("dormant")
    Workspace.objects.filter(pk=dormant.pk).update(is_active=False)
    return acme, globex, dormant


def test_a_default_matrix_cell_changed_in_admin_joins_every_active_workspaces_chain(
    admin_client, three
):
    # given the product default's cell for a Manager's refunds
    acme, globex, dormant = three
    cell = ActionPolicy.objects.get(workspace=None, action="issue_refund", role="manager")
    page_url = url("billing_app_actionpolicy_change", cell.pk)
    data = form_data(admin_client.get(page_url), "actionpolicy_form")

    # when an admin lowers its limit
    assert admin_client.post(page_url, {**data, "limit": ["12345"]}).status_code == 302

    # then every active workspace's chain holds the change with the new limit; an
    # inactive workspace's does not (it is provisioned again before it is used)
    subject = f"billing_app.actionpolicy:{cell.pk}"
    for workspace in (acme, globex):
        [(event, subject_id, data_)] = admin_entries(workspace)
        assert (event, subject_id) == ("admin.changed", subject)
        assert data_["fields"]["limit"] == 12345 and data_["fields"]["workspace_id"] is None
        assert verifies(workspace)
    assert admin_entries(dormant) == []
    tampering_is_found(globex, subject)


def test_a_default_approval_route_deleted_in_admin_joins_every_active_chain(admin_client, three):
    acme, globex, _ = three
    route = ApprovalRoute.objects.filter(workspace=None).order_by("pk").first()
    pk = route.pk

    response = admin_client.post(url("billing_app_approvalroute_delete", pk), {"post": "yes"})

    assert response.status_code == 302
    for workspace in (acme, globex):
        [(event, subject_id, data_)] = admin_entries(workspace)
        assert (event, subject_id) == ("admin.deleted", f"billing_app.approvalroute:{pk}")
        assert data_["fields"]["approver_roles"] == route.approver_roles
        assert verifies(workspace)


def test_an_approval_route_edited_in_admin_is_chained(admin_client, workspace):
    route = ApprovalRoute.objects.get(workspace=workspace, action="force_cancel")
    page_url = url("billing_app_approvalroute_change", route.pk)
    data = form_data(admin_client.get(page_url), "approvalroute_form")

    admin_client.post(page_url, {**data, "approver_roles": ["legal", "vp"]})

    [(event, subject_id, data_)] = admin_entries(workspace)
    assert (event, subject_id) == ("admin.changed", f"billing_app.approvalroute:{route.pk}")
    assert sorted(data_["fields"]["approver_roles"]) == ["legal", "vp"]
    assert verifies(workspace)
    tampering_is_found(workspace, subject_id)


def test_matrix_cells_edited_inline_on_the_workspace_are_chained_with_their_values(
    admin_client, workspace
):
    # given the workspace's page with its matrix inline
    page_url = url("billing_app_workspace_change", workspace.pk)
    data = form_data(admin_client.get(page_url), "workspace_form")
    cell = ActionPolicy.objects.get(workspace=workspace, action="change_plan", role="l2")
    row = next(
        k.split("-")[1]
        for k, v in data.items()
        if k.startswith("action_policies-") and k.endswith("-id") and v == [str(cell.pk)]
    )

    # when the admin sets L2's plan changes to "not permitted" inline
    data[f"action_policies-{row}-effect"] = ["deny"]
    assert admin_client.post(page_url, data).status_code == 302

    # then the cell's own entry holds its values, then the workspace's names it
    entries = admin_entries(workspace)
    assert [(e, s) for e, s, _ in entries] == [
        ("admin.changed", f"billing_app.actionpolicy:{cell.pk}"),
        ("admin.changed", f"billing_app.workspace:{workspace.pk}"),
    ]
    assert entries[0][2]["fields"]["effect"] == "deny"
    assert verifies(workspace)
    tampering_is_found(workspace, f"billing_app.actionpolicy:{cell.pk}")


def test_provisioning_chains_the_cells_it_copies(admin_client, workspace):
    # given a workspace missing one cell of the default
    ActionPolicy.objects.filter(workspace=workspace, action="issue_refund", role="l1").delete()

    # when an admin runs "provision" on it
    admin_client.post(
        url("billing_app_workspace_changelist"),
        {"action": "provision", "_selected_action": [workspace.pk]},
    )

    # then the copied cell is in the chain with its values
    cell = ActionPolicy.objects.get(workspace=workspace, action="issue_refund", role="l1")
    [(event, subject_id, data_)] = admin_entries(workspace)
    assert (event, subject_id) == ("admin.added", f"billing_app.actionpolicy:{cell.pk}")
    assert data_["fields"]["effect"] == cell.effect
    assert verifies(workspace)


def test_a_workspace_added_in_admin_starts_its_chain_with_its_matrix(admin_client):
    data = form_data(admin_client.get(url("billing_app_workspace_add")), "workspace_form")
    data.update({"name": ["Initech"], "slug": ["initech"], "provider": ["sandbox"]})
    data.update({"base_currency": ["USD"]})

    response = admin_client.post(url("billing_app_workspace_add"), data)

    assert response.status_code == 302, response.content.decode()[:2000]
    workspace = Workspace.objects.get(slug="initech")
    entries = admin_entries(workspace)
    cells = ActionPolicy.objects.filter(workspace=workspace).count()
    routes = ApprovalRoute.objects.filter(workspace=workspace).count()
    assert [e for e, _, _ in entries] == ["admin.added"] * (cells + routes + 1)
    assert entries[-1][1] == f"billing_app.workspace:{workspace.pk}"
    assert verifies(workspace)


def test_a_workspace_setting_changed_in_admin_is_chained_without_its_secrets(
    admin_client, workspace
):
    page_url = url("billing_app_workspace_change", workspace.pk)
    data = form_data(admin_client.get(page_url), "workspace_form")

    admin_client.post(page_url, {**data, "refund_window_days": ["7"]})

    [(event, subject_id, data_)] = admin_entries(workspace)
    assert (event, subject_id) == ("admin.changed", f"billing_app.workspace:{workspace.pk}")
    assert data_["fields"]["refund_window_days"] == 7
    assert not any("secret" in name for name in data_["fields"])
    assert verifies(workspace)
    tampering_is_found(workspace, subject_id)


def test_a_currency_rate_added_in_admin_is_chained(admin_client, workspace):
    data = form_data(admin_client.get(url("billing_app_currencyrate_add")), "currencyrate_form")
    data.update({"workspace": [str(workspace.pk)], "currency": ["EUR"], "rate": ["1.1"]})

    assert admin_client.post(url("billing_app_currencyrate_add"), data).status_code == 302

    rate = CurrencyRate.objects.get(workspace=workspace, currency="EUR")
    [(event, subject_id, _)] = admin_entries(workspace)
    assert (event, subject_id) == ("admin.added", f"billing_app.currencyrate:{rate.pk}")
    assert verifies(workspace)


# -- roles ------------------------------------------------------------------------------------


@pytest.mark.parametrize("match_type", ["agent", "group"])  # agent: a per-agent override
def test_a_role_mapping_rule_added_and_deleted_in_admin_is_chained(
    admin_client, workspace, match_type
):
    data = form_data(
        admin_client.get(url("billing_app_rolemappingrule_add")), "rolemappingrule_form"
    )
    data.update(
        {
            "workspace": [str(workspace.pk)],
            "match_type": [match_type],
            "value": ["42"],
            "role": ["manager"],
            "priority": ["10"],
        }
    )
    assert admin_client.post(url("billing_app_rolemappingrule_add"), data).status_code == 302
    rule = RoleMappingRule.objects.get(workspace=workspace, value="42")
    pk = rule.pk

    admin_client.post(url("billing_app_rolemappingrule_delete", pk), {"post": "yes"})

    subject = f"billing_app.rolemappingrule:{pk}"
    entries = admin_entries(workspace)
    assert [(e, s) for e, s, _ in entries] == [("admin.added", subject), ("admin.deleted", subject)]
    assert entries[0][2]["fields"]["match_type"] == match_type
    assert entries[1][2]["fields"]["role"] == "manager"
    assert verifies(workspace)
    tampering_is_found(workspace, subject)


def test_a_role_rule_added_inline_on_the_workspace_is_chained(admin_client, workspace):
    page_url = url("billing_app_workspace_change", workspace.pk)
    data = form_data(admin_client.get(page_url), "workspace_form")
    data.update(
        {
            "role_rules-TOTAL_FORMS": ["1"],
            "role_rules-0-match_type": ["agent"],
            "role_rules-0-value": ["7"],
            "role_rules-0-connector": [""],
            "role_rules-0-role": ["manager"],
            "role_rules-0-priority": ["100"],
            "role_rules-0-workspace": [str(workspace.pk)],
        }
    )

    assert admin_client.post(page_url, data).status_code == 302

    rule = RoleMappingRule.objects.get(workspace=workspace, value="7")
    added = admin_entries(workspace, "admin.added")
    assert [(s, d["fields"]["role"]) for _, s, d in added] == [
        (f"billing_app.rolemappingrule:{rule.pk}", "manager")
    ]
    assert verifies(workspace)


def test_a_membership_added_changed_set_in_bulk_and_removed_in_admin_is_chained(
    admin_client, workspace
):
    # given a Django user, made a VP approver in admin
    vera = User.objects.create_user("vera", "vera@acme.example", "correct horse battery")
    add = form_data(
        admin_client.get(url("billing_app_agentmembership_add")), "agentmembership_form"
    )
    add.update({"user": [str(vera.pk)], "workspace": [str(workspace.pk)], "role": ["vp"]})
    assert admin_client.post(url("billing_app_agentmembership_add"), add).status_code == 302
    membership = AgentMembership.objects.get(user=vera, workspace=workspace)
    page_url = url("billing_app_agentmembership_change", membership.pk)

    # when her role is changed on its page, then by the bulk action, then she is removed
    data = form_data(admin_client.get(page_url), "agentmembership_form")
    admin_client.post(page_url, {**data, "role": ["legal"]})
    admin_client.post(
        url("billing_app_agentmembership_changelist"),
        {"action": "set_role_manager", "_selected_action": [membership.pk]},
    )
    admin_client.post(url("billing_app_agentmembership_delete", membership.pk), {"post": "yes"})

    # then each step is an entry with the role it left, and the chain verifies
    subject = f"billing_app.agentmembership:{membership.pk}"
    steps = [(e, s, d["fields"]["role"]) for e, s, d in admin_entries(workspace)]
    assert steps == [
        ("admin.added", subject, "vp"),
        ("admin.changed", subject, "legal"),
        ("admin.changed", subject, "manager"),
        ("admin.deleted", subject, "manager"),
    ]
    assert verifies(workspace)
    tampering_is_found(workspace, subject)


def _user_form(admin_client, user) -> tuple[str, dict]:
    page_url = url("auth_user_change", user.pk)
    data = form_data(admin_client.get(page_url), "user_form")
    data["user_permissions"] = [
        str(pk) for pk in user.user_permissions.values_list("pk", flat=True)
    ]  # a multiple select: only its selected options are sent
    return page_url, data


def test_a_role_group_given_on_the_user_page_is_chained_in_that_workspace(
    admin_client, make_workspace
):
    # given two workspaces and a user outside both
    acme, globex = make_workspace("acme"), make_workspace("globex")
    AuditEntry.objects.all().delete()  # the chains' own start is not what this test is about
    from billing_app.models import AuditChainHead

    AuditChainHead.objects.all().delete()
    user = User.objects.create_user("mallory", "m@example.com", "x-unused-x")
    group = Group.objects.get(name=role_group_name(acme, Role.MANAGER))

    # when an admin puts the user in acme's Manager group on the user page
    page_url, data = _user_form(admin_client, user)
    assert admin_client.post(page_url, {**data, "groups": [str(group.pk)]}).status_code == 302

    # then acme's chain holds who now holds what; globex's chain does not
    [(event, subject_id, data_)] = admin_entries(acme)
    assert (event, subject_id) == ("admin.changed", f"auth.user:{user.pk}")
    assert data_["before"]["groups"] == [] and data_["after"]["groups"] == [group.name]
    assert admin_entries(globex) == []
    assert verifies(acme)

    # and saving the page again without a change appends nothing
    page_url, data = _user_form(admin_client, user)
    admin_client.post(page_url, data)
    assert len(admin_entries(acme)) == 1


def test_a_superuser_made_on_the_user_page_is_chained_in_every_active_workspace(
    admin_client, three
):
    acme, globex, dormant = three
    user = User.objects.create_user("mallory", "m@example.com", "x-unused-x")
    page_url, data = _user_form(admin_client, user)

    admin_client.post(page_url, {**data, "is_superuser": ["on"], "is_staff": ["on"]})

    for workspace in (acme, globex):
        [(event, _, data_)] = admin_entries(workspace)
        assert event == "admin.changed"
        assert (data_["before"]["is_superuser"], data_["after"]["is_superuser"]) == (False, True)
        assert verifies(workspace)
    assert admin_entries(dormant) == []


def test_verify_audit_records_a_run_the_dashboard_shows(admin_client, workspace, client):
    # given a chain with an admin change, verified
    route = ApprovalRoute.objects.get(workspace=workspace, action="force_cancel")
    page_url = url("billing_app_approvalroute_change", route.pk)
    data = form_data(admin_client.get(page_url), "approvalroute_form")
    admin_client.post(page_url, {**data, "approver_roles": ["legal", "vp"]})

    call_command("verify_audit", "--workspace", workspace.slug)

    # then the dashboard's system health shows the verification
    page = admin_client.get("/dashboard/", {"workspace": workspace.slug})
    html = page.content.decode()
    assert 'id="audit-health"' in html and "Audit trail verified" in html
    assert "1 entries" in html
    assert AuditVerification.objects.filter(workspace=workspace, ok=True).count() == 1

    # and after tampering, the next run shows the first bad row
    tampering_is_found(workspace, f"billing_app.approvalroute:{route.pk}")
    with pytest.raises(CommandError):
        call_command("verify_audit", "--workspace", workspace.slug)
    html = admin_client.get("/dashboard/", {"workspace": workspace.slug}).content.decode()
    assert "Audit trail broken" in html and "first bad row: entry 1" in html


# -- review fixes: no false entries, moves on record in both chains, exports per workspace -----


def test_a_password_changed_in_admin_appends_nothing(admin_client, three):
    acme, globex, _ = three
    user = User.objects.create_user("bob", "b@example.com", "x-Old-pass-123")
    counts = {w.pk: AuditEntry.objects.filter(workspace=w).count() for w in (acme, globex)}

    response = admin_client.post(
        url("auth_user_password_change", user.pk),
        {"password1": "N3w-very-long-pass!", "password2": "N3w-very-long-pass!"},
    )

    assert response.status_code == 302
    user.refresh_from_db()
    assert user.check_password("N3w-very-long-pass!")
    assert counts == {w.pk: AuditEntry.objects.filter(workspace=w).count() for w in (acme, globex)}


def test_a_plain_user_added_in_admin_is_in_no_chain_a_superuser_is_in_every_one(
    admin_client, three
):
    acme, globex, _ = three
    counts = {w.pk: AuditEntry.objects.filter(workspace=w).count() for w in (acme, globex)}

    # a user with no flag, group or permission: nobody may do anything more than before
    response = admin_client.post(
        url("auth_user_add"),
        {
            "username": "carol",
            "password1": "N3w-very-long-pass!",
            "password2": "N3w-very-long-pass!",
        },
    )
    assert response.status_code == 302
    assert User.objects.filter(username="carol", is_staff=False).exists()
    assert counts == {w.pk: AuditEntry.objects.filter(workspace=w).count() for w in (acme, globex)}

    # made a superuser afterwards: every active chain holds it
    carol = User.objects.get(username="carol")
    page_url, data = _user_form(admin_client, carol)
    admin_client.post(page_url, {**data, "is_superuser": ["on"], "is_staff": ["on"]})
    for workspace in (acme, globex):
        assert admin_entries(workspace)[-1][1] == f"auth.user:{carol.pk}"


def test_a_matrix_cell_moved_to_another_workspace_is_in_both_chains(admin_client, three):
    acme, globex, _ = three
    cell = ActionPolicy.objects.get(workspace=acme, action="issue_refund", role="manager")
    ActionPolicy.objects.filter(workspace=globex, action="issue_refund", role="manager").delete()
    page_url = url("billing_app_actionpolicy_change", cell.pk)
    data = form_data(admin_client.get(page_url), "actionpolicy_form")

    assert admin_client.post(page_url, {**data, "workspace": [str(globex.pk)]}).status_code == 302

    cell.refresh_from_db()
    assert cell.workspace_id == globex.pk
    subject = f"billing_app.actionpolicy:{cell.pk}"
    for workspace in (acme, globex):
        event, subject_id, data_ = admin_entries(workspace)[-1]
        assert (event, subject_id) == ("admin.changed", subject)
        assert data_["fields"]["workspace_id"] == globex.pk
        assert verifies(workspace)


def test_a_default_cell_moved_into_a_workspace_is_in_every_active_chain(admin_client, three):
    acme, globex, dormant = three
    cell = ActionPolicy.objects.get(workspace=None, action="issue_refund", role="manager")
    ActionPolicy.objects.filter(workspace=acme, action="issue_refund", role="manager").delete()
    page_url = url("billing_app_actionpolicy_change", cell.pk)
    data = form_data(admin_client.get(page_url), "actionpolicy_form")

    assert admin_client.post(page_url, {**data, "workspace": [str(acme.pk)]}).status_code == 302

    subject = f"billing_app.actionpolicy:{cell.pk}"
    for workspace in (acme, globex):
        assert admin_entries(workspace)[-1][1] == subject
    assert admin_entries(dormant) == []


@pytest.fixture
def staff_of_acme(client, three):
    """A staff user who may read audit entries and holds view_billing in acme only."""
    from guardian.shortcuts import assign_perm

    from billing_app.roles import workspace_permission

    from .two_factor_support import verified_login

    acme, _, _ = three
    user = User.objects.create_user("auditor", "a@example.com", "x-unused-x", is_staff=True)
    user.user_permissions.add(workspace_permission("view_auditentry"))
    assign_perm("billing_app.view_billing", user, acme)
    verified_login(client, user)
    return client


def test_staff_export_and_list_only_the_workspaces_they_hold_view_billing_in(staff_of_acme, three):
    acme, globex, _ = three
    from billing_app.services.audit import Event, audit_append

    for workspace in (acme, globex):
        audit_append(workspace_id=workspace.pk, events=[Event("test.event", "admin", "x", {})])

    assert staff_of_acme.get(url("billing_app_auditentry_export", "acme", "csv")).status_code == 200
    for fmt in ("csv", "json"):
        response = staff_of_acme.get(url("billing_app_auditentry_export", "globex", fmt))
        assert response.status_code == 404

    page = staff_of_acme.get(url("billing_app_auditentry_changelist"))
    assert page.status_code == 200
    shown = {e.workspace_id for e in page.context["cl"].result_list}
    assert shown == {acme.pk}
    assert "globex" not in page.content.decode()


def test_a_workspace_with_no_entries_deleted_in_admin_is_not_a_server_error(admin_client):
    from billing_app.models import AuditChainHead

    empty = Workspace.objects.create(slug="empty", name="Empty")
    AuditEntry.objects.filter(workspace=empty).delete()
    AuditChainHead.objects.filter(workspace=empty).delete()

    response = admin_client.post(url("billing_app_workspace_delete", empty.pk), {"post": "yes"})

    assert response.status_code in (200, 302)
    assert not AuditEntry.objects.filter(workspace_id=empty.pk).exists()


def test_an_installation_that_acted_cannot_be_deleted_and_the_chain_still_verifies(
    admin_client, workspace, api_as
):
    from django.db.models import ProtectedError

    from billing_app.models import BillingAction
    from helpdesk_connectors.models import Installation

    # given an action taken through an installation
    account_seed(workspace)
    manager = api_as(workspace, Role.MANAGER)
    post_action(manager, ActionKind.ISSUE_REFUND, refund(1000))
    action = BillingAction.objects.get(workspace=workspace)
    installation = Installation.objects.get(pk=action.installation_id)

    # when an admin tries to delete the installation: a clear refusal page, not a 500
    page = admin_client.post(
        url("helpdesk_connectors_installation_delete", installation.pk), {"post": "yes"}
    )
    assert page.status_code == 200
    assert "Cannot delete installation" in page.content.decode()
    assert page.context["protected"]  # Django's page lists the actions that keep it

    # and the database refuses it too (installations are deactivated, not deleted)
    with pytest.raises(ProtectedError):
        installation.delete()
    action.refresh_from_db()
    assert action.installation_id == installation.pk
    assert verifies(workspace)
