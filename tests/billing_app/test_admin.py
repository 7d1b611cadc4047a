"""Django admin: pages render, secrets stay hidden, role changes and mapping edits go through
the role services, the matrix is editable, and the audit log is read-only."""

from __future__ import annotations

from datetime import timedelta
from html.parser import HTMLParser

import pytest
from django.contrib.auth.models import User
from django.urls import reverse
from django.utils import timezone

from billing_app.catalog import PolicyAction, Role
from billing_app.models import (
    ActionPolicy,
    AgentMembership,
    ApprovalRequest,
    ApprovalRoute,
    BillingAction,
    CurrencyRate,
    RoleMappingRule,
    Workspace,
)
from billing_app.policy import ActionRequest, Allow, Deny, History, NeedsApproval, decide
from billing_app.roles import role_group_name, workspace_role_groups
from billing_app.services.policy import policy_rules_load
from billing_app.services.workspaces import installation_add
from helpdesk_connectors.models import Installation

STRIPE_KEY = "sk_test_51AdminSecretKey000000WXYZ"
WEBHOOK_SECRET = "whsec_adminwebhooksecret00009876"
SHARED_SECRET = "fd-shared-secret-for-admin-0042"


class _FormParser(HTMLParser):
    """The fields a browser would submit from one ``<form id=...>`` of a page."""

    def __init__(self, form_id: str):
        super().__init__(convert_charrefs=True)
        self.form_id, self.inside = form_id, False
        self.data: dict[str, list[str]] = {}
        self._select: str | None = None
        self._select_first: str | None = None
        self._select_chosen = False
        self._textarea: str | None = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "form":
            self.inside = a.get("id") == self.form_id
        if not self.inside:
            return
        name = a.get("name")
        if tag == "input" and name:
            kind = a.get("type", "text")
            if kind in {"submit", "button", "file", "image", "reset"}:
                return
            if kind in {"checkbox", "radio"}:
                if "checked" in a:
                    self.data.setdefault(name, []).append(a.get("value") or "on")
                return
            self.data[name] = [a.get("value") or ""]
        elif tag == "select" and name:
            self._select, self._select_first, self._select_chosen = name, None, False
            self.data.setdefault(name, [])
        elif tag == "option" and self._select:
            value = a.get("value") or ""
            if self._select_first is None:
                self._select_first = value
            if "selected" in a:
                self.data[self._select].append(value)
                self._select_chosen = True
        elif tag == "textarea" and name:
            self._textarea = name
            self.data[name] = [""]

    def handle_endtag(self, tag):
        if tag == "form":
            self.inside = False
        elif tag == "select" and self._select:
            if not self._select_chosen and self._select_first is not None:
                self.data[self._select] = [self._select_first]
            self._select = None
        elif tag == "textarea":
            self._textarea = None

    def handle_data(self, data):
        if self._textarea:
            self.data[self._textarea][0] += (
                data.lstrip("\n") if not self.data[self._textarea][0] else data
            )


def form_data(response, form_id: str) -> dict[str, list[str]]:
    parser = _FormParser(form_id)
    parser.feed(response.content.decode())
    assert parser.data, f"no form {form_id!r} on the page"
    return parser.data


def url(name: str, *args) -> str:
    return reverse(f"admin:{name}", args=args)


@pytest.fixture
def stripe_workspace(make_workspace):
    return make_workspace(
        "acme",
        provider="stripe",
        stripe_secret_key=STRIPE_KEY,
        stripe_webhook_secret=WEBHOOK_SECRET,
    )


@pytest.fixture
def freshdesk(stripe_workspace):
    return installation_add(
        workspace=stripe_workspace,
        connector="freshdesk",
        domain="acme.freshdesk.com",
        shared_secret=SHARED_SECRET,
        api_token="fd-api-key-00000000abcd",
    )


