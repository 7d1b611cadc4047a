"""The billing help widget (docs/self-service.md, section 3).

One script tag on the customer's own product page asks ``/widget/api/v1/<slug>/…`` for
answers about the signed-in customer's billing. Who the customer is comes from the
product's backend, never from the browser: the tag carries the customer id and an
HMAC-SHA256 of it under the workspace's widget secret (the identity verification helpdesk
chat widgets use). Each request is checked tenant-first (``widget_caller_resolve``):

1. the workspace's enabled widget, by slug;
2. the request's ``Origin`` is exactly one of the widget's allowed origins (a browser
   cannot fake it; the web view answers CORS for that origin only);
3. the signature: 64 hex digits compared in constant time with our own HMAC of the
   customer id (``hmac.compare_digest``);
4. the customer exists, undeleted, in the workspace's mirror.

Any failure is refused before anything is read or written, and the widget shows nothing.
The signature is a bearer credential of that customer for as long as the secret lives:
it belongs only in pages rendered for that customer; rotating the secret (admin) voids
every signature at once.

What a caller may then do: read the answers (``selectors.widget``), get a card-update link
(``card_update_url``, the prompts' page) and a refund-request link (``refund_link_create``,
source ``widget``; a live one is handed out again rather than minting more), and contact
support — a helpdesk ticket with the customer as requester and the billing context
attached (``customer_ticket_enqueue``, through the outbox). Each is counted as a
``BillingWidgetEvent`` (opened / answered(question) / contact: deflection on the
dashboard), once per visit; the counts are also the rate limits.
"""

from __future__ import annotations

from ..customer_tickets import customer_ticket_source_register
from .answers import (
    QUESTIONS,
    SOURCE,
    WidgetThrottled,
    widget_answer,
    widget_open,
    widget_texts,
)
from .contact import widget_contact, widget_contact_ticket_created
from .identity import (
    WidgetCaller,
    WidgetRefused,
    widget_caller_resolve,
    widget_for_origin,
    widget_identity_sign,
    widget_identity_valid,
    widget_origins_validate,
    widget_secret_rotate,
    widget_visit_check,
)

customer_ticket_source_register(source=SOURCE, on_created=widget_contact_ticket_created)

__all__ = [
    "QUESTIONS",
    "WidgetCaller",
    "WidgetRefused",
    "WidgetThrottled",
    "widget_answer",
    "widget_caller_resolve",
    "widget_contact",
    "widget_for_origin",
    "widget_identity_sign",
    "widget_identity_valid",
    "widget_open",
    "widget_origins_validate",
    "widget_secret_rotate",
    "widget_texts",
    "widget_visit_check",
]
