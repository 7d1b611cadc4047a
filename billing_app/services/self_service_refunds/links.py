"""The refund-request links, by the name the billing widget first imported them under.

They live in ``services.refund_links`` (a sibling of ``customer_tickets``, which hands
``refund_link_create`` to the widget, so that neither imports this package back).
"""

from __future__ import annotations

from ..refund_links import (
    LINK_SALT,
    LinkRateLimited,
    refund_link_create,
    refund_link_read,
    refund_link_revoke,
    refund_link_token,
    refund_link_url,
)

__all__ = [
    "LINK_SALT",
    "LinkRateLimited",
    "refund_link_create",
    "refund_link_read",
    "refund_link_revoke",
    "refund_link_token",
    "refund_link_url",
]