@pytest.fixture
def audit_rows(stripe_workspace, sign_in):
    membership, _ = sign_in(stripe_workspace, Role.L1)
    action = BillingAction.objects.create(
        workspace=stripe_workspace,
        actor=membership.user,
        actor_role="l1",
        customer_id="cus_NffrFeUfNV2Hib",
        ticket_id="4512",
        kind="issue_refund",
        params={"charge_id": "ch_3MmlLrLkdIwHu7ix0snN0B15", "reason": "requested_by_customer"},
        amount=5_000,
        currency="USD",
        status=BillingAction.Status.PENDING_APPROVAL,
        decision=BillingAction.Decision.APPROVAL,
        decision_reason="the L1 Agent role may issue refund only with approval",
        idempotency_key="idem-1",
        request_fingerprint="f" * 64,
    )
    approval = ApprovalRequest.objects.create(
        action=action,
        workspace=stripe_workspace,
        required_roles=["manager"],
        reason=action.decision_reason,
        expires_at=timezone.now() + timedelta(hours=72),
    )
    return action, approval


# -- every page renders ---------------------------------------------------------------


@pytest.fixture
def objects(stripe_workspace, freshdesk, audit_rows):
    action, approval = audit_rows
    return {
        "billing_app_workspace": stripe_workspace,
        "helpdesk_connectors_installation": freshdesk,
        "billing_app_currencyrate": CurrencyRate.objects.create(
            workspace=stripe_workspace, currency="EUR", rate="1.08"
        ),
        "billing_app_rolemappingrule": RoleMappingRule.objects.create(
            workspace=stripe_workspace, match_type="helpdesk_role", value="admin", role="manager"
        ),
        "billing_app_actionpolicy": ActionPolicy.objects.filter(workspace=stripe_workspace).first(),
        "billing_app_approvalroute": ApprovalRoute.objects.filter(
            workspace=stripe_workspace
        ).first(),
        "billing_app_agentmembership": AgentMembership.objects.get(user=action.actor),
        "billing_app_billingaction": action,
        "billing_app_approvalrequest": approval,
    }


PAGES = [
    "billing_app_workspace",
    "helpdesk_connectors_installation",
    "billing_app_currencyrate",
    "billing_app_rolemappingrule",
    "billing_app_actionpolicy",
    "billing_app_approvalroute",
    "billing_app_agentmembership",
    "billing_app_billingaction",
    "billing_app_approvalrequest",
]
READ_ONLY = {"billing_app_billingaction", "billing_app_approvalrequest"}


@pytest.mark.parametrize("model", PAGES)
def test_admin_pages_render_for_a_superuser(admin_client, objects, model):
    obj = objects[model]

    changelist = admin_client.get(url(f"{model}_changelist"))
    change = admin_client.get(url(f"{model}_change", obj.pk))
    add = admin_client.get(url(f"{model}_add"))

    assert changelist.status_code == 200
    assert change.status_code == 200
    assert add.status_code == (403 if model in READ_ONLY else 200)


def test_admin_pages_require_staff(client, objects):
    response = client.get(url("billing_app_workspace_changelist"))
    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]


def test_the_matrix_changelist_filters_by_workspace_action_and_role(admin_client, stripe_workspace):
    response = admin_client.get(
        url("billing_app_actionpolicy_changelist"),
        {"workspace__id__exact": stripe_workspace.pk, "action": "apply_credit", "role": "l2"},
    )
    assert response.status_code == 200
    assert response.context["cl"].result_count == 1
    assert "below $100.00" in response.content.decode()


# -- secrets are never rendered back ---------------------------------------------------


def test_workspace_secrets_are_never_rendered(admin_client, stripe_workspace):
    html = admin_client.get(
        url("billing_app_workspace_change", stripe_workspace.pk)
    ).content.decode()
    assert STRIPE_KEY not in html
    assert WEBHOOK_SECRET not in html
    assert "Set, ends …WXYZ" in html
    assert "Set, ends …9876" in html
    assert 'type="password" name="stripe_secret_key"' in html

    listing = admin_client.get(url("billing_app_workspace_changelist")).content.decode()
    assert STRIPE_KEY not in listing
    assert "Set, ends …WXYZ" in listing


