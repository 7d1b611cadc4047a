"""Words that are stored now and read later, in the reader's language.

A policy reason or an action's error is computed once (in the acting agent's request)
and read by other people in other languages: the approvals page, the API, the context
snapshot of each language, notes written by a worker. So what is stored is not the
text but what it is made of: a list of parts, each a msgid (with its plural form and
context when it has them) and its parameters. Money is kept as ``{"money": {"amount",
"currency"}}`` and dates as ``{"date": ISO}``; both are written for the language active
when the words are read (``money.format_money``, ``action_words.date_words``), as is
every msgid (gettext). A parameter may itself be words (``{"words": [...]}``); anything
else is a literal, shown as it is (a role label, a code, a number, a provider's message).

The functions are named as the gettext functions they stand for, so ``makemessages``
extracts their msgids (``words.gettext("…")`` is found like ``gettext("…")``).
Nothing here reads the database.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any, TypeVar, cast

from django.conf import settings
from django.utils import translation
from django.utils.functional import Promise

from .money import Money, format_money

Part = dict[str, Any]


def _param(value: Any) -> Any:
    """A parameter as JSON: money and dates by value, words as their parts, else literal."""
    if isinstance(value, Words):
        return {"words": value.to_json()}
    if isinstance(value, Money):
        return {"money": {"amount": value.amount, "currency": value.currency}}
    if isinstance(value, datetime | date):
        return {"date": value.isoformat()}
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, int | str):
        return value
    if isinstance(value, Promise):  # a lazy text without words: frozen in English
        with translation.override(settings.LANGUAGE_CODE):
            return str(value)
    return str(value)  # Decimal and the rest: as ``%s`` writes them


def _shown(value: Any) -> Any:
    if isinstance(value, dict):
        if "words" in value:
            return words_render(value["words"])
        if "money" in value:
            money = value["money"]
            return format_money(int(money["amount"]), str(money["currency"]))
        if "date" in value:
            from .action_words import date_words

            return date_words(value["date"])
        return ""
    return value


def _part_render(part: Mapping[str, Any]) -> str:
    if "text" in part:
        return str(part["text"])
    if "value" in part:
        return str(_shown(part["value"]))
    msgid = str(part.get("msgid", ""))
    context = part.get("context")
    plural = part.get("plural")
    if plural is not None:
        count = int(part.get("n", 0))
        text = (
            translation.npgettext(context, msgid, plural, count)
            if context
            else translation.ngettext(msgid, plural, count)
        )
    else:
        text = translation.pgettext(context, msgid) if context else translation.gettext(msgid)
    params = part.get("params")
    if params is None:
        return text
    return text % {name: _shown(value) for name, value in params.items()}


def words_render(parts: Iterable[Mapping[str, Any]] | None) -> str:
    """Stored words (``Words.to_json()``) in the active language; ``""`` for none."""
    if not parts or not isinstance(parts, list | tuple):
        return ""
    return "".join(_part_render(part) for part in parts if isinstance(part, Mapping))


def words_or_text(parts: Any, text: str) -> str:
    """What a reader shows: the stored words in the active language, else the stored text
    (a row written before words were stored, or a text that has none)."""
    return words_render(parts) or text


def action_reason(action: Any) -> str:
    """A ``BillingAction``'s decision reason in the active language (its stored words),
    else as stored."""
    return words_or_text((action.words or {}).get("decision"), action.decision_reason)


def action_error(action: Any) -> str:
    """A ``BillingAction``'s error message in the active language, else as stored."""
    return words_or_text((action.words or {}).get("error"), action.error_message)


def approval_reason(approval: Any) -> str:
    """Why an ``ApprovalRequest`` asks for approval, in the active language, else as stored."""
    return words_or_text(approval.reason_words, approval.reason)


@dataclass(frozen=True)
class Words:
    """Translatable words with their parameters; ``str()`` renders them in the active language."""

    parts: tuple[Part, ...]

    def __str__(self) -> str:
        return words_render(self.parts)

    def __add__(self, other: Words) -> Words:
        return Words(self.parts + other.parts)

    def to_json(self) -> list[Part]:
        return [dict(part) for part in self.parts]

    def english(self) -> str:
        """The words in the site's language (English): what text columns store for audit."""
        with translation.override(settings.LANGUAGE_CODE):
            return str(self)


def _part(msgid: str, params: Mapping[str, Any], **extra: Any) -> Words:
    part: Part = {"msgid": msgid, **extra}
    if params:
        part["params"] = {name: _param(value) for name, value in params.items()}
    return Words((part,))


def gettext(msgid: str, /, **params: Any) -> Words:
    """``gettext(msgid) % params``, kept as words."""
    return _part(msgid, params)


def ngettext(singular: str, plural: str, count: int | Decimal, /, **params: Any) -> Words:
    """``ngettext(singular, plural, count) % params``, kept as words."""
    return _part(singular, params, plural=plural, n=int(count))


def pgettext(context: str, msgid: str, /, **params: Any) -> Words:
    """``pgettext(context, msgid) % params``, kept as words."""
    return _part(msgid, params, context=context)


def literal(text: str) -> Words:
    """A text shown as it is in every language (a provider's own message)."""
    return Words(({"text": str(text)},))


def value(shown: Any) -> Words:
    """One parameter on its own (an amount), written for the active language."""
    return Words(({"value": _param(shown)},))


def words_of(message: Any) -> Words:
    """A message as words: its own when it has them, else the text as a literal (a lazy
    text frozen in English)."""
    if isinstance(message, Words):
        return message
    return literal(cast(str, _param(message)) if isinstance(message, Promise) else str(message))


def error_words(error: Any) -> Words:
    """A ``BillingDeskError``'s message as words (``with_words``), else its text as a literal."""
    found = getattr(error, "words", None)
    return found if isinstance(found, Words) else words_of(error.message)


E = TypeVar("E", bound=BaseException)


def with_words(error: E, words: Words) -> E:
    """``error`` carrying ``words`` (its message is them in the active language)."""
    error.words = words  # type: ignore[attr-defined]
    error.message = str(words)  # type: ignore[attr-defined]
    error.args = (error.message,)  # type: ignore[attr-defined]
    return error
