"""Per-workspace playbook wording: the loader ``billing_app.playbook.render`` asks first.

``settings.BILLING_DESK_PLAYBOOK_LOADER`` names ``playbook_template_load``: for a
workspace and one of ``playbook.Scenario``'s values it returns the workspace's
active ``PlaybookTemplate`` body, or None — and the brief's wording is used.
The refund scenario's two messages are one template row each (variant
``approved`` / ``denied``).

``playbook_template_validate`` is what admin runs on save: only the bare
``{placeholder}`` names the scenario's own template uses (so a saved text can
always be filled from the same data, and can reach nothing else), balanced
``[[ … ]]`` optional segments, and not empty.
"""

from __future__ import annotations

import re
import string

from ..errors import ValidationFailed
from ..models import PlaybookTemplate, Workspace
from ..playbook import TEMPLATES, Scenario, TemplateError, fill

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


def playbook_scenario_for(*, scenario: str, variant: str = "") -> Scenario:
    """The ``playbook.Scenario`` of a template row (``refund`` + ``denied`` → ``refund_denied``)."""
    found = ROW_SCENARIOS.get((scenario, variant or ""))
    if found is None:
        raise ValidationFailed(
            "The refund scenario needs a variant (approved or denied); the others take none.",
            code="invalid_variant",
            details={"scenario": scenario, "variant": variant},
        )
    return found


def _names(text: str) -> list[str]:
    """Placeholder names in ``text`` in order of appearance (``ValueError`` on bad braces)."""
    names: list[str] = []
    for _literal, name, _spec, _conversion in string.Formatter().parse(text):
        if name is not None and name not in names:
            names.append(name)
    return names


def placeholders_for(scenario: Scenario) -> list[str]:
    """The placeholder names a scenario's message can use (those of the brief's template)."""
    return _names(TEMPLATES[scenario].text.replace("[[", "").replace("]]", ""))


def playbook_template_validate(*, scenario: Scenario, body: str) -> str:
    """The body, stripped, if it can be a template for ``scenario``; else ``ValidationFailed``."""
    text = (body or "").strip()
    if not text:
        raise ValidationFailed("The message cannot be empty.", code="template_empty")
    if text.count("[[") != text.count("]]") or re.search(r"\[\[[^\]]*\[\[", text):
        raise ValidationFailed(
            "Optional segments must be [[ … ]] pairs, not nested.", code="template_brackets"
        )
    try:
        names = _names(text.replace("[[", "").replace("]]", ""))
    except ValueError as exc:
        raise ValidationFailed(
            f"Braces must enclose a placeholder name: {exc}", code="template_syntax"
        ) from exc
    allowed = placeholders_for(scenario)
    unknown = sorted({n for n in names if n not in allowed})
    if unknown:
        raise ValidationFailed(
            f"Unknown placeholders: {', '.join(unknown)}. This scenario offers: "
            f"{', '.join('{' + a + '}' for a in allowed)}.",
            code="template_unknown_placeholder",
            details={"unknown": unknown, "allowed": allowed},
        )
    try:  # the renderer's own rules: bare names only, no attribute or index access
        fill(text, {name: "x" for name in allowed})
    except TemplateError as exc:
        raise ValidationFailed(str(exc), code="template_syntax") from exc
    return text


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


__all__ = [
    "SCENARIO_ROWS",
    "placeholders_for",
    "playbook_scenario_for",
    "playbook_template_load",
    "playbook_template_validate",
]