def test_installation_secrets_are_never_rendered(admin_client, freshdesk):
    html = admin_client.get(
        url("helpdesk_connectors_installation_change", freshdesk.pk)
    ).content.decode()
    assert SHARED_SECRET not in html
    assert "fd-api-key-00000000abcd" not in html
    assert "Set, ends …0042" in html
    assert 'type="password" name="shared_secret"' in html
    assert "Not set" in html  # the OAuth token


def test_blank_secret_keeps_the_stored_value_and_changes_nothing_else(admin_client, freshdesk):
    page = admin_client.get(url("helpdesk_connectors_installation_change", freshdesk.pk))
    data = form_data(page, "installation_form")
    assert data["shared_secret"] == [""]
    version = freshdesk.version

    data["api_email"] = ["ops@acme.example"]
    response = admin_client.post(url("helpdesk_connectors_installation_change", freshdesk.pk), data)

    assert response.status_code == 302
    fresh = Installation.objects.get(pk=freshdesk.pk)
    assert fresh.shared_secret == SHARED_SECRET
    assert fresh.api_token == "fd-api-key-00000000abcd"
    assert fresh.api_email == "ops@acme.example"
    assert fresh.version == version  # no verification change: sessions stay


def test_a_new_shared_secret_replaces_the_old_and_ends_sessions(admin_client, freshdesk):
    data = form_data(
        admin_client.get(url("helpdesk_connectors_installation_change", freshdesk.pk)),
        "installation_form",
    )
    data["shared_secret"] = ["a-brand-new-shared-secret-7777"]

    admin_client.post(url("helpdesk_connectors_installation_change", freshdesk.pk), data)

    fresh = Installation.objects.get(pk=freshdesk.pk)
    assert fresh.shared_secret == "a-brand-new-shared-secret-7777"
    assert fresh.version == freshdesk.version + 1


def test_clearing_a_secret_removes_it_but_a_required_one_is_refused(admin_client, freshdesk):
    page_url = url("helpdesk_connectors_installation_change", freshdesk.pk)
    data = form_data(admin_client.get(page_url), "installation_form")

    # clearing the Freshdesk shared secret is refused: the app could not be verified
    refused = admin_client.post(page_url, {**data, "clear_shared_secret": ["on"]})
    assert refused.status_code == 200
    assert "Freshdesk needs the shared secret" in refused.content.decode()
    assert Installation.objects.get(pk=freshdesk.pk).shared_secret == SHARED_SECRET

    # clearing the API token is fine
    admin_client.post(page_url, {**data, "clear_api_token": ["on"]})
    assert Installation.objects.get(pk=freshdesk.pk).api_token == ""


def test_workspace_stripe_key_is_validated_and_kept_when_blank(admin_client, stripe_workspace):
    page_url = url("billing_app_workspace_change", stripe_workspace.pk)
    data = form_data(admin_client.get(page_url), "workspace_form")

    refused = admin_client.post(page_url, {**data, "stripe_secret_key": ["pk_test_publishable"]})
    assert refused.status_code == 200
    assert "publishable key" in refused.content.decode()

    saved = admin_client.post(page_url, {**data, "name": ["Acme Corporation"]})
    assert saved.status_code == 302
    fresh = Workspace.objects.get(pk=stripe_workspace.pk)
    assert (fresh.name, fresh.stripe_secret_key) == ("Acme Corporation", STRIPE_KEY)


# -- workspaces and the matrix -------------------------------------------------------------


