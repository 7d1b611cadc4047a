"""Sending one prompt: the ``card_prompt`` outbox kind's handler.

The outbox claims the message (one worker at a time, a lease for a worker that dies) and
retries it with backoff; this handler makes one attempt:

* a prompt already ``sent`` is never sent again (a redelivered message returns at once);
* a customer who unsubscribed, has no email, was deleted, or whose workspace turned
  prompts off → ``suppressed``, nothing sent;
* a prompt no longer true → ``suppressed`` with the reason
  (``selectors.card_prompts.card_prompt_obsolete``): the scope's card was replaced
  (``card_replaced``), an expiring card's expiry changed or passed, the failed payment was
  recovered, or the card already got another email within 7 days — an email sits in the
  outbox while the mail server is down, and the customer may have acted meanwhile;
* otherwise the email goes through Django's email backend (console in the demo, SMTP or
  any backend in production) with RFC 8058 ``List-Unsubscribe`` and
  ``List-Unsubscribe-Post`` headers and a stable ``Message-ID``, and the prompt becomes
  ``sent`` by a conditional UPDATE.

Exactly once, except one case: if the mail server accepted the message and the answer
was lost (a timeout after DATA, the worker killed before the UPDATE), the attempt's
outcome is unknown and the outbox retries it — the customer may get the same email twice
(at least once). The stable ``Message-ID`` lets mail systems that deduplicate on it drop
the copy. A refused recipient is final (``failed``), not retried.
"""

from __future__ import annotations

import logging
import smtplib
from typing import Any

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.db.models import Q
from django.template.loader import render_to_string
from django.utils import translation
from django.utils.translation import gettext

from ...clock import billing_now
from ...errors import BillingDeskError
from ...locales import customer_language, default_language
from ...models import CardPrompt, OutboxMessage, PaymentFailure, Workspace
from ...money import format_money
from ...selectors.card_prompts import card_prompt_facts, card_prompt_obsolete
from ...selectors.failures import failure_reason_text
from ...selectors.payments import card_brand_label
from ..outbox import outbox_handler_register
from .links import card_unsubscribe_url, card_update_url
from .texts import card_prompt_text

logger = logging.getLogger(__name__)


class RecipientRefused(BillingDeskError):
    code = "recipient_refused"


def _suppress(prompt: CardPrompt, why: str) -> str:
    CardPrompt.objects.filter(pk=prompt.pk, status=CardPrompt.Status.PENDING).update(
        status=CardPrompt.Status.SUPPRESSED, error=why
    )
    logger.info("card prompt %s not sent: %s", prompt.pk, why)
    return f"suppressed:{why}"


def _card_words(card: dict[str, Any] | None) -> tuple[str, str]:
    if not card:
        return gettext("card on file"), ""
    brand = card_brand_label(card["card_brand"] or "card")
    words = (
        gettext("%(brand)s ending in %(last4)s") % {"brand": brand, "last4": card["card_last4"]}
        if card["card_last4"]
        else brand
    )
    expiry = (
        f"{card['card_exp_month']:02d}/{card['card_exp_year']}"
        if card["card_exp_month"] and card["card_exp_year"]
        else ""
    )
    return words, expiry


def _failure_words(prompt: CardPrompt) -> dict[str, str]:
    key = prompt.window.removeprefix("fail-")  # the failure that made the prompt
    failure = (
        PaymentFailure.objects.filter(
            workspace_id=prompt.workspace_id, customer_id=prompt.customer_id
        )
        .filter(Q(invoice_id=key) | Q(charge_id=key) | Q(attempt_key=key))
        .order_by("-failed_at", "-id")
        .first()
    )
    if failure is None:
        return {"amount": "", "reason": ""}
    return {
        "amount": format_money(failure.amount, failure.currency),
        "reason": failure_reason_text(failure),
    }


