"""Domain errors. Each carries a machine-readable code and the HTTP status the API answers with."""

from __future__ import annotations

from typing import Any

from django.utils.functional import lazy


def _rendered(message: Any, params: dict[str, Any]) -> str:
    return str(message) % params if params else str(message)


_later = lazy(_rendered, str)


def message_later(message: Any, /, **params: Any) -> str:
    """An error message written when it is read, in the language active then.

    ``message`` is a ``gettext_lazy`` text with ``%(name)s`` placeholders. For code
    that runs in another language than the answer's (a customer message's data is
    read in the customer's language; its errors go to the agent in theirs).
    """
    return _later(message, params)


class BillingDeskError(Exception):
    code = "error"
    status = 400
    # The message as ``billing_app.words.Words`` when it has them (``words.error_words``):
    # what an action's stored error is read from, in each reader's language.
    words: Any = None

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        details: Any = None,
        status: int | None = None,
    ):
        super().__init__(message)
        self.message = message
        if code:
            self.code = code
        if status:
            self.status = status
        self.details = details if details is not None else {}


class ValidationFailed(BillingDeskError):
    code = "invalid"
    status = 400


class NotFound(BillingDeskError):
    code = "not_found"
    status = 404


class NotPermitted(BillingDeskError):
    code = "not_permitted"
    status = 403


class Conflict(BillingDeskError):
    code = "conflict"
    status = 409


class PreconditionFailed(BillingDeskError):
    """The request is well-formed but the billing state does not allow it (e.g. nothing left to refund)."""

    code = "precondition_failed"
    status = 422


class ProviderError(BillingDeskError):
    """The billing provider refused or failed. ``retryable`` says whether trying again may help."""

    code = "provider_error"
    status = 502

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        details: Any = None,
        status: int | None = None,
        retryable: bool = False,
        provider_code: str = "",
        decline_code: str = "",
    ):
        super().__init__(message, code=code, details=details, status=status)
        self.retryable = retryable
        self.provider_code = provider_code
        self.decline_code = decline_code


class ProviderUnavailable(ProviderError):
    """The provider did not act: it refused with 429, or the request never left
    (connection refused, DNS, connect timeout). Reads also use it for any network
    failure. A write that may have reached the provider is ``ProviderOutcomeUnknown``."""

    code = "provider_unavailable"
    status = 503

    def __init__(self, message: str, **kwargs: Any):
        kwargs.setdefault("retryable", True)
        super().__init__(message, **kwargs)


class ProviderOutcomeUnknown(ProviderUnavailable):
    """A write was sent and no answer came back (read timeout, reset after sending, 5xx).

    The provider may have acted. Unlike a refusal or a request that never left, this
    must never be reported as "nothing was changed", and the action must not be
    resubmitted under a new key: it stays open (``outcome_unknown``) until
    reconciliation learns what the provider did. Retrying with the *same*
    idempotency key is safe (the provider replays its first answer), which is why it
    stays a ``ProviderUnavailable`` for retry loops.
    """

    code = "provider_outcome_unknown"
    status = 504


class ActionOutcomeUnknown(Conflict):
    """The same money action on the same object is still open (being confirmed with the provider)."""

    code = "action_outcome_unknown"