def test_adding_a_workspace_provisions_roles_and_the_matrix(admin_client, db):
    page = admin_client.get(url("billing_app_workspace_add"))
    data = form_data(page, "workspace_form")
    data.update(
        {"name": ["Globex"], "slug": ["globex"], "base_currency": ["eur"], "provider": ["sandbox"]}
    )

    response = admin_client.post(url("billing_app_workspace_add"), data)

    assert response.status_code == 302, response.content.decode()[:2000]
    workspace = Workspace.objects.get(slug="globex")
    assert workspace.base_currency == "EUR"
    assert set(workspace_role_groups(workspace)) == set(Role)
    assert ActionPolicy.objects.filter(workspace=workspace).count() == 56


def test_adding_a_workspace_refuses_an_unknown_currency(admin_client, db):
    data = form_data(admin_client.get(url("billing_app_workspace_add")), "workspace_form")
    data.update({"name": ["Globex"], "slug": ["globex"], "base_currency": ["XYZ"]})

    response = admin_client.post(url("billing_app_workspace_add"), data)

    assert response.status_code == 200
    assert "Unknown currency" in response.content.decode()
    assert not Workspace.objects.filter(slug="globex").exists()


def test_a_matrix_cell_edited_in_the_changelist_changes_the_decision(admin_client, workspace):
    # given the matrix filtered to "change plan" in this workspace
    list_url = url("billing_app_actionpolicy_changelist")
    query = f"?workspace__id__exact={workspace.pk}&action=change_plan"
    page = admin_client.get(list_url + query)
    data = form_data(page, "changelist-form")
    l2 = ActionPolicy.objects.get(workspace=workspace, action="change_plan", role="l2")
    row = next(k.split("-")[1] for k, v in data.items() if k.endswith("-id") and v == [str(l2.pk)])

    # when the admin sets L2 to "not permitted" and saves
    data[f"form-{row}-effect"] = ["deny"]
    data["_save"] = ["Save"]
    response = admin_client.post(list_url + query, data)

    # then the cell is stored and decide() refuses L2
    assert response.status_code == 302
    rules = policy_rules_load(workspace=workspace)
    request = ActionRequest(action=PolicyAction.CHANGE_PLAN)

    def decision(role):
        return decide(role=role, request=request, history=History(), rules=rules)

    assert isinstance(decision(Role.L2), Deny)
    assert isinstance(decision(Role.MANAGER), Allow)  # other cells untouched
    assert isinstance(decision(Role.SPECIALIST), Allow)


def test_escalating_a_not_permitted_cell_is_a_per_cell_option_off_by_default(
    admin_client, workspace
):
    # given "L1 · refund", ❌ in the brief and "Not permitted" by default
    cell = ActionPolicy.objects.get(workspace=workspace, action="issue_refund", role="l1")
    assert cell.effect == "deny"
    page_url = url("billing_app_actionpolicy_change", cell.pk)
    page = admin_client.get(page_url).content.decode()

    # then the form says what each effect means, and which one escalates a ❌ cell
    assert "Not permitted (not offered in the panel)" in page
    assert "May request approval (on a ❌ cell: escalation on)" in page
    assert "the option to escalate that cell instead of refusing it (off by default)" in page
    listing = admin_client.get(
        url("billing_app_actionpolicy_changelist")
        + f"?workspace__id__exact={workspace.pk}&action=issue_refund"
    ).content.decode()
    assert "❌ not permitted" in listing

    # when the admin escalates it
    data = form_data(admin_client.get(page_url), "actionpolicy_form")
    response = admin_client.post(page_url, {**data, "effect": ["request"]})

    # then L1 may request a refund, a Manager approves, and the list says escalation is on
    assert response.status_code == 302
    rules = policy_rules_load(workspace=workspace)
    decision = decide(
        role=Role.L1,
        request=ActionRequest(action=PolicyAction.ISSUE_REFUND),
        history=History(),
        rules=rules,
    )
    assert isinstance(decision, NeedsApproval)
    assert decision.approver_roles == (Role.MANAGER,)
    listing = admin_client.get(
        url("billing_app_actionpolicy_changelist")
        + f"?workspace__id__exact={workspace.pk}&action=issue_refund"
    ).content.decode()
    assert "❌ in the brief — escalation on (may request approval)" in listing