def card_prompt_message(*, prompt: CardPrompt, workspace: Workspace, email: str) -> Any:
    """The email for ``prompt`` in the active language (headers included, not sent)."""
    facts = card_prompt_facts(
        workspace=workspace,
        customer_id=prompt.customer_id,
        payment_method_id=prompt.payment_method_id,
    )
    card, expiry = _card_words(facts["card"])
    link = card_update_url(workspace=workspace, customer_id=prompt.customer_id, prompt_id=prompt.pk)
    unsubscribe = card_unsubscribe_url(workspace=workspace, customer_id=prompt.customer_id)
    data: dict[str, Any] = {
        "customer_name": (facts["customer"] or {}).get("name", ""),
        "company": workspace.name,
        "card": card,
        "expiry": expiry,
        "link": link,
    }
    if prompt.reason == CardPrompt.Reason.FAILED:
        data.update(_failure_words(prompt))
    text = card_prompt_text(prompt=prompt, data=data)
    context = {"body": text.body, "unsubscribe_url": unsubscribe, "company": workspace.name}
    message = EmailMultiAlternatives(
        subject=text.subject,
        body=render_to_string("self_service/email/card_prompt.txt", context),
        to=[email],
        headers={
            # RFC 2369 / RFC 8058: mail clients offer "unsubscribe" and POST one click to it.
            "List-Unsubscribe": f"<{unsubscribe.rstrip('/')}/one-click/>",
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
            "Message-ID": f"<card-prompt-{prompt.pk}.{workspace.pk}@{_mail_domain()}>",
            "Auto-Submitted": "auto-generated",
        },
    )
    message.attach_alternative(
        render_to_string("self_service/email/card_prompt.html", context), "text/html"
    )
    return message


def _mail_domain() -> str:
    host = settings.PUBLIC_BASE_URL.split("://", 1)[-1].split("/", 1)[0]
    return host.split(":", 1)[0] or "billing-desk.local"


def card_prompt_send(*, prompt_id: int) -> str:
    """One attempt at sending a prompt; returns what happened (the outbox's ``result_ref``)."""
    prompt = CardPrompt.objects.select_related("workspace").filter(pk=prompt_id).first()
    if prompt is None:
        return "gone"
    if prompt.status != CardPrompt.Status.PENDING:
        return prompt.status  # sent, suppressed or failed already: never twice
    workspace = prompt.workspace
    if not (workspace.is_active and workspace.card_prompts_enabled):
        return _suppress(prompt, "prompts_disabled")
    if workspace.opt_outs.filter(customer_id=prompt.customer_id).exists():
        return _suppress(prompt, "unsubscribed")
    facts = card_prompt_facts(
        workspace=workspace, customer_id=prompt.customer_id, payment_method_id=""
    )
    customer = facts["customer"]
    if customer is None:
        return _suppress(prompt, "no_customer")
    email = (customer.get("email") or "").strip()
    if not email:
        return _suppress(prompt, "no_email")
    now = billing_now(workspace)
    obsolete = card_prompt_obsolete(prompt=prompt, now=now)
    if obsolete:
        return _suppress(prompt, obsolete)
    language = customer_language((customer.get("data") or {}).get("preferred_locales"))
    language = language or default_language()
    with translation.override(language):
        message = card_prompt_message(prompt=prompt, workspace=workspace, email=email)
    try:
        message.send(fail_silently=False)
    except smtplib.SMTPRecipientsRefused as exc:
        raise RecipientRefused("The mail server refused the recipient.") from exc
    CardPrompt.objects.filter(pk=prompt.pk, status=CardPrompt.Status.PENDING).update(
        status=CardPrompt.Status.SENT,
        # On the billing clock, the one the provider's events carry: the outcome counts a
        # card change only from an event after this moment.
        sent_at=now,
        email=email,
        language=language,
        error="",
    )
    logger.info(
        "card prompt %s sent (workspace=%s customer=%s reason=%s)",
        prompt.pk,
        workspace.pk,
        prompt.customer_id,
        prompt.reason,
    )
    return "sent"


def card_prompt_deliver(message: OutboxMessage) -> str:
    return card_prompt_send(prompt_id=int(message.target_id))


def card_prompt_give_up(message: OutboxMessage, error: Exception) -> None:
    code = getattr(error, "code", "") or type(error).__name__
    CardPrompt.objects.filter(pk=int(message.target_id), status=CardPrompt.Status.PENDING).update(
        status=CardPrompt.Status.FAILED, error=str(code)[:200]
    )


outbox_handler_register(
    kind=OutboxMessage.Kind.CARD_PROMPT, deliver=card_prompt_deliver, give_up=card_prompt_give_up
)
