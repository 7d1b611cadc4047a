"""Django admin: workspaces, role mapping, the permission matrix, approvers and the audit log.

Rules kept here:
- role changes go through ``roles.agent_role_assign`` (and removals through
  ``roles.agent_membership_remove``), never by editing ``AgentMembership.role``;
- saving or deleting a role mapping rule (or the workspace's default role) calls
  ``roles.workspace_mapping_changed``, which ends the workspace's app sessions;
- encrypted secrets are write-only (``SecretFieldsMixin``);
- the audit log (``BillingAction``, ``ApprovalRequest``) is read-only.
"""

from __future__ import annotations

from django.contrib import admin

admin.site.site_header = "Billing Desk administration"
admin.site.site_title = "Billing Desk admin"
index_title = "Workspaces, roles, limits and the audit log"
admin.site.index_title = index_title

# Each module registers its model admins when imported.
from . import (  # noqa: E402,F401
    audit,
    memberships,
    metrics,
    playbook,
    policy,
    self_service_prompts,  # card-update prompts (issue 18)
    self_service_refunds,  # self-service refund links and requests (issue 18)
    users,
    widget,  # the billing help widget (issue 18)
    workspaces,
)