def test_a_matrix_cell_refuses_a_limit_on_an_action_without_a_size(admin_client, workspace):
    cell = ActionPolicy.objects.get(workspace=workspace, action="change_plan", role="l2")
    page_url = url("billing_app_actionpolicy_change", cell.pk)
    data = form_data(admin_client.get(page_url), "actionpolicy_form")

    response = admin_client.post(page_url, {**data, "limit": ["500"]})

    assert response.status_code == 200
    assert "no amount, percentage or days to limit" in response.content.decode()
    assert ActionPolicy.objects.get(pk=cell.pk).limit is None


def test_a_matrix_cell_refuses_a_negative_limit(admin_client, workspace):
    cell = ActionPolicy.objects.get(workspace=workspace, action="apply_credit", role="l2")
    page_url = url("billing_app_actionpolicy_change", cell.pk)
    data = form_data(admin_client.get(page_url), "actionpolicy_form")

    response = admin_client.post(page_url, {**data, "limit": ["-1"]})

    assert response.status_code == 200
    assert ActionPolicy.objects.get(pk=cell.pk).limit == 10_000


def test_an_approval_route_is_edited_with_role_checkboxes(admin_client, workspace):
    route = ApprovalRoute.objects.get(workspace=workspace, action="force_cancel")
    page_url = url("billing_app_approvalroute_change", route.pk)
    data = form_data(admin_client.get(page_url), "approvalroute_form")
    assert data["approver_roles"] == ["legal"]

    admin_client.post(page_url, {**data, "approver_roles": ["legal", "vp"]})

    assert sorted(ApprovalRoute.objects.get(pk=route.pk).approver_roles) == ["legal", "vp"]


@pytest.mark.parametrize(
    ("currency", "rate", "message"),
    [
        ("XYZ", "1.1", "Unknown currency"),
        ("USD", "1", "base currency"),
        ("EUR", "0", "above zero"),
    ],
)
def test_currency_rates_refuse_bad_values(admin_client, workspace, currency, rate, message):
    data = form_data(admin_client.get(url("billing_app_currencyrate_add")), "currencyrate_form")
    data.update({"workspace": [str(workspace.pk)], "currency": [currency], "rate": [rate]})

    response = admin_client.post(url("billing_app_currencyrate_add"), data)

    assert response.status_code == 200
    assert message in response.content.decode()
    assert not CurrencyRate.objects.exists()


# -- role mapping rules end sessions ------------------------------------------------------


def _me(client, token):
    return client.get("/api/v1/me/", HTTP_AUTHORIZATION=f"Bearer {token}").status_code


def test_saving_a_role_mapping_rule_ends_the_workspaces_sessions(
    admin_client, client, workspace, make_workspace, sign_in
):
    other = make_workspace("globex")
    _, token = sign_in(workspace, Role.L2)
    _, other_token = sign_in(other, Role.L2)
    data = form_data(
        admin_client.get(url("billing_app_rolemappingrule_add")), "rolemappingrule_form"
    )
    data.update(
        {
            "workspace": [str(workspace.pk)],
            "match_type": ["group"],
            "value": ["Billing Team"],
            "role": ["specialist"],
            "priority": ["10"],
        }
    )

    response = admin_client.post(url("billing_app_rolemappingrule_add"), data)

    assert response.status_code == 302
    assert RoleMappingRule.objects.filter(workspace=workspace, value="Billing Team").exists()
    assert _me(client, token) == 401
    assert _me(client, other_token) == 200  # another workspace's sessions are untouched


