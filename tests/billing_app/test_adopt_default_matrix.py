"""``adopt_default_matrix``: an existing workspace moves to the brief's matrix only when asked."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from billing_app.models import ActionPolicy, ApprovalRoute


def _run(*args: str) -> str:
    out = StringIO()
    call_command("adopt_default_matrix", *args, stdout=out)
    return out.getvalue()


def _old_escalation(workspace) -> None:
    """What an existing workspace holds from before: ❌ cells escalate to approval."""
    ActionPolicy.objects.filter(workspace=workspace, action="issue_refund", role="l1").update(
        effect="request"
    )
    ApprovalRoute.objects.filter(workspace=workspace, action="force_cancel").update(
        approver_roles=["manager"]
    )


def test_lists_the_differences_and_changes_nothing_without_apply(workspace):
    _old_escalation(workspace)
    out = _run("--workspace", workspace.slug)
    assert "issue_refund · l1: effect 'request' → 'deny'" in out
    assert "route force_cancel ≥ 0" in out
    assert "run with --apply" in out
    cell = ActionPolicy.objects.get(workspace=workspace, action="issue_refund", role="l1")
    assert cell.effect == "request"


def test_apply_replaces_the_matrix_with_the_product_default(workspace):
    _old_escalation(workspace)
    out = _run("--workspace", workspace.slug, "--apply")
    assert "Changed 2 cell(s) or route(s)" in out
    assert ActionPolicy.objects.get(
        workspace=workspace, action="issue_refund", role="l1"
    ).effect == ("deny")
    route = ApprovalRoute.objects.get(workspace=workspace, action="force_cancel")
    assert route.approver_roles == ["legal"]
    assert (
        ActionPolicy.objects.filter(workspace=workspace).count()
        == ActionPolicy.objects.filter(workspace=None).count()
    )
    assert "already is the product default" in _run("--workspace", workspace.slug)


def test_an_unknown_workspace_is_refused(db):
    with pytest.raises(CommandError, match="No workspace 'nope'. Nothing was changed."):
        _run("--workspace", "nope")
