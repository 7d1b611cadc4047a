"""The card-update email's words: the product's wording, a workspace's own, and the filling.

A ``CardPromptTemplate`` (admin, beside the playbook) replaces the product's subject and
body for one reason. Its text uses the playbook's syntax — bare ``{placeholder}`` names,
optional ``[[ … ]]`` segments that drop out when their data is empty — and is checked on
save by the playbook's own validator (``template_text_validate``) against the reason's
placeholders; a saved text that still cannot be filled falls back to the product's
wording (``playbook.message_fill``'s rule). The unsubscribe footer is not part of the
editable text: the email template adds it, so no wording can drop it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from django.utils.translation import gettext, gettext_lazy

from ...errors import ValidationFailed
from ...models import CardPrompt, CardPromptTemplate
from ...playbook import TemplateError, fill
from ..playbook_templates import template_text_validate

logger = logging.getLogger(__name__)

PLACEHOLDERS: dict[str, tuple[str, ...]] = {
    CardPrompt.Reason.EXPIRING: ("customer_name", "company", "card", "expiry", "link"),
    CardPrompt.Reason.FAILED: ("customer_name", "company", "card", "amount", "reason", "link"),
}

DEFAULT_SUBJECTS: dict[str, Any] = {
    CardPrompt.Reason.EXPIRING: gettext_lazy("Your payment card for {company} expires soon"),
    CardPrompt.Reason.FAILED: gettext_lazy("Your payment to {company} did not go through"),
}

DEFAULT_BODIES: dict[str, Any] = {
    CardPrompt.Reason.EXPIRING: gettext_lazy(
        "Hello[[ {customer_name}]],\n\n"
        "The card that pays for your {company} subscription ({card}) expires at the end "
        "of {expiry}. To keep your subscription running without interruption, please "
        "update your card:\n\n{link}\n\n"
        "The link works for 30 days. Your card details go straight to our payment "
        "provider; we never see them.\n\nThank you,\n{company}"
    ),
    CardPrompt.Reason.FAILED: gettext_lazy(
        "Hello[[ {customer_name}]],\n\n"
        "We could not collect your payment[[ of {amount}]] with your card ({card})"
        "[[: {reason}]]. Please update your card so that your {company} subscription "
        "continues:\n\n{link}\n\n"
        "The link works for 30 days. Your card details go straight to our payment "
        "provider; we never see them.\n\nThank you,\n{company}"
    ),
}


def card_prompt_template_validate(*, reason: str, subject: str, body: str) -> tuple[str, str]:
    """Subject and body, stripped, if both can be filled for ``reason``; else
    ``ValidationFailed`` (the playbook's checks: placeholders, ``[[ … ]]``, not empty)."""
    allowed = PLACEHOLDERS[reason]
    offered_by = gettext("This card-update email")
    subject = template_text_validate(body=subject, allowed=allowed, offered_by=offered_by)
    body = template_text_validate(body=body, allowed=allowed, offered_by=offered_by)
    if "{link}" not in body:
        raise ValidationFailed(
            gettext("The email must contain the {link} placeholder: it is the card-update link."),
            code="template_missing_link",
        )
    return subject, body


@dataclass(frozen=True)
class PromptText:
    subject: str
    body: str
    source: str  # "workspace" or "default"


def _filled(subject: str, body: str, data: dict[str, Any]) -> tuple[str, str]:
    return " ".join(fill(subject, data).split()), fill(body, data)


def card_prompt_text(*, prompt: CardPrompt, data: dict[str, Any]) -> PromptText:
    """The filled subject and body in the active language: the workspace's wording when it
    can be filled from ``data``, else the product's."""
    own = (
        CardPromptTemplate.objects.filter(
            workspace_id=prompt.workspace_id, reason=prompt.reason, is_active=True
        )
        .values("subject", "body")
        .first()
    )
    if own:
        try:
            subject, body = _filled(own["subject"], own["body"], data)
            return PromptText(subject, body, "workspace")
        except TemplateError:
            logger.warning(
                "card prompt template of workspace %s (%s) cannot be filled; using default",
                prompt.workspace_id,
                prompt.reason,
            )
    subject, body = _filled(
        str(DEFAULT_SUBJECTS[prompt.reason]), str(DEFAULT_BODIES[prompt.reason]), data
    )
    return PromptText(subject, body, "default")