def test_deleting_a_role_mapping_rule_ends_sessions(admin_client, client, workspace, sign_in):
    rule = RoleMappingRule.objects.create(
        workspace=workspace, match_type="helpdesk_role", value="admin", role="manager"
    )
    _, token = sign_in(workspace, Role.L2)

    response = admin_client.post(
        url("billing_app_rolemappingrule_delete", rule.pk), {"post": "yes"}
    )

    assert response.status_code == 302
    assert not RoleMappingRule.objects.filter(pk=rule.pk).exists()
    assert _me(client, token) == 401


def test_a_rule_added_inline_on_the_workspace_ends_sessions(
    admin_client, client, workspace, sign_in
):
    _, token = sign_in(workspace, Role.L2)
    page_url = url("billing_app_workspace_change", workspace.pk)
    data = form_data(admin_client.get(page_url), "workspace_form")
    assert data["role_rules-TOTAL_FORMS"] == ["0"]
    data.update(
        {
            "role_rules-TOTAL_FORMS": ["1"],
            "role_rules-0-match_type": ["helpdesk_role"],
            "role_rules-0-value": ["admin"],
            "role_rules-0-connector": [""],
            "role_rules-0-role": ["manager"],
            "role_rules-0-priority": ["100"],
            "role_rules-0-workspace": [str(workspace.pk)],
        }
    )

    response = admin_client.post(page_url, data)

    assert response.status_code == 302, response.content.decode()[:3000]
    assert RoleMappingRule.objects.filter(workspace=workspace, value="admin").exists()
    assert _me(client, token) == 401


def test_saving_a_workspace_without_mapping_changes_keeps_sessions(
    admin_client, client, workspace, sign_in
):
    _, token = sign_in(workspace, Role.L2)
    page_url = url("billing_app_workspace_change", workspace.pk)
    data = form_data(admin_client.get(page_url), "workspace_form")

    response = admin_client.post(page_url, {**data, "csm_group": ["Customer Success"]})

    assert response.status_code == 302
    assert Workspace.objects.get(pk=workspace.pk).csm_group == "Customer Success"
    assert _me(client, token) == 200


# -- memberships and approvers -----------------------------------------------------------------


def test_making_a_django_user_a_vp_approver(admin_client, workspace):
    vp = User.objects.create_user("vera", "vera@acme.example", "correct horse battery")
    data = form_data(
        admin_client.get(url("billing_app_agentmembership_add")), "agentmembership_form"
    )
    data.update({"user": [str(vp.pk)], "workspace": [str(workspace.pk)], "role": ["vp"]})

    response = admin_client.post(url("billing_app_agentmembership_add"), data)

    assert response.status_code == 302
    membership = AgentMembership.objects.get(user=vp, workspace=workspace)
    assert membership.role == "vp"
    assert membership.role_source == "admin: set by admin"
    vp = User.objects.get(pk=vp.pk)
    assert set(vp.groups.values_list("name", flat=True)) == {role_group_name(workspace, Role.VP)}
    assert vp.has_perm("billing_app.approve_actions", workspace)
    assert not vp.has_perm("billing_app.issue_refund", workspace)


def test_changing_a_role_in_the_admin_goes_through_role_assign(admin_client, workspace, sign_in):
    membership, _ = sign_in(workspace, Role.L1)
    page_url = url("billing_app_agentmembership_change", membership.pk)
    data = form_data(admin_client.get(page_url), "agentmembership_form")
    assert set(data) >= {"role"}
    assert "user" not in data and "role_version" not in data  # not editable

    admin_client.post(page_url, {**data, "role": ["legal"]})

    fresh = AgentMembership.objects.get(pk=membership.pk)
    assert (fresh.role, fresh.role_version) == ("legal", membership.role_version + 1)
    names = set(fresh.user.groups.values_list("name", flat=True))
    assert names == {role_group_name(workspace, Role.LEGAL)}


