"""Role groups per workspace, guardian object permissions, role assignment and resolution."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group, User
from guardian.shortcuts import assign_perm, get_objects_for_user, get_perms, remove_perm

from billing_app.catalog import ROLE_CODENAMES, WORKSPACE_PERMISSIONS, Role
from billing_app.models import AgentMembership, RoleMappingRule, Workspace
from billing_app.roles import (
    AgentFacts,
    agent_role_assign,
    role_group_name,
    role_resolve,
    workspace_mapping_changed,
    workspace_role_groups,
    workspace_roles_provision,
)
from billing_app.services.identity import agent_sign_in
from helpdesk_connectors.base import AgentProfile, HelpdeskIdentity

ALL_CODENAMES = [code for code, _ in WORKSPACE_PERMISSIONS]


def fresh(user: User) -> User:
    """A new instance, so no permission cache of an earlier check answers."""
    return User.objects.get(pk=user.pk)


# -- guardian isolation ------------------------------------------------------


def test_a_manager_of_workspace_a_holds_no_permission_on_workspace_b(make_workspace):
    # given a Manager of workspace A, and a workspace B
    a, b = make_workspace("acme"), make_workspace("globex")
    user = User.objects.create(username="zendesk:acme:1")
    agent_role_assign(user=user, workspace=a, role=Role.MANAGER, source="test")
    user = fresh(user)

    # then every codename holds on A and none on B, and none globally
    for codename in ALL_CODENAMES:
        assert user.has_perm(f"billing_app.{codename}", a), codename
        assert not user.has_perm(f"billing_app.{codename}", b), codename
        assert not user.has_perm(f"billing_app.{codename}"), codename
    # and object listings only name A
    for codename in ("issue_refund", "view_billing", "approve_actions"):
        listed = get_objects_for_user(user, f"billing_app.{codename}", klass=Workspace)
        assert list(listed) == [a]


def test_an_agent_in_two_workspaces_holds_each_role_only_where_assigned(make_workspace):
    a, b = make_workspace("acme"), make_workspace("globex")
    user = User.objects.create(username="agent")
    agent_role_assign(user=user, workspace=a, role=Role.MANAGER, source="test")
    agent_role_assign(user=user, workspace=b, role=Role.VP, source="test")
    user = fresh(user)

    assert user.has_perm("billing_app.issue_refund", a)
    assert not user.has_perm("billing_app.issue_refund", b)  # VP: view + approve only
    assert user.has_perm("billing_app.approve_actions", b)
    assert set(get_objects_for_user(user, "billing_app.approve_actions", klass=Workspace)) == {a, b}
    assert list(get_objects_for_user(user, "billing_app.issue_refund", klass=Workspace)) == [a]


@pytest.mark.parametrize("role", list(Role))
def test_each_role_group_holds_exactly_its_codenames(workspace, role):
    group = Group.objects.get(name=role_group_name(workspace, role))
    assert group.name == f"acme · {role.label}"
    assert set(get_perms(group, workspace)) == set(ROLE_CODENAMES[role])


def test_role_codenames_follow_design_section_2():
    agent_codes = set(ALL_CODENAMES) - {"approve_actions"}
    for role in (Role.L1, Role.L2, Role.SPECIALIST):
        assert set(ROLE_CODENAMES[role]) == agent_codes
    assert set(ROLE_CODENAMES[Role.MANAGER]) == set(ALL_CODENAMES)
    assert set(ROLE_CODENAMES[Role.VP]) == {"view_billing", "approve_actions"}
    assert set(ROLE_CODENAMES[Role.LEGAL]) == {"view_billing", "approve_actions"}


def test_provisioning_is_idempotent_and_removes_stray_permissions(workspace):
    # given an L1 group that someone gave approve_actions and took issue_refund from
    groups = workspace_role_groups(workspace)
    l1 = groups[Role.L1]
    assign_perm("billing_app.approve_actions", l1, workspace)
    remove_perm("billing_app.issue_refund", l1, workspace)
    group_count = Group.objects.count()

    # when provisioning runs again, twice
    workspace_roles_provision(workspace=workspace)
    again = workspace_roles_provision(workspace=workspace)

    # then no group is duplicated and every group holds exactly its codenames again
    assert Group.objects.count() == group_count
    assert {role: g.pk for role, g in again.items()} == {role: g.pk for role, g in groups.items()}
    for role, group in again.items():
        assert set(get_perms(group, workspace)) == set(ROLE_CODENAMES[role]), role


def test_provisioning_one_workspace_leaves_another_alone(make_workspace):
    a, b = make_workspace("acme"), make_workspace("globex")
    b_l2 = workspace_role_groups(b)[Role.L2]
    remove_perm("billing_app.change_plan", b_l2, b)

    workspace_roles_provision(workspace=a)

    assert "change_plan" not in get_perms(b_l2, b)
    assert get_perms(workspace_role_groups(a)[Role.L2], b) == []


def test_provisioning_repairs_a_workspace_in_a_fixed_number_of_statements(
    make_workspace, django_assert_max_num_queries
):
    workspace = make_workspace("acme")
    groups = workspace_role_groups(workspace)
    remove_perm("billing_app.change_plan", groups[Role.L2], workspace)
    assign_perm("billing_app.approve_actions", groups[Role.L1], workspace)
    Group.objects.filter(pk=groups[Role.MANAGER].pk).delete()

    # Groups, permissions and guardian's rows in bulk: not one round trip per codename.
    with django_assert_max_num_queries(12):
        repaired = workspace_roles_provision(workspace=workspace)

    for role, group in repaired.items():
        assert set(get_perms(group, workspace)) == set(ROLE_CODENAMES[role]), role
    with django_assert_max_num_queries(5):  # intact: three reads inside a savepoint
        workspace_roles_provision(workspace=workspace)


# -- agent_role_assign -------------------------------------------------------


def _workspace_groups_of(user: User, workspace: Workspace) -> set[str]:
    names = {g.name for g in workspace_role_groups(workspace).values()}
    return set(user.groups.filter(name__in=names).values_list("name", flat=True))


def test_role_assign_keeps_exactly_one_role_group_per_workspace(make_workspace):
    a, b = make_workspace("acme"), make_workspace("globex")
    user = User.objects.create(username="agent")
    agent_role_assign(user=user, workspace=b, role=Role.L2, source="test")

    for role in (Role.L1, Role.MANAGER, Role.SPECIALIST, Role.LEGAL, Role.L1):
        agent_role_assign(user=user, workspace=a, role=role, source="test")
        assert _workspace_groups_of(user, a) == {role_group_name(a, role)}
    # the other workspace's group is untouched
    assert _workspace_groups_of(user, b) == {role_group_name(b, Role.L2)}
    assert AgentMembership.objects.filter(user=user).count() == 2


def test_role_version_bumps_only_when_the_role_changes(workspace):
    user = User.objects.create(username="agent")
    first = agent_role_assign(user=user, workspace=workspace, role=Role.L1, source="default")
    assert (first.role, first.role_version) == ("l1", 1)

    same = agent_role_assign(user=user, workspace=workspace, role=Role.L1, source="rule: x")
    assert (same.role, same.role_version, same.role_source) == ("l1", 1, "rule: x")

    changed = agent_role_assign(user=user, workspace=workspace, role=Role.L2, source="rule: y")
    assert (changed.role, changed.role_version) == ("l2", 2)

    back = agent_role_assign(user=user, workspace=workspace, role=Role.L1, source="default")
    assert (back.role, back.role_version) == ("l1", 3)
    assert AgentMembership.objects.filter(user=user, workspace=workspace).count() == 1


def test_role_assign_provisions_missing_groups(db):
    # given a workspace created without its role groups
    workspace = Workspace.objects.create(slug="bare", name="Bare", provider="sandbox")
    user = User.objects.create(username="agent")

    agent_role_assign(user=user, workspace=workspace, role=Role.MANAGER, source="test")

    assert len(workspace_role_groups(workspace)) == len(Role)
    assert fresh(user).has_perm("billing_app.approve_actions", workspace)


def test_a_role_change_revokes_the_old_roles_permissions(workspace):
    user = User.objects.create(username="agent")
    agent_role_assign(user=user, workspace=workspace, role=Role.MANAGER, source="test")
    assert fresh(user).has_perm("billing_app.approve_actions", workspace)

    agent_role_assign(user=user, workspace=workspace, role=Role.L2, source="test")

    assert not fresh(user).has_perm("billing_app.approve_actions", workspace)
    assert fresh(user).has_perm("billing_app.change_plan", workspace)


# -- role_resolve ------------------------------------------------------------


def rule(match_type, value, role, *, priority=100, connector="", pk=None) -> RoleMappingRule:
    return RoleMappingRule(
        pk=pk,
        connector=connector,
        match_type=match_type,
        value=value,
        role=role.value,
        priority=priority,
    )


AGENT, CUSTOM, GROUP, HD_ROLE = (
    RoleMappingRule.MatchType.AGENT,
    RoleMappingRule.MatchType.CUSTOM_ROLE,
    RoleMappingRule.MatchType.GROUP,
    RoleMappingRule.MatchType.HELPDESK_ROLE,
)
FACTS = AgentFacts(
    connector="zendesk",
    agent_id="12345",
    helpdesk_role="Agent",
    custom_role_id="360001",
    group_ids=("9001",),
    group_names=("Billing Team",),
)
EVERY_RULE = [
    rule(HD_ROLE, "agent", Role.L2),
    rule(GROUP, "billing team", Role.SPECIALIST),
    rule(CUSTOM, "360001", Role.MANAGER),
    rule(AGENT, "12345", Role.L1),
]


@pytest.mark.parametrize(
    ("rules", "expected", "source"),
    [
        (EVERY_RULE, Role.L1, "rule: Agent (override) '12345'"),
        (EVERY_RULE[:3], Role.MANAGER, "rule: Custom role '360001'"),
        (EVERY_RULE[:2], Role.SPECIALIST, "rule: Group 'billing team'"),
        (EVERY_RULE[:1], Role.L2, "rule: Helpdesk role 'agent'"),
        ([], Role.L1, "workspace default role"),
    ],
    ids=["agent-override", "custom-role", "group", "helpdesk-role", "default"],
)
def test_role_resolve_precedence(rules, expected, source):
    # the order of the rules given does not matter, only their kind
    role, why = role_resolve(rules=list(reversed(rules)), facts=FACTS, default=Role.L1)
    assert (role, why) == (expected, source)


def test_role_resolve_lowest_priority_wins_within_a_kind():
    rules = [
        rule(GROUP, "billing team", Role.L2, priority=50, pk=1),
        rule(GROUP, "9001", Role.SPECIALIST, priority=10, pk=2),
    ]
    assert role_resolve(rules=rules, facts=FACTS, default=Role.L1)[0] == Role.SPECIALIST


def test_role_resolve_ties_break_on_the_older_rule():
    rules = [rule(GROUP, "9001", Role.L2, pk=8), rule(GROUP, "billing team", Role.MANAGER, pk=3)]
    assert role_resolve(rules=rules, facts=FACTS, default=Role.L1)[0] == Role.MANAGER


def test_role_resolve_skips_rules_for_another_helpdesk():
    rules = [
        rule(AGENT, "12345", Role.MANAGER, connector="freshdesk"),
        rule(HD_ROLE, "agent", Role.L2, connector="zendesk"),
    ]
    assert role_resolve(rules=rules, facts=FACTS, default=Role.L1) == (
        Role.L2,
        "rule: Helpdesk role 'agent'",
    )


def test_role_resolve_uses_the_given_default_and_ignores_empty_values():
    facts = AgentFacts(connector="freshdesk", agent_id="77")
    rules = [
        rule(HD_ROLE, "admin", Role.MANAGER),
        rule(GROUP, "ops", Role.L2),
        rule(HD_ROLE, "", Role.MANAGER),
        rule(CUSTOM, "", Role.MANAGER),
        rule(GROUP, "", Role.MANAGER),
    ]
    assert role_resolve(rules=rules, facts=facts, default=Role.SPECIALIST) == (
        Role.SPECIALIST,
        "workspace default role",
    )


def test_role_resolve_matches_custom_roles_by_any_role_id():
    facts = AgentFacts(connector="freshdesk", agent_id="5", role_ids=("111", "222"))
    rules = [rule(CUSTOM, "222", Role.SPECIALIST)]
    assert role_resolve(rules=rules, facts=facts, default=Role.L1)[0] == Role.SPECIALIST


def test_sign_in_resolves_the_role_from_workspace_rules(workspace):
    # given a rule "helpdesk role admin → Manager" in the workspace
    RoleMappingRule.objects.create(
        workspace=workspace, match_type=HD_ROLE, value="admin", role=Role.MANAGER.value
    )
    installation = workspace.installation_links.get().installation

    def sign(helpdesk_role):
        identity = HelpdeskIdentity(
            installation=installation,
            agent=AgentProfile(
                agent_id="31",
                name="Ana Admin",
                email="ana@example.com",
                helpdesk_role=helpdesk_role,
            ),
        )
        return agent_sign_in(identity=identity, workspace=workspace)[0]

    # when the agent signs in as a helpdesk admin, then as a plain agent
    membership = sign("admin")
    assert (membership.role, membership.role_source) == ("manager", "rule: Helpdesk role 'admin'")
    membership = sign("agent")
    assert (membership.role, membership.role_source) == ("l1", "workspace default role")
    assert membership.role_version == 2


# -- what the API reports -----------------------------------------------------


def _modes(client) -> dict[str, str]:
    response = client.get("/api/v1/me/")
    assert response.status_code == 200
    return {a["kind"]: a["mode"] for a in response.json()["actions"]}


def test_removing_a_codename_from_a_role_group_makes_the_action_not_permitted(workspace, api_as):
    # given a Manager who may refund directly
    client = api_as(workspace, Role.MANAGER)
    assert _modes(client)["issue_refund"] == "direct"

    # when an admin takes issue_refund from the workspace's Manager group
    remove_perm(
        "billing_app.issue_refund", workspace_role_groups(workspace)[Role.MANAGER], workspace
    )

    # then /me/ reports refunds (and duplicate-charge refunds) as not permitted, the rest unchanged
    modes = _modes(client)
    assert modes["issue_refund"] == "not_permitted"
    assert modes["refund_duplicate_charge"] == "not_permitted"
    assert modes["apply_credit"] == "direct"


def test_removing_a_codename_in_one_workspace_leaves_another(make_workspace, api_as):
    a, b = make_workspace("acme"), make_workspace("globex")
    client_b = api_as(b, Role.L2)
    remove_perm("billing_app.change_plan", workspace_role_groups(a)[Role.L2], a)
    assert _modes(client_b)["change_plan"] == "direct"


def test_a_mapping_change_ends_existing_sessions(workspace, sign_in, client):
    _, token = sign_in(workspace, Role.L2)
    assert client.get("/api/v1/me/", HTTP_AUTHORIZATION=f"Bearer {token}").status_code == 200

    workspace_mapping_changed(workspace=workspace)

    assert client.get("/api/v1/me/", HTTP_AUTHORIZATION=f"Bearer {token}").status_code == 401
