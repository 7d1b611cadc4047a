"""Who is calling the billing widget: the signed identity, the allowed origins, the secret.

Tenant-first (``widget_caller_resolve``): the workspace's enabled widget by slug, then the
request's ``Origin`` among its allowed origins, then the signature — 64 hex digits compared
in constant time with our own ``HMAC-SHA256(secret, customer id)`` — then the customer in
the workspace's mirror. Every refusal carries one message, whichever check failed.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import secrets
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.utils.translation import gettext

from ...errors import BillingDeskError, ValidationFailed
from ...models import BillingWidget, MirrorCustomer, Workspace
from ...selectors.widget import (
    origin_normalise,
    widget_customer,
    widget_for_slug,
    widget_origins,
)

logger = logging.getLogger(__name__)

SECRET_BYTES = 32
# Matched with ``fullmatch`` (``$`` would let a trailing newline through).
_CUSTOMER_RE = re.compile(r"[A-Za-z0-9_-]{1,255}")
_SIGNATURE_RE = re.compile(r"[0-9a-fA-F]{64}")
_VISIT_RE = re.compile(r"[A-Za-z0-9_-]{8,64}")


class WidgetRefused(BillingDeskError):
    """The widget's request is refused; ``cors`` says whether the origin may read why."""

    code = "widget_refused"
    status = 403

    def __init__(self, message: str, *, code: str, status: int = 403, cors: bool = True):
        super().__init__(message, code=code, status=status)
        self.cors = cors


@dataclass(frozen=True)
class WidgetCaller:
    """A verified widget request: whose account, from which allowed origin."""

    widget: BillingWidget
    workspace: Workspace
    customer: MirrorCustomer
    origin: str

    @property
    def customer_id(self) -> str:
        return self.customer.stripe_id


# --- the identity --------------------------------------------------------------------------------


def widget_identity_sign(*, secret: str, customer_id: str) -> str:
    """``hex(HMAC-SHA256(secret, customer_id))`` — what the product's backend computes."""
    return hmac.new(secret.encode(), customer_id.encode(), hashlib.sha256).hexdigest()


def widget_identity_valid(*, secret: str, customer_id: str, signature: str) -> bool:
    """Whether ``signature`` signs ``customer_id`` under ``secret`` (constant-time compare)."""
    if not secret or not isinstance(signature, str) or not _SIGNATURE_RE.fullmatch(signature):
        return False
    expected = widget_identity_sign(secret=secret, customer_id=customer_id)
    return hmac.compare_digest(expected, signature.lower())


@transaction.atomic
def widget_secret_rotate(*, widget: BillingWidget) -> str:
    """A new identity secret for ``widget`` (stored encrypted), returned once to show it.

    Every signature made with the old secret stops working at once; the product's backend
    must sign with the new one.
    """
    secret = secrets.token_hex(SECRET_BYTES)
    widget.identity_secret = secret
    widget.save(update_fields=["identity_secret", "updated_at"])
    logger.info("billing widget secret rotated workspace=%s", widget.workspace_id)
    return secret


def widget_origins_validate(*, text: str) -> str:
    """The allowed origins, one per line, as browsers send them; ``ValidationFailed`` names
    the first line that is not an origin (a path, a wildcard, ``null``, another scheme)."""
    origins: list[str] = []
    for line in (text or "").splitlines():
        if not line.strip():
            continue
        origin = origin_normalise(line)
        if not origin:
            raise ValidationFailed(
                gettext(
                    "%(line)s is not an origin: write scheme://host[:port] "
                    "(https://app.example.com), one per line, without a path or wildcard."
                )
                % {"line": line.strip()[:100]},
                code="invalid_origin",
            )
        origins.append(origin)
    return "\n".join(dict.fromkeys(origins))


def _refused(code: str, *, cors: bool, status: int = 403) -> WidgetRefused:
    # One message for every refusal: the caller learns nothing about which check failed.
    return WidgetRefused(
        gettext("This billing help request is not allowed."), code=code, status=status, cors=cors
    )


def widget_for_origin(*, slug: str, origin: str) -> BillingWidget:
    """The workspace's enabled widget when ``origin`` is one of its allowed origins, else
    ``WidgetRefused`` without CORS (a foreign page cannot even read the refusal). Checked
    first — before the body is read — so every later error is readable by the allowed page.
    """
    widget = widget_for_slug(slug=slug)
    if widget is None or not origin or origin not in widget_origins(widget):
        logger.warning("billing widget refused: origin workspace=%s", slug[:50])
        raise _refused("origin_not_allowed", cors=False)
    return widget


def widget_caller_resolve(
    *,
    slug: str,
    origin: str,
    customer_id: Any,
    signature: Any,
    widget: BillingWidget | None = None,
) -> WidgetCaller:
    """Verify a widget request tenant-first (see the module docstring); ``WidgetRefused``.

    The workspace and the origin are checked before anything else (``widget_for_origin``;
    pass its ``widget`` when already checked): until then the refusal carries no CORS
    headers (``cors=False``), so a foreign page cannot even read it.
    """
    if widget is None:
        widget = widget_for_origin(slug=slug, origin=origin)
    if not isinstance(customer_id, str) or not _CUSTOMER_RE.fullmatch(customer_id):
        raise _refused("identity_invalid", cors=True, status=401)
    if not widget_identity_valid(
        secret=widget.identity_secret, customer_id=customer_id, signature=signature
    ):
        logger.warning(
            "billing widget refused: signature workspace=%s customer=%s", slug, customer_id
        )
        raise _refused("identity_invalid", cors=True, status=401)
    customer = widget_customer(workspace=widget.workspace, customer_id=customer_id)
    if customer is None:
        raise _refused("customer_unknown", cors=True, status=404)
    return WidgetCaller(widget=widget, workspace=widget.workspace, customer=customer, origin=origin)


def widget_visit_check(visit: Any) -> str:
    if not isinstance(visit, str) or not _VISIT_RE.fullmatch(visit):
        raise BillingDeskError(gettext("The widget's visit id is invalid."), code="invalid_visit")
    return visit
