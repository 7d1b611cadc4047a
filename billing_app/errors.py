"""Domain errors. Each carries a machine-readable code and the HTTP status the API answers with."""

from __future__ import annotations

from typing import Any


class BillingDeskError(Exception):
    code = "error"
    status = 400

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
    """Network error, timeout, 429 or 5xx after the bounded retries."""

    code = "provider_unavailable"
    status = 503

    def __init__(self, message: str, **kwargs: Any):
        kwargs.setdefault("retryable", True)
        super().__init__(message, **kwargs)
