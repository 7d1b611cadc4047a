"""A workspace's own playbook wording: the ``PlaybookTemplate`` rows an admin edited.

``playbook_template_load`` is the loader ``settings.BILLING_DESK_PLAYBOOK_LOADER``
names: for a workspace and one of ``playbook.Scenario``'s values it returns the
workspace's active template body, or None — and the brief's wording is used. The
refund scenario's two messages are one template row each (variant ``approved`` /
``denied``). A read, so it lives with the selectors; admin's validation on save is
``services.playbook_templates``.
"""

from __future__ import annotations

from ..models import PlaybookTemplate, Workspace
from ..playbook import Scenario

# playbook.Scenario → (PlaybookTemplate.scenario, variant)
SCENARIO_ROWS: dict[Scenario, tuple[str, str]] = {
    Scenario.CHARGED_TWICE: (PlaybookTemplate.Scenario.CHARGED_TWICE, ""),
    Scenario.PAYMENT_FAILED: (PlaybookTemplate.Scenario.PAYMENT_FAILED, ""),
    Scenario.PLAN_CHANGE: (PlaybookTemplate.Scenario.PLAN_CHANGE, ""),
    Scenario.REFUND_APPROVED: (PlaybookTemplate.Scenario.REFUND, PlaybookTemplate.Variant.APPROVED),
    Scenario.REFUND_DENIED: (PlaybookTemplate.Scenario.REFUND, PlaybookTemplate.Variant.DENIED),
    Scenario.OVERCHARGE: (PlaybookTemplate.Scenario.OVERCHARGE, ""),
    Scenario.TAX_INVOICE: (PlaybookTemplate.Scenario.TAX_INVOICE, ""),
}
ROW_SCENARIOS: dict[tuple[str, str], Scenario] = {row: s for s, row in SCENARIO_ROWS.items()}


def playbook_template_load(*, workspace: Workspace, scenario: Scenario | str) -> str | None:
    """The workspace's active wording for ``scenario``, or None (the brief's wording applies)."""
    row = SCENARIO_ROWS.get(Scenario(scenario))
    if row is None:
        return None
    return (
        PlaybookTemplate.objects.filter(
            workspace=workspace, scenario=row[0], variant=row[1], is_active=True
        )
        .values_list("body", flat=True)
        .first()
    )


__all__ = ["ROW_SCENARIOS", "SCENARIO_ROWS", "playbook_template_load"]