def test_the_set_role_action_assigns_roles_in_bulk(admin_client, workspace, sign_in):
    first, _ = sign_in(workspace, Role.L1)
    second, _ = sign_in(workspace, Role.L2)

    admin_client.post(
        url("billing_app_agentmembership_changelist"),
        {"action": "set_role_manager", "_selected_action": [first.pk, second.pk]},
    )

    for membership in (first, second):
        fresh = AgentMembership.objects.get(pk=membership.pk)
        assert fresh.role == "manager"
        assert fresh.user.has_perm("billing_app.approve_actions", workspace)


def test_deleting_a_membership_takes_away_the_role_group(admin_client, workspace, sign_in):
    membership, token = sign_in(workspace, Role.MANAGER)
    user = membership.user

    response = admin_client.post(
        url("billing_app_agentmembership_delete", membership.pk), {"post": "yes"}
    )

    assert response.status_code == 302
    assert not AgentMembership.objects.filter(pk=membership.pk).exists()
    user = User.objects.get(pk=user.pk)
    assert not user.groups.exists()
    assert not user.has_perm("billing_app.approve_actions", workspace)


# -- the audit log is read-only --------------------------------------------------------------


def test_the_audit_log_refuses_add_change_and_delete(admin_client, audit_rows):
    action, approval = audit_rows
    for model, obj in (("billingaction", action), ("approvalrequest", approval)):
        # add
        assert admin_client.get(url(f"billing_app_{model}_add")).status_code == 403
        assert admin_client.post(url(f"billing_app_{model}_add"), {}).status_code == 403
        # change: viewable, not savable
        view = admin_client.get(url(f"billing_app_{model}_change", obj.pk))
        assert view.status_code == 200
        assert 'name="_save"' not in view.content.decode()
        assert (
            admin_client.post(
                url(f"billing_app_{model}_change", obj.pk), {"status": "succeeded"}
            ).status_code
            == 403
        )
        # delete
        assert admin_client.get(url(f"billing_app_{model}_delete", obj.pk)).status_code == 403
        assert (
            admin_client.post(
                url(f"billing_app_{model}_delete", obj.pk), {"post": "yes"}
            ).status_code
            == 403
        )
        # no bulk delete either
        listing = admin_client.get(url(f"billing_app_{model}_changelist"))
        assert "delete_selected" not in listing.content.decode()

    assert BillingAction.objects.get(pk=action.pk).status == "pending_approval"
    assert ApprovalRequest.objects.filter(pk=approval.pk).exists()


def test_the_audit_log_shows_amounts_and_approvers(admin_client, audit_rows):
    assert (
        "$50.00" in admin_client.get(url("billing_app_billingaction_changelist")).content.decode()
    )
    listing = admin_client.get(url("billing_app_approvalrequest_changelist")).content.decode()
    assert "Manager" in listing


def test_a_second_membership_for_the_same_user_and_workspace_is_refused(admin_client, workspace):
    user = User.objects.create_user("lena", "lena@acme.example", "correct horse battery")
    data = form_data(
        admin_client.get(url("billing_app_agentmembership_add")), "agentmembership_form"
    )
    data.update({"user": [str(user.pk)], "workspace": [str(workspace.pk)], "role": ["legal"]})
    assert admin_client.post(url("billing_app_agentmembership_add"), data).status_code == 302

    again = admin_client.post(url("billing_app_agentmembership_add"), {**data, "role": ["l1"]})

    assert again.status_code == 200
    assert "already exists" in again.content.decode()
    assert AgentMembership.objects.get(user=user, workspace=workspace).role == "legal"


def test_an_approver_without_a_password_gets_a_warning(admin_client, workspace):
    user = User.objects.create(username="no-password")
    user.set_unusable_password()
    user.save()
    data = form_data(
        admin_client.get(url("billing_app_agentmembership_add")), "agentmembership_form"
    )
    data.update({"user": [str(user.pk)], "workspace": [str(workspace.pk)], "role": ["vp"]})

    response = admin_client.post(url("billing_app_agentmembership_add"), data, follow=True)

    assert "has no password yet" in response.content.decode()
    assert AgentMembership.objects.get(user=user).role == "vp"


