"""Per-workspace playbook wording: what admin checks before a ``PlaybookTemplate`` is saved.

Loading a workspace's wording is a read (``selectors.playbook_templates``, which
``settings.BILLING_DESK_PLAYBOOK_LOADER`` names); ``playbook_template_load`` and
``SCENARIO_ROWS`` are re-exported here for the callers that still import them
from this module.

``playbook_template_validate`` is what admin runs on save: only the bare
``{placeholder}`` names the scenario's own template uses (so a saved text can
always be filled from the same data, and can reach nothing else), balanced
``[[ … ]]`` optional segments, and not empty.
"""

from __future__ import annotations

import re
import string
from collections.abc import Sequence

from django.utils import translation
from django.utils.translation import gettext as _

from ..errors import ValidationFailed
from ..playbook import TEMPLATES, Scenario, TemplateError, fill
from ..selectors.playbook_templates import ROW_SCENARIOS, SCENARIO_ROWS, playbook_template_load


def playbook_scenario_for(*, scenario: str, variant: str = "") -> Scenario:
    """The ``playbook.Scenario`` of a template row (``refund`` + ``denied`` → ``refund_denied``)."""
    found = ROW_SCENARIOS.get((scenario, variant or ""))
    if found is None:
        raise ValidationFailed(
            _("The refund scenario needs a variant (approved or denied); the others take none."),
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
    with translation.override(None):  # the brief's own (English) wording: every language's names
        text = str(TEMPLATES[scenario].text)
    return _names(text.replace("[[", "").replace("]]", ""))


def playbook_template_validate(*, scenario: Scenario, body: str) -> str:
    """The body, stripped, if it can be a template for ``scenario``; else ``ValidationFailed``."""
    return template_text_validate(
        body=body, allowed=placeholders_for(scenario), offered_by=_("This scenario")
    )


def template_text_validate(*, body: str, allowed: Sequence[str], offered_by: str) -> str:
    """The body, stripped, if it is a template using only ``allowed`` placeholders.

    The one check for every editable template (playbook messages, internal notes):
    not empty, balanced ``[[ … ]]``, bare ``{name}`` placeholders among ``allowed``.
    """
    text = (body or "").strip()
    if not text:
        raise ValidationFailed(_("The message cannot be empty."), code="template_empty")
    if text.count("[[") != text.count("]]") or re.search(r"\[\[[^\]]*\[\[", text):
        raise ValidationFailed(
            _("Optional segments must be [[ … ]] pairs, not nested."), code="template_brackets"
        )
    try:
        names = _names(text.replace("[[", "").replace("]]", ""))
    except ValueError as exc:
        raise ValidationFailed(
            _("Braces must enclose a placeholder name: %(error)s") % {"error": exc},
            code="template_syntax",
        ) from exc
    unknown = sorted({n for n in names if n not in allowed})
    if unknown:
        raise ValidationFailed(
            _("Unknown placeholders: %(unknown)s. %(offered_by)s offers: %(allowed)s.")
            % {
                "unknown": ", ".join(unknown),
                "offered_by": offered_by,
                "allowed": ", ".join("{" + a + "}" for a in allowed),
            },
            code="template_unknown_placeholder",
            details={"unknown": unknown, "allowed": list(allowed)},
        )
    try:  # the renderer's own rules: bare names only, no attribute or index access
        fill(text, {name: "x" for name in allowed})
    except TemplateError as exc:
        raise ValidationFailed(str(exc), code="template_syntax") from exc
    return text


__all__ = [
    "SCENARIO_ROWS",
    "placeholders_for",
    "playbook_scenario_for",
    "playbook_template_load",
    "playbook_template_validate",
    "template_text_validate",
]