# -- provider choice (issue 12) -------------------------------------------------------------


def test_adding_a_workspace_without_choosing_a_provider_is_refused(admin_client, db):
    # given the add form as rendered: no provider pre-selected
    page = admin_client.get(url("billing_app_workspace_add"))
    data = form_data(page, "workspace_form")
    assert data.get("provider", [""]) == [""]
    data.update({"name": ["Globex"], "slug": ["globex"], "base_currency": ["USD"]})

    # when it is saved as is
    response = admin_client.post(url("billing_app_workspace_add"), data)

    # then it is refused and nothing is created
    assert response.status_code == 200
    assert "This field is required" in response.content.decode()
    assert not Workspace.objects.filter(slug="globex").exists()


def test_the_sandbox_is_neither_offered_nor_accepted_where_it_is_disabled(
    admin_client, db, settings
):
    # given a deployment without the sandbox
    settings.BILLING_DESK_SANDBOX_ENABLED = False
    page = admin_client.get(url("billing_app_workspace_add"))
    assert 'value="sandbox"' not in page.content.decode()
    assert 'value="stripe"' in page.content.decode()

    # when a sandbox workspace is posted anyway
    data = form_data(page, "workspace_form")
    data.update(
        {"name": ["Globex"], "slug": ["globex"], "base_currency": ["USD"], "provider": ["sandbox"]}
    )
    response = admin_client.post(url("billing_app_workspace_add"), data)

    # then it is refused and nothing is created
    assert response.status_code == 200
    assert not Workspace.objects.filter(slug="globex").exists()


def test_a_notes_bd_reference_finds_its_action_in_admin(admin_client, stripe_workspace):
    from billing_app.models import BillingAction

    user = User.objects.create_user("ref-agent")
    common = dict(
        workspace=stripe_workspace,
        actor=user,
        actor_role="l2",
        customer_id="cus_ref",
        kind="resend_invoice",
        status="succeeded",
        decision="allow",
        request_fingerprint="x",
    )
    wanted = BillingAction.objects.create(idempotency_key="k-1", **common)
    other = BillingAction.objects.create(idempotency_key="k-2", **common)
    assert wanted.reference.startswith("BD-") and len(wanted.reference) == 11
    page = admin_client.get(
        reverse("admin:billing_app_billingaction_changelist"), {"q": wanted.reference.lower()}
    )
    assert page.status_code == 200
    shown = list(page.context["cl"].result_list)
    assert wanted in shown
    assert (other in shown) == (other.pk.hex[:8] == wanted.pk.hex[:8])


def test_changing_a_credit_limit_says_how_to_re_band_the_dashboard(admin_client, workspace):
    list_url = url("billing_app_actionpolicy_changelist")
    query = f"?workspace__id__exact={workspace.pk}&action=apply_credit"
    data = form_data(admin_client.get(list_url + query), "changelist-form")
    l2 = ActionPolicy.objects.get(workspace=workspace, action="apply_credit", role="l2")
    row = next(k.split("-")[1] for k, v in data.items() if k.endswith("-id") and v == [str(l2.pk)])
    data[f"form-{row}-limit"] = ["200"]
    data["_save"] = ["Save"]

    response = admin_client.post(list_url + query, data, follow=True)

    assert response.status_code == 200
    shown = [str(m) for m in response.context["messages"]]
    assert any(f"rollups_rebuild --workspace {workspace.slug}" in m for m in shown)
    # an edit that leaves the limits alone says nothing about them
    data = form_data(admin_client.get(list_url + query), "changelist-form")
    data["_save"] = ["Save"]
    response = admin_client.post(list_url + query, data, follow=True)
    assert not any("rollups_rebuild" in str(m) for m in response.context["messages"])
